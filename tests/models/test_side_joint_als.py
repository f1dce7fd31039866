"""side="joint" with solver="als" (issue 16): the fit is fastmf.reference.als_joint_sweep replayed in
NumPy; cold items are served from their feature part; the model is bit-identical for any thread
count; save / load keeps it; bad input raises."""

from __future__ import annotations

import numpy as np
import pytest

import fastmf
from fastmf import reference as ref
from fastmf.models.side import feature_csr
from fastmf.split import item_cold_split

from test_side_joint import _data


def als_joint(**kw):
    params = dict(n_factors=4, n_epochs=5, random_state=0, solver="als", side="joint", side_reg_free=0.2,
                  ranking="rating", dtype="float64")
    params.update(kw)
    return fastmf.MatrixFactorization(**params)


def _csr_pair(train, dtype=np.float64):
    csr, csc = train.to_csr(), train.to_csc()
    return ((csr.indptr, csr.indices, np.ascontiguousarray(csr.data, dtype=dtype)),
            (csc.indptr, csc.indices, np.ascontiguousarray(csc.data, dtype=dtype)))


@pytest.mark.parametrize("sides", ["item", "both"])
@pytest.mark.parametrize("biased,weighted", [(True, True), (False, True), (True, False)])
def test_fit_is_the_twin_replayed(sides, biased, weighted):
    """The initial state (the fit with 0 sweeps), then every sweep through the all-NumPy
    als_joint_sweep: the effective parameters and the learned map equal the model's."""
    ds, _ = _data()
    train, _ = item_cold_split(ds, 0.25, random_state=1)
    F, U = ds.item_features("genres", "year"), ds.user_features()
    feats = dict(item_features=F, user_features=U if sides == "both" else None)
    n = 3
    model = als_joint(n_epochs=n, biased=biased, weighted=weighted).fit(train, **feats)
    start = als_joint(n_epochs=0, biased=biased, weighted=weighted).fit(train, **feats)
    csr, csc = _csr_pair(train)
    state, jsides = {}, {}
    for kind, P, X in (("user", start.user_factors_, U.values if sides == "both" else None),
                       ("item", start.item_factors_, F.values)):
        eff, b = P.copy(), np.zeros(P.shape[0]) if biased else None
        if X is None:
            state[kind] = (eff, b, eff, b)
            continue
        counts = start.item_counts_ if kind == "item" else start.user_counts_
        free = eff.copy()
        free[counts == 0] = 0.0
        jsides[kind] = (feature_csr(X), feature_csr(np.ascontiguousarray(X.T)), X, np.zeros((X.shape[1], 4)),
                        np.zeros(X.shape[1]))
        state[kind] = (free, None if b is None else b.copy(), eff, b)
    hyper = (model.global_mean_, model.reg, model.reg_bias, 0.2, model.side_reg_features, weighted, biased)
    for _ in range(n):
        ref.als_joint_sweep(csr, csc, state, jsides, hyper)
    np.testing.assert_allclose(model.user_factors_, state["user"][2], rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(model.item_factors_, state["item"][2], rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(model.item_side_map_[:-1, :4], jsides["item"][3], rtol=1e-8, atol=1e-11)
    assert not model.item_side_map_[-1, :4].any()
    if biased:
        np.testing.assert_allclose(model.item_bias_, state["item"][3], rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(model.item_side_map_[:-1, 4], jsides["item"][4], rtol=1e-8, atol=1e-11)
    if sides == "both":
        np.testing.assert_allclose(model.user_side_map_[:-1, :4], jsides["user"][3], rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("linear_solver", ["cholesky", "cg"])
def test_same_model_for_any_thread_count(linear_solver):
    ds, _ = _data()
    train, _ = item_cold_split(ds, 0.25, random_state=1)
    F, U = ds.item_features("genres"), ds.user_features()
    fits = [als_joint(n_threads=n, dtype="float32", linear_solver=linear_solver).fit(train, item_features=F,
                                                                                   user_features=U)
            for n in (1, 2, 3)]
    for other in fits[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "item_side_map_",
                     "user_side_map_"):
            assert np.array_equal(getattr(fits[0], name), getattr(other, name)), name


def test_cold_items_are_served_from_their_features(tmp_path):
    ds, genre = _data()
    train, test = item_cold_split(ds, 0.25, random_state=1)
    F = ds.item_features("genres")
    model = als_joint(n_epochs=8).fit(train, item_features=F)
    plain = fastmf.MatrixFactorization(n_factors=4, n_epochs=8, random_state=0, solver="als", ranking="rating",
                                       dtype="float64").fit(train)
    cold = model.item_counts_ == 0
    W = model.item_side_map_
    np.testing.assert_allclose(model.item_factors_[cold], F.values[cold] @ W[:-1, :4], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.item_bias_[cold], F.values[cold] @ W[:-1, 4], rtol=1e-12, atol=1e-14)
    u, j = 0, int(np.flatnonzero(cold)[0])
    want = (model.global_mean_ + model.user_bias_[u] + F.values[j] @ W[:-1, 4]
            + model.user_factors_[u] @ (F.values[j] @ W[:-1, :4]))
    got = model.predict([model.user_map_.ids[u]], [model.item_map_.ids[j]], clip=False)[0]
    assert got == pytest.approx(want, rel=1e-12)
    ev, ev_plain = fastmf.evaluate(model, test, cold_warm=True), fastmf.evaluate(plain, test, cold_warm=True)
    assert ev["rmse_cold_items"] < ev_plain["rmse_cold_items"] - 0.1
    cold_raw = ds.item_map.ids[cold]
    assert genre[cold_raw[np.argmax(model.item_bias_[cold])]] == 2  # the best-rated genre
    # warm items: the free part is learned too (effective = free + feature part differs from the feature part)
    warm = ~cold
    assert np.abs(model.item_factors_[warm] - F.values[warm] @ W[:-1, :4]).max() > 1e-3
    model.add_items([1000], F.values[:1])
    back = fastmf.load(model.save(tmp_path / "joint_als.npz"))
    assert back.side == "joint" and back.solver == "als"
    np.testing.assert_array_equal(back.item_side_map_, model.item_side_map_)
    pairs = (np.repeat(ds.user_map.ids[:4], 3), np.tile(np.r_[cold_raw[:2], 1000], 4))
    np.testing.assert_array_equal(back.predict(*pairs), model.predict(*pairs))


def test_early_stopping_restores_the_best_sweep():
    ds, _ = _data()
    train, valid = fastmf.split.random_split(ds, 0.2, random_state=0)
    F = ds.item_features("genres")
    model = als_joint(n_epochs=4).fit(train, item_features=F, eval_set=valid)
    assert model.history_[-1]["eval_rmse"] == pytest.approx(fastmf.evaluate(model, valid)["rmse"], rel=1e-9)
    stopped = als_joint(n_epochs=30, reg=0.001, side_reg_free=0.001, side_reg_features=0.0001).fit(
        train, item_features=F, eval_set=valid, early_stopping_rounds=1)
    assert stopped.best_epoch_ < 30
    straight = als_joint(n_epochs=stopped.best_epoch_, reg=0.001, side_reg_free=0.001,
                         side_reg_features=0.0001).fit(train, item_features=F)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "item_side_map_"):
        np.testing.assert_array_equal(getattr(stopped, name), getattr(straight, name))


def test_bad_input_and_fallbacks():
    ds, _ = _data()
    F = ds.item_features("genres")
    for bad in ({"side_reg_free": -1.0}, {"side_reg_features": -1.0}):
        with pytest.raises(ValueError, match=list(bad)[0]):
            als_joint(**bad).fit(ds, item_features=F)
    with pytest.raises(ValueError, match="item_features has 31 rows"):
        als_joint().fit(ds, item_features=np.ones((ds.n_items + 1, 2)))
    # reg_features = 0 and features on items whose ratings span fewer than k + 1 dimensions: a singular
    # system, reported as divergence naming the feature
    users = np.r_[np.repeat(np.arange(10), 3), 0, 1]
    items = np.r_[np.tile(np.arange(3), 10), 3, 3]
    small = fastmf.Ratings.from_arrays(users, items, np.ones(users.size) * 3 + (users % 3), rating_scale=(1, 5))
    X = np.zeros((4, 2))
    X[:3, 0] = 1.0
    X[3, 1] = 1.0
    with pytest.raises(fastmf.DivergenceError, match=r"als_side_features: the system of feature \d is not positive definite; use reg_features > 0"):
        als_joint(side_reg_features=0.0).fit(small, item_features=X)
    # without features, side="joint" is plain ALS
    a = als_joint().fit(ds)
    b = fastmf.MatrixFactorization(n_factors=4, n_epochs=5, random_state=0, solver="als", ranking="rating",
                                   dtype="float64").fit(ds)
    assert np.array_equal(a.item_factors_, b.item_factors_) and a.item_side_map_ is None
    # side_dropout does not apply to ALS: the same model for any value
    c = als_joint(side_dropout=0.0).fit(ds, item_features=F)
    d = als_joint(side_dropout=0.5).fit(ds, item_features=F)
    assert np.array_equal(c.item_factors_, d.item_factors_)
