"""The rating container: :class:`Ratings`, its id maps (:class:`IdMap`) and item/user metadata.

A :class:`Ratings` holds one entry per (user, item) pair as dense indices plus the two id maps that
translate the user's own ids (any ints or strings) to those indices and back. Splits share the maps,
so a model trained on a split answers in raw ids. Users are always the rows of the interaction matrix.
"""

from __future__ import annotations

import numbers
import warnings
from collections import namedtuple
from typing import TYPE_CHECKING, Any, Callable, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from fastmf._validation import first_true, show
from fastmf.errors import DataError, DuplicateRatingsWarning

if TYPE_CHECKING:  # pragma: no cover - optional dependencies, imported where used
    import pandas
    import scipy.sparse

    from fastmf.data.features import Features

__all__ = ["IdMap", "Metadata", "Ratings", "CSR", "DuplicateRatingsWarning"]

ArrayLike = Any
#: ``"infer"`` (the data's min and max), a declared ``(low, high)``, or None (no scale).
ScaleLike = Union[str, Tuple[float, float], Sequence[float], None]
#: one raw id or an array-like of them (the public methods taking raw ids accept both)
Ids = Union[int, str, Sequence[Any], np.ndarray]



CSR = namedtuple("CSR", ["indptr", "indices", "data", "shape"])
CSR.__doc__ = """A compressed sparse matrix without scipy: ``indptr`` (int64), ``indices`` (int32),
``data`` (the ratings' dtype) and ``shape``. Row ``r`` holds ``indices[indptr[r]:indptr[r+1]]``,
sorted ascending. ``to_csc()`` returns the same structure with the roles of rows and columns swapped."""

DUPLICATE_POLICIES = ("last", "mean", "error")


def _readonly(a):
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def normalize_ids(values: npt.ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D array of integer (int64) or string ids, or raise ValueError naming
    the first position that is missing (None/NaN) or of a kind that is neither."""
    try:
        arr = np.asarray(values)
    except OverflowError:  # a list holding ints beyond int64 (NumPy >= 2)
        arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else arr
        if arr.ndim != 1:
            raise DataError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "U" and not isinstance(values, np.ndarray):
        # a list or tuple of str: NumPy's fixed-width strings drop trailing NULs ("a\x00" -> "a"),
        # which would silently merge two ids; check the originals
        _check_trailing_nul(np.asarray(values, dtype=object).reshape(-1), arr, name)
    kind = arr.dtype.kind
    if kind in "iu":
        if kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.uint64(2 ** 63 - 1):
            raise DataError(f"{name}: ids larger than 2**63-1 are not supported")
        return arr.astype(np.int64, copy=False)
    if kind == "b":
        raise DataError(f"{name}: boolean ids are not supported; use ints or strings")
    if kind == "f":
        bad = first_true(~np.isfinite(arr))
        if bad >= 0:
            raise DataError(f"{name}: missing or non-finite id {show(arr[bad])} at position {bad}")
        bad = first_true(arr != np.round(arr))
        if bad >= 0:
            raise DataError(f"{name}: id {show(arr[bad])} at position {bad} is not a whole number")
        return arr.astype(np.int64)
    if kind in "US":
        return arr.astype(str) if kind == "S" else arr
    if kind == "O":
        is_str = np.fromiter((isinstance(v, str) for v in arr), bool, arr.size)
        if is_str.all():
            out = arr.astype(str)
            _check_trailing_nul(arr, out, name)
            return out
        is_int = np.fromiter(
            (isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in arr), bool, arr.size
        )
        if is_int.all():
            return _int64_or_error(arr, name)
        bad = first_true(~(is_str | is_int))
        if bad < 0:
            raise DataError(f"{name}: ids mix strings and integers; convert them to one type")
        raise DataError(f"{name}: missing or unsupported id {show(arr[bad])} at position {bad}; "
                         "ids must be all integers or all strings")
    raise DataError(f"{name}: ids of dtype {arr.dtype} are not supported; use integers or strings")


def _float_dtype(dtype, name="dtype"):
    """np.dtype(dtype) when it is float32 or float64, else DataError (also for a name NumPy does
    not know, where np.dtype raises TypeError)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.type not in (np.float32, np.float64):
        raise DataError(f"{name} must be float32 or float64, got {dtype!r}")
    return dt


def _check_data_params(owner, params, constraints):
    """fastmf._validation.check_params for the data layer: the same checks and messages, raised as
    DataError."""
    from fastmf._validation import check_params

    try:
        check_params(owner, params, constraints)
    except ValueError as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(str(exc)) from None


def _int64_or_error(arr, name):
    """``arr`` (an object array of Python ints, or a list) as int64, or DataError naming the first
    id outside the int64 range."""
    try:
        return np.asarray(arr).astype(np.int64)
    except OverflowError:
        objs = np.asarray(arr, dtype=object).reshape(-1)
        for pos, v in enumerate(objs):
            if not -(2 ** 63) <= int(v) < 2 ** 63:
                raise DataError(f"{name}: id {v} at position {pos} is outside the 64-bit integer range "
                                "(use string ids for larger numbers)") from None
        raise


def _check_trailing_nul(objects, strings, name):
    """DataError when an id of ``objects`` (Python str) lost trailing NULs in ``strings`` (its NumPy
    U array): two ids would become one."""
    if strings.size == 0:
        return
    lengths = np.fromiter((len(v) if isinstance(v, str) else -1 for v in objects), np.int64, objects.size)
    bad = first_true((lengths >= 0) & (lengths != np.char.str_len(strings)))
    if bad >= 0:
        raise DataError(f"{name}: id {objects[bad]!r} at position {bad} ends with a NUL character "
                        "(\\x00), which NumPy strings cannot hold (it would become the id "
                        f"{strings[bad]!r}); remove the NULs")


class _FactorizedIds:
    """Raw ids as their sorted distinct values (``ids``: int64 or str, no repeats) plus one code per
    rating (``codes``: int32 index into ``ids``). The file reader builds text ids this way so that
    no per-rating array is as wide as the longest id; :meth:`Ratings.from_arrays` takes it in place
    of a per-rating array."""

    __slots__ = ("ids", "codes")

    def __init__(self, ids, codes):
        self.ids = ids
        self.codes = codes

    @property
    def shape(self):
        return self.codes.shape

    def __len__(self):
        return self.codes.shape[0]

    def __getitem__(self, pos):
        return self.ids[self.codes[pos]]

    def to_array(self):
        return self.ids[self.codes]


class IdMap:
    """A bijection between raw ids (ints or strings) and dense indices ``0 .. n-1``.

    ``ids[index]`` is the raw id of ``index``. Both directions are vectorised:
    :meth:`to_index` (binary search over the sorted ids) and :meth:`to_raw` (a gather).
    """

    __slots__ = ("_ids", "_sorter", "_sorted")

    def __init__(self, ids: npt.ArrayLike) -> None:
        ids = normalize_ids(ids, "ids")
        sorter = np.argsort(ids, kind="stable")
        srt = ids[sorter]
        dup = first_true(srt[1:] == srt[:-1])
        if dup >= 0:
            raise DataError(f"IdMap: duplicate id {show(srt[dup])}")
        self._ids = _readonly(ids)
        self._sorter = _readonly(sorter.astype(np.int64))
        self._sorted = _readonly(srt)

    @classmethod
    def from_values(cls, values: npt.ArrayLike, name: str = "ids") -> Tuple[IdMap, np.ndarray]:
        """Build the map of the distinct values (sorted) and return ``(map, index_of_each_value)``."""
        values = normalize_ids(values, name)
        if values.dtype.kind == "i" and values.size:
            lo, hi = int(values.min()), int(values.max())
            if hi - lo < 4 * values.size + 4096:
                # dense integer ids (MovieLens and most exports): O(n) presence table instead of a sort
                off = values - lo
                present = np.zeros(hi - lo + 1, dtype=bool)
                present[off] = True
                uniq = np.flatnonzero(present)
                lut = np.cumsum(present, dtype=np.int32) - 1
                return cls(uniq + lo), lut[off]
        if values.dtype.kind == "U" and values.size >= 100_000:
            factorized = _factorize_with_pandas(values)
            if factorized is not None:
                return cls(factorized[0]), factorized[1]
        uniq, inverse = np.unique(values, return_inverse=True)
        return cls(uniq), inverse.reshape(-1).astype(np.int32)

    @property
    def ids(self) -> np.ndarray:
        """The raw ids, ``ids[index]``; read-only."""
        return self._ids

    @property
    def is_string(self) -> bool:
        return self._ids.dtype.kind == "U"

    def __len__(self):
        return self._ids.shape[0]

    def __eq__(self, other):
        if self is other:
            return True
        return (isinstance(other, IdMap) and len(self) == len(other)
                and self._ids.dtype.kind == other._ids.dtype.kind and bool(np.all(self._ids == other._ids)))

    __hash__ = None  # type: ignore[assignment]  # equal maps compare by value: unhashable

    def __repr__(self):
        return f"IdMap({len(self)} {'string' if self.is_string else 'integer'} ids)"

    def _lookup(self, raw):
        """Dense indices of ``raw`` (any shape) with -1 where an id is unknown."""
        q = np.asarray(raw)
        if q.dtype.kind == "O":
            try:
                q = normalize_ids(q.reshape(-1), "id").reshape(q.shape)
            except ValueError:
                return np.full(q.shape, -1, dtype=np.int64)
        mine_str = self.is_string
        if q.dtype.kind == "S":
            q = q.astype(str)
        q_str = q.dtype.kind == "U"
        if mine_str != q_str or q.dtype.kind not in "iufU":
            return np.full(q.shape, -1, dtype=np.int64)
        n = len(self)
        if n == 0:
            return np.full(q.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self._sorted, q)
        pos_c = np.minimum(pos, n - 1)
        found = self._sorted[pos_c] == q
        return np.where(found, self._sorter[pos_c], -1)

    def to_index(self, raw: Ids, missing: Union[Literal["raise"], int] = "raise",
                 name: str = "id") -> Union[int, np.ndarray]:
        """Dense index (int64) of each raw id; scalar in, scalar out.

        ``missing="raise"`` raises KeyError naming the first unknown id; ``missing=-1`` returns -1 for it.
        """
        idx = self._lookup(raw)
        if missing == "raise":
            bad = first_true(idx.reshape(-1) < 0)
            if bad >= 0:
                q = np.asarray(raw).reshape(-1)
                where = f" at position {bad}" if np.ndim(raw) else ""
                raise KeyError(f"unknown {name} {show(q[bad])}{where}")
        return int(idx) if idx.ndim == 0 else idx

    def to_raw(self, index: npt.ArrayLike) -> Union[int, str, np.ndarray]:
        """Raw id of each dense index; scalar in, scalar out. IndexError for an index out of range."""
        idx = np.asarray(index)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
        bad = first_true(((idx < 0) | (idx >= len(self))).reshape(-1))
        if bad >= 0:
            raise IndexError(f"index {idx.reshape(-1)[bad]} outside [0, {len(self)})")
        out = self._ids[idx]
        return out.item() if np.ndim(out) == 0 else out

    def __contains__(self, raw):
        return bool(self._lookup(raw) >= 0) if np.ndim(raw) == 0 else False


class Metadata:
    """Per-id attributes (item titles, genres, years; user ages...) keyed by raw id.

    Rows may cover ids that have no ratings (MovieLens lists unrated movies). Each column is a 1-D
    array aligned with ``ids``. Genres are stored as one ``"|"``-joined string per id.
    """

    __slots__ = ("map", "columns")

    def __init__(self, ids: npt.ArrayLike, columns: Mapping[str, npt.ArrayLike]) -> None:
        self.map = IdMap(ids)
        cols = {}
        for name, col in columns.items():
            col = np.asarray(col)
            if col.shape != (len(self.map),):
                raise DataError(f"metadata column {name!r} has shape {col.shape}, expected ({len(self.map)},)")
            cols[name] = _readonly(col)
        self.columns = cols

    def __contains__(self, column):
        return column in self.columns

    def get(self, raw_ids: Ids, column: str, default: Any = None) -> Any:
        """Values of ``column`` for ``raw_ids`` (scalar or array); ``default`` where an id is unknown."""
        col = self.columns[column]
        idx = self.map._lookup(raw_ids)
        if np.ndim(idx) == 0:
            return col[int(idx)].item() if idx >= 0 else default
        out = np.empty(idx.shape, dtype=object)
        ok = idx >= 0
        out[ok] = col[idx[ok]]
        out[~ok] = default
        return out

    def __repr__(self):
        return f"Metadata({len(self.map)} ids; columns {list(self.columns)})"


class Description(dict):
    """The dict returned by :meth:`Ratings.describe`, printed as a short report."""

    def __str__(self):
        lines = [
            f"{self['n_ratings']:,} ratings by {self['n_users']:,} users on {self['n_items']:,} items "
            f"(density {self['density']:.4%})",
        ]
        if self.get("rating_mean") is not None:
            lines.append(f"rating: mean {self['rating_mean']:.4f}, std {self['rating_std']:.4f}, "
                         f"min {self['rating_min']:g}, max {self['rating_max']:g}, scale {self['rating_scale']}")
        hist = self.get("rating_histogram")
        if hist:
            lines.append("histogram: " + ", ".join(f"{k:g}: {v:,}" for k, v in hist.items()))
        for who in ("user", "item"):
            q = self[f"ratings_per_{who}"]
            lines.append(f"ratings per {who}: " + ", ".join(f"{k} {v:g}" for k, v in q.items()))
        if self.get("time_range") is not None:
            lines.append(f"timestamps: {self['time_range'][0]} .. {self['time_range'][1]}")
        return "\n".join(lines)


class Ratings:
    """An immutable set of ratings: dense user and item indices, values, optional timestamps, and the
    id maps that translate raw ids. Build one with :meth:`from_arrays`, :meth:`from_dataframe`,
    :meth:`from_scipy`, :func:`fastmf.read_ratings`, :func:`fastmf.load_movielens` or
    :func:`fastmf.make_ratings`.

    Attributes
    ----------
    user_index, item_index : ndarray of int32
        Dense indices into ``user_map`` / ``item_map``, one per rating.
    rating : ndarray of float32 or float64
    timestamp : ndarray of int64 or None
    user_map, item_map : IdMap
        Shared by every split of the same data; they may contain ids with no rating in this object
        (``n_users``/``n_items`` count the map, not the ids present).
    rating_scale : (low, high) or None
    item_info, user_info : Metadata or None
    """

    __slots__ = ("user_index", "item_index", "rating", "timestamp", "user_map", "item_map",
                 "rating_scale", "item_info", "user_info", "name", "_cache")

    def __init__(self, user_index: npt.ArrayLike, item_index: npt.ArrayLike, rating: npt.ArrayLike,
                 timestamp: Optional[npt.ArrayLike] = None, *, user_map: IdMap, item_map: IdMap,
                 rating_scale: Optional[Sequence[float]] = None, item_info: Optional[Metadata] = None,
                 user_info: Optional[Metadata] = None, name: Optional[str] = None,
                 _validated: bool = False) -> None:
        if not _validated:
            user_index = np.asarray(user_index)
            item_index = np.asarray(item_index)
            rating = np.asarray(rating)
            n = user_index.shape[0] if user_index.ndim == 1 else -1
            for label, arr in (("user_index", user_index), ("item_index", item_index), ("rating", rating)):
                if arr.ndim != 1 or arr.shape[0] != n:
                    raise DataError(f"{label} must be 1-D of length {n}, got shape {arr.shape}")
            for label, arr, size in (("user_index", user_index, len(user_map)),
                                     ("item_index", item_index, len(item_map))):
                if arr.dtype.kind not in "iu":
                    raise DataError(f"{label} must hold integers, got dtype {arr.dtype}")
                bad = first_true((arr < 0) | (arr >= size))
                if bad >= 0:
                    raise DataError(f"{label}[{bad}] = {arr[bad]} is outside [0, {size})")
            if rating.dtype not in (np.float32, np.float64):
                rating = rating.astype(np.float64)
            bad = first_true(~np.isfinite(rating))
            if bad >= 0:
                raise DataError(f"rating[{bad}] = {show(rating[bad])} is not finite")
            if timestamp is not None:
                timestamp = np.asarray(timestamp)
                if timestamp.shape != (n,):
                    raise DataError(f"timestamp must have shape ({n},), got {timestamp.shape}")
                timestamp = timestamp.astype(np.int64)
            user_index = user_index.astype(np.int32, copy=False)
            item_index = item_index.astype(np.int32, copy=False)
            key = np.sort(user_index.astype(np.int64) * max(len(item_map), 1) + item_index)
            if key.size > 1 and bool(np.any(key[1:] == key[:-1])):
                raise DataError("duplicate (user, item) pairs; build through Ratings.from_arrays "
                                 "to choose a duplicates policy")
        for label, info in (("item_info", item_info), ("user_info", user_info)):
            if info is not None and not isinstance(info, Metadata):
                raise DataError(f"{label} must be a fastmf Metadata or None, got {type(info).__name__}")
        if name is not None and not isinstance(name, str):
            raise DataError(f"name must be a str or None, got {name!r}")
        self.user_index = _readonly(user_index)
        self.item_index = _readonly(item_index)
        self.rating = _readonly(rating)
        self.timestamp = None if timestamp is None else _readonly(timestamp)
        self.user_map = user_map
        self.item_map = item_map
        self.rating_scale = None if rating_scale is None else (float(rating_scale[0]), float(rating_scale[1]))
        self.item_info = item_info
        self.user_info = user_info
        self.name = name
        self._cache: dict = {}

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_arrays(cls, users: ArrayLike, items: ArrayLike, ratings: ArrayLike | None = None,
                    timestamps: ArrayLike | None = None, rating_scale: ScaleLike = "infer", *,
                    duplicates: str = "last", dtype: Any = None, item_info: Metadata | None = None,
                    user_info: Metadata | None = None, name: str | None = None) -> Ratings:
        """Build from parallel arrays of raw user ids, raw item ids and ratings.

        Parameters
        ----------
        users, items : array-like of int or str
            Raw ids, one per rating. Missing ids (None, NaN) raise ValueError with the position.
        ratings : array-like of float, optional
            Rating values; None means implicit feedback (every value 1). Non-numeric, non-finite or
            out-of-scale values raise ValueError naming the position.
        timestamps : array-like of int, optional
            Seconds since the epoch (any integer clock works).
        rating_scale : "infer", (low, high) or None
            ``"infer"`` (default, the same in every constructor): the smallest and largest rating of
            the data (None when every rating is equal, e.g. implicit data, which has no scale). A
            declared ``(low, high)`` is checked: a rating outside it raises ValueError naming its
            position and value. None: no scale, no check.
        duplicates : {"last", "mean", "error"}
            Policy for repeated (user, item) pairs: keep the last one in input order (default, like a
            later rating overwriting an earlier one), average them (timestamp of the last), or raise.
            When repeats are resolved a :class:`DuplicateRatingsWarning` gives their count.
        dtype : {None, "float32", "float64"}
            Rating dtype; None keeps float32/float64 input and stores anything else as float32.
        """
        if not isinstance(users, _FactorizedIds):
            users = normalize_ids(users, "users")
        if not isinstance(items, _FactorizedIds):
            items = normalize_ids(items, "items")
        n = users.shape[0]
        if ratings is None:
            ratings = np.ones(n, dtype=np.float32)
        ratings = _to_float_array(ratings, "ratings", dtype)
        lengths = {"users": n, "items": items.shape[0], "ratings": ratings.shape[0]}
        if timestamps is not None:
            timestamps = _to_int_array(timestamps, "timestamps")
            lengths["timestamps"] = timestamps.shape[0]
        if len(set(lengths.values())) != 1:
            raise DataError("mismatched lengths: " + ", ".join(f"{k} has {v}" for k, v in lengths.items()))
        if n == 0:
            raise DataError("no ratings: the arrays are empty")
        if duplicates not in DUPLICATE_POLICIES:
            raise DataError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
        scale = _check_scale(ratings, rating_scale, "ratings")
        user_map, uidx = _map_of(users, "users")
        item_map, iidx = _map_of(items, "items")
        uidx, iidx, ratings, timestamps = _resolve_duplicates(
            uidx, iidx, ratings, timestamps, len(item_map), duplicates,
            describe=lambda pos: f"user {show(users[pos])}, item {show(items[pos])}")
        return cls(uidx, iidx, ratings, timestamps, user_map=user_map, item_map=item_map,
                   rating_scale=scale, item_info=item_info, user_info=user_info, name=name,
                   _validated=True)

    @classmethod
    def from_dataframe(cls, df: Any, user: str = "userId", item: str = "movieId",
                       rating: str | None = "rating", timestamp: str | None = None,
                       rating_scale: ScaleLike = "infer", **kwargs: Any) -> Ratings:
        """Build from a pandas DataFrame; column names as given (``rating=None`` for implicit data,
        ``timestamp`` a column name or None). ``rating_scale`` and other keywords as
        :meth:`from_arrays` (by default the scale is the ratings' min and max)."""
        if not hasattr(df, "columns") or not hasattr(df, "__getitem__"):
            raise DataError(f"from_dataframe needs a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in (user, item, rating, timestamp) if c is not None and c not in df.columns]
        if missing:
            raise DataError(f"DataFrame has no column(s) {missing}; it has {list(df.columns)}")

        def col(name):
            s = df[name]
            if s.isna().any():
                pos = int(np.flatnonzero(s.isna().to_numpy())[0])
                raise DataError(f"column {name!r}: missing value at row {pos} (index {show(df.index[pos])})")
            return s.to_numpy()

        ts = None
        if timestamp is not None:
            ts = df[timestamp]
            if ts.dtype.kind == "M":
                ts = ts.astype("datetime64[s]").astype(np.int64)
            ts = col(timestamp) if not isinstance(ts, np.ndarray) else ts
        return cls.from_arrays(col(user), col(item), None if rating is None else col(rating), ts,
                               rating_scale=rating_scale, **kwargs)

    @classmethod
    def from_scipy(cls, matrix: Any, user_ids: ArrayLike | None = None, item_ids: ArrayLike | None = None,
                   rating_scale: ScaleLike = "infer", *, dtype: Any = None,
                   item_info: Metadata | None = None, user_info: Metadata | None = None,
                   name: str | None = None) -> Ratings:
        """Build from a scipy.sparse matrix with users as rows; explicit zeros are dropped (they mean
        "no rating" in a sparse matrix). ``user_ids``/``item_ids`` name the rows/columns (default
        0..n-1) and every row and column keeps its place in the id maps, even when empty.
        ``rating_scale`` as :meth:`from_arrays` (default: the non-zero values' min and max)."""
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise DataError(f"expected a scipy.sparse matrix, got {type(matrix).__name__}")
        coo = sp.coo_matrix(matrix)
        coo.sum_duplicates()
        coo.eliminate_zeros()
        n_rows, n_cols = coo.shape
        user_map = IdMap(np.arange(n_rows) if user_ids is None else user_ids)
        item_map = IdMap(np.arange(n_cols) if item_ids is None else item_ids)
        if len(user_map) != n_rows or len(item_map) != n_cols:
            raise DataError(f"matrix shape {coo.shape} does not match {len(user_map)} user ids and "
                             f"{len(item_map)} item ids")
        if coo.nnz == 0:
            raise DataError("no ratings: the matrix has no non-zero entries")
        values = _to_float_array(coo.data, "matrix values", dtype)
        scale = _check_scale(values, rating_scale, "matrix values")
        return cls(coo.row.astype(np.int32), coo.col.astype(np.int32), values, None,
                   user_map=user_map, item_map=item_map, rating_scale=scale,
                   item_info=item_info, user_info=user_info, name=name)

    # ------------------------------------------------------------------ basic facts
    def __len__(self):
        return self.rating.shape[0]

    @property
    def n_users(self) -> int:
        """Users in the id map (shared across splits), including those with no rating here."""
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def shape(self) -> Tuple[int, int]:
        return (self.n_users, self.n_items)

    @property
    def dtype(self) -> np.dtype:
        return self.rating.dtype

    def __repr__(self):
        label = f"{self.name}: " if self.name else ""
        return (f"<Ratings {label}{len(self):,} ratings, {self.n_users:,} users x {self.n_items:,} items"
                f"{', timestamps' if self.timestamp is not None else ''}>")

    def user_counts(self) -> np.ndarray:
        """Ratings per user index (int64, length n_users)."""
        return np.bincount(self.user_index, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.item_index, minlength=self.n_items)

    def global_mean(self) -> float:
        return float(np.mean(self.rating, dtype=np.float64))

    # ------------------------------------------------------------------ conversions
    def to_arrays(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """``(users, items, ratings, timestamps)`` with raw ids, one entry per rating (timestamps None
        when absent)."""
        return (self.user_map.ids[self.user_index], self.item_map.ids[self.item_index],
                self.rating.copy(), None if self.timestamp is None else self.timestamp.copy())

    def to_dataframe(self, user: str = "user", item: str = "item", rating: str = "rating",
                     timestamp: str = "timestamp") -> pandas.DataFrame:
        """A pandas DataFrame with raw ids (needs pandas)."""
        import pandas as pd

        u, i, r, t = self.to_arrays()
        cols = {user: u, item: i, rating: r}
        if t is not None:
            cols[timestamp] = t
        return pd.DataFrame(cols)

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()``, computed on the first call with ``key`` and kept with this Ratings (whose
        arrays are read-only, so whatever is derived from them stays valid): layouts a model
        would otherwise rebuild for every ``partial_fit`` on the same data."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def _compressed(self, by_user):
        key = "csr" if by_user else "csc"
        if key not in self._cache:
            from fastmf import _csr

            rows, cols = (self.user_index, self.item_index) if by_user else (self.item_index, self.user_index)
            n_rows, n_cols = (self.n_users, self.n_items) if by_user else (self.n_items, self.n_users)
            # no copy when the ratings are already in this order (make_ratings, and its splits,
            # for the CSR), one counting-sort scatter when each row's columns ascend (the CSC of
            # such data): a 100 M-rating set never holds an int64 permutation for it
            indptr, indices, data = _csr.compress(rows, cols, self.rating, n_rows, n_cols)
            for a in (indptr, indices, data):
                a.flags.writeable = False
            self._cache[key] = CSR(indptr, indices, data, (n_rows, n_cols))
        return self._cache[key]

    def _cached_compressed(self, by_user):
        """The CSR (``by_user``) or CSC when already built, else None."""
        return self._cache.get("csr" if by_user else "csc")

    def to_csr(self, scipy: bool = False) -> Union[CSR, scipy.sparse.csr_matrix]:
        """Users x items in compressed sparse row form (built once by a C counting sort, then cached).

        Returns a :data:`CSR` tuple ``(indptr, indices, data, shape)`` with column indices ascending in
        each row, or a ``scipy.sparse.csr_matrix`` when ``scipy=True``.
        """
        csr = self._compressed(True)
        return _as_scipy(csr, "csr") if scipy else csr

    def to_csc(self, scipy: bool = False) -> Union[CSR, scipy.sparse.csc_matrix]:
        """Items x users, i.e. the compressed sparse column form of the users x items matrix:
        ``indptr`` has ``n_items + 1`` entries and ``indices`` are user indices. ``scipy=True`` gives a
        ``scipy.sparse.csc_matrix`` of shape (n_users, n_items)."""
        csc = self._compressed(False)
        return _as_scipy(csc, "csc") if scipy else csc

    def csr_order(self, by_user: bool = True) -> np.ndarray:
        """The permutation that puts the ratings in CSR (``by_user``) or CSC order (read-only int64).
        Computed on request and cached apart from the CSR, which does not need it."""
        key = "csr_order" if by_user else "csc_order"
        if key not in self._cache:
            from fastmf import _csr

            rows, cols = (self.user_index, self.item_index) if by_user else (self.item_index, self.user_index)
            n_rows, n_cols = (self.n_users, self.n_items) if by_user else (self.n_items, self.n_users)
            order = _csr.csr_order(rows, cols, n_rows, n_cols)[1]
            order.flags.writeable = False
            self._cache[key] = order
        return self._cache[key]

    # ------------------------------------------------------------------ subsets
    def subset(self, selection: npt.ArrayLike, name: Optional[str] = None) -> Ratings:
        """A Ratings with the selected entries (boolean mask or integer positions, order kept),
        sharing this object's id maps, scale and metadata."""
        sel = np.asarray(selection)
        if sel.dtype == bool:
            if sel.shape != (len(self),):
                raise DataError(f"mask has shape {sel.shape}, expected ({len(self)},)")
        elif sel.dtype.kind not in "iu":
            raise DataError(f"selection must be a boolean mask or integer positions, got {sel.dtype}")
        else:
            flat = sel.reshape(-1)
            bad = first_true((flat < -len(self)) | (flat >= len(self)))
            if bad >= 0:
                raise DataError(f"selection[{bad}] = {flat[bad]} is outside [-{len(self)}, {len(self)}), "
                                "the positions of this Ratings")
        return Ratings(self.user_index[sel], self.item_index[sel], self.rating[sel],
                       None if self.timestamp is None else self.timestamp[sel],
                       user_map=self.user_map, item_map=self.item_map, rating_scale=self.rating_scale,
                       item_info=self.item_info, user_info=self.user_info,
                       name=name if name is not None else self.name, _validated=True)

    def concat(self, other: Ratings, name: Optional[str] = None) -> Ratings:
        """Entries of ``self`` followed by those of ``other`` (which must share the id maps and not
        repeat a pair)."""
        if not isinstance(other, Ratings):
            raise DataError(f"concat needs another Ratings, got {type(other).__name__}")
        if other.user_map is not self.user_map and other.user_map != self.user_map:
            raise DataError("cannot concatenate Ratings with different user id maps")
        if other.item_map is not self.item_map and other.item_map != self.item_map:
            raise DataError("cannot concatenate Ratings with different item id maps")
        ts = None
        if self.timestamp is not None and other.timestamp is not None:
            ts = np.concatenate([self.timestamp, other.timestamp])
        return Ratings(np.concatenate([self.user_index, other.user_index]),
                       np.concatenate([self.item_index, other.item_index]),
                       np.concatenate([self.rating, other.rating.astype(self.rating.dtype)]), ts,
                       user_map=self.user_map, item_map=self.item_map, rating_scale=self.rating_scale,
                       item_info=self.item_info, user_info=self.user_info,
                       name=name if name is not None else self.name)

    def astype(self, dtype: npt.DTypeLike) -> Ratings:
        """The same ratings with values stored as ``dtype`` (float32 or float64)."""
        dtype = _float_dtype(dtype)
        if dtype == self.rating.dtype:
            return self
        return Ratings(self.user_index, self.item_index, self.rating.astype(dtype), self.timestamp,
                       user_map=self.user_map, item_map=self.item_map, rating_scale=self.rating_scale,
                       item_info=self.item_info, user_info=self.user_info, name=self.name,
                       _validated=True)

    # ------------------------------------------------------------------ description and metadata
    def describe(self) -> Description:
        """Counts, density, rating statistics and histogram, per-user/per-item count quantiles.

        Returns a dict (printing it gives a short report)."""
        n = len(self)
        r = self.rating.astype(np.float64)
        uc = self.user_counts()
        ic = self.item_counts()
        qs = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
        names = ("min", "25%", "50%", "75%", "90%", "max")

        def quant(c):
            c = c[c > 0]
            vals = np.quantile(c, qs) if c.size else np.zeros(len(qs))
            return dict(zip(names, (float(v) for v in vals)))

        values, counts = np.unique(r, return_counts=True)
        hist = dict(zip((float(v) for v in values), (int(c) for c in counts))) if values.size <= 20 else None
        d = Description(
            n_ratings=n,
            n_users=self.n_users,
            n_items=self.n_items,
            n_users_with_ratings=int(np.count_nonzero(uc)),
            n_items_with_ratings=int(np.count_nonzero(ic)),
            density=n / max(1, self.n_users * self.n_items),
            rating_mean=float(r.mean()) if n else None,
            rating_std=float(r.std()) if n else None,
            rating_min=float(r.min()) if n else None,
            rating_max=float(r.max()) if n else None,
            rating_scale=self.rating_scale,
            rating_histogram=hist,
            ratings_per_user=quant(uc),
            ratings_per_item=quant(ic),
            time_range=None if self.timestamp is None or n == 0
            else (int(self.timestamp.min()), int(self.timestamp.max())),
        )
        return d

    def _meta(self, info, which, raw_id, column):
        if info is None or column not in info:
            raise DataError(f"this data set carries no {which} {column}s")
        value = info.get(raw_id, column)
        if value is None and np.ndim(raw_id) == 0:
            raise KeyError(f"unknown {which} {raw_id!r}")
        return value

    def item_title(self, item_id: Any) -> Any:
        """Title of a raw item id (scalar) or of each id of an array (None where unknown).

        When the data carries no titles (no ``item_info`` or no ``title`` column) the id itself is
        returned as a string (``"42"``), after checking it is an item of the data (KeyError if not)."""
        info = self.item_info
        if info is None or "title" not in info:
            if np.ndim(item_id) == 0:
                self.item_map.to_index(item_id, missing="raise", name="item")
                return str(item_id)
            ids = np.asarray(item_id)
            known = self.item_map.to_index(ids.reshape(-1), missing=-1) >= 0
            return np.array([str(v) if k else None for v, k in zip(ids.reshape(-1).tolist(), known)],
                            dtype=object).reshape(ids.shape)
        return self._meta(info, "item", item_id, "title")

    def item_genres(self, item_id: Ids) -> Union[List[str], np.ndarray]:
        """Genres of a raw item id as a list of strings."""
        g = self._meta(self.item_info, "item", item_id, "genres")
        return [s for s in g.split("|") if s] if isinstance(g, str) else g

    def item_features(self, *names: str, normalize: bool = True) -> "Features":
        """The items' side features from the metadata, one row per item in the data's index order
        (``item_map``): ``"genres"`` (multi-hot) and ``"year"`` (one-hot release-year bins,
        :data:`fastmf.data.features.YEAR_BINS`), side by side in the order named, rows scaled to
        unit L2 norm unless ``normalize=False``. An item without metadata, genres or year gets an
        empty (all-zero) row there. Returns a :class:`fastmf.data.features.Features` (``ids``,
        ``values``, ``names``), what ``fit(..., item_features=)`` takes. DataError when the data
        carries no such metadata; ValueError for an unknown name."""
        from fastmf.data.features import metadata_features

        return metadata_features(self, "item", names or ("genres",), normalize)

    def user_features(self, *names: str, normalize: bool = True) -> "Features":
        """:meth:`item_features` for users: ``"age"`` (one-hot bins,
        :data:`fastmf.data.features.AGE_BINS`), ``"gender"``, ``"occupation"`` (one-hot), from the
        user metadata of ml-100k and ml-1m; default all three."""
        from fastmf.data.features import metadata_features

        return metadata_features(self, "user", names or ("age", "gender", "occupation"), normalize)


# ---------------------------------------------------------------------- helpers
def _map_of(values, name):
    if isinstance(values, _FactorizedIds):
        return IdMap(values.ids), values.codes
    return IdMap.from_values(values, name)


def _factorize_with_pandas(values):
    """(sorted distinct values, index of each value) by pandas' hash factorisation (3x faster than
    np.unique's sort for 1M string ids); None when pandas is not installed (then np.unique)."""
    try:
        import pandas as pd
    except ImportError:
        return None
    codes, uniques = pd.factorize(values, sort=False)
    uniques = np.asarray(uniques).astype(values.dtype)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size, dtype=np.int32)
    return uniques[order], rank[codes]


def _to_float_array(values, name, dtype=None):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}")
    if dtype is not None:
        dtype = _float_dtype(dtype)
    if arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "b":
            arr = arr.astype(np.float32)
        else:
            out = np.empty(arr.shape[0], dtype=np.float64)
            for pos, v in enumerate(arr):  # error path for object/str input only: find the bad entry
                try:
                    out[pos] = float(v)
                except (TypeError, ValueError):
                    raise DataError(f"{name}[{pos}] = {show(v)} is not a number") from None
            arr = out
    target = dtype or (arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float32))
    arr = arr.astype(target, copy=False)
    bad = first_true(~np.isfinite(arr))
    if bad >= 0:
        raise DataError(f"{name}[{bad}] = {show(arr[bad])} is not finite")
    return arr


def _to_int_array(values, name):
    try:
        arr = np.asarray(values)
    except OverflowError:  # a list holding ints beyond int64 (NumPy >= 2)
        arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        bad = first_true(~np.isfinite(arr))
        if bad >= 0:
            raise DataError(f"{name}[{bad}] = {show(arr[bad])} is not finite")
        bad = first_true(np.abs(arr) >= 2.0 ** 63)  # the cast would be undefined
        if bad >= 0:
            raise DataError(f"{name}[{bad}] = {show(arr[bad])} is outside the 64-bit integer range")
        return arr.astype(np.int64)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[s]").astype(np.int64)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8:
        bad = first_true(arr > np.uint64(2 ** 63 - 1))  # exact on NumPy 1.x too
        if bad >= 0:
            raise DataError(f"{name}[{bad}] = {arr[bad]} is outside the 64-bit integer range")
    if arr.dtype.kind not in "iu":
        try:
            return arr.astype(np.int64)
        except (TypeError, ValueError, OverflowError):
            for pos, v in enumerate(arr):
                try:
                    iv = int(v)
                except (TypeError, ValueError):
                    raise DataError(f"{name}[{pos}] = {show(v)} is not an integer") from None
                if not -(2 ** 63) <= iv < 2 ** 63:
                    raise DataError(f"{name}[{pos}] = {show(v)} is outside the 64-bit integer range") from None
            raise
    return arr.astype(np.int64, copy=False)


def _check_scale(values, rating_scale, name):
    """The scale to store: inferred from ``values`` for ``"infer"``, else the declared one after
    checking every value lies inside it."""
    if rating_scale is None:
        return None
    if isinstance(rating_scale, str):
        if rating_scale != "infer":
            raise DataError(f"rating_scale must be 'infer', (low, high) or None, got {rating_scale!r}")
        if values.size == 0:
            return None
        lo, hi = float(values.min()), float(values.max())
        return (lo, hi) if lo < hi else None
    try:
        lo, hi = (float(x) for x in rating_scale)
    except (TypeError, ValueError):
        raise DataError(f"rating_scale must be (low, high) or None, got {rating_scale!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise DataError(f"rating_scale must satisfy low < high, got {rating_scale!r}")
    bad = first_true((values < lo) | (values > hi))
    if bad >= 0:
        raise DataError(f"{name}[{bad}] = {values[bad]:g} is outside the rating scale [{lo:g}, {hi:g}] "
                         "(pass rating_scale='infer' to take the data's min and max, or None for no scale)")
    return (lo, hi)


def _resolve_duplicates(uidx, iidx, ratings, timestamps, n_items, policy, describe, warn_stacklevel=3):
    """Apply the duplicates policy to dense-index arrays; entries keep their input order (for "last"
    and "mean" each surviving pair sits where its last occurrence was)."""
    from fastmf import _csr

    key = uidx.astype(np.int64) * max(n_items, 1) + iidx
    n_cells = (int(uidx.max()) + 1) * max(n_items, 1)
    if n_cells <= 32 * key.size + (1 << 16):
        # a presence bitmap of the (user, item) grid (at most 32 bytes per rating) answers "no
        # repeats?" in one scatter: 4x faster than the sort below for ML-1M
        cells = np.zeros(n_cells, dtype=bool)
        cells[key] = True
        if np.count_nonzero(cells) == key.size:
            return uidx, iidx, ratings, timestamps
    # stable O(n) counting sort by (user, item): equal pairs end up adjacent in input order
    order = _csr.csr_order(uidx, iidx, int(uidx.max()) + 1, n_items)[1]
    skey = key[order]
    is_dup = skey[1:] == skey[:-1]
    if not is_dup.any():
        return uidx, iidx, ratings, timestamps
    if policy == "error":
        first = int(order[np.flatnonzero(is_dup)[0] + 1])
        raise DataError(f"duplicate rating for {describe(first)} at position {first} "
                         "(pass duplicates='last' or 'mean' to resolve repeats)")
    n_dup = int(np.count_nonzero(is_dup))
    first = int(order[np.flatnonzero(is_dup)[0] + 1])
    how = "the last one in input order kept" if policy == "last" else "their ratings averaged"
    warnings.warn(f"{n_dup} repeated (user, item) rating(s) resolved, {how} (duplicates={policy!r}); "
                  f"the first repeat is {describe(first)} at position {first}",
                  DuplicateRatingsWarning, stacklevel=warn_stacklevel)
    # group starts in sorted order; the last member of each group is the survivor
    starts = np.flatnonzero(np.r_[True, ~is_dup])
    ends = np.r_[starts[1:], skey.size]
    survivor = order[ends - 1]
    if policy == "mean":
        sums = np.add.reduceat(ratings[order].astype(np.float64), starts)
        values = (sums / (ends - starts)).astype(ratings.dtype)
    else:
        values = ratings[survivor]
    keep = np.argsort(survivor, kind="stable")  # restore input order of the survivors
    survivor = survivor[keep]
    values = values[keep]
    return (uidx[survivor], iidx[survivor], values,
            None if timestamps is None else timestamps[survivor])


def _as_scipy(c, fmt):
    import scipy.sparse as sp

    if fmt == "csr":
        return sp.csr_matrix((c.data, c.indices, c.indptr), shape=c.shape)
    return sp.csc_matrix((c.data, c.indices, c.indptr), shape=(c.shape[1], c.shape[0]))
