"""fastmf.make_ratings: counts, uniqueness, grid, determinism, shape of the distributions, planted
structure, timestamps, metadata, argument validation, and the item sampler against the exact
successive-sampling distribution."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastmf
from fastmf import synthetic as S
from fastmf.data import Ratings
from fastmf.synthetic import PlantedFactors, make_ratings


def pair_keys(ds):
    return ds.user_index.astype(np.int64) * ds.n_items + ds.item_index


def assert_no_duplicates(ds):
    keys = np.sort(pair_keys(ds))   # (np.unique without return_inverse is very slow in numpy 2.4)
    assert np.all(keys[1:] != keys[:-1])


def top_share(counts, frac=0.1):
    c = np.sort(counts)[::-1]
    return c[: max(1, int(len(c) * frac))].sum() / c.sum()


@pytest.fixture(scope="module")
def medium():
    """20k users x 5k items x 2M ratings with the default settings (built once, ~0.5 s)."""
    return make_ratings(20_000, 5_000, 2_000_000, seed=0)


# ---------------------------------------------------------------------- sizes and uniqueness
def test_exported_from_package():
    assert fastmf.make_ratings is make_ratings


def test_medium_counts_unique_and_floor(medium):
    ds = medium
    assert isinstance(ds, Ratings)
    assert len(ds) == 2_000_000
    assert (ds.n_users, ds.n_items) == (20_000, 5_000)
    assert ds.user_index.dtype == np.int32 and ds.item_index.dtype == np.int32
    assert ds.rating.dtype == np.float32 and ds.timestamp is None
    assert_no_duplicates(ds)
    uc = ds.user_counts()
    assert uc.sum() == 2_000_000
    assert uc.min() >= 20          # automatic floor: min(20, 2M / (4 * 20k) = 25) = 20
    assert uc.max() <= 5_000
    # raw ids equal dense indices
    np.testing.assert_array_equal(ds.user_map.ids, np.arange(20_000))
    np.testing.assert_array_equal(ds.item_map.ids, np.arange(5_000))
    assert ds.name == "synthetic" and ds.rating_scale == (1.0, 5.0)


def test_medium_rows_sorted_by_user_then_item(medium):
    key = pair_keys(medium)
    assert np.all(np.diff(key) > 0)


def test_medium_ratings_on_grid_and_ml_like(medium):
    r = medium.rating.astype(np.float64)
    assert r.min() >= 1 and r.max() <= 5
    np.testing.assert_array_equal(r, np.round(r))
    assert set(np.unique(r)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.45 < r.mean() < 3.70      # ML-1M: 3.58
    assert 1.00 < r.std() < 1.20       # ML-1M: 1.12


def test_medium_heavy_tails(medium):
    ic = medium.item_counts()
    uc = medium.user_counts()
    assert top_share(ic) > 0.30        # ML-1M: 0.43
    assert top_share(uc) > 0.25        # ML-1M: 0.39
    # a clear head and long tail, not just a bit of spread
    assert ic.max() > 10 * np.median(ic)
    assert uc.max() > 8 * np.median(uc)


def test_skew_zero_is_flat():
    ds = make_ratings(2_000, 1_000, 100_000, user_skew=0.0, item_skew=0.0, seed=1, item_info=False)
    uc = ds.user_counts()
    assert uc.max() - uc.min() <= 1            # equal shares, rounded
    assert top_share(ds.item_counts()) < 0.12  # uniform: 10% of items hold about 10%


def test_automatic_floor_on_sparse_shape():
    # mean activity 10 -> floor max(1, min(20, 50, 1000 // 400)) = 2
    ds = make_ratings(100, 50, 1_000, seed=3, item_info=False)
    uc = ds.user_counts()
    assert uc.sum() == 1_000 and uc.min() >= 2 and uc.max() <= 50
    assert_no_duplicates(ds)


def test_explicit_floor():
    ds = make_ratings(200, 300, 20_000, min_user_ratings=60, seed=0, item_info=False)
    uc = ds.user_counts()
    assert uc.min() >= 60 and uc.sum() == 20_000


def test_one_rating_per_user_and_full_matrix():
    ds = make_ratings(37, 5, 37, seed=0)
    np.testing.assert_array_equal(ds.user_counts(), np.ones(37))
    full = make_ratings(23, 17, 23 * 17, seed=0)
    np.testing.assert_array_equal(np.sort(pair_keys(full)), np.arange(23 * 17))
    one_item = make_ratings(9, 1, 9, seed=0)
    np.testing.assert_array_equal(one_item.item_index, np.zeros(9))


def test_counts_near_capacity():
    # 1,900 of 2,000 cells: most users at the cap n_items, handled by the exact dense sampler
    ds = make_ratings(50, 40, 1_900, seed=5, item_info=False)
    uc = ds.user_counts()
    assert uc.sum() == 1_900 and uc.max() == 40 and uc.min() >= 1
    assert_no_duplicates(ds)


def test_allocate_counts_water_filling():
    rng = np.random.default_rng(0)
    counts = S._allocate_counts(1_000, 100, 60_000, 5, 2.0, rng)
    assert counts.sum() == 60_000
    assert counts.min() >= 5 and counts.max() == 100
    # the uncapped users share the rest in proportion to the same LogNormal weights
    a = np.exp(S._lognormal_logs(1_000, 2.0, np.random.default_rng(0)))
    free = counts < 100
    assert free.sum() > 300 and (~free).sum() > 100
    # one lam with |counts - 5 - lam * a| < 1 for every uncapped user (largest-remainder rounding)
    lam_low = ((counts[free] - 5 - 1) / a[free]).max()
    lam_high = ((counts[free] - 5 + 1) / a[free]).min()
    assert lam_low < lam_high
    assert np.all(lam_high * a[~free] > 95 - 1)            # the capped ones would exceed the cap


def test_water_fill_oracle():
    # weights 1, 1, 2, 8 with cap 5 and total 10: the 8 is capped, the rest share 5 as 1:1:2
    out = S._water_fill(np.array([1.0, 1.0, 2.0, 8.0]), 10, 5)
    np.testing.assert_allclose(out, [1.25, 1.25, 2.5, 5.0])
    np.testing.assert_allclose(S._water_fill(np.array([3.0, 1.0]), 8, 4), [4.0, 4.0])


@settings(max_examples=40, deadline=None)
@given(n_users=st.integers(1, 40), n_items=st.integers(1, 30), fill=st.floats(0, 1),
       seed=st.integers(0, 10**6))
def test_property_exact_counts_no_duplicates(n_users, n_items, fill, seed):
    n_ratings = n_users + int(round(fill * (n_users * n_items - n_users)))
    ds = make_ratings(n_users, n_items, n_ratings, seed=seed, item_info=False)
    assert len(ds) == n_ratings
    assert_no_duplicates(ds)
    uc = ds.user_counts()
    assert uc.min() >= 1 and uc.max() <= n_items
    assert np.all(np.isin(ds.rating, np.arange(1.0, 6.0)))


# ---------------------------------------------------------------------- values
def test_half_star_grid_and_custom_scale():
    ds = make_ratings(300, 200, 10_000, rating_scale=(0.5, 5), round_to=0.5, seed=2, item_info=False)
    r = ds.rating.astype(np.float64)
    assert r.min() >= 0.5 and r.max() <= 5.0
    steps = (r - 0.5) / 0.5
    np.testing.assert_array_equal(steps, np.round(steps))
    assert np.unique(r).size == 10
    assert ds.rating_scale == (0.5, 5.0)


def test_continuous_ratings():
    ds = make_ratings(300, 200, 10_000, round_to=None, seed=2, item_info=False)
    r = ds.rating
    assert r.min() >= 1 and r.max() <= 5
    assert np.unique(r).size > 5_000


def test_noise_free_ratings_equal_clipped_planted_predictions():
    for scale in ((1, 5), (-10, 10)):
        ds, pf = make_ratings(400, 300, 15_000, noise=0.0, rating_scale=scale, round_to=None,
                              dtype="float64", seed=4, return_factors=True, item_info=False)
        expected = np.clip(pf.predict(ds.user_index, ds.item_index), *scale)
        np.testing.assert_allclose(ds.rating, expected, rtol=0, atol=1e-12)
    # rounded: the nearest grid point (float64 end to end, so no borderline disagreement)
    ds, pf = make_ratings(400, 300, 15_000, noise=0.0, round_to=0.5, dtype="float64", seed=4,
                          return_factors=True, item_info=False)
    pred = pf.predict(ds.user_index, ds.item_index)
    np.testing.assert_array_equal(ds.rating, np.clip(1 + np.rint((pred - 1) / 0.5) * 0.5, 1, 5))


def test_planted_structure_correlates_at_low_noise():
    ds, pf = make_ratings(2_000, 1_000, 100_000, noise=0.1, seed=7, return_factors=True)
    assert isinstance(pf, PlantedFactors)
    pred = pf.predict(ds.user_index, ds.item_index)
    assert np.corrcoef(pred, ds.rating)[0, 1] > 0.9
    # the interaction term alone carries signal beyond the biases
    resid = ds.rating - (pf.mu + pf.bu[ds.user_index] + pf.bi[ds.item_index])
    inter = np.einsum("ij,ij->i", pf.P[ds.user_index], pf.Q[ds.item_index])
    assert np.corrcoef(inter, resid)[0, 1] > 0.7


def test_noise_lowers_the_correlation_and_keeps_pairs():
    low, pf = make_ratings(1_000, 500, 40_000, noise=0.1, seed=9, return_factors=True, item_info=False)
    high = make_ratings(1_000, 500, 40_000, noise=1.5, seed=9, item_info=False)
    np.testing.assert_array_equal(low.item_index, high.item_index)   # independent streams
    pred = pf.predict(low.user_index, low.item_index)
    assert np.corrcoef(pred, low.rating)[0, 1] > np.corrcoef(pred, high.rating)[0, 1] + 0.2


def test_returned_factors_shapes_scale_and_dtype():
    ds, pf = make_ratings(120, 80, 3_000, rank=7, rating_scale=(1, 9), dtype="float64", seed=0,
                          return_factors=True)
    P, Q, bu, bi, mu = pf
    assert P.shape == (120, 7) and Q.shape == (80, 7) and bu.shape == (120,) and bi.shape == (80,)
    assert P.dtype == np.float64 and ds.rating.dtype == np.float64
    assert mu == pytest.approx(1 + (3.45 - 1) * 8 / 4)     # reference 3.45 mapped onto 1..9
    _, pf32 = make_ratings(120, 80, 3_000, rank=7, seed=0, return_factors=True)
    assert pf32.P.dtype == np.float32 and pf32.Q.dtype == np.float32


def test_popular_items_rate_higher():
    ds, pf = make_ratings(3_000, 1_000, 150_000, seed=11, return_factors=True, item_info=False)
    ic = ds.item_counts()
    assert np.corrcoef(np.log1p(ic), pf.bi)[0, 1] > 0.15


# ---------------------------------------------------------------------- determinism
def test_same_seed_same_arrays_different_seed_different():
    a = make_ratings(500, 400, 20_000, seed=42, timestamps=True)
    b = make_ratings(500, 400, 20_000, seed=42, timestamps=True)
    c = make_ratings(500, 400, 20_000, seed=43, timestamps=True)
    for name in ("user_index", "item_index", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.item_index, c.item_index)
    assert not np.array_equal(a.rating, c.rating)
    assert not np.array_equal(a.timestamp, c.timestamp)


def test_generator_seed():
    a = make_ratings(200, 100, 5_000, seed=np.random.default_rng(5), item_info=False)
    b = make_ratings(200, 100, 5_000, seed=np.random.default_rng(5), item_info=False)
    np.testing.assert_array_equal(a.item_index, b.item_index)
    np.testing.assert_array_equal(a.rating, b.rating)
    n = make_ratings(200, 100, 5_000, seed=None, item_info=False)
    assert len(n) == 5_000


# ---------------------------------------------------------------------- timestamps and dtype
def test_timestamps():
    plain = make_ratings(800, 600, 40_000, seed=8)
    ds = make_ratings(800, 600, 40_000, seed=8, timestamps=True)
    t = ds.timestamp
    assert t.dtype == np.int64 and t.shape == (40_000,)
    assert t.min() >= S._T0 and t.max() <= S._T0 + S._PERIOD
    # rows grouped by user, time non-decreasing within each user
    assert np.all(np.diff(ds.user_index) >= 0)
    same_user = np.diff(ds.user_index) == 0
    assert np.all(np.diff(t)[same_user] >= 0)
    # the same ratings as without timestamps, in another order
    np.testing.assert_array_equal(np.sort(pair_keys(ds)), pair_keys(plain))
    order = np.argsort(pair_keys(ds))
    np.testing.assert_array_equal(ds.rating[order], plain.rating)
    # the order within a user is not the item order (items shuffled before times are assigned)
    assert np.mean(np.diff(ds.item_index)[same_user] > 0) < 0.6
    # users start at different times: a global cutoff leaves whole late users in the test part
    starts = np.minimum.reduceat(t, np.r_[0, np.flatnonzero(~same_user) + 1])
    assert np.ptp(starts) > S._PERIOD * 0.8


def test_dtype_option():
    ds = make_ratings(100, 80, 2_000, dtype="float64", seed=0)
    assert ds.rating.dtype == np.float64
    ds = make_ratings(100, 80, 2_000, dtype=np.float32, seed=0)
    assert ds.rating.dtype == np.float32


# ---------------------------------------------------------------------- metadata
def test_item_metadata():
    ds = make_ratings(100, 60, 2_000, seed=0, name="toy")
    assert ds.name == "toy"
    assert ds.item_title(17) == "Item 17"
    assert ds.item_title(0) == "Item 0"
    for i in range(60):
        g = ds.item_genres(i)
        assert 1 <= len(g) and set(g) <= set(S._GENRES[:10])   # rank 10 -> the first 10 genres
    # genres follow the largest planted coordinate
    _, pf = make_ratings(100, 60, 2_000, seed=0, return_factors=True)
    for i in range(60):
        assert S._GENRES[int(np.argmax(pf.Q[i]))] in ds.item_genres(i)
    assert make_ratings(10, 5, 20, item_info=False).item_info is None


def test_result_passes_full_validation():
    ds = make_ratings(300, 100, 6_000, seed=1, timestamps=True)
    again = Ratings(ds.user_index, ds.item_index, ds.rating, ds.timestamp, user_map=ds.user_map,
                    item_map=ds.item_map, rating_scale=ds.rating_scale)   # the checked path
    assert len(again) == len(ds)


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, match", [
    (dict(n_users=0), r"n_users must be an int in \[1,"),
    (dict(n_users=2.5), r"n_users must be an int"),
    (dict(n_items=-3), r"n_items must be an int in \[1,"),
    (dict(n_ratings=0), r"n_ratings must be an int in \[1,"),
    (dict(n_ratings=10 * 8 + 1), r"n_ratings must be an int in \[10, 80\]"),
    (dict(n_ratings=9), r"n_ratings must be an int in \[10, 80\]"),
    (dict(rank=0), r"rank must be an int in \[1,"),
    (dict(rank=True), r"rank must be an int"),
    (dict(noise=-0.1), r"noise must be a finite number in \[0,"),
    (dict(noise=float("nan")), r"noise must be a finite number"),
    (dict(rating_scale=(5, 1)), r"rating_scale must be a pair \(low, high\)"),
    (dict(rating_scale=(1, 1)), r"rating_scale must be a pair"),
    (dict(rating_scale=(1, float("inf"))), r"rating_scale must be a pair"),
    (dict(rating_scale=5), r"rating_scale must be a pair"),
    (dict(rating_scale=("a", "b")), r"rating_scale must be a pair"),
    (dict(seed=-1), r"seed must be None, a non-negative int"),
    (dict(seed="x"), r"seed must be None"),
    (dict(user_skew=-1), r"user_skew must be a finite number in \[0, 4\]"),
    (dict(item_skew=5), r"item_skew must be a finite number in \[0, 4\]"),
    (dict(round_to=0), r"round_to must be None or a finite number in \(0, inf\)"),
    (dict(round_to=0.3), r"round_to must divide high - low = 4"),
    (dict(min_user_ratings=0), r"min_user_ratings must be None or an int in \[1, inf\)"),
    (dict(min_user_ratings=9), r"min_user_ratings must be an int in \[1, 1\]"),
    (dict(timestamps="yes"), r"timestamps must be one of True, False"),
    (dict(dtype="int32"), r"dtype must be one of 'float32', 'float64'"),
    (dict(dtype="nonsense"), r"dtype must be one of"),
    (dict(dtype=None), r"dtype must be one of"),
    (dict(return_factors=1), r"return_factors must be one of True, False"),
    (dict(item_info=None), r"item_info must be one of True, False"),
    (dict(name=3), r"name must be a str or None"),
])
def test_bad_arguments_raise(kwargs, match):
    args = dict(n_users=10, n_items=8, n_ratings=12)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_ratings(**args)


# ---------------------------------------------------------------------- the item sampler
W6 = np.array([8.0, 4.0, 2.0, 1.0, 1.0, 0.5])


def exact_set_probabilities(w, c):
    """P(set) under successive sampling, by enumerating every ordered sequence of c distinct items."""
    total = w.sum()
    out = {}
    for seq in itertools.permutations(range(len(w)), c):
        p, rest = 1.0, total
        for i in seq:
            p *= w[i] / rest
            rest -= w[i]
        key = tuple(sorted(seq))
        out[key] = out.get(key, 0.0) + p
    return out


def chi_square(items, c, n, w):
    exact = exact_set_probabilities(w, c)
    sets = items.reshape(n, c)
    assert np.all(np.diff(sets, axis=1) > 0)           # distinct and sorted within each user
    keys, counts = np.unique(sets, axis=0, return_counts=True)
    seen = dict(zip(map(tuple, keys.tolist()), counts.tolist()))
    return sum((seen.get(k, 0) - p * n) ** 2 / (p * n) for k, p in exact.items()), len(exact) - 1


@pytest.mark.parametrize("path", ["sparse", "dense", "top-up", "fallback", "inverse-cdf", "reference"])
def test_sampler_matches_successive_sampling(path, monkeypatch):
    n, c = (10_000 if path == "reference" else 30_000), 3      # the reference loops in Python
    calls = {"dense": 0, "draws": 0}
    real_dense, real_draw = S._sample_dense, S._ItemDraws.draw

    def dense(*a, **k):
        calls["dense"] += 1
        return real_dense(*a, **k)

    def draw(self, size, rng):
        calls["draws"] += 1
        return real_draw(self, size, rng)

    monkeypatch.setattr(S, "_sample_dense", dense)
    monkeypatch.setattr(S._ItemDraws, "draw", draw)
    rng = np.random.default_rng(2024)
    counts = np.full(n, c)
    if path == "reference":
        items = S._sample_items_reference(counts, W6, rng)
    else:
        if path in ("top-up", "fallback"):
            monkeypatch.setattr(S, "_FIRST_MARGIN", -1.0)   # too few first draws: users fall short
        if path == "fallback":
            monkeypatch.setattr(S, "_MAX_ROUNDS", 1)
        if path == "inverse-cdf":      # the draw method used above _ALIAS_MAX_ITEMS items
            monkeypatch.setattr(S, "_ALIAS_MAX_ITEMS", 0)
        items = S._sample_items(counts, W6, rng, dense_ratio=0.0 if path == "dense" else 100.0)
        if path == "sparse":
            assert calls["dense"] == 0
        if path == "dense":
            assert calls["dense"] == 1 and calls["draws"] == 0
        if path == "top-up":
            assert calls["draws"] >= 2 and calls["dense"] == 0
        if path == "fallback":
            assert calls["dense"] == 1
    stat, df = chi_square(items, c, n, W6)
    assert stat < 50, f"chi-square {stat:.1f} on {df} degrees of freedom"   # P(chi2_19 > 50) ~ 1e-4


def test_sampler_rejects_a_wrong_distribution():
    # the same statistic flags sampling without the weights (uniform sets)
    rng = np.random.default_rng(0)
    n, c = 30_000, 3
    items = np.sort(np.argsort(rng.random((n, 6)), axis=1)[:, :c], axis=1).reshape(-1)
    stat, _ = chi_square(items, c, n, W6)
    assert stat > 1_000


def test_sampler_mixed_sizes_exact_counts():
    rng = np.random.default_rng(1)
    w = np.exp(rng.normal(0, 2.0, 300))
    counts = rng.integers(1, 301, 500)
    counts[:5] = 300          # whole catalogue
    items = S._sample_items(counts, w, rng, chunk=4_096)   # small chunks: many chunk boundaries
    offsets = np.r_[0, np.cumsum(counts)]
    for u in range(500):
        row = items[offsets[u]:offsets[u + 1]]
        assert row.size == counts[u] and np.all(np.diff(row) > 0) and row.min() >= 0 and row.max() < 300


def test_alias_table_probabilities():
    p = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
    prob, alias = S._alias_table(p)
    n = len(p)
    implied = prob / n
    np.add.at(implied, alias, (1 - prob) / n)
    np.testing.assert_allclose(implied, p, atol=1e-15)


def test_sparse_sampler_wide_keys_fallback_is_identical():
    # keys too wide to pack (item_bits=50) take the stable-argsort branch: same draws, same result
    need = np.random.default_rng(3).integers(1, 40, 200)
    w = np.exp(np.random.default_rng(4).normal(0, 1.5, 120))
    draws = S._ItemDraws(w)
    expect = draws.expected_draws(need.astype(np.float64), 1e4)
    assert np.all(np.isfinite(expect))
    first = np.ceil(expect).astype(np.int64)     # tight: several rounds
    out = []
    for bits in (7, 50):
        keys = S._sample_sparse(need, expect, first, draws, np.random.default_rng(5), bits)
        out.append(((keys >> bits), keys & ((1 << bits) - 1)))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_array_equal(np.bincount(out[0][0], minlength=200), need)


def test_inverse_cdf_catalogue():
    # a catalogue above the alias-table limit uses inverse-CDF draws
    ds = make_ratings(300, S._ALIAS_MAX_ITEMS + 10, 9_000, seed=0, item_info=False)
    assert len(ds) == 9_000
    assert_no_duplicates(ds)
