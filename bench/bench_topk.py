"""Benchmarks of the exact top-n kernels (fastmf._topk over csrc/topk.c).

Run:  python -m pytest bench/bench_topk.py --benchmark-only -q --benchmark-columns=median,iqr,rounds
      FASTMF_BENCH_BIG=1 python -m pytest bench/bench_topk.py --benchmark-only -q -k netflix

Groups (each fast path beside its baseline in the same run):
- ``ml1m-top10``: top-10 for every user of the ML-1M shape (6,040 users x 3,706 items, k=64 float32
  factors drawn N(0, 1), item bias and user offset, the seen items of
  ``fastmf.make_ratings(6040, 3706, 1_000_209, seed=0)`` excluded):
  ``topk_factors`` on 1 and 2 threads (scores computed on the fly, no score matrix) against the plain
  NumPy version (``U @ V.T`` in float32 through BLAS, + offset + bias in float64, seen set to -inf,
  ``argpartition`` + ``argsort`` of the 10), and against ``fastmf.base.topn_rows`` and ``topk_rows``
  (1 and 2 threads) on the same dense matrix, timed with the dense product included. extra_info gives
  the median, the target (0.3 s) and, for the NumPy baselines, the fraction of rows whose top-10 equals
  the kernel's (BLAS rounds differently, so a near-tie may swap an item).
- ``netflix-top10`` (opt-in, ``FASTMF_BENCH_BIG=1``): 480,189 users x 17,770 items, k=32 float32,
  no exclusions, 2 threads, one round: time and the peak resident memory of the call over the memory
  before it (Linux: VmHWM after resetting it through /proc/self/clear_refs), beside the size of the
  outputs and of the dense float64 score matrix that is never built (68 GB = 63.6 GiB).
"""

import os
import time

import numpy as np
import pytest

from fastmf import _topk
from fastmf.base import topn_rows
from fastmf.synthetic import make_ratings

ML1M = (6_040, 3_706, 1_000_209)
N_TOP = 10


@pytest.fixture(scope="module")
def ml1m():
    ds = make_ratings(*ML1M, seed=0)
    indptr, indices = ds.to_csr()[:2]
    rng = np.random.default_rng(0)
    U = rng.normal(size=(ds.n_users, 64)).astype(np.float32)
    V = rng.normal(size=(ds.n_items, 64)).astype(np.float32)
    bias = rng.normal(size=ds.n_items)
    offset = 3.5 + rng.normal(size=ds.n_users)
    ref = _topk.topk_factors(U, V, N_TOP, item_bias=bias, user_offset=offset,
                             excl_indptr=indptr, excl_indices=indices)
    return U, V, bias, offset, indptr, indices, ref


def dense_scores(U, V, bias, offset, indptr, indices):
    """The scores as a dense float64 matrix with the seen items at -inf (what the NumPy path builds)."""
    S = (U @ V.T).astype(np.float64)
    S += offset[:, None]
    S += bias[None, :]
    rows = np.repeat(np.arange(U.shape[0]), np.diff(indptr))
    S[rows, indices] = -np.inf
    return S


def numpy_top10(U, V, bias, offset, indptr, indices):
    """Plain NumPy: dense scores, argpartition for the 10 best, argsort of those."""
    S = dense_scores(U, V, bias, offset, indptr, indices)
    part = np.argpartition(-S, N_TOP, axis=1)[:, :N_TOP]
    vals = np.take_along_axis(S, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def agreement(got, ref):
    return float((got[0] == ref[0]).all(axis=1).mean())


def record(benchmark, **info):
    benchmark.extra_info.update(median_s=benchmark.stats.stats.median, target_s=0.3,
                                openmp=_openmp(), **info)


def _openmp():
    from fastmf import _csr
    return bool(_csr.openmp_enabled())


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ml1m_topk_factors(benchmark, ml1m, n_threads):
    U, V, bias, offset, indptr, indices, ref = ml1m
    benchmark.group = "ml1m-top10"
    got = benchmark.pedantic(_topk.topk_factors, args=(U, V, N_TOP),
                             kwargs=dict(item_bias=bias, user_offset=offset, excl_indptr=indptr,
                                         excl_indices=indices, n_threads=n_threads),
                             rounds=7, iterations=1, warmup_rounds=1)
    np.testing.assert_array_equal(got[0], ref[0])       # the thread count changes nothing
    record(benchmark, threads=n_threads, path="topk_factors")


def test_ml1m_numpy_argpartition(benchmark, ml1m):
    U, V, bias, offset, indptr, indices, ref = ml1m
    benchmark.group = "ml1m-top10"
    got = benchmark.pedantic(numpy_top10, args=(U, V, bias, offset, indptr, indices),
                             rounds=5, iterations=1, warmup_rounds=1)
    record(benchmark, threads="BLAS default", path="numpy U@V.T + argpartition",
           rows_equal_to_kernel=agreement(got, ref))


def test_ml1m_base_topn_rows(benchmark, ml1m):
    U, V, bias, offset, indptr, indices, ref = ml1m
    benchmark.group = "ml1m-top10"
    got = benchmark.pedantic(lambda: topn_rows(dense_scores(U, V, bias, offset, indptr, indices), N_TOP),
                             rounds=5, iterations=1, warmup_rounds=1)
    record(benchmark, threads="BLAS default", path="dense + fastmf.base.topn_rows",
           rows_equal_to_kernel=agreement(got, ref))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ml1m_dense_topk_rows(benchmark, ml1m, n_threads):
    U, V, bias, offset, indptr, indices, ref = ml1m
    benchmark.group = "ml1m-top10"

    def run():  # the dense product and biases, then the C selection with the seen CSR
        S = (U @ V.T).astype(np.float64)
        S += offset[:, None]
        S += bias[None, :]
        return _topk.topk_rows(S, N_TOP, excl_indptr=indptr, excl_indices=indices, n_threads=n_threads)

    got = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    record(benchmark, threads=n_threads, path="dense + topk_rows", rows_equal_to_kernel=agreement(got, ref))


# ------------------------------------------------------------------------------- Netflix shape
def _status_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


@pytest.mark.skipif(os.environ.get("FASTMF_BENCH_BIG") != "1",
                    reason="opt-in: set FASTMF_BENCH_BIG=1 (about 10-20 s and 200 MB)")
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_netflix_memory_bounded(benchmark):
    n_users, n_items, k, n_threads = 480_189, 17_770, 32, 2
    rng = np.random.default_rng(0)
    U = rng.standard_normal((n_users, k), dtype=np.float32)
    V = rng.standard_normal((n_items, k), dtype=np.float32)
    bias = rng.normal(size=n_items)
    benchmark.group = "netflix-top10"
    stats = {}

    def run():
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")                                   # reset the peak RSS (VmHWM)
        before = _status_kb("VmRSS")
        t0 = time.perf_counter()
        out = _topk.topk_factors(U, V, N_TOP, item_bias=bias, n_threads=n_threads)
        stats["seconds"] = time.perf_counter() - t0
        stats["peak_increase_mb"] = (_status_kb("VmHWM") - before) / 1024
        return out

    idx, val = benchmark.pedantic(run, rounds=1, iterations=1)
    assert idx.shape == (n_users, N_TOP) and (idx >= 0).all()
    outputs_mb = (idx.nbytes + val.nbytes) / 2**20
    benchmark.extra_info.update(
        threads=n_threads, users=n_users, items=n_items, k=k, seconds=stats["seconds"],
        peak_increase_mb=stats["peak_increase_mb"], outputs_mb=outputs_mb,
        inputs_mb=(U.nbytes + V.nbytes) / 2**20, dense_scores_gib=n_users * n_items * 8 / 2**30,
        openmp=_openmp())
    # bounded: the call needs its outputs plus a few MB of per-thread scratch, not a score matrix
    assert stats["peak_increase_mb"] < outputs_mb + 64
