"""fastmf.io: read_ratings (C tokenizer), MovieLens loaders, the download path (local server only)."""

import functools
import hashlib
import http.server
import io
import os
import threading
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import fastmf
from fastmf import io as fio
from fastmf.io import DatasetNotFoundError, load_movielens, load_movielens_split, read_ratings

from conftest import ML1M_PARTIAL, need_data

COLS4 = ("user", "item", "rating", "timestamp")
ROWS = [(1, 10, 4.0, 100), (1, 20, 3.5, 101), (2, 10, 5.0, 102), (3, 30, 1.0, 103)]


def write(tmp_path, text, name="r.txt", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return p


def lines(sep, rows=ROWS, eol="\n"):
    return "".join(sep.join(str(v) for v in r) + eol for r in rows)


def check_rows(ds, rows=ROWS):
    u, i, r, t = ds.to_arrays()
    assert_array_equal(u, [r_[0] for r_ in rows])
    assert_array_equal(i, [r_[1] for r_ in rows])
    assert_array_equal(r, np.array([r_[2] for r_ in rows], dtype=np.float32))
    if t is not None:
        assert_array_equal(t, [r_[3] for r_ in rows])


# ------------------------------------------------------------------ read_ratings: formats

@pytest.mark.parametrize("sep", ["\t", ",", "::", ";", " | "])
def test_separators(tmp_path, sep):
    ds = read_ratings(write(tmp_path, lines(sep)), sep=sep)
    check_rows(ds)
    assert len(ds) == 4 and ds.n_users == 3 and ds.n_items == 3
    assert ds.rating.dtype == np.float32 and ds.timestamp.dtype == np.int64
    assert ds.user_map.ids.dtype == np.int64 and ds.rating_scale == (1.0, 5.0)
    assert ds.name == "r.txt"


def test_header_true_and_infer(tmp_path):
    p = write(tmp_path, "userId,movieId,rating,timestamp\n" + lines(","))
    check_rows(read_ratings(p, sep=",", header=True))
    check_rows(read_ratings(p, sep=",", header="infer"))
    # no header: infer keeps the first line, header=True would drop it
    q = write(tmp_path, lines(","), "nohead.csv")
    check_rows(read_ratings(q, sep=",", header="infer"))
    check_rows(read_ratings(q, sep=",", header=True), ROWS[1:])
    # without the header option the header line is reported as a bad rating on line 1
    with pytest.raises(ValueError, match=r"r\.txt, line 1: field 3 \(rating\) 'rating' is not a number"):
        read_ratings(p, sep=",", header=False)
    # the default is header="infer"
    check_rows(read_ratings(p, sep=","))


def test_header_infer_without_numeric_columns(tmp_path):
    p = write(tmp_path, "user,item\n1,2\n3,4\n")
    ds = read_ratings(p, sep=",", columns=("user", "item"), header="infer")
    assert_array_equal(ds.to_arrays()[0], [1, 3])


def test_crlf_blank_and_comment_lines(tmp_path):
    text = "# a comment\r\n" + lines("\t", ROWS[:2], "\r\n") + "\r\n\n" + lines("\t", ROWS[2:], "\r\n") + "\n"
    ds = read_ratings(write(tmp_path, text), comment="#")
    check_rows(ds)
    # the last line may lack its line ending
    check_rows(read_ratings(write(tmp_path, lines("\t").rstrip("\n"), "noeol.txt")))


def test_utf8_bom_is_ignored(tmp_path):
    p = write(tmp_path, b"\xef\xbb\xbf" + lines(",").encode())
    check_rows(read_ratings(p, sep=","))


def test_spaces_around_fields(tmp_path):
    ds = read_ratings(write(tmp_path, " 1 , 10 ,4.5 , 7\n2,11, 3 ,8\n"), sep=",")
    check_rows(ds, [(1, 10, 4.5, 7), (2, 11, 3.0, 8)])


def test_string_ids_fall_back_to_strings(tmp_path):
    rows = [("u12", "i1", 4.0, 1), ("u3", "i1", 2.0, 2), ("u12", "i2", 5.0, 3)]
    ds = read_ratings(write(tmp_path, lines("::", rows)), sep="::")
    assert ds.user_map.is_string and ds.item_map.is_string
    u, i, r, t = ds.to_arrays()
    assert list(u) == ["u12", "u3", "u12"] and list(i) == ["i1", "i1", "i2"]
    assert_array_equal(r, [4, 2, 5])
    assert sorted(ds.user_map.ids) == ["u12", "u3"]


def test_mixed_id_column_becomes_all_strings(tmp_path):
    # only the user column has a non-integer id (on the last line): that column switches to strings,
    # integer-looking ids included; the item column stays int64
    rows = [(1, 10, 3, 1), (2, 20, 4, 2), ("x9", 10, 5, 3)]
    ds = read_ratings(write(tmp_path, lines("\t", rows)))
    assert ds.user_map.is_string and not ds.item_map.is_string
    assert list(ds.to_arrays()[0]) == ["1", "2", "x9"]
    assert_array_equal(ds.to_arrays()[1], [10, 20, 10])


def test_id_overflowing_int64_is_a_string_id(tmp_path):
    big = "123456789012345678901234567890"
    ds = read_ratings(write(tmp_path, f"{big}\t1\t3\t5\n7\t1\t4\t6\n"))
    assert list(ds.to_arrays()[0]) == [big, "7"]


def test_latin1_string_ids(tmp_path):
    p = write(tmp_path, "Jos\u00e9,a,3\nZo\u00eb,a,4\n", encoding="latin-1")
    ds = read_ratings(p, sep=",", columns=("user", "item", "rating"), encoding="latin-1")
    assert list(ds.to_arrays()[0]) == ["Jos\u00e9", "Zo\u00eb"]
    with pytest.raises(ValueError, match="not valid utf-8"):
        read_ratings(p, sep=",", columns=("user", "item", "rating"))
    # utf-8 non-ASCII ids decode with the default encoding
    q = write(tmp_path, "Jos\u00e9,a,3\n", "u8.csv")
    assert list(read_ratings(q, sep=",", columns=("user", "item", "rating")).to_arrays()[0]) == ["Jos\u00e9"]


def test_implicit_no_rating_column(tmp_path):
    ds = read_ratings(write(tmp_path, "1,5\n1,6\n2,5\n"), sep=",", columns=("user", "item"))
    assert_array_equal(ds.rating, [1, 1, 1])
    assert ds.timestamp is None and ds.rating_scale is None


def test_skip_columns(tmp_path):
    text = "1|junk|10|x|4|more\n2||20|y|2|z\n"
    ds = read_ratings(write(tmp_path, text), sep="|", columns=("user", None, "item", "_", "rating", "skip"))
    check_rows(ds, [(1, 10, 4.0, None), (2, 20, 2.0, None)])
    assert ds.timestamp is None


def test_multichar_separator_pieces_stay_in_fields(tmp_path):
    # a lone ':' is not the '::' separator: it stays inside the field (here a string user id)
    ds = read_ratings(write(tmp_path, "u:1::7::4::1\n2::7::3::2\n"), sep="::")
    assert list(ds.to_arrays()[0]) == ["u:1", "2"]
    with pytest.raises(ValueError, match=r"line 1: field 3 \(rating\) '4:5' is not a number"):
        read_ratings(write(tmp_path, "1::7::4:5::1\n", "c.dat"), sep="::")


def test_timestamp_before_rating_order(tmp_path):
    ds = read_ratings(write(tmp_path, "100,1,10,4\n101,2,10,3\n"), sep=",",
                      columns=("timestamp", "user", "item", "rating"))
    check_rows(ds, [(1, 10, 4.0, 100), (2, 10, 3.0, 101)])


def test_dtype_float64_keeps_digits(tmp_path):
    p = write(tmp_path, "1,1,3.14159265358979\n")
    ds = read_ratings(p, sep=",", columns=("user", "item", "rating"), dtype="float64")
    assert ds.rating.dtype == np.float64 and ds.rating[0] == 3.14159265358979
    assert read_ratings(p, sep=",", columns=("user", "item", "rating")).rating[0] == np.float32(3.14159265358979)


def test_int64_limits(tmp_path):
    lo, hi = -(2**63), 2**63 - 1
    ds = read_ratings(write(tmp_path, f"1,1,1,{lo}\n1,2,1,{hi}\n1,3,1,+5\n"), sep=",")
    assert_array_equal(ds.timestamp, [lo, hi, 5])
    with pytest.raises(ValueError, match=r"line 1: field 4 \(timestamp\) '9223372036854775808' does not fit"):
        read_ratings(write(tmp_path, f"1,1,1,{hi + 1}\n", "over.csv"), sep=",")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False),
                min_size=1, max_size=20),
       st.sampled_from(["repr", "e", "f6"]))
def test_float_parsing_matches_python(tmp_path_factory, values, style):
    fmt = {"repr": repr, "e": lambda v: f"{v:.17e}", "f6": lambda v: f"{v:.6f}"}[style]
    texts = [fmt(v) for v in values]
    p = tmp_path_factory.mktemp("f") / "f.csv"
    p.write_text("".join(f"1,{k},{s}\n" for k, s in enumerate(texts)))
    ds = read_ratings(p, sep=",", columns=("user", "item", "rating"), rating_scale=None, dtype="float64")
    assert_array_equal(ds.rating, [float(s) for s in texts])


@pytest.mark.parametrize("text,value", [("4.5", 4.5), (".5", 0.5), ("5.", 5.0), ("1e0", 1.0), ("+2", 2.0),
                                        ("0.30000000000000004", 0.30000000000000004), ("25E-1", 2.5),
                                        ("3.000000000000000000000001", 3.0)])
def test_float_forms(tmp_path, text, value):
    ds = read_ratings(write(tmp_path, f"1,1,{text}\n"), sep=",", columns=("user", "item", "rating"),
                      dtype="float64", rating_scale=None)
    assert ds.rating[0] == value


# ------------------------------------------------------------------ read_ratings: bad input

def test_wrong_field_count_names_file_and_line(tmp_path):
    p = write(tmp_path, lines("\t", ROWS[:2]) + "1\t2\t3\n" + lines("\t", ROWS[2:]), "u.data")
    with pytest.raises(ValueError) as e:
        read_ratings(p)
    msg = str(e.value)
    assert str(p) in msg and "line 3:" in msg
    assert "expected 4 fields separated by '\\t', found 3: '1\\t2\\t3'" in msg
    # too many fields
    q = write(tmp_path, "1\t2\t3\t4\t5\n", "five.txt")
    with pytest.raises(ValueError, match=r"five\.txt, line 1: expected 4 fields .* found 5"):
        read_ratings(q)


def test_line_numbers_count_header_comment_and_blank_lines(tmp_path):
    text = "user,item,rating,ts\r\n# note\r\n\r\n1,2,3,4\r\n\r\n5,6,x,8\r\n"
    p = write(tmp_path, text, "h.csv")
    with pytest.raises(ValueError, match=r"h\.csv, line 6: field 3 \(rating\) 'x' is not a number: '5,6,x,8'"):
        read_ratings(p, sep=",", header=True, comment="#")


def test_field_count_error_wins_over_value_error(tmp_path):
    with pytest.raises(ValueError, match="line 1: expected 4 fields"):
        read_ratings(write(tmp_path, "1\tx\n"), columns=COLS4)


@pytest.mark.parametrize("bad", ["abc", "4,5", "3..5", "1e", "--3", "0x10", "4 5"])
def test_non_numeric_rating(tmp_path, bad):
    p = write(tmp_path, f"1;1;3;1\n2;2;{bad};2\n")
    with pytest.raises(ValueError, match=r"line 2: field 3 \(rating\) .* is not a number"):
        read_ratings(p, sep=";")


def test_non_numeric_rating_with_string_ids(tmp_path):
    # string ids switch the id columns, but a bad rating is still an error naming its line
    p = write(tmp_path, "a\tb\t3\t1\nc\td\tbad\t2\n")
    with pytest.raises(ValueError, match=r"line 2: field 3 \(rating\) 'bad' is not a number"):
        read_ratings(p)


def test_non_numeric_timestamp(tmp_path):
    with pytest.raises(ValueError, match=r"line 1: field 4 \(timestamp\) '2020-01-01' is not an integer"):
        read_ratings(write(tmp_path, "1\t1\t3\t2020-01-01\n"))


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_non_finite_rating(tmp_path, bad):
    p = write(tmp_path, f"1\t1\t3\t1\n1\t2\t4\t1\n2\t1\t{bad}\t1\n")
    with pytest.raises(ValueError, match=rf"r\.txt, line 3: field 3 \(rating\) '{bad}' is not finite"):
        read_ratings(p, rating_scale=None)


def test_huge_rating_overflows(tmp_path):
    with pytest.raises(ValueError, match=r"line 1: field 3 \(rating\) '1e999' overflows a double"):
        read_ratings(write(tmp_path, "1\t1\t1e999\t1\n"), rating_scale=None)


def test_rating_outside_scale(tmp_path):
    p = write(tmp_path, "h\n1,1,3,1\n\n1,2,6,1\n", "s.csv")
    with pytest.raises(ValueError, match=r"s\.csv, line 4: field 3 \(rating\) 6 is outside the rating scale \[1, 5\]"):
        read_ratings(p, sep=",", header=True, rating_scale=(1, 5))
    with pytest.raises(ValueError, match=r"line 2: .* 0 is outside the rating scale \[0.5, 5\]"):
        read_ratings(write(tmp_path, "1,1,0.5,1\n1,2,0,1\n", "z.csv"), sep=",", rating_scale=(0.5, 5))
    ds = read_ratings(p, sep=",", header=True, rating_scale=None)
    assert_array_equal(ds.rating, [3, 6]) and ds.rating_scale is None
    # the bounds are inclusive
    assert len(read_ratings(write(tmp_path, "1,1,1,1\n1,2,5,1\n", "b.csv"), sep=",", rating_scale=(1, 5))) == 2


def test_empty_field(tmp_path):
    with pytest.raises(ValueError, match=r"line 2: field 2 \(item\) is empty"):
        read_ratings(write(tmp_path, "1,1,3,1\n1,,3,1\n"), sep=",")
    with pytest.raises(ValueError, match=r"line 1: field 1 \(user\) is empty"):
        read_ratings(write(tmp_path, " \t1\t3\t1\n", "sp.txt"))


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(ValueError, match=r"empty\.txt: no ratings, the file is empty"):
        read_ratings(write(tmp_path, "", "empty.txt"))
    with pytest.raises(ValueError, match="no data lines"):
        read_ratings(write(tmp_path, "userId,movieId,rating,timestamp\r\n\r\n", "h.csv"), sep=",", header=True)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_ratings(tmp_path / "nope.txt")


def test_long_line_is_truncated_in_message(tmp_path):
    p = write(tmp_path, "1\t" + "9" * 5000 + "\n")
    with pytest.raises(ValueError) as e:
        read_ratings(p, columns=COLS4)
    assert "found 2" in str(e.value) and len(str(e.value)) < 400 and "..." in str(e.value)


@pytest.mark.filterwarnings("ignore::fastmf.data.DuplicateRatingsWarning")
def test_duplicates_policy(tmp_path):
    p = write(tmp_path, "1,1,2,10\n1,2,3,11\n1,1,4,12\n2,1,5,13\n")
    last = read_ratings(p, sep=",")
    assert len(last) == 3
    u, i, r, t = last.to_arrays()
    sel = (u == 1) & (i == 1)
    assert r[sel] == [4] and t[sel] == [12]
    mean = read_ratings(p, sep=",", duplicates="mean")
    u, i, r, t = mean.to_arrays()
    assert r[(u == 1) & (i == 1)] == [3.0]
    with pytest.raises(ValueError, match=r"line 3: duplicate rating for user 1, item 1 \(first given on line 1\)"):
        read_ratings(p, sep=",", duplicates="error")
    with pytest.raises(ValueError, match="duplicates must be one of"):
        read_ratings(p, sep=",", duplicates="first")


def test_duplicate_error_line_skips_blank_lines(tmp_path):
    p = write(tmp_path, "h\n\na,x,3\n\nb,x,3\n# c\na,x,4\n")
    with pytest.raises(ValueError, match=r"line 7: duplicate rating for user 'a', item 'x' \(first given on line 3\)"):
        read_ratings(p, sep=",", columns=("user", "item", "rating"), header=True, comment="#",
                     duplicates="error")


@pytest.mark.parametrize("kwargs,match", [
    (dict(columns=("user", "rating")), "must include 'item'"),
    (dict(columns=("user", "item", "score")), "unknown field name 'score'"),
    (dict(columns=("user", "item", "item")), "'item' appears 2 times"),
    (dict(columns="user item"), "sequence of field names"),
    (dict(header="yes"), "header must be"),
    (dict(sep=""), "sep must be a non-empty string"),
    (dict(sep="\n"), "line break"),
    (dict(rating_scale=(5, 1)), "low < high"),
    (dict(rating_scale="x"), "rating_scale"),
    (dict(dtype="int32"), "dtype must be"),
    (dict(comment=""), "comment must be a non-empty string"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    p = write(tmp_path, lines("\t"))
    with pytest.raises(ValueError, match=match):
        read_ratings(p, **kwargs)


def test_exports():
    assert fastmf.read_ratings is read_ratings and fastmf.load_movielens is load_movielens


# ------------------------------------------------------------------ synthetic MovieLens folders

GENRES = fio.ML100K_GENRES


def ml100k_files(ratings):
    """Tiny synthetic files in the ml-100k layout (not MovieLens data)."""
    flags = {1: {"Action", "Sci-Fi"}, 2: {"Comedy"}, 3: set()}
    items = []
    for mid, title, date in [(1, "Alpha (1990)", "01-Jan-1990"), (2, "Beta, The (1991)", "01-Jan-1991"),
                             (3, "Gamma", "")]:
        f = "|".join("1" if g in flags[mid] else "0" for g in GENRES)
        items.append(f"{mid}|{title}|{date}||http://example.invalid/{mid}|{f}\n")
    genre = "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)) + "\n"
    users = "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"
    return {"u.data": lines("\t", ratings), "u.item": "".join(items), "u.genre": genre, "u.user": users}


SYN_A = [(1, 1, 5, 10), (2, 2, 3, 11), (3, 3, 4, 12)]
SYN_B = [(1, 1, 1, 10), (1, 2, 2, 11), (2, 3, 3, 12), (3, 1, 4, 13)]


def make_folder(root, files, encoding="latin-1"):
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_bytes(text.encode(encoding))
    return root


def test_ml100k_layout_synthetic(tmp_path):
    folder = make_folder(tmp_path / "ml-100k", ml100k_files(SYN_B))
    ds = load_movielens("ml-100k", path=folder)
    check_rows(ds, SYN_B)
    assert ds.name == "ml-100k" and ds.rating_scale == (1.0, 5.0)
    assert ds.item_title(2) == "Beta, The (1991)"
    assert ds.item_genres(1) == ["Action", "Sci-Fi"] and ds.item_genres(3) == []
    assert_array_equal(ds.item_info.columns["year"], [1990, 1991, -1])
    assert ds.user_info.get(2, "occupation") == "other" and ds.user_info.get(2, "age") == 53
    assert ds.user_info.get(3, "zip") == "32067"


def test_ml100k_bad_item_line(tmp_path):
    files = ml100k_files(SYN_B)
    files["u.item"] += "4|Broken|x\n"
    folder = make_folder(tmp_path / "ml-100k", files)
    with pytest.raises(ValueError, match=r"u\.item, line 4: expected 24 fields"):
        load_movielens("ml-100k", path=folder)


def test_split_shares_one_map_over_both_files(tmp_path):
    files = ml100k_files(SYN_B)
    files["u1.base"] = lines("\t", [(1, 1, 4, 1), (2, 2, 3, 2)])
    files["u1.test"] = lines("\t", [(3, 3, 5, 3), (1, 2, 2, 4)])  # user 3 and item 3 only in test
    folder = make_folder(tmp_path / "ml-100k", files)
    train, test = load_movielens_split(folder, "u1")
    assert train.user_map is test.user_map and train.item_map is test.item_map
    assert_array_equal(train.user_map.ids, [1, 2, 3]) and train.n_items == 3
    check_rows(train, [(1, 1, 4, 1), (2, 2, 3, 2)])
    check_rows(test, [(3, 3, 5, 3), (1, 2, 2, 4)])
    assert test.item_title(3) == "Gamma" and train.item_info is test.item_info
    # also from the path of the .base file
    tr2, te2 = load_movielens_split(folder / "u1.base")
    assert len(tr2) == 2 and len(te2) == 2
    with pytest.raises(ValueError, match="split must be one of"):
        load_movielens_split(folder, "u9")
    (folder / "u2.base").write_text(lines("\t", [(1, 1, 4, 1)]))
    (folder / "u2.test").write_text(lines("\t", [(1, 1, 5, 2)]))
    with pytest.raises(ValueError, match="duplicate"):
        load_movielens_split(folder, "u2")


def test_missing_metadata_warns(tmp_path):
    folder = make_folder(tmp_path / "ml-100k", {"u.data": lines("\t", SYN_B)})
    with pytest.warns(UserWarning) as record:
        ds = load_movielens("ml-100k", path=folder)
    assert sorted(str(w.message).split(": ")[1] for w in record) == [
        "no u.item; loading without that metadata", "no u.user; loading without that metadata"]
    assert ds.item_info is None and len(ds) == 4


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown MovieLens set 'ml-9m'; known: ml-100k, ml-1m, ml-latest-small"):
        load_movielens("ml-9m")


def test_explicit_path_missing_ratings(tmp_path):
    folder = make_folder(tmp_path / "x", {"movies.dat": "1::A (1999)::Drama\n",
                                          "ratings.PARTIAL.dat": "1::1::5::1\n"})
    with pytest.raises(DatasetNotFoundError, match=r"no ratings\.dat .*ratings_file=.*ratings\.PARTIAL\.dat"):
        load_movielens("ml-1m", path=folder)
    with pytest.warns(UserWarning, match="no users.dat"):
        ds = load_movielens("ml-1m", path=folder, ratings_file="ratings.PARTIAL.dat")
    assert ds.item_title(1) == "A (1999)" and ds.user_info is None and ds.name == "ml-1m:ratings.PARTIAL.dat"
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        load_movielens("ml-1m", path=tmp_path / "absent")


def test_ratings_file_as_path_takes_metadata_from_its_folder(tmp_path):
    folder = make_folder(tmp_path / "m", {"movies.dat": "7::Caf\u00e9 (2001)::Comedy|Drama\n",
                                          "users.dat": "5::F::25::20::12345\n",
                                          "mine.dat": "5::7::4::99\n"})
    ds = load_movielens("ml-1m", ratings_file=folder / "mine.dat", download=False)
    assert ds.item_title(7) == "Caf\u00e9 (2001)" and ds.item_genres(7) == ["Comedy", "Drama"]
    assert ds.user_info.get(5, "occupation") == "writer" and ds.item_info.get(7, "year") == 2001
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_movielens("ml-1m", ratings_file=folder / "nope.dat")


def test_resolution_order(tmp_path, monkeypatch):
    env_root = tmp_path / "env"
    cache = tmp_path / "cache"
    make_folder(env_root / "ml-100k", ml100k_files(SYN_A))
    make_folder(cache / "ml-100k", ml100k_files(SYN_B))
    explicit = make_folder(tmp_path / "explicit", ml100k_files(SYN_B[:2]))
    monkeypatch.setenv("FASTMF_DATA", str(env_root))
    monkeypatch.delenv("FASTMF_CACHE", raising=False)
    assert len(load_movielens("ml-100k", cache_dir=cache, download=False)) == 3        # env over cache
    assert len(load_movielens("ml-100k", path=explicit, cache_dir=cache, download=False)) == 2
    monkeypatch.setenv("FASTMF_DATA", str(tmp_path / "empty"))                          # no ml-100k there
    assert len(load_movielens("ml-100k", cache_dir=cache, download=False)) == 4
    monkeypatch.delenv("FASTMF_DATA")
    monkeypatch.setenv("FASTMF_CACHE", str(cache))                                     # default cache
    assert fio.default_cache_dir() == cache
    assert len(load_movielens("ml-100k", download=False)) == 4


def test_download_false_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTMF_DATA", raising=False)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError) as e:
        load_movielens("ml-100k", cache_dir=cache, download=False)
    assert isinstance(e.value, FileNotFoundError)
    msg = str(e.value)
    assert "download=False" in msg and "FASTMF_DATA is not set" in msg
    assert str(cache / "ml-100k") in msg and "$FASTMF_DATA/ml-100k" in msg and "path=" in msg
    assert "u.data" in msg and "FASTMF_CACHE" in msg


# ------------------------------------------------------------------ download through a local server

def zip_bytes(files, prefix="ml-100k/", extra=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(prefix + name, text.encode("latin-1"))
        for name, data in extra:
            zf.writestr(name, data)
    return buf.getvalue()


def md5(b):
    return hashlib.md5(b).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).hits.append(self.path)
        if self.path.startswith("/short/"):  # announce the full length, send half, close
            data = (self.directory_path / "good" / "ml-100k.zip").read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    good = zip_bytes(ml100k_files(SYN_B))
    files = {"good/ml-100k.zip": good,
             "corrupt/ml-100k.zip": good[:200] + bytes([good[200] ^ 0xFF]) + good[201:],
             "truncated/ml-100k.zip": good[: len(good) // 2],
             "evil/ml-100k.zip": zip_bytes(ml100k_files(SYN_B), extra=[("../evil", b"x")]),
             "abs/ml-100k.zip": zip_bytes(ml100k_files(SYN_B), extra=[("/tmp/fastmf-evil", b"x")])}
    small = {"ratings.csv": "userId,movieId,rating,timestamp\r\n1,1,4.5,1\r\n2,1,0.5,2\r\n1,2,3.0,3\r\n",
             "movies.csv": 'movieId,title,genres\r\n1,"Good, the Bad (1966)",Western\r\n'
                           '2,Plain (2000),(no genres listed)\r\n'}
    small_zip = zip_bytes(small, prefix="ml-latest-small/")
    files["small/ml-latest-small.zip"] = small_zip
    files["small/ml-latest-small.zip.md5"] = f"MD5 (ml-latest-small.zip) = {md5(small_zip)}\n".encode()
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    handler = type("H", (_Handler,), {"hits": [], "directory_path": root})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "handler": handler, "md5": md5(good),
               "size": len(good),
               "evil_md5": md5(files["evil/ml-100k.zip"]), "abs_md5": md5(files["abs/ml-100k.zip"]),
               "trunc_md5": md5(files["truncated/ml-100k.zip"])}
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("FASTMF_DATA", raising=False)
    monkeypatch.delenv("FASTMF_CACHE", raising=False)


def test_download_good_archive_is_cached(server, tmp_path, no_env):
    cache = tmp_path / "cache"
    url = server["url"] + "/good/ml-100k.zip"
    seen = []
    hits = server["handler"].hits
    n0 = len(hits)
    ds = load_movielens("ml-100k", cache_dir=cache, url=url, checksum=server["md5"],
                        progress=lambda done, total: seen.append((done, total)))
    check_rows(ds, SYN_B)
    assert ds.item_title(2) == "Beta, The (1991)"
    assert len(hits) == n0 + 1
    assert seen[-1] == (server["size"], server["size"])
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]
    assert (cache / "ml-100k" / "u.data").is_file()
    again = load_movielens("ml-100k", cache_dir=cache, url=url, checksum=server["md5"])
    assert len(hits) == n0 + 1  # served from the cache
    check_rows(again, SYN_B)


@pytest.mark.parametrize("where,checksum_key,match", [
    ("corrupt", "md5", "checksum mismatch"),
    ("truncated", "md5", "checksum mismatch"),
    ("truncated", "trunc_md5", "not a valid zip archive"),
    ("short", "md5", "cut short|truncated"),
    ("evil", "evil_md5", r"unsafe member '\.\./evil'"),
    ("abs", "abs_md5", r"unsafe member '/tmp/fastmf-evil'"),
])
def test_bad_downloads_leave_nothing_in_cache(server, tmp_path, no_env, where, checksum_key, match):
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=match):
        load_movielens("ml-100k", cache_dir=cache, url=f"{server['url']}/{where}/ml-100k.zip",
                       checksum=server[checksum_key])
    assert list(cache.iterdir()) == []
    assert not (tmp_path / "evil").exists() and not (cache.parent / "evil").exists()
    assert not os.path.exists("/tmp/fastmf-evil")


def test_pinned_checksum_rejects_other_bytes(server, tmp_path, no_env):
    # no checksum=: ml-100k's pinned MD5 applies whatever the URL, so the synthetic archive is refused
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="expected md5 0e33842e24a9c977be4e0107933c0723"):
        load_movielens("ml-100k", cache_dir=cache, url=server["url"] + "/good/ml-100k.zip")
    assert list(cache.iterdir()) == []


def test_download_uses_published_md5_for_latest_only_when_trusted(server, tmp_path, no_env):
    # an ml-latest-small that is no pinned release: the server's own .md5 is same-origin only, so it
    # is refused unless trust_server_checksum=True, which warns
    url = server["url"] + "/small/ml-latest-small.zip"
    with pytest.raises(ValueError, match="not a release fastmf knows .* trust_server_checksum=True"):
        load_movielens("ml-latest-small", cache_dir=tmp_path, url=url)
    assert list(tmp_path.iterdir()) == []
    with pytest.warns(fastmf.errors.UnverifiedDownloadWarning, match="same server"):
        ds = load_movielens("ml-latest-small", cache_dir=tmp_path, url=url, trust_server_checksum=True)
    assert ds.rating_scale == (0.5, 5.0)
    check_rows(ds, [(1, 1, 4.5, 1), (2, 1, 0.5, 2), (1, 2, 3.0, 3)])
    assert ds.item_title(1) == "Good, the Bad (1966)" and ds.item_genres(1) == ["Western"]
    assert ds.item_genres(2) == [] and ds.item_info.get(1, "year") == 1966 and ds.user_info is None


def test_progress_bar_on_stderr(server, tmp_path, no_env, capsys):
    load_movielens("ml-100k", cache_dir=tmp_path, url=server["url"] + "/good/ml-100k.zip",
                   checksum=server["md5"], progress=True)
    err = capsys.readouterr().err
    assert "100.0%" in err and err.endswith("\n")
    with pytest.raises(ValueError, match="progress must be"):
        load_movielens("ml-100k", cache_dir=tmp_path, progress="yes")


def test_no_network_is_dataset_not_found(tmp_path, no_env):
    with pytest.raises(DatasetNotFoundError, match=r"download failed: cannot fetch http://127\.0\.0\.1:9/"):
        load_movielens("ml-100k", cache_dir=tmp_path, url="http://127.0.0.1:9/ml-100k.zip",
                       checksum="0" * 32)


def test_bad_checksum_argument(tmp_path, no_env):
    with pytest.raises(ValueError, match="32 \\(MD5\\) or 64"):
        load_movielens("ml-100k", cache_dir=tmp_path, url="http://127.0.0.1:9/x.zip", checksum="abc")


# ------------------------------------------------------------------ real MovieLens (FASTMF_DATA)

def test_real_ml100k():
    ds = load_movielens("ml-100k", path=need_data("ml-100k"), download=False)
    assert len(ds) == 100_000 and ds.n_users == 943 and ds.n_items == 1682
    assert ds.global_mean() == pytest.approx(3.5299, abs=1e-4)
    assert ds.item_title(50) == "Star Wars (1977)"
    assert {"Action", "Sci-Fi"} <= set(ds.item_genres(50))
    assert ds.item_info.get(50, "year") == 1977
    assert ds.user_info.get(1, "occupation") == "technician" and ds.user_info.get(1, "age") == 24
    u, i, r, t = ds.to_arrays()
    assert (u[0], i[0], r[0], t[0]) == (196, 242, 3.0, 881250949)


def test_real_ml100k_u1():
    train, test = load_movielens_split(need_data("ml-100k"), "u1")
    assert len(train) == 80_000 and len(test) == 20_000
    assert train.user_map is test.user_map and train.item_map is test.item_map
    assert train.n_users == 943 and train.n_items == 1682
    both = np.concatenate([train.rating, test.rating]).astype(np.float64)
    assert both.mean() == pytest.approx(3.5299, abs=1e-4)


def test_real_ml_latest_small():
    ds = load_movielens("ml-latest-small", path=need_data("ml-latest-small"), download=False)
    assert len(ds) == 100_836 and ds.n_users == 610 and ds.n_items == 9_724
    assert ds.global_mean() == pytest.approx(3.5016, abs=1e-4)
    assert ds.rating_scale == (0.5, 5.0)
    assert ds.item_title(11) == "American President, The (1995)"
    assert len(ds.item_info.map) == 9_742


def test_real_ml1m_partial():
    folder = need_data("ml-1m")
    ds = load_movielens("ml-1m", path=folder, ratings_file=ML1M_PARTIAL)
    assert len(ds) == 487_650 and ds.n_users == 2_999 and ds.n_items == 3_615
    assert ds.global_mean() == pytest.approx(3.5719, abs=1e-4)
    titles = ds.item_info.columns["title"]
    assert len(titles) == 3_883
    non_ascii = [t for t in titles if any(ord(c) > 127 for c in t)]
    assert len(non_ascii) > 0 and "Mis\u00e9rables, Les (1995)" in non_ascii
    assert ds.user_info.get(1, "gender") == "F" and ds.user_info.get(2, "age") == 56
    with pytest.raises(DatasetNotFoundError, match="ratings_file="):
        load_movielens("ml-1m", path=folder)


# ---------------------------------------------------------------- defaults a person expects
def test_csv_suffix_means_comma_and_header_is_inferred(tmp_path):
    p = write(tmp_path, "userId,movieId,rating,timestamp\n" + lines(","), "ratings.csv")
    check_rows(read_ratings(p))
    assert fio.guess_sep(p) == ","
    assert fio.guess_sep(write(tmp_path, "1\t2\t3\n", "x.tsv")) == "\t"
    assert fio.guess_sep(write(tmp_path, "1::2::3::4\n", "x.dat")) == "::"
    assert fio.guess_sep(write(tmp_path, "1;2;3\n", "x.txt")) == ";"
    assert fio.guess_sep(write(tmp_path, '"a,b";2;3\n', "y.txt")) == ";"
    # a first line holding a number is data, not a header
    check_rows(read_ratings(write(tmp_path, lines(","), "nohead.csv")))


def test_three_column_file_has_no_timestamps(tmp_path):
    p = write(tmp_path, "1,10,4\n1,20,3.5\n2,10,5\n", "three.csv")
    ds = read_ratings(p)
    assert ds.timestamp is None
    assert_array_equal(ds.rating, [4, 3.5, 5]) and ds.rating_scale == (3.5, 5.0)
    assert fio.guess_columns(p) == ("user", "item", "rating")
    clicks = read_ratings(write(tmp_path, "a\tx\nb\ty\n", "clicks.tsv"))
    assert clicks.rating_scale is None and list(clicks.rating) == [1, 1]


def test_quoted_fields_lose_their_quotes(tmp_path):
    text = ('"user","item","rating","timestamp"\n'
            '"u1","Toy Story (1995)",4,100\n'
            '"u,2","The ""Best"" Film",3.5,101\n'
            'u3,"Heat, 1995",5,102\n')
    ds = read_ratings(write(tmp_path, text, "q.csv"))
    u, i, r, t = ds.to_arrays()
    assert list(u) == ["u1", "u,2", "u3"]
    assert list(i) == ["Toy Story (1995)", 'The "Best" Film', "Heat, 1995"]
    assert_array_equal(r, [4, 3.5, 5]) and list(t) == [100, 101, 102]
    # quoted integer ids are integers
    ds = read_ratings(write(tmp_path, '"1","10","4"\n"2","10","3"\n', "n.csv"))
    assert list(ds.user_map.ids) == [1, 2] and ds.user_map.ids.dtype == np.int64


def test_quoted_file_errors_keep_file_and_line(tmp_path):
    with pytest.raises(ValueError, match=r"bad\.csv, line 3: field 3 \(rating\) 'x' is not a number"):
        read_ratings(write(tmp_path, '"a","b",1\n\n"c","d","x"\n', "bad.csv"))
    with pytest.raises(ValueError, match=r"span\.csv, line 1: a quoted field spans lines"):
        read_ratings(write(tmp_path, '"a\nb",1,2\nc,d,3\n', "span.csv"))
    with pytest.raises(ValueError, match="one-character separator"):
        read_ratings(write(tmp_path, '"a"::1::2\n', "q.dat"))


def test_partly_missing_timestamps_are_dropped_with_a_warning(tmp_path):
    p = write(tmp_path, "user,item,rating,ts\n1,10,4,100\n1,20,3,\n2,10,5,102\n2,30,1,\n", "ts.csv")
    with pytest.warns(fio.MissingTimestampsWarning, match=r"ts\.csv: 2 line\(s\) have no timestamp "
                                                          r"\(the first is line 3\)"):
        ds = read_ratings(p)
    assert ds.timestamp is None and len(ds) == 4
    assert_array_equal(ds.rating, [4, 3, 5, 1])
    # ignoring the column explicitly is silent
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_ratings(p, columns=("user", "item", "rating", None)).timestamp is None


def test_duplicates_warn_with_file_count_and_line(tmp_path):
    p = write(tmp_path, "1\t10\t4\t1\n1\t10\t2\t2\n2\t5\t3\t3\n2\t5\t1\t4\n2\t5\t5\t5\n", "d.tsv")
    with pytest.warns(fastmf.DuplicateRatingsWarning,
                      match=r"d\.tsv: 3 repeated \(user, item\) rating\(s\) resolved, the last one in input "
                            r"order kept .*user 1, item 10 on line 2"):
        ds = read_ratings(p)
    assert_array_equal(ds.rating, [2, 5])
    with pytest.raises(ValueError, match=r"d\.tsv, line 2: duplicate rating"):
        read_ratings(p, duplicates="error")


def test_cli_reads_a_file_like_the_library(tmp_path):
    # the command line reads its data through the service (cli.load_data moved there)
    from fastmf.app import service
    from fastmf.data.readers import guess_columns

    for name, text in [("a.csv", "userId,movieId,rating\n1,10,4\n2,20,3\n"),
                       ("b.dat", "1::10::4::5\n2::20::3::6\n"),
                       ("c.txt", '"x"|"y"|2\n"z"|"y"|3\n')]:
        p = write(tmp_path, text, name)
        mine = service.load_data(str(p))
        ref = read_ratings(p)
        for a, b in zip(mine.to_arrays(), ref.to_arrays()):
            assert (a is None and b is None) or list(a) == list(b)
        assert mine.rating_scale == ref.rating_scale
        assert guess_columns(str(p), fio.guess_sep(p)) == fio.guess_columns(p)


# ---------------------------------------------------------------- against a csv-module reference
def _reference_parse(path, sep):
    """Pure-Python reading of what read_ratings should return: csv module, header if no number."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh, delimiter=sep) if r]

    def number(x):
        try:
            float(x)
            return True
        except ValueError:
            return False

    if rows and not any(number(x) for x in rows[0]):
        rows = rows[1:]
    cols = list(zip(*[[x.strip() for x in r] for r in rows]))

    def ids(col):
        try:
            return [int(x) for x in col]
        except ValueError:
            return list(col)

    return ids(cols[0]), ids(cols[1]), [float(x) for x in cols[2]], \
        [int(x) for x in cols[3]] if len(cols) > 3 else None


@pytest.mark.parametrize("seed", range(6))
def test_generated_files_match_the_csv_module(tmp_path, seed):
    import csv

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    n_cols = int(rng.choice([3, 4]))
    string_ids = bool(rng.integers(2))
    sep = [",", ";", "\t", "|"][seed % 4]
    suffix = ".csv" if sep == "," else ".txt"
    pairs = rng.choice(40 * 50, n, replace=False)
    words = ["a", "b c", 'q"uote', "x,y", "z;w", "p|q", "tab"]
    rows = []
    for key in pairs:
        u, i = divmod(int(key), 50)
        uid = f"{words[u % len(words)]}-{u}" if string_ids else str(u)
        row = [uid, str(i), str(float(rng.integers(1, 11)) / 2)]
        if n_cols == 4:
            row.append(str(int(rng.integers(0, 10**9))))
        rows.append(row)
    p = tmp_path / f"gen{suffix}"
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=sep, quoting=[csv.QUOTE_MINIMAL, csv.QUOTE_ALL][seed % 2],
                       lineterminator=["\n", "\r\n"][seed % 2])
        if seed % 3 == 0:
            w.writerow(["user", "item", "rating", "timestamp"][:n_cols])
        w.writerows(rows)
    u, i, r, t = _reference_parse(p, sep)
    ds = read_ratings(p, sep=None if sep in (",", ";", "|") else sep)
    gu, gi, gr, gt = ds.to_arrays()
    assert list(gu) == u and list(gi) == i
    assert_array_equal(gr, np.asarray(r, dtype=np.float32))
    assert (gt is None) == (t is None) and (t is None or list(gt) == t)
    assert ds.rating_scale == (min(r), max(r)) or min(r) == max(r)
