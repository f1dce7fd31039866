"""fastmf.app.service.Catalog and its helpers (what the web page asks): title forms, rating
entropies against hand-computed values, the onboarding order, ranked title search, fold-in
recommendations with explanations checked against NumPy, input validation and thread safety.
Needs no web framework."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastmf
from fastmf.app import service
from fastmf.data.ratings import Metadata
from fastmf.errors import CapabilityError, OptionError, UnknownIdError

TITLES = ["Matrix, The (1999)", "Matrix Reloaded, The (2003)", "Animatrix, The (2003)", "Godfather, The (1972)",
          "Godfather: Part II, The (1974)", "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
          "Man Called Horse, A (1970)", "Appartement, L' (1996)", "Star Wars (1977)", "Return of the Jedi (1983)"]


def titled(ds, titles):
    """``ds`` with item titles ``titles[item index]`` (then "Item N") and genres."""
    ids = ds.item_map.ids
    names = [titles[j] if j < len(titles) else f"Item {j}" for j in range(len(ids))]
    info = Metadata(ids, {"title": np.asarray(names, dtype=str), "genres": np.asarray(["Drama|Sci-Fi"] * len(ids)),
                          "year": np.full(len(ids), -1, dtype=np.int64)})
    return fastmf.Ratings.from_arrays(ds.user_map.ids[ds.user_index], ids[ds.item_index], ds.rating,
                                      rating_scale=ds.rating_scale, item_info=info)


@pytest.fixture(scope="module")
def data():
    return titled(fastmf.make_ratings(120, 40, 2400, seed=3), TITLES)


@pytest.fixture(scope="module")
def mf(data):
    return fastmf.MatrixFactorization(n_factors=6, n_epochs=20, random_state=0, n_threads=1).fit(data)


@pytest.fixture(scope="module")
def catalog(mf, data):
    return service.Catalog(mf, data)


# ---------------------------------------------------------------------- titles
@pytest.mark.parametrize("title, shown", [
    ("Matrix, The (1999)", "The Matrix (1999)"),
    ("City of Lost Children, The (Cité des enfants perdus, La) (1995)",
     "The City of Lost Children (La Cité des enfants perdus) (1995)"),
    ("Man Called Horse, A (1970)", "A Man Called Horse (1970)"),
    ("Appartement, L' (1996)", "L'Appartement (1996)"),
    ("Star Wars (1977)", "Star Wars (1977)"),
    ("Seven (Se7en) (1995)", "Seven (Se7en) (1995)"),
    ("Theater, Thea", "Theater, Thea"),  # "Thea" is no article
    ("(1995)", "(1995)"),
])
def test_display_title(title, shown):
    assert service.display_title(title) == shown


def test_normalize_title():
    assert service.normalize_title("Matrix, The (1999)") == "the matrix 1999"
    assert service.normalize_title("matrix, the") == "the matrix"
    assert service.normalize_title("  Cité   des ENFANTS!! ") == "cite des enfants"


# ---------------------------------------------------------------------- entropy and onboarding
def test_item_entropy_from_ratings_by_hand():
    ds = fastmf.Ratings.from_arrays([1, 2, 1, 2, 3, 4, 1, 2], [10, 10, 11, 11, 12, 12, 12, 12],
                                    [1, 5, 3, 3, 1, 2, 3, 4], rating_scale=(1, 5))
    m = fastmf.Biases().fit(ds)
    h = service.item_entropy(m, ds)
    # item 10: {1, 5} -> 1 bit; item 11: {3, 3} -> 0; item 12: four levels once each -> 2 bits
    np.testing.assert_allclose(h, [1.0, 0.0, 2.0], atol=1e-12)


def test_item_entropy_from_the_model_matches_its_rounded_predictions(mf, data):
    h = service.item_entropy(mf)
    users = np.repeat(np.arange(mf.n_users_), np.diff(mf.seen_indptr_))
    pred = np.rint(mf.predict_indices(users, mf.seen_indices_) - 1).astype(int)  # scale (1, 5), whole points
    for j in (0, 7, 21):
        counts = np.bincount(pred[mf.seen_indices_ == j], minlength=5)
        p = counts[counts > 0] / counts.sum()
        assert h[j] == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-12)


def test_onboarding_is_log_popularity_times_entropy(catalog, mf, data):
    h = service.item_entropy(mf, data)
    score = np.log2(1 + mf.item_counts_) * h
    got = [r["item"] for r in catalog.onboarding(n=40)["items"]]
    expect = mf.item_map_.ids[np.argsort(-score, kind="stable")].tolist()
    assert got == expect
    page = catalog.onboarding(n=5, offset=5, exclude=[got[6], got[0]])
    assert [r["item"] for r in page["items"]] == [got[5]] + got[7:11]
    assert page["next_offset"] == 11
    assert catalog.onboarding(n=5, offset=38)["next_offset"] is None


def test_onboarding_of_an_implicit_model_is_popularity():
    ds = fastmf.make_ratings(80, 30, 900, seed=2)
    m = fastmf.ImplicitALS(n_factors=4, n_epochs=3, random_state=0).fit(ds)
    c = service.Catalog(m)
    assert c.feedback == "strengths" and c.rating_scale is None
    got = [r["item"] for r in c.onboarding(n=30)["items"]]
    assert got == m.item_map_.ids[np.argsort(-m.item_counts_, kind="stable")].tolist()


# ---------------------------------------------------------------------- search
def _titles(out):
    return [r["display_title"] for r in out["items"]]


def test_search_handles_articles_and_ranks_matches(catalog):
    for q in ("matrix", "the matrix", "Matrix, The", "MATRIX, the (1999)"):
        out = catalog.search(q)
        assert _titles(out)[0] == "The Matrix (1999)", q
        assert out["items"][0]["match"] == "exact"
    out = catalog.search("matrix")
    assert _titles(out) == ["The Matrix (1999)", "The Matrix Reloaded (2003)", "The Animatrix (2003)"]
    assert [r["match"] for r in out["items"]] == ["exact", "prefix", "substring"]
    assert out["total"] == 3
    assert _titles(catalog.search("godfather"))[0] == "The Godfather (1972)"
    assert _titles(catalog.search("lost children"))[0].startswith("The City of Lost Children")
    assert _titles(catalog.search("cite enfants")) == ["The City of Lost Children (La Cité des enfants perdus) (1995)"]
    assert _titles(catalog.search("jedi return")) == ["Return of the Jedi (1983)"]  # every word, any order
    assert catalog.search("xyzzy") == {"query": "xyzzy", "total": 0, "items": []}


def test_search_orders_equal_kinds_by_popularity(mf):
    ds = titled(fastmf.make_ratings(100, 5, 300, seed=0), ["Alien 2", "Alien 3", "Alien 4", "Other", "Alien"])
    m = fastmf.Biases().fit(ds)
    c = service.Catalog(m, ds)
    out = c.search("alien")
    assert out["items"][0]["display_title"] == "Alien"
    rest = out["items"][1:]
    counts = [r["n_ratings"] for r in rest]
    assert all(r["match"] == "prefix" for r in rest) and counts == sorted(counts, reverse=True)


def test_search_bad_input(catalog):
    with pytest.raises(OptionError, match="q is empty"):
        catalog.search("  ,, ")
    with pytest.raises(OptionError, match="at most 200"):
        catalog.search("x" * 201)
    with pytest.raises(OptionError, match=r"n must be an integer in \[1, 100\]"):
        catalog.search("matrix", n=0)
    untitled = service.Catalog(fastmf.Biases().fit(fastmf.make_ratings(20, 10, 100, seed=0, item_info=False)))
    with pytest.raises(CapabilityError, match="no item titles"):
        untitled.search("x")


# ---------------------------------------------------------------------- items and similar items
def test_item_and_similar(catalog, mf):
    rec = catalog.item(0)
    assert rec == {"item": 0, "title": "Matrix, The (1999)", "display_title": "The Matrix (1999)", "year": None,
                   "genres": ["Drama", "Sci-Fi"], "n_ratings": int(mf.item_counts_[0]), "cold": False}
    assert catalog.item("0") == rec  # a URL segment
    out = catalog.similar(3, n=5)
    ids, scores = mf.similar_items(3, n=5)
    assert [r["item"] for r in out["items"]] == ids.tolist()
    np.testing.assert_allclose([r["similarity"] for r in out["items"]], scores)
    for bad in (999, "abc", True, 1.5, None, [1]):
        with pytest.raises(UnknownIdError):
            catalog.item(bad)
    with pytest.raises(CapabilityError, match="no item factors"):
        service.Catalog(fastmf.Biases().fit(fastmf.make_ratings(20, 10, 100, seed=0))).similar(1)


# ---------------------------------------------------------------------- recommendations
def test_recommend_is_recommend_new_with_explanations(catalog, mf):
    ratings = [[0, 5], [3, 4.5], [8, 1], [3, 4]]  # item 3 twice: the last rating counts
    out = catalog.recommend(ratings, n=8)
    ids, scores = mf.recommend_new([0, 3, 8, 3], [5, 4.5, 1, 4], n=8)
    assert [r["item"] for r in out["items"]] == ids.tolist()
    np.testing.assert_allclose([r["score"] for r in out["items"]], scores)
    assert out["n_rated"] == 3 and out["personal"] is True
    assert not {0, 3, 8} & {r["item"] for r in out["items"]}
    # explanation: the liked item (rated > 3, the middle of 1..5) of largest cosine, if >= 0.2
    V = mf.item_factors_.astype(np.float64)
    unit = V / np.linalg.norm(V, axis=1, keepdims=True)
    liked = {0: 5.0, 3: 4.0}
    explained = 0
    for r in out["items"]:
        cos = {i: float(unit[r["item"]] @ unit[i]) for i in liked}
        best = max(cos, key=cos.get)
        if cos[best] < catalog.min_similarity:
            assert r["because"] is None
        else:
            explained += 1
            assert r["because"]["item"] == best and r["because"]["rating"] == liked[best]
            assert r["because"]["similarity"] == pytest.approx(cos[best], abs=1e-12)
    assert explained > 0


def test_recommend_without_ratings_is_the_unknown_user_ranking(catalog, mf):
    out = catalog.recommend([], n=5)
    ids, _ = mf.recommend(-12345, n=5, unknown="fallback")
    assert [r["item"] for r in out["items"]] == ids.tolist()
    assert out["personal"] is False and all(r["because"] is None for r in out["items"])


def test_recommend_nothing_liked_has_no_explanations(catalog):
    out = catalog.recommend([[0, 1], [1, 2], [2, 3]], n=5)
    assert all(r["because"] is None for r in out["items"])


@pytest.mark.parametrize("ratings, error, match", [
    ([[0, 6]], OptionError, r"ratings\[0\] = 6 is outside the model's rating scale \[1, 5\]"),
    ([[0, 0.5]], OptionError, "outside the model's rating scale"),
    ([[0, float("nan")]], OptionError, "finite number"),
    ([[0, True]], OptionError, "finite number"),
    ([[0, "5"]], OptionError, "finite number"),
    ([[0]], OptionError, r"ratings\[0\] must be an \[item, rating\] pair"),
    (["05"], OptionError, "pair"),
    ("0,5", OptionError, "list of"),
    ({"0": 5}, OptionError, "list of"),
    ([[999, 5]], UnknownIdError, "item 999 is not in the model"),
    ([[True, 5]], UnknownIdError, "must be an integer"),
    ([[1.0, 5]], UnknownIdError, "must be an integer"),
])
def test_recommend_bad_input(catalog, ratings, error, match):
    with pytest.raises(error, match=match):
        catalog.recommend(ratings)


def test_recommend_limits(mf, data):
    c = service.Catalog(mf, data, max_n=20, max_ratings=3)
    with pytest.raises(OptionError, match="4 ratings; at most 3"):
        c.recommend([[0, 1], [1, 1], [2, 1], [3, 1]])
    with pytest.raises(OptionError, match=r"\[1, 20\]"):
        c.recommend([], n=21)
    with pytest.raises(OptionError, match="at most 3"):
        c.onboarding(exclude=[0, 1, 2, 3])


def test_string_ids():
    ds = fastmf.make_ratings(50, 20, 600, seed=4)
    ds = fastmf.Ratings.from_arrays(ds.user_map.ids[ds.user_index], np.char.add("m", ds.item_map.ids[ds.item_index].astype(str)),
                                    ds.rating, rating_scale=ds.rating_scale)
    m = fastmf.MatrixFactorization(n_factors=4, n_epochs=5, random_state=0).fit(ds)
    c = service.Catalog(m)
    assert c.item("m3")["item"] == "m3"
    assert c.recommend([["m3", 5]], n=3)["items"][0]["item"].startswith("m")
    with pytest.raises(UnknownIdError):
        c.item(3)


def test_concurrent_calls_give_the_serial_answers(catalog):
    calls = [("recommend", ([[i % 40, 1 + i % 5], [(i * 7) % 40, 5]],), {"n": 10}) for i in range(24)]
    calls += [("search", (q,), {}) for q in ("matrix", "god", "item 1", "star")]
    calls += [("similar", (i,), {"n": 7}) for i in range(8)] + [("onboarding", (), {"n": 9, "offset": 3})]
    serial = [getattr(catalog, f)(*a, **k) for f, a, k in calls]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            parallel = list(pool.map(lambda c: getattr(catalog, c[0])(*c[1], **c[2]), calls))
            assert parallel == serial


# ---------------------------------------------------------------------- cold items from side features
def test_cold_items_of_a_side_feature_model_are_recommended_and_marked(data):
    """A model fitted with item features (side="map") on an item-cold split: the catalog says it
    has cold items, their records say so, and the new user's recommendations include them (their
    factors come from the features)."""
    ids = data.item_map.ids
    genres = np.asarray(["Drama|Sci-Fi", "Comedy", "Action|War"] * len(ids))[: len(ids)]
    info = Metadata(ids, {"title": np.asarray([f"Item {j}" for j in range(len(ids))], dtype=str),
                          "genres": genres, "year": np.full(len(ids), 1990 + np.arange(len(ids)) % 9)})
    ds = fastmf.Ratings.from_arrays(data.user_map.ids[data.user_index], ids[data.item_index], data.rating,
                                    rating_scale=data.rating_scale, item_info=info)
    train, _ = fastmf.split.item_cold_split(ds, test_size=0.25, random_state=0)
    model = fastmf.MatrixFactorization(n_factors=6, n_epochs=20, random_state=0, n_threads=1)
    model.fit(train, item_features=train.item_features("genres", "year"))
    cold = np.flatnonzero(np.asarray(model.item_counts_) == 0)
    assert cold.size == 10
    cat = service.Catalog(model, train)
    got = cat.info()
    assert got["cold_items"] is True and got["n_cold_items"] == cold.size and got["cold_items_reason"] is None
    assert cat.item(ids[cold[0]].item())["cold"] is True
    warm = int(np.flatnonzero(np.asarray(model.item_counts_) > 0)[0])
    assert cat.item(ids[warm].item())["cold"] is False
    out = cat.recommend([[ids[warm].item(), 5.0]], n=len(ids))
    flags = {r["item"]: r["cold"] for r in out["items"]}
    assert {ids[j].item() for j in cold} <= set(flags)  # every cold item is ranked
    assert all(flags[i] == (model.item_counts_[model.item_map_.to_index(i)] == 0) for i in flags)
    # the plain model of the same data has none
    plain = service.Catalog(fastmf.MatrixFactorization(n_factors=6, n_epochs=5, random_state=0).fit(train), train)
    assert plain.info()["cold_items"] is False and plain.item(ids[cold[0]].item())["cold"] is False
