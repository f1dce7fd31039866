"""The on-disk rating store (fastmf.data.store): conversion in chunks, validation on open, and SGD
training over its memory maps, equal bit for bit to training on read_ratings of the same file."""

import json
import os

import numpy as np
import pytest

import fastmf
from fastmf.data.store import open_store, write_store
from fastmf.errors import DataError

STATE = ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "user_engagement_",
         "item_engagement_", "seen_indptr_", "seen_indices_", "item_counts_")


def write_file(path, ds, sep=",", header=True, fmt="{u},{i},{r:g}\n", user=lambda u: u * 7, item=lambda i: i + 100,
               seed=0):
    u, i, r, _ = ds.to_arrays()
    order = np.random.default_rng(seed).permutation(len(ds))  # file order unrelated to the ids
    with open(path, "w") as fh:
        if header:
            fh.write(sep.join(["userId", "movieId", "rating"]) + "\n")
        for k in order:
            fh.write(fmt.format(u=user(u[k]), i=item(i[k]), r=r[k]))
    return path


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory):
    ds = fastmf.make_ratings(400, 150, 9000, seed=3)
    return write_file(str(tmp_path_factory.mktemp("store") / "ratings.csv"), ds)


def assert_same_model(a, b):
    for name in STATE:
        if name.endswith("engagement_") and a.ranking != "engagement":
            continue
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.global_mean_ == b.global_mean_
    assert [e["train_rmse"] for e in a.history_] == [e["train_rmse"] for e in b.history_]


@pytest.mark.parametrize("chunk_bytes", [700, 1 << 20])
@pytest.mark.parametrize("n_blocks", [1, 3, 4])
def test_sgd_on_the_store_equals_sgd_in_memory(tmp_path, ratings_file, chunk_bytes, n_blocks):
    store = write_store(ratings_file, tmp_path / "s", n_blocks, chunk_bytes=chunk_bytes)
    mem = fastmf.read_ratings(ratings_file)
    assert (store.n_ratings, store.n_users, store.n_items) == (len(mem), mem.n_users, mem.n_items)
    np.testing.assert_array_equal(store.user_ids, mem.user_map.ids)
    kw = dict(n_blocks=n_blocks, random_state=0, n_epochs=3, n_factors=8)
    a = fastmf.MatrixFactorization(**kw).fit(mem)
    b = fastmf.MatrixFactorization(**kw).fit(open_store(tmp_path / "s"))
    assert_same_model(a, b)
    # and the model answers in raw ids as usual, and saves (its seen items are the store's map)
    assert b.recommend(mem.user_map.ids[0], n=5)[0].tolist() == a.recommend(mem.user_map.ids[0], n=5)[0].tolist()
    assert isinstance(b.seen_indices_, np.memmap) or isinstance(b.seen_indices_.base, np.memmap)
    b.save(tmp_path / "m.npz")
    c = fastmf.load(tmp_path / "m.npz")
    assert_same_model(a, c)


def test_the_store_fit_is_the_same_for_any_thread_count(tmp_path, ratings_file):
    store = write_store(ratings_file, tmp_path / "s", 4)
    kw = dict(n_blocks=4, random_state=1, n_epochs=2, n_factors=8, ranking="rating")
    assert_same_model(fastmf.MatrixFactorization(n_threads=1, **kw).fit(store),
                      fastmf.MatrixFactorization(n_threads=2, **kw).fit(store))


def test_movielens_format_string_ids_and_implicit_data(tmp_path):
    ds = fastmf.make_ratings(120, 60, 1500, seed=5)
    dat = write_file(str(tmp_path / "ratings.dat"), ds, header=False, fmt="{u}::{i}::{r:g}::978300760\n",
                     user=lambda u: f"u{u}", item=lambda i: i)
    kw = dict(n_blocks=2, random_state=0, n_epochs=2, n_factors=4)
    mem = fastmf.read_ratings(dat, columns=["user", "item", "rating", None])
    store = write_store(dat, tmp_path / "s", 2, columns=["user", "item", "rating", None], chunk_bytes=333)
    assert store.user_ids.dtype.kind == "U"
    assert_same_model(fastmf.MatrixFactorization(**kw).fit(mem), fastmf.MatrixFactorization(**kw).fit(store))
    pairs = write_file(str(tmp_path / "pairs.csv"), ds, header=False, fmt="{u},{i}\n")
    implicit = write_store(pairs, tmp_path / "p", 2)
    assert implicit.rating_scale is None and np.all(np.asarray(implicit.ratings_) == 1.0)


def test_fit_refuses_another_block_count(tmp_path, ratings_file):
    store = write_store(ratings_file, tmp_path / "s", 4)
    with pytest.raises(ValueError, match="laid out in 4 blocks per side but this fit uses n_blocks=2"):
        fastmf.MatrixFactorization(n_blocks=2, n_epochs=1).fit(store)


def test_write_refuses_duplicates_and_an_existing_store(tmp_path, ratings_file):
    dup = tmp_path / "dup.csv"
    with open(ratings_file) as fh:
        lines = fh.readlines()
    dup.write_text("".join(lines + [lines[5]]))
    with pytest.raises(DataError, match="duplicate rating for user"):
        write_store(dup, tmp_path / "d", 2)
    write_store(ratings_file, tmp_path / "s", 2)
    with pytest.raises(DataError, match="already holds a rating store"):
        write_store(ratings_file, tmp_path / "s", 2)


def test_write_names_the_line_of_a_bad_record(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("1,2,3\n" * 50 + "1,x y,4\n" + "3,4,5\n" * 50)
    with pytest.raises(DataError, match="bad.csv"):
        write_store(path, tmp_path / "s", 2, chunk_bytes=64)


@pytest.fixture
def store_dir(tmp_path, ratings_file):
    write_store(ratings_file, tmp_path / "s", 3)
    return tmp_path / "s"


def edit_header(d, **fields):
    head = json.loads((d / "store.json").read_text())
    head.update(fields)
    (d / "store.json").write_text(json.dumps(head))


@pytest.mark.parametrize("fields, match", [
    ({"format": "other"}, "field 'format'"),
    ({"version": 2}, "field 'version'"),
    ({"n_ratings": -1}, "field 'n_ratings'"),
    ({"n_blocks": 4}, "block_ptr.npy"),
    ({"n_ratings": 10}, "users.npy"),
    ({"dtype": "float64"}, "ratings.npy: dtype is float32"),
    ({"rating_scale": [5, 1]}, "field 'rating_scale'"),
    ({"rating_scale": [2, 3]}, "outside the rating scale"),
])
def test_open_refuses_a_bad_header(store_dir, fields, match):
    edit_header(store_dir, **fields)
    with pytest.raises(DataError, match=match):
        open_store(store_dir)


def resave(d, name, edit):
    a = np.load(d / f"{name}.npy")
    a = edit(a.copy())
    np.save(d / f"{name}.npy", a)


@pytest.mark.parametrize("name, edit, match", [
    ("items", lambda a: np.where(np.arange(a.size) == 3, 10 ** 6, a).astype(np.int32), r"items.npy: entry 3 = 1000000"),
    ("items", lambda a: a.astype(np.int64), "items.npy: dtype is int64"),
    ("ratings", lambda a: np.where(np.arange(a.size) == 0, np.nan, a).astype(np.float32), "ratings.npy: entry 0"),
    ("block_ptr", lambda a: a[::-1].copy(), "block_ptr.npy: offsets"),
    ("user_block", lambda a: a[::-1].copy(), "user_block.npy: groups"),
    ("user_ids", lambda a: a[::-1].copy(), "user_ids.npy: ids must be sorted"),
    ("users", lambda a: np.r_[a[1:], a[:1]].astype(np.int32), "outside its block|stored twice"),
    ("csr_data", lambda a: a[::-1].copy(), "csr_data.npy: the CSR does not hold the same ratings"),
    ("csr_indices", lambda a: a[::-1].copy(), "csr_indices.npy: entries"),
    ("csr_indptr", lambda a: np.r_[0, np.full(a.size - 1, a[-1])], "csr_indptr.npy: row 0"),
])
def test_open_refuses_a_bad_array(store_dir, name, edit, match):
    resave(store_dir, name, edit)
    with pytest.raises(DataError, match=match):
        open_store(store_dir)


def test_open_refuses_a_repeated_pair_and_pickles(store_dir):
    users, items = np.load(store_dir / "users.npy"), np.load(store_dir / "items.npy")
    items[1], users[1] = items[0], users[0]  # same block, same pair
    np.save(store_dir / "items.npy", items)
    np.save(store_dir / "users.npy", users)
    with pytest.raises(DataError, match="stored twice"):
        open_store(store_dir)
    np.save(store_dir / "item_ids.npy", np.array([object()] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="item_ids.npy: cannot be read"):
        open_store(store_dir)


def test_open_without_a_store(tmp_path):
    with pytest.raises(DataError, match="no store.json"):
        open_store(tmp_path)
