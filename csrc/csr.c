#include <stdlib.h>
#include <string.h>

#include "csr.h"

fastmf_status fastmf_csr_order(int64_t n_rows, int64_t n_cols, int64_t nnz,
                               const int32_t *rows, const int32_t *cols,
                               int64_t *indptr, int64_t *order,
                               fastmf_error *err)
{
    int64_t k, c;
    int64_t *colptr = NULL, *by_col = NULL;

    fastmf_error_clear(err);
    /* validate first: nothing is written to the outputs' meaningful slots on bad input */
    for (k = 0; k < nnz; ++k) {
        if (rows[k] < 0 || rows[k] >= n_rows) return fastmf_fail(err, FASTMF_ERR_INDEX, k, FASTMF_CSR_BAD_ROW);
        if (cols[k] < 0 || cols[k] >= n_cols) return fastmf_fail(err, FASTMF_ERR_INDEX, k, FASTMF_CSR_BAD_COL);
    }

    colptr = (int64_t *)calloc((size_t)n_cols + 1, sizeof(int64_t));
    by_col = (int64_t *)malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int64_t));
    if (colptr == NULL || by_col == NULL) {
        free(colptr);
        free(by_col);
        return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    }

    /* pass 1: stable counting sort of 0..nnz-1 by column  (by_col = argsort(cols, kind="stable")) */
    for (k = 0; k < nnz; ++k) colptr[cols[k] + 1]++;
    for (c = 0; c < n_cols; ++c) colptr[c + 1] += colptr[c];
    for (k = 0; k < nnz; ++k) by_col[colptr[cols[k]]++] = k;

    /* pass 2: stable counting sort of by_col by row, so rows are grouped and columns ascend within */
    memset(indptr, 0, ((size_t)n_rows + 1) * sizeof(int64_t));
    for (k = 0; k < nnz; ++k) indptr[rows[k] + 1]++;
    for (c = 0; c < n_rows; ++c) indptr[c + 1] += indptr[c];
    /* colptr is reused as the per-row write cursor; it needs n_rows slots */
    free(colptr);
    colptr = (int64_t *)malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof(int64_t));
    if (colptr == NULL) {
        free(by_col);
        return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    }
    memcpy(colptr, indptr, (size_t)n_rows * sizeof(int64_t));
    for (k = 0; k < nnz; ++k) {
        int64_t src = by_col[k];
        order[colptr[rows[src]]++] = src;
    }

    free(colptr);
    free(by_col);
    return FASTMF_OK;
}
