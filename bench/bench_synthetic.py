"""Benchmarks of fastmf.make_ratings (synthetic MovieLens-like data).

Run:  python -m pytest bench/bench_synthetic.py --benchmark-only -q
      FASTMF_BENCH_BIG=1 python -m pytest bench/bench_synthetic.py --benchmark-only -q -k netflix

Each fast path runs beside a baseline in the same run:
- "sampler-*": the vectorised weighted sampler without replacement (fastmf.synthetic._sample_items)
  against the obvious loop, one ``Generator.choice(replace=False, p=...)`` per user, on the same
  per-user counts and popularity weights (same distribution).
- "make_ratings-*": the whole generator against a naive one that draws (user, item) keys with
  popularity weights, de-duplicates them by sorting and tops up until n_ratings distinct pairs exist
  (no per-user floor, no exact per-user counts: a weaker model, so a generous baseline).
- "netflix": the 480,189 x 17,770 x 100,480,507 shape, opt-in (FASTMF_BENCH_BIG=1), one round;
  peak RSS and bytes per rating recorded in extra_info.
"""

import os
import resource

import numpy as np
import pytest

from fastmf import synthetic as S
from fastmf.synthetic import make_ratings

ML1M = (6_040, 3_706, 1_000_209)
MEDIUM = (20_000, 5_000, 2_000_000)
NETFLIX = (480_189, 17_770, 100_480_507)


def naive_make_ratings(n_users, n_items, n_ratings, rank=10, seed=0):
    """Baseline: random popularity-weighted keys, sort-based de-duplication, top-up, then the same
    planted-factor ratings computed in one dense pass per rating."""
    rng = np.random.default_rng(seed)
    pu = np.exp(rng.normal(0, 1.0, n_users))
    pu /= pu.sum()
    pi = np.exp(rng.normal(0, 1.2, n_items))
    pi /= pi.sum()
    keys = np.empty(0, dtype=np.int64)
    while keys.size < n_ratings:
        need = n_ratings - keys.size
        u = rng.choice(n_users, size=int(need * 1.1) + 16, p=pu)
        i = rng.choice(n_items, size=u.size, p=pi)
        keys = np.sort(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    keys = rng.permutation(keys)[:n_ratings]
    users, items = np.divmod(keys, n_items)
    P = rng.normal(0, 0.3, (n_users, rank))
    Q = rng.normal(0, 0.3, (n_items, rank))
    r = 3.5 + np.einsum("ij,ij->i", P[users], Q[items]) + rng.normal(0, 0.5, n_ratings)
    return users.astype(np.int32), items.astype(np.int32), np.clip(np.rint(r), 1, 5).astype(np.float32)


def sampler_inputs(shape, seed=0):
    n_users, n_items, n_ratings = shape
    rng = np.random.default_rng(seed)
    counts = S._allocate_counts(n_users, n_items, n_ratings, 20, 1.0, rng)
    logw = S._lognormal_logs(n_items, 1.2, rng)
    return counts, np.exp(logw - logw.max())


# ---------------------------------------------------------------------- the sampler
@pytest.mark.benchmark(group="sampler-ml1m")
def test_sampler_fast(benchmark):
    counts, w = sampler_inputs(ML1M)
    out = benchmark(lambda: S._sample_items(counts, w, np.random.default_rng(1)))
    assert out.size == counts.sum()


@pytest.mark.benchmark(group="sampler-ml1m")
def test_sampler_reference_loop(benchmark):
    counts, w = sampler_inputs(ML1M)
    out = benchmark.pedantic(lambda: S._sample_items_reference(counts, w, np.random.default_rng(1)),
                             rounds=3, iterations=1)
    assert out.size == counts.sum()


# ---------------------------------------------------------------------- the whole generator
@pytest.mark.parametrize("shape", [ML1M, MEDIUM], ids=["ml1m", "20k-5k-2M"])
@pytest.mark.parametrize("timestamps", [False, True], ids=["no-ts", "ts"])
def test_make_ratings(benchmark, shape, timestamps):
    benchmark.group = f"make_ratings-{'ml1m' if shape == ML1M else 'medium'}"
    ds = benchmark(lambda: make_ratings(*shape, seed=0, timestamps=timestamps))
    assert len(ds) == shape[2]


@pytest.mark.parametrize("shape", [ML1M, MEDIUM], ids=["ml1m", "20k-5k-2M"])
def test_naive_baseline(benchmark, shape):
    benchmark.group = f"make_ratings-{'ml1m' if shape == ML1M else 'medium'}"
    u, i, r = benchmark.pedantic(lambda: naive_make_ratings(*shape), rounds=3, iterations=1)
    assert r.size == shape[2]


# ---------------------------------------------------------------------- Netflix shape (opt-in)
@pytest.mark.skipif(os.environ.get("FASTMF_BENCH_BIG") != "1",
                    reason="Netflix-size benchmark (100M ratings, ~1.3 GB): set FASTMF_BENCH_BIG=1")
@pytest.mark.benchmark(group="netflix")
def test_netflix_shape(benchmark):
    ds = benchmark.pedantic(lambda: make_ratings(*NETFLIX, seed=0), rounds=1, iterations=1)
    assert len(ds) == NETFLIX[2]
    nbytes = ds.user_index.nbytes + ds.item_index.nbytes + ds.rating.nbytes
    benchmark.extra_info["bytes_per_rating"] = nbytes / len(ds)
    benchmark.extra_info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert nbytes / len(ds) <= 12.0
