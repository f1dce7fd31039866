"""Cold start with side features (issue 16): ml-100k item-cold and user-cold, beside baselines.

Run: ``python bench/bench_side.py`` (``FASTMF_DATA`` must hold ml-100k), or
``pytest bench/bench_side.py --benchmark-only -s`` (the same table; the timing is one map fit).

Item-cold: ``fastmf.split.item_cold_split(ds, 0.2, seed)`` for seeds 0, 1, 2 (20% of the rated items
held out with all their ratings). Every figure is the mean over the seeds of the RMSE of the cold
test ratings (``evaluate(...)["rmse_cold_items"]``), with the default models and ``random_state=0``:

* ``mu + b_u``: the model without features (a cold item has b_i ~ 0 and q_i ~ 0): what is left is
  the global mean and the user's bias;
* ``+ feature->bias map``: the same fit with the map, the cold items' mapped factors set to zero
  (only the mapped bias is used);
* ``+ feature->factor map``: ``side="map"``, the mapped bias and factors (Gantner et al. 2010).

Ranking among the cold items (``ndcg@10_cold_items``, relevance = rating >= 4; the rating models
rank with their default ``ranking="engagement"``, whose engagement rows are mapped too): the map against
popularity-by-genre (``Popularity`` whose cold items score the least-squares fit of the warm items'
rating counts on their features).

Joint mode (``side="joint"``, :class:`fastmf.MatrixFactorization` with its defaults, genres + year):
on the same item-cold splits its cold RMSE and ndcg@10 beside map mode's and popularity-by-genre's;
warm RMSE on ``random_split(ds, 0.2, seed)`` (every test item has ratings) of the joint model
against the same model fitted without features (both ``ranking="rating"``, which does not change
RMSE), so the warm cost of the features is measured in the same run. ``python bench/bench_side.py
joint`` prints this table alone.

ALS (``MatrixFactorization(solver="als")``, its own group ``side-als``; ``python bench/bench_side.py
als`` prints its table alone): cold RMSE on the item-cold splits and warm RMSE on the random splits
of the model without features, map mode and joint mode (genres + year); the timing pair is the ALS
fit without features (baseline) and the joint fit on item-cold seed 0.

User-cold: ``user_cold_split(ds, 0.2, seed)``, user features age + gender + occupation: RMSE on the
cold users (``rmse_cold_users``) of ``Biases`` (mu + b_i) and of the map, and ndcg@10 (threshold
4) of ``Popularity`` (the global ranking) and of the map. The CPU is printed with the table.
"""

import os

import numpy as np
import pytest

import fastmf
from fastmf.split import item_cold_split, random_split, user_cold_split

SEEDS = (0, 1, 2)
ITEM_MODELS = {
    "MF sgd": lambda: fastmf.MatrixFactorization(random_state=0),
    "MF als": lambda: fastmf.MatrixFactorization(solver="als", random_state=0),
    "BayesianMF": lambda: fastmf.BayesianMF(random_state=0),
    "ImplicitALS": lambda: fastmf.ImplicitALS(random_state=0),  # ranking only: no ratings predicted
}


def machine():
    from fastmf._machine import describe

    return describe()


def load():
    root = os.environ.get("FASTMF_DATA")
    folder = os.path.join(root, "ml-100k") if root else None
    if folder is None or not os.path.isdir(folder):
        pytest.skip("FASTMF_DATA does not hold ml-100k")
    return fastmf.load_movielens("ml-100k", path=folder, download=False)


def _genre_popularity(train, features):
    """Popularity whose cold items score the least-squares fit of warm rating counts on features."""
    pop = fastmf.Popularity().fit(train)
    X = np.column_stack([np.asarray(features), np.ones(train.n_items)])
    warm = pop.item_counts_ > 0
    w = np.linalg.lstsq(X[warm], pop.item_counts_[warm].astype(float), rcond=None)[0]
    pop.item_scores_ = np.where(warm, pop.item_scores_, X @ w)
    return pop


def item_cold_table(ds, feature_sets=(("genres",), ("genres", "year"))):
    rows = []
    for names in feature_sets:
        F = ds.item_features(*names)
        for label, make in ITEM_MODELS.items():
            got = {"mu + b_u": [], "+ feature->bias map": [], "+ feature->factor map": [],
                   "ndcg@10 cold (map)": [], "ndcg@10 cold (popularity by genre)": []}
            for seed in SEEDS:
                train, test = item_cold_split(ds, 0.2, random_state=seed)
                plain = make().fit(train)
                got["mu + b_u"].append(fastmf.evaluate(plain, test, cold_warm=True).get("rmse_cold_items", np.nan))
                model = make().fit(train, item_features=F)
                ev = fastmf.evaluate(model, test, threshold=4, cold_warm=True)
                got["+ feature->factor map"].append(ev.get("rmse_cold_items", np.nan))
                got["ndcg@10 cold (map)"].append(ev["ndcg@10_cold_items"])
                pop = _genre_popularity(train, F)
                got["ndcg@10 cold (popularity by genre)"].append(
                    fastmf.evaluate(pop, test, threshold=4, cold_warm=True)["ndcg@10_cold_items"])
                model.item_factors_[model.item_counts_ == 0] = 0.0  # the mapped bias alone
                got["+ feature->bias map"].append(fastmf.evaluate(model, test, cold_warm=True).get("rmse_cold_items", np.nan))
            rows.append({"features": "+".join(names), "model": label,
                         **{k: float(np.mean(v)) for k, v in got.items()}})
    return rows


def user_cold_table(ds):
    U = ds.user_features("age", "gender", "occupation")
    got = {"rmse Biases (mu + b_i)": [], "rmse map": [], "ndcg@10 Popularity": [], "ndcg@10 map": []}
    for seed in SEEDS:
        train, test = user_cold_split(ds, 0.2, random_state=seed)
        got["rmse Biases (mu + b_i)"].append(fastmf.evaluate(fastmf.Biases().fit(train), test, cold_warm=True)["rmse_cold_users"])
        got["ndcg@10 Popularity"].append(fastmf.evaluate(fastmf.Popularity().fit(train), test, threshold=4, cold_warm=True)["ndcg@10"])
        model = fastmf.MatrixFactorization(random_state=0).fit(train, user_features=U)
        ev = fastmf.evaluate(model, test, threshold=4, cold_warm=True)
        got["rmse map"].append(ev["rmse_cold_users"])
        got["ndcg@10 map"].append(ev["ndcg@10"])
    return {k: float(np.mean(v)) for k, v in got.items()}


def joint_table(ds, names=("genres", "year"), **params):
    F = ds.item_features(*names)
    got = {"cold rmse map": [], "cold rmse joint": [], "ndcg@10 cold map": [], "ndcg@10 cold joint": [],
           "ndcg@10 cold popularity by genre": [], "warm rmse without features": [], "warm rmse joint": []}
    for seed in SEEDS:
        train, test = item_cold_split(ds, 0.2, random_state=seed)
        for mode in ("map", "joint"):
            model = fastmf.MatrixFactorization(random_state=0, side=mode, **params).fit(train, item_features=F)
            ev = fastmf.evaluate(model, test, threshold=4, cold_warm=True)
            got[f"cold rmse {mode}"].append(ev["rmse_cold_items"])
            got[f"ndcg@10 cold {mode}"].append(ev["ndcg@10_cold_items"])
        pop = _genre_popularity(train, F)
        got["ndcg@10 cold popularity by genre"].append(
            fastmf.evaluate(pop, test, threshold=4, cold_warm=True)["ndcg@10_cold_items"])
        train, test = random_split(ds, 0.2, random_state=seed)
        plain = fastmf.MatrixFactorization(random_state=0, ranking="rating", **params).fit(train)
        got["warm rmse without features"].append(fastmf.evaluate(plain, test)["rmse"])
        model = fastmf.MatrixFactorization(random_state=0, ranking="rating", side="joint", **params).fit(
            train, item_features=F)
        got["warm rmse joint"].append(fastmf.evaluate(model, test)["rmse"])
    return {k: float(np.mean(v)) for k, v in got.items()}


def joint_user_cold(ds, **params):
    """User-cold with age + gender + occupation: the cold users' RMSE and ndcg@10 (threshold 4) of
    map and joint mode."""
    U = ds.user_features("age", "gender", "occupation")
    got = {"rmse cold users map": [], "rmse cold users joint": [], "ndcg@10 map": [], "ndcg@10 joint": []}
    for seed in SEEDS:
        train, test = user_cold_split(ds, 0.2, random_state=seed)
        for mode in ("map", "joint"):
            model = fastmf.MatrixFactorization(random_state=0, side=mode, **params).fit(train, user_features=U)
            ev = fastmf.evaluate(model, test, threshold=4, cold_warm=True)
            got[f"rmse cold users {mode}"].append(ev["rmse_cold_users"])
            got[f"ndcg@10 {mode}"].append(ev["ndcg@10"])
    return {k: float(np.mean(v)) for k, v in got.items()}


def als_table(ds, names=("genres", "year"), **params):
    """ALS (``solver="als"``, defaults, ``ranking="rating"``): cold RMSE on the item-cold splits and
    warm RMSE on ``random_split(ds, 0.2, seed)`` of the model without features, map mode and joint
    mode, means over the seeds."""
    F = ds.item_features(*names)
    modes = {"no features": None, "map": "map", "joint": "joint"}
    got = {f"{what} rmse {label}": [] for what in ("cold", "warm") for label in modes}
    for seed in SEEDS:
        for what, split in (("cold", item_cold_split), ("warm", random_split)):
            train, test = split(ds, 0.2, random_state=seed)
            for label, side in modes.items():
                model = fastmf.MatrixFactorization(solver="als", random_state=0, ranking="rating",
                                                   side=side or "map", **params)
                model.fit(train, item_features=None if side is None else F)
                ev = fastmf.evaluate(model, test, cold_warm=True)
                got[f"{what} rmse {label}"].append(ev["rmse_cold_items"] if what == "cold" else ev["rmse"])
    return {k: float(np.mean(v)) for k, v in got.items()}


def report_als(ds):
    print(f"ml-100k, MatrixFactorization(solver='als'), seeds {SEEDS}: item-cold 20% (cold), random 20% (warm)")
    for names in (("genres", "year"),):
        print(f"  {'+'.join(names)}: " + "  ".join(f"{k}={v:.4f}" for k, v in als_table(ds, names).items()))


def report_joint(ds):
    print(f"ml-100k, side='joint', seeds {SEEDS}: item-cold 20% (cold rows), random 20% (warm)")
    for names in (("genres",), ("genres", "year")):
        print(f"  {'+'.join(names)}: " + "  ".join(f"{k}={v:.4f}" for k, v in joint_table(ds, names).items()))
    print("  user-cold 20%, age+gender+occupation: "
          + "  ".join(f"{k}={v:.4f}" for k, v in joint_user_cold(ds).items()))


def report(ds):
    print(machine())
    print(f"ml-100k item-cold, 20% of items, seeds {SEEDS}: RMSE of the cold ratings (mean of seeds)")
    for row in item_cold_table(ds):
        print("  " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    print(f"ml-100k user-cold, 20% of users, seeds {SEEDS}, age+gender+occupation:")
    print("  " + "  ".join(f"{k}={v:.4f}" for k, v in user_cold_table(ds).items()))
    report_joint(ds)
    report_als(ds)


def test_side_map_fit(benchmark):
    ds = load()
    train, _ = item_cold_split(ds, 0.2, random_state=0)
    F = ds.item_features("genres", "year")
    model = fastmf.MatrixFactorization(random_state=0, ranking="rating").fit(train)
    benchmark(lambda: model._fit_side(model._side_inputs(train, F, None)))
    report(ds)


def test_side_joint_fit(benchmark):
    """One joint fit (ml-100k item-cold seed 0, genres + year; the serial joint epoch)."""
    ds = load()
    train, _ = item_cold_split(ds, 0.2, random_state=0)
    F = ds.item_features("genres", "year")
    benchmark.pedantic(lambda: fastmf.MatrixFactorization(random_state=0, ranking="rating", side="joint").fit(
        train, item_features=F), rounds=1, iterations=1)


@pytest.mark.benchmark(group="side-als")
def test_als_fit_without_features(benchmark):
    """The baseline of the group: plain ALS on ml-100k item-cold seed 0 (defaults, 15 sweeps)."""
    ds = load()
    train, _ = item_cold_split(ds, 0.2, random_state=0)
    benchmark.pedantic(lambda: fastmf.MatrixFactorization(solver="als", random_state=0, ranking="rating").fit(train),
                       rounds=3, iterations=1)


@pytest.mark.benchmark(group="side-als")
def test_als_joint_fit(benchmark):
    """ALS joint on the same split with genres + year, beside the baseline; then the ALS table."""
    ds = load()
    train, _ = item_cold_split(ds, 0.2, random_state=0)
    F = ds.item_features("genres", "year")
    benchmark.pedantic(lambda: fastmf.MatrixFactorization(solver="als", random_state=0, ranking="rating",
                                                          side="joint").fit(train, item_features=F),
                       rounds=3, iterations=1)
    print(machine())
    report_als(ds)


if __name__ == "__main__":
    import sys

    data = fastmf.load_movielens("ml-100k", path=os.path.join(os.environ["FASTMF_DATA"], "ml-100k"),
                                 download=False)
    if sys.argv[1:] == ["joint"]:
        print(machine())
        report_joint(data)
    elif sys.argv[1:] == ["als"]:
        print(machine())
        report_als(data)
    else:
        report(data)
