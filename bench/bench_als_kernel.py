"""Benchmarks of the ALS kernels (fastmf._als over csrc/als.c) on the ML-1M shape.

Run:  python -m pytest bench/bench_als_kernel.py --benchmark-only -q
      (add ``--benchmark-columns=median,iqr,rounds`` for a compact table)

Data: ``fastmf.make_ratings(6040, 3706, 1_000_209, seed=0)`` (MovieLens-1M shape and skew), float32
ratings and factors, k = 64, factors drawn N(0, 0.1); the user CSR and the item CSC are built once.
One "sweep" is a user half-sweep followed by an item half-sweep, i.e. one ALS iteration.

Groups (each fast path beside its baseline in the same run):
- ``als-sweep-k64``: explicit ALS (biased, reg=0.05), exact Cholesky and CG (cg_steps=3), on 1 and 2
  threads. Targets: 10 sweeps <= 3 s on 1 thread (extra_info ``ten_sweeps_s``); 2 threads >= 1.7x
  faster than 1 (compare the medians of the -1t and -2t rows).
- ``als-reference``: ``fastmf.reference.als_half_sweep`` (NumPy, one row at a time) on the first 300
  users; extra_info gives its time per row and the ratio against the C Cholesky user half-sweep
  (timed in the same test, best of 3).
- ``ials-sweep-k64``: implicit ALS (linear confidence, alpha=1, reg=0.1, all ratings as interaction
  strengths), CG (cg_steps=3, the default) and Cholesky, on 1 and 2 threads; with the optional
  ``implicit`` package installed, its ``AlternatingLeastSquares`` (``iterations=1``, started from the
  same factors, same threads, given the confidence matrix ``1 + alpha * r`` with its own alpha=1 so
  both solve the same problem) through ``fit`` and through its per-side solvers
  ``implicit.cpu._als.least_squares_cg`` / ``least_squares`` (no transpose, no setup). BLAS is
  limited to one thread while ``implicit`` runs (it computes ``Y^T Y`` with NumPy).
- ``ials-reference``: ``fastmf.reference.ials_half_sweep`` on the first 300 users, with the ratio
  against the C Cholesky user half-sweep.
- ``als-train-10-sweeps``: ten explicit Cholesky sweeps on 1 thread, from a fresh model each round.
"""

import time

import numpy as np
import pytest

from fastmf import _als, reference
from fastmf.synthetic import make_ratings

ML1M = (6_040, 3_706, 1_000_209)
K = 64
REG = 0.05
IALS_REG, IALS_ALPHA = 0.1, 1.0


@pytest.fixture(scope="module")
def ml1m():
    ds = make_ratings(*ML1M, seed=0, dtype="float32")
    csr, csc = ds.to_csr(), ds.to_csc()
    csr = (csr.indptr, csr.indices, np.ascontiguousarray(csr.data, dtype=np.float32))
    csc = (csc.indptr, csc.indices, np.ascontiguousarray(csc.data, dtype=np.float32))
    return csr, csc, ds.n_users, ds.n_items, float(ds.rating.mean())


def model(n_users, n_items, k=K, seed=0):
    rng = np.random.default_rng(seed)
    P = (0.1 * rng.normal(size=(n_users, k))).astype(np.float32)
    Q = (0.1 * rng.normal(size=(n_items, k))).astype(np.float32)
    return P, Q, np.zeros(n_users, np.float32), np.zeros(n_items, np.float32)


def _openmp():
    from fastmf import _csr
    return bool(_csr.openmp_enabled())


def record(benchmark, n_threads, **info):
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(threads=n_threads, k=K, median_s=median, sweeps_per_s=1.0 / median,
                                openmp=_openmp(), **info)


def best_of(fn, n=3):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---------------------------------------------------------------------------------- explicit ALS
def als_sweep(csr, csc, m, mu, n_threads, solver):
    P, Q, bu, bi = m

    def run():
        _als.als_half_sweep(*csr, Q, bi, P, bu, mu, REG, n_threads=n_threads, solver=solver)
        _als.als_half_sweep(*csc, P, bu, Q, bi, mu, REG, n_threads=n_threads, solver=solver)

    return run


@pytest.mark.parametrize("mode", ["cholesky-1t", "cholesky-2t", "cg3-1t", "cg3-2t"])
def test_als_sweep(benchmark, ml1m, mode):
    csr, csc, n_users, n_items, mu = ml1m
    solver = "cholesky" if mode.startswith("cholesky") else "cg"
    threads = int(mode[-2])
    benchmark.group = "als-sweep-k64"
    m = model(n_users, n_items)
    benchmark.pedantic(als_sweep(csr, csc, m, mu, threads, solver), rounds=7, iterations=1,
                       warmup_rounds=1)
    assert all(np.all(np.isfinite(a)) for a in m)
    record(benchmark, threads, solver=solver, cg_steps=3 if solver == "cg" else None,
           ten_sweeps_s=10 * benchmark.stats.stats.median, target_ten_sweeps_1t_s=3.0)


def test_als_reference_rows(benchmark, ml1m):
    """Baseline: the NumPy reference half-sweep on the first 300 users (Python loop over rows)."""
    csr, csc, n_users, n_items, mu = ml1m
    benchmark.group = "als-reference"
    n_rows = 300
    indptr, indices, data = csr
    sub = (indptr[:n_rows + 1].copy(), indices[:indptr[n_rows]], data[:indptr[n_rows]])
    P, Q, bu, bi = model(n_users, n_items)
    benchmark.pedantic(reference.als_half_sweep, args=(*sub, Q, bi, P[:n_rows].copy(), bu[:n_rows].copy(),
                                                       mu, REG), rounds=3, iterations=1)
    ref_per_row = benchmark.stats.stats.median / n_rows
    c_half = best_of(lambda: _als.als_half_sweep(*csr, Q, bi, P, bu, mu, REG))
    c_per_row = c_half / n_users
    benchmark.extra_info.update(k=K, rows=n_rows, reference_s_per_row=ref_per_row,
                                c_user_half_sweep_s=c_half, c_s_per_row=c_per_row,
                                speedup_per_row=ref_per_row / c_per_row)


@pytest.mark.parametrize("solver", ["cholesky"])
def test_als_train_10_sweeps(benchmark, ml1m, solver):
    csr, csc, n_users, n_items, mu = ml1m
    benchmark.group = "als-train-10-sweeps"

    def setup():
        return (als_sweep(csr, csc, model(n_users, n_items), mu, 1, solver),), {}

    def train(sweep):
        for _ in range(10):
            sweep()

    benchmark.pedantic(train, setup=setup, rounds=3, iterations=1)
    benchmark.extra_info.update(threads=1, k=K, sweeps=10, median_s=benchmark.stats.stats.median,
                                target_s=3.0, openmp=_openmp())


# ---------------------------------------------------------------------------------- implicit ALS
def ials_sweep(csr, csc, X, Y, n_threads, solver):
    def run():
        _als.ials_half_sweep(*csr, Y, X, IALS_REG, IALS_ALPHA, n_threads=n_threads, solver=solver)
        _als.ials_half_sweep(*csc, X, Y, IALS_REG, IALS_ALPHA, n_threads=n_threads, solver=solver)

    return run


def implicit_inputs(csr, n_users, n_items):
    """The confidence matrix 1 + alpha r as a writeable scipy CSR (implicit's c = value)."""
    import scipy.sparse as sp

    indptr, indices, data = csr
    conf = (1.0 + IALS_ALPHA * data.astype(np.float64)).astype(np.float32)
    Cui = sp.csr_matrix((conf, indices.copy(), indptr.copy()), shape=(n_users, n_items))
    return Cui, Cui.T.tocsr()


def blas_one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with implicit
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(1, "blas")


IALS_MODES = ["fastmf-cg3-1t", "fastmf-cg3-2t", "fastmf-cholesky-1t", "fastmf-cholesky-2t",
              "implicit-fit-cg3-1t", "implicit-fit-cg3-2t", "implicit-solvers-cg3-1t",
              "implicit-solvers-cg3-2t", "implicit-solvers-cholesky-1t", "implicit-solvers-cholesky-2t"]


@pytest.mark.parametrize("mode", IALS_MODES)
def test_ials_sweep(benchmark, ml1m, mode):
    csr, csc, n_users, n_items, _ = ml1m
    threads = int(mode[-2])
    solver = "cg" if "-cg3-" in mode else "cholesky"
    benchmark.group = "ials-sweep-k64"
    X0, Y0, _, _ = model(n_users, n_items, seed=1)
    if mode.startswith("fastmf"):
        X, Y = X0.copy(), Y0.copy()
        benchmark.pedantic(ials_sweep(csr, csc, X, Y, threads, solver), rounds=7, iterations=1,
                           warmup_rounds=1)
        assert np.all(np.isfinite(X)) and np.all(np.isfinite(Y))
        record(benchmark, threads, solver=solver, cg_steps=3 if solver == "cg" else None)
        return

    implicit = pytest.importorskip("implicit")
    from implicit.cpu import _als as implicit_als
    from implicit.cpu.als import AlternatingLeastSquares

    Cui, Ciu = implicit_inputs(csr, n_users, n_items)
    if mode.startswith("implicit-fit"):
        def setup():
            m = AlternatingLeastSquares(factors=K, regularization=IALS_REG, alpha=1.0, iterations=1,
                                        use_cg=solver == "cg", num_threads=threads, random_state=0)
            m.user_factors, m.item_factors = X0.copy(), Y0.copy()
            return (m,), {}

        with blas_one_thread():
            benchmark.pedantic(lambda m: m.fit(Cui, show_progress=False), setup=setup, rounds=7,
                               iterations=1, warmup_rounds=1)
    else:
        X, Y = X0.copy(), Y0.copy()
        if solver == "cg":
            def run():
                implicit_als.least_squares_cg(Cui, X, Y, IALS_REG, num_threads=threads, cg_steps=3)
                implicit_als.least_squares_cg(Ciu, Y, X, IALS_REG, num_threads=threads, cg_steps=3)
        else:
            def run():
                implicit_als.least_squares(Cui, X, Y, IALS_REG, num_threads=threads)
                implicit_als.least_squares(Ciu, Y, X, IALS_REG, num_threads=threads)
        with blas_one_thread():
            benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    record(benchmark, threads, solver=solver, peer="implicit " + implicit.__version__)


def test_ials_reference_rows(benchmark, ml1m):
    """Baseline: the NumPy reference iALS half-sweep on the first 300 users."""
    csr, csc, n_users, n_items, _ = ml1m
    benchmark.group = "ials-reference"
    n_rows = 300
    indptr, indices, data = csr
    sub = (indptr[:n_rows + 1].copy(), indices[:indptr[n_rows]], data[:indptr[n_rows]])
    X, Y, _, _ = model(n_users, n_items, seed=1)
    benchmark.pedantic(reference.ials_half_sweep, args=(*sub, Y, X[:n_rows].copy(), IALS_REG, IALS_ALPHA),
                       rounds=3, iterations=1)
    ref_per_row = benchmark.stats.stats.median / n_rows
    c_half = best_of(lambda: _als.ials_half_sweep(*csr, Y, X, IALS_REG, IALS_ALPHA, solver="cholesky"))
    c_per_row = c_half / n_users
    benchmark.extra_info.update(k=K, rows=n_rows, reference_s_per_row=ref_per_row,
                                c_user_half_sweep_s=c_half, c_s_per_row=c_per_row,
                                speedup_per_row=ref_per_row / c_per_row)


def test_ials_loss(benchmark, ml1m):
    """The iALS loss over all 22 M pairs, computed from Y^T Y and the stored entries only."""
    csr, csc, n_users, n_items, _ = ml1m
    benchmark.group = "ials-loss-k64"
    X, Y, _, _ = model(n_users, n_items, seed=1)
    loss = benchmark.pedantic(_als.ials_loss, args=(*csr, X, Y, IALS_REG, IALS_ALPHA), rounds=7,
                              iterations=1, warmup_rounds=1)
    assert np.isfinite(loss)
    benchmark.extra_info.update(threads=1, k=K, median_s=benchmark.stats.stats.median,
                                pairs=n_users * n_items, openmp=_openmp())
