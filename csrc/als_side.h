/* Explicit ALS with jointly learned side-feature factors (side="joint" of MatrixFactorization with
 * solver="als"): the two per-rating loops of a side with features. The math, the invariants and the
 * thread rules are at the top of als_side.c; the NumPy twins are fastmf.reference.als_side.
 *
 * A side with features is "the side being solved": its ratings come as a CSR (rows = that side,
 * indices = rows of the fixed side), its features as a CSR of rows -> features and the same entries
 * as a CSR of features -> rows (its transpose). Every array is C-contiguous and the caller's.
 * Each typed entry point exists for float (_f32) and double (_f64) elements; arithmetic is double.
 */
#ifndef FASTMF_ALS_SIDE_H
#define FASTMF_ALS_SIDE_H

#include <stdint.h>
#include "common.h"

/* What err->which reports next to a failed status (err->pos says where). */
enum {
    FASTMF_ALS_SIDE_BAD_ARGS = 0,        /* ERR_VALUE: a size or pointer is invalid (pos = -1) */
    FASTMF_ALS_SIDE_BAD_INDPTR = 1,      /* ERR_VALUE: indptr[pos] of the ratings CSR is broken */
    FASTMF_ALS_SIDE_BAD_INDEX = 2,       /* ERR_INDEX: indices[pos] outside [0, n_fixed) */
    FASTMF_ALS_SIDE_BAD_FEAT_INDPTR = 3, /* ERR_VALUE: f_indptr[pos] (rows -> features) is broken */
    FASTMF_ALS_SIDE_BAD_FEAT_INDEX = 4,  /* ERR_INDEX: f_indices[pos] outside [0, n_features) */
    FASTMF_ALS_SIDE_BAD_T_INDPTR = 5,    /* ERR_VALUE: t_indptr[pos] (features -> rows) is broken */
    FASTMF_ALS_SIDE_BAD_T_INDEX = 6,     /* ERR_INDEX: t_indices[pos] outside [0, n_rows) */
    FASTMF_ALS_SIDE_BAD_SYSTEM = 7,      /* ERR_NOT_PD: feature pos's system is not positive definite */
    FASTMF_ALS_SIDE_BAD_RESULT = 8       /* ERR_DIVERGED: feature pos's solution is not finite */
};

typedef struct {
    int64_t n_rows;        /* rows of the side being solved */
    int64_t n_fixed;       /* rows of the fixed side */
    int64_t n_factors;     /* k >= 1 */
    int64_t nnz;           /* ratings: indptr[n_rows] */
    int64_t n_features;    /* columns of the feature matrix */
    int64_t feat_nnz;      /* entries of the feature matrix: f_indptr[n_rows] = t_indptr[n_features] */
    double mu;             /* global mean (biased only) */
    double reg_features;   /* penalty of the feature rows [z_g, w_g] */
    int weighted;          /* 1: the penalty of feature g is reg_features * N_g (N_g: ratings of its rows) */
    int biased;            /* 1: [y_j, 1] against [z_g, w_g]; 0: y_j against z_g, no mu, no biases */
    int n_threads;
    const fastmf_interrupt *interrupt;   /* may be NULL; read between rows / between features */
} fastmf_als_side_params;

/* out[e] = data[e] - y_j . f_r - fb_r for every entry e = (r, j) of the ratings CSR, with the
 * feature part f_r = sum_g x_rg z_g, fb_r = sum_g x_rg w_g (fb = 0 unbiased; w may then be NULL):
 * the targets of the free-part solve (an ALS half-sweep of the free rows against the fixed side).
 * Rows in parallel; out is bit-identical for every n_threads. p->mu, reg_features, weighted unused. */
fastmf_status fastmf_als_side_offsets_f32(const fastmf_als_side_params *p, const int64_t *indptr,
                                          const int32_t *indices, const float *data, const float *fixed,
                                          const int64_t *f_indptr, const int32_t *f_indices,
                                          const double *f_values, const float *Z, const float *w,
                                          float *out, fastmf_error *err);
fastmf_status fastmf_als_side_offsets_f64(const fastmf_als_side_params *p, const int64_t *indptr,
                                          const int32_t *indices, const double *data, const double *fixed,
                                          const int64_t *f_indptr, const int32_t *f_indices,
                                          const double *f_values, const double *Z, const double *w,
                                          double *out, fastmf_error *err);

/* One Gauss-Seidel sweep over the feature rows [z_g, w_g], g = 0 .. n_features - 1 in that order,
 * each set to the exact minimiser of the objective with everything else fixed (als_side.c). fixed /
 * fixed_bias: the other side's effective rows; free_part / free_bias: this side's free parts. Z, w are
 * updated in place. The residuals of all ratings (nnz doubles) and every feature's system
 * (n_features round8(k+1)^2 doubles) are allocated here and freed on every path. Bit-identical for
 * every n_threads (residuals and systems in parallel, each by the same instructions; the
 * Gauss-Seidel pass serial). */
fastmf_status fastmf_als_side_features_f32(const fastmf_als_side_params *p, const int64_t *indptr,
                                           const int32_t *indices, const float *data, const float *fixed,
                                           const float *fixed_bias, const float *free_part, const float *free_bias,
                                           const int64_t *f_indptr, const int32_t *f_indices,
                                           const double *f_values, const int64_t *t_indptr,
                                           const int32_t *t_indices, const double *t_values, float *Z,
                                           float *w, fastmf_error *err);
fastmf_status fastmf_als_side_features_f64(const fastmf_als_side_params *p, const int64_t *indptr,
                                           const int32_t *indices, const double *data, const double *fixed,
                                           const double *fixed_bias, const double *free_part,
                                           const double *free_bias, const int64_t *f_indptr,
                                           const int32_t *f_indices, const double *f_values,
                                           const int64_t *t_indptr, const int32_t *t_indices,
                                           const double *t_values, double *Z, double *w, fastmf_error *err);

#endif
