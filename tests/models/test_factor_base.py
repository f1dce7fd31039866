"""FactorModel: what MatrixFactorization and ImplicitALS share, and partial_fit_items.

partial_fit_items solves item rows against the fixed user factors; on an item the model knows,
given exactly its training ratings, it must reproduce the item row of an ALS half-sweep (the NumPy
twins in fastmf.reference), and new items must join every per-item array, the id map and the seen
items consistently.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastmf
from fastmf import reference
from fastmf.models.base import Recommender
from fastmf.models.factor import FactorModel

NEW = 10_000  # a raw item id the training data does not have


@pytest.fixture(scope="module")
def data():
    return fastmf.make_ratings(40, 30, 600, seed=1)


MODELS = {
    "mf-sgd": lambda: fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0),
    "mf-als": lambda: fastmf.MatrixFactorization(n_factors=4, n_epochs=3, solver="als", dtype="float64",
                                                 random_state=0),
    "mf-rating": lambda: fastmf.MatrixFactorization(n_factors=4, n_epochs=3, ranking="rating", random_state=0),
    "mf-unbiased": lambda: fastmf.MatrixFactorization(n_factors=4, n_epochs=3, biased=False, random_state=0),
    "ials": lambda: fastmf.ImplicitALS(n_factors=4, n_epochs=3, random_state=0),
}


@pytest.fixture(params=sorted(MODELS))
def fitted(request, data):
    return MODELS[request.param]().fit(data)


def _item_ratings(ds, item):
    """(raw users, ratings) of one item's training ratings."""
    u, i, r, _ = ds.to_arrays()
    return u[i == item], r[i == item].astype(np.float64)


# ---------------------------------------------------------------------- one implementation
SHARED = ("partial_fit_users", "partial_fit_items", "similar_items", "similar_users", "_similar",
          "_predict_pairs", "_fold_in", "_solve_rows", "_append_items")


@pytest.mark.parametrize("cls", [fastmf.MatrixFactorization, fastmf.ImplicitALS])
def test_factor_models_share_the_factor_model_methods(cls):
    assert issubclass(cls, FactorModel)
    for name in SHARED:
        assert name not in vars(cls), f"{cls.__name__} overrides {name}"
        assert getattr(cls, name) is getattr(FactorModel, name)
    for hook in ("_row_solver", "fold_in"):
        assert hook in vars(cls)


def test_implicit_als_scores_through_the_factor_model():
    for name in ("_score_users", "_factor_scores", "_new_user_scores"):
        assert getattr(fastmf.ImplicitALS, name) is getattr(FactorModel, name)


def test_models_without_factors_have_no_similar_items(data):
    assert not issubclass(fastmf.Biases, FactorModel)
    with pytest.raises(TypeError, match="Biases has no item factors"):
        fastmf.Biases().fit(data).similar_items(0)
    assert fastmf.Biases.similar_users is Recommender.similar_users


# ---------------------------------------------------------------------- against the reference
@pytest.mark.parametrize("biased, weighted", [(True, True), (True, False), (False, True)])
def test_mf_als_existing_item_matches_the_reference_half_sweep(data, biased, weighted):
    m = fastmf.MatrixFactorization(n_factors=5, n_epochs=2, solver="als", dtype="float64", biased=biased,
                                   weighted=weighted, reg=0.1, reg_bias=0.03, random_state=0).fit(data)
    item = 7
    users, ratings = _item_ratings(data, item)
    u = np.sort(m.user_map_.to_index(users)).astype(np.int32)
    r = ratings[np.argsort(m.user_map_.to_index(users), kind="stable")]
    j = m.item_map_.to_index(item)
    want_q, want_b = m.item_factors_[j:j + 1].copy(), m.item_bias_[j:j + 1].copy()
    reference.als_half_sweep(np.array([0, u.size]), u, r, m.user_factors_, m.user_bias_ if biased else None,
                             want_q, want_b if biased else None, m.global_mean_, 0.1, 0.03,
                             weighted=weighted, biased=biased)
    n_items, others = m.n_items_, np.delete(m.item_factors_, j, axis=0).copy()
    users_before = m.user_factors_.copy()
    m.partial_fit_items(np.full(users.size, item), users, ratings)
    assert_allclose(m.item_factors_[j], want_q[0], rtol=1e-10, atol=1e-12)
    if biased:
        assert_allclose(m.item_bias_[j], want_b[0], rtol=1e-10, atol=1e-12)
    assert m.n_items_ == n_items
    assert_array_equal(np.delete(m.item_factors_, j, axis=0), others)
    assert_array_equal(m.user_factors_, users_before)


@pytest.mark.parametrize("reg_nu, scaling", [(1.0, "linear"), (0.0, "log")])
def test_ials_existing_item_matches_the_reference_half_sweep(data, reg_nu, scaling):
    kw = dict(reg=0.1, alpha=4.0, scaling=scaling, eps=1.0, reg_nu=reg_nu, reg_alpha0=1.0)
    m = fastmf.ImplicitALS(n_factors=5, n_epochs=2, dtype="float64", random_state=0, **kw).fit(data)
    item = 7
    users, values = _item_ratings(data, item)
    order = np.argsort(m.user_map_.to_index(users), kind="stable")
    u = m.user_map_.to_index(users)[order].astype(np.int32)
    j = m.item_map_.to_index(item)
    want = m.item_factors_[j:j + 1].copy()
    reference.ials_half_sweep(np.array([0, u.size]), u, values[order], m.user_factors_, want, **kw)
    m.partial_fit_items(np.full(users.size, item), users, values)
    assert_allclose(m.item_factors_[j], want[0], rtol=1e-9, atol=1e-12)


def test_a_new_item_gets_the_reference_solve_too(data):
    m = fastmf.MatrixFactorization(n_factors=5, n_epochs=2, solver="als", dtype="float64", random_state=0).fit(data)
    users, ratings = _item_ratings(data, 7)
    m2 = fastmf.MatrixFactorization(n_factors=5, n_epochs=2, solver="als", dtype="float64", random_state=0).fit(data)
    m.partial_fit_items(np.full(users.size, 7), users, ratings)
    m2.partial_fit_items(np.full(users.size, NEW), users, ratings)
    j = m2.item_map_.to_index(NEW)
    assert_allclose(m2.item_factors_[j], m.item_factors_[m.item_map_.to_index(7)], rtol=1e-12)
    assert_allclose(m2.item_bias_[j], m.item_bias_[m.item_map_.to_index(7)], rtol=1e-12)


# ---------------------------------------------------------------------- new items
def test_new_items_join_every_per_item_array(fitted, data):
    m = fitted
    n_items, n_seen = m.n_items_, m.seen_indices_.size
    counts, user_counts = m.item_counts_.copy(), m.user_counts_.copy()
    raters = m.user_map_.ids[[1, 2, 3]]
    m.partial_fit_items([NEW, NEW, NEW + 1, NEW], [raters[0], raters[1], raters[2], raters[0]],
                        [4.0, 5.0, 2.0, 3.0])
    assert m.n_items_ == n_items + 2 and len(m.item_map_) == n_items + 2
    assert m.item_map_.to_index([NEW, NEW + 1]).tolist() == [n_items, n_items + 1]  # first appearance
    for name in ("item_factors_", "item_bias_", "item_engagement_"):
        arr = getattr(m, name, None)
        if arr is not None:
            assert arr.shape[0] == n_items + 2, name
    assert m.item_counts_.tolist() == counts.tolist() + [2, 1]  # (NEW, raters[0]) counted once
    assert m.user_counts_.tolist() == (user_counts + np.bincount([1, 2, 3], minlength=m.n_users_)).tolist()
    assert m.seen_indices_.size == n_seen + 3 and m.seen_indptr_[-1] == n_seen + 3
    for u in (1, 2):  # the raters' seen rows hold the new item, still sorted
        row = m.seen_indices_[m.seen_indptr_[u]:m.seen_indptr_[u + 1]]
        assert n_items in row.tolist() and np.all(np.diff(row) > 0)
    assert np.all(np.isfinite(m.item_factors_[n_items:]))
    assert np.any(m.item_factors_[n_items] != 0)


def test_recommend_predict_and_similar_include_new_items(fitted):
    m = fitted
    raters = m.user_map_.ids[[1, 2]]
    m.partial_fit_items([NEW, NEW], raters, [5.0, 4.0])
    other = m.user_map_.ids[5]
    p = m.predict(other, NEW)
    assert np.isfinite(p)
    assert_allclose(p, m.predict_indices([5], [m.n_items_ - 1])[0])
    ids, scores = m.recommend(other, n=m.n_items_)
    assert NEW in ids.tolist()
    # the raters do not get it recommended: it is among their seen items
    assert NEW not in m.recommend(raters[0], n=m.n_items_)[0].tolist()
    assert NEW in m.recommend(raters[0], n=m.n_items_, exclude_seen=False)[0].tolist()
    sim_ids, sim_scores = m.similar_items(NEW, n=5)
    assert sim_ids.shape == (5,) and NEW not in sim_ids.tolist() and np.all(np.isfinite(sim_scores))
    assert NEW in m.similar_items(m.item_map_.ids[:3], n=m.n_items_ - 1)[0][0].tolist()
    assert NEW in m.recommend_new([m.item_map_.ids[0]], [4.0], n=m.n_items_)[0].tolist()


def test_unknown_users_raise_or_are_ignored(fitted):
    m = fitted
    with pytest.raises(KeyError, match="unknown user"):
        m.partial_fit_items([NEW, NEW], [m.user_map_.ids[1], -77], [4.0, 4.0])
    assert m.n_items_ == len(m.item_map_) and NEW not in m.item_map_.ids.tolist()  # nothing changed
    twin = _refit(m)
    m.partial_fit_items([NEW, NEW], [m.user_map_.ids[1], -77], [4.0, 3.0], unknown="fallback")
    twin.partial_fit_items([NEW], [twin.user_map_.ids[1]], [4.0])
    assert_array_equal(m.item_factors_, twin.item_factors_)
    assert m.item_counts_[-1] == 1
    m.partial_fit_items([NEW + 1], [-77], [4.0], unknown="fallback")  # only unknown raters: zero row
    assert m.n_items_ == twin.n_items_ + 1 and not np.any(m.item_factors_[-1])


def _refit(m):
    """A fresh fit of the same model on the same data as ``m`` (its parameters, the fixture data)."""
    return type(m)(**m.get_params()).fit(fastmf.make_ratings(40, 30, 600, seed=1))


def test_partial_fit_items_checks_its_input(data):
    m = fastmf.MatrixFactorization(n_factors=3, n_epochs=1, random_state=0).fit(data)
    with pytest.raises(ValueError, match="differ in length"):
        m.partial_fit_items([NEW, NEW], [0], [4.0, 4.0])
    with pytest.raises(ValueError, match="needs the ratings"):
        m.partial_fit_items([NEW], [0])
    with pytest.raises(ValueError, match="outside the model's rating scale"):
        m.partial_fit_items([NEW], [0], [9.0])
    with pytest.raises(ValueError, match="unknown must be"):
        m.partial_fit_items([NEW], [0], [4.0], unknown="skip")
    with pytest.raises(ValueError, match="new item ids must be integers"):
        m.partial_fit_items(["x"], [0], [4.0])
    assert NEW not in m.item_map_.ids.tolist()
    ials = fastmf.ImplicitALS(n_factors=3, n_epochs=1, random_state=0).fit(data)
    ials.partial_fit_items([NEW, NEW], [0, 1])  # implicit: strengths default to 1
    with pytest.raises(ValueError, match="negative"):
        ials.partial_fit_items([NEW], [0], [-1.0])


def test_repeated_pairs_keep_the_last_value(data):
    a = fastmf.ImplicitALS(n_factors=3, n_epochs=1, random_state=0).fit(data)
    b = fastmf.ImplicitALS(n_factors=3, n_epochs=1, random_state=0).fit(data)
    a.partial_fit_items([NEW, NEW, NEW], [0, 1, 0], [9.0, 2.0, 3.0])
    b.partial_fit_items([NEW, NEW], [1, 0], [2.0, 3.0])
    assert_array_equal(a.item_factors_, b.item_factors_)


def test_fold_in_after_partial_fit_items_sees_the_new_item_factors(data):
    m = fastmf.ImplicitALS(n_factors=3, n_epochs=2, random_state=0).fit(data)
    m.fold_in([0, 1])  # caches the item Gram matrix
    m.partial_fit_items([NEW, 0], [0, 1], [1.0, 1.0])
    fresh = fastmf.ImplicitALS(**m.get_params())
    fresh.__dict__.update({k: v for k, v in vars(m).items() if not k.startswith("_")})
    assert_array_equal(m.fold_in([0, NEW]), fresh.fold_in([0, NEW]))


# ---------------------------------------------------------------------- persistence
def test_saved_model_after_partial_fit_items_predicts_the_same(fitted, tmp_path):
    m = fitted
    m.partial_fit_items([NEW, NEW, 3], list(m.user_map_.ids[[1, 2, 4]]), [4.0, 5.0, 2.0])
    path = m.save(tmp_path / "m.npz")
    back = fastmf.load(path)
    assert back.n_items_ == m.n_items_
    users, items = np.repeat(m.user_map_.ids[:6], 3), np.tile([NEW, 3, 0], 6)
    assert_array_equal(back.predict(users, items), m.predict(users, items))
    for got, want in zip(back.recommend(m.user_map_.ids[:6], n=8), m.recommend(m.user_map_.ids[:6], n=8)):
        assert_array_equal(got, want)
    for got, want in zip(back.similar_items([NEW, 3], n=4), m.similar_items([NEW, 3], n=4)):
        assert_array_equal(got, want)
