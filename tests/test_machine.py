"""fastmf._machine: the cache sizes the kernels tune to, and the blocked schedule's block count."""

import numpy as np
import pytest

from fastmf import _machine, _sgd


def test_cache_sizes_come_from_the_machine_and_fastmf_cache_overrides_them(monkeypatch):
    monkeypatch.delenv("FASTMF_CACHE_SIZES", raising=False)
    l1, l2, l3 = (_machine.cache_per_core(n) for n in (1, 2, 3))
    assert all(v >= 0 for v in (l1, l2, l3))
    if l1 and l2:  # a machine that reports them: the levels grow (per-core shares)
        assert l1 <= l2
    monkeypatch.setenv("FASTMF_CACHE_SIZES", "L2=512K,L3=4M")
    assert _machine.cache_per_core(2) == 512 << 10 and _machine.cache_per_core(3) == 4 << 20
    assert _machine.cache_per_core(1) == l1  # a level it does not name keeps the machine's value
    monkeypatch.setenv("FASTMF_CACHE_SIZES", "l3=1.5m")
    assert _machine.cache_per_core(3) == 3 << 19


@pytest.mark.parametrize("bad, match", [("L2", "entries like"), ("L4=1M", "entries like"),
                                        ("L2=lots", "not a size"), ("L2=0", "must be > 0")])
def test_a_bad_fastmf_cache_is_a_clear_error(monkeypatch, bad, match):
    monkeypatch.setenv("FASTMF_CACHE_SIZES", bad)
    with pytest.raises(ValueError, match=match):
        _machine.cache_per_core(2)


def test_sgd_blocks_grow_with_the_model_and_shrink_with_the_cache(monkeypatch):
    monkeypatch.setenv("FASTMF_CACHE_SIZES", "L3=4M")
    # ML-1M shape, k = 128 float32 (512-byte rows): 5 MB of rows, 8 blocks of 620 KB fit in 2 MB
    assert _machine.sgd_blocks(6040, 3706, 512) == 8
    # ML-20M shape: 84 MB of rows; 64 blocks (1.3 MB each) is the first count under 2 MB
    assert _machine.sgd_blocks(138_493, 26_744, 512) == 64
    monkeypatch.setenv("FASTMF_CACHE_SIZES", "L3=64M")
    assert _machine.sgd_blocks(138_493, 26_744, 512) == 8
    monkeypatch.setenv("FASTMF_CACHE_SIZES", "L3=256K")
    assert _machine.sgd_blocks(6040, 3706, 512) == 64  # capped
    assert _machine.sgd_blocks(6040, 3706, 512, max_blocks=16) == 16
    counts = [_machine.sgd_blocks(n, n, 512) for n in (100, 1000, 10_000, 100_000)]
    assert counts == sorted(counts) and counts[0] == 8


def test_the_estimator_takes_its_block_count_from_the_cache(monkeypatch):
    """Only the default n_blocks follows the cache: an explicit n_blocks gives the same model
    whatever FASTMF_CACHE_SIZES says, and the default with a small cache is the model of that count."""
    from fastmf import MatrixFactorization
    from fastmf.synthetic import make_ratings

    ds = make_ratings(300, 200, 6000, seed=1)

    def fit(**kw):
        return MatrixFactorization(n_factors=16, n_epochs=2, random_state=0, n_threads=1, **kw).fit(ds)

    monkeypatch.setenv("FASTMF_CACHE_SIZES", "L3=64M")
    default = fit()
    explicit8 = fit(n_blocks=8)
    np.testing.assert_array_equal(default.user_factors_, explicit8.user_factors_)
    monkeypatch.setenv("FASTMF_CACHE_SIZES", "L3=4K")  # 500 rows x 64 B = 32,000 B: 8 blocks of 4,000 B do not fit in 2 KB, 16 of 2,000 do
    assert _machine.sgd_blocks(300, 200, 64) == 16
    small = fit()
    np.testing.assert_array_equal(small.user_factors_, fit(n_blocks=16).user_factors_)
    assert not np.array_equal(small.user_factors_, default.user_factors_)
    np.testing.assert_array_equal(fit(n_blocks=8).user_factors_, explicit8.user_factors_)


def test_the_kernel_accepts_any_l2_size(monkeypatch):
    """FASTMF_CACHE_SIZES's L2 decides only whether rows are prefetched: the same epoch either way."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, 50, 2000).astype(np.int32)
    items = rng.integers(0, 40, 2000).astype(np.int32)
    ratings = rng.uniform(1, 5, 2000)
    order = np.arange(2000, dtype=np.int64)
    out = []
    for l2 in ("1K", "64M"):
        monkeypatch.setenv("FASTMF_CACHE_SIZES", f"L2={l2}")
        P, Q = rng.normal(0, 0.1, (50, 8)), rng.normal(0, 0.1, (40, 8))
        P[:], Q[:] = 0.05, -0.03
        bu, bi = np.zeros(50), np.zeros(40)
        out.append((_sgd.sgd_epoch(users, items, ratings, order, P, Q, bu, bi, 3.0, 0.02, 0.05), P, Q))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1], out[1][1])
    monkeypatch.setenv("FASTMF_CACHE_SIZES", "L2=huge")
    with pytest.raises(ValueError, match="FASTMF_CACHE_SIZES"):
        _sgd.sgd_epoch(users, items, ratings, order, P, Q, bu, bi, 3.0, 0.02, 0.05)
