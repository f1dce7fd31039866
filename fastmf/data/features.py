"""Side features: id x feature matrices aligned with a data set's id map.

A feature matrix gives every user (or item) of a :class:`~fastmf.Ratings` a row of numbers: the genres
of a movie (multi-hot), its release-year bin (one-hot), a user's age bin, gender and occupation.
Models with side features (``item_features=`` / ``user_features=`` of ``fit``, see
:mod:`fastmf.models.side`) use them to give a representation to items and users that have no
ratings (cold start).

Inputs
------
:func:`as_feature_rows` turns what a user hands over into one dense float64 matrix whose row ``j``
belongs to index ``j`` of an id map:

* a :class:`Features` (what :meth:`Ratings.item_features` / :meth:`Ratings.user_features` return):
  joined through its raw ids;
* a pandas DataFrame **keyed by raw id** (its index holds the ids, every column is a feature): joined
  through the id map. Ids of the map missing from the frame get an **empty row** (all zeros), ids
  of the frame unknown to the map are ignored;
* a NumPy array or a scipy.sparse matrix of shape ``(n_ids, n_features)``, rows already in the
  data's index order (``Ratings.item_map`` order).

scipy is optional: sparse inputs are accepted when it is installed (they are densified: side
features are a few dozen columns; :func:`fastmf._validation.check_memory` refuses a matrix that
would not fit in memory).

Normalisation and empty rows
----------------------------
:func:`normalize_rows` scales each row to unit Euclidean norm, :math:`x_i / \\lVert x_i \\rVert_2`:
for a multi-hot row with :math:`|G(i)|` ones that is the :math:`|G(i)|^{-1/2}` weighting of Koren
(2009, eq. 6), so an item with many genres does not get a larger vector than one with a single
genre. An **empty row** (no genre listed, unknown year, an id without metadata) stays all zeros: a
model then gives that id only the intercept of its feature map (the average learned item or user).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple

import numpy as np

from fastmf.data.ratings import IdMap, Metadata
from fastmf.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from fastmf.data.ratings import Ratings

__all__ = ["Features", "FeatureLike", "as_feature_rows", "normalize_rows", "ITEM_FEATURES", "USER_FEATURES",
           "YEAR_BINS", "AGE_BINS"]

#: what ``fit(..., item_features=, user_features=)`` takes: a :class:`Features`, a pandas DataFrame
#: keyed by raw id, or a NumPy array / scipy.sparse matrix with one row per id in index order
FeatureLike = Any

#: left edges of the release-year bins: "<1950", "1950-1959", ..., "2020-" (a missing year: empty)
YEAR_BINS = (1950, 1960, 1970, 1980, 1990, 1995, 2000, 2005, 2010, 2015, 2020)
#: left edges of the age bins (those of ml-1m's age codes 1, 18, 25, 35, 45, 50, 56; ml-100k's ages
#: in years fall into the same bins)
AGE_BINS = (18, 25, 35, 45, 50, 56)


@dataclass(frozen=True)
class Features:
    """A feature matrix keyed by raw id: ``values[j]`` is the row of ``ids[j]``; ``names`` the columns.

    ``np.asarray(features)`` is ``values``; :meth:`to_frame` gives the DataFrame keyed by raw id.
    """

    ids: np.ndarray
    values: np.ndarray
    names: Tuple[str, ...]

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape != (self.ids.shape[0], len(self.names)):
            raise DataError(f"Features: values of shape {self.values.shape} do not match {self.ids.shape[0]} "
                            f"ids x {len(self.names)} names")

    @property
    def shape(self) -> Tuple[int, int]:
        return self.values.shape

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.values if dtype is None else self.values.astype(dtype)

    def __len__(self) -> int:
        return self.values.shape[0]

    def __repr__(self) -> str:
        shown = ", ".join(self.names[:6]) + (", ..." if len(self.names) > 6 else "")
        return f"Features({self.values.shape[0]} ids x {len(self.names)} features: {shown})"

    def to_frame(self) -> Any:
        """The matrix as a pandas DataFrame indexed by raw id (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.values, index=pd.Index(self.ids), columns=list(self.names))


# ---------------------------------------------------------------------- normalisation
def normalize_rows(X: np.ndarray) -> np.ndarray:
    """``X`` with each row scaled to unit L2 norm (a new float64 array); all-zero rows stay zero."""
    X = np.array(X, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    nz = norms > 0
    X[nz] /= norms[nz, None]
    return X


# ---------------------------------------------------------------------- input conversion
def _is_frame(x: Any) -> bool:
    return type(x).__name__ == "DataFrame" and hasattr(x, "index") and hasattr(x, "columns")


def _is_sparse(x: Any) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _checked_values(values: Any, where: str) -> np.ndarray:
    from fastmf._validation import check_memory, first_true

    if _is_sparse(values):
        check_memory(8 * int(values.shape[0]) * int(values.shape[1]), f"{where} ({values.shape[0]:,} x "
                     f"{values.shape[1]:,} dense)", "the number of feature columns")
        values = values.toarray()
    try:
        X = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where} must hold numbers, got {type(values).__name__}") from None
    if X.ndim != 2:
        raise DataError(f"{where} must be 2-D (ids x features), got shape {X.shape}")
    bad = first_true(~np.isfinite(X.reshape(-1)))
    if bad >= 0:
        row, col = divmod(bad, max(X.shape[1], 1))
        raise DataError(f"{where}[{row}, {col}] = {X.reshape(-1)[bad]} is not finite")
    return X


def as_feature_rows(features: Any, id_map: IdMap, kind: str = "item",
                    where: Optional[str] = None) -> Tuple[np.ndarray, Tuple[str, ...]]:
    """``(X, names)``: ``features`` as a dense float64 matrix with one row per index of ``id_map``.

    ``features``: a :class:`Features` or a pandas DataFrame keyed by raw id (joined through the id
    map; missing ids get empty rows), or an array / scipy.sparse matrix of shape
    ``(len(id_map), n_features)`` in index order. ``names`` are the DataFrame's columns or the
    Features' names, else ``"f0", "f1", ...``. DataError names ``where`` (default
    ``"<kind>_features"``) for a wrong shape, non-numbers or non-finite values.
    """
    where = where or f"{kind}_features"
    n = len(id_map)
    if isinstance(features, Features) or _is_frame(features):
        if isinstance(features, Features):
            ids, values, names = features.ids, features.values, tuple(features.names)
        else:
            ids, values, names = np.asarray(features.index), features.to_numpy(), tuple(map(str, features.columns))
        X_in = _checked_values(values, where)
        try:
            pos = id_map.to_index(np.asarray(ids), missing=-1, name=kind)
        except (TypeError, ValueError):
            raise DataError(f"{where}: its index must hold raw {kind} ids like those of the data "
                            f"({'strings' if id_map.is_string else 'integers'})") from None
        pos = np.atleast_1d(np.asarray(pos, dtype=np.int64))
        X = np.zeros((n, X_in.shape[1]))
        known = pos >= 0
        X[pos[known]] = X_in[known]  # a repeated id: its last row wins
        return X, names
    X = _checked_values(features, where)
    if X.shape[0] != n:
        raise DataError(f"{where} has {X.shape[0]} rows but the data has {n} {kind}s; give one row per "
                        f"{kind} in the data's index order, or a DataFrame indexed by raw {kind} id")
    return X, tuple(f"f{j}" for j in range(X.shape[1]))


# ---------------------------------------------------------------------- MovieLens metadata -> features
def _multi_hot(labels: Sequence[str], sep: str = "|") -> Tuple[np.ndarray, Tuple[str, ...]]:
    split = [[s for s in str(v).split(sep) if s] for v in labels]
    names = tuple(sorted({s for row in split for s in row}))
    col = {s: j for j, s in enumerate(names)}
    X = np.zeros((len(split), len(names)))
    for r, row in enumerate(split):
        X[r, [col[s] for s in row]] = 1.0
    return X, names


def _one_hot_bins(values: np.ndarray, edges: Sequence[int], label: str, valid: np.ndarray
                  ) -> Tuple[np.ndarray, Tuple[str, ...]]:
    b = np.searchsorted(np.asarray(edges), values, side="right")  # 0: below the first edge
    names = tuple([f"{label}<{edges[0]}"] + [f"{label}{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
                  + [f"{label}{edges[-1]}+"])
    X = np.zeros((values.shape[0], len(names)))
    X[np.flatnonzero(valid), b[valid]] = 1.0
    return X, names


def _genres(info: Metadata) -> Tuple[np.ndarray, Tuple[str, ...]]:
    X, names = _multi_hot(info.columns["genres"])
    return X, tuple(f"genre={g}" for g in names)


def _year(info: Metadata) -> Tuple[np.ndarray, Tuple[str, ...]]:
    years = np.asarray(info.columns["year"], dtype=np.int64)
    return _one_hot_bins(years, YEAR_BINS, "year", years > 0)


def _age(info: Metadata) -> Tuple[np.ndarray, Tuple[str, ...]]:
    ages = np.asarray(info.columns["age"], dtype=np.int64)
    return _one_hot_bins(ages, AGE_BINS, "age", ages > 0)


def _categorical(column: str):
    def build(info: Metadata) -> Tuple[np.ndarray, Tuple[str, ...]]:
        X, names = _multi_hot([str(v) for v in info.columns[column]], sep="\0")
        return X, tuple(f"{column}={v}" for v in names)

    return build


#: feature name -> (metadata column it needs, builder from the Metadata)
ITEM_FEATURES: Dict[str, Tuple[str, Any]] = {"genres": ("genres", _genres), "year": ("year", _year)}
USER_FEATURES: Dict[str, Tuple[str, Any]] = {"age": ("age", _age), "gender": ("gender", _categorical("gender")),
                                             "occupation": ("occupation", _categorical("occupation"))}


def metadata_features(ds: "Ratings", kind: str, names: Sequence[str], normalize: bool = True) -> Features:
    """The :class:`Features` of ``ds``'s items (``kind="item"``) or users from its metadata, one row
    per index of the data's id map (``Features.ids`` is the map's ids), the columns of each name in
    ``names`` side by side. An id without metadata gets an empty row. ``normalize``: rows scaled to
    unit L2 norm (:func:`normalize_rows`). What :meth:`Ratings.item_features` /
    :meth:`Ratings.user_features` return."""
    table = ITEM_FEATURES if kind == "item" else USER_FEATURES
    info = ds.item_info if kind == "item" else ds.user_info
    id_map = ds.item_map if kind == "item" else ds.user_map
    if isinstance(names, str):
        names = (names,)
    if len(names) == 0:
        raise ValueError(f"{kind}_features: name at least one feature set ({', '.join(table)})")
    blocks, columns = [], []
    for name in names:
        if name not in table:
            raise ValueError(f"{kind}_features: unknown feature set {name!r}; known: {', '.join(table)}")
        column, build = table[name]
        if info is None or column not in info:
            raise DataError(f"{kind}_features({name!r}): this data set carries no {kind} {column} "
                            f"metadata (load_movielens gives it for {'every MovieLens set' if kind == 'item' else 'ml-100k and ml-1m'})")
        X, cols = build(info)
        pos = np.atleast_1d(np.asarray(info.map.to_index(id_map.ids, missing=-1, name=kind), dtype=np.int64))
        rows = np.zeros((len(id_map), X.shape[1]))
        rows[pos >= 0] = X[pos[pos >= 0]]
        blocks.append(rows)
        columns.extend(cols)
    values = np.hstack(blocks)
    if normalize:
        values = normalize_rows(values)
    values.setflags(write=False)
    return Features(id_map.ids, values, tuple(columns))
