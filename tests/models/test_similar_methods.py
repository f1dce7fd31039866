"""Suggested tests for Recommender.similar_items / similar_users (needs the base.py patch)."""
import numpy as np
import pytest

import fastmf
from fastmf.similarity import METRICS, similarity


@pytest.fixture(scope="module")
def model():
    ds = fastmf.make_ratings(200, 100, 5000, seed=0)
    return fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0).fit(ds)


@pytest.mark.parametrize("kind", ["item", "user"])
@pytest.mark.parametrize("metric", METRICS)
def test_similar_equals_full_sort_and_batch(model, kind, metric):
    F = getattr(model, f"{kind}_factors_")
    ids = (model.item_map_ if kind == "item" else model.user_map_).ids
    method = getattr(model, f"similar_{kind}s")
    picks = [0, 7, len(ids) - 1]
    got_ids, got_scores = method(ids[picks], n=12, metric=metric)
    assert got_ids.shape == got_scores.shape == (3, 12)
    for r, p in enumerate(picks):
        s = similarity(F[p], F, metric)
        s[p] = -np.inf
        order = np.lexsort((np.arange(s.size), -s))[:12]
        np.testing.assert_array_equal(got_ids[r], ids[order])
        np.testing.assert_array_equal(got_scores[r], s[order])
        one_ids, one_scores = method(ids[p], n=12, metric=metric)
        np.testing.assert_array_equal(one_ids, got_ids[r])
        np.testing.assert_array_equal(one_scores, got_scores[r])
        assert ids[p] not in one_ids


def test_similar_padding_and_errors(model):
    ids, scores = model.similar_items(model.item_map_.ids[0], n=105)
    assert (ids[99:] == -1).all() and np.isneginf(scores[99:]).all() and (ids[:99] >= 0).all()
    with pytest.raises(KeyError, match="unknown item 999999"):
        model.similar_items(999999)
    with pytest.raises(ValueError, match="unknown similarity metric 'l1'"):
        model.similar_items(0, metric="l1")
    with pytest.raises(ValueError, match="n must be a positive int"):
        model.similar_users(0, n=0)
    with pytest.raises(TypeError, match="Biases has no item factors"):
        fastmf.Biases().fit(fastmf.make_ratings(20, 10, 100, seed=0)).similar_items(0)


# ------------------------------------------------------------------------------------ real data
STAR_WARS = {"ml-100k": (50, 172, 181), "ml-1m": (260, 1196, 1210)}


@pytest.mark.data
@pytest.mark.parametrize("name", ["ml-100k", "ml-1m"])
def test_star_wars_trilogy_are_each_others_neighbours(name):
    from conftest import ML1M_PARTIAL, need_data

    folder = need_data(name)
    kw = {"ratings_file": ML1M_PARTIAL} if name == "ml-1m" else {}
    ds = fastmf.load_movielens(name, path=folder, download=False, **kw)
    model = fastmf.MatrixFactorization(random_state=0).fit(ds)
    films = STAR_WARS[name]
    ids, _ = model.similar_items(np.array(films), n=10)
    for row, film in enumerate(films):
        assert "Star Wars" in ds.item_title(film) or "Jedi" in ds.item_title(film) or \
            "Empire" in ds.item_title(film)
        others = set(films) - {film}
        assert others <= set(ids[row].tolist()), (film, ids[row])
