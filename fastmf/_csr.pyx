# cython: language_level=3
"""Thin wrapper over csrc/csr.c (CSR ordering by counting sort) and csrc/common.c (build facts).

Private: the public entry points are ``Ratings.to_csr()`` / ``to_csc()`` and ``fastmf.openmp_enabled()``.
Callers validate and pass contiguous arrays; this layer only converts status codes to exceptions.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uintptr_t
from fastmf._common cimport (fastmf_status, fastmf_error, error_type, unexpected, FASTMF_OK,
                             FASTMF_ERR_NOMEM, FASTMF_ERR_INDEX, fastmf_openmp_enabled,
                             fastmf_max_threads)



cdef extern from "csr.h":
    enum:
        FASTMF_CSR_BAD_ROW
        FASTMF_CSR_BAD_COL
    fastmf_status fastmf_csr_order(int64_t n_rows, int64_t n_cols, int64_t nnz,
                                   const int32_t *rows, const int32_t *cols,
                                   int64_t *indptr, int64_t *order,
                                   fastmf_error *err) nogil
    enum:
        FASTMF_CSR_IN_ORDER
        FASTMF_CSR_ONE_PASS
        FASTMF_CSR_SORT
    fastmf_status fastmf_csr_plan(int64_t n_rows, int64_t n_cols, int64_t nnz, const int32_t *rows,
                                  const int32_t *cols, int64_t *indptr, int *kind, fastmf_error *err) nogil
    fastmf_status fastmf_csr_scatter(int64_t n_rows, int64_t nnz, const int32_t *rows, const int32_t *cols,
                                     const void *values, int value_size, const int64_t *indptr,
                                     int32_t *indices, void *data, fastmf_error *err) nogil
    fastmf_status fastmf_csr_transpose(int64_t n_rows, int64_t n_cols, const int64_t *indptr,
                                       const int32_t *indices, int64_t *t_indptr, int32_t *t_indices,
                                       fastmf_error *err) nogil


def openmp_enabled():
    return bool(fastmf_openmp_enabled())


def max_threads():
    return int(fastmf_max_threads())


def csr_order(const int32_t[::1] rows, const int32_t[::1] cols, int64_t n_rows, int64_t n_cols):
    """Return (indptr, order), both int64, grouping coordinates by row with columns ascending."""
    cdef int64_t nnz = rows.shape[0]
    if cols.shape[0] != nnz:
        raise ValueError(f"rows and cols differ in length: {nnz} != {cols.shape[0]}")
    if n_rows < 0 or n_cols < 0:
        raise ValueError("matrix shape must be non-negative")
    indptr_arr = np.empty(n_rows + 1, dtype=np.int64)
    order_arr = np.empty(nnz, dtype=np.int64)
    cdef int64_t[::1] indptr = indptr_arr
    cdef int64_t[::1] order = order_arr
    cdef fastmf_error err
    cdef fastmf_status st
    cdef const int32_t *rp = &rows[0] if nnz > 0 else NULL
    cdef const int32_t *cp = &cols[0] if nnz > 0 else NULL
    cdef int64_t *op = &order[0] if nnz > 0 else NULL
    with nogil:
        st = fastmf_csr_order(n_rows, n_cols, nnz, rp, cp, &indptr[0], op, &err)
    if st == FASTMF_ERR_INDEX:
        if err.which == FASTMF_CSR_BAD_ROW:
            raise error_type(st)(f"row index {rows[err.pos]} at position {err.pos} is outside [0, {n_rows})")
        raise error_type(st)(f"column index {cols[err.pos]} at position {err.pos} is outside [0, {n_cols})")
    if st == FASTMF_ERR_NOMEM:
        raise error_type(st)(f"csr_order: cannot allocate scratch for {nnz} entries")
    if st != FASTMF_OK:
        raise unexpected("csr_order: ", err)
    return indptr_arr, order_arr


cdef _index_error(fastmf_status st, fastmf_error err, rows, cols, n_rows, n_cols, what):
    if st == FASTMF_ERR_INDEX:
        if err.which == FASTMF_CSR_BAD_ROW:
            raise error_type(st)(f"row index {rows[err.pos]} at position {err.pos} is outside [0, {n_rows})")
        raise error_type(st)(f"column index {cols[err.pos]} at position {err.pos} is outside [0, {n_cols})")
    if st == FASTMF_ERR_NOMEM:
        raise error_type(st)(f"{what}: cannot allocate scratch for {max(n_rows, n_cols)} rows")
    raise unexpected(f"{what}: ", err)


def compress(rows_arr, cols_arr, values, int64_t n_rows, int64_t n_cols):
    """``(indptr, indices, data)`` of the coordinates in CSR form (columns ascending in each row),
    with as little memory as their layout allows: ``indices`` and ``data`` are ``cols`` and
    ``values`` themselves when the coordinates are already in CSR order, one counting-sort scatter
    (no permutation) when the columns ascend within every row, else ``cols[order]`` and
    ``values[order]`` for the order of :func:`csr_order`. ``values``: a contiguous 1-D float32 or
    float64 array of the same length."""
    cdef const int32_t[::1] rows = rows_arr
    cdef const int32_t[::1] cols = cols_arr
    cdef int64_t nnz = rows.shape[0]
    if cols.shape[0] != nnz or values.shape[0] != nnz:
        raise ValueError(f"rows, cols and values differ in length: {nnz}, {cols.shape[0]}, {values.shape[0]}")
    if n_rows < 0 or n_cols < 0:
        raise ValueError("matrix shape must be non-negative")
    if values.dtype not in (np.float32, np.float64) or not values.flags.c_contiguous:
        raise ValueError("values must be a contiguous float32 or float64 array")
    indptr_arr = np.empty(n_rows + 1, dtype=np.int64)
    cdef int64_t[::1] indptr = indptr_arr
    cdef const int32_t *rp = &rows[0] if nnz > 0 else NULL
    cdef const int32_t *cp = &cols[0] if nnz > 0 else NULL
    cdef int kind = FASTMF_CSR_SORT
    cdef fastmf_error err
    cdef fastmf_status st
    with nogil:
        st = fastmf_csr_plan(n_rows, n_cols, nnz, rp, cp, &indptr[0], &kind, &err)
    if st != FASTMF_OK:
        _index_error(st, err, rows, cols, n_rows, n_cols, "compress")
    if kind == FASTMF_CSR_IN_ORDER:
        return indptr_arr, cols_arr, values
    if kind == FASTMF_CSR_SORT:
        order = csr_order(rows_arr, cols_arr, n_rows, n_cols)[1]
        return indptr_arr, cols_arr[order], values[order]
    indices_arr = np.empty(nnz, dtype=np.int32)
    data_arr = np.empty(nnz, dtype=values.dtype)
    cdef int32_t[::1] ind = indices_arr
    cdef int32_t *ip = &ind[0] if nnz > 0 else NULL
    cdef const void *vp = <const void *><uintptr_t>values.ctypes.data
    cdef void *dp = <void *><uintptr_t>data_arr.ctypes.data
    cdef int vsize = values.dtype.itemsize
    with nogil:
        st = fastmf_csr_scatter(n_rows, nnz, rp, cp, vp, vsize, &indptr[0], ip, dp, &err)
    if st != FASTMF_OK:
        _index_error(st, err, rows, cols, n_rows, n_cols, "compress")
    return indptr_arr, indices_arr, data_arr


def transpose(const int64_t[::1] indptr, const int32_t[::1] indices, int64_t n_cols):
    """``(t_indptr, t_indices)``: the structure of the transpose of a CSR (rows ascending within
    each column), by one counting sort over the stored entries (no permutation array)."""
    cdef int64_t n_rows = indptr.shape[0] - 1
    if n_rows < 0 or n_cols < 0:
        raise ValueError("indptr must have at least one entry and n_cols must be non-negative")
    cdef int64_t nnz = indptr[n_rows]
    if indptr[0] != 0 or nnz != indices.shape[0]:
        raise ValueError(f"indptr must run from 0 to len(indices) = {indices.shape[0]}")
    if n_rows > 0 and np.any(np.diff(np.asarray(indptr)) < 0):
        raise ValueError("indptr must not decrease")
    t_indptr_arr = np.empty(n_cols + 1, dtype=np.int64)
    t_indices_arr = np.empty(nnz, dtype=np.int32)
    cdef int64_t[::1] tp = t_indptr_arr
    cdef int32_t[::1] ti = t_indices_arr
    cdef const int32_t *ip = &indices[0] if nnz > 0 else NULL
    cdef int32_t *tip = &ti[0] if nnz > 0 else NULL
    cdef fastmf_error err
    cdef fastmf_status st
    with nogil:
        st = fastmf_csr_transpose(n_rows, n_cols, &indptr[0], ip, &tp[0], tip, &err)
    if st != FASTMF_OK:
        _index_error(st, err, indices, indices, n_rows, n_cols, "transpose")
    return t_indptr_arr, t_indices_arr
