"""One error type for bad input on the data side (issue 21): every bad argument or value given to the
readers, the Ratings constructors and methods, the splits and the synthetic data raises DataError (a
ValueError) naming the argument (and position) or the file and line."""

import numpy as np
import pytest

import fastmf
from fastmf import split
from fastmf.errors import DataError


@pytest.fixture(scope="module")
def ds():
    return fastmf.Ratings.from_arrays([1, 2, 3, 4], [2, 3, 1, 2], [3.0, 4.0, 5.0, 2.0], timestamps=[1, 2, 3, 4])


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    p = tmp_path_factory.mktemp("e") / "r.csv"
    p.write_text("1,2,3\n2,3,4\n")
    return p


CASES = [
    ("read dtype unknown", lambda ds, p: fastmf.read_ratings(p, dtype="junk"), "dtype must be None, 'float32'"),
    ("read encoding", lambda ds, p: fastmf.read_ratings(p, encoding="nope"), "unknown encoding 'nope'"),
    ("read path None", lambda ds, p: fastmf.read_ratings(None), "path must be a file name"),
    ("read name", lambda ds, p: fastmf.read_ratings(p, name=5), "name must be a str or None"),
    ("read item_info", lambda ds, p: fastmf.read_ratings(p, item_info=5), "item_info must be a fastmf Metadata"),
    ("ids over int64", lambda ds, p: fastmf.Ratings.from_arrays([2 ** 64, 2], [1, 2], [3, 4]),
     r"users: id 18446744073709551616 at position 0 is outside the 64-bit"),
    ("object ids over int64", lambda ds, p: fastmf.Ratings.from_arrays(
        [1, 2], np.array([3, -2 ** 63 - 1], dtype=object), [3, 4]), "items: id .* at position 1 is outside"),
    ("uint64 ids", lambda ds, p: fastmf.Ratings.from_arrays(np.array([2 ** 63], np.uint64), [1], [3]),
     "larger than 2\\*\\*63-1"),
    ("uint64 timestamps", lambda ds, p: fastmf.Ratings.from_arrays([1], [1], [3], timestamps=np.array([2 ** 63], np.uint64)),
     r"timestamps\[0\] = 9223372036854775808 is outside"),
    ("timestamps over int64", lambda ds, p: fastmf.Ratings.from_arrays([1, 2], [1, 2], [3, 4], timestamps=[1, 2 ** 70]),
     r"timestamps\[1\] = .* outside the 64-bit"),
    ("float timestamps over int64", lambda ds, p: fastmf.Ratings.from_arrays([1, 2], [1, 2], [3, 4],
                                                                              timestamps=[1e30, 1.0]),
     r"timestamps\[0\] = 1e\+30 is outside"),
    ("dtype unknown", lambda ds, p: fastmf.Ratings.from_arrays([1], [1], [3], dtype="junk"),
     "dtype must be float32 or float64, got 'junk'"),
    ("astype unknown", lambda ds, p: ds.astype("junk"), "dtype must be float32 or float64"),
    ("from_dataframe list", lambda ds, p: fastmf.Ratings.from_dataframe([1, 2]), "needs a pandas DataFrame, got list"),
    ("concat", lambda ds, p: ds.concat(5), "concat needs another Ratings, got int"),
    ("subset out of range", lambda ds, p: ds.subset([10]), r"selection\[0\] = 10 is outside \[-4, 4\)"),
    ("random_split test_size", lambda ds, p: split.random_split(ds, test_size=1.5), "random_split: test_size must be"),
    ("random_split random_state", lambda ds, p: split.random_split(ds, random_state="x"), "random_state must be"),
    ("kfold n_splits", lambda ds, p: list(split.kfold(ds, n_splits=1)), "kfold: n_splits must be an int in"),
    ("leave_last_out k", lambda ds, p: split.leave_last_out(ds, k=0), "leave_last_out: k must be"),
    ("user_holdout", lambda ds, p: split.user_holdout(ds, test_size=-1), "user_holdout: test_size must be"),
    ("temporal_split cold", lambda ds, p: split.temporal_split(ds, cold="x"), "temporal_split: cold must be"),
    ("make_ratings", lambda ds, p: fastmf.make_ratings(-1, 5, 10), "make_ratings: n_users must be"),
    ("make_ratings huge", lambda ds, p: fastmf.make_ratings(10 ** 12, 10, 10), "make_ratings: n_users must be"),
    ("load_movielens name", lambda ds, p: fastmf.load_movielens("ml-5k"), "unknown MovieLens set 'ml-5k'"),
]


@pytest.mark.parametrize("label,call,match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_data_error(ds, path, label, call, match):
    with pytest.raises(DataError, match=match):
        call(ds, path)
