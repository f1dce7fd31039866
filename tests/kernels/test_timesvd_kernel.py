"""csrc/timesvd.c (through fastmf._timesvd) against its NumPy twin fastmf.reference.timesvd."""

import numpy as np
import pytest

from fastmf import _svdpp, _timesvd
from fastmf import reference as ref
from fastmf.models.bags import bag_weights

NU, NI, K, NB = 30, 25, 5, 4
LR = (0.01, 0.02, 0.015, 0.003, 0.02, 0.01, 0.02, 0.01, 0.004, 0.01)
REG = (0.05, 0.01, 0.1, 0.5, 0.05, 0.1, 0.01, 0.05, 1.0, 0.05)
HYPER = (3.0, LR, REG)
ALL_TERMS = ("au", "bit", "but", "cu", "cut", "AP", "PT")


def problem(implicit_other=False, seed=0):
    rng = np.random.default_rng(seed)
    pairs = np.sort(rng.choice(NU * NI, 300, replace=False))
    users, items = (pairs // NI).astype(np.int32), (pairs % NI).astype(np.int32)
    ratings = rng.integers(1, 6, 300).astype(np.float64)
    # each user rates on 1-3 days: the user-day rows are consecutive per user
    day_of_user = rng.integers(0, 3, 300)
    keys = users.astype(np.int64) * 3 + day_of_user
    _, days = np.unique(keys, return_inverse=True)
    n_days = int(days.max()) + 1
    time = (rng.integers(0, NB, 300).astype(np.int32), days.astype(np.int64),
            rng.normal(0, 3, 300))
    if implicit_other:  # N(u) not the rated items; some users with an empty bag
        mask = rng.random((NU, NI)) < 0.2
        mask[:4] = False
        rows, cols = np.nonzero(mask)
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=NU))].astype(np.int64)
        bag = (indptr, cols.astype(np.int32), bag_weights(indptr))
    else:
        indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=NU))].astype(np.int64)
        bag = (indptr, items.copy(), bag_weights(indptr))
    return users, items, ratings, time, n_days, bag


def model(n_days, terms=ALL_TERMS, dtype=np.float64, seed=1):
    g = np.random.default_rng(seed)
    m = {"P": g.normal(0, .1, (NU, K)), "Q": g.normal(0, .1, (NI, K)), "Y": g.normal(0, .1, (NI, K)),
         "bu": g.normal(0, .1, NU), "bi": g.normal(0, .1, NI), "au": g.normal(0, .01, NU),
         "bit": g.normal(0, .1, (NI, NB)), "but": g.normal(0, .1, n_days), "cu": 1 + g.normal(0, .1, NU),
         "cut": g.normal(0, .1, n_days), "AP": g.normal(0, .01, (NU, K)), "PT": g.normal(0, .1, (n_days, K))}
    return {n: a.astype(dtype) for n, a in m.items() if n in ("P", "Q", "Y", "bu", "bi") + tuple(terms)}


def rating_csr(users):
    return np.r_[0, np.cumsum(np.bincount(users, minlength=NU))].astype(np.int64)


COMBINATIONS = [(), ("bit",), ("bit", "au"), ("bit", "au", "but"), ("bit", "au", "but", "cu", "cut"),
                ("bit", "au", "but", "cu", "cut", "AP"), ALL_TERMS, ("cu",), ("PT",), ("AP", "au")]


@pytest.mark.parametrize("terms", COMBINATIONS, ids=lambda t: "+".join(t) or "static")
@pytest.mark.parametrize("grouped", [True, False])
def test_epoch_equals_per_rating_rule(terms, grouped):
    users, items, ratings, time, n_days, bag = problem()
    order = (_svdpp.user_order(rating_csr(users), 5, 1) if grouped
             else np.random.default_rng(2).permutation(users.size).astype(np.int64))
    a, b = model(n_days, terms), model(n_days, terms)
    sa = _timesvd.timesvd_epoch(users, items, ratings, order, a, time, bag, HYPER)
    sb = ref.timesvd_epoch(users, items, ratings, order, b, time, bag, HYPER)
    assert sa == pytest.approx(sb, rel=1e-12)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-10, atol=1e-12, err_msg=name)
    assert not np.allclose(a["P"], model(n_days, terms)["P"])  # it moved


@pytest.mark.parametrize("implicit_other", [False, True])
def test_epoch_with_other_bags_and_float32(implicit_other):
    users, items, ratings, time, n_days, bag = problem(implicit_other, seed=3)
    order = _svdpp.user_order(rating_csr(users), 9, 2)
    a, b = model(n_days, dtype=np.float32), model(n_days, dtype=np.float32)
    sa = _timesvd.timesvd_epoch(users, items, ratings.astype(np.float32), order, a, time, bag, HYPER)
    sb = ref.timesvd_epoch(users, items, ratings.astype(np.float32), order, b, time, bag, HYPER)
    assert sa == pytest.approx(sb, rel=1e-5)
    for name in a:
        assert a[name].dtype == np.float32
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_static_model_is_svdpp():
    """With every time term off the update is the SVD++ rule of csrc/svdpp.c."""
    users, items, ratings, time, n_days, bag = problem()
    order = _svdpp.user_order(rating_csr(users), 5, 1)
    lr = (0.01, 0.02, 0.015) + (0.0,) * 7
    reg = (0.05, 0.01, 0.1) + (0.0,) * 7
    a = model(n_days, ())
    b = tuple(a[n].copy() for n in ("P", "Q", "Y", "bu", "bi"))
    sa = _timesvd.timesvd_epoch(users, items, ratings, order, a, time, bag, (3.0, lr, reg))
    sb = _svdpp.svdpp_epoch(users, items, ratings, order, b, bag, (3.0, 0.01, 0.05, 0.02, 0.01, 0.015, 0.1))
    assert sa == pytest.approx(sb, rel=1e-12)
    for name, other in zip(("P", "Q", "Y", "bu", "bi"), b):
        np.testing.assert_allclose(a[name], other, rtol=1e-12, atol=1e-14)


def test_prediction_twin_matches_the_loss():
    users, items, ratings, time, n_days, bag = problem()
    m = model(n_days)
    pred = np.array([ref.timesvd_predict(int(u), int(i), int(b), int(d), float(x), m, bag, 3.0)
                     for u, i, b, d, x in zip(users, items, *time)])
    order = np.arange(users.size, dtype=np.int64)
    # the loss of an epoch with zero learning rates is the loss of the predictions
    sse = _timesvd.timesvd_epoch(users, items, ratings, order, m, time, bag, (3.0, (0.0,) * 10, (0.0,) * 10))
    assert sse == pytest.approx(float(((ratings - pred) ** 2).sum()), rel=1e-12)


@pytest.mark.parametrize("field, value, match", [
    ("order", 10**6, r"order\[3\] = 1000000 is not a rating position"),
    ("bins", NB, r"bins\[\d+\] = 4 is outside \[0, 4\)"),
    ("days", -1, r"days\[\d+\] = -1 is outside"),
    ("items", NI, r"items\[\d+\] = 25 is outside \[0, 25\)"),
])
def test_bad_indices_raise_index_error(field, value, match):
    users, items, ratings, time, n_days, bag = problem()
    order = np.arange(users.size, dtype=np.int64)
    bins, days, dev = (t.copy() for t in time)
    items = items.copy()
    target = {"order": order, "bins": bins, "days": days, "items": items}[field]
    target[3] = value
    with pytest.raises(IndexError, match=match):
        _timesvd.timesvd_epoch(users, items, ratings, order, model(n_days), (bins, days, dev), bag, HYPER)


@pytest.mark.parametrize("entry", [0, 5, 6])
def test_bad_bag_item_raises_index_error_before_any_update(entry):
    """A bag row outside Y, at any place in the implicit sum's groups of four rows, stops the epoch
    before the visit's first update."""
    users, items, ratings, time, n_days, bag = problem()
    order = np.arange(users.size, dtype=np.int64)
    assert bag[0][1] > 6  # entries 0-6 are the bag of user 0, whose visit comes first
    bag_items = bag[1].copy()
    bag_items[entry] = NI
    m = model(n_days)
    before = {n: a.copy() for n, a in m.items()}
    with pytest.raises(IndexError, match=rf"bag_items\[{entry}\] = 25 is outside \[0, 25\)"):
        _timesvd.timesvd_epoch(users, items, ratings, order, m, time, (bag[0], bag_items, bag[2]), HYPER)
    for name in m:
        np.testing.assert_array_equal(m[name], before[name], err_msg=name)


def test_bad_arguments_raise_value_error():
    users, items, ratings, time, n_days, bag = problem()
    order = np.arange(users.size, dtype=np.int64)
    m = model(n_days)
    m["bit"] = m["bit"][:, :2].copy()
    m["but"] = m["but"][:-1].copy()
    with pytest.raises(ValueError, match=r"cut must have shape"):
        _timesvd.timesvd_epoch(users, items, ratings, order, m, time, bag, HYPER)
    m = model(n_days)
    del m["cu"]
    with pytest.raises(ValueError, match="cut .* needs cu"):
        _timesvd.timesvd_epoch(users, items, ratings, order, m, time, bag, HYPER)
    with pytest.raises(ValueError, match="dev must have one entry per rating"):
        _timesvd.timesvd_epoch(users, items, ratings, order, model(n_days), (time[0], time[1], time[2][:5]),
                               bag, HYPER)
    with pytest.raises(ValueError, match="one value per group"):
        _timesvd.timesvd_epoch(users, items, ratings, order, model(n_days), time, bag, (3.0, LR[:3], REG))
    m = model(n_days)
    m["AP"] = m["P"]
    with pytest.raises(ValueError, match="must not share memory"):
        _timesvd.timesvd_epoch(users, items, ratings, order, m, time, bag, HYPER)


def test_divergence_raises_floating_point_error():
    users, items, ratings, time, n_days, bag = problem()
    order = np.arange(users.size, dtype=np.int64)
    with pytest.raises(FloatingPointError, match="timeSVD\\+\\+ diverged"):
        _timesvd.timesvd_epoch(users, items, ratings * 1e30, order, model(n_days), time, bag,
                               (3.0, (10.0,) * 10, (0.0,) * 10))
