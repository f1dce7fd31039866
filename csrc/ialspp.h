/* iALS++ half-sweep (Rendle, Krichene, Zhang & Koren 2021, "iALS++: Speeding up Matrix
 * Factorization with Subspace Optimization"): the implicit-ALS objective of als.h minimised over
 * b-dimensional blocks of each row's factors in turn, with a per-row prediction cache.
 *
 * The math, the invariants, buffer ownership and the thread-safety rules are at the top of
 * ialspp.c. In short: the same problem, hyper-parameters and error records as
 * fastmf_ials_half_sweep_* (als.h, fastmf_ials_params; p->solver and p->cg_steps are ignored), one
 * pass of exact block minimisations over the blocks [0, b), [b, 2b), ... of every row instead of a
 * full solve: O(nnz k b + n_rows k (k + b^2)) per half-sweep. Rows run in parallel (OpenMP, dynamic
 * schedule) and give bit-identical results for every thread count. All arrays are C-contiguous and
 * owned by the caller; `factors` is read (the start of the block steps) and written in place.
 */
#ifndef FASTMF_IALSPP_H
#define FASTMF_IALSPP_H

#include <stdint.h>
#include "als.h"
#include "common.h"

/* block sizes a caller may pass: 1 <= block_size <= FASTMF_IALSPP_MAX_BLOCK (block_size >= k is one
 * block, the exact solve of fastmf_ials_half_sweep_* with the Cholesky solver) */
#define FASTMF_IALSPP_MAX_BLOCK 1024

/* iALS++ half-sweep: for every row r, starting from x = factors[r] and with s_j = x.y_j cached for
 * the row's entries, for each block B of block_size coordinates in order:
 *     x_B -= (G_BB + sum_j (c_j - 1) y_jB y_jB^T + lambda_r I)^{-1}
 *            (G_B: x + sum_j ((c_j - 1) s_j - c_j p_j) y_jB + lambda_r x_B),   s_j = x.y_j,
 * the exact minimiser over x_B of the row's objective (als.h) with the other coordinates fixed.
 * gram: G = Y^T Y of fixed_factors (k x k, double, full), or NULL to compute it here. Errors as for
 * fastmf_ials_half_sweep_* (FASTMF_ALS_BAD_START: a non-finite start row; FASTMF_ALS_BAD_ARGS also
 * for a block_size outside [1, FASTMF_IALSPP_MAX_BLOCK]). */
fastmf_status fastmf_ialspp_half_sweep_f32(const fastmf_ials_params *p, int64_t block_size,
                                           const int64_t *indptr, const int32_t *indices,
                                           const float *data, const float *fixed_factors,
                                           const double *gram, float *factors, fastmf_error *err);
fastmf_status fastmf_ialspp_half_sweep_f64(const fastmf_ials_params *p, int64_t block_size,
                                           const int64_t *indptr, const int32_t *indices,
                                           const double *data, const double *fixed_factors,
                                           const double *gram, double *factors, fastmf_error *err);

#endif
