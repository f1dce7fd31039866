/* iALS++: block coordinate (subspace) steps for implicit-feedback ALS (Rendle, Krichene, Zhang &
 * Koren 2021, "iALS++: Speeding up Matrix Factorization with Subspace Optimization"; NumPy twin
 * fastmf.reference.ialspp_half_sweep).
 *
 * Math. The objective of one row r of a half-sweep is that of als.c (Hu, Koren & Volinsky 2008):
 *     f(x) = x^T G x + sum_j [c_j (p_j - s_j)^2 - s_j^2] + lambda_r |x|^2,   s_j = x.y_j,
 * the sum over the row's stored entries j (confidence c_j, preference p_j = [d_j > 0]), G = Y^T Y
 * over ALL rows of the fixed side. Its gradient and Hessian restricted to a block B of coordinates:
 *     g_B = 2 (G_B: x + sum_j ((c_j - 1) s_j - c_j p_j) y_jB + lambda_r x_B),
 *     H_BB = 2 (G_BB + sum_j (c_j - 1) y_jB y_jB^T + lambda_r I).
 * f is quadratic, so one Newton step x_B -= H_BB^{-1} g_B is the exact minimiser over x_B with the
 * other coordinates fixed: every step lowers f or keeps it (never raises it). One half-sweep makes
 * one pass over the blocks [0, b), [b, 2b), ..., the last one k - b floor((k-1)/b) wide, starting
 * from the current factors[r]; the prediction cache s_j (computed once per row, O(n_r k)) is kept up
 * to date after each step (s_j += y_jB . delta_B). Per row: O(n_r k b) for the block Hessians,
 * O(k^2) for the G_B: x products, O(k b^2) for the b x b Cholesky factorisations - against
 * O(n_r k^2 + k^3) for the exact solve. With b >= k there is one block: the exact solve. Rows
 * without entries get x = 0 (the minimiser when lambda_r > 0), as in als.c.
 *
 * Arithmetic. The per-entry work runs in the factors' type REAL (float for float32, as the CG
 * solver of als.c and implicit's float32 solver do): the block Hessians sum_j (c_j - 1) y_jB y_jB^T
 * are accumulated over runs of at most IALSPP_SUB entries in REAL register tiles, then added into a
 * double matrix (the rounding of a float sum stays that of IALSPP_SUB terms however long the row),
 * and the products G_B: x (as sums of G's columns) and the start of the cache s_j = x.y_j are
 * computed in REAL (G and x rounded to REAL, fixed-order partial sums). The cache s_j, the gradient sums, G_BB, lambda,
 * the Cholesky factorisation and solve and x itself are double. For float64 factors everything is
 * double and the kernel matches the twin to rounding.
 *
 * Invariants. All arrays C-contiguous: indptr [n_rows + 1] int64 with 0 = indptr[0] <= ... <=
 * indptr[n_rows] = nnz (checked); indices [nnz] int32 in [0, n_fixed) and data [nnz] finite with a
 * finite confidence (checked as each row is read); fixed factors finite (scanned first) and every
 * start row finite (checked per row); gram k x k row-major, full, finite. factors must not overlap
 * the fixed side or gram.
 *
 * Ownership. Every array belongs to the caller; the sweep writes factors only, a row at a time and
 * only when its solve succeeded (a failing row keeps its start). Scratch - G in REAL, and per
 * thread the gathered blocks of the row's fixed rows, the cache and the weights, the b x b system
 * - is allocated here, per thread inside the parallel region, and freed on every path.
 *
 * Threads. Rows are independent given the fixed side: each thread solves whole rows (OpenMP dynamic
 * schedule) with its own scratch, so each row is computed by the same instructions whatever the
 * thread count and results are bit-identical for every n_threads. The lowest failing row is
 * reported (rows above a failed one are skipped), as in als.c. The interrupt flag is read before
 * every row and between the blocks of a long row.
 *
 * Memory traffic. A row of up to IALSPP_GATHER elements of gathered blocks (n_r x nb x bp) is
 * gathered once, block by block into contiguous panels; a longer row (a very popular item) takes
 * its panels in chunks of entries gathered again for each block (same results, slower).
 *
 * SIMD. Plain loops under `#pragma omp simd` that GCC/Clang vectorise at -O3 without -ffast-math;
 * the row solver is compiled for x86-64-v3/v4 and the baseline (FASTMF_CLONES) and picked at load
 * time: results are bit-identical per machine and thread count, not across machines.
 */
#ifndef FASTMF_IALSPP_TEMPLATE_PASS

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ialspp.h"
#include "als_rows.h"
#include "linalg.h"

#define IALSPP_ROWS_PER_TASK 8        /* rows per dynamic-schedule chunk */
#define IALSPP_SUB 128                /* entries per REAL partial sum of a block Hessian */
#define IALSPP_GATHER (1 << 21)       /* REALs of a thread's gathered panels (8 MiB for float) */
#define IALSPP_PREFETCH 4             /* fixed rows prefetched this many entries ahead */
#define IALSPP_MAX_BW 32              /* block columns per G-times-x pass (register-sized) */

typedef struct { void *raw; void *p; } ibuf;

/* n bytes aligned to 64 (n may be 0); NULL on failure */
static void *ibuf_alloc(ibuf *b, size_t n)
{
    b->raw = malloc((n > 0 ? n : 1) + 64);
    b->p = b->raw ? (void *)(((uintptr_t)b->raw + 63) & ~(uintptr_t)63) : NULL;
    return b->p;
}

static void ibuf_free(ibuf *b)
{
    free(b->raw);
    b->raw = NULL;
    b->p = NULL;
}

static fastmf_error ialspp_row_error(fastmf_status st, int which, int64_t pos)
{
    fastmf_error e;
    e.status = st; e.which = which; e.pos = pos;
    return e;
}

static int ialspp_params_ok(const fastmf_ials_params *p, int64_t block_size)
{
    return p != NULL && p->n_rows >= 0 && p->n_fixed >= 0 && p->n_factors >= 1 && p->nnz >= 0
           && block_size >= 1 && block_size <= FASTMF_IALSPP_MAX_BLOCK
           && (p->scaling == FASTMF_IALS_LINEAR || p->scaling == FASTMF_IALS_LOG)
           && isfinite(p->reg) && isfinite(p->alpha) && isfinite(p->reg_nu)
           && isfinite(p->reg_alpha0) && (p->scaling == FASTMF_IALS_LINEAR || p->eps > 0.0);
}

#define FASTMF_IALSPP_TEMPLATE_PASS
#define REAL float
#define SFX(name) name##_f32
#include "ialspp.c"
#undef REAL
#undef SFX
#define REAL double
#define SFX(name) name##_f64
#include "ialspp.c"
#undef REAL
#undef SFX
#undef FASTMF_IALSPP_TEMPLATE_PASS

#else /* FASTMF_IALSPP_TEMPLATE_PASS: compiled once per element type REAL */

/* sum_f (double)a[f] b[f] (fixed order, linalg.h) */
FASTMF_DOT(SFX(ipp_dot_rd), REAL)

/* sum_f a[f] b[f] in REAL: 128 bytes of partial sums (two AVX2 vectors), added as a fixed tree */
#define IALSPP_LANES ((int)(128 / sizeof(REAL)))
static FASTMF_INLINE double SFX(ipp_dot_rr)(const REAL *restrict a, const REAL *restrict b, int64_t n)
{
    REAL acc[128 / sizeof(REAL)];
    REAL t = 0;
    int64_t f = 0;
    int l, width;
    for (l = 0; l < IALSPP_LANES; ++l) acc[l] = 0;
    for (; f + IALSPP_LANES <= n; f += IALSPP_LANES) {
#pragma omp simd
        for (l = 0; l < IALSPP_LANES; ++l) acc[l] += a[f + l] * b[f + l];
    }
    for (; f < n; ++f) t += a[f] * b[f];
    for (width = IALSPP_LANES / 2; width >= 8; width /= 2) {     /* whole vectors */
#pragma omp simd
        for (l = 0; l < width; ++l) acc[l] += acc[l + width];
    }
    return (double)((((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))) + t);
}
#undef IALSPP_LANES

/* g[0..bw) = sum_f x[f] G[f][f0 .. f0 + bw) over f < k: the rows B of the symmetric G times x, as
 * a sum of its columns (no horizontal sums), in REAL with the f range cut in two interleaved halves
 * (twice the independent FMA chains), added at the end */
static FASTMF_INLINE void SFX(ipp_gemv_block)(const REAL *restrict G, int64_t k, int64_t f0, int64_t bw,
                                              const REAL *restrict x, double *restrict g)
{
    REAL a0[IALSPP_MAX_BW], a1[IALSPP_MAX_BW];
    int64_t f, c;
    for (c = 0; c < bw; ++c) { a0[c] = 0; a1[c] = 0; }
    for (f = 0; f + 1 < k; f += 2) {
        const REAL *restrict r0 = G + f * k + f0, *restrict r1 = r0 + k;
        const REAL x0 = x[f], x1 = x[f + 1];
#pragma omp simd
        for (c = 0; c < bw; ++c) { a0[c] += x0 * r0[c]; a1[c] += x1 * r1[c]; }
    }
    if (f < k) {
        const REAL *restrict r0 = G + f * k + f0;
        const REAL x0 = x[f];
#pragma omp simd
        for (c = 0; c < bw; ++c) a0[c] += x0 * r0[c];
    }
    for (c = 0; c < bw; ++c) g[c] = (double)(a0[c] + a1[c]);
}

/* rows of a Hessian tile: 8 x 8 float (8 ymm accumulators on AVX2) or 4 x 8 double */
#define IALSPP_TR ((int)(32 / sizeof(REAL)))

/* H[i][j] += sum_e WZ[e][i] Z[e][j] for the upper tiles (j >= i rounded down to 8) of the bw x bw
 * block, bw a multiple of 8, rows of Z / WZ bw apart; the tile sums run in REAL over the ne
 * entries and are added to the double H (row stride ldh) at the end */
static FASTMF_INLINE void SFX(ipp_tiles)(const REAL *restrict WZ, const REAL *restrict Z, int64_t ne,
                                         int64_t bw, double *restrict H, int64_t ldh)
{
    int64_t i, j, e;
    int a, c;
    for (i = 0; i < bw; i += IALSPP_TR) {
        for (j = (i / 8) * 8; j < bw; j += 8) {
            REAL acc[IALSPP_TR][8];
            for (a = 0; a < IALSPP_TR; ++a)
                for (c = 0; c < 8; ++c) acc[a][c] = 0;
            for (e = 0; e < ne; ++e) {
                const REAL *restrict wa = WZ + e * bw + i;
                const REAL *restrict zb = Z + e * bw + j;
                for (a = 0; a < IALSPP_TR; ++a) {
                    const REAL s = wa[a];
#pragma omp simd
                    for (c = 0; c < 8; ++c) acc[a][c] += s * zb[c];
                }
            }
            for (a = 0; a < IALSPP_TR; ++a)
                for (c = 0; c < 8; ++c) H[(i + a) * ldh + j + c] += (double)acc[a][c];
        }
    }
}

/* bring the row y[0..k) into the cache (a hint) */
static FASTMF_INLINE void SFX(ipp_prefetch)(const REAL *y, int64_t k)
{
    const char *c = (const char *)((uintptr_t)y & ~(uintptr_t)63), *end = (const char *)(y + k);
    for (; c < end; c += 64) FASTMF_PREFETCH(c);
}

/* P[e] = Y[idx[e]][f0 .. f0 + bl), zero-padded to bw, e < ne */
static FASTMF_INLINE void SFX(ipp_gather)(const REAL *restrict Y, int64_t k, const int32_t *restrict idx,
                                          int64_t ne, int64_t f0, int64_t bl, int64_t bw,
                                          REAL *restrict P)
{
    int64_t e, f;
    for (e = 0; e < ne; ++e) {
        const REAL *restrict y = Y + (int64_t)idx[e] * k + f0;
        REAL *restrict z = P + e * bw;
        if (e + IALSPP_PREFETCH < ne) SFX(ipp_prefetch)(Y + (int64_t)idx[e + IALSPP_PREFETCH] * k + f0, bl);
#pragma omp simd
        for (f = 0; f < bl; ++f) z[f] = y[f];
        for (f = bl; f < bw; ++f) z[f] = 0;
    }
}

typedef struct {
    const fastmf_ials_params *p;
    const int64_t *indptr;
    const int32_t *indices;
    const REAL *data, *Y;
    const double *G;     /* Y^T Y, k x k double */
    const REAL *GR;      /* G rounded to REAL (== G for double) */
    REAL *X;
    int64_t b, bp, nb;   /* block size, its padded width (multiple of 8), number of blocks */
    int64_t cap;         /* REALs of a thread's panel buffer */
} SFX(ipp_ctx);

typedef struct {
    ibuf zb, wb, vb, xb;
    REAL *Z;             /* panels: cap REALs */
    REAL *WZ;            /* IALSPP_SUB x bp: (c - 1) times a run of panel rows */
    double *x, *H, *g, *gs, *diag0;   /* kp, bp x bp, bp, bp, bp */
    REAL *xr;            /* x rounded to REAL (kp), for the products in REAL */
    double *s, *w, *q;   /* maxdeg each: cache s_j, c_j - 1, c_j p_j */
} SFX(ipp_ws);

static int SFX(ipp_ws_alloc)(SFX(ipp_ws) *ws, const SFX(ipp_ctx) *c, int64_t maxdeg)
{
    const int64_t k = c->p->n_factors, kp = fastmf_round8(k), bp = c->bp;
    const int64_t nv = kp + bp * bp + 3 * bp + 3 * maxdeg;
    memset(ws, 0, sizeof(*ws));
    ws->Z = (REAL *)ibuf_alloc(&ws->zb, (size_t)c->cap * sizeof(REAL));
    ws->WZ = (REAL *)ibuf_alloc(&ws->wb, (size_t)(IALSPP_SUB * bp) * sizeof(REAL));
    ws->x = (double *)ibuf_alloc(&ws->vb, (size_t)nv * sizeof(double));
    ws->xr = (REAL *)ibuf_alloc(&ws->xb, (size_t)kp * sizeof(REAL));
    if (!ws->Z || !ws->WZ || !ws->x || !ws->xr) return 0;
    ws->H = ws->x + kp;
    ws->g = ws->H + bp * bp;
    ws->gs = ws->g + bp;
    ws->diag0 = ws->gs + bp;
    ws->s = ws->diag0 + bp;
    ws->w = ws->s + maxdeg;
    ws->q = ws->w + maxdeg;
    return 1;
}

static void SFX(ipp_ws_free)(SFX(ipp_ws) *ws)
{
    ibuf_free(&ws->zb);
    ibuf_free(&ws->wb);
    ibuf_free(&ws->vb);
    ibuf_free(&ws->xb);
}

/* The panel of block pi (columns f0 .. f0 + bl) for the entries e0 .. e0 + ne of the row at lo:
 * a pointer into the row's gathered panels (whole: all n_r x nb x bp gathered up front), or the
 * panel gathered now into the buffer. */
static FASTMF_INLINE const REAL *SFX(ipp_panel)(const SFX(ipp_ctx) *c, SFX(ipp_ws) *ws, int whole,
                                                int64_t lo, int64_t n, int64_t pi, int64_t e0,
                                                int64_t ne, int64_t bw)
{
    const int64_t f0 = pi * c->b, bl = c->p->n_factors - f0 < c->b ? c->p->n_factors - f0 : c->b;
    if (whole) return ws->Z + pi * n * c->bp + e0 * bw;
    SFX(ipp_gather)(c->Y, c->p->n_factors, c->indices + lo + e0, ne, f0, bl, bw, ws->Z);
    return ws->Z;
}

FASTMF_CLONES
static fastmf_error SFX(ipp_row)(const SFX(ipp_ctx) *c, int64_t r, SFX(ipp_ws) *ws)
{
    const fastmf_ials_params *p = c->p;
    const int64_t lo = c->indptr[r], hi = c->indptr[r + 1], n = hi - lo, k = p->n_factors;
    const int64_t b = c->b, bp = c->bp;
    const int log_scaling = p->scaling == FASTMF_IALS_LOG;
    const int whole = n * c->nb * bp <= c->cap;
    const int64_t chunk = whole ? (n > 0 ? n : 1) : c->cap / bp;
    double *restrict x = ws->x, *restrict H = ws->H, *restrict g = ws->g, *restrict gs = ws->gs;
    double *restrict s = ws->s, *restrict w = ws->w, *restrict q = ws->q;
    double lam;
    int64_t j, e, e0, f, pi, n_pos = 0;

    if (n == 0) {
        for (f = 0; f < k; ++f) c->X[r * k + f] = 0;
        return ialspp_row_error(FASTMF_OK, -1, -1);
    }
    for (j = lo; j < hi; ++j) {
        const double d = (double)c->data[j];
        double conf;
        if ((uint64_t)(int64_t)c->indices[j] >= (uint64_t)p->n_fixed)
            return ialspp_row_error(FASTMF_ERR_INDEX, FASTMF_ALS_BAD_INDEX, j);
        conf = fastmf_ials_confidence(d, p->alpha, p->eps, log_scaling);
        if (!isfinite(d) || !isfinite(conf))
            return ialspp_row_error(FASTMF_ERR_VALUE, FASTMF_ALS_BAD_DATA, j);
        n_pos += d > 0.0;
        w[j - lo] = conf - 1.0;
        q[j - lo] = d > 0.0 ? conf : 0.0;
    }
    lam = fastmf_ials_lambda(p, n_pos, p->n_fixed);
    for (f = 0; f < k; ++f) {
        x[f] = (double)c->X[r * k + f];
        ws->xr[f] = c->X[r * k + f];
        if (!isfinite(x[f])) return ialspp_row_error(FASTMF_ERR_VALUE, FASTMF_ALS_BAD_START, r);
    }
    /* the cache s_j = x.y_j; with whole, the row's panels gathered in the same pass */
    for (e = 0; e < n; ++e) {
        const REAL *restrict y = c->Y + (int64_t)c->indices[lo + e] * k;
        if (e + IALSPP_PREFETCH < n) SFX(ipp_prefetch)(c->Y + (int64_t)c->indices[lo + e + IALSPP_PREFETCH] * k, k);
        s[e] = SFX(ipp_dot_rr)(y, ws->xr, k);
        if (whole)
            for (pi = 0; pi < c->nb; ++pi) {
                const int64_t f0 = pi * b, bl = k - f0 < b ? k - f0 : b, bw = fastmf_round8(bl);
                REAL *restrict z = ws->Z + pi * n * bp + e * bw;
                for (f = 0; f < bl; ++f) z[f] = y[f0 + f];
                for (f = bl; f < bw; ++f) z[f] = 0;
            }
    }

    for (pi = 0; pi < c->nb; ++pi) {
        const int64_t f0 = pi * b, bl = k - f0 < b ? k - f0 : b, bw = fastmf_round8(bl);
        if (pi > 0 && n > 4096 && fastmf_interrupted(p->interrupt))
            return ialspp_row_error(FASTMF_ERR_INTERRUPTED, -1, r);
        /* H = G_BB (+ the entries, + lambda below); g = G_B: x + lambda x_B (+ the entries) */
        memset(H, 0, (size_t)(bp * bp) * sizeof(double));
        for (f = 0; f < bl; ++f) memcpy(H + f * bp, c->G + (f0 + f) * k + f0, (size_t)bl * sizeof(double));
        for (f = 0; f < bl; f += IALSPP_MAX_BW)
            SFX(ipp_gemv_block)(c->GR, k, f0 + f, bl - f < IALSPP_MAX_BW ? bl - f : IALSPP_MAX_BW, ws->xr, g + f);
        for (f = 0; f < bl; ++f) g[f] += lam * x[f0 + f];
        memset(gs, 0, (size_t)bp * sizeof(double));
        for (e0 = 0; e0 < n; e0 += chunk) {
            const int64_t ne = n - e0 < chunk ? n - e0 : chunk;
            const REAL *restrict P = SFX(ipp_panel)(c, ws, whole, lo, n, pi, e0, ne, bw);
            int64_t u0;
            for (u0 = 0; u0 < ne; u0 += IALSPP_SUB) {
                const int64_t nu = ne - u0 < IALSPP_SUB ? ne - u0 : IALSPP_SUB;
                for (e = 0; e < nu; ++e) {
                    const REAL *restrict z = P + (u0 + e) * bw;
                    REAL *restrict wz = ws->WZ + e * bw;
                    const int64_t ej = e0 + u0 + e;
                    const REAL we = (REAL)w[ej];
                    const double t = w[ej] * s[ej] - q[ej];
#pragma omp simd
                    for (f = 0; f < bw; ++f) {
                        wz[f] = we * z[f];
                        gs[f] += t * (double)z[f];
                    }
                }
                SFX(ipp_tiles)(ws->WZ, P + u0 * bw, nu, bw, H, bp);
            }
        }
        for (f = 0; f < bl; ++f) {
            g[f] += gs[f];
            H[f * bp + f] += lam;
        }
        {
            const int64_t bad = fastmf_cholesky_upper(H, bl, bp, ws->diag0, NULL);
            if (bad >= 0) return ialspp_row_error(FASTMF_ERR_NOT_PD, FASTMF_ALS_BAD_SYSTEM, r);
        }
        fastmf_cholesky_solve_upper(H, bl, bp, g);      /* g = H_BB^{-1} g_B: the step is -g */
        for (f = 0; f < bl; ++f) {
            x[f0 + f] -= g[f];
            ws->xr[f0 + f] = (REAL)x[f0 + f];
        }
        for (f = bl; f < bw; ++f) g[f] = 0.0;
        if (pi + 1 == c->nb) break;
        for (e0 = 0; e0 < n; e0 += chunk) {            /* s_j += y_jB . delta_B */
            const int64_t ne = n - e0 < chunk ? n - e0 : chunk;
            const REAL *restrict P = SFX(ipp_panel)(c, ws, whole, lo, n, pi, e0, ne, bw);
            for (e = 0; e < ne; ++e) s[e0 + e] -= SFX(ipp_dot_rd)(P + e * bw, g, bw);
        }
    }
    for (f = 0; f < k; ++f)
        if (!isfinite(x[f])) return ialspp_row_error(FASTMF_ERR_DIVERGED, FASTMF_ALS_BAD_RESULT, r);
    for (f = 0; f < k; ++f) c->X[r * k + f] = (REAL)x[f];
    return ialspp_row_error(FASTMF_OK, -1, -1);
}

/* first row of the n x k matrix holding a non-finite value, or -1 */
static int64_t SFX(ipp_bad_row)(const REAL *X, int64_t n, int64_t k)
{
    int64_t i;
    for (i = 0; i < n * k; ++i)
        if (!isfinite((double)X[i])) return i / k;
    return -1;
}

fastmf_status SFX(fastmf_ialspp_half_sweep)(const fastmf_ials_params *p, int64_t block_size,
                                            const int64_t *indptr, const int32_t *indices,
                                            const REAL *data, const REAL *fixed_factors,
                                            const double *gram, REAL *factors, fastmf_error *err)
{
    SFX(ipp_ctx) c;
    sweep_error o;
    ibuf gown, grb;
    int64_t maxdeg = 0, bad = -1, k, i, need;
    int nt;

    fastmf_error_clear(err);
    if (!ialspp_params_ok(p, block_size) || indptr == NULL
        || (p->nnz > 0 && (indices == NULL || data == NULL))
        || (p->n_fixed > 0 && fixed_factors == NULL) || (p->n_rows > 0 && factors == NULL))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_BAD_ARGS);
    if (!check_indptr(indptr, p->n_rows, p->nnz, &maxdeg, &bad))
        return fastmf_fail(err, FASTMF_ERR_VALUE, bad, FASTMF_ALS_BAD_INDPTR);
    k = p->n_factors;
    if ((bad = SFX(ipp_bad_row)(fixed_factors, p->n_fixed, k)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, bad, FASTMF_ALS_BAD_FIXED);
    gown.raw = NULL;
    grb.raw = NULL;
    if (gram != NULL) {
        for (i = 0; i < k * k; ++i)
            if (!isfinite(gram[i])) return fastmf_fail(err, FASTMF_ERR_VALUE, i, FASTMF_ALS_BAD_GRAM);
    } else {
        double *G = (double *)ibuf_alloc(&gown, (size_t)(k * k) * sizeof(double));
        fastmf_status st;
        if (G == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
        st = SFX(fastmf_gram)(fixed_factors, p->n_fixed, k, p->n_threads, p->interrupt, G);
        if (st != FASTMF_OK) {
            ibuf_free(&gown);
            return fastmf_fail(err, st, -1, -1);
        }
        gram = G;
    }
    c.p = p; c.indptr = indptr; c.indices = indices; c.data = data; c.Y = fixed_factors;
    c.G = gram; c.X = factors;
    c.b = block_size < k ? block_size : k;
    c.bp = fastmf_round8(c.b);
    c.nb = (k + c.b - 1) / c.b;
    need = maxdeg * c.nb * c.bp;                   /* a whole longest row */
    c.cap = need < IALSPP_GATHER ? need : IALSPP_GATHER;
    if (c.cap < IALSPP_SUB * c.bp) c.cap = IALSPP_SUB * c.bp;
    if (sizeof(REAL) == sizeof(double)) {
        c.GR = (const REAL *)(const void *)gram;
    } else {
        REAL *GR = (REAL *)ibuf_alloc(&grb, (size_t)(k * k) * sizeof(REAL));
        if (GR == NULL) {
            ibuf_free(&gown);
            return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
        }
        for (i = 0; i < k * k; ++i) GR[i] = (REAL)gram[i];
        c.GR = GR;
    }
    o.row = p->n_rows; o.err = ialspp_row_error(FASTMF_OK, -1, -1); o.nomem = 0; o.interrupted = 0;
    nt = fastmf_clamp_threads(p->n_threads, (p->n_rows + IALSPP_ROWS_PER_TASK - 1) / IALSPP_ROWS_PER_TASK);

    (void)nt;   /* unused in a serial build */
    FASTMF_OMP(omp parallel num_threads(nt))
    {
        SFX(ipp_ws) ws;
        int64_t r;
        const int ok = SFX(ipp_ws_alloc)(&ws, &c, maxdeg);
        if (!ok) flag_nomem(&o);
        FASTMF_OMP(omp for schedule(dynamic, IALSPP_ROWS_PER_TASK))
        for (r = 0; r < p->n_rows; ++r) {
            fastmf_error e;
            if (!ok || skip_row(&o, r, p->interrupt)) continue;
            e = SFX(ipp_row)(&c, r, &ws);
            if (e.status == FASTMF_ERR_INTERRUPTED) {
                FASTMF_OMP(omp atomic write)
                o.interrupted = 1;
            } else if (e.status != FASTMF_OK) {
                record_error(&o, r, e);
            }
        }
        SFX(ipp_ws_free)(&ws);
    }
    ibuf_free(&gown);
    ibuf_free(&grb);
    return finish(&o, p->n_rows, err);
}

#undef IALSPP_TR
#endif /* FASTMF_IALSPP_TEMPLATE_PASS */
