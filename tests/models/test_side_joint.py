"""side="joint" (issue 16): feature factors learned with MatrixFactorization by SGD. The fit is
replayed through the NumPy twin; cold items are served from their feature part; the model is the
same for any thread count; save / load keeps it."""

from __future__ import annotations

import numpy as np
import pytest

import fastmf
from fastmf import reference as ref
from fastmf.data.ratings import Metadata
from fastmf.models.side import feature_csr
from fastmf.split import item_cold_split


def _data(n_users=40, n_items=30, seed=0):
    """Ratings whose items carry a genre that decides their mean rating, with item and user metadata."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, 3, n_items)
    pairs = rng.choice(n_users * n_items, 900, replace=False)
    users, items = pairs // n_items, pairs % n_items
    ratings = np.clip(np.round(np.array([1.5, 3.0, 4.5])[genre[items]] + rng.normal(0, 0.5, 900)), 1, 5)
    info = Metadata(np.arange(n_items), {"title": np.array([f"m{j}" for j in range(n_items)]),
                                         "genres": np.array(["Drama", "Comedy", "Action|War"])[genre],
                                         "year": rng.integers(1940, 2000, n_items)})
    uinfo = Metadata(np.arange(n_users), {"age": rng.integers(10, 70, n_users),
                                          "gender": rng.choice(["F", "M"], n_users),
                                          "occupation": rng.choice(["a", "b", "c"], n_users)})
    ds = fastmf.Ratings.from_arrays(users, items, ratings, rating_scale=(1, 5), item_info=info, user_info=uinfo)
    return ds, genre


def joint(**kw):
    params = dict(n_factors=4, n_epochs=12, random_state=0, side="joint", side_dropout=0.3,
                  side_reg_free=0.2, ranking="rating", dtype="float64")
    params.update(kw)
    return fastmf.MatrixFactorization(**params)


@pytest.mark.parametrize("sides", ["item", "both"])
@pytest.mark.parametrize("biased", [True, False])
def test_fit_is_the_twin_replayed(sides, biased):
    """Initial state (the fit with 0 epochs), then each epoch's order and dropout mask through
    fastmf.reference.sgd_side_epoch: the effective parameters and the map equal the model's."""
    ds, _ = _data()
    train, _ = item_cold_split(ds, 0.25, random_state=1)
    F, U = ds.item_features("genres", "year"), ds.user_features()
    feats = dict(item_features=F, user_features=U if sides == "both" else None)
    n_epochs = 3
    model = joint(n_epochs=n_epochs, biased=biased).fit(train, **feats)
    start = joint(n_epochs=0, biased=biased).fit(train, **feats)
    assert start.seed_ == model.seed_
    P, Q = start.user_factors_.copy(), start.item_factors_.copy()
    bu, bi = np.zeros(train.n_users), np.zeros(train.n_items)
    Q[start.item_counts_ == 0] = 0.0
    Xi = F.values
    side_i = (*feature_csr(Xi), np.zeros((Xi.shape[1], 4)), np.zeros(Xi.shape[1]))
    side_u = None
    kinds = ("item",)
    if sides == "both":
        Xu = U.values
        side_u = (*feature_csr(Xu), np.zeros((Xu.shape[1], 4)), np.zeros(Xu.shape[1]))
        kinds = ("user", "item")
    mu = model.global_mean_
    hyper = (mu, model.lr, model.reg, model.reg_bias, 0.2, model.side_reg_features, biased)
    r = train.rating.astype(np.float64)
    for epoch in range(1, n_epochs + 1):
        order = model.epoch_order(epoch, len(train))
        drop = model.joint_dropout_mask(epoch, len(train), kinds)
        assert drop is not None and set(np.unique(drop)) <= {0, 1, 2, 3}
        ref.sgd_side_epoch(train.user_index, train.item_index, r, order, (P, Q, bu, bi), side_u, side_i, hyper, drop)
    np.testing.assert_allclose(model.item_factors_, Q + Xi @ side_i[3], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.item_side_map_[:-1, :4], side_i[3], rtol=1e-9, atol=1e-12)
    assert not model.item_side_map_[-1, :4].any()
    if biased:
        np.testing.assert_allclose(model.item_bias_, bi + Xi @ side_i[4], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.item_side_map_[:-1, 4], side_i[4], rtol=1e-9, atol=1e-12)
    if side_u is not None:
        np.testing.assert_allclose(model.user_factors_, P + Xu @ side_u[3], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.user_side_map_[:-1, :4], side_u[3], rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_allclose(model.user_factors_, P, rtol=1e-9, atol=1e-12)


def test_same_model_for_any_thread_count_and_schedule():
    ds, _ = _data()
    train, _ = item_cold_split(ds, 0.25, random_state=1)
    F = ds.item_features("genres")
    fits = [joint(n_threads=n, schedule=s, dtype="float32").fit(train, item_features=F)
            for n, s in ((1, "blocked"), (2, "blocked"), (2, "hogwild"))]
    for other in fits[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "item_side_map_"):
            assert np.array_equal(getattr(fits[0], name), getattr(other, name)), name
    again = joint(dtype="float32", side_dropout=0.0).fit(train, item_features=F)
    assert not np.array_equal(again.item_factors_, fits[0].item_factors_)  # the dropout mask matters


def test_cold_items_are_served_from_their_features(tmp_path):
    ds, genre = _data()
    train, test = item_cold_split(ds, 0.25, random_state=1)
    F = ds.item_features("genres")
    model = joint(n_epochs=20).fit(train, item_features=F)
    plain = fastmf.MatrixFactorization(n_factors=4, n_epochs=20, random_state=0, ranking="rating",
                                       dtype="float64").fit(train)
    cold = model.item_counts_ == 0
    W = model.item_side_map_
    np.testing.assert_allclose(model.item_factors_[cold], F.values[cold] @ W[:-1, :4], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.item_bias_[cold], F.values[cold] @ W[:-1, 4], rtol=1e-12, atol=1e-14)
    factors, bias = model.side_vectors(F.values[cold])
    np.testing.assert_allclose(factors, model.item_factors_[cold], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bias, model.item_bias_[cold], rtol=1e-12, atol=1e-14)
    # predict for a cold item: mu + b_u + w.x_i + p_u . Z^T x_i
    u, j = 0, int(np.flatnonzero(cold)[0])
    raw_u, raw_i = model.user_map_.ids[u], model.item_map_.ids[j]
    want = (model.global_mean_ + model.user_bias_[u] + F.values[j] @ W[:-1, 4]
            + model.user_factors_[u] @ (F.values[j] @ W[:-1, :4]))
    assert model.predict([raw_u], [raw_i], clip=False)[0] == pytest.approx(want, rel=1e-12)
    ev = fastmf.evaluate(model, test, cold_warm=True)
    assert ev["rmse_cold_items"] < fastmf.evaluate(plain, test, cold_warm=True)["rmse_cold_items"] - 0.1
    cold_raw = ds.item_map.ids[cold]
    ids, scores = model.recommend(ds.user_map.ids[:3], n=3, items=cold_raw)
    assert set(ids.reshape(-1)) <= set(cold_raw) and np.isfinite(scores).all()
    assert genre[cold_raw[np.argmax(model.item_bias_[cold])]] == 2  # the best-rated genre
    got, _ = model.similar_to_features(F.values[j], n=3)
    assert len(got) == 3
    # new items by features alone, then save / load
    model.add_items([1000, 1001], F.values[:2])
    np.testing.assert_allclose(model.item_factors_[-2:], F.values[:2] @ W[:-1, :4], rtol=1e-12, atol=1e-14)
    back = fastmf.load(model.save(tmp_path / "joint.npz"))
    assert back.side == "joint" and back.side_dropout == 0.3
    np.testing.assert_array_equal(back.item_side_map_, model.item_side_map_)
    pairs = (np.repeat(ds.user_map.ids[:4], 3), np.tile(np.r_[cold_raw[:2], 1000], 4))
    np.testing.assert_array_equal(back.predict(*pairs), model.predict(*pairs))


def test_engagement_ranking_and_cold_engagement_rows():
    ds, _ = _data()
    train, _ = item_cold_split(ds, 0.25, random_state=1)
    model = joint(ranking="engagement", engagement_iterations=2).fit(train, item_features=ds.item_features("genres"))
    assert model.item_side_targets_ == ["item_factors_", "item_bias_", "item_engagement_"]
    cold = model.item_counts_ == 0
    W = model.item_side_map_
    X = ds.item_features("genres").values[cold]
    np.testing.assert_allclose(model.item_engagement_[cold], X @ W[:-1, 5:] + W[-1, 5:], rtol=1e-5, atol=1e-6)
    ids, _ = model.recommend(ds.user_map.ids[0], n=5)
    assert len(ids) == 5


def test_joint_errors_and_fallbacks():
    ds, _ = _data()
    F = ds.item_features("genres")
    for bad in ({"side_dropout": 1.0}, {"side_dropout": -0.1}, {"side_reg_free": -1.0},
                {"side_reg_features": -1.0}, {"side": "both"}):
        with pytest.raises(ValueError, match=list(bad)[0]):
            joint(**bad).fit(ds, item_features=F)
    with pytest.raises(ValueError, match="side"):
        fastmf.ImplicitALS(side="joint").fit(ds)
    # without features, side="joint" is the plain model
    a = joint(dtype="float32").fit(ds)
    b = fastmf.MatrixFactorization(n_factors=4, n_epochs=12, random_state=0, ranking="rating").fit(ds)
    assert np.array_equal(a.item_factors_, b.item_factors_) and a.item_side_map_ is None
    # partial_fit continues as plain MF and drops the features
    model = joint().fit(ds, item_features=F)
    model.partial_fit(ds, 1)
    assert model.item_side_map_ is None


def test_eval_set_and_early_stopping_see_the_joint_model():
    ds, _ = _data()
    train, valid = fastmf.split.random_split(ds, 0.2, random_state=0)
    F = ds.item_features("genres")
    model = joint(n_epochs=6).fit(train, item_features=F, eval_set=valid)
    assert model.history_[-1]["eval_rmse"] == pytest.approx(fastmf.evaluate(model, valid)["rmse"], rel=1e-9)
    stopped = joint(n_epochs=40, lr=0.05).fit(train, item_features=F, eval_set=valid, early_stopping_rounds=2)
    assert stopped.best_epoch_ < 40
    straight = joint(n_epochs=stopped.best_epoch_, lr=0.05).fit(train, item_features=F)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "item_side_map_"):
        np.testing.assert_array_equal(getattr(stopped, name), getattr(straight, name))


def test_user_side_joint_serves_new_users_and_fold_in():
    ds, _ = _data()
    U = ds.user_features()
    model = joint().fit(ds, user_features=U)
    x = U.values[0]
    factors, bias = model.side_vectors(x, kind="user")
    W = model.user_side_map_
    np.testing.assert_allclose(factors, x @ W[:-1, :4], rtol=1e-12, atol=1e-14)
    assert bias == pytest.approx(float(x @ W[:-1, 4]), rel=1e-12)
    got = model.fold_in([], [], features=x)
    np.testing.assert_array_equal(got[0], factors)
    model.add_users([500], U.values[:1])
    ids, scores = model.recommend(500, n=5)
    assert len(ids) == 5 and np.isfinite(scores).all()


def test_a_failed_joint_fit_leaves_nothing_for_the_next_fit():
    ds, _ = _data()
    F = ds.item_features("genres")
    model = joint(lr=50.0, n_epochs=3)
    with pytest.raises(fastmf.DivergenceError):
        model.fit(ds, item_features=F)
    model.set_params(lr=0.01, side="map")
    model.fit(ds, item_features=F)
    plain_map = fastmf.MatrixFactorization(**{**model.get_params()}).fit(ds, item_features=F)
    np.testing.assert_array_equal(model.item_side_map_, plain_map.item_side_map_)
