/* Sum of squared errors of a factor model over the stored entries of a CSR matrix.
 *
 * For every row u and stored entry (u, j, r):  e = r - (mu + bu[u] + bi[j] + P[u] . Q[j])  (bu, bi
 * NULL: no biases, and mu is used as given, 0 for an unbiased model). P[u] . Q[j] is summed in double
 * over 16 partial sums added as a fixed tree (fastmf_lane_sum16: independent chains, no reassociation
 * flags). row_sse[u] = sum over the row of e^2, accumulated in double; the caller adds the rows in order (deterministic for any thread
 * count). NumPy twin: ((data - predictions) ** 2) summed per row, predictions as in
 * fastmf.reference.predict.
 *
 * Invariants: indptr (n_rows + 1, int64, non-decreasing from 0), indices (int32, each in [0, n_cols)),
 * data, P (n_rows rows, row stride ldp >= k), Q (n_cols rows, row stride ldq >= k), bu, bi and
 * row_sse are caller-owned and contiguous; indices are checked (FASTMF_ERR_INDEX, err->pos = the
 * entry). Rows run in parallel (OpenMP, dynamic schedule); no shared writes.
 */
#ifndef FASTMF_SSE_H
#define FASTMF_SSE_H

#include <stdint.h>
#include "common.h"

fastmf_status fastmf_row_sse_f32(int64_t n_rows, int64_t n_cols, const int64_t *indptr,
                                 const int32_t *indices, const float *data, const float *P,
                                 int64_t ldp, const float *Q, int64_t ldq, int64_t k,
                                 const float *bu, const float *bi, double mu, int n_threads,
                                 double *row_sse, fastmf_error *err);
fastmf_status fastmf_row_sse_f64(int64_t n_rows, int64_t n_cols, const int64_t *indptr,
                                 const int32_t *indices, const double *data, const double *P,
                                 int64_t ldp, const double *Q, int64_t ldq, int64_t k,
                                 const double *bu, const double *bi, double mu, int n_threads,
                                 double *row_sse, fastmf_error *err);

#endif
