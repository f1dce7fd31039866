"""fastmf.tune.cross_validate and compare; the u1 target on real data."""

import numpy as np
import pytest

import fastmf
from fastmf.tune import compare, cross_validate


@pytest.fixture(scope="module")
def small():
    return fastmf.make_ratings(200, 150, 8000, seed=3)


def test_cross_validate_matches_a_hand_written_loop(small):
    table = cross_validate(fastmf.Biases(reg=3.0), small, cv=4, metrics=("rmse", "mae"), random_state=2)
    folds = list(fastmf.split.kfold(small, n_splits=4, random_state=2))
    expected = [fastmf.evaluate(fastmf.Biases(reg=3.0).fit(tr), te)["rmse"] for tr, te in folds]
    assert [r["fold"] for r in table] == [0, 1, 2, 3, "mean", "std"]
    assert [r["rmse"] for r in table.records[:4]] == pytest.approx(expected, rel=1e-12)
    assert table[4]["rmse"] == pytest.approx(np.mean(expected))
    assert table[5]["rmse"] == pytest.approx(np.std(expected, ddof=1))
    assert [r["n_test"] for r in table.records[:4]] == [len(te) for _, te in folds]


def test_cross_validate_with_a_split_function_and_threads(small):
    one = cross_validate("mf", small, cv=lambda d: [fastmf.split.random_split(d, random_state=s) for s in (0, 1)],
                         metrics=("rmse",), n_jobs=1)
    two = cross_validate("mf", small, cv=lambda d: [fastmf.split.random_split(d, random_state=s) for s in (0, 1)],
                         metrics=("rmse",), n_jobs=2)
    assert [r["rmse"] for r in one] == [r["rmse"] for r in two]  # same models for any n_jobs
    assert len(one) == 4


def test_cross_validate_bad_input(small):
    with pytest.raises(ValueError, match="cv must be an int >= 2"):
        cross_validate("biases", small, cv=1)
    with pytest.raises(ValueError, match="not a .train, test. pair"):
        cross_validate("biases", small, cv=[(small,)])
    with pytest.raises(ValueError, match="metric 'rmse' is not reported"):
        cross_validate("popularity", small, cv=2, metrics=("rmse",))


def test_compare_tabulates_every_model(small):
    table = compare(["biases", "popularity", "globalmean"], small, split="random:0.25", k=5)
    assert [r["model"] for r in table] == ["biases", "popularity", "globalmean"]
    train, test = fastmf.split.random_split(small, test_size=0.25, random_state=0)
    assert table[0]["rmse"] == pytest.approx(fastmf.evaluate(fastmf.Biases().fit(train), test, k=5)["rmse"])
    assert table[1]["rmse"] is None and table[1]["ndcg@5"] > 0
    assert all(r["fit_seconds"] >= 0 and r["threads"] >= 1 and r["cpu"] for r in table)
    assert table.machine["cores"] >= 1


def test_compare_by_default_runs_every_registered_preset(small):
    from fastmf.models import registry

    table = compare(None, small, split="random:0.2")
    assert [r["model"] for r in table] == list(registry.presets())


def test_compare_with_a_temporal_split_tunes_on_a_temporal_validation(small, monkeypatch):
    u, i, r, _ = small.to_arrays()
    ds = fastmf.Ratings.from_arrays(u, i, r, timestamps=np.arange(len(u)))
    seen = []
    real = fastmf.tune.search

    def spy(*args, **kwargs):
        seen.append(kwargs["validation"])
        return real(*args, **kwargs)

    monkeypatch.setattr(fastmf.tune, "search", spy)
    table = compare({"b": fastmf.Biases()}, ds, split="temporal:0.2", tune=2)
    assert seen == ["temporal:0.1"] and set(table[0]["tuned"]) == {"reg_user", "reg_item", "epochs"}
    assert table[0]["model"] == "b"


@pytest.mark.parametrize("split", ["random", "random:2", "holdout:0.1", 3])
def test_compare_bad_split(small, split):
    with pytest.raises(ValueError, match="split must be"):
        compare(["biases"], small, split=split)


# ---------------------------------------------------------------------- real data: the u1 target
@pytest.mark.data
@pytest.mark.xfail(strict=True, reason="issue 17's target is not met yet: the default search reaches u1.test "
                   "RMSE 0.9178 here (0.9155-0.9178 over seeds 0-3, mean 0.9166), against <= 0.916; see the "
                   "README's tuning section")
def test_search_on_u1_base_reaches_the_rmse_target_on_u1_test(ml100k_dir):
    """The default search on u1.base only (validation carved from it, random_state 0) finds a
    MatrixFactorization whose u1.test RMSE is <= 0.916 (the best hand-found is 0.9158)."""
    from fastmf.data.movielens import load_movielens_split

    base, test = load_movielens_split(ml100k_dir, "u1")
    found = fastmf.tune.search("mf", data=base, budget=64, metric="rmse", random_state=0)
    assert found.best_model_.n_users_ == base.n_users and len(found.best_model_.seen_indices_) == len(base)
    assert fastmf.evaluate(found.best_model_, test)["rmse"] <= 0.916


def test_machine_names_the_cpu_and_its_caches():
    """Every figure names its CPU the same way: fastmf._machine is the one definition."""
    from fastmf import _machine
    from fastmf.tune._common import machine

    info = machine()
    assert info["cpu"] == _machine.cpu_model() and info["caches"] == (" ".join(_machine.cache_sizes()) or "unknown")
    assert _machine.describe().startswith(info["cpu"]) and "caches" in _machine.describe()
