/* Dense linear algebra of the row solvers, in double: dot products and axpys with a fixed
 * summation order, the symmetric matrix-vector product, an in-place Cholesky factorisation and
 * solve, and ONE conjugate-gradient routine (used by explicit and implicit ALS alike, each with its
 * own matrix-vector product).
 *
 * Everything here is static inline (forced): the callers are row solvers compiled once per
 * instruction set (FASTMF_CLONES), and these loops must be compiled into each clone (with its
 * vector width and FMA contraction) -- an out-of-line copy would be the baseline version, slower
 * and with other rounding. Results depend only on the inputs and the instruction set, never on
 * threads. No allocation: the caller owns every buffer. No globals, no printing.
 */
#ifndef FASTMF_LINALG_H
#define FASTMF_LINALG_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "common.h"

/* n rounded up to a multiple of 8 (the vector blocks of the loops below) */
static inline int64_t fastmf_round8(int64_t n) { return (n + 7) & ~(int64_t)7; }

/* Dot products keep FASTMF_DOT_LANES independent partial sums (two 8-wide vectors: two FMA chains) and
 * add them as a fixed tree: vectorised without reassociation flags, and much shorter than the
 * sequential lane sum a `#pragma omp simd reduction` gets without -ffast-math. */
#define FASTMF_DOT_LANES 16

static FASTMF_INLINE double fastmf_lane_sum16(const double *restrict acc)
{
    double t[8];
    int l;
    for (l = 0; l < 8; ++l) t[l] = acc[l] + acc[l + 8];
    for (l = 0; l < 4; ++l) t[l] += t[l + 4];
    return (t[0] + t[2]) + (t[1] + t[3]);
}

/* FASTMF_DOT(NAME, T): double NAME(const T *a, const double *b, n) = sum_i (double)a[i] b[i] in that
 * fixed order (T = double here; als.c also makes the float-times-double dot products) */
#define FASTMF_DOT(NAME, T)                                                                        \
    static FASTMF_INLINE double NAME(const T *restrict a, const double *restrict b, int64_t n)     \
    {                                                                                              \
        double acc[FASTMF_DOT_LANES] = {0.0};                                                      \
        double s = 0.0;                                                                            \
        int64_t i = 0;                                                                             \
        int l;                                                                                     \
        for (; i + FASTMF_DOT_LANES <= n; i += FASTMF_DOT_LANES) {                                 \
            _Pragma("omp simd")                                                                    \
            for (l = 0; l < FASTMF_DOT_LANES; ++l) acc[l] += (double)a[i + l] * b[i + l];          \
        }                                                                                          \
        for (; i < n; ++i) s += (double)a[i] * b[i];                                               \
        return fastmf_lane_sum16(acc) + s;                                                         \
    }
FASTMF_DOT(fastmf_dot_d, double)

/* y += a x */
static FASTMF_INLINE void fastmf_axpy_d(double a, const double *restrict x, double *restrict y, int64_t n)
{
    int64_t i;
#pragma omp simd
    for (i = 0; i < n; ++i) y[i] += a * x[i];
}

/* out = G v for a full symmetric k x k G (row-major): out = sum_j v_j G[j, :] (rows = columns) */
static FASTMF_INLINE void fastmf_symv_full(const double *restrict G, int64_t k, const double *restrict v,
                                 double *restrict out)
{
    int64_t j;
    memset(out, 0, (size_t)k * sizeof(double));
    for (j = 0; j < k; ++j) fastmf_axpy_d(v[j], G + j * k, out, k);
}

/* ---------------------------------------------------------------- Gram tiles (als.c, als_side.c) */
/* G[i][j] += sum_e A[e][i] B[e][j] on every TR x TC tile (rows i..i+TR-1, columns j..j+TC-1) of
 * the kp x kp matrix that meets the upper triangle; A and B are ne x kp row-major (kp a multiple of
 * TR and TC), G has row stride ldg >= kp. The TR x TC accumulators of a tile stay in registers while
 * the ne rows stream by: per row, TC/8 8-wide loads of B, TR broadcasts of A and TR * TC / 8
 * independent 8-wide multiply-adds. 8 x 8 suits AVX-512 (8 zmm accumulators: enough independent
 * chains to hide the FMA latency; 4 x 8 was twice slower there, 8 x 16 no faster), 4 x 8 suits
 * AVX2 / SSE2 (8 ymm / 16 xmm accumulators, no spills).
 * Every entry of G is its own chain over e in the same order, so the sums do not depend on the tile
 * shape. */
#define ALS_GRAM_TILES(NAME, TR, TC)                                                               \
    static FASTMF_INLINE void NAME(const double *restrict A, const double *restrict B, int64_t ne,    \
                                int64_t kp, double *restrict G, int64_t ldg)                       \
    {                                                                                              \
        int64_t i, j, e;                                                                           \
        int a, c;                                                                                  \
        for (i = 0; i < kp; i += TR) {                                                             \
            for (j = (i / TC) * TC; j < kp; j += TC) {                                             \
                double acc[TR][TC];                                                                \
                for (a = 0; a < TR; ++a)                                                           \
                    for (c = 0; c < TC; ++c) acc[a][c] = G[(i + a) * ldg + j + c];                 \
                for (e = 0; e < ne; ++e) {                                                         \
                    const double *restrict za = A + e * kp + i;                                    \
                    const double *restrict zb = B + e * kp + j;                                    \
                    for (a = 0; a < TR; ++a) {                                                     \
                        const double s = za[a];                                                    \
                        _Pragma("omp simd")                                                        \
                        for (c = 0; c < TC; ++c) acc[a][c] += s * zb[c];                           \
                    }                                                                              \
                }                                                                                  \
                for (a = 0; a < TR; ++a)                                                           \
                    for (c = 0; c < TC; ++c) G[(i + a) * ldg + j + c] = acc[a][c];                 \
            }                                                                                      \
        }                                                                                          \
    }
ALS_GRAM_TILES(gram_tiles_narrow, 4, 8)
ALS_GRAM_TILES(gram_tiles_wide, 8, 8)

/* 1 when the running CPU has AVX-512F (the row solvers then use 8 x 8 tiles) */
static inline int wide_tiles(void)
{
#if defined(FASTMF_HAVE_CLONES)
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

static FASTMF_INLINE void gram_tiles(const double *restrict A, const double *restrict B, int64_t ne,
                                  int64_t kp, double *restrict G, int64_t ldg, int wide)
{
    if (wide) gram_tiles_wide(A, B, ne, kp, G, ldg);
    else gram_tiles_narrow(A, B, ne, kp, G, ldg);
}

/* In-place Cholesky A = U^T U of the m x m symmetric matrix whose upper triangle is stored in A
 * (row stride ld >= fastmf_round8(m)); U overwrites it. diag0[m] receives the original diagonal. Returns -1,
 * or the first pivot index that is not finite or <= m * DBL_EPSILON * (its original diagonal entry),
 * or -2 when `interrupt` (may be NULL) is raised: it is read before every 64 columns, so a large
 * system (k in the thousands: O(k^3) per row) stops within a fraction of a second.
 * Right-looking, by panels of up to 8 rows: the panel's rows are finished (updated by the earlier
 * rows of the panel, pivoted, scaled), then the trailing triangle gets one rank-8 update - one load
 * and one store of each trailing entry per panel instead of per row. Every row operation runs over
 * whole 8-wide blocks, from the block holding the diagonal to fastmf_round8(m): the few entries left of the
 * diagonal (the lower triangle, never read for the result) and right of column m (padding) are
 * updated too, which removes every vector remainder. Entries of the upper triangle only ever depend
 * on entries of the upper triangle, so whatever the lower triangle and the padding hold (finite or
 * not) cannot change U. */
#define FASTMF_ROW_BLOCKS(from, body)                                                                 \
    for (l0 = (from) & ~(int64_t)7; l0 < mp; l0 += 8) {                                            \
        _Pragma("omp simd")                                                                        \
        for (c = 0; c < 8; ++c) { const int64_t l = l0 + c; body; }                                \
    }
static FASTMF_INLINE int64_t fastmf_cholesky_upper(double *restrict A, int64_t m, int64_t ld,
                                         double *restrict diag0, const fastmf_interrupt *interrupt)
{
    const double tol = (double)m * DBL_EPSILON;
    const int64_t mp = fastmf_round8(m);
    int64_t j0, j, p, i, l0;
    int c;
    for (j = 0; j < m; ++j) diag0[j] = A[j * ld + j];
    for (j0 = 0; j0 < m; j0 += 8) {
        const int64_t nb = m - j0 < 8 ? m - j0 : 8;
        if (j0 % 64 == 0 && fastmf_interrupted(interrupt)) return -2;   /* every 64 columns */
        for (j = j0; j < j0 + nb; ++j) {              /* finish the panel rows */
            double *restrict uj = A + j * ld;
            double d, inv;
            for (p = j0; p < j; ++p) {
                const double *restrict up = A + p * ld;
                const double u = up[j];
                FASTMF_ROW_BLOCKS(j, uj[l] -= u * up[l])
            }
            d = uj[j];
            if (!(d > tol * diag0[j]) || !isfinite(d)) return j;
            d = sqrt(d);
            inv = 1.0 / d;
            FASTMF_ROW_BLOCKS(j, uj[l] *= inv)
            uj[j] = d;
        }
        if (nb == 8) {                                /* rank-8 update of the trailing triangle */
            const double *restrict u = A + j0 * ld;   /* panel row t is u + t * ld */
            for (i = j0 + 8; i < m; ++i) {
                double *restrict ai = A + i * ld;
                double a[8];
                int t;
                for (t = 0; t < 8; ++t) a[t] = u[t * ld + i];
                FASTMF_ROW_BLOCKS(i, ai[l] -= ((a[0] * u[l] + a[1] * u[ld + l])
                                            + (a[2] * u[2 * ld + l] + a[3] * u[3 * ld + l]))
                                           + ((a[4] * u[4 * ld + l] + a[5] * u[5 * ld + l])
                                              + (a[6] * u[6 * ld + l] + a[7] * u[7 * ld + l])))
            }
        }
    }
    return -1;
}
#undef FASTMF_ROW_BLOCKS

/* Solve U^T U x = b in place (b -> x) with the factor from cholesky_upper. */
static FASTMF_INLINE void fastmf_cholesky_solve_upper(const double *restrict U, int64_t m, int64_t ld,
                                            double *restrict b)
{
    int64_t i;
    for (i = 0; i < m; ++i) {                    /* U^T y = b: column-oriented forward pass */
        const double *restrict ui = U + i * ld;
        const double yi = b[i] / ui[i];
        b[i] = yi;
        fastmf_axpy_d(-yi, ui + i + 1, b + i + 1, m - i - 1);
    }
    for (i = m - 1; i >= 0; --i) {               /* U x = y: row-oriented back substitution */
        const double *restrict ui = U + i * ld;
        b[i] = (b[i] - fastmf_dot_d(ui + i + 1, b + i + 1, m - i - 1)) / ui[i];
    }
}

/* out = A v: the matrix-vector product of a CG system, given by its caller (op: its data) */
typedef void (*fastmf_matvec)(const void *op, const double *restrict v, double *restrict out);

/* Conjugate gradient on the m x m symmetric positive-definite system A x = b, warm-started: x holds
 * the start and res = b - A x on entry (the caller forms it, often more cheaply than b itself).
 * Runs `steps` iterations, stopping early when the residual is exactly 0:
 *     p = r;  repeat: a = (r.r) / (p.A p);  x += a p;  r -= a A p;  p = r + (r_new.r_new / r.r) p.
 * dir and Ap are m-vectors of scratch. Returns 0, or -1 when p.A p is <= 0 or not finite (A is not
 * positive definite). With a constant `apply` the compiler turns the indirect call into a direct,
 * inlined one (this routine is inlined into every caller). */
static FASTMF_INLINE int fastmf_cg(int64_t m, int steps, fastmf_matvec apply, const void *op,
                                   double *restrict x, double *restrict res, double *restrict dir,
                                   double *restrict Ap)
{
    double rs;
    int64_t f;
    int it;
    memcpy(dir, res, (size_t)m * sizeof(double));
    rs = fastmf_dot_d(res, res, m);
    for (it = 0; it < steps && rs > 0.0; ++it) {
        double pap, a, rs_new, beta;
        apply(op, dir, Ap);
        pap = fastmf_dot_d(dir, Ap, m);
        if (!(pap > 0.0) || !isfinite(pap)) return -1;
        a = rs / pap;
        fastmf_axpy_d(a, dir, x, m);
        fastmf_axpy_d(-a, Ap, res, m);
        rs_new = fastmf_dot_d(res, res, m);
        beta = rs_new / rs;
        for (f = 0; f < m; ++f) dir[f] = res[f] + beta * dir[f];
        rs = rs_new;
    }
    return 0;
}

#endif
