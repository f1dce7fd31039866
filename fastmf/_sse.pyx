# cython: language_level=3
"""Thin wrapper over csrc/sse.c: a factor model's squared training errors per CSR row, in C.

Private; used by MatrixFactorization(solver="als") for the per-sweep training RMSE. NumPy twin:
``fastmf.reference.predict`` and a sum of squares.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t
from fastmf._common cimport (fastmf_status, fastmf_error, error_type, unexpected, FASTMF_OK,
                             FASTMF_ERR_INDEX)


from fastmf._validation import check_int, check_kernel_array, check_real, check_row_matrix, row_stride, check_threads


cdef extern from "sse.h":
    fastmf_status fastmf_row_sse_f32(int64_t n_rows, int64_t n_cols, const int64_t *indptr,
                                     const int32_t *indices, const float *data, const float *P,
                                     int64_t ldp, const float *Q, int64_t ldq, int64_t k,
                                     const float *bu, const float *bi, double mu, int n_threads,
                                     double *row_sse, fastmf_error *err) nogil
    fastmf_status fastmf_row_sse_f64(int64_t n_rows, int64_t n_cols, const int64_t *indptr,
                                     const int32_t *indices, const double *data, const double *P,
                                     int64_t ldp, const double *Q, int64_t ldq, int64_t k,
                                     const double *bu, const double *bi, double mu, int n_threads,
                                     double *row_sse, fastmf_error *err) nogil


ctypedef fused real:
    float
    double


cdef fastmf_status _call(const real[::1] data, const int64_t[::1] indptr, const int32_t[::1] indices,
                         const real[:, :] P, const real[:, :] Q, bu, bi, double mu, int n_threads,
                         double[::1] out, int64_t ldp, int64_t ldq, fastmf_error *err) noexcept:
    cdef const real[::1] bu_v, bi_v
    cdef const real *bup = NULL
    cdef const real *bip = NULL
    if bu is not None:
        bu_v = bu
        bi_v = bi
        bup = &bu_v[0] if bu_v.shape[0] else NULL
        bip = &bi_v[0] if bi_v.shape[0] else NULL
    cdef int64_t n_rows = indptr.shape[0] - 1
    cdef int64_t n_cols = Q.shape[0]
    cdef int64_t k = P.shape[1]
    cdef const real *dp = &data[0] if data.shape[0] else NULL
    cdef const real *pp = &P[0, 0] if P.shape[0] else NULL
    cdef const real *qp = &Q[0, 0] if Q.shape[0] else NULL
    cdef double *op = &out[0] if out.shape[0] else NULL
    cdef const int32_t *ip = &indices[0] if indices.shape[0] else NULL
    cdef fastmf_status st
    with nogil:
        if real is float:
            st = fastmf_row_sse_f32(n_rows, n_cols, &indptr[0], ip, dp, pp, ldp, qp, ldq, k, bup, bip,
                                    mu, n_threads, op, err)
        else:
            st = fastmf_row_sse_f64(n_rows, n_cols, &indptr[0], ip, dp, pp, ldp, qp, ldq, k, bup, bip,
                                    mu, n_threads, op, err)
    return st


def observed_sse(indptr, indices, data, P, Q, bu=None, bi=None, mu=0.0, n_threads=1):
    """Sum over the stored entries of the CSR ``(indptr, indices, data)`` (rows = rows of P, columns
    = rows of Q) of ``(data - (mu + bu[u] + bi[j] + P[u] . Q[j]))**2`` (biases optional), in double;
    deterministic for every ``n_threads``."""
    dt = np.dtype(P.dtype) if isinstance(P, np.ndarray) else None
    if dt not in (np.float32, np.float64):
        raise ValueError("P must be a float32 or float64 array")
    check_kernel_array(indptr, "indptr", np.int64, 1)
    check_kernel_array(indices, "indices", np.int32, 1)
    check_kernel_array(data, "data", dt, 1)
    ldp = row_stride(check_row_matrix(P, "P", (dt,)))
    ldq = row_stride(check_row_matrix(Q, "Q", (dt,)))
    if P.shape[1] != Q.shape[1]:
        raise ValueError(f"P and Q differ in factors: {P.shape[1]} != {Q.shape[1]}")
    n_rows = indptr.shape[0] - 1
    if n_rows != P.shape[0] or indptr[0] != 0 or indptr[n_rows] != data.shape[0] or \
            indices.shape[0] != data.shape[0] or np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must rise from 0 to len(data) with one entry per row of P, plus one")
    if (bu is None) != (bi is None):
        raise ValueError("give both biases or neither")
    mu = check_real(mu, "mu")
    n_threads = check_threads(n_threads)
    if bu is not None:
        check_kernel_array(bu, "bu", dt, 1)
        check_kernel_array(bi, "bi", dt, 1)
        if bu.shape[0] != P.shape[0] or bi.shape[0] != Q.shape[0]:
            raise ValueError("bu and bi must have one entry per row of P and Q")
    out = np.empty(n_rows, dtype=np.float64)
    cdef fastmf_error err
    if dt == np.float32:
        st = _call[float](data, indptr, indices, P, Q, bu, bi, mu, n_threads, out, ldp, ldq, &err)
    else:
        st = _call[double](data, indptr, indices, P, Q, bu, bi, mu, n_threads, out, ldp, ldq, &err)
    if st == FASTMF_ERR_INDEX:
        raise error_type(st)(f"indices[{err.pos}] = {indices[err.pos]} is outside [0, {Q.shape[0]})")
    if st != FASTMF_OK:
        raise unexpected("observed_sse: ", err)
    return float(out.sum())
