"""fastmf.TimeSVDpp: the fit replayed with the NumPy twin, the time statistics and the rule for
unseen times, timestamps through predict / recommend / evaluate, files."""

import os

import numpy as np
import pytest

import fastmf
from fastmf import reference as ref
from fastmf.errors import ModelFileError
from fastmf.models import registry
from fastmf.models.bags import implicit_bags
from fastmf.models.timesvd import DAY_SECONDS, TimeSVDpp
from fastmf.persistence import _check_consistency

DAY = DAY_SECONDS
ALL = dict(item_bins=True, user_drift=True, day_bias=True, scaling=True, factor_drift=True, day_factors=True)
STATIC = {k: False for k in ALL}


@pytest.fixture(scope="module")
def data():
    return fastmf.make_ratings(60, 40, 1200, seed=3, timestamps=True)


def small(**kw):
    params = dict(n_factors=4, n_epochs=3, random_state=1, ranking="rating", n_bins=5)
    params.update(kw)
    return TimeSVDpp(**params)


def replay(model, train, n_epochs):
    """The fit of ``model`` recomputed with fastmf.reference.timesvd_epoch."""
    rng = np.random.default_rng(model.random_state)
    k, dt = model.n_factors, np.dtype(model.dtype)
    P = rng.normal(0, model.init_std, (train.n_users, k)).astype(dt)
    Q = rng.normal(0, model.init_std, (train.n_items, k)).astype(dt)
    Y = rng.normal(0, model.init_std, (train.n_items, k)).astype(dt)
    seed = int(rng.integers(0, 2**63 - 1))
    assert seed == model.seed_
    csr = train.to_csr()
    users = np.repeat(np.arange(train.n_users, dtype=np.int32), np.diff(csr.indptr))
    seconds = train.timestamp[train.csr_order()]
    time = model.time_features(users, seconds)
    assert (time[1] >= 0).all()  # every training rating is on a day of the index
    nd, nb = model.user_day_days_.size, model._n_bins()
    m = {"P": P, "Q": Q, "Y": Y, "bu": np.zeros(train.n_users, dt), "bi": np.zeros(train.n_items, dt),
         "bit": np.zeros((train.n_items, nb), dt), "au": np.zeros(train.n_users, dt), "but": np.zeros(nd, dt),
         "cu": np.ones(train.n_users, dt), "cut": np.zeros(nd, dt), "AP": np.zeros((train.n_users, k), dt),
         "PT": np.zeros((nd, k), dt)}
    rates = model.group_rates()
    groups = ("factors", "bias", "implicit", "drift", "day_bias", "bin", "scale", "day_scale", "factor_drift",
              "day_factors")
    hyper = (model.global_mean_, [rates[g][0] for g in groups], [rates[g][1] for g in groups])
    bag = implicit_bags(train)
    for epoch in range(1, n_epochs + 1):
        order = ref.svdpp_user_order(csr.indptr, seed, epoch)
        ref.timesvd_epoch(users, csr.indices, csr.data.astype(dt), order, m, time, bag, hyper)
    return m, bag


def test_fit_equals_the_reference_replay(data):
    model = small(dtype="float64", **ALL).fit(data)
    m, bag = replay(model, data, 3)
    Z = ref.svdpp_user_sums(m["Y"], *bag)
    np.testing.assert_allclose(model.user_factors_, m["P"] + Z, rtol=1e-9, atol=1e-12)
    for attr, name in (("item_factors_", "Q"), ("item_implicit_", "Y"), ("user_bias_", "bu"), ("item_bias_", "bi"),
                       ("item_bin_bias_", "bit"), ("user_drift_", "au"), ("user_day_bias_", "but"),
                       ("user_scale_", "cu"), ("user_day_scale_", "cut"), ("user_factor_drift_", "AP"),
                       ("user_day_factors_", "PT")):
        np.testing.assert_allclose(getattr(model, attr), m[name], rtol=1e-9, atol=1e-12, err_msg=attr)
    assert not np.allclose(model.user_day_bias_, 0) and not np.allclose(model.user_scale_, 1)


def test_effective_rows_once_after_training_equal_the_per_epoch_ones(data):
    """Without an eval set or callbacks the effective user rows P + z are formed once after the last
    epoch, not after each: the fitted model is the same, bit for bit, as a fit observed every epoch."""
    train, valid = fastmf.split.random_split(data, test_size=0.2, random_state=0)
    seen = []
    plain = small(**ALL).fit(train)
    watched = small(**ALL).fit(train, eval_set=valid)
    called = small(**ALL).fit(train, callbacks=[lambda m, entry: seen.append(m.user_factors_.copy())])
    assert len(seen) == 3 and not np.array_equal(seen[0], seen[-1])
    np.testing.assert_array_equal(seen[-1], plain.user_factors_)
    for other in (watched, called):
        for attr in ("user_factors_", "item_factors_", "item_implicit_", "user_bias_", "user_factor_drift_"):
            np.testing.assert_array_equal(getattr(other, attr), getattr(plain, attr), err_msg=attr)


def test_static_model_is_svdpp(data):
    """Every time term off: the same numbers as SVDpp's serial schedule for the same seed."""
    t = small(rescale=False, lr=0.007, reg=0.06, reg_implicit=0.005, **STATIC).fit(data)
    s = fastmf.SVDpp(n_factors=4, n_epochs=3, random_state=1, ranking="rating").fit(data)
    for attr in ("user_factors_", "item_factors_", "item_implicit_", "user_bias_", "item_bias_"):
        np.testing.assert_allclose(getattr(t, attr), getattr(s, attr), rtol=1e-6, atol=1e-7, err_msg=attr)
    u, i, _, ts = data.to_arrays()
    np.testing.assert_allclose(t.predict(u, i, ts), s.predict(u, i), rtol=1e-6)


def test_without_the_implicit_sum_the_implicit_rows_stay_zero(data):
    model = small(implicit_sum=False).fit(data)
    assert not model.item_implicit_.any()
    assert np.isfinite(model.predict(*data.to_arrays()[:2])).all()


def hand_data():
    # user a: days 10, 10, 12, 20 (mean 13); user b: day 30 only; user c: day 40; items w, x, y, z
    days = np.array([10, 10, 12, 20, 30, 40])
    return fastmf.Ratings.from_arrays(["a", "a", "a", "a", "b", "c"], ["x", "y", "z", "w", "y", "z"],
                                      [4, 3, 5, 2, 4, 1], timestamps=days * DAY + 3600, rating_scale=(1, 5))


def test_time_statistics_come_from_the_training_data():
    model = small(n_bins=4, beta=0.5).fit(hand_data())
    a, b, c = model.user_map_.to_index(["a", "b", "c"])
    assert model.first_day_ == 10 and model.last_time_ == 40 * DAY + 3600
    assert model.bin_width_ == 8  # 31 days in 4 bins: ceil(31 / 4)
    assert model.item_bin_bias_.shape == (4, 4)
    np.testing.assert_allclose(model.user_mean_day_[[a, b, c]], [13.0, 30.0, 40.0])
    assert model.user_day_ptr_.tolist() == [0, 3, 4, 5]
    assert model.user_day_days_.tolist() == [10, 12, 20, 30, 40]
    # seen days -> their rows; dev = sign(d - 13) |d - 13|^0.5 with d clamped to [10, 20]
    t = np.array([10, 12, 20, 11, 5, 99]) * DAY
    bins, rows, dev = model.time_features(np.full(6, a), t)
    assert rows.tolist() == [0, 1, 2, -1, -1, -1]
    np.testing.assert_allclose(dev, [-np.sqrt(3), -1, np.sqrt(7), -np.sqrt(2), -np.sqrt(3), np.sqrt(7)])
    assert bins.tolist() == [0, 0, 1, 0, 0, 3]  # (day - 10) // 8, clamped to [0, 3]
    # a user with one day has dev 0 at any time; an unknown user: no row, dev 0
    assert model.time_features(np.array([b, -1]), 12 * DAY)[2].tolist() == [0.0, 0.0]
    assert model.time_features(np.array([-1]), 30 * DAY)[1].tolist() == [-1]
    # default time: the last training timestamp
    assert model.time_features(np.array([c]), None)[1].tolist() == [4]
    assert model.day_seen(np.array([a, a, c]), np.array([10, 11, 40]) * DAY).tolist() == [True, False, True]
    assert small(bin_days=3).fit(hand_data()).bin_width_ == 3


def test_unseen_times_fall_back_by_the_documented_rule(data):
    model = small(**ALL).fit(data)
    last = model.last_time_
    u, i = data.user_map.ids[:20], data.item_map.ids[:20]
    # beyond the training days: no day term, last bin, dev capped: any later time predicts the same
    np.testing.assert_array_equal(model.predict(u, i, last + 2 * DAY), model.predict(u, i, last + 900 * DAY))
    first = model.first_day_ * DAY
    np.testing.assert_array_equal(model.predict(u, i, first - 2 * DAY), model.predict(u, i, first - 500 * DAY))
    # an unseen day inside the range: the formula with the day terms taken as 0
    uu = model.user_map_.to_index(u)
    ii = model.item_map_.to_index(i)
    t = np.full(20, last - 1000 * DAY)
    bins, rows, dev = model.time_features(uu, t)
    got = model.predict(u, i, t, clip=False)
    for n in range(20):
        m = formula_model(model, zero_day=rows[n] < 0)
        d = max(rows[n], 0)
        want = ref.timesvd_predict(int(uu[n]), int(ii[n]), int(bins[n]), d, float(dev[n]), m, EMPTY(model), model.global_mean_)
        assert got[n] == pytest.approx(want, rel=1e-5, abs=1e-5)


def EMPTY(model):
    return (np.zeros(model.n_users_ + 1, np.int64), np.zeros(0, np.int32), np.zeros(model.n_users_))


def formula_model(model, zero_day=False):
    """The fitted state as the twin's model dict (the effective rows as P, no bag)."""
    m = {"P": model.user_factors_, "Q": model.item_factors_, "Y": model.item_implicit_, "bu": model.user_bias_,
         "bi": model.item_bias_, "bit": model.item_bin_bias_, "au": model.user_drift_,
         "but": model.user_day_bias_, "cu": model.user_scale_, "cut": model.user_day_scale_,
         "AP": model.user_factor_drift_, "PT": getattr(model, "user_day_factors_", None)}
    if zero_day:
        for name in ("but", "cut", "PT"):
            if m[name] is not None:
                m[name] = np.zeros_like(m[name])
    return m


def test_predict_at_training_times_is_the_twin_formula(data):
    model = small(**ALL).fit(data)
    u, i, _, ts = data.to_arrays()
    uu, ii = model.user_map_.to_index(u[:30]), model.item_map_.to_index(i[:30])
    bins, rows, dev = model.time_features(uu, ts[:30])
    assert (rows >= 0).all()
    got = model.predict(u[:30], i[:30], ts[:30], clip=False)
    m = formula_model(model)
    want = [ref.timesvd_predict(int(a), int(b), int(c), int(d), float(x), m, EMPTY(model), model.global_mean_)
            for a, b, c, d, x in zip(uu, ii, bins, rows, dev)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # predict_indices and the default time
    np.testing.assert_array_equal(model.predict_indices(uu, ii, clip=False, timestamps=ts[:30]), got)
    np.testing.assert_array_equal(model.predict(u[:30], i[:30]), model.predict(u[:30], i[:30], model.last_time_))
    # datetime64 timestamps are the same times
    as_dt = ts[:30].astype("datetime64[s]")
    np.testing.assert_array_equal(model.predict(u[:30], i[:30], as_dt, clip=False), got)


def test_recommend_at_a_time_ranks_by_the_prediction_at_that_time(data):
    model = small(**ALL).fit(data)
    user = data.user_map.ids[3]
    t = model.first_day_ * DAY + 5 * DAY
    ids, scores = model.recommend(user, n=5, timestamps=t, exclude_seen=False)
    everything = model.predict(np.full(data.n_items, user), data.item_map.ids, t)
    best = np.argsort(-everything, kind="stable")[:5]
    np.testing.assert_allclose(scores, everything[best], rtol=1e-6)
    assert set(ids) == set(data.item_map.ids[best])
    # one timestamp per user in a batch, and the default time
    batch_ids, _ = model.recommend(data.user_map.ids[[3, 4]], n=5, timestamps=[t, t], exclude_seen=False)
    assert np.array_equal(batch_ids[0], ids)
    with pytest.raises(ValueError, match=r"one per user \(2\)"):
        model.recommend(data.user_map.ids[[3, 4]], n=5, timestamps=[t, t, t])
    default = model.recommend(user, n=5)
    assert np.array_equal(default[0], model.recommend(user, n=5, timestamps=model.last_time_)[0])


def test_bad_timestamps_raise(data):
    model = small().fit(data)
    u, i = data.user_map.ids[:2], data.item_map.ids[:2]
    with pytest.raises(ValueError, match=r"timestamps\[1\] = nan is not finite"):
        model.predict(u, i, [1e9, np.nan])


def test_training_without_timestamps_puts_every_rating_at_time_zero():
    ds = fastmf.make_ratings(30, 20, 300, seed=1)
    model = small(**ALL).fit(ds)
    assert model.first_day_ == 0 and model.last_time_ == 0
    assert model.user_day_days_.size == np.count_nonzero(model.user_counts_)
    assert np.isfinite(model.predict(*ds.to_arrays()[:2])).all()


def test_evaluate_splits_the_error_by_day_seen(data):
    train, test = fastmf.split.random_split(data, test_size=0.3, random_state=0)
    model = small(**ALL).fit(train)
    got = fastmf.evaluate(model, test)
    n_s, n_u = got["n_day_seen"], got["n_day_unseen"]
    assert n_s + n_u == len(test) and n_s > 0 and n_u > 0
    total = n_s * got["rmse_day_seen"] ** 2 + n_u * got["rmse_day_unseen"] ** 2
    assert total == pytest.approx(len(test) * got["rmse"] ** 2, rel=1e-9)
    seen = model.day_seen(test.user_index, test.timestamp)
    assert int(seen.sum()) == n_s
    # predictions at the test's times (not the default time)
    u, i, r, ts = test.to_arrays()
    pred = model.predict(u, i, ts)
    assert got["rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - r) ** 2))), rel=1e-9)
    # models without time report no such split
    assert "n_day_seen" not in fastmf.evaluate(fastmf.SVDpp(n_factors=4, n_epochs=2).fit(train), test)


def test_eval_set_is_predicted_at_its_times(data):
    train, valid = fastmf.split.random_split(data, test_size=0.3, random_state=0)
    model = small(**ALL).fit(train, eval_set=valid)
    assert model.history_[-1]["eval_rmse"] == pytest.approx(fastmf.evaluate(model, valid)["rmse"], rel=1e-9)


def test_save_load_round_trip_with_every_term(data, tmp_path):
    model = small(**ALL).fit(data)
    loaded = fastmf.load(model.save(tmp_path / "t.npz"))
    u, i, _, ts = data.to_arrays()
    np.testing.assert_array_equal(loaded.predict(u, i, ts), model.predict(u, i, ts))
    assert loaded.get_params() == model.get_params()


def test_loaded_state_is_checked(data):
    model = small(**ALL).fit(data)
    entry = registry.get("timesvdpp")
    good = {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}
    _check_consistency("t", entry, model.get_params(), good)
    bad_cases = {
        "user_day_days_": lambda v: v[::-1].copy(),
        "user_day_ptr_": lambda v: np.r_[1, v[1:]].astype(np.int64),
        "first_day_": lambda v: model.last_time_ // DAY + 5,
        "bin_width_": lambda v: v * 3,
        "user_day_scale_": lambda v: None,
    }
    for name, corrupt in bad_cases.items():
        values = dict(good)
        values[name] = corrupt(good[name])
        if values[name] is None:
            values.pop(name)
        with pytest.raises(ModelFileError):
            _check_consistency("t", entry, model.get_params(), values, error=ModelFileError)


def test_switched_off_terms_are_absent(data):
    model = small(**STATIC).fit(data)
    for attr in ("item_bin_bias_", "user_drift_", "user_day_bias_", "user_scale_", "user_day_scale_",
                 "user_factor_drift_", "user_day_factors_"):
        assert not hasattr(model, attr)
    on = small(**ALL).fit(data)
    assert on.user_day_factors_.shape == (on.user_day_days_.size, 4)
    small(**STATIC).fit(data)  # refit after a fit with the terms: they go
    on.set_params(**STATIC).fit(data)
    assert not hasattr(on, "user_day_factors_")


def test_group_rates_rescale_to_the_rating_range():
    ds = fastmf.Ratings.from_arrays([1, 2], [1, 2], [1.0, 9.0], timestamps=[0, DAY], rating_scale=(1, 9))
    m = small().fit(ds)
    r = m.group_rates()  # s = 8 / 4 = 2
    assert r["bias"] == (0.003, 0.005)
    assert r["factors"] == (0.008 / 2, 0.053 * 2)
    assert r["scale"] == (0.002 / 4, 0.01 * 4)
    assert r["implicit"] == (0.008 / 2, 0.015 * 2)
    assert small(rescale=False).fit(ds).group_rates()["scale"] == (0.002, 0.01)


def test_fold_in_scores_new_users_without_time_terms(data):
    model = small(**ALL).fit(data)
    items = list(data.item_map.ids[:5])
    x, b = model.fold_in(items, [5, 4, 3, 2, 1])
    assert x.shape == (4,) and np.isfinite(b)
    ids, scores = model.recommend_new(items, [5, 4, 3, 2, 1], n=5)
    assert len(ids) == 5 and not set(items) & set(ids)


def test_bad_hyper_parameters(data):
    for bad in ({"n_bins": 0}, {"bin_days": 0}, {"beta": -1}, {"lr_scale": -1.0}, {"day_bias": 1}):
        with pytest.raises(ValueError, match=list(bad)[0]):
            small(**bad).fit(data)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::fastmf.errors.EvaluationWarning")
def test_ml_latest_small_beats_svdpp_and_mf_on_both_splits():
    root = os.environ.get("FASTMF_DATA")
    if not root or not os.path.isdir(os.path.join(root, "ml-latest-small")):
        pytest.skip("needs $FASTMF_DATA/ml-latest-small")
    ds = fastmf.load_movielens("ml-latest-small", path=os.path.join(root, "ml-latest-small"), download=False)
    for train, test in (fastmf.split.leave_last_out(ds, k=5), fastmf.split.temporal_split(ds, test_size=0.2)):
        t = fastmf.TimeSVDpp(random_state=0, ranking="rating").fit(train)
        s = fastmf.SVDpp(random_state=0, ranking="rating").fit(train)
        m = fastmf.MatrixFactorization(random_state=0, ranking="rating").fit(train)
        got = {name: fastmf.evaluate(x, test)["rmse"] for name, x in (("t", t), ("s", s), ("m", m))}
        assert got["t"] < min(got["s"], got["m"]), got
