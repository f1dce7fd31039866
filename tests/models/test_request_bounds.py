"""Requests are bounded: top-n lists are capped at the catalogue, epochs and threads have upper
bounds, and a request whose arrays would not fit in memory is refused up front with
ResourceLimitError (a ValueError) naming what to lower. Bad arguments to the models' public
methods raise ValueError (or KeyError for an unknown id) naming the argument."""

import numpy as np
import pytest

import fastmf
from fastmf import _validation
from fastmf.errors import ResourceLimitError
from fastmf.models import registry


@pytest.fixture(scope="module")
def data():
    return fastmf.make_ratings(60, 45, 900, seed=3)


@pytest.fixture(scope="module")
def models(data):
    out = {}
    for entry in registry.entries():
        names = entry.cls._param_names()
        params = {k: v for k, v in (("n_factors", 4), ("n_epochs", 2), ("random_state", 0)) if k in names}
        out[entry.key] = entry.cls(**params).fit(data)
    return out


@pytest.mark.parametrize("n", [10**8, 10**9, 10**30, np.int64(2**62)])
def test_recommend_n_is_capped_at_the_catalogue(models, data, n):
    for key, model in models.items():
        ids, scores = model.recommend(data.user_map.ids[0], n=n)
        assert ids.shape == (model.n_items_,), key
        ids, scores = model.recommend(data.user_map.ids[:3], n=n)
        assert ids.shape == (3, model.n_items_), key
        ids, scores = model.recommend_new(data.item_map.ids[:2], [3.0, 4.0], n=n)
        assert ids.shape == (model.n_items_,), key
        all_ids = model.recommend_all(n=n)[1]
        assert all_ids.shape == (model.n_users_, model.n_items_), key


def test_similar_n_is_capped(models, data):
    for key in ("mf", "ials"):
        ids, _ = models[key].similar_items(data.item_map.ids[0], n=10**9)
        assert ids.shape == (models[key].n_items_,)
        ids, _ = models[key].similar_users(data.user_map.ids[0], n=10**9)
        assert ids.shape == (models[key].n_users_,)


@pytest.mark.parametrize("cls,param,value", [
    (fastmf.MatrixFactorization, "n_epochs", 10**9), (fastmf.ImplicitALS, "n_epochs", 10**9),
    (fastmf.Biases, "n_epochs", 10**9), (fastmf.MatrixFactorization, "engagement_iterations", 10**9),
    (fastmf.MatrixFactorization, "n_threads", 65536), (fastmf.ImplicitALS, "n_threads", 40000),
    (fastmf.MatrixFactorization, "n_threads", 0), (fastmf.ImplicitALS, "n_factors", 2**40),
])
def test_unbounded_parameters_are_refused_before_any_work(data, cls, param, value):
    model = cls(**{param: value})
    with pytest.raises(ValueError, match=f"{param} must be"):
        model.fit(data)
    assert not hasattr(model, "user_map_")


def test_a_thread_count_above_the_cores_is_clamped_not_a_crash(data):
    a = fastmf.ImplicitALS(n_factors=4, n_epochs=2, random_state=0, n_threads=1024).fit(data)
    b = fastmf.ImplicitALS(n_factors=4, n_epochs=2, random_state=0, n_threads=1).fit(data)
    assert np.array_equal(a.user_factors_, b.user_factors_)
    assert _validation.resolve_n_threads(1024) <= max(8, _validation.available_cores())


@pytest.mark.parametrize("make", [
    lambda: fastmf.MatrixFactorization(n_factors=64, n_epochs=1),
    lambda: fastmf.MatrixFactorization(n_factors=64, n_epochs=1, solver="als"),
    lambda: fastmf.ImplicitALS(n_factors=64, n_epochs=1),
])
def test_a_fit_larger_than_memory_is_refused_up_front(monkeypatch, data, make):
    monkeypatch.setattr(_validation, "total_memory", lambda: 50_000)
    model = make()
    with pytest.raises(ResourceLimitError, match=r"\.fit would need .* more than this machine's .*lower n_factors") as info:
        model.fit(data)
    assert info.value.needed > info.value.available == 50_000
    assert not hasattr(model, "user_map_")


def test_a_recommendation_larger_than_memory_is_refused_up_front(monkeypatch, models, data):
    monkeypatch.setattr(_validation, "total_memory", lambda: 10_000)
    for key, model in models.items():
        with pytest.raises(ResourceLimitError, match="recommend for 60 rows x n=45"):
            model.recommend(data.user_map.ids, n=100)


def test_the_real_machine_refuses_a_huge_als_fit(data):
    # k = 65536: ALS solves (k+1) x (k+1) systems, 34 GB of scratch per thread
    need = 2 * (65536 + 8) ** 2 * 8
    total = _validation.total_memory()
    if total is None or total >= need:
        pytest.skip("this machine has the memory for it")
    with pytest.raises(ResourceLimitError, match="lower n_factors"):
        fastmf.MatrixFactorization(n_factors=65536, solver="als", n_threads=2, ranking="rating").fit(data)


# ------------------------------------------------------------------------------- bad arguments
BAD = [None, "x", -1, 0, 1.5, float("nan"), float("inf"), 10**30, -(10**30), [], [[1, 2]], object(),
       np.array([1.5]), True, b"\x00", {"a": 1}]


def _calls(model, data):
    u, i = data.user_map.ids, data.item_map.ids
    yield "predict users", lambda v: model.predict(v, i[0]), ("users", "user", "shape", "length")
    yield "predict items", lambda v: model.predict(u[0], v), ("items", "item", "shape", "length")
    yield "predict clip", lambda v: model.predict(u[0], i[0], clip=v), ("clip",)
    yield "predict unknown", lambda v: model.predict(u[0], i[0], unknown=v), ("unknown",)
    yield "recommend user", lambda v: model.recommend(v), ("user",)
    yield "recommend n", lambda v: model.recommend(u[0], n=v), ("n",)
    yield "recommend exclude_seen", lambda v: model.recommend(u[0], exclude_seen=v), ("exclude_seen",)
    yield "recommend items", lambda v: model.recommend(u[0], items=v), ("item",)
    yield "recommend exclude_items", lambda v: model.recommend(u[0], exclude_items=v), ("item",)
    yield "recommend as_frame", lambda v: model.recommend(u[0], as_frame=v), ("as_frame",)
    yield "recommend_new items", lambda v: model.recommend_new(v, [3.0]), ("item", "ratings", "length")
    yield "recommend_new ratings", lambda v: model.recommend_new(i[:1], v), ("ratings", "length")
    yield "recommend_new n", lambda v: model.recommend_new(i[:1], [3.0], n=v), ("n",)
    yield "fit train", lambda v: type(model)().fit(v), ("train",)
    if hasattr(model, "item_factors_"):
        yield "similar_items item", lambda v: model.similar_items(v), ("item",)
        yield "similar_items n", lambda v: model.similar_items(i[0], n=v), ("n",)
        yield "similar_items metric", lambda v: model.similar_items(i[0], metric=v), ("metric",)


def test_bad_arguments_raise_value_or_key_errors_naming_the_argument(models, data):
    unclear = []
    tried = 0
    for key, model in models.items():
        for name, call, words in _calls(model, data):
            for value in BAD:
                tried += 1
                try:
                    call(value)
                except KeyError:
                    continue  # an unknown id
                except ValueError as exc:
                    if not any(w in str(exc) for w in words):
                        unclear.append(f"{key} {name}={value!r:.20}: ValueError {exc}"[:200])
                except BaseException as exc:  # noqa: B902
                    unclear.append(f"{key} {name}={value!r:.20}: {type(exc).__name__} {exc}"[:200])
    print(f"\nbad arguments: {tried} tried, {len(unclear)} unclear")
    assert unclear == []
