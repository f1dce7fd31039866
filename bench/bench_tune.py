"""Model search (fastmf.tune.search): what a search costs in full fits, and what it finds.

Run: ``pytest bench/bench_tune.py --benchmark-only -s`` (``FASTMF_DATA`` for the ml-100k rows).
Every figure is a ratio within the same run, printed with the machine:

- ``search-cost``: a 64-configuration search of SGD MatrixFactorization (default space, successive
  halving, ``max_epochs=40``) on the synthetic ML-1M shape (``make_ratings(6040, 3706, 1_000_209,
  seed=0)``), against one full fit of ``MatrixFactorization(n_epochs=40)`` on the same data, timed
  just before, both with every core; the CPU time over the wall time says how many cores the search
  kept busy. The full fit is timed twice: the rating model alone (``ranking="rating"``, what a trial
  trains) and the default model (which also fits the engagement model for top-N).
- ``search-als``: the same for ``"als"`` (sweeps as the budget, ``max_epochs=15``) with 16 configs.
- ``search-quality``: the default search on ml-100k u1.base (validation carved from it), the best
  model measured once on u1.test (target RMSE <= 0.916).
"""

import os
import time

import pytest

import fastmf

from bench_quality import machine  # CPU model, cores and cache sizes: one definition for the benches


@pytest.fixture(scope="module")
def ml1m_shape():
    return fastmf.make_ratings(6040, 3706, 1_000_209, seed=0)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _cost(benchmark, data, model, max_epochs, budget, full_params):
    full_rating = timed(lambda: fastmf.MatrixFactorization(**full_params, ranking="rating").fit(data))[1]
    full_default = timed(lambda: fastmf.MatrixFactorization(**full_params).fit(data))[1]
    holder = {}

    def run():
        holder["out"] = timed(lambda: fastmf.tune.search(model, data=data, budget=budget, max_epochs=max_epochs,
                                                         refit=False, random_state=0))

    benchmark.pedantic(run, rounds=1, iterations=1)
    found, wall, cpu = holder["out"]
    info = {"search_s": wall, "full_fit_s": full_rating, "full_fit_default_s": full_default,
            "ratio_full_fits": wall / full_rating, "ratio_default_fits": wall / full_default,
            "cores_busy": cpu / wall, "n_jobs": found.n_jobs, "n_threads": found.n_threads,
            "rungs": [(r["trials"], r["epochs"]) for r in found.rungs], "best": found.best_params_,
            "best_epochs": found.best_epochs_, "validation": found.best_score_}
    benchmark.extra_info.update(info)
    print(f"\n{machine()}")
    print(f"{model} search, {budget} configurations: {wall:.2f} s = {wall / full_rating:.2f} full fits "
          f"({full_rating:.2f} s, ranking='rating') = {wall / full_default:.2f} default fits "
          f"({full_default:.2f} s); CPU/wall {cpu / wall:.2f} ({found.n_jobs} jobs x {found.n_threads} threads); "
          f"rungs {info['rungs']}; best {found.best_params_} at {found.best_epochs_} epochs, "
          f"validation {found.metric} {found.best_score_:.4f}")
    return info


@pytest.mark.benchmark(group="search-cost")
def test_search_cost_sgd_ml1m_shape(benchmark, ml1m_shape):
    info = _cost(benchmark, ml1m_shape, "mf", 40, 64, dict(n_epochs=40, random_state=0))
    assert info["ratio_full_fits"] > 0


@pytest.mark.benchmark(group="search-als")
def test_search_cost_als_ml1m_shape(benchmark, ml1m_shape):
    info = _cost(benchmark, ml1m_shape, "als", 15, 16, dict(n_epochs=15, random_state=0, solver="als"))
    assert info["ratio_full_fits"] > 0


@pytest.mark.benchmark(group="search-quality")
def test_search_quality_ml100k_u1(benchmark):
    root = os.environ.get("FASTMF_DATA")
    if not root or not os.path.isdir(os.path.join(root, "ml-100k")):
        pytest.skip("ml-100k not under FASTMF_DATA")
    from fastmf.data.movielens import load_movielens_split

    base, test = load_movielens_split(os.path.join(root, "ml-100k"), "u1")
    holder = {}

    def run():
        holder["found"] = fastmf.tune.search("mf", data=base, budget=64, metric="rmse", random_state=0)

    benchmark.pedantic(run, rounds=1, iterations=1)
    found = holder["found"]
    test_rmse = fastmf.evaluate(found.best_model_, test)["rmse"]
    benchmark.extra_info.update({"test_rmse": test_rmse, "best": found.best_params_,
                                 "refit_epochs": found.refit_epochs_, "validation_rmse": found.best_score_})
    print(f"\n{machine()}\nml-100k u1: search {found.seconds:.1f} s, best {found.best_params_}, "
          f"{found.refit_epochs_} epochs refit; validation RMSE {found.best_score_:.4f}, u1.test RMSE "
          f"{test_rmse:.4f} (target <= 0.916)")
