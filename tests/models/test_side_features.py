"""Side features (issue 16): feature matrices, cold splits, the feature-to-factor map of every
factor model, add_items / add_users, similar_to_features, cold/warm rows of evaluate."""

from __future__ import annotations

import numpy as np
import pytest

import fastmf
from fastmf.data.features import Features, as_feature_rows, normalize_rows
from fastmf.data.ratings import IdMap, Metadata
from fastmf.errors import DataError
from fastmf.split import item_cold_split, user_cold_split

FACTOR_MODELS = {
    "mf-sgd": lambda: fastmf.MatrixFactorization(n_factors=4, n_epochs=15, random_state=0),
    "mf-als": lambda: fastmf.MatrixFactorization(n_factors=4, n_epochs=5, solver="als", random_state=0),
    "ials": lambda: fastmf.ImplicitALS(n_factors=4, n_epochs=4, random_state=0),
    "bayes": lambda: fastmf.BayesianMF(n_factors=3, n_samples=10, burn_in=3, keep_samples=2, random_state=0),
}


def _data(n_users=40, n_items=30, seed=0):
    """Ratings whose items carry a genre that decides their mean rating, with item metadata."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, 3, n_items)
    pairs = rng.choice(n_users * n_items, 900, replace=False)  # distinct (user, item) pairs
    users, items = pairs // n_items, pairs % n_items
    ratings = np.clip(np.round(np.array([1.5, 3.0, 4.5])[genre[items]] + rng.normal(0, 0.5, 900)), 1, 5)
    info = Metadata(np.arange(n_items), {"title": np.array([f"m{j}" for j in range(n_items)]),
                                         "genres": np.array(["Drama", "Comedy", "Action|War"])[genre],
                                         "year": rng.integers(1940, 2000, n_items)})
    uinfo = Metadata(np.arange(n_users), {"age": rng.integers(10, 70, n_users),
                                          "gender": rng.choice(["F", "M"], n_users),
                                          "occupation": rng.choice(["a", "b", "c"], n_users)})
    ds = fastmf.Ratings.from_arrays(users, items, ratings, rating_scale=(1, 5), item_info=info,
                                    user_info=uinfo)
    return ds, genre


# ---------------------------------------------------------------------- features
def test_item_features_from_metadata_are_aligned_and_normalised():
    ds, genre = _data()
    F = ds.item_features("genres")
    assert isinstance(F, Features) and F.shape == (ds.n_items, 4)
    assert F.names == ("genre=Action", "genre=Comedy", "genre=Drama", "genre=War")
    np.testing.assert_array_equal(F.ids, ds.item_map.ids)
    for j, raw in enumerate(ds.item_map.ids):
        row = F.values[j]
        if genre[raw] == 2:  # Action|War: two ones, scaled by 1/sqrt(2)
            np.testing.assert_allclose(row, [2 ** -0.5, 0, 0, 2 ** -0.5])
        else:
            assert row[2 if genre[raw] == 0 else 1] == 1.0 and row.sum() == 1.0
    raw = ds.item_features("genres", "year", normalize=False)
    assert raw.values.shape[1] == 4 + 12 and set(np.unique(raw.values)) <= {0.0, 1.0}
    np.testing.assert_array_equal(raw.values[:, 4:].sum(axis=1), 1)  # one year bin each


def test_user_features_and_errors():
    ds, _ = _data()
    U = ds.user_features("gender", normalize=False)
    assert U.names == ("gender=F", "gender=M")
    np.testing.assert_array_equal(U.values.sum(axis=1), 1)
    assert ds.user_features().shape[1] == 7 + 2 + 3
    with pytest.raises(ValueError, match="unknown feature set 'colour'"):
        ds.item_features("colour")
    bare = fastmf.Ratings.from_arrays([1, 2], [1, 2], [3.0, 4.0])
    with pytest.raises(DataError, match="no item genres metadata"):
        bare.item_features("genres")


def test_missing_metadata_rows_are_empty():
    info = Metadata(np.array([10]), {"genres": np.array(["Drama"]), "year": np.array([-1])})
    ds = fastmf.Ratings.from_arrays([1, 1], [10, 11], [3.0, 4.0], item_info=info)
    F = ds.item_features("genres", "year")
    np.testing.assert_array_equal(F.values[ds.item_map.to_index(11)], 0)  # no metadata: empty row
    np.testing.assert_array_equal(F.values[ds.item_map.to_index(10)], [1.0] + [0.0] * 12)  # unknown year


def test_as_feature_rows_inputs():
    id_map = IdMap(np.array([5, 7, 9]))
    X, names = as_feature_rows(np.eye(3), id_map)
    np.testing.assert_array_equal(X, np.eye(3)) and names == ("f0", "f1", "f2")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 3.0]}, index=[9, 42])  # 42 unknown, 5 & 7 missing
    X, names = as_feature_rows(frame, id_map)
    assert names == ("a", "b")
    np.testing.assert_array_equal(X, [[0, 0], [0, 0], [1, 0]])
    sp = pytest.importorskip("scipy.sparse")
    X, _ = as_feature_rows(sp.csr_matrix(np.eye(3)), id_map)
    np.testing.assert_array_equal(X, np.eye(3))
    with pytest.raises(DataError, match="has 2 rows but the data has 3 items"):
        as_feature_rows(np.ones((2, 2)), id_map)
    with pytest.raises(DataError, match=r"item_features\[1, 0\] = nan is not finite"):
        as_feature_rows(np.array([[1.0], [np.nan], [0.0]]), id_map)
    with pytest.raises(DataError, match="must be 2-D"):
        as_feature_rows(np.ones(3), id_map)


def test_normalize_rows_keeps_empty_rows():
    X = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(X, [[0.6, 0.8], [0.0, 0.0]])


# ---------------------------------------------------------------------- splits
@pytest.mark.parametrize("split, kind", [(item_cold_split, "item"), (user_cold_split, "user")])
def test_cold_splits_hold_out_whole_rows(split, kind):
    ds, _ = _data()
    train, test = split(ds, 0.2, random_state=3)
    assert len(train) + len(test) == len(ds)
    assert train.item_map is ds.item_map and train.user_map is ds.user_map
    tr_idx = train.item_index if kind == "item" else train.user_index
    te_idx = test.item_index if kind == "item" else test.user_index
    assert not set(tr_idx) & set(te_idx)
    n_rated = np.count_nonzero(np.bincount(ds.item_index if kind == "item" else ds.user_index))
    assert len(set(te_idx)) == int(np.floor(0.2 * n_rated + 0.5))
    again = split(ds, 0.2, random_state=3)[1]
    np.testing.assert_array_equal(again.rating, test.rating)
    assert len(set(split(ds, 5, random_state=0)[1].item_index if kind == "item"
                   else split(ds, 5, random_state=0)[1].user_index)) == 5
    with pytest.raises(DataError, match=f"rated {kind}s"):
        split(ds, 10_000, random_state=0)
    with pytest.raises(ValueError, match="test_size"):
        split(ds, 1.5)


# ---------------------------------------------------------------------- the map
@pytest.mark.parametrize("name", sorted(FACTOR_MODELS))
def test_map_gives_cold_items_their_genre(name):
    ds, genre = _data()
    train, test = item_cold_split(ds, 0.25, random_state=1)
    F = ds.item_features("genres")
    plain = FACTOR_MODELS[name]().fit(train)
    model = FACTOR_MODELS[name]().fit(train, item_features=F)
    warm = model.item_counts_ > 0
    cold = ~warm
    # warm items untouched; cold rows are exactly the map of their features
    np.testing.assert_array_equal(model.item_factors_[warm], plain.item_factors_[warm])
    np.testing.assert_array_equal(model.user_factors_, plain.user_factors_)
    W = model.item_side_map_
    pred = F.values[cold] @ W[:-1] + W[-1]
    np.testing.assert_allclose(model.item_factors_[cold], pred[:, :model.n_factors], rtol=1e-5, atol=1e-6)
    factors, bias = model.side_vectors(F.values[cold])
    np.testing.assert_allclose(factors, model.item_factors_[cold], rtol=1e-5, atol=1e-6)
    if name != "ials":
        np.testing.assert_allclose(bias, model.item_bias_[cold], rtol=1e-5, atol=1e-6)
        # the cold items' predictions follow their genre, and beat the model without features
        err = fastmf.evaluate(model, test, cold_warm=True)["rmse_cold_items"]
        assert err < fastmf.evaluate(plain, test, cold_warm=True)["rmse_cold_items"] - 0.1
        cold_raw = ds.item_map.ids[cold]
        order = np.argsort(model.item_bias_[cold])
        assert genre[cold_raw[order[0]]] <= genre[cold_raw[order[-1]]]
    # save / load keeps the map
    path = model.save(f"{pytest.importorskip('tempfile').mkdtemp()}/m.npz")
    back = fastmf.load(path)
    np.testing.assert_array_equal(back.item_side_map_, model.item_side_map_)
    assert back.item_side_names_ == list(F.names)


def test_recommend_and_similar_reach_cold_items():
    ds, genre = _data()
    train, test = item_cold_split(ds, 0.25, random_state=1)
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=15, random_state=0, ranking="rating").fit(
        train, item_features=ds.item_features("genres"))
    cold_raw = ds.item_map.ids[model.item_counts_ == 0]
    ids, scores = model.recommend(ds.user_map.ids[:3], n=3, items=cold_raw)
    assert set(ids.reshape(-1)) <= set(cold_raw) and np.isfinite(scores).all()
    best = cold_raw[np.argmax(model.item_bias_[model.item_counts_ == 0])]
    assert genre[best] == 2  # the best-rated genre
    # similar items from features alone: the nearest are of the same genre
    action = ds.item_features("genres").values[ds.item_map.to_index(best)]
    got, _ = model.similar_to_features(action, n=3)
    assert set(genre[got]) == {2}
    batch, _ = model.similar_to_features(np.vstack([action, action]), n=3)
    np.testing.assert_array_equal(batch[0], got)
    ev = fastmf.evaluate(model, test, cold_warm=True)
    assert ev["n_cold_items"] == len(test) and ev["n_warm"] == 0
    assert 0 <= ev["ndcg@10_cold_items"] <= 1


def test_add_items_and_users_batched():
    pd = pytest.importorskip("pandas")
    ds, genre = _data()
    F = ds.item_features("genres")
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=15, random_state=0, ranking="rating").fit(
        ds, item_features=F, user_features=ds.user_features())
    n_items = model.n_items_
    frame = pd.DataFrame([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]], index=[100, 101], columns=list(F.names))
    model.add_items([100, 101], frame[list(F.names)[::-1]])  # columns matched by name
    assert model.n_items_ == n_items + 2 and model.item_counts_[-2:].tolist() == [0, 0]
    f2, b2 = model.side_vectors(frame.to_numpy())
    np.testing.assert_allclose(model.item_factors_[-2:], f2, rtol=1e-6)
    np.testing.assert_allclose(model.item_bias_[-2:], b2, rtol=1e-5)
    assert model.predict(0, 101) > model.predict(0, 100)  # Action|War rates higher than Drama
    ids, _ = model.recommend(0, n=model.n_items_, exclude_seen=False)
    assert {100, 101} <= set(ids.tolist())
    model.add_users(np.array([500, 501]), np.eye(12)[:2])
    assert model.n_users_ == ds.n_users + 2 and model.seen_indptr_.size == model.n_users_ + 1
    ids, _ = model.recommend([500, 501], n=2)
    assert ids.shape == (2, 2)
    back = fastmf.load(model.save(f"{pytest.importorskip('tempfile').mkdtemp()}/m.npz"))
    np.testing.assert_array_equal(back.predict([500, 0], [101, 100]), model.predict([500, 0], [101, 100]))
    with pytest.raises(ValueError, match="has ratings"):
        model.add_items([ds.item_map.ids[0]], np.ones((1, 4)))
    with pytest.raises(ValueError, match="4 columns, but the model was fitted with 12"):
        model.add_users([502], np.ones((1, 4)))
    with pytest.raises(KeyError, match="no row for item id 7 "):
        model.add_items([7, 100], frame)
    with pytest.raises(ValueError, match="are missing"):
        model.add_items([102], frame[["genre=War"]])


def test_bayes_add_items_grows_the_kept_draws():
    ds, _ = _data()
    model = FACTOR_MODELS["bayes"]().fit(ds, item_features=ds.item_features("genres"))
    model.add_items([100], np.array([[0.0, 1.0, 0.0, 0.0]]))
    assert model.item_samples_.shape[1] == model.n_items_
    pred, std = model.predict(0, 100, return_std=True)
    assert np.isfinite(pred) and std > 0
    fastmf.load(model.save(f"{pytest.importorskip('tempfile').mkdtemp()}/m.npz"))


def test_user_cold_with_demographics():
    ds, _ = _data()
    train, test = user_cold_split(ds, 0.25, random_state=0)
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=15, random_state=0).fit(
        train, user_features=ds.user_features())
    cold = model.user_counts_ == 0
    np.testing.assert_allclose(model.user_factors_[cold], model.side_vectors(
        ds.user_features().values[cold], kind="user")[0], rtol=1e-5, atol=1e-6)
    ev = fastmf.evaluate(model, test, cold_warm=True)
    assert ev["n_cold_users"] == len(test) and np.isfinite(ev["rmse_cold_users"])


def test_without_features_nothing_changes_and_errors_are_clear():
    ds, _ = _data()
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=5, random_state=0).fit(ds)
    assert model.item_side_map_ is None and model.user_side_targets_ is None
    with pytest.raises(ValueError, match="fitted without item features"):
        model.add_items([100], np.ones((1, 4)))
    with pytest.raises(ValueError, match="side"):  # joint mode is MatrixFactorization's (test_side_joint.py)
        fastmf.ImplicitALS(side="joint").fit(ds)
    with pytest.raises(ValueError, match="side_reg"):
        fastmf.ImplicitALS(side_reg=-1.0).fit(ds)
    with pytest.raises(DataError, match="item_features has 3 rows"):
        fastmf.MatrixFactorization(n_epochs=1).fit(ds, item_features=np.ones((3, 2)))
    # a refit without features forgets the map; partial_fit drops it too
    fitted = fastmf.MatrixFactorization(n_factors=4, n_epochs=5, random_state=0).fit(
        ds, item_features=ds.item_features("genres"))
    fitted.partial_fit(ds, 1)
    assert fitted.item_side_map_ is None


def test_hostile_side_state_is_refused(tmp_path):
    ds, _ = _data()
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0).fit(
        ds, item_features=ds.item_features("genres"))
    model.item_side_targets_ = ["item_factors_", "seen_indptr_"]
    with pytest.raises(ValueError, match="item_side_targets_ must be"):
        model.save(tmp_path / "m.npz")
    model.item_side_targets_ = ["item_factors_", "item_bias_", "item_engagement_"]
    model.item_side_names_ = ["a"]
    with pytest.raises(ValueError, match="1 names for the 4 feature rows"):
        model.save(tmp_path / "m.npz")


def test_evaluate_without_cold_rows_has_no_cold_keys():
    ds, _ = _data()
    train, test = fastmf.split.random_split(ds, 0.2, random_state=0, cold="drop")
    ev = fastmf.evaluate(fastmf.Biases().fit(train), test, cold_warm=True)
    assert not any("cold" in key or "warm" in key for key in ev)


def test_evaluate_reports_cold_rows_only_when_asked():
    ds, _ = _data()
    train, test = item_cold_split(ds, 0.2, random_state=0)
    ev = fastmf.evaluate(fastmf.Biases().fit(train), test)
    assert not any("cold" in key or "warm" in key for key in ev)
    with pytest.raises(ValueError, match="cold_warm must be True or False"):
        fastmf.evaluate(fastmf.Biases().fit(train), test, cold_warm="yes")


def test_evaluate_cold_warm_parts_are_the_metrics_of_their_rows():
    ds, _ = _data()
    train, test = item_cold_split(ds, 0.2, random_state=0)
    extra_train, extra_test = fastmf.split.random_split(train, 0.1, random_state=0, cold="drop")
    test_all = test.concat(extra_test)
    model = fastmf.Biases().fit(extra_train)
    ev = fastmf.evaluate(model, test_all, cold_warm=True)
    cold_part = fastmf.evaluate(model, test, cold_warm=True)
    warm_part = fastmf.evaluate(model, extra_test, cold_warm=True)
    assert ev["n_cold_items"] == len(test) and ev["n_warm"] == len(extra_test)
    assert ev["rmse_cold_items"] == pytest.approx(cold_part["rmse"])
    assert ev["rmse_warm"] == pytest.approx(warm_part["rmse"])


@pytest.mark.parametrize("name", ["mf-sgd", "mf-als", "bayes"])
def test_fold_in_with_features_centres_the_solve_on_the_map(name):
    ds, _ = _data()
    U = ds.user_features()
    model = FACTOR_MODELS[name]().fit(ds, user_features=U)
    x = U.values[0]
    mapped, mapped_bias = model.side_vectors(x, kind="user")
    got = model.fold_in([], [], features=x)
    factors = got[0] if isinstance(got, tuple) else got
    np.testing.assert_array_equal(factors, mapped)
    # with ratings: the solve of the residuals after the mapped prediction, added to the map
    items, ratings = ds.item_map.ids[:5], np.array([5.0, 4.0, 1.0, 2.0, 3.0])
    with_f = model.fold_in(items, ratings, features=x)
    idx = model.item_map_.to_index(items)
    offset = model.item_factors_[idx].astype(float) @ mapped.astype(float) + mapped_bias
    delta = model._row_solver("user")(idx, ratings - offset)
    f = with_f[0] if isinstance(with_f, tuple) else with_f
    np.testing.assert_allclose(f, mapped + delta[0], rtol=1e-5, atol=1e-6)
    if isinstance(with_f, tuple):
        assert with_f[1] == pytest.approx(mapped_bias + delta[1])
    plain = model.fold_in(items, ratings)
    assert not np.allclose(f, plain[0] if isinstance(plain, tuple) else plain)


def test_implicit_fold_in_with_features():
    ds, _ = _data()
    model = FACTOR_MODELS["ials"]().fit(ds, user_features=ds.user_features())
    x = ds.user_features().values[1]
    np.testing.assert_array_equal(model.fold_in([], features=x), model.side_vectors(x, kind="user")[0])
    with pytest.raises(ValueError, match="features or interactions, not both"):
        model.fold_in(ds.item_map.ids[:2], features=x)
    with pytest.raises(ValueError, match="one row"):
        model.fold_in([], features=np.vstack([x, x]))


def test_mf_fold_in_with_features_minimises_the_centred_objective():
    # independent of the implementation: the normal equations of
    # sum (r - mu - b_i - b - q_i.p)^2 + lam_b (b - b_hat)^2 + lam ||p - p_hat||^2
    ds, _ = _data()
    U = ds.user_features()
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=5, solver="als", random_state=0,
                                       dtype="float64").fit(ds, user_features=U)
    x = U.values[2]
    p_hat, b_hat = model.side_vectors(x, kind="user")
    items, ratings = ds.item_map.ids[[1, 4, 6]], np.array([5.0, 2.0, 4.0])
    p, b = model.fold_in(items, ratings, features=x)
    idx = model.item_map_.to_index(items)
    Z = np.column_stack([np.ones(3), model.item_factors_[idx]])
    t = ratings - model.global_mean_ - model.item_bias_[idx]
    lam, lam_b = model._row_regularisation(3)
    D = np.diag(np.r_[lam_b, np.full(4, lam)])
    s = np.linalg.solve(Z.T @ Z + D, Z.T @ t + D @ np.r_[b_hat, p_hat])
    np.testing.assert_allclose(np.r_[b, p], s, rtol=1e-9, atol=1e-12)
