"""csrc/sgd_side.c (through fastmf._sgd_side) against its NumPy twin fastmf.reference.sgd_side_epoch."""

import numpy as np
import pytest

from fastmf import _sgd, _sgd_side
from fastmf import reference as ref

NU, NI, K, FU, FI = 30, 25, 5, 4, 6
HYPER = (3.0, 0.02, 0.05, 0.01, 0.2, 0.03, True)


def ratings(seed=0):
    rng = np.random.default_rng(seed)
    pairs = np.sort(rng.choice(NU * NI, 300, replace=False))
    users, items = (pairs // NI).astype(np.int32), (pairs % NI).astype(np.int32)
    return users, items, rng.integers(1, 6, 300).astype(np.float64)


def features(n_rows, n_features, seed):
    """A CSR side with normalised rows, some rows empty, and its feature rows."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_features)) < 0.4
    mask[:3] = False
    rows, cols = np.nonzero(mask)
    vals = rng.random(rows.size) + 0.5
    norms = np.sqrt(np.bincount(rows, vals * vals, minlength=n_rows))
    vals = vals / norms[rows]
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))].astype(np.int64)
    return indptr, cols.astype(np.int32), vals


def state(dtype=np.float64, seed=1, user=True, item=True):
    g = np.random.default_rng(seed)
    model = (g.normal(0, .1, (NU, K)).astype(dtype), g.normal(0, .1, (NI, K)).astype(dtype),
             g.normal(0, .1, NU).astype(dtype), g.normal(0, .1, NI).astype(dtype))
    sides = []
    for on, n, f, s in ((user, NU, FU, 5), (item, NI, FI, 6)):
        sides.append((*features(n, f, s), g.normal(0, .1, (f, K)).astype(dtype), g.normal(0, .1, f).astype(dtype))
                     if on else None)
    return model, sides[0], sides[1]


def arrays(model, us, it):
    out = list(model)
    for side in (us, it):
        if side is not None:
            out += [side[3], side[4]]
    return out


@pytest.mark.parametrize("sides", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("with_drop", [False, True, "features_only"])
def test_epoch_equals_twin(sides, biased, with_drop):
    users, items, r = ratings()
    order = np.random.default_rng(2).permutation(users.size).astype(np.int64)
    drop = np.random.default_rng(3).integers(0, 4, order.size).astype(np.uint8) if with_drop else None
    hyper = HYPER[:6] + (biased,)
    a, b = state(user=sides[0], item=sides[1]), state(user=sides[0], item=sides[1])
    only = with_drop == "features_only"
    s1 = _sgd_side.sgd_side_epoch(users, items, r, order, *a, hyper, drop, features_only=only)
    s2 = ref.sgd_side_epoch(users, items, r, order, *b, hyper, drop, features_only=only)
    assert s1 == pytest.approx(s2, rel=1e-12)
    before = arrays(*state(user=sides[0], item=sides[1]))
    for x, y, z in zip(arrays(*a), arrays(*b), before):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-13)
    # the epoch moved every array that has a rating or feature of a visited row
    moved = [not np.array_equal(x, z) for x, z in zip(arrays(*a), before)]
    assert all(moved[:2])
    assert all(moved[2:4]) == biased


def test_epoch_float32_and_repeatable():
    users, items, r = ratings()
    order = np.random.default_rng(2).permutation(users.size).astype(np.int64)
    drop = np.random.default_rng(3).integers(0, 4, order.size).astype(np.uint8)
    a, b, c = state(np.float32), state(np.float64), state(np.float32)
    _sgd_side.sgd_side_epoch(users, items, r.astype(np.float32), order, *a, HYPER, drop)
    ref.sgd_side_epoch(users, items, r, order, *b, HYPER, drop)
    _sgd_side.sgd_side_epoch(users, items, r.astype(np.float32), order, *c, HYPER, drop)
    for x, y, z in zip(arrays(*a), arrays(*b), arrays(*c)):
        assert x.dtype == np.float32
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
        assert np.array_equal(x, z)


def test_without_features_it_is_plain_sgd():
    """No side features and no dropout: the joint kernel is the per-rating MF rule (sgd_epoch)."""
    users, items, r = ratings()
    order = _sgd.permutation(users.size, 9, 1)
    (P, Q, bu, bi), _, _ = state()
    P2, Q2, bu2, bi2 = P.copy(), Q.copy(), bu.copy(), bi.copy()
    hyper = (3.0, 0.02, 0.05, 0.01, 0.5, 0.5, True)
    s1 = _sgd_side.sgd_side_epoch(users, items, r, order, (P, Q, bu, bi), None, None, hyper)
    s2 = ref.sgd_epoch(users, items, r, order, P2, Q2, bu2, bi2, 3.0, 0.02, 0.05, 0.01)
    assert s1 == pytest.approx(s2, rel=1e-12)
    for x, y in ((P, P2), (Q, Q2), (bu, bu2), (bi, bi2)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-13)


def test_dropped_free_part_is_untouched():
    users, items, r = ratings()
    order = np.arange(users.size, dtype=np.int64)
    model, us, it = state()
    Q0, bi0 = model[1].copy(), model[3].copy()
    _sgd_side.sgd_side_epoch(users, items, r, order, model, us, it, HYPER, np.ones(order.size, np.uint8))
    assert np.array_equal(model[1], Q0) and np.array_equal(model[3], bi0)
    assert not np.array_equal(it[3], state()[2][3])


def test_features_only_moves_only_the_dropped_sides_feature_rows():
    users, items, r = ratings()
    order = np.arange(users.size, dtype=np.int64)
    model, us, it = state()
    before = [a.copy() for a in arrays(model, us, it)]
    _sgd_side.sgd_side_epoch(users, items, r, order, model, us, it, HYPER, np.ones(order.size, np.uint8),
                             features_only=True)
    after = arrays(model, us, it)
    same = [np.array_equal(x, y) for x, y in zip(after, before)]
    assert same == [True, True, True, True, True, True, False, False]  # P Q bu bi, user Z w, item Z w


def test_bad_inputs_raise_with_positions():
    users, items, r = ratings()
    order = np.arange(users.size, dtype=np.int64)
    model, us, it = state()
    bad = order.copy()
    bad[7] = 10_000
    with pytest.raises(IndexError, match=r"order\[7\]"):
        _sgd_side.sgd_side_epoch(users, items, r, bad, model, us, it, HYPER)
    items2 = items.copy()
    items2[5] = NI
    with pytest.raises(IndexError, match=r"items\[5\]"):
        _sgd_side.sgd_side_epoch(users, items2, r, order, model, us, it, HYPER)
    ind = it[1].copy()
    ind[2] = FI + 3
    with pytest.raises(IndexError, match=r"item indices\[2\]"):
        _sgd_side.sgd_side_epoch(users, items, r, order, model, us, (it[0], ind, *it[2:]), HYPER)
    with pytest.raises(ValueError, match="item indptr"):
        _sgd_side.sgd_side_epoch(users, items, r, order, model, us, (it[0][:-1], *it[1:]), HYPER)
    with pytest.raises(ValueError, match="drop"):
        _sgd_side.sgd_side_epoch(users, items, r, order, model, us, it, HYPER, np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="share memory"):
        _sgd_side.sgd_side_epoch(users, items, r, order, model, us, (*it[:3], model[1][:FI], it[4]), HYPER)
    with pytest.raises(FloatingPointError, match="diverged"):
        _sgd_side.sgd_side_epoch(users, items, r * 1e200, order, model, us, it, HYPER)
