/* Row-wise sum of squared errors; see sse.h for the math, invariants and ownership. One body,
 * instantiated for float and double by the macro below (no hand-copied kernels). */
#include <stddef.h>

#include "sse.h"
#include "linalg.h"

#define FASTMF_ROW_SSE(SFX, REAL)                                                                  \
fastmf_status fastmf_row_sse_##SFX(int64_t n_rows, int64_t n_cols, const int64_t *indptr,          \
                                   const int32_t *indices, const REAL *data, const REAL *P,        \
                                   int64_t ldp, const REAL *Q, int64_t ldq, int64_t k,             \
                                   const REAL *bu, const REAL *bi, double mu, int n_threads,       \
                                   double *row_sse, fastmf_error *err)                             \
{                                                                                                  \
    int64_t u, p, first_bad = -1;                                                                  \
    (void)n_threads;                                                                               \
    for (p = 0; p < indptr[n_rows]; ++p)                                                           \
        if (indices[p] < 0 || indices[p] >= n_cols) { first_bad = p; break; }                      \
    fastmf_error_clear(err);                                                                       \
    if (first_bad >= 0) return fastmf_fail(err, FASTMF_ERR_INDEX, first_bad, -1);                  \
    _Pragma("omp parallel for schedule(dynamic, 64) num_threads(n_threads)")                       \
    for (u = 0; u < n_rows; ++u) {                                                                 \
        const REAL *pu = P + u * ldp;                                                              \
        const double base = mu + (bu != NULL ? (double)bu[u] : 0.0);                               \
        double acc = 0.0;                                                                          \
        int64_t q;                                                                                 \
        for (q = indptr[u]; q < indptr[u + 1]; ++q) {                                              \
            const int64_t j = indices[q];                                                          \
            const REAL *qj = Q + j * ldq;                                                          \
            double acc16[16] = {0.0}, dot = 0.0, e;                                                \
            int64_t f = 0;                                                                         \
            int l;                                                                                 \
            for (; f + 16 <= k; f += 16) {                                                         \
                _Pragma("omp simd")                                                                \
                for (l = 0; l < 16; ++l) acc16[l] += (double)pu[f + l] * (double)qj[f + l];        \
            }                                                                                      \
            for (; f < k; ++f) dot += (double)pu[f] * (double)qj[f];                               \
            dot = fastmf_lane_sum16(acc16) + dot;                                                  \
            e = (double)data[q] - (base + (bi != NULL ? (double)bi[j] : 0.0) + dot);               \
            acc += e * e;                                                                          \
        }                                                                                          \
        row_sse[u] = acc;                                                                          \
    }                                                                                              \
    return FASTMF_OK;                                                                              \
}

FASTMF_ROW_SSE(f32, float)
FASTMF_ROW_SSE(f64, double)
