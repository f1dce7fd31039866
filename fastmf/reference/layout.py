"""NumPy twins of the layout kernels: the CSR of coordinates (``fastmf._csr.compress``), the
structure of a CSR's transpose (``fastmf._csr.transpose``) and the block-order copy of the ratings
of the blocked SGD schedule (``fastmf._sgd.block_layout``). The kernels avoid the permutation
arrays these build; the results are the same arrays."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import numpy.typing as npt

__all__ = ["csr_compress", "csr_transpose", "block_layout"]


def csr_compress(rows: npt.ArrayLike, cols: npt.ArrayLike, values: npt.ArrayLike, n_rows: int,
                 n_cols: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)``: coordinates grouped by row, columns ascending in each row (ties
    in input order), i.e. ``order = lexsort((arange(nnz), cols, rows))``, ``indices = cols[order]``,
    ``data = values[order]``, ``indptr = [0, cumsum(bincount(rows))]``."""
    rows, cols, values = np.asarray(rows), np.asarray(cols), np.asarray(values)
    order = np.lexsort((np.arange(rows.size), cols, rows))
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))].astype(np.int64)
    return indptr, cols[order].astype(np.int32), values[order]


def csr_transpose(indptr: npt.ArrayLike, indices: npt.ArrayLike, n_cols: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(t_indptr, t_indices)``: the transpose's structure, rows ascending within each column."""
    indptr, indices = np.asarray(indptr, dtype=np.int64), np.asarray(indices)
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    order = np.lexsort((rows, indices))
    t_indptr = np.r_[0, np.cumsum(np.bincount(indices, minlength=n_cols))].astype(np.int64)
    return t_indptr, rows[order].astype(np.int32)


def block_layout(users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike,
                 user_block: npt.ArrayLike, item_block: npt.ArrayLike,
                 n_blocks: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(users, items, ratings, block_ptr)`` in block order: the ratings of block
    ``id = user_block[u] * n_blocks + item_block[i]`` are the range ``block_ptr[id]:block_ptr[id + 1]``,
    in input order within a block (a stable sort by block id)."""
    users, items, ratings = np.asarray(users), np.asarray(items), np.asarray(ratings)
    block = np.asarray(user_block, dtype=np.int64)[users] * n_blocks + np.asarray(item_block)[items]
    order = np.argsort(block, kind="stable")
    block_ptr = np.r_[0, np.cumsum(np.bincount(block, minlength=n_blocks * n_blocks))].astype(np.int64)
    return users[order], items[order], ratings[order], block_ptr
