"""Top-N quality of every model beside its baselines: what a person is shown, not only RMSE.

Run: ``pytest bench/bench_quality.py --benchmark-only -s`` (``FASTMF_DATA`` must hold ml-100k and
ml-latest-small), or ``python bench/bench_quality.py`` for the table alone.

Data: ml-100k u1.base/u1.test (``fastmf.io.load_movielens_split``) and ml-latest-small random 90/10
(``fastmf.split.random_split(ds, test_size=0.1, random_state=0)``). Relevance: test rating >= 4;
k=10; each user's training items excluded. Models, all with their defaults and ``random_state=0``:
``MatrixFactorization`` (SGD; the default ``ranking="engagement"``), the same with
``ranking="rating"`` (the plain predicted-rating order), ``solver="als"``, ``Popularity``,
``ImplicitALS`` and ``BayesianMF`` (with and without its implicit features).

Recorded per model (``extra_info``, and printed): ``ndcg@10``, ``precision@10``, ``rmse`` (rating
models), ``coverage``, and the concentration check: the largest share of users' top-10 lists that
holds one item outside the 50 most rated (target <= 0.20), with that item's rating count and how
many items exceed 20%. The timing is the fit (3 rounds), for the cost of the engagement model
beside ``ranking="rating"`` (which does not fit it). The CPU is printed with the table.
"""

import os

import numpy as np
import pytest

import fastmf

MODELS = {
    "MF sgd (default)": lambda: fastmf.MatrixFactorization(random_state=0),
    "MF sgd ranking=rating": lambda: fastmf.MatrixFactorization(random_state=0, ranking="rating"),
    "MF als": lambda: fastmf.MatrixFactorization(solver="als", random_state=0),
    "MF als ranking=rating": lambda: fastmf.MatrixFactorization(solver="als", random_state=0,
                                                                ranking="rating"),
    "Popularity": lambda: fastmf.Popularity(),
    "ImplicitALS": lambda: fastmf.ImplicitALS(random_state=0),
    "BayesianMF": lambda: fastmf.BayesianMF(random_state=0),
    "BayesianMF implicit=True": lambda: fastmf.BayesianMF(random_state=0, implicit=True),
}


def machine():
    """CPU model, core count and cache sizes: :func:`fastmf._machine.describe`, the one definition."""
    from fastmf._machine import describe

    return describe()


def load(name):
    root = os.environ.get("FASTMF_DATA")
    if name == "ml-100k u1":
        folder = os.path.join(root, "ml-100k") if root else None
        if not folder or not os.path.isdir(folder):
            pytest.skip("ml-100k not under FASTMF_DATA")
        from fastmf.io import load_movielens_split

        return load_movielens_split(folder, "u1")
    folder = os.path.join(root, "ml-latest-small") if root else None
    if not folder or not os.path.isdir(folder):
        pytest.skip("ml-latest-small not under FASTMF_DATA")
    ds = fastmf.load_movielens("ml-latest-small", path=folder, download=False)
    return fastmf.split.random_split(ds, test_size=0.1, random_state=0)


def concentration(model, n=10):
    """(largest share of users' top-n lists holding one item outside the 50 most rated, that item's
    training rating count, number of such items above 20%)."""
    _, ids, _ = model.recommend_all(n=n)
    idx = model.item_map_.to_index(ids.reshape(-1), missing=-1)
    share = np.bincount(idx[idx >= 0], minlength=model.n_items_) / model.n_users_
    share[np.argsort(-model.item_counts_, kind="stable")[:50]] = 0
    worst = int(np.argmax(share))
    return float(share[worst]), int(model.item_counts_[worst]), int(np.count_nonzero(share > 0.2))


def measure(model, train, test):
    got = fastmf.evaluate(model, test, k=10, threshold=4)
    share, count, n_over = concentration(model)
    return {"ndcg@10": got["ndcg@10"], "precision@10": got["precision@10"], "rmse": got.get("rmse"),
            "coverage": got["coverage"], "max_share_outside_top50": share,
            "that_items_ratings": count, "items_over_20pct": n_over}


def line(data, name, r):
    rmse = "   -  " if r["rmse"] is None else f"{r['rmse']:.4f}"
    return (f"{data:21s} {name:24s} ndcg@10 {r['ndcg@10']:.4f}  p@10 {r['precision@10']:.4f}  "
            f"rmse {rmse}  coverage {r['coverage']:.3f}  max share outside top-50 "
            f"{r['max_share_outside_top50']:.3f} ({r['that_items_ratings']} ratings; "
            f"{r['items_over_20pct']} items > 20%)")


DATA = ["ml-100k u1", "ml-latest-small 90/10"]


@pytest.fixture(scope="module", params=DATA)
def split(request):
    return request.param, load(request.param)


@pytest.mark.benchmark(group="quality")
@pytest.mark.parametrize("name", list(MODELS))
def test_quality(benchmark, split, name):
    data, (train, test) = split
    model = MODELS[name]()
    benchmark.pedantic(model.fit, args=(train,), rounds=3, iterations=1)
    result = measure(model, train, test)
    benchmark.extra_info.update(result)
    benchmark.extra_info["machine"] = machine()
    print("\n" + line(data, name, result))


def main():
    print(machine())
    for data in DATA:
        train, test = load(data)
        for name, make in MODELS.items():
            print(line(data, name, measure(make().fit(train), train, test)))


if __name__ == "__main__":
    main()
