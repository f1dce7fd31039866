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

fastmf_status fastmf_csr_plan(int64_t n_rows, int64_t n_cols, int64_t nnz, const int32_t *rows,
                              const int32_t *cols, int64_t *indptr, int *kind, fastmf_error *err)
{
    int64_t k, r;
    int32_t *last;
    int in_order = 1, one_pass = 1;

    fastmf_error_clear(err);
    *kind = FASTMF_CSR_SORT;
    for (k = 0; k < nnz; ++k) {
        if (rows[k] < 0 || rows[k] >= n_rows) return fastmf_fail(err, FASTMF_ERR_INDEX, k, FASTMF_CSR_BAD_ROW);
        if (cols[k] < 0 || cols[k] >= n_cols) return fastmf_fail(err, FASTMF_ERR_INDEX, k, FASTMF_CSR_BAD_COL);
    }
    last = (int32_t *)malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof(int32_t));
    if (last == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    for (r = 0; r < n_rows; ++r) last[r] = -1;
    memset(indptr, 0, ((size_t)n_rows + 1) * sizeof(int64_t));
    for (k = 0; k < nnz; ++k) {
        const int32_t row = rows[k];
        indptr[row + 1]++;
        if (cols[k] <= last[row]) one_pass = in_order = 0;  /* columns not ascending in the row */
        last[row] = cols[k];
        if (k > 0 && row < rows[k - 1]) in_order = 0;
    }
    free(last);
    for (r = 0; r < n_rows; ++r) indptr[r + 1] += indptr[r];
    *kind = in_order ? FASTMF_CSR_IN_ORDER : one_pass ? FASTMF_CSR_ONE_PASS : FASTMF_CSR_SORT;
    return FASTMF_OK;
}

fastmf_status fastmf_csr_scatter(int64_t n_rows, int64_t nnz, const int32_t *rows, const int32_t *cols,
                                 const void *values, int value_size, const int64_t *indptr,
                                 int32_t *indices, void *data, fastmf_error *err)
{
    int64_t k, *cursor;
    const char *v = (const char *)values;
    char *d = (char *)data;

    fastmf_error_clear(err);
    if (value_size != 0 && value_size != 4 && value_size != 8) return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    cursor = (int64_t *)malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof(int64_t));
    if (cursor == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    memcpy(cursor, indptr, (size_t)n_rows * sizeof(int64_t));
    for (k = 0; k < nnz; ++k) {
        const int64_t to = cursor[rows[k]]++;
        indices[to] = cols[k];
        if (value_size == 4) memcpy(d + 4 * to, v + 4 * k, 4);
        else if (value_size == 8) memcpy(d + 8 * to, v + 8 * k, 8);
    }
    free(cursor);
    return FASTMF_OK;
}

fastmf_status fastmf_csr_transpose(int64_t n_rows, int64_t n_cols, const int64_t *indptr,
                                   const int32_t *indices, int64_t *t_indptr, int32_t *t_indices,
                                   fastmf_error *err)
{
    int64_t r, c, k, *cursor;
    const int64_t nnz = indptr[n_rows];

    fastmf_error_clear(err);
    for (k = 0; k < nnz; ++k)
        if (indices[k] < 0 || indices[k] >= n_cols) return fastmf_fail(err, FASTMF_ERR_INDEX, k, FASTMF_CSR_BAD_COL);
    cursor = (int64_t *)malloc((size_t)(n_cols > 0 ? n_cols : 1) * sizeof(int64_t));
    if (cursor == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    memset(t_indptr, 0, ((size_t)n_cols + 1) * sizeof(int64_t));
    for (k = 0; k < nnz; ++k) t_indptr[indices[k] + 1]++;
    for (c = 0; c < n_cols; ++c) t_indptr[c + 1] += t_indptr[c];
    memcpy(cursor, t_indptr, (size_t)n_cols * sizeof(int64_t));
    for (r = 0; r < n_rows; ++r)
        for (k = indptr[r]; k < indptr[r + 1]; ++k) t_indices[cursor[indices[k]]++] = (int32_t)r;
    free(cursor);
    return FASTMF_OK;
}
