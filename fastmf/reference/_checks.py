"""Shape and dtype checks shared by the reference twins (validation proper is the callers' job)."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import numpy.typing as npt


def _require(condition, message):
    if not condition:
        raise ValueError(message)


def _check_model(P, Q, bu, bi, biased):
    """Shape/dtype agreement of the factor and bias arrays; returns the factors' dtype."""
    _require(P.ndim == 2 and Q.ndim == 2, f"P and Q must be 2-D, got shapes {P.shape} and {Q.shape}")
    _require(P.shape[1] == Q.shape[1], f"P and Q must have the same number of factors, "
                                       f"got {P.shape[1]} and {Q.shape[1]}")
    _require(P.dtype == Q.dtype, f"P and Q must share a dtype, got {P.dtype} and {Q.dtype}")
    if biased:
        _require(bu is not None and bi is not None, "bu and bi are required when biased=True")
        _require(bu.shape == (P.shape[0],), f"bu must have shape ({P.shape[0]},), got {bu.shape}")
        _require(bi.shape == (Q.shape[0],), f"bi must have shape ({Q.shape[0]},), got {bi.shape}")
    return P.dtype


def _check_triples(users: npt.ArrayLike, items: npt.ArrayLike,
                   ratings: npt.ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    users, items, ratings = np.asarray(users), np.asarray(items), np.asarray(ratings)
    _require(users.ndim == 1 and users.shape == items.shape == ratings.shape,
             f"users, items and ratings must be 1-D of one length, "
             f"got shapes {users.shape}, {items.shape}, {ratings.shape}")
    return users, items, ratings


def _check_csr(indptr, indices, data, n_rows, n_cols, what):
    _require(indptr.shape == (n_rows + 1,),
             f"{what}: indptr must have {n_rows + 1} entries (rows + 1), got shape {indptr.shape}")
    _require(indices.shape == data.shape == (int(indptr[-1]),),
             f"{what}: indices and data must have indptr[-1] = {int(indptr[-1])} entries, "
             f"got shapes {indices.shape} and {data.shape}")
    _require(indices.size == 0 or (indices.min() >= 0 and indices.max() < n_cols),
             f"{what}: indices must lie in [0, {n_cols}) (the rows of the fixed side)")
