/* The per-row bookkeeping of the row-parallel ALS solvers (explicit ALS, iALS, Gibbs in als.c;
 * iALS++ in ialspp.c): the lowest failing row of a parallel sweep, skipping rows after it, and the
 * CSR row-pointer check; and the 64-byte aligned double scratch of als.c and als_side.c. One
 * definition for all of them. */
#ifndef FASTMF_ALS_ROWS_H
#define FASTMF_ALS_ROWS_H

#include <stdint.h>
#include <stdlib.h>

#include "common.h"

/* n doubles aligned to 64 bytes (n may be 0), the scratch of the row solvers: NULL on failure */
typedef struct { void *raw; double *d; } dbuf;

static inline double *dbuf_alloc(dbuf *b, int64_t n)
{
    b->raw = malloc((size_t)(n > 0 ? n : 1) * sizeof(double) + 64);
    b->d = b->raw ? (double *)(((uintptr_t)b->raw + 63) & ~(uintptr_t)63) : NULL;
    return b->d;
}

/* frees b (and may be called on a buffer whose allocation failed) */
static inline void dbuf_free(dbuf *b)
{
    free(b->raw);
    b->raw = NULL;
    b->d = NULL;
}

/* Shared outcome of a parallel sweep: the lowest failing row and its error (row = n_rows: none). */
typedef struct {
    int64_t row;
    fastmf_error err;
    int nomem;
    int interrupted;    /* the caller's interrupt flag was seen raised */
} sweep_error;

static inline void record_error(sweep_error *se, int64_t r, fastmf_error e)
{
    FASTMF_OMP(omp critical(fastmf_als_error))
    {
        if (r < se->row) {
            se->err = e;
            FASTMF_OMP(omp atomic write)
            se->row = r;
        }
    }
}

/* row r may be skipped: memory ran out somewhere, a lower row already failed, or the caller asked
 * to stop (the flag is read before every row: one load, nothing next to a row's solve; the rows
 * that do run are computed exactly as without a flag, so determinism is untouched) */
static inline int skip_row(sweep_error *se, int64_t r, const fastmf_interrupt *interrupt)
{
    int64_t lowest;
    int nomem;
    if (fastmf_interrupted(interrupt)) {
        FASTMF_OMP(omp atomic write)
        se->interrupted = 1;
        return 1;
    }
    FASTMF_OMP(omp atomic read)
    lowest = se->row;
    FASTMF_OMP(omp atomic read)
    nomem = se->nomem;
    return nomem || r > lowest;
}

static inline void flag_nomem(sweep_error *se)
{
    FASTMF_OMP(omp atomic write)
    se->nomem = 1;
}

static inline fastmf_status finish(const sweep_error *se, int64_t n_rows, fastmf_error *err)
{
    if (se->interrupted) return fastmf_fail(err, FASTMF_ERR_INTERRUPTED, -1, -1);
    if (se->nomem) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    if (se->row < n_rows) {
        *err = se->err;
        return se->err.status;
    }
    return FASTMF_OK;
}

/* 0 = indptr[0] <= ... <= indptr[n_rows] = nnz; *maxdeg = the largest row length. On failure
 * *bad_pos is the first offending position of indptr. */
static inline int check_indptr(const int64_t *indptr, int64_t n_rows, int64_t nnz, int64_t *maxdeg,
                        int64_t *bad_pos)
{
    int64_t r, m = 0;
    if (indptr[0] != 0) { *bad_pos = 0; return 0; }
    for (r = 0; r < n_rows; ++r) {
        const int64_t d = indptr[r + 1] - indptr[r];
        if (d < 0 || indptr[r + 1] > nnz) { *bad_pos = r + 1; return 0; }
        if (d > m) m = d;
    }
    if (indptr[n_rows] != nnz) { *bad_pos = n_rows; return 0; }
    *maxdeg = m;
    return 1;
}

#endif
