"""Baselines (GlobalMean, Biases, Popularity) and the shared top-n selection of the base class."""

import numpy as np
import pytest

import fastmf
from fastmf.base import NotFittedError, topn_rows
from fastmf.data import Ratings


def toy():
    # users a, b, c; items 1..4
    return Ratings.from_arrays(["a", "a", "b", "b", "c", "c", "c"], [1, 2, 1, 3, 1, 2, 4],
                               [5, 3, 4, 2, 5, 4, 1])


def test_global_mean():
    m = fastmf.GlobalMean().fit(toy())
    assert m.global_mean_ == pytest.approx(24 / 7)
    np.testing.assert_allclose(m.predict(["a", "zz"], [1, 99], unknown="fallback"), [24 / 7, 24 / 7])
    with pytest.raises(KeyError, match="unknown user 'zz' at position 1"):
        m.predict(["a", "zz"], [1, 99])
    assert isinstance(m.predict("a", 1), float)


def biases_by_hand(ds, lam_u, lam_i, n_iter):
    """Plain-loop alternating closed-form steps (independent of the vectorised implementation)."""
    u, i, r, _ = ds.user_index, ds.item_index, ds.rating.astype(float), None
    mu = r.mean()
    bu = np.zeros(ds.n_users)
    bi = np.zeros(ds.n_items)
    for _ in range(n_iter):
        for j in range(ds.n_items):
            sel = i == j
            bi[j] = np.sum(r[sel] - mu - bu[u[sel]]) / (lam_i + sel.sum())
        for v in range(ds.n_users):
            sel = u == v
            bu[v] = np.sum(r[sel] - mu - bi[i[sel]]) / (lam_u + sel.sum())
    return mu, bu, bi


def test_biases_match_hand_loop_and_decrease_objective():
    ds = toy()
    m = fastmf.Biases(reg=0.5, reg_user=2.0, n_epochs=7).fit(ds)
    mu, bu, bi = biases_by_hand(ds, 2.0, 0.5, 7)
    np.testing.assert_allclose(m.user_bias_, bu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.item_bias_, bi, rtol=1e-12, atol=1e-12)

    def objective(n_iter):
        mm = fastmf.Biases(reg=1.0, n_epochs=n_iter).fit(ds)
        e = ds.rating - mm.predict_indices(ds.user_index, ds.item_index, clip=False)
        return np.sum(e ** 2) + np.sum(mm.user_bias_ ** 2) + np.sum(mm.item_bias_ ** 2)

    objs = [objective(k) for k in range(1, 8)]
    assert all(b <= a + 1e-12 for a, b in zip(objs, objs[1:]))


def test_biases_with_zero_reg_fit_item_means_on_single_user_items():
    ds = Ratings.from_arrays([1, 1, 2], [1, 2, 2], [5, 1, 3])
    m = fastmf.Biases(reg=0.0, n_epochs=200).fit(ds)
    e = ds.rating - m.predict_indices(ds.user_index, ds.item_index, clip=False)
    assert np.max(np.abs(e)) < 1e-6  # 3 ratings, 2 + 2 free parameters: an exact fit exists


def test_biases_unknown_policy_and_clipping():
    ds = toy()
    m = fastmf.Biases().fit(ds)
    mu = m.global_mean_
    ia = ds.item_map.to_index(1)
    assert m.predict("zz", 1, unknown="fallback") == pytest.approx(mu + m.item_bias_[ia])
    assert m.predict("zz", 99, unknown="fallback") == pytest.approx(mu)
    with pytest.raises(KeyError, match="unknown user 'zz'"):
        m.predict("zz", 1)
    with pytest.raises(KeyError, match="unknown item 99"):
        m.predict(["a"], [99], unknown="raise")
    huge = fastmf.Biases(reg=0.0, n_epochs=50).fit(Ratings.from_arrays([1, 2, 2], [1, 1, 2], [5, 1, 5]))
    p = huge.predict([1, 1, 2, 2], [1, 2, 1, 2])
    assert p.min() >= 1 and p.max() <= 5


@pytest.mark.data
def test_biases_defaults_on_ml100k_u1(ml100k_u1):
    train, test = ml100k_u1
    m = fastmf.Biases().fit(train)
    u, i, r, _ = test.to_arrays()
    rmse = float(np.sqrt(np.mean((m.predict(u, i) - r) ** 2)))
    assert rmse <= 0.958  # Surprise's BaselineOnly: 0.960 on the same split
    gm = fastmf.GlobalMean().fit(train)
    assert rmse < float(np.sqrt(np.mean((gm.predict(u, i) - r) ** 2))) - 0.15


def test_popularity_ranking_and_scores():
    ds = toy()
    m = fastmf.Popularity().fit(ds)
    assert not m.predicts_ratings
    np.testing.assert_array_equal(m.predict(["a", "a", "a"], [1, 2, 99], unknown="fallback"), [3, 2, 0])
    with pytest.raises(KeyError, match="unknown item 99 at position 2"):
        m.predict(["a", "a", "a"], [1, 2, 99])
    ids, scores = m.recommend("b", n=3)  # b saw 1 and 3; unseen: 2 (2 ratings), 4 (1 rating)
    np.testing.assert_array_equal(ids, [2, 4, -1])
    np.testing.assert_array_equal(scores, [2, 1, -np.inf])
    ids, _ = m.recommend("b", n=2, exclude_seen=False)
    np.testing.assert_array_equal(ids, [1, 2])
    by_sum = fastmf.Popularity(by="sum").fit(ds)
    np.testing.assert_array_equal(by_sum.item_scores_, [14, 7, 2, 1])


def test_recommend_batched_equals_single_and_excludes_seen():
    rng = np.random.default_rng(3)
    keys = rng.choice(40 * 30, 500, replace=False)
    ds = Ratings.from_arrays(keys // 30, keys % 30, rng.integers(1, 6, 500))
    m = fastmf.Biases(reg=1.0).fit(ds)
    users = ds.user_map.ids
    ids2, sc2 = m.recommend(users, n=7)
    csr = ds.to_csr()
    for row, user in enumerate(users):
        ids1, sc1 = m.recommend(user, n=7)
        np.testing.assert_array_equal(ids1, ids2[row])
        np.testing.assert_array_equal(sc1, sc2[row])
        u = ds.user_map.to_index(user)
        seen = set(ds.item_map.ids[csr.indices[csr.indptr[u]:csr.indptr[u + 1]]].tolist())
        assert not seen & set(ids1[ids1 >= 0].tolist())
        assert np.all(np.diff(sc1[np.isfinite(sc1)]) <= 0)


def test_recommend_items_and_exclude_items():
    m = fastmf.Popularity().fit(toy())
    ids, _ = m.recommend("a", n=4, items=[3, 4])
    np.testing.assert_array_equal(ids, [3, 4, -1, -1])
    ids, _ = m.recommend("a", n=4, exclude_items=[3, 777], unknown="fallback")
    np.testing.assert_array_equal(ids, [4, -1, -1, -1])
    ids, _ = m.recommend("a", n=4, items=[3, 777], unknown="fallback")
    np.testing.assert_array_equal(ids, [3, -1, -1, -1])
    with pytest.raises(KeyError, match="unknown item 777"):
        m.recommend("a", items=[777])
    with pytest.raises(KeyError, match="unknown item 777 at position 1"):
        m.recommend("a", exclude_items=[3, 777])


def test_recommend_unknown_user_raises_or_gets_the_fallback():
    m = fastmf.Biases().fit(toy())
    with pytest.raises(KeyError, match="unknown user 'nobody'"):
        m.recommend("nobody", n=2)
    ids, scores = m.recommend("nobody", n=2, unknown="fallback")
    order = np.argsort(-(m.global_mean_ + m.item_bias_), kind="stable")[:2]
    np.testing.assert_array_equal(ids, m.item_map_.ids[order])
    with pytest.raises(ValueError, match="unknown must be 'raise' or 'fallback', got 'ignore'"):
        m.recommend("a", unknown="ignore")


def test_string_ids_pad_with_empty_string():
    ds = Ratings.from_arrays([1, 1], ["x", "y"], [3, 4])
    ids, scores = fastmf.Popularity().fit(ds).recommend(1, n=2)
    assert ids.tolist() == ["", ""] and np.all(np.isneginf(scores))


def test_topn_rows_equals_full_sort_with_ties():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 5, size=(50, 40)).astype(float)  # many ties
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    for n in (1, 5, 40):
        idx, vals = topn_rows(scores, n)
        for r in range(scores.shape[0]):
            full = np.lexsort((np.arange(40), -scores[r]))[:n]
            expect = np.where(np.isneginf(scores[r, full]), -1, full)
            np.testing.assert_array_equal(idx[r], expect)
            np.testing.assert_array_equal(vals[r], scores[r, full])


def test_params_and_validation():
    m = fastmf.Biases(reg=2.0)
    assert m.get_params() == {"reg": 2.0, "reg_user": None, "reg_item": None, "n_epochs": 15}
    assert repr(m) == "Biases(reg=2.0)"
    assert m.set_params(n_epochs=3) is m and m.n_epochs == 3
    with pytest.raises(ValueError, match="unknown parameter 'lr'"):
        m.set_params(lr=0.1)
    with pytest.raises(ValueError, match=r"Biases: n_epochs must be an int in \[1, 100000\], got 0"):
        m.set_params(n_epochs=0)
    with pytest.raises(ValueError, match=r"Biases: reg must be a finite number in \[0, inf\), got -1"):
        fastmf.Biases(reg=-1).fit(toy())
    with pytest.raises(ValueError, match="Popularity: by must be one of 'count', 'sum'"):
        fastmf.Popularity(by="mean").fit(toy())
    with pytest.raises(NotFittedError, match="not fitted"):
        fastmf.Biases().predict(1, 1)
    with pytest.raises(TypeError, match="expects a fastmf.Ratings"):
        fastmf.Biases().fit(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="n must be a positive int"):
        fastmf.Popularity().fit(toy()).recommend("a", n=0)
