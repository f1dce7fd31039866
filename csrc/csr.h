/* Compressed sparse row (CSR) ordering of coordinate data by counting sort.
 *
 * Given nnz coordinates (rows[k], cols[k]), fastmf_csr_order computes
 *   indptr[0..n_rows]  (int64): row r owns positions indptr[r] .. indptr[r+1]-1, and
 *   order[0..nnz-1]    (int64): the coordinate stored at CSR position p is order[p],
 * so that indices = cols[order], data = values[order]. Within a row the entries are sorted by column
 * and, for equal columns, keep their input order (the sort is stable). NumPy equivalent:
 *   order = np.lexsort((np.arange(nnz), cols, rows)); indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))]
 * Cost: two counting-sort passes, O(nnz + n_rows + n_cols) time, nnz int64 scratch.
 *
 * Invariants: all arrays contiguous; indptr has n_rows + 1 slots, order has nnz slots. Indices are
 * checked: on a value outside [0, n_rows) or [0, n_cols) the function returns FASTMF_ERR_INDEX with
 * err->pos = the offending position and err->which = FASTMF_CSR_BAD_ROW or FASTMF_CSR_BAD_COL; no
 * output is valid then.
 * Single-threaded; reentrant (no shared state).
 */
#ifndef FASTMF_CSR_H
#define FASTMF_CSR_H

#include <stdint.h>
#include "common.h"

/* fastmf_error.which of fastmf_csr_order */
enum { FASTMF_CSR_BAD_ROW = 0, FASTMF_CSR_BAD_COL = 1 };

fastmf_status fastmf_csr_order(int64_t n_rows, int64_t n_cols, int64_t nnz,
                               const int32_t *rows, const int32_t *cols,
                               int64_t *indptr, int64_t *order,
                               fastmf_error *err);

/* How the coordinates are laid out, as found by fastmf_csr_plan */
enum {
    FASTMF_CSR_IN_ORDER = 0,  /* already in CSR order: indices = cols, data = values (no copy) */
    FASTMF_CSR_ONE_PASS = 1,  /* columns ascend within every row: one stable counting sort by row
                               * (fastmf_csr_scatter) gives the CSR, with no permutation array */
    FASTMF_CSR_SORT = 2       /* anything else: fastmf_csr_order */
};

/* indptr[0..n_rows] of the coordinates (validated as fastmf_csr_order does) and their layout *kind.
 * One pass over the data; n_rows int32 scratch. */
fastmf_status fastmf_csr_plan(int64_t n_rows, int64_t n_cols, int64_t nnz, const int32_t *rows,
                              const int32_t *cols, int64_t *indptr, int *kind, fastmf_error *err);

/* For kind FASTMF_CSR_ONE_PASS: indices[indptr[r]..] = the columns of row r (and data the values,
 * value_size 4 or 8 bytes each, or 0 for no values) in input order, by one stable counting sort:
 * indices = cols[order], data = values[order] for fastmf_csr_order's order, without it. n_rows
 * int64 scratch. Coordinates must be those fastmf_csr_plan validated. */
fastmf_status fastmf_csr_scatter(int64_t n_rows, int64_t nnz, const int32_t *rows, const int32_t *cols,
                                 const void *values, int value_size, const int64_t *indptr,
                                 int32_t *indices, void *data, fastmf_error *err);

/* The structure of the transpose of a CSR whose rows are sorted (any within-row order): t_indptr
 * [0..n_cols], t_indices[nnz] (rows ascending within each column). Columns are checked
 * (FASTMF_ERR_INDEX, which = FASTMF_CSR_BAD_COL). n_cols int64 scratch. */
fastmf_status fastmf_csr_transpose(int64_t n_rows, int64_t n_cols, const int64_t *indptr,
                                   const int32_t *indices, int64_t *t_indptr, int32_t *t_indices,
                                   fastmf_error *err);

#endif
