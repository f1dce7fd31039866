"""csrc/svdpp.c (through fastmf._svdpp) against its NumPy twins in fastmf.reference.svdpp."""

import numpy as np
import pytest

from fastmf import _sgd, _svdpp
from fastmf import reference as ref
from fastmf.models.bags import bag_weights

NU, NI, K = 30, 25, 5
HYPER = (3.0, 0.01, 0.05, 0.02, 0.01, 0.015, 0.1)


def problem(implicit_other=False, seed=0):
    rng = np.random.default_rng(seed)
    pairs = np.sort(rng.choice(NU * NI, 300, replace=False))
    users, items = (pairs // NI).astype(np.int32), (pairs % NI).astype(np.int32)
    ratings = rng.integers(1, 6, 300).astype(np.float64)
    if implicit_other:  # N(u) not the rated items; some users with an empty bag
        mask = rng.random((NU, NI)) < 0.2
        mask[:4] = False
        rows, cols = np.nonzero(mask)
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=NU))].astype(np.int64)
        bag = (indptr, cols.astype(np.int32), bag_weights(indptr))
    else:
        indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=NU))].astype(np.int64)
        bag = (indptr, items.copy(), bag_weights(indptr))
    return users, items, ratings, bag


def model(dtype=np.float64, seed=1):
    g = np.random.default_rng(seed)
    return (g.normal(0, .1, (NU, K)).astype(dtype), g.normal(0, .1, (NI, K)).astype(dtype),
            g.normal(0, .1, (NI, K)).astype(dtype), g.normal(0, .1, NU).astype(dtype),
            g.normal(0, .1, NI).astype(dtype))


def rating_csr(users):
    return np.r_[0, np.cumsum(np.bincount(users, minlength=NU))].astype(np.int64)


def test_user_order_matches_twin_and_groups_users():
    users, _, _, _ = problem()
    indptr = rating_csr(users)
    order = _svdpp.user_order(indptr, 7, 3)
    assert np.array_equal(order, ref.svdpp_user_order(indptr, 7, 3))
    assert np.array_equal(np.sort(order), np.arange(users.size))
    # each user's ratings form one run
    runs = np.flatnonzero(np.diff(users[order]) != 0).size + 1
    assert runs == np.count_nonzero(np.diff(indptr))
    assert not np.array_equal(order, _svdpp.user_order(indptr, 7, 4))


@pytest.mark.parametrize("implicit_other", [False, True])
@pytest.mark.parametrize("grouped", [True, False])
def test_serial_epoch_equals_per_rating_rule(implicit_other, grouped):
    users, items, ratings, bag = problem(implicit_other)
    order = (_svdpp.user_order(rating_csr(users), 5, 1) if grouped
             else np.random.default_rng(2).permutation(users.size).astype(np.int64))
    a, b = model(), model()
    s1 = _svdpp.svdpp_epoch(users, items, ratings, order, a, bag, HYPER)
    s2 = ref.svdpp_epoch(users, items, ratings, order, b, bag, HYPER)
    assert s1 == pytest.approx(s2, rel=1e-12)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-13)


def test_serial_epoch_float32():
    users, items, ratings, bag = problem()
    order = _svdpp.user_order(rating_csr(users), 5, 1)
    a, b = model(np.float32), model(np.float32)
    _svdpp.svdpp_epoch(users, items, ratings.astype(np.float32), order, a, bag, HYPER)
    ref.svdpp_epoch(users, items, ratings, order, b, bag, HYPER)
    for x, y in zip(a, b):
        assert x.dtype == np.float32
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("implicit_other", [False, True])
def test_blocked_epoch_equals_delayed_rule_and_any_thread_count(implicit_other):
    from fastmf.models.svdpp import _delayed_decay, _delayed_gain

    users, items, ratings, bag = problem(implicit_other)
    plan = _sgd.make_block_plan(users, items, NU, NI, 4)
    out = []
    for nt in (1, 2, 3):
        m = model()
        Z = ref.svdpp_user_sums(m[2], *bag)
        G = np.zeros_like(Z)
        sse = _svdpp.svdpp_epoch_blocked(users, items, ratings, m, bag, HYPER, Z, G, plan, 5, 2, n_threads=nt)
        # the end-of-sweep y update as fastmf.models.svdpp applies it
        a = 1.0 - HYPER[5] * HYPER[6]
        holders = np.repeat(np.arange(NU), np.diff(bag[0]))
        counts = np.bincount(bag[1], weights=np.bincount(users, minlength=NU)[holders].astype(float),
                             minlength=NI)
        add = np.zeros((NI, K))
        np.add.at(add, bag[1], G[holders])
        m[2][...] = _delayed_decay(a, counts)[:, None] * m[2] + _delayed_gain(a, counts)[:, None] * add
        out.append((sse, m))
    for sse, m in out[1:]:
        assert sse == out[0][0]
        for x, y in zip(m, out[0][1]):
            assert np.array_equal(x, y)
    b = model()
    s2 = ref.svdpp_epoch_delayed(users, items, ratings, _sgd.block_schedule(plan, 5, 2), b, bag, HYPER)
    assert out[0][0] == pytest.approx(s2, rel=1e-12)
    for x, y in zip(out[0][1], b):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-13)


def test_bad_indices_raise_with_position():
    users, items, ratings, bag = problem()
    order = _svdpp.user_order(rating_csr(users), 5, 1)
    bad = items.copy()
    bad[order[7]] = NI
    with pytest.raises(IndexError, match=rf"items\[{order[7]}\] = {NI} is outside \[0, {NI}\)"):
        _svdpp.svdpp_epoch(users, bad, ratings, order, model(), bag, HYPER)
    o = order.copy()
    o[3] = 10_000
    with pytest.raises(IndexError, match=r"order\[3\] = 10000 is not a rating position"):
        _svdpp.svdpp_epoch(users, items, ratings, o, model(), bag, HYPER)
    b_items = bag[1].copy()
    b_items[0] = -1
    with pytest.raises(IndexError, match=r"bag_items\[0\] = -1 is outside"):
        _svdpp.svdpp_epoch(users, items, ratings, order, model(), (bag[0], b_items, bag[2]), HYPER)
    with pytest.raises(ValueError, match="bag_ptr must rise"):
        _svdpp.svdpp_epoch(users, items, ratings, order, model(), (bag[0][::-1].copy(), bag[1], bag[2]), HYPER)
    with pytest.raises(ValueError, match="P and Q must not share memory|must not share memory"):
        m = model()
        _svdpp.svdpp_epoch(users, items, ratings, order, (m[0], m[1], m[1], m[3], m[4]), bag, HYPER)


def test_divergence_raises_floating_point_error():
    users, items, ratings, bag = problem()
    order = _svdpp.user_order(rating_csr(users), 5, 1)
    with pytest.raises(FloatingPointError, match="SVD\\+\\+ diverged"):
        for _ in range(50):
            _svdpp.svdpp_epoch(users, items, ratings * 1e30, order, model(), bag, (3.0, 5.0, 0, 5.0, 0, 5.0, 0))
