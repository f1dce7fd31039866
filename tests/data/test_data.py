"""Ratings, IdMap, Metadata and the C CSR builder."""

import numpy as np
import pytest

import fastmf
from fastmf import _csr
from fastmf.data import CSR, IdMap, Metadata, Ratings

from conftest import need_data


def small():
    return Ratings.from_arrays(["b", "a", "b", "c", "a"], [30, 10, 10, 20, 30], [4, 5, 3, 1, 2],
                               timestamps=[5, 4, 3, 2, 1])


# ---------------------------------------------------------------------------- IdMap
def test_idmap_roundtrip_int_and_str():
    m = IdMap([30, 10, 20])
    assert len(m) == 3
    assert m.to_index(10) == 1 and m.to_index(30) == 0
    np.testing.assert_array_equal(m.to_index([20, 30, 10]), [2, 0, 1])
    np.testing.assert_array_equal(m.to_raw([2, 0]), [20, 30])
    s = IdMap(["x", "y"])
    assert s.to_index("y") == 1 and s.to_raw(0) == "x"
    assert "x" in s and "z" not in s and 5 not in s


def test_idmap_unknown_ids():
    m = IdMap([1, 2, 3])
    with pytest.raises(KeyError, match="unknown user 7 at position 1"):
        m.to_index([1, 7], name="user")
    np.testing.assert_array_equal(m.to_index([1, 7, "a"] if False else [1, 7], missing=-1), [0, -1])
    np.testing.assert_array_equal(m.to_index(np.array(["1"]), missing=-1), [-1])  # str vs int ids
    with pytest.raises(IndexError, match=r"index 3 outside \[0, 3\)"):
        m.to_raw([3])


def test_idmap_rejects_duplicates_and_mixed():
    with pytest.raises(ValueError, match="duplicate id 2"):
        IdMap([1, 2, 2])
    with pytest.raises(ValueError, match="mix strings and integers"):
        IdMap(np.array([1, "a"], dtype=object))


def test_idmap_from_values_is_sorted_and_inverse():
    m, idx = IdMap.from_values([5, 3, 5, 9])
    np.testing.assert_array_equal(m.ids, [3, 5, 9])
    np.testing.assert_array_equal(idx, [1, 0, 1, 2])
    assert idx.dtype == np.int32


# ---------------------------------------------------------------------------- builders
def test_from_arrays_basic_facts():
    ds = small()
    assert len(ds) == 5 and ds.n_users == 3 and ds.n_items == 3
    assert ds.user_index.dtype == np.int32 and ds.item_index.dtype == np.int32
    assert ds.rating.dtype == np.float32  # ints become float32 by default
    assert ds.timestamp.dtype == np.int64
    u, i, r, t = ds.to_arrays()
    assert list(u) == ["b", "a", "b", "c", "a"] and list(i) == [30, 10, 10, 20, 30]
    np.testing.assert_array_equal(r, [4, 5, 3, 1, 2])
    np.testing.assert_array_equal(t, [5, 4, 3, 2, 1])


def test_ratings_are_immutable():
    ds = small()
    with pytest.raises(ValueError):
        ds.rating[0] = 1.0
    with pytest.raises(AttributeError):
        ds.foo = 1


def test_dtype_preserved_and_selectable():
    r64 = Ratings.from_arrays([1, 2], [1, 1], np.array([1.0, 2.0]))
    assert r64.rating.dtype == np.float64
    r32 = Ratings.from_arrays([1, 2], [1, 1], np.array([1.0, 2.0]), dtype="float32")
    assert r32.rating.dtype == np.float32
    assert r64.astype("float32").rating.dtype == np.float32


@pytest.mark.filterwarnings("ignore::fastmf.data.DuplicateRatingsWarning")
@pytest.mark.parametrize("policy, expected", [("last", {(1, 1): 3.0, (2, 1): 2.0}),
                                              ("mean", {(1, 1): 2.0, (2, 1): 2.0})])
def test_duplicates_policies(policy, expected):
    ds = Ratings.from_arrays([1, 2, 1], [1, 1, 1], [1, 2, 3], timestamps=[10, 20, 30], duplicates=policy)
    u, i, r, t = ds.to_arrays()
    assert dict(zip(zip(u.tolist(), i.tolist()), r.tolist())) == expected
    assert len(ds) == 2
    # the survivor sits where the pair's last occurrence was and keeps its timestamp
    assert list(zip(u.tolist(), t.tolist())) == [(2, 20), (1, 30)]


def test_duplicates_error_names_pair_and_position():
    with pytest.raises(ValueError, match=r"duplicate rating for user 1, item 1 at position 2"):
        Ratings.from_arrays([1, 2, 1], [1, 1, 1], [1, 2, 3], duplicates="error")
    with pytest.raises(ValueError, match="duplicates must be one of"):
        Ratings.from_arrays([1], [1], [1], duplicates="first")


@pytest.mark.parametrize("kwargs, message", [
    (dict(users=[1, 2], items=[1], ratings=[1, 2]), "mismatched lengths: users has 2, items has 1"),
    (dict(users=[], items=[], ratings=[]), "no ratings"),
    (dict(users=[1, 2], items=[1, 2], ratings=[1, np.nan]), r"ratings\[1\] = .*nan.* is not finite"),
    (dict(users=[1, 2], items=[1, 2], ratings=[1, np.inf]), r"ratings\[1\] = .*inf.* is not finite"),
    (dict(users=[1, 2], items=[1, 2], ratings=[1, 7], rating_scale=(1, 5)),
     r"ratings\[1\] = 7 is outside the rating scale \[1, 5\]"),
    (dict(users=[1, 2], items=[1, 2], ratings=["3", "x"]), r"ratings\[1\] = 'x' is not a number"),
    (dict(users=[1.0, np.nan], items=[1, 2], ratings=[1, 2]), "users: missing or non-finite id nan at position 1"),
    (dict(users=np.array([1, None], dtype=object), items=[1, 2], ratings=[1, 2]),
     "users: missing or unsupported id None at position 1"),
    (dict(users=[1.5, 2], items=[1, 2], ratings=[1, 2]), "not a whole number"),
    (dict(users=[1, 2], items=[1, 2], ratings=[1, 2], rating_scale=(5, 1)), "low < high"),
])
def test_from_arrays_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Ratings.from_arrays(**kwargs)


def test_implicit_and_unbounded_scale():
    ds = Ratings.from_arrays([1, 2], [3, 3], None, rating_scale=None)
    np.testing.assert_array_equal(ds.rating, [1, 1])
    counts = Ratings.from_arrays([1, 2], [3, 3], [17, 250], rating_scale=None)
    assert counts.rating_scale is None and counts.rating.max() == 250


def test_float_ids_that_are_whole_numbers_become_ints():
    ds = Ratings.from_arrays(np.array([1.0, 2.0]), [1, 2], [3, 4])
    assert ds.user_map.ids.dtype == np.int64


def test_from_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 20, 10], "rating": [4.0, 3.5, 5.0],
                       "ts": [3, 2, 1]})
    ds = Ratings.from_dataframe(df, timestamp="ts")
    assert len(ds) == 3 and ds.rating.dtype == np.float64
    np.testing.assert_array_equal(ds.timestamp, [3, 2, 1])
    with pytest.raises(ValueError, match=r"no column\(s\) \['stars'\]"):
        Ratings.from_dataframe(df, rating="stars")
    df.loc[1, "movieId"] = None
    with pytest.raises(ValueError, match="column 'movieId': missing value at row 1"):
        Ratings.from_dataframe(df)
    back = Ratings.from_dataframe(df.dropna()).to_dataframe()
    assert list(back.columns) == ["user", "item", "rating"]


def test_from_scipy_keeps_empty_rows_and_columns():
    sp = pytest.importorskip("scipy.sparse")
    m = sp.csr_matrix(np.array([[0, 3, 0], [0, 0, 0], [1, 0, 0]], dtype=np.float64))
    ds = Ratings.from_scipy(m, user_ids=["a", "b", "c"], rating_scale=(1, 5))
    assert ds.n_users == 3 and ds.n_items == 3 and len(ds) == 2
    np.testing.assert_array_equal(ds.to_csr(scipy=True).toarray(), m.toarray())
    with pytest.raises(ValueError, match="no ratings"):
        Ratings.from_scipy(sp.csr_matrix((2, 2)))
    with pytest.raises(ValueError, match="expected a scipy.sparse matrix"):
        Ratings.from_scipy(np.eye(2))


def test_constructor_validates_indices():
    m = IdMap([1, 2])
    with pytest.raises(ValueError, match=r"item_index\[1\] = 2 is outside \[0, 2\)"):
        Ratings([0, 1], [0, 2], [1.0, 2.0], user_map=m, item_map=m)
    with pytest.raises(ValueError, match="duplicate"):
        Ratings([0, 0], [1, 1], [1.0, 2.0], user_map=m, item_map=m)


# ---------------------------------------------------------------------------- CSR
def dense_of(ds):
    d = np.zeros(ds.shape)
    d[ds.user_index, ds.item_index] = ds.rating
    return d


def test_to_csr_and_csc_match_dense():
    rng = np.random.default_rng(0)
    keys = rng.choice(50 * 40, size=300, replace=False)
    ds = Ratings.from_arrays(keys // 40, keys % 40, rng.integers(1, 6, 300))
    dense = dense_of(ds)
    csr = ds.to_csr()
    assert isinstance(csr, CSR) and csr.indptr.dtype == np.int64 and csr.indices.dtype == np.int32
    rebuilt = np.zeros(ds.shape)
    for r in range(ds.n_users):
        cols = csr.indices[csr.indptr[r]:csr.indptr[r + 1]]
        assert np.all(np.diff(cols) > 0)  # sorted, unique
        rebuilt[r, cols] = csr.data[csr.indptr[r]:csr.indptr[r + 1]]
    np.testing.assert_array_equal(rebuilt, dense)
    csc = ds.to_csc()
    assert csc.shape == (ds.n_items, ds.n_users)
    rebuilt_t = np.zeros(csc.shape)
    for c in range(ds.n_items):
        rebuilt_t[c, csc.indices[csc.indptr[c]:csc.indptr[c + 1]]] = csc.data[csc.indptr[c]:csc.indptr[c + 1]]
    np.testing.assert_array_equal(rebuilt_t, dense.T)
    order = ds.csr_order()
    np.testing.assert_array_equal(ds.item_index[order], csr.indices)


def test_csr_order_equals_lexsort_with_stability():
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 7, 500).astype(np.int32)
    cols = rng.integers(0, 5, 500).astype(np.int32)  # many repeated (row, col) pairs
    indptr, order = _csr.csr_order(rows, cols, 9, 5)  # two empty trailing rows
    np.testing.assert_array_equal(order, np.lexsort((np.arange(500), cols, rows)))
    np.testing.assert_array_equal(indptr, np.r_[0, np.cumsum(np.bincount(rows, minlength=9))])


def test_csr_order_rejects_out_of_range_indices():
    with pytest.raises(IndexError, match=r"row index 3 at position 1 is outside \[0, 3\)"):
        _csr.csr_order(np.array([0, 3], np.int32), np.array([0, 0], np.int32), 3, 2)
    with pytest.raises(IndexError, match=r"column index -1 at position 0"):
        _csr.csr_order(np.array([0], np.int32), np.array([-1], np.int32), 3, 2)
    with pytest.raises(ValueError, match="differ in length"):
        _csr.csr_order(np.array([0], np.int32), np.array([0, 1], np.int32), 3, 2)
    indptr, order = _csr.csr_order(np.array([], np.int32), np.array([], np.int32), 2, 2)
    np.testing.assert_array_equal(indptr, [0, 0, 0])
    assert order.size == 0


# ---------------------------------------------------------------------------- describe, subsets, metadata
def test_describe_counts_and_histogram():
    d = small().describe()
    assert d["n_ratings"] == 5 and d["n_users"] == 3 and d["n_items"] == 3
    assert d["density"] == pytest.approx(5 / 9)
    assert d["rating_mean"] == pytest.approx(3.0) and d["rating_std"] == pytest.approx(np.std([4, 5, 3, 1, 2]))
    assert d["rating_histogram"] == {1.0: 1, 2.0: 1, 3.0: 1, 4.0: 1, 5.0: 1}
    assert d["ratings_per_user"]["max"] == 2 and d["ratings_per_item"]["min"] == 1
    assert d["time_range"] == (1, 5)
    assert "5 ratings by 3 users on 3 items" in str(d)


def test_subset_and_concat_share_maps():
    ds = small()
    a = ds.subset(np.array([True, False, True, False, True]))
    b = ds.subset(np.array([1, 3]))
    assert a.user_map is ds.user_map and b.item_map is ds.item_map
    assert a.n_users == 3 and len(a) == 3
    both = a.concat(b)
    assert len(both) == 5
    assert sorted(zip(*both.to_arrays()[:2])) == sorted(zip(*ds.to_arrays()[:2]))
    other = Ratings.from_arrays([1], [1], [1])
    with pytest.raises(ValueError, match="different user id maps"):
        a.concat(other)


def test_item_metadata_lookup():
    info = Metadata(np.array([10, 20, 99]), {"title": np.array(["Ten", "Twenty", "Unrated"]),
                                             "genres": np.array(["Action|Drama", "", "Comedy"])})
    ds = Ratings.from_arrays([1, 2], [10, 20], [3, 4], item_info=info)
    assert ds.item_title(10) == "Ten" and ds.item_title(99) == "Unrated"
    assert ds.item_genres(10) == ["Action", "Drama"] and ds.item_genres(20) == []
    assert list(ds.item_title(np.array([20, 5]))) == ["Twenty", None]
    with pytest.raises(KeyError, match="unknown item 5"):
        ds.item_title(5)
    # no titles: the id itself, as a string (still KeyError for an unknown id)
    bare = Ratings.from_arrays([1, 2], [7, "8"][:1] * 2, [1, 2])
    assert bare.item_title(7) == "7"
    assert list(bare.item_title(np.array([7, 5]))) == ["7", None]
    with pytest.raises(KeyError, match="unknown item 5"):
        bare.item_title(5)
    assert Ratings.from_arrays([1], ["x"], [1]).item_title("x") == "x"
    with pytest.raises(ValueError, match="carries no item genres"):
        bare.item_genres(7)


def test_openmp_enabled_reports_a_bool():
    assert isinstance(fastmf.openmp_enabled(), bool)
    assert fastmf.openmp_enabled() == bool(_csr.openmp_enabled())
    assert _csr.max_threads() >= 1


# ---------------------------------------------------------------- rating scale: inferred or declared
def test_scale_is_inferred_the_same_way_by_every_constructor(tmp_path):
    users, items, ratings = [1, 1, 2, 3], [10, 20, 10, 30], [0.5, 4.0, 2.5, 3.0]
    built = [Ratings.from_arrays(users, items, ratings)]
    pd = pytest.importorskip("pandas")
    built.append(Ratings.from_dataframe(pd.DataFrame({"userId": users, "movieId": items, "rating": ratings})))
    sp = pytest.importorskip("scipy.sparse")
    built.append(Ratings.from_scipy(sp.csr_matrix((ratings, ([0, 0, 1, 2], [0, 1, 0, 2])))))
    p = tmp_path / "r.csv"
    p.write_text("".join(f"{u},{i},{r}\n" for u, i, r in zip(users, items, ratings)))
    built.append(fastmf.read_ratings(p))
    for ds in built:
        assert ds.rating_scale == (0.5, 4.0), ds
    # all ratings equal (e.g. implicit data): no scale
    assert Ratings.from_arrays([1, 2], [1, 1], [1, 1]).rating_scale is None
    assert Ratings.from_arrays([1, 2], [1, 1]).rating_scale is None


def test_from_dataframe_on_ml_latest_small_ratings_csv():
    pd = pytest.importorskip("pandas")
    folder = need_data("ml-latest-small")
    path = folder / "ratings.csv"
    df = pd.read_csv(path)
    ds = Ratings.from_dataframe(df, timestamp="timestamp")
    assert len(ds) == len(df) and ds.rating_scale == (0.5, 5.0)
    assert fastmf.read_ratings(path).rating_scale == (0.5, 5.0)
    assert fastmf.load_movielens("ml-latest-small", path=folder, download=False).rating_scale == (0.5, 5.0)


def test_declared_scale_is_checked_in_every_constructor(tmp_path):
    users, items, ratings = [1, 1, 2], [10, 20, 10], [3.0, 0.5, 4.0]
    with pytest.raises(ValueError, match=r"ratings\[1\] = 0.5 is outside the rating scale \[1, 5\]"):
        Ratings.from_arrays(users, items, ratings, rating_scale=(1, 5))
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match=r"ratings\[1\] = 0.5 is outside the rating scale \[1, 5\]"):
        Ratings.from_dataframe(pd.DataFrame({"userId": users, "movieId": items, "rating": ratings}),
                               rating_scale=(1, 5))
    sp = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match=r"matrix values\[\d\] = 0.5 is outside the rating scale \[1, 5\]"):
        Ratings.from_scipy(sp.csr_matrix(([3.0, 0.5], ([0, 1], [0, 1]))), rating_scale=(1, 5))
    p = tmp_path / "r.tsv"
    p.write_text("1\t10\t3\n1\t20\t0.5\n")
    with pytest.raises(ValueError, match=r"r\.tsv, line 2: field 3 \(rating\) 0.5 is outside the rating scale \[1, 5\]"):
        fastmf.read_ratings(p, rating_scale=(1, 5))
    # a declared wider scale is kept as declared
    assert Ratings.from_arrays(users, items, ratings, rating_scale=(0, 10)).rating_scale == (0.0, 10.0)
    with pytest.raises(ValueError, match="rating_scale must be 'infer'"):
        Ratings.from_arrays(users, items, ratings, rating_scale="auto")


def test_movielens_keeps_its_known_scale():
    from fastmf.io import MOVIELENS

    assert MOVIELENS["ml-100k"]["rating_scale"] == (1.0, 5.0)
    assert MOVIELENS["ml-latest-small"]["rating_scale"] == (0.5, 5.0)


# ---------------------------------------------------------------- id factorisation fast paths
@pytest.mark.parametrize("values", [
    np.array([5, 3, 5, 9, 3, 100]),                       # dense integers: presence table
    np.array([10**12, 7, 10**12, -4]),                    # sparse range: np.unique
    np.array([-3, -1, -3, 0]),
    np.array([f"u{x}" for x in np.random.default_rng(0).integers(0, 5000, 120_000)]),  # pandas
])
def test_from_values_equals_np_unique(values):
    m, idx = IdMap.from_values(values)
    uniq, inv = np.unique(values, return_inverse=True)
    assert list(m.ids) == list(uniq) and idx.dtype == np.int32
    np.testing.assert_array_equal(idx, inv.reshape(-1))


def test_duplicates_warn_with_count():
    with pytest.warns(fastmf.DuplicateRatingsWarning, match=r"2 repeated \(user, item\) rating\(s\) resolved, "
                      r"the last one in input order kept .* user 1, item 10 at position 1"):
        ds = Ratings.from_arrays([1, 1, 2, 1], [10, 10, 5, 10], [1, 2, 3, 4])
    assert len(ds) == 2
    with pytest.warns(fastmf.DuplicateRatingsWarning, match="averaged"):
        Ratings.from_arrays([1, 1], [10, 10], [1, 2], duplicates="mean")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Ratings.from_arrays([1, 2], [10, 10], [1, 2])  # no repeat, no warning
