"""Cold start and fold-in: recommend_new, fold_in, partial_fit_users, unknown users."""

import numpy as np
import pytest

import fastmf


@pytest.fixture(scope="module")
def fitted():
    ds = fastmf.make_ratings(400, 300, 30_000, rank=5, noise=0.3, seed=11)
    m = fastmf.MatrixFactorization(n_factors=8, n_epochs=40, lr=0.02, reg=0.05, random_state=0,
                                   dtype="float64").fit(ds)
    return ds, m


def user_rows(ds, u):
    csr = ds.to_csr()
    sl = slice(csr.indptr[u], csr.indptr[u + 1])
    return ds.item_map.ids[csr.indices[sl]], csr.data[sl].astype(np.float64)


def test_fold_in_solves_the_regularised_least_squares_problem(fitted):
    ds, m = fitted
    items, r = np.array([3, 10, 42, 99, 7]), np.array([5.0, 3.0, 4.0, 1.0, 2.0])
    x, b = m.fold_in(items, r)
    idx = m.item_map_.to_index(items)
    # independent formulation: ridge regression as an augmented least-squares problem
    n = len(items)
    lam, lam_b = m.reg * n, m.reg_bias * n
    Z = np.hstack([np.ones((n, 1)), m.item_factors_[idx]])
    t = r - m.global_mean_ - m.item_bias_[idx]
    Za = np.vstack([Z, np.diag(np.sqrt(np.r_[lam_b, np.full(8, lam)]))])
    ta = np.r_[t, np.zeros(9)]
    sol = np.linalg.lstsq(Za, ta, rcond=None)[0]
    np.testing.assert_allclose(np.r_[b, x], sol, rtol=1e-9, atol=1e-12)


def test_fold_in_of_a_training_user_is_close_to_the_trained_vector(fitted):
    ds, m = fitted
    cosines, overlaps = [], []
    for u in range(0, 400, 20):
        items, r = user_rows(ds, u)
        x, _ = m.fold_in(items, r)
        p = m.user_factors_[u]
        cosines.append(x @ p / (np.linalg.norm(x) * np.linalg.norm(p)))
        a, _ = m.recommend(ds.user_map.ids[u], n=10)
        c, _ = m.recommend_new(items, r, n=10)
        overlaps.append(len(set(a.tolist()) & set(c.tolist())))
    assert np.median(cosines) > 0.95 and min(cosines) > 0.8
    assert np.mean(overlaps) >= 8


def test_recommend_new_excludes_given_items_and_unknown_ones_raise_or_are_ignored(fitted):
    ds, m = fitted
    items = np.array([1, 2, 3, 999_999])
    with pytest.raises(KeyError, match="unknown item 999999 at position 3"):
        m.recommend_new(items, [5, 4, 1, 5], n=20)
    with pytest.raises(KeyError, match="unknown item 999999 at position 3"):
        m.fold_in(items, [5, 4, 1, 5])
    ids, scores = m.recommend_new(items, [5, 4, 1, 5], n=20, unknown="fallback")
    assert not set(ids.tolist()) & {1, 2, 3}
    assert np.all(np.diff(scores) <= 0)
    without = m.recommend_new(items[:3], [5, 4, 1], n=20)[0]
    np.testing.assert_array_equal(ids, without)
    x_fb, b_fb = m.fold_in(items, [5, 4, 1, 5], unknown="fallback")
    x, b = m.fold_in(items[:3], [5, 4, 1])
    np.testing.assert_array_equal(x_fb, x)
    assert b_fb == b
    ids_all, _ = m.recommend_new(items, [5, 4, 1, 5], n=20, exclude_seen=False, unknown="fallback")
    assert len(ids_all) == 20


def test_recommend_new_input_errors(fitted):
    ds, m = fitted
    with pytest.raises(ValueError, match="need.* the new user's ratings"):
        m.recommend_new([1, 2])
    with pytest.raises(ValueError, match="differ in length"):
        m.recommend_new([1, 2], [5])
    with pytest.raises(ValueError, match="not finite"):
        m.fold_in([1, 2], [5, np.nan])


@pytest.mark.parametrize("value, pos", [(50, 1), (-3, 0), (0.99, 2), (5.01, 1)])
def test_new_user_ratings_outside_the_scale_are_rejected(fitted, value, pos):
    ds, m = fitted
    ratings = [4.0, 3.0, 2.0]
    ratings[pos] = value
    msg = rf"ratings\[{pos}\] = {value:g} is outside the model's rating scale \[1, 5\]"
    with pytest.raises(ValueError, match=msg):
        m.recommend_new([1, 2, 3], ratings)
    with pytest.raises(ValueError, match=msg):
        m.fold_in([1, 2, 3], ratings)
    with pytest.raises(ValueError, match=msg):
        m.partial_fit_users(_ratings_of(ratings))  # raises before any row changes
    m.recommend_new([1, 2, 3], [1, 5, 3.5])  # the bounds themselves are fine


def _ratings_of(values):
    return fastmf.Ratings.from_arrays([0, 0, 0], [1, 2, 3], values, rating_scale=None)


@pytest.mark.parametrize("make", [lambda ds: fastmf.Biases().fit(ds), lambda ds: fastmf.GlobalMean().fit(ds),
                                  lambda ds: fastmf.Popularity().fit(ds),
                                  lambda ds: fastmf.MatrixFactorization(n_factors=2, n_epochs=2, solver="als",
                                                                        random_state=0).fit(ds)])
def test_every_rating_model_checks_new_ratings_against_its_scale(make):
    ds = fastmf.make_ratings(60, 40, 800, seed=3)
    m = make(ds)
    with pytest.raises(ValueError, match=r"ratings\[1\] = 50 is outside the model's rating scale \[1, 5\]"):
        m.recommend_new([0, 1], [3, 50])


def test_implicit_strengths_must_be_non_negative():
    ds = fastmf.make_ratings(60, 40, 800, seed=3)
    m = fastmf.ImplicitALS(n_factors=4, n_epochs=2, random_state=0).fit(ds)
    m.recommend_new([0, 1], [3, 50])  # a strength (e.g. 50 plays) is not bounded by the 1-5 scale
    with pytest.raises(ValueError, match=r"ratings\[0\] = -3 is negative; interaction strengths"):
        m.fold_in([0, 1], [-3, 1])
    with pytest.raises(KeyError, match="unknown item 12345"):
        m.fold_in([0, 12345])
    np.testing.assert_array_equal(m.fold_in([0, 12345], unknown="fallback"), m.fold_in([0]))


def engagement_fallback(m):
    """The documented ranking of an unknown user: the engagement-weighted rating of mu + b_i with
    the share of training users who rated the item as the engagement."""
    lo, hi = m.rating_scale_
    share = m.item_counts_ / m.n_users_
    return lo + share * (np.clip(m.global_mean_ + m.item_bias_.astype(float), lo, hi) - lo)


def test_new_user_with_no_known_items_gets_the_unknown_user_ranking(fitted):
    ds, m = fitted
    ids, scores = m.recommend_new([999_999], [5], n=5, unknown="fallback")
    want = engagement_fallback(m)
    order = np.argsort(-want, kind="stable")[:5]
    np.testing.assert_array_equal(ids, m.item_map_.ids[order])
    np.testing.assert_allclose(scores, want[order], rtol=1e-12)
    rating = fastmf.MatrixFactorization(**{**m.get_params(), "ranking": "rating"}).fit(ds)
    ids, _ = rating.recommend_new([999_999], [5], n=5, unknown="fallback")
    order = np.argsort(-(rating.global_mean_ + rating.item_bias_), kind="stable")[:5]
    np.testing.assert_array_equal(ids, rating.item_map_.ids[order])


def test_partial_fit_users_equals_fold_in_and_leaves_others(fitted):
    ds, m0 = fitted
    m = fastmf.MatrixFactorization(**m0.get_params()).fit(ds)
    before = m.user_factors_.copy()
    users = np.array([5, 17])
    sub = ds.subset(np.isin(ds.user_index, users))
    m.partial_fit_users(sub)
    for u in users:
        x, b = m0.fold_in(*user_rows(ds, u))
        np.testing.assert_allclose(m.user_factors_[u], x, rtol=1e-10, atol=1e-12)
        assert m.user_bias_[u] == pytest.approx(b, rel=1e-10)
    others = np.setdiff1d(np.arange(ds.n_users), users)
    np.testing.assert_array_equal(m.user_factors_[others], before[others])
    with pytest.raises(KeyError, match="unknown user"):
        m.partial_fit_users(fastmf.Ratings.from_arrays([123_456], [1], [3]))


def test_baselines_recommend_new():
    ds = fastmf.make_ratings(200, 100, 5000, seed=2)
    pop = fastmf.Popularity().fit(ds)
    ids, _ = pop.recommend_new([0, 1])
    order = [i for i in np.argsort(-pop.item_scores_, kind="stable") if i not in (0, 1)][:10]
    np.testing.assert_array_equal(ids, pop.item_map_.ids[order])
    b = fastmf.Biases().fit(ds)
    ids, scores = b.recommend_new([0, 1], [5, 5], n=3)
    resid = 5 - b.global_mean_ - b.item_bias_[[0, 1]]
    bu = resid.sum() / (b.reg + 2)
    top = ids[0]
    assert scores[0] == pytest.approx(b.global_mean_ + bu + b.item_bias_[b.item_map_.to_index(top)])


def test_unknown_user_raises_or_gets_the_fallback_when_asked(fitted):
    ds, m = fitted
    with pytest.raises(KeyError, match="unknown user -5"):
        m.recommend(-5, n=4)
    with pytest.raises(KeyError, match="unknown user -5 at position 1"):
        m.recommend([0, -5], n=4)
    ids, scores = m.recommend(-5, n=4, unknown="fallback")
    want = engagement_fallback(m)
    order = np.argsort(-want, kind="stable")[:4]
    np.testing.assert_array_equal(ids, m.item_map_.ids[order])
    np.testing.assert_allclose(scores, want[order], rtol=1e-12)
    both, _ = m.recommend([0, -5], n=4, unknown="fallback")
    np.testing.assert_array_equal(both[1], ids)
    np.testing.assert_array_equal(both[0], m.recommend(0, n=4)[0])


@pytest.mark.data
def test_action_fan_who_hates_romance_gets_action_films(ml100k):
    m = fastmf.MatrixFactorization(random_state=0).fit(ml100k)
    info = ml100k.item_info
    genres = {i: set(g.split("|")) for i, g in zip(info.map.ids.tolist(), info.columns["genres"].tolist())}
    rated = set(ml100k.item_map.ids.tolist())
    action = [i for i in sorted(rated) if "Action" in genres[i] and "Romance" not in genres[i]][:30]
    romance = [i for i in sorted(rated) if "Romance" in genres[i] and "Action" not in genres[i]][:30]
    ids, _ = m.recommend_new(action + romance, [5] * len(action) + [1] * len(romance), n=10)
    n_action = sum("Action" in genres[i] for i in ids.tolist())
    n_romance_only = sum("Romance" in genres[i] and "Action" not in genres[i] for i in ids.tolist())
    assert n_action >= 6 and n_romance_only <= 1, [ml100k.item_title(i) for i in ids]


def test_recommend_all_equals_batched_recommend(fitted):
    ds, m = fitted
    users, ids, scores = m.recommend_all(n=5)
    np.testing.assert_array_equal(users, ds.user_map.ids)
    ids2, scores2 = m.recommend(users, n=5)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(scores, scores2)


def test_describe_items_uses_the_training_metadata(fitted):
    ds, m = fitted
    with pytest.raises(KeyError, match="unknown item 1000000000 at position 2"):
        m.describe_items([0, 1, 10**9])
    rows = m.describe_items([0, 1, 10**9], unknown="fallback")
    assert rows[0]["title"] == ds.item_title(0) and rows[0]["genres"] == ds.item_info.get(0, "genres")
    assert rows[2] == {"item": 10**9, "title": None, "genres": None, "year": None}
