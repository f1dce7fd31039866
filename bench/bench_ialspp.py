"""iALS++ (``ImplicitALS(linear_solver="ialspp")``) against the CG iALS at large k, in the same run.

Run: ``pytest bench/bench_ialspp.py --benchmark-only -s`` (minutes: each case fits EPOCHS sweeps, FASTMF_BENCH_EPOCHS, default 4).
Data: an ML-20M-like shape scaled to the shared 2-core machine, ``make_ratings(138_000, 27_000,
N_RATINGS, seed=0)`` (ML-20M: 138,493 users, 26,744 items, 20 M ratings; set FASTMF_BENCH_RATINGS
for the full 20 M), all ratings as interactions, per-user 20% holdout (``user_holdout``, seed 0).
Each case fits EPOCHS sweeps at k = 256 and 512 with the model defaults otherwise (reg 0.05
frequency-scaled, alpha 5, 3 CG steps; iALS++ block size BLOCK); ``extra_info`` holds seconds per
sweep and ndcg@10 (``fastmf.evaluate``) after the same number of sweeps. The machine (CPU model, cores,
caches: ``fastmf._machine.describe()``) is printed and stored with every case.
"""

import os

import pytest

import fastmf

EPOCHS = int(os.environ.get("FASTMF_BENCH_EPOCHS", 4))
BLOCK = 32
N_RATINGS = int(os.environ.get("FASTMF_BENCH_RATINGS", 5_000_000))
THREADS = int(os.environ.get("FASTMF_BENCH_THREADS", 1))


@pytest.fixture(scope="module")
def holdout():
    from fastmf._machine import describe

    print(f"\nmachine: {describe()}")
    ds = fastmf.make_ratings(138_000, 27_000, N_RATINGS, seed=0)
    return fastmf.split.user_holdout(ds, test_size=0.2, random_state=0)


@pytest.mark.parametrize("k", [256, 512])
@pytest.mark.parametrize("solver", ["cg", "ialspp"])
def test_ials_large_k(benchmark, holdout, k, solver):
    from fastmf._machine import describe

    benchmark.group = f"ials-ml20m-like-{N_RATINGS // 1_000_000}M-k{k}-{EPOCHS}-sweeps"
    train, test = holdout
    m = fastmf.ImplicitALS(n_factors=k, n_epochs=EPOCHS, linear_solver=solver, block_size=BLOCK,
                           random_state=0, n_threads=THREADS, calculate_loss=False)
    benchmark.pedantic(m.fit, args=(train,), rounds=1, iterations=1)
    ndcg = fastmf.evaluate(m, test, k=10)["ndcg@10"]
    per_sweep = benchmark.stats.stats.median / EPOCHS
    benchmark.extra_info.update({"ndcg@10": ndcg, "seconds_per_sweep": per_sweep, "machine": describe(),
                                 "threads": THREADS, "ratings": N_RATINGS})
    print(f"\nk={k} {solver}: {per_sweep:.2f} s/sweep, ndcg@10 {ndcg:.4f} after {EPOCHS} sweeps")
