"""Implicit-feedback bags: the one place that decides what :math:`N(u)` is and how it is weighted.

SVD++ (:class:`fastmf.SVDpp`) and the implicit features of :class:`fastmf.BayesianMF` add to each
user's row the weighted sum :math:`|N(u)|^{-1/2} \\sum_{j \\in N(u)} y_j` over a set of items
:math:`N(u)` (Koren 2008; Rendle et al. 2019). Here:

* ``implicit=None``: :math:`N(u)` is the set of items ``u`` rated in the **training** data (never
  the test data: a test rating would otherwise leak through its presence);
* ``implicit=`` a user x item matrix of views, clicks, purchases...: :math:`N(u)` is the set of
  items with a nonzero entry in row ``u`` (the values are not used). It may be a
  :class:`fastmf.Ratings` (raw ids, mapped through the training data's id maps; users and items the
  training data does not know are ignored), or a ``scipy.sparse`` matrix or a 2-D array of shape
  (n_users, n_items) in the training data's index order (``train.user_map`` / ``train.item_map``).

The weight of a bag is :math:`w_u = |N(u)|^{-1/2}` (0 for an empty bag).
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

__all__ = ["bag_weights", "implicit_bags"]


def bag_weights(indptr: np.ndarray) -> np.ndarray:
    """:math:`w_r = |N(r)|^{-1/2}` for the rows of a CSR ``indptr`` (0 for an empty row), float64."""
    n = np.diff(np.asarray(indptr, dtype=np.int64)).astype(np.float64)
    out = np.zeros(n.size)
    np.divide(1.0, np.sqrt(n), out=out, where=n > 0)
    return out


def implicit_bags(train: Any, implicit: Any = None, what: str = "implicit") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr int64, indices int32, weights float64)``: the CSR of :math:`N(u)` over the users of
    ``train`` (rows) and its items (columns, ascending within a row), and :func:`bag_weights` of
    it. ``implicit`` as in the module docstring; ValueError / TypeError naming ``what`` otherwise."""
    from fastmf.data.ratings import Ratings

    n_users, n_items = train.n_users, train.n_items
    if implicit is None:
        csr = train.to_csr()
        indptr, indices = csr.indptr, csr.indices
    else:
        if isinstance(implicit, Ratings):
            users, items, _, _ = implicit.to_arrays()
            u = np.asarray(train.user_map.to_index(users, missing=-1, name="user"), dtype=np.int64)
            i = np.asarray(train.item_map.to_index(items, missing=-1, name="item"), dtype=np.int64)
            keep = (u >= 0) & (i >= 0)
            rows, cols = u[keep], i[keep]
        else:
            try:
                import scipy.sparse as sp
            except ImportError:  # pragma: no cover - scipy is a dependency
                sp = None
            if sp is not None and sp.issparse(implicit):
                m = sp.coo_matrix(implicit)
                shape, rows, cols, vals = m.shape, m.row.astype(np.int64), m.col.astype(np.int64), m.data
            elif isinstance(implicit, np.ndarray) or isinstance(implicit, (list, tuple)):
                arr = np.asarray(implicit)
                if arr.ndim != 2:
                    raise ValueError(f"{what} must be a 2-D (n_users, n_items) matrix, got {arr.ndim} dimension(s)")
                shape = arr.shape
                rows, cols = np.nonzero(arr)
                vals = arr[rows, cols]
            else:
                raise TypeError(f"{what} must be None, a fastmf.Ratings, a scipy.sparse matrix or a 2-D "
                                f"array of shape (n_users, n_items), got {type(implicit).__name__}")
            if tuple(shape) != (n_users, n_items):
                raise ValueError(f"{what} has shape {tuple(shape)} but the training data has "
                                 f"{n_users} users and {n_items} items: a matrix {what} is indexed like "
                                 f"train.user_map x train.item_map (or pass a fastmf.Ratings of raw ids)")
            if vals.dtype.kind not in "biuf":
                raise ValueError(f"{what} must hold numbers, got dtype {vals.dtype}")
            if vals.dtype.kind == "f" and not np.isfinite(vals).all():
                pos = int(np.flatnonzero(~np.isfinite(vals))[0])
                raise ValueError(f"{what}[{rows[pos]}, {cols[pos]}] = {vals[pos]} is not finite")
            nz = vals != 0
            rows, cols = rows[nz], cols[nz]
        key = np.unique(rows * max(n_items, 1) + cols)  # distinct pairs, by row then column
        rows, cols = key // max(n_items, 1), key % max(n_items, 1)
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_users))].astype(np.int64)
        indices = cols.astype(np.int32)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    return indptr, indices, bag_weights(indptr)
