"""read_ratings against the pure-Python reference parser (fastmf.reference.parse): property tests in
the default run, regression cases for every bug the fuzzer found, and the long fuzz run (marker
``fuzz``, selected by CI: ``pytest -m fuzz``)."""

import math
import os
import shutil
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastmf
from fastmf.data import readers
from fastmf.errors import DataError, ParseError
from fastmf.reference.parse import MAX_ID_BYTES, RefParseError, read_ratings_reference

from parse_fuzzer import check_case, make_case, run, scratch_dir

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_path():
    folder = tempfile.mkdtemp(prefix="fastmf-fuzz-", dir=scratch_dir())
    yield os.path.join(folder, "case.dat")
    shutil.rmtree(folder, ignore_errors=True)


def _read(tmp_path, data, **kw):
    p = tmp_path / "r.dat"
    p.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fastmf.read_ratings(p, **kw)


# ------------------------------------------------------------------------------ property tests
@settings(max_examples=2500, **SETTINGS)
@given(st.integers(0, 2 ** 40))
def test_mutated_files_match_the_reference(fuzz_path, i):
    verdict, detail = check_case(make_case(i), fuzz_path)
    assert verdict != "diff", f"case {i}: {detail}"


FIELD_CHARS = st.sampled_from(list("0123456789012345.-+e ") + ["u", "\x00", "\r", '"', ",", ":", "\t", "é",
                                                                "x" * 300, "9" * 25, "5" * 700])


@st.composite
def structured_file(draw):
    sep = draw(st.sampled_from(["\t", "::", ","]))
    columns = draw(st.sampled_from([("user", "item", "rating", "timestamp"), ("user", "item", "rating"),
                                    ("user", "item")]))
    field = st.lists(FIELD_CHARS, min_size=1, max_size=4).map("".join)
    rows = draw(st.lists(st.lists(field,
                                  min_size=len(columns), max_size=len(columns)), min_size=1, max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(sep.join(r) for r in rows) + draw(st.sampled_from(["", eol]))
    kw = dict(sep=sep, columns=columns, header=draw(st.sampled_from([False, True, "infer"])), comment=None,
              rating_scale=draw(st.sampled_from([None, (0.5, 5.0)])), encoding="utf-8")
    return text.encode(), kw


@settings(max_examples=700, **SETTINGS)
@given(structured_file())
def test_structured_files_match_the_reference(fuzz_path, case):
    verdict, detail = check_case(case, fuzz_path)
    assert verdict != "diff", f"{case!r}: {detail}"


@settings(max_examples=300, **SETTINGS)
@given(st.lists(st.tuples(st.integers(-2 ** 63, 2 ** 63 - 1), st.integers(0, 50),
                          st.floats(0.5, 5.0, allow_nan=False), st.integers(0, 2 ** 40)),
                min_size=1, max_size=30))
def test_well_formed_files_round_trip(tmp_path_factory, rows):
    """Every value written with repr() comes back exactly (no silent change, no dropped row)."""
    text = "".join(f"{u}\t{i}\t{r!r}\t{t}\n" for u, i, r, t in rows)
    p = tmp_path_factory.mktemp("rt") / "r.tsv"
    p.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = fastmf.read_ratings(p, columns=("user", "item", "rating", "timestamp"), dtype="float64")
    last = {}
    for pos, (u, i, r, t) in enumerate(rows):
        last[(u, i)] = pos
    keep = sorted(last.values())
    users, items, ratings, ts = ds.to_arrays()
    assert users.tolist() == [rows[k][0] for k in keep]
    assert items.tolist() == [rows[k][1] for k in keep]
    assert ratings.tolist() == [rows[k][2] for k in keep]
    assert ts.tolist() == [rows[k][3] for k in keep]


# ------------------------------------------------------------------------------ regressions
def test_trailing_nul_in_an_id_is_an_error_not_a_merge(tmp_path):
    # "a" and "a\x00" were one user (fixed-width NumPy strings drop trailing NULs)
    with pytest.raises(ParseError, match=r"line 2: field 1 \(user\) .* NUL") as exc:
        _read(tmp_path, b"a\t1\t4\na\x00\t2\t3\n", sep="\t", columns=("user", "item", "rating"))
    assert (exc.value.line, exc.value.field, exc.value.reason) == (2, 1, "nul")


def test_trailing_nul_in_an_integer_id_is_an_error(tmp_path):
    # "318\x00" became item 318
    with pytest.raises(ParseError, match="line 3: field 2") as exc:
        _read(tmp_path, b"1,318,4\n2,7,3\n3,318\x00,5\n", sep=",", columns=("user", "item", "rating"))
    assert exc.value.reason == "nul"


def test_nul_in_array_ids_is_an_error():
    with pytest.raises(DataError, match=r"users: id .* at position 1 ends with a NUL"):
        fastmf.Ratings.from_arrays(["a", "a\x00"], [1, 2], [3.0, 4.0])
    with pytest.raises(DataError, match=r"items: id .* at position 0 ends with a NUL"):
        fastmf.Ratings.from_arrays([1, 2], np.array(["x\x00", "x"], dtype=object), [3.0, 4.0])
    # a NUL inside an id survives NumPy's strings: a distinct, valid id
    ds = fastmf.Ratings.from_arrays(["a", "a\x00b"], [1, 2], [3.0, 4.0])
    assert ds.n_users == 2


@pytest.mark.parametrize("digits", [30, 80, 511, 512, 2000, 100_000])
def test_long_mantissa_is_read_and_rounded_correctly(tmp_path, digits):
    rng = np.random.default_rng(digits)
    tail = "".join(str(d) for d in rng.integers(0, 10, digits))
    text = f"4.0{tail}"
    ds = _read(tmp_path, f"1,2,{text}\n3,4,{text}e-1\n".encode(), sep=",",
               columns=("user", "item", "rating"), dtype="float64")
    assert ds.rating.tolist() == [float(text), float(text + "e-1")]


@pytest.mark.parametrize("text", ["0." + "0" * 400 + "17", "1" + "0" * 1000 + "e-1000", "9" * 800 + "e-799",
                                  "2.4703282292062327208828439643411068618252990130716238221279284125033"
                                  "7753635104375932649918180817996189898282347722858865463328355177969898"
                                  "1998827668271" + "0" * 700 + "1e-324"])
def test_long_numbers_round_like_python(tmp_path, text):
    p = tmp_path / "r.tsv"
    p.write_text(f"1\t2\t{text}\n")
    ds = fastmf.read_ratings(p, columns=("user", "item", "rating"), rating_scale=None, dtype="float64")
    assert ds.rating[0] == float(text)


def test_overflowing_long_number_names_its_line(tmp_path):
    with pytest.raises(ParseError, match="line 2: field 3 .* overflows a double") as exc:
        _read(tmp_path, b"1,2,3\n1,3," + b"7" * 600 + b"\n", sep=",", columns=("user", "item", "rating"))
    assert exc.value.line == 2


@pytest.mark.parametrize("body", [b'1,2,3\n""\n4,5,6\n', b'1,2,3\n"  "\n4,5,6\n', b'"1",2,3\n""\n'])
def test_quoted_empty_row_is_not_dropped(tmp_path, body):
    # `""` (one empty field) was re-written as a blank line and skipped
    with pytest.raises(ParseError, match="line 2: expected 3 fields") as exc:
        _read(tmp_path, body, sep=",", columns=("user", "item", "rating"), header=False)
    assert exc.value.reason == "field_count"


def test_quoted_file_error_names_the_physical_line(tmp_path):
    # a bare CR used to be a line break for the csv module only, shifting every later line number
    body = b'"1",2,3\n4,5\r,6\n7,8,x\n'
    with pytest.raises(ValueError, match="line 2"):
        _read(tmp_path, body, sep=",", columns=("user", "item", "rating"), header=False)
    body = b'"1",2,3\n4,"5\n",6\n7,8,x\n'
    with pytest.raises(ValueError, match="line 2: a quoted field spans lines"):
        _read(tmp_path, body, sep=",", columns=("user", "item", "rating"), header=False)


def test_quoted_file_with_tab_and_x1f_in_fields(tmp_path):
    body = '"a\tb",1,3\n"c\x1fd",2,4\n"e",3,5\n'.encode()
    ds = _read(tmp_path, body, sep=",", columns=("user", "item", "rating"), header=False)
    assert sorted(ds.user_map.ids.tolist()) == ["a\tb", "c\x1fd", "e"]


def test_quoted_file_with_a_huge_field_is_a_parse_error(tmp_path):
    # the csv module's 128 KiB field limit leaked as _csv.Error
    body = b'"u",1,3\n' + b"x" * 200_000 + b",2,4\n"
    with pytest.raises(ParseError, match="line 2: field 1 .* limit of 256 bytes") as exc:
        _read(tmp_path, body, sep=",", columns=("user", "item", "rating"))
    assert exc.value.reason == "too_long"
    with pytest.raises(ValueError):
        _read(tmp_path, b'"' + b"x" * 200_000 + b'",2,4\n', sep=None, columns=None)


def test_long_id_is_bounded_and_named(tmp_path):
    # one 1,000,000-byte id used to make every row 4 MB wide (1,000 rows: 15 GB)
    body = b"1,2,3\n" * 999 + b"u" * 1_000_000 + b",2,3\n"
    with pytest.raises(ParseError, match=r"line 1000: field 1 \(user\) is 1,000,000 bytes long") as exc:
        _read(tmp_path, body, sep=",", columns=("user", "item", "rating"))
    assert exc.value.reason == "too_long"
    ok = _read(tmp_path, b"u" * MAX_ID_BYTES + b",2,3\n", sep=",", columns=("user", "item", "rating"))
    assert ok.user_map.ids[0] == "u" * MAX_ID_BYTES
    assert readers.MAX_ID_BYTES == MAX_ID_BYTES


def test_only_one_cr_is_dropped_when_inferring_the_header(tmp_path):
    # header inference stripped every trailing CR, the tokenizer one: a line "\r\r" was blank to one
    # and data to the other, so the header decision was made on another line than the one skipped
    body = b"\r\r\nuserId,movieId\n1,2\n"
    with pytest.raises(ParseError, match="line 1"):
        _read(tmp_path, body, sep=",", columns=("user", "item"))


def test_reference_agrees_with_itself_on_known_answers():
    users, items, ratings, ts = read_ratings_reference(
        b"userId,movieId,rating,timestamp\r\n1,10,4.5,100\r\n1,10,3,200\r\n2, 7 ,1e0,300\r\n", ",",
        ("user", "item", "rating", "timestamp"), "infer")
    assert (users, items, ratings, ts) == ([1, 2], [10, 7], [3.0, 1.0], [200, 300])
    with pytest.raises(RefParseError) as exc:
        read_ratings_reference(b"1,2,3\n1,2,nan\n", ",", ("user", "item", "rating"), False)
    assert (exc.value.line, exc.value.field, exc.value.reason) == (2, 3, "not_finite")
    assert math.isinf(float("1e400"))


# ------------------------------------------------------------------------------ the long run
@pytest.mark.fuzz
def test_fuzz_long_run():
    """>= 100,000 mutated files in 2 worker processes, 10 s per input: 0 crashes, 0 hangs, 0 silent
    differences (FASTMF_FUZZ_N overrides the count)."""
    n = int(os.environ.get("FASTMF_FUZZ_N", "100000"))
    res = run(n, start=10 ** 6, timeout=10.0, workers=2)
    failures = res.pop("failures")
    print(f"fuzz: {n:,} inputs: {res}")
    assert res["same"] + res["clean_error"] == n, failures[:20]
    assert (res["diff"], res["crash"], res["hang"]) == (0, 0, 0), failures[:20]


def test_memory_of_text_ids_follows_the_file_not_the_longest_id(tmp_path):
    # one 256-byte id among 200,000 short ones used to make every row 1 KiB wide (this 2.6 MB file
    # peaked at 295 MB, 113x); the ids are now grouped by length and only the 20,001 distinct ones
    # are widened (peak 58-67 MB, of which 20-40 MB are the id map's fixed-width strings; 22 MB
    # without the long id)
    import tracemalloc

    p = tmp_path / "r.csv"
    with open(p, "w") as fh:
        fh.write("u" + "x" * (MAX_ID_BYTES - 1) + ",1,3\n")
        fh.writelines(f"u{i % 20000},{i % 3000},{i % 5 + 1}\n" for i in range(200_000))
    size = p.stat().st_size
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = fastmf.read_ratings(p, columns=("user", "item", "rating"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ds.n_users == 20_001 and ds.user_map.ids[-1] == "u" + "x" * (MAX_ID_BYTES - 1)
    assert peak < 40 * size, f"peak {peak:,} bytes for a {size:,}-byte file"
