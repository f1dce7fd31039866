"""Benchmarks of the SGD epoch kernels (fastmf._sgd over csrc/sgd.c) on the ML-1M shape.

Run:  python -m pytest bench/bench_sgd_kernel.py --benchmark-only -q
      (add ``--benchmark-columns=median,iqr,rounds`` for a compact table)

Data: ``fastmf.make_ratings(6040, 3706, 1_000_209, seed=0)`` (MovieLens-1M shape and skew), float32,
biased model, lr=0.005, reg=0.02, factors drawn N(0, 0.1). Every timing is one epoch over all
1,000,209 ratings unless said otherwise; ``extra_info["updates_per_s_per_core"]`` is
ratings / median seconds / threads.

Groups (each fast path beside its baseline in the same run):
- ``epoch-k{16,32,64,100,128}``: the global-shuffle serial epoch (Fisher-Yates shuffle + epoch, the
  textbook order, ``schedule="shuffle"``) and the blocked schedule with 8 x 8 blocks on 1 and on
  2 threads (per-block shuffle included; ratings packed in block order once per fit and factor rows
  64-byte aligned with ``aligned_factors``, as recommended to the estimator).
- ``layout-k64``: the blocked epoch with the ratings in input order and plain NumPy factor arrays,
  against packed ratings and aligned rows (the two once-per-fit preparations).
- ``reference``: ``fastmf.reference.sgd_epoch`` (pure Python/NumPy) on a 20,000-rating subsample at
  k=64; its extra_info gives the per-rating time ratio against the C global-shuffle epoch timed in
  the same test.
- ``path-k100``: the blocked 1-thread epoch at k=100 on the element-by-element path (misaligned
  copies of the factors) and on the vector path (the estimator's padded, aligned layout).
- ``train-k100-20epochs``: 20 epochs at k=100 on 1 thread (target <= 0.6 s), blocked/packed/aligned
  and global shuffle.
"""

import time

import numpy as np
import pytest

from fastmf import _sgd, reference
from fastmf.synthetic import make_ratings

ML1M = (6_040, 3_706, 1_000_209)
LR, REG = 0.005, 0.02
N_BLOCKS = 8


@pytest.fixture(scope="module")
def ml1m():
    ds = make_ratings(*ML1M, seed=0, dtype="float32")
    users = np.ascontiguousarray(ds.user_index, dtype=np.int32)
    items = np.ascontiguousarray(ds.item_index, dtype=np.int32)
    ratings = np.ascontiguousarray(ds.rating, dtype=np.float32)
    return users, items, ratings, ds.n_users, ds.n_items


def packed(users, items, ratings, n_users, n_items, n_blocks):
    """The ratings copied into block order (once per fit) and the plan over that copy, whose blocks
    are then contiguous ranges: a block's per-epoch shuffle touches a small, cache-resident range."""
    plan = _sgd.make_block_plan(users, items, n_users, n_items, n_blocks)
    u, i, r = users[plan.block_order], items[plan.block_order], ratings[plan.block_order]
    return u, i, r, _sgd.make_block_plan(u, i, n_users, n_items, n_blocks)


def model(n_users, n_items, k, aligned, seed=0):
    """Factors N(0, 0.1) and zero biases. aligned=True: rows zero-padded to whole 64-byte vectors and
    64-byte aligned, and the kernel given the full padded width -- exactly what MatrixFactorization
    does (k=100 runs as 112 columns whose last 12 stay zero); this takes the kernel's vector path.
    aligned=False: plain NumPy arrays of width k (the element-by-element path unless k happens to be
    a multiple of 16 and NumPy's buffer 64-byte aligned)."""
    rng = np.random.default_rng(seed)
    if aligned:
        width = -(-k // 16) * 16
        P = _sgd.aligned_factors(n_users, width, np.float32)
        Q = _sgd.aligned_factors(n_items, width, np.float32)
        P[:, :k] = rng.normal(0, 0.1, (n_users, k))
        Q[:, :k] = rng.normal(0, 0.1, (n_items, k))
        assert _sgd.row_vectors(P, Q) == width // 16
    else:
        P = rng.normal(0, 0.1, (n_users, k)).astype(np.float32)
        Q = rng.normal(0, 0.1, (n_items, k)).astype(np.float32)
    return P, Q, np.zeros(n_users, np.float32), np.zeros(n_items, np.float32)


def misaligned_model(n_users, n_items, k, seed=0):
    """The aligned model's values in C-contiguous arrays starting 4 bytes past a 64-byte boundary:
    the element-by-element path on the same numbers (the vector path's baseline)."""
    out = []
    for a in model(n_users, n_items, k, aligned=True, seed=seed):
        buf = np.zeros(a.size + 32, dtype=a.dtype)
        start = ((-buf.ctypes.data) % 64) // a.itemsize + 1
        b = buf[start:start + a.size].reshape(a.shape)
        b[:] = a
        out.append(b)
    assert _sgd.row_vectors(out[0], out[1]) == 0
    return tuple(out)


def shuffle_epoch(users, items, ratings, m, mu):
    """One global-shuffle epoch per call (a fresh permutation each time, as in training)."""
    order = np.arange(len(users), dtype=np.int64)
    epoch = [0]

    def run():
        epoch[0] += 1
        _sgd.shuffle(order, 1, epoch[0])
        return _sgd.sgd_epoch(users, items, ratings, order, *m, mu, LR, REG)

    return run


def blocked_epoch(users, items, ratings, plan, m, mu, n_threads):
    work = np.empty(len(users), dtype=np.int64)
    epoch = [0]

    def run():
        epoch[0] += 1
        return _sgd.sgd_epoch_blocked(users, items, ratings, *m, mu, LR, REG, None, True,
                                      plan, 1, epoch[0], n_threads, work)

    return run


def record(benchmark, n_ratings, n_threads, **info):
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        ratings=n_ratings, threads=n_threads, median_s=median,
        updates_per_s_per_core=n_ratings / median / n_threads, openmp=_openmp(), **info)


def _openmp():
    from fastmf import _csr
    return bool(_csr.openmp_enabled())


@pytest.mark.parametrize("k", [16, 32, 64, 100, 128])
@pytest.mark.parametrize("mode", ["shuffle-1t", "blocked-1t", "blocked-2t"])
def test_epoch(benchmark, ml1m, k, mode):
    users, items, ratings, n_users, n_items = ml1m
    mu = float(ratings.mean())
    benchmark.group = f"epoch-k{k}"
    if mode == "shuffle-1t":
        m = model(n_users, n_items, k, aligned=True)
        fn, threads = shuffle_epoch(users, items, ratings, m, mu), 1
    else:
        threads = 1 if mode == "blocked-1t" else 2
        u, i, r, plan = packed(users, items, ratings, n_users, n_items, N_BLOCKS)
        m = model(n_users, n_items, k, aligned=True)
        fn = blocked_epoch(u, i, r, plan, m, mu, threads)
    # 15 rounds: the median then shrugs off a few epochs slowed by other load on the shared host
    # (2-thread epochs need both cores free and suffer most)
    sse = benchmark.pedantic(fn, rounds=15, iterations=1, warmup_rounds=2)
    assert np.isfinite(sse)
    record(benchmark, len(users), threads, k=k, n_blocks=N_BLOCKS if mode != "shuffle-1t" else None)


@pytest.mark.parametrize("path", ["element", "vector"])
def test_vector_path(benchmark, ml1m, path):
    """The same blocked 1-thread epoch at k=100 (112 padded columns) on the element-by-element path
    and on the vector path (bit-identical results, tests/kernels/test_sgd_kernel.py)."""
    users, items, ratings, n_users, n_items = ml1m
    mu = float(ratings.mean())
    benchmark.group = "path-k100"
    u, i, r, plan = packed(users, items, ratings, n_users, n_items, N_BLOCKS)
    m = model(n_users, n_items, 100, aligned=True) if path == "vector" else \
        misaligned_model(n_users, n_items, 100)
    sse = benchmark.pedantic(blocked_epoch(u, i, r, plan, m, mu, 1), rounds=7, iterations=1,
                             warmup_rounds=1)
    assert np.isfinite(sse)
    record(benchmark, len(users), 1, k=100, path=path)


@pytest.mark.parametrize("layout", ["input-order+plain", "packed+aligned"])
def test_layout(benchmark, ml1m, layout):
    users, items, ratings, n_users, n_items = ml1m
    mu = float(ratings.mean())
    benchmark.group = "layout-k64"
    if layout == "packed+aligned":
        u, i, r, plan = packed(users, items, ratings, n_users, n_items, N_BLOCKS)
        m = model(n_users, n_items, 64, aligned=True)
    else:
        u, i, r = users, items, ratings
        plan = _sgd.make_block_plan(users, items, n_users, n_items, N_BLOCKS)
        m = model(n_users, n_items, 64, aligned=False)
    sse = benchmark.pedantic(blocked_epoch(u, i, r, plan, m, mu, 1), rounds=7, iterations=1,
                             warmup_rounds=1)
    assert np.isfinite(sse)
    record(benchmark, len(users), 1, k=64)


def test_reference_epoch_subsample(benchmark, ml1m):
    """Baseline: the pure-Python reference epoch on 20,000 ratings; the ratio per rating against the
    C global-shuffle epoch (full data, timed here too, best of 5) is in extra_info."""
    users, items, ratings, n_users, n_items = ml1m
    mu = float(ratings.mean())
    benchmark.group = "reference"
    sub = np.random.default_rng(0).choice(len(users), 20_000, replace=False)
    su, si, sr = users[sub], items[sub], ratings[sub]
    m_ref = model(n_users, n_items, 64, aligned=False)
    order = _sgd.permutation(len(sub), 1)
    benchmark.pedantic(reference.sgd_epoch, args=(su, si, sr, order, *m_ref, mu, LR, REG),
                       rounds=3, iterations=1)
    ref_per_rating = benchmark.stats.stats.median / len(sub)

    c_run = shuffle_epoch(users, items, ratings, model(n_users, n_items, 64, aligned=True), mu)
    c_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        c_run()
        c_times.append(time.perf_counter() - t0)
    c_per_rating = min(c_times) / len(users)
    benchmark.extra_info.update(
        k=64, ratings=len(sub), reference_s_per_rating=ref_per_rating,
        c_shuffle_epoch_s=min(c_times), c_s_per_rating=c_per_rating,
        speedup_per_rating=ref_per_rating / c_per_rating)


@pytest.mark.parametrize("mode", ["blocked-1t", "shuffle-1t"])
def test_train_k100_20_epochs(benchmark, ml1m, mode):
    users, items, ratings, n_users, n_items = ml1m
    mu = float(ratings.mean())
    benchmark.group = "train-k100-20epochs"
    if mode == "blocked-1t":
        u, i, r, plan = packed(users, items, ratings, n_users, n_items, N_BLOCKS)
        make = lambda: blocked_epoch(u, i, r, plan, model(n_users, n_items, 100, aligned=True), mu, 1)
    else:
        make = lambda: shuffle_epoch(users, items, ratings,
                                     model(n_users, n_items, 100, aligned=True), mu)

    def setup():  # a fresh model per round, created outside the timing
        return (make(),), {}

    def train(epoch):
        return [epoch() for _ in range(20)][-1]

    sse = benchmark.pedantic(train, setup=setup, rounds=3, iterations=1)
    assert np.isfinite(sse)
    record(benchmark, 20 * len(users), 1, k=100, epochs=20, target_s=0.6)
