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

#endif
