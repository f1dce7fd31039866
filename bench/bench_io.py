"""Parsing speed: fastmf's C tokenizer (read_ratings / load_movielens) beside NumPy and pandas readers,
in the same run.

Run:  FASTMF_DATA=/path/to/data python -m pytest bench/bench_io.py --benchmark-only -q

Groups
------
ml-100k-u.data      u.data (100,000 tab-separated lines): target < 0.1 s
ml-100k-load        load_movielens("ml-100k") with titles/genres/users: target < 0.1 s
1M-colon-lines      a generated 1,000,000-line "UserID::MovieID::Rating::Timestamp" file shaped like
                    ML-1M (target < 0.5 s), and a shuffled variant with repeated pairs
ml-1m-partial       ratings.PARTIAL_users_1-2999.dat (487,650 "::" lines)

Baselines: ``np.loadtxt`` (single-character delimiters only, so ``"::"`` files go through
``delimiter=":"`` with every other column used), ``pandas.read_csv`` (C engine; for ``"::"`` the same
``":"`` trick, i.e. ``sep=":"`` and ``usecols=[0, 2, 4, 6]`` dropping the empty columns: the fastest
equivalent a pandas user has, since ``sep="::"`` falls back to the python engine, also shown, and
pyarrow is not installed here). The fastmf rows include building the Ratings (id maps, duplicate
check), i.e. more work than the pandas rows, whose output is just columns; ``pandas C engine ->
Ratings`` is the same end result through pandas (``read_csv`` then ``Ratings.from_dataframe``), and
``kernel`` rows time the C tokenizer alone.
"""

import os
from pathlib import Path

import numpy as np
import pytest

import fastmf
from fastmf import _parse

COLS = ("user", "item", "rating", "timestamp")
KINDS = [_parse.INT64, _parse.INT64, _parse.FLOAT64, _parse.INT64]


def data_file(name, fname):
    root = os.environ.get("FASTMF_DATA")
    if not root:
        pytest.skip("FASTMF_DATA is not set")
    p = Path(root) / name / fname
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return p


def write_lines(path, u, i, r, t):
    with open(path, "w") as fh:
        fh.write("".join(f"{a}::{b}::{c}::{d}\n" for a, b, c, d in zip(u.tolist(), i.tolist(), r.tolist(), t.tolist())))
    return path


@pytest.fixture(scope="module")
def million_file(tmp_path_factory):
    """1,000,000 synthetic lines shaped like ML-1M's ratings.dat: 6,040 users x 3,706 items, distinct
    (user, item) pairs, grouped by user (items in random order within a user), stars 1..5."""
    rng = np.random.default_rng(0)
    n, n_users, n_items = 1_000_000, 6040, 3706
    keys = rng.choice(n_users * n_items, n, replace=False)
    u = keys // n_items + 1
    i = rng.permutation(np.arange(1, 3953))[:n_items][keys % n_items]
    order = np.argsort(u, kind="stable")
    t = rng.integers(956_703_932, 1_046_454_590, n)
    return write_lines(tmp_path_factory.mktemp("bench_io") / "ratings_1M.dat", u[order], i[order],
                       rng.integers(1, 6, n), t)


@pytest.fixture(scope="module")
def million_shuffled_file(tmp_path_factory):
    """1,000,000 independent random (user, item) draws in random order: ~2% repeated pairs, so the
    duplicates policy has work to do (the worst case for building the Ratings)."""
    rng = np.random.default_rng(1)
    n = 1_000_000
    return write_lines(tmp_path_factory.mktemp("bench_io") / "ratings_1M_shuffled.dat",
                       rng.integers(1, 6041, n), rng.integers(1, 3953, n), rng.integers(1, 6, n),
                       rng.integers(956_703_932, 1_046_454_590, n))


def pandas_or_skip():
    return pytest.importorskip("pandas")


def loadtxt_colon(path):
    return np.loadtxt(path, delimiter=":", usecols=(0, 2, 4, 6), dtype=np.int64)


def pandas_colon(path):
    pd = pandas_or_skip()
    return pd.read_csv(path, sep=":", header=None, usecols=[0, 2, 4, 6], engine="c")


def kernel(path, sep):
    data = Path(path).read_bytes()
    return _parse.parse(data, sep.encode(), KINDS, list(COLS), rating_scale=(1, 5))


# ------------------------------------------------------------------ ml-100k u.data

@pytest.mark.benchmark(group="ml-100k-u.data")
def test_u_data_fastmf_read_ratings(benchmark):
    p = data_file("ml-100k", "u.data")
    ds = benchmark(fastmf.read_ratings, p)
    assert len(ds) == 100_000


@pytest.mark.benchmark(group="ml-100k-u.data")
def test_u_data_fastmf_kernel(benchmark):
    p = data_file("ml-100k", "u.data")
    cols = benchmark(kernel, p, "\t")
    assert cols[0].shape == (100_000,)


@pytest.mark.benchmark(group="ml-100k-u.data")
def test_u_data_numpy_loadtxt(benchmark):
    p = data_file("ml-100k", "u.data")
    a = benchmark(np.loadtxt, p, delimiter="\t", dtype=np.int64)
    assert a.shape == (100_000, 4)


@pytest.mark.benchmark(group="ml-100k-u.data")
def test_u_data_pandas(benchmark):
    pd = pandas_or_skip()
    p = data_file("ml-100k", "u.data")
    df = benchmark(pd.read_csv, p, sep="\t", header=None, names=list(COLS))
    assert len(df) == 100_000


# ------------------------------------------------------------------ load_movielens("ml-100k")

@pytest.mark.benchmark(group="ml-100k-load")
def test_load_ml100k_fastmf(benchmark):
    folder = data_file("ml-100k", "u.data").parent
    ds = benchmark(fastmf.load_movielens, "ml-100k", path=folder, download=False)
    assert len(ds) == 100_000 and ds.item_title(50) == "Star Wars (1977)"


@pytest.mark.benchmark(group="ml-100k-load")
def test_load_ml100k_pandas(benchmark):
    pd = pandas_or_skip()
    folder = data_file("ml-100k", "u.data").parent

    def load():
        r = pd.read_csv(folder / "u.data", sep="\t", header=None, names=list(COLS))
        items = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1")
        users = pd.read_csv(folder / "u.user", sep="|", header=None)
        return r, items, users

    r, items, _ = benchmark(load)
    assert len(r) == 100_000 and len(items) == 1682


# ------------------------------------------------------------------ 1M "::" lines

@pytest.mark.benchmark(group="1M-colon-lines")
def test_1m_fastmf_read_ratings(benchmark, million_file):
    ds = benchmark(fastmf.read_ratings, million_file, sep="::")
    assert len(ds) == 1_000_000 and ds.n_users == 6040


@pytest.mark.benchmark(group="1M-colon-lines")
def test_1m_fastmf_read_ratings_all_guessed(benchmark, million_file):
    ds = benchmark(fastmf.read_ratings, million_file)  # sep, columns, header, scale guessed
    assert len(ds) == 1_000_000 and ds.timestamp is not None and ds.rating_scale == (1, 5)


@pytest.mark.benchmark(group="1M-colon-lines")
@pytest.mark.filterwarnings("ignore::fastmf.data.DuplicateRatingsWarning")
def test_1m_shuffled_with_duplicates_fastmf_read_ratings(benchmark, million_shuffled_file):
    ds = benchmark(fastmf.read_ratings, million_shuffled_file, sep="::")
    assert 970_000 < len(ds) < 1_000_000


@pytest.mark.benchmark(group="1M-colon-lines")
def test_1m_fastmf_kernel(benchmark, million_file):
    cols = benchmark(kernel, million_file, "::")
    assert cols[0].shape == (1_000_000,)


@pytest.mark.benchmark(group="1M-colon-lines")
def test_1m_numpy_loadtxt(benchmark, million_file):
    a = benchmark.pedantic(loadtxt_colon, args=(million_file,), rounds=2, iterations=1)
    assert a.shape == (1_000_000, 4)


@pytest.mark.benchmark(group="1M-colon-lines")
def test_1m_pandas_c_engine(benchmark, million_file):
    df = benchmark(pandas_colon, million_file)
    assert len(df) == 1_000_000


@pytest.mark.benchmark(group="1M-colon-lines")
def test_1m_pandas_c_engine_to_ratings(benchmark, million_file):
    def load():
        df = pandas_colon(million_file)
        df.columns = list(COLS)
        return fastmf.Ratings.from_dataframe(df, user="user", item="item", timestamp="timestamp")

    ds = benchmark(load)
    assert len(ds) == 1_000_000


@pytest.mark.benchmark(group="1M-colon-lines-ab")
def test_1m_interleaved_fastmf_vs_pandas_c_engine(benchmark, million_file):
    """read_ratings and the pandas C engine alternated round by round, so load from other processes
    on a shared machine hits both alike (the separate rows above run minutes apart). The figures
    are in extra_info (and printed with -s): min and median of each, and the ratio of the mins."""
    import time

    pandas_or_skip()
    times = {"fastmf": [], "pandas": []}

    def one_round():
        t0 = time.perf_counter()
        fastmf.read_ratings(million_file, sep="::")
        t1 = time.perf_counter()
        pandas_colon(million_file)
        t2 = time.perf_counter()
        times["fastmf"].append(t1 - t0)
        times["pandas"].append(t2 - t1)

    benchmark.pedantic(one_round, rounds=15, iterations=1, warmup_rounds=1)
    for k, v in times.items():
        benchmark.extra_info[f"{k}_min_ms"] = round(1e3 * min(v), 1)
        benchmark.extra_info[f"{k}_median_ms"] = round(1e3 * float(np.median(v)), 1)
    benchmark.extra_info["fastmf_over_pandas_min"] = round(min(times["fastmf"]) / min(times["pandas"]), 3)
    print("\n1M '::' lines, interleaved:", benchmark.extra_info)


@pytest.mark.benchmark(group="1M-colon-lines")
def test_1m_pandas_python_engine(benchmark, million_file):
    pd = pandas_or_skip()
    df = benchmark.pedantic(pd.read_csv, args=(million_file,),
                            kwargs=dict(sep="::", header=None, names=list(COLS), engine="python"),
                            rounds=1, iterations=1)
    assert len(df) == 1_000_000


# ------------------------------------------------------------------ ML-1M partial

@pytest.mark.benchmark(group="ml-1m-partial")
def test_ml1m_partial_fastmf_read_ratings(benchmark):
    p = data_file("ml-1m", "ratings.PARTIAL_users_1-2999.dat")
    ds = benchmark(fastmf.read_ratings, p, sep="::")
    assert len(ds) == 487_650


@pytest.mark.benchmark(group="ml-1m-partial")
def test_ml1m_partial_fastmf_load_movielens(benchmark):
    p = data_file("ml-1m", "ratings.PARTIAL_users_1-2999.dat")
    ds = benchmark(fastmf.load_movielens, "ml-1m", path=p.parent, ratings_file=p.name, download=False)
    assert len(ds) == 487_650


@pytest.mark.benchmark(group="ml-1m-partial")
def test_ml1m_partial_fastmf_kernel(benchmark):
    p = data_file("ml-1m", "ratings.PARTIAL_users_1-2999.dat")
    cols = benchmark(kernel, p, "::")
    assert cols[0].shape == (487_650,)


@pytest.mark.benchmark(group="ml-1m-partial")
def test_ml1m_partial_pandas_c_engine(benchmark):
    p = data_file("ml-1m", "ratings.PARTIAL_users_1-2999.dat")
    df = benchmark(pandas_colon, p)
    assert len(df) == 487_650


@pytest.mark.benchmark(group="ml-1m-partial")
def test_ml1m_partial_numpy_loadtxt(benchmark):
    p = data_file("ml-1m", "ratings.PARTIAL_users_1-2999.dat")
    a = benchmark.pedantic(loadtxt_colon, args=(p,), rounds=2, iterations=1)
    assert a.shape == (487_650, 4)
