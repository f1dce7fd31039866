# cython: language_level=3
"""Thin wrapper over csrc/csr.c (CSR ordering by counting sort) and csrc/common.c (build facts).

Private: the public entry points are ``Ratings.to_csr()`` / ``to_csc()`` and ``fastmf.openmp_enabled()``.
Callers validate and pass contiguous arrays; this layer only converts status codes to exceptions.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t
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
