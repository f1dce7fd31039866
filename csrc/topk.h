/* Exact top-n selection per row: over a given score matrix, or over scores u . v_i + b_i computed on
 * the fly from factor matrices (never materialising a users x items score matrix).
 *
 * The math, the invariants, buffer ownership and the thread-safety rules are described at the top of
 * topk.c. In short: for every output row r the kernels return the n highest-scoring allowed columns,
 * best first, equal scores ordered by lower column index; a column is allowed when its score is not
 * -inf, it is not in the row's excluded list and it is a candidate. Missing slots are padded with
 * index -1 and score -inf. A NaN score is an error. All arrays are C-contiguous (factor rows may be
 * padded: row strides ld_U, ld_V) and owned by the caller.
 */
#ifndef FASTMF_TOPK_H
#define FASTMF_TOPK_H

#include <stdint.h>
#include "common.h"

/* What fastmf_topk_error.which reports when a kernel returns a status other than FASTMF_OK. */
enum {
    FASTMF_TOPK_BAD_USER = 1,    /* ERR_INDEX: users[row] (= pos) outside its allowed range */
    FASTMF_TOPK_BAD_INDPTR = 2,  /* ERR_INDEX: excl_indptr[pos], excl_indptr[pos + 1] is not a range
                                    lo <= hi inside [0, excl_nnz] (pos is the user) */
    FASTMF_TOPK_BAD_EXCL = 3,    /* ERR_INDEX: excl_indices[pos] outside [0, n_items) */
    FASTMF_TOPK_BAD_NAN = 4,     /* ERR_VALUE: the score of output row `row`, column pos is NaN */
    FASTMF_TOPK_BAD_SPEC = 5     /* ERR_VALUE: an inconsistent size or a missing array in the spec */
};

/* Where a problem was found. row is the smallest output row with a problem (so the report does not
 * depend on the thread count), -1 when there is none. */
typedef struct {
    int64_t row;
    int64_t pos;
    int which;
} fastmf_topk_error;

/* The rows to select and the rules shared by both kernels. Pointers are borrowed for one call. */
typedef struct {
    int64_t n_rows;               /* m: output rows */
    int64_t n_items;              /* columns of the score matrix, rows of V */
    int64_t n;                    /* slots per output row (>= 0); outputs are [n_rows * n] */
    const int64_t *users;         /* NULL (row r is user r) or [n_rows]: the user of each row, which
                                     picks its excluded list (and its row of U / user_offset) */
    int64_t n_users;              /* rows of the exclusion CSR (and of U and user_offset) */
    const int64_t *excl_indptr;   /* NULL (nothing excluded) or [n_users + 1] */
    const int32_t *excl_indices;  /* [excl_nnz]: user u excludes excl_indices[indptr[u]:indptr[u+1]]
                                     (any order, duplicates allowed) */
    int64_t excl_nnz;
    const uint8_t *candidates;    /* NULL (all columns) or [n_items]: nonzero = may be selected */
    int n_threads;                /* OpenMP threads (>= 1; ignored by a serial build) */
    const fastmf_interrupt *interrupt; /* NULL or the caller's interrupt flag (common.h), read
                                     before each row (dense kernel) or chunk of rows (factors kernel):
                                     once raised, the remaining rows are skipped (their outputs are
                                     unspecified) and the call returns FASTMF_ERR_INTERRUPTED */
} fastmf_topk_spec;

/* Top-n of each row of scores[n_rows * n_items] (row r = scores[r * n_items ...]).
 * users[r] may be -1 (no excluded list for that row); otherwise 0 <= users[r] < n_users.
 * Writes out_idx[n_rows * n] and out_score[n_rows * n] (the selected scores, same type as scores).
 * Returns FASTMF_OK, FASTMF_ERR_INDEX (BAD_USER / BAD_INDPTR / BAD_EXCL; nothing computed),
 * FASTMF_ERR_VALUE (BAD_NAN: the outputs of that row are unspecified; BAD_SPEC), FASTMF_ERR_NOMEM,
 * FASTMF_ERR_INTERRUPTED (spec->interrupt raised). */
fastmf_status fastmf_topk_rows_f32(const fastmf_topk_spec *spec, const float *scores,
                                   int64_t *out_idx, float *out_score, fastmf_topk_error *err);
fastmf_status fastmf_topk_rows_f64(const fastmf_topk_spec *spec, const double *scores,
                                   int64_t *out_idx, double *out_score, fastmf_topk_error *err);

/* Top-n of s[r, i] = ((double)(U[u] . V[i]) + user_offset[u]) + item_bias[i], u = users[r] (or r),
 * the dot product summed in the factors' type in the order j = 0, 1, ..., k-1 (no FMA contraction),
 * a term left out when its array is NULL. U has n_users rows of k values with row stride ld_U >= k,
 * V has n_items rows with row stride ld_V >= k; 0 <= users[r] < n_users. Scores are selected and
 * returned in double. Same status codes as fastmf_topk_rows_*. */
fastmf_status fastmf_topk_factors_f32(const fastmf_topk_spec *spec, const float *U, int64_t ld_U,
                                      const float *V, int64_t ld_V, int64_t k,
                                      const double *item_bias, const double *user_offset,
                                      int64_t *out_idx, double *out_score, fastmf_topk_error *err);
fastmf_status fastmf_topk_factors_f64(const fastmf_topk_spec *spec, const double *U, int64_t ld_U,
                                      const double *V, int64_t ld_V, int64_t k,
                                      const double *item_bias, const double *user_offset,
                                      int64_t *out_idx, double *out_score, fastmf_topk_error *err);

/* The scores fastmf_topk_factors_* select from, written densely: out[r * n_items + i] = s[r, i]
 * (double, same formula and bits) for every output row r and item i. The exclusion CSR and the
 * candidates of the spec are ignored (n is unused); users as there. out has n_rows * n_items
 * values. Returns FASTMF_OK, FASTMF_ERR_INDEX (BAD_USER), FASTMF_ERR_VALUE (BAD_SPEC),
 * FASTMF_ERR_NOMEM or FASTMF_ERR_INTERRUPTED. A NaN is written like any other score. */
fastmf_status fastmf_score_factors_f32(const fastmf_topk_spec *spec, const float *U, int64_t ld_U,
                                       const float *V, int64_t ld_V, int64_t k,
                                       const double *item_bias, const double *user_offset,
                                       double *out, fastmf_topk_error *err);
fastmf_status fastmf_score_factors_f64(const fastmf_topk_spec *spec, const double *U, int64_t ld_U,
                                       const double *V, int64_t ld_V, int64_t k,
                                       const double *item_bias, const double *user_offset,
                                       double *out, fastmf_topk_error *err);

#endif
