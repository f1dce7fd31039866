"""The contract every registered model keeps, run over every entry of fastmf.models.registry.

A new model gets all of it by registering: parameters round-trip and clone, fit returns self, use
before fit raises NotFittedError, predict takes scalars, arrays and unknown ids, batched and single
recommend agree, recommend_new works, iterative models keep the one history schema, save/load gives
bit-identical answers, a seed fixes the model, and models tagged thread_invariant are the same for
any thread count. What a tag claims is checked too.
"""

import numpy as np
import pytest

import fastmf
from fastmf.errors import NotFittedError
from fastmf.models import registry

ENTRIES = registry.entries()
ids = pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.key)


@pytest.fixture(scope="module")
def data():
    # string ids: raw ids must come back as given, never as indices
    ds = fastmf.make_ratings(80, 50, 1600, seed=11)
    users, items, ratings, _ = ds.to_arrays()
    return fastmf.Ratings.from_arrays([f"u{u}" for u in users], [f"i{i}" for i in items], ratings,
                                      rating_scale=(1, 5))


@pytest.fixture(scope="module")
def split(data):
    return fastmf.split.random_split(data, test_size=0.2, random_state=0)


def small_params(entry, **extra):
    """Parameters that make every model fast on the contract's data."""
    names = entry.cls._param_names()
    params = {}
    if "n_factors" in names:
        params["n_factors"] = 6
    if "n_epochs" in names:
        params["n_epochs"] = 3
    if "random_state" in names:
        params["random_state"] = 5
    params.update(extra)
    return params


def make(entry, **extra):
    return entry.cls(**small_params(entry, **extra))


_FITTED = {}


def fitted(entry, data):
    if entry.key not in _FITTED:
        _FITTED[entry.key] = make(entry).fit(data)
    return _FITTED[entry.key]


def state_arrays(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and isinstance(v, np.ndarray)}


# -------------------------------------------------------------------------------- parameters
@ids
def test_params_round_trip_and_clone(entry):
    model = make(entry)
    params = model.get_params()
    assert set(params) == set(entry.cls._param_names())
    clone = entry.cls(**params)
    assert clone.get_params() == params
    assert model.set_params(**params) is model
    assert repr(model).startswith(entry.class_name + "(")
    with pytest.raises(ValueError, match="no_such_param|invalid parameter"):
        model.set_params(no_such_param=1)


@ids
def test_fit_returns_self_and_declared_state(entry, data):
    model = make(entry)
    assert model.fit(data) is model
    state = {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}
    registry.check_state(entry, model.get_params(), state)


@ids
def test_not_fitted(entry, tmp_path):
    model = make(entry)
    for call in (lambda: model.predict("u1", "i1"), lambda: model.recommend("u1"),
                 lambda: model.save(tmp_path / "m.npz"), lambda: model.similar_items("i1"),
                 lambda: model.recommend_new(["i1"], [4.0])):
        with pytest.raises(NotFittedError):
            call()


# -------------------------------------------------------------------------------- predict
@ids
def test_predict_scalar_array_and_unknown(entry, data):
    model = fitted(entry, data)
    u, i = data.user_map.ids[:5], data.item_map.ids[:5]
    one = model.predict(u[0], i[0])
    assert isinstance(one, float)
    many = model.predict(u, i)
    assert isinstance(many, np.ndarray) and many.shape == (5,) and many[0] == one
    with pytest.raises(KeyError, match="nobody"):
        model.predict("nobody", i[0])
    fallback = model.predict(["nobody", u[1]], [i[0], i[1]], unknown="fallback")
    assert np.isfinite(fallback).all() and fallback[1] == many[1]
    if entry.has("predicts_ratings"):
        low, high = model.rating_scale_
        assert ((many >= low) & (many <= high)).all()


@ids
def test_predict_takes_timestamps(entry, data):
    """``predict(users, items, timestamps=None)`` on every model: models without time ignore them
    (same predictions), after checking there is one per pair."""
    model = fitted(entry, data)
    u, i = data.user_map.ids[:5], data.item_map.ids[:5]
    plain = model.predict(u, i)
    if not entry.has("uses_time"):
        assert np.array_equal(model.predict(u, i, np.arange(5) * 86400), plain)
        assert np.array_equal(model.predict(u, i, timestamps=1e9), plain)
        assert model.predict(u[0], i[0], 1e9) == plain[0]
    with pytest.raises(ValueError, match=r"timestamps must be one number or one per \(user, item\) pair \(5\)"):
        model.predict(u, i, timestamps=np.arange(4))
    with pytest.raises(ValueError, match="timestamps must be numbers"):
        model.predict(u, i, timestamps=["x"] * 5)


# -------------------------------------------------------------------------------- recommend
@ids
def test_batch_and_single_recommend_agree(entry, data):
    model = fitted(entry, data)
    users = data.user_map.ids[[0, 7, 3]]
    batch_ids, batch_scores = model.recommend(users, n=8)
    assert batch_ids.shape == (3, 8)
    for row, user in enumerate(users):
        one_ids, one_scores = model.recommend(user, n=8)
        assert np.array_equal(one_ids, batch_ids[row]) and np.array_equal(one_scores, batch_scores[row])
        seen = set(data.to_arrays()[1][data.to_arrays()[0] == user])
        assert seen and not seen & set(one_ids)
        assert (np.diff(one_scores) <= 0).all()


@ids
def test_recommend_new(entry, data):
    model = fitted(entry, data)
    items = list(data.item_map.ids[:4])
    got, scores = model.recommend_new(items, [5.0, 4.0, 1.0, 3.0], n=10)
    assert len(got) == 10 and not set(items) & set(got)
    assert (np.diff(scores) <= 0).all() and set(got) <= set(data.item_map.ids)


@ids
def test_similar_items(entry, data):
    model = fitted(entry, data)
    item = data.item_map.ids[2]
    if not entry.has("has_factors"):
        with pytest.raises(TypeError, match="has no item factors"):
            model.similar_items(item)
        return
    got, scores = model.similar_items(item, n=5)
    assert len(got) == 5 and item not in set(got) and (np.diff(scores) <= 0).all()
    users, uscores = model.similar_users(data.user_map.ids[0], n=5)
    assert len(users) == 5 and (np.diff(uscores) <= 0).all()


# -------------------------------------------------------------------------------- training
@ids
def test_history_schema(entry, split):
    train, valid = split
    model = make(entry)
    if not entry.has("iterative"):
        model.fit(train)
        assert not hasattr(model, "history_")
        return
    metrics = ["rmse", "ndcg@5"] if entry.has("predicts_ratings") else ["ndcg@5"]
    model.fit(train, eval_set=valid, eval_metrics=metrics)
    h = model.history_
    assert [r["epoch"] for r in h] == list(range(1, len(h) + 1)) and len(h) >= 1
    keys = set(h[0])
    assert {"epoch", "seconds", "eval_ndcg@5"} <= keys
    if entry.has("predicts_ratings"):
        assert {"train_rmse", "eval_rmse"} <= keys
    assert all(set(r) == keys for r in h)
    assert 1 <= model.best_epoch_ <= len(h)
    stopped = make(entry, **{p: 30 for p in ("n_epochs",) if p in entry.cls._param_names()})
    stopped.fit(train, eval_set=valid, eval_metrics=["ndcg@5"], early_stopping="ndcg@5", early_stopping_rounds=2)
    best = max(r["eval_ndcg@5"] for r in stopped.history_)
    assert stopped.history_[stopped.best_epoch_ - 1]["eval_ndcg@5"] == best


@ids
def test_save_load_bit_identical(entry, data, tmp_path):
    model = fitted(entry, data)
    path = model.save(tmp_path / "m.npz")
    loaded = fastmf.load(path)
    assert type(loaded) is entry.cls and loaded.get_params() == model.get_params()
    users, items = data.to_arrays()[0][:50], data.to_arrays()[1][:50]
    assert np.array_equal(loaded.predict(users, items), model.predict(users, items))
    a, b = model.recommend(data.user_map.ids[:10], n=7), loaded.recommend(data.user_map.ids[:10], n=7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    if entry.has("has_factors"):
        s1, s2 = model.similar_items(data.item_map.ids[0]), loaded.similar_items(data.item_map.ids[0])
        assert np.array_equal(s1[0], s2[0]) and np.array_equal(s1[1], s2[1])
    assert fastmf.persistence.read_manifest(path)["model"] == entry.key


@ids
def test_a_seed_fixes_the_model(entry, data):
    if "random_state" not in entry.cls._param_names():
        pytest.skip(f"{entry.class_name} has no random_state: it is deterministic by construction")
    a, b = make(entry).fit(data), make(entry).fit(data)
    other = make(entry, random_state=6).fit(data)
    sa, sb, so = state_arrays(a), state_arrays(b), state_arrays(other)
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    if entry.has("has_factors"):
        assert not np.array_equal(sa["user_factors_"], so["user_factors_"])


@ids
def test_thread_count_invariance(entry, data):
    if not entry.has("thread_invariant"):
        pytest.skip("not tagged thread_invariant")
    if "n_threads" not in entry.cls._param_names():
        return  # single-threaded models are trivially invariant
    big = fastmf.make_ratings(400, 300, 30_000, seed=2)  # over the one-thread threshold of SGD
    one = state_arrays(make(entry, n_threads=1).fit(big))
    two = state_arrays(make(entry, n_threads=2).fit(big))
    assert all(np.array_equal(one[k], two[k]) for k in one)


# -------------------------------------------------------------------------------- tags
def test_batch_and_single_recommend_agree_for_mf_rating_ranking(data):
    """The kernel-scored path of MatrixFactorization (ranking="rating") is batch-invariant too."""
    model = make(registry.get("mf"), ranking="rating").fit(data)
    users = data.user_map.ids[[0, 7, 3]]
    batch = model.recommend(users, n=8)
    for row, user in enumerate(users):
        one = model.recommend(user, n=8)
        assert np.array_equal(one[0], batch[0][row]) and np.array_equal(one[1], batch[1][row])


@ids
def test_tags_tell_the_truth(entry, data):
    model = fitted(entry, data)
    assert entry.has("has_factors") == hasattr(model, "user_factors_")
    assert entry.has("predicts_ratings") == bool(model.predicts_ratings)
    assert entry.has("iterative") == hasattr(model, "history_")
    if not entry.has("needs_ratings"):
        # only which items a user has matters: other rating values give the same ranking
        users, items, ratings, _ = data.to_arrays()
        other = fastmf.Ratings.from_arrays(users, items, 6.0 - ratings, rating_scale=(1, 5))
        a = make(entry).fit(data).recommend(data.user_map.ids[:5], n=5)
        b = make(entry).fit(other).recommend(data.user_map.ids[:5], n=5)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
