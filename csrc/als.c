/* Alternating least squares half-sweeps: explicit ALS with biases folded in, implicit-feedback ALS
 * (iALS), the Gram matrix Y^T Y and the iALS loss.
 *
 * Math, explicit ALS (Zhou et al. 2008; NumPy twin fastmf.reference.als_half_sweep). A half-sweep
 * updates one side: for every row r of a CSR (indptr, indices, data) whose rows are the side being
 * solved and whose indices j point into the fixed side (factor rows y_j, biases c_j), with the n_r
 * entries of row r, targets t_j = d_j - mu - c_j and z_j = [y_j, 1] (bias LAST here, k + 1 entries):
 *     (sum_j z_j z_j^T + diag(lambda_r, ..., lambda_r, lambda_b,r)) [x_r; b_r] = sum_j t_j z_j,
 * lambda_r = reg (times n_r when weighted), lambda_b,r = reg_bias (times n_r when weighted). Unbiased
 * (biased = 0): (sum_j y_j y_j^T + lambda_r I) x_r = sum_j d_j y_j (no mu, no biases). Rows without
 * entries get x_r = 0, b_r = 0.
 *
 * Math, implicit ALS (Hu, Koren & Volinsky 2008; twin fastmf.reference.ials_half_sweep). With
 * confidences c_j = 1 + alpha d_j (linear) or 1 + alpha log(1 + d_j / eps) (log) and preferences
 * p_j = [d_j > 0] on the stored entries (c = 1, p = 0 on every other column), G = Y^T Y over ALL rows
 * of the fixed side:
 *     (G + sum_j (c_j - 1) y_j y_j^T + lambda_r I) x_r = sum_j c_j p_j y_j,
 * which minimises sum_{all j} c_j (p_j - x_r.y_j)^2 + lambda_r |x_r|^2. lambda_r = reg, or with
 * frequency-scaled regularisation (Rendle, Krichene, Zhang & Koren 2022) lambda_r =
 * reg (n_r+ + alpha0 n_fixed)^nu, n_r+ = number of entries of row r with d_j > 0.
 * Loss (twin fastmf.reference.ials_objective), without materialising the n_users x n_items pairs:
 * split sum_{u,j} c_uj (p_uj - s_uj)^2, s_uj = x_u.y_j, into the c = 1, p = 0 value over all pairs
 * plus a correction on the stored pairs:
 *     L = sum_u x_u^T G x_u + sum_{(u,j) stored} [c_uj (p_uj - s_uj)^2 - s_uj^2]
 *         + sum_u lambda_u |x_u|^2 + sum_j lambda_j |y_j|^2,
 * O(nnz k + (n_users + n_items) k^2) instead of O(n_users n_items k).
 *
 * Solvers. Cholesky: the system is formed in double (the Gram part from gathered blocks of fixed
 * rows converted to double, in register tiles) and factorised in place as A = U^T U; a pivot that is
 * not finite or <= m DBL_EPSILON times its original diagonal entry means "not positive definite"
 * (FASTMF_ERR_NOT_PD with the row). Conjugate gradient: warm-started from the current row (factors[r],
 * bias[r]), cg_steps iterations, never forming A: explicit A v = sum_j z_j (z_j.v) + D v; implicit
 * A v = G v + sum_j (c_j - 1)(y_j.v) y_j + lambda_r v (as implicit's CPU solver does). CG stops early
 * when the residual is exactly 0; p.Ap <= 0 means not positive definite. The Cholesky factorisation
 * and solve and the one CG routine (fastmf_cg, given each system's A v as als_matvec / ials_matvec)
 * are in linalg.h.
 *
 * Invariants. All arrays are C-contiguous: indptr [n_rows + 1] int64 with 0 = indptr[0] <= ... <=
 * indptr[n_rows] = nnz (checked, O(n_rows)); indices [nnz] int32 in [0, n_fixed) and data [nnz]
 * finite (checked as each row is read: a bad entry fails its row and is never used to address
 * memory); factor matrices row-major n x k; fixed factors and biases finite (scanned before the
 * sweep); gram k x k row-major, full (both triangles). factors/bias must not overlap the fixed side
 * (rows being written are read by no other row). Arithmetic is double - float factors are converted
 * when read and rounded once when stored - except in the implicit CG solver, whose per-entry work
 * (y_j.v and the sum of (c_j - 1)(y_j.v) y_j, in each A v product) runs in the factors' type, as
 * implicit's float32 solver does: half the vector work for float32, and a CG of a few steps is far
 * from float32 round-off anyway. Its recurrences (x, r, p, G v, the step lengths) stay in double.
 *
 * Ownership. Every array belongs to the caller and is only borrowed during a call; the sweeps write
 * factors (and bias) only, row by row. Scratch (the gathered blocks, the system, the CG vectors, the
 * Gram partial sums, the per-row losses) is allocated by the kernels - per thread inside the
 * parallel region - and freed on every path, errors included. No globals, no printing.
 *
 * Threads. Rows are independent: each thread solves whole rows (OpenMP dynamic schedule) with its
 * own scratch, so there is no race and every row is computed by the same instructions whatever the
 * thread count: results are bit-identical for every n_threads. The Gram matrix is summed over fixed
 * row blocks (their number depends on n only) added in block order, and the loss sums per-row values
 * serially in row order, so both are deterministic too. Errors are reduced deterministically: a row
 * above the lowest failing row found so far is skipped, and the lowest failing row (and its first bad
 * entry) is reported - the same row whatever the schedule. On an error the rows solved so far keep
 * their new values and the failing row is unchanged.
 *
 * Interrupts. The sweeps and the loss read the caller's interrupt flag (p->interrupt, may be NULL)
 * before every row, the Gram before every gathered chunk of at most 256 rows: a raised flag makes
 * every thread skip its remaining rows and the call return FASTMF_ERR_INTERRUPTED within about one
 * row's work per thread. The check only decides whether a row starts; a row that runs is computed
 * as without a flag, so an uninterrupted call is bit-identical to one without a flag.
 *
 * SIMD. The inner loops are plain loops over contiguous data that GCC/Clang vectorise at -O3 without
 * -ffast-math: the Gram accumulation in register tiles (8 x 8 doubles when the CPU has AVX-512, else
 * 4 x 8, chosen at run time), axpys and the Cholesky rank-8 trailing updates under `#pragma omp
 * simd`, dot products with 16 independent partial sums added as a fixed tree (an `omp simd
 * reduction` would end in a 16-step sequential lane sum). With GCC >= 11 on x86-64 Linux the row
 * solvers, the Gram blocks and the loss rows are also compiled for x86-64-v3 (AVX2 + FMA) and
 * x86-64-v4 (AVX-512) and the version for the running CPU is picked at load time (no -march flag;
 * FASTMF_NO_CLONES turns this off): results are bit-identical across runs and thread counts on one
 * machine, not across machines (FMA contraction and vector widths differ).
 */
#ifndef FASTMF_ALS_TEMPLATE_PASS

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "linalg.h"
#include "rng.h"
#include "als_rows.h"

#define ALS_PREFETCH 4           /* fixed rows prefetched this many entries ahead */

#define ALS_ROWS_PER_TASK 8      /* rows per dynamic-schedule chunk */
#define ALS_GATHER_BYTES 32768   /* target size of a gathered block of fixed rows (fits L1) */
#define ALS_GRAM_ROWS 4096       /* rows per Gram partial sum ...                           */
#define ALS_GRAM_MAX_BLOCKS 32   /* ... and at most this many partial sums                  */
#define ALS_CG_GATHER (1 << 21)  /* doubles of a row's gathered fixed rows for explicit CG (16 MiB) */


/* rows of fixed factors gathered at a time for a padded width kp: ALS_GATHER_BYTES, in [16, 256] */
static int64_t gather_rows(int64_t kp)
{
    int64_t c = ALS_GATHER_BYTES / (int64_t)(sizeof(double) * (size_t)kp);
    return c < 16 ? 16 : (c > 256 ? 256 : c);
}

/* ------------------------------------------------------------------------------ scratch buffers */
typedef struct { void *raw; double *d; } dbuf;

/* n doubles aligned to 64 bytes (n may be 0); NULL on failure */
static double *dbuf_alloc(dbuf *b, int64_t n)
{
    b->raw = malloc((size_t)(n > 0 ? n : 1) * sizeof(double) + 64);
    b->d = b->raw ? (double *)(((uintptr_t)b->raw + 63) & ~(uintptr_t)63) : NULL;
    return b->d;
}

static void dbuf_free(dbuf *b)
{
    free(b->raw);
    b->raw = NULL;
    b->d = NULL;
}

/* Per-thread workspace of the row solvers. ld (system_stride) is the row stride of the system A.
 *   Z, WZ [chunk x kp]: gathered fixed rows (and, for iALS Cholesky, the rows scaled by c - 1);
 *   A     [ld x ld]   : the system, upper triangle used;
 *   v     [8 ld]      : vectors (right-hand side, CG x / r / p / Ap, sums, original diagonal);
 *   ent   [2 maxdeg]  : per-entry values of the current row (c - 1 and c p) for iALS CG;
 *   T     [chunk]     : the targets of a gathered block (explicit Cholesky). */
typedef struct {
    dbuf zb, wzb, ab, vb, eb, tb, gb;
    double *Z, *WZ, *A, *v, *ent, *T;
    double *G;       /* explicit CG: a row's fixed rows as doubles (g_rows x k) then its targets */
    int64_t g_rows;  /* rows G holds (0: none; longer rows take the ungathered path) */
} workspace;

static int ws_alloc(workspace *w, int64_t chunk, int64_t kp, int64_t ld, int64_t maxdeg,
                    int need_wz, int need_ent)
{
    memset(w, 0, sizeof(*w));
    w->Z = dbuf_alloc(&w->zb, chunk * kp);
    w->WZ = need_wz ? dbuf_alloc(&w->wzb, chunk * kp) : NULL;
    w->A = dbuf_alloc(&w->ab, ld * ld);
    w->v = dbuf_alloc(&w->vb, 8 * ld);
    w->ent = need_ent ? dbuf_alloc(&w->eb, 2 * maxdeg) : NULL;
    w->T = dbuf_alloc(&w->tb, chunk);
    return w->Z && (w->WZ || !need_wz) && w->A && w->v && (w->ent || !need_ent) && w->T;
}

/* the explicit CG's gather buffer for rows of up to min(maxdeg, ALS_CG_GATHER / k) entries; 0 when
 * it cannot be had (the solver then takes the ungathered path: same results, slower) */
static void ws_alloc_cg(workspace *w, int64_t k, int64_t maxdeg)
{
    int64_t rows = ALS_CG_GATHER / (k + 1);
    if (rows > maxdeg) rows = maxdeg;
    w->G = rows > 0 ? dbuf_alloc(&w->gb, rows * (k + 1)) : NULL;
    w->g_rows = w->G ? rows : 0;
}

static void ws_free(workspace *w)
{
    dbuf_free(&w->zb);
    dbuf_free(&w->wzb);
    dbuf_free(&w->ab);
    dbuf_free(&w->vb);
    dbuf_free(&w->eb);
    dbuf_free(&w->tb);
    dbuf_free(&w->gb);
}

/* --------------------------------------------------------------------------- error bookkeeping */
static const fastmf_error ROW_OK = {FASTMF_OK, -1, -1};

/* ------------------------------------------------------------------------ double-precision kernels */

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

/* padded width of the gathered rows: a multiple of the tile sizes */
static int64_t padded_width(int64_t k)
{
    return fastmf_round8(k);
}

/* row stride of the system matrix: room for the tiles (kp) and for k + 1 columns */
static int64_t system_stride(int64_t k, int64_t kp)
{
    const int64_t m = fastmf_round8(k + 1);
    return kp > m ? kp : m;
}

/* 1 when the running CPU has AVX-512F (the row solvers then use 8 x 8 tiles) */
static int wide_tiles(void)
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

/* wsum[j] += sum_e t[e] Z[e][j] and (sum != NULL) sum[j] += sum_e Z[e][j] for the ne x kp block Z
 * (kp a multiple of 8): the right-hand side Y_r^T t and the bias column Y_r^T 1 of a gathered block.
 * Column blocks of 32 keep their partial sums in registers (8 independent 8-wide chains) instead of
 * loading and storing them for every entry. */
#define ALS_COLSUMS(W)                                                                             \
    {                                                                                              \
        double at[W], a1[W];                                                                       \
        for (c = 0; c < W; ++c) { at[c] = wsum[j + c]; a1[c] = sum ? sum[j + c] : 0.0; }           \
        for (e = 0; e < ne; ++e) {                                                                 \
            const double *restrict z = Z + e * kp + j;                                             \
            const double te = t[e];                                                                \
            _Pragma("omp simd")                                                                    \
            for (c = 0; c < W; ++c) { at[c] += te * z[c]; a1[c] += z[c]; }                         \
        }                                                                                          \
        for (c = 0; c < W; ++c) wsum[j + c] = at[c];                                               \
        if (sum) for (c = 0; c < W; ++c) sum[j + c] = a1[c];                                       \
    }
static FASTMF_INLINE void column_sums(const double *restrict Z, const double *restrict t, int64_t ne,
                                   int64_t kp, double *restrict wsum, double *restrict sum)
{
    int64_t j = 0, e;
    int c;
    for (; j + 32 <= kp; j += 32) ALS_COLSUMS(32)
    for (; j < kp; j += 8) ALS_COLSUMS(8)
}
#undef ALS_COLSUMS


static int all_finite_d(const double *x, int64_t n)
{
    double acc = 0.0;
    int64_t i;
#pragma omp simd reduction(+:acc)
    for (i = 0; i < n; ++i) acc += x[i] * 0.0;   /* 0 for finite x, NaN for inf or NaN */
    return acc == 0.0;
}

static int64_t first_nonfinite_d(const double *x, int64_t n)
{
    int64_t i;
    if (all_finite_d(x, n)) return -1;
    for (i = 0; i < n; ++i)
        if (!isfinite(x[i])) return i;
    return -1;
}

/* confidence of a stored value (NaN / inf when undefined) */
static inline double confidence(double d, double alpha, double eps, int log_scaling)
{
    return fastmf_ials_confidence(d, alpha, eps, log_scaling);
}

/* lambda_r of implicit ALS for a row with n_pos positive entries */
static inline double ials_lambda(const fastmf_ials_params *p, int64_t n_pos, int64_t n_other)
{
    return fastmf_ials_lambda(p, n_pos, n_other);
}

static int als_params_ok(const fastmf_als_params *p)
{
    return p != NULL && p->n_rows >= 0 && p->n_fixed >= 0 && p->n_factors >= 1 && p->nnz >= 0
           && p->cg_steps >= 0 && (p->solver == FASTMF_ALS_CHOLESKY || p->solver == FASTMF_ALS_CG)
           && isfinite(p->mu) && isfinite(p->reg) && isfinite(p->reg_bias);
}

static int ials_params_ok(const fastmf_ials_params *p)
{
    return p != NULL && p->n_rows >= 0 && p->n_fixed >= 0 && p->n_factors >= 1 && p->nnz >= 0
           && p->cg_steps >= 0 && (p->solver == FASTMF_ALS_CHOLESKY || p->solver == FASTMF_ALS_CG)
           && (p->scaling == FASTMF_IALS_LINEAR || p->scaling == FASTMF_IALS_LOG)
           && isfinite(p->reg) && isfinite(p->alpha) && isfinite(p->reg_nu)
           && isfinite(p->reg_alpha0) && (p->scaling == FASTMF_IALS_LINEAR || p->eps > 0.0);
}

/* eps[0..m) = the first m standard normals of the stream (seed, stream, r + 1): the draws of row r
 * of a Gibbs half-sweep (twin: fastmf.reference.bayes.row_normals) */
static void gibbs_normals_row(double *eps, int64_t m, uint64_t seed, uint64_t stream, int64_t r)
{
    fastmf_rng g;
    int64_t i;
    fastmf_rng_seed(&g, seed, stream, (uint64_t)r + 1);
    for (i = 0; i < m; ++i) eps[i] = fastmf_rng_normal(&g);
}

/* x += U^{-1} eps for the Cholesky factor U (upper, row stride ld) of a precision P = U^T U and the
 * normals eps of row r's stream (overwritten): a draw from N(x, P^{-1}) when x is the mean */
static FASTMF_INLINE void gibbs_add_draw(const double *U, int64_t m, int64_t ld, uint64_t seed, uint64_t stream,
                                         int64_t r, double *eps, double *x)
{
    int64_t i;
    gibbs_normals_row(eps, m, seed, stream, r);
    for (i = m - 1; i >= 0; --i) {                                    /* U y = eps */
        const double *ui = U + i * ld;
        eps[i] = (eps[i] - fastmf_dot_d(ui + i + 1, eps + i + 1, m - i - 1)) / ui[i];
    }
    for (i = 0; i < m; ++i) x[i] += eps[i];
}

/* the first non-finite entry of a Gibbs prior (flat position in prior_prec, then m^2 + position in
 * prior_mean), or -1 */
static int64_t bad_prior(const double *prior_mean, const double *prior_prec, int64_t m)
{
    int64_t j;
    if ((j = first_nonfinite_d(prior_prec, m * m)) >= 0) return j;
    if ((j = first_nonfinite_d(prior_mean, m)) >= 0) return m * m + j;
    return -1;
}

void fastmf_gibbs_normals(double *out, int64_t n_rows, int64_t m, uint64_t seed, uint64_t stream)
{
    int64_t r;
    for (r = 0; r < n_rows; ++r) gibbs_normals_row(out + r * m, m, seed, stream, r);
}

/* ------------------------------------------------------------------ typed kernels (templated) */
#define FASTMF_ALS_TEMPLATE_PASS
#define REAL float
#define SFX(name) name##_f32
#include "als.c"
#undef REAL
#undef SFX
#define REAL double
#define SFX(name) name##_f64
#include "als.c"
#undef REAL
#undef SFX
#undef FASTMF_ALS_TEMPLATE_PASS

#else /* FASTMF_ALS_TEMPLATE_PASS: everything below is compiled once per element type REAL */

/* ------------------------------------------------------------------------------ element helpers */
/* sum_f (double)y[f] v[f] */
FASTMF_DOT(SFX(dot_rd), REAL)

/* out += a y */
static FASTMF_INLINE void SFX(axpy_rd)(double a, const REAL *restrict y, double *restrict out, int64_t k)
{
    int64_t f;
#pragma omp simd
    for (f = 0; f < k; ++f) out[f] += a * (double)y[f];
}

/* bring the k elements at y into the cache (a hint; no effect on results) */
static FASTMF_INLINE void SFX(prefetch_row)(const REAL *y, int64_t k)
{
    const char *c = (const char *)((uintptr_t)y & ~(uintptr_t)63), *end = (const char *)(y + k);
    for (; c < end; c += 64) FASTMF_PREFETCH(c);
}

/* dot product and axpy in the element type: 128 bytes of partial sums (two vectors), fixed tree */
#define ALS_RLANES ((int)(128 / sizeof(REAL)))
static FASTMF_INLINE REAL SFX(dot_rr)(const REAL *restrict a, const REAL *restrict b, int64_t k)
{
    REAL acc[128 / sizeof(REAL)];
    REAL s = 0;
    int64_t f = 0;
    int l, width;
    for (l = 0; l < ALS_RLANES; ++l) acc[l] = 0;
    for (; f + ALS_RLANES <= k; f += ALS_RLANES) {
#pragma omp simd
        for (l = 0; l < ALS_RLANES; ++l) acc[l] += a[f + l] * b[f + l];
    }
    for (; f < k; ++f) s += a[f] * b[f];
    for (width = ALS_RLANES / 2; width >= 1; width /= 2)
        for (l = 0; l < width; ++l) acc[l] += acc[l + width];
    return acc[0] + s;
}
#undef ALS_RLANES

/* out += a y */
static FASTMF_INLINE void SFX(axpy_rr)(REAL a, const REAL *restrict y, REAL *restrict out, int64_t k)
{
    int64_t f;
#pragma omp simd
    for (f = 0; f < k; ++f) out[f] += a * y[f];
}

/* Z[e] = (double) Y[idx[e]] (or Y[row0 + e] when idx is NULL), zero-padded to kp, e < ne */
static FASTMF_INLINE void SFX(gather)(const REAL *restrict Y, int64_t k, int64_t kp,
                                   const int32_t *restrict idx, int64_t row0, int64_t ne,
                                   double *restrict Z)
{
    int64_t e, f;
    for (e = 0; e < ne; ++e) {
        const REAL *restrict y = Y + (idx ? (int64_t)idx[e] : row0 + e) * k;
        double *restrict z = Z + e * kp;
        if (idx && e + ALS_PREFETCH < ne) SFX(prefetch_row)(Y + (int64_t)idx[e + ALS_PREFETCH] * k, k);
#pragma omp simd
        for (f = 0; f < k; ++f) z[f] = (double)y[f];
        for (f = k; f < kp; ++f) z[f] = 0.0;
    }
}

/* first row of the n x k matrix X holding a non-finite value, or -1 */
static int64_t SFX(first_bad_row)(const REAL *X, int64_t n, int64_t k)
{
    const int64_t block = 4096;
    int64_t lo, i;
    for (lo = 0; lo < n * k; lo += block) {
        const int64_t hi = n * k - lo < block ? n * k : lo + block;
        double acc = 0.0;
#pragma omp simd reduction(+:acc)
        for (i = lo; i < hi; ++i) acc += (double)X[i] * 0.0;
        if (acc != 0.0 || acc != acc)
            for (i = lo; i < hi; ++i)
                if (!isfinite((double)X[i])) return i / k;
    }
    return -1;
}

/* the row's entries lo..hi-1 index the fixed side and hold finite values; for iALS (conf = 1)
 * their confidences are finite too. *n_pos = number of values > 0. */
static fastmf_error SFX(check_entries)(const int32_t *indices, const REAL *data, int64_t lo, int64_t hi,
                                    int64_t n_fixed, const fastmf_ials_params *conf, int64_t *n_pos)
{
    fastmf_error e = ROW_OK;
    int64_t j, np = 0;
    for (j = lo; j < hi; ++j) {
        const double d = (double)data[j];
        if ((uint64_t)(int64_t)indices[j] >= (uint64_t)n_fixed) {
            e.status = FASTMF_ERR_INDEX; e.which = FASTMF_ALS_BAD_INDEX; e.pos = j;
            return e;
        }
        if (!isfinite(d) || (conf && !isfinite(confidence(d, conf->alpha, conf->eps,
                                                           conf->scaling == FASTMF_IALS_LOG)))) {
            e.status = FASTMF_ERR_VALUE; e.which = FASTMF_ALS_BAD_DATA; e.pos = j;
            return e;
        }
        np += d > 0.0;
    }
    *n_pos = np;
    return e;
}

/* x[0..m) finite, else DIVERGED for row r */
static fastmf_error SFX(check_solution)(const double *x, int64_t m, int64_t r)
{
    fastmf_error e = ROW_OK;
    if (!all_finite_d(x, m)) {
        e.status = FASTMF_ERR_DIVERGED; e.which = FASTMF_ALS_BAD_RESULT; e.pos = r;
    }
    return e;
}

/* row r stopped by the caller's interrupt flag (inside a long row solve, large k) */
static fastmf_error SFX(stopped)(int64_t r)
{
    fastmf_error e;
    e.status = FASTMF_ERR_INTERRUPTED; e.which = -1; e.pos = r;
    return e;
}

static fastmf_error SFX(not_pd)(int64_t r)
{
    fastmf_error e;
    e.status = FASTMF_ERR_NOT_PD; e.which = FASTMF_ALS_BAD_SYSTEM; e.pos = r;
    return e;
}

/* --------------------------------------------------------------------------------- explicit ALS */
typedef struct {
    const fastmf_als_params *p;
    const int64_t *indptr;
    const int32_t *indices;
    const REAL *data, *Y, *cb;   /* data, fixed factors, fixed biases */
    REAL *X, *b;                 /* factors, biases (written) */
    int64_t kp, ld, chunk;
    int wide;                    /* 8 x 8 Gram tiles */
    /* Gibbs half-sweeps only (NULL / unused for ALS): the prior precision (m x m, full), its
     * product with the prior mean, the noise precision and the random streams' keys */
    const double *prec0, *shift0;
    double alpha;
    int draw;
    uint64_t seed, stream;
    const double *offset;        /* Gibbs, optional: per-row prior mean offsets o_r (n_rows x m) */
    double *gram_out, *resid_out;  /* Gibbs, optional: G_r (n_rows x m x m) and h_r (n_rows x m) */
} SFX(als_ctx);

/* target of entry j: d_j - mu - c_idx (biased) or d_j */
static FASTMF_INLINE double SFX(als_target)(const SFX(als_ctx) *c, int64_t j)
{
    const double d = (double)c->data[j];
    return c->p->biased ? (d - c->p->mu) - (double)c->cb[c->indices[j]] : d;
}

static FASTMF_INLINE void SFX(als_store)(const SFX(als_ctx) *c, int64_t r, const double *x)
{
    const int64_t k = c->p->n_factors;
    REAL *xr = c->X + r * k;
    int64_t f;
    for (f = 0; f < k; ++f) xr[f] = (REAL)x[f];
    if (c->p->biased) c->b[r] = (REAL)x[k];
}

/* The data part of row r's normal equations (entries lo..hi-1, already checked), unregularised:
 * A (upper tiles, row stride ld) = sum_e z_e z_e^T and rhs = sum_e t_e z_e with z_e = [y_e, 1]
 * (the bias column and corner only when biased), m = k (+ 1) unknowns. Shared by the exact ALS
 * solve and the Gibbs draw. */
static FASTMF_INLINE void SFX(als_form)(const SFX(als_ctx) *c, int64_t lo, int64_t hi, workspace *w)
{
    const fastmf_als_params *p = c->p;
    const int64_t k = p->n_factors, kp = c->kp, ld = c->ld;
    double *restrict A = w->A, *restrict rhs = w->v, *restrict ysum = w->v + ld;
    double tsum = 0.0;
    int64_t e0, e, f;

    memset(A, 0, (size_t)(ld * ld) * sizeof(double));
    memset(rhs, 0, (size_t)ld * sizeof(double));
    memset(ysum, 0, (size_t)ld * sizeof(double));
    for (e0 = lo; e0 < hi; e0 += c->chunk) {
        const int64_t ne = hi - e0 < c->chunk ? hi - e0 : c->chunk;
        /* large k: rows are long; the caller's Cholesky then sees the flag at its first column */
        if (fastmf_interrupted(p->interrupt)) return;
        SFX(gather)(c->Y, k, kp, c->indices + e0, 0, ne, w->Z);
        for (e = 0; e < ne; ++e) {
            w->T[e] = SFX(als_target)(c, e0 + e);
            tsum += w->T[e];
        }
        column_sums(w->Z, w->T, ne, kp, rhs, p->biased ? ysum : NULL);   /* Y_r^T t, Y_r^T 1 */
        gram_tiles(w->Z, w->Z, ne, kp, A, ld, c->wide);                  /* Y_r^T Y_r */
    }
    if (p->biased) {
        for (f = 0; f < k; ++f) A[f * ld + k] = ysum[f];
        A[k * ld + k] = (double)(hi - lo);
        rhs[k] = tsum;
    }
}

/* exact solve of row r (entries lo..hi-1, already checked) */
static FASTMF_INLINE fastmf_error SFX(als_row_cholesky)(const SFX(als_ctx) *c, int64_t r, int64_t lo,
                                                  int64_t hi, workspace *w)
{
    const fastmf_als_params *p = c->p;
    const int64_t k = p->n_factors, ld = c->ld, m = k + (p->biased ? 1 : 0);
    const double scale = p->weighted ? (double)(hi - lo) : 1.0;
    double *restrict A = w->A, *restrict rhs = w->v, *restrict diag0 = w->v + 2 * ld;
    int64_t f;

    SFX(als_form)(c, lo, hi, w);
    for (f = 0; f < k; ++f) A[f * ld + f] += p->reg * scale;
    if (p->biased) A[k * ld + k] += p->reg_bias * scale;
    {
        const int64_t bad = fastmf_cholesky_upper(A, m, ld, diag0, p->interrupt);
        if (bad == -2) return SFX(stopped)(r);
        if (bad >= 0) return SFX(not_pd)(r);
    }
    fastmf_cholesky_solve_upper(A, m, ld, rhs);
    {
        fastmf_error err = SFX(check_solution)(rhs, m, r);
        if (err.status == FASTMF_OK) SFX(als_store)(c, r, rhs);
        return err;
    }
}

/* Gibbs draw of row r (entries lo..hi-1, already checked; none: a draw from the prior):
 * P = prec0 + alpha A, P m = shift0 + alpha rhs (shift0 = prec0 mu0), theta = m + U^{-1} eps with
 * P = U^T U and eps the row's normals (gibbs_normals). */
static FASTMF_INLINE fastmf_error SFX(gibbs_row_draw)(const SFX(als_ctx) *c, int64_t r, int64_t lo,
                                                     int64_t hi, workspace *w)
{
    const fastmf_als_params *p = c->p;
    const int64_t k = p->n_factors, ld = c->ld, m = k + (p->biased ? 1 : 0);
    const double alpha = c->alpha;
    double *restrict A = w->A, *restrict rhs = w->v, *restrict diag0 = w->v + 2 * ld;
    double *restrict eps = w->v + 3 * ld, *restrict data_rhs = w->v + 4 * ld;
    int64_t i, j;

    SFX(als_form)(c, lo, hi, w);
    if (c->gram_out != NULL) {                 /* G_r = sum_j z_j z_j^T (full) and sum_j t_j z_j */
        double *restrict G = c->gram_out + r * m * m;
        for (i = 0; i < m; ++i)
            for (j = i; j < m; ++j) G[i * m + j] = G[j * m + i] = A[i * ld + j];
        for (i = 0; i < m; ++i) data_rhs[i] = rhs[i];
    }
    for (i = 0; i < m; ++i) {
        double shift = c->shift0[i];
        if (c->offset != NULL) shift += fastmf_dot_d(c->prec0 + i * m, c->offset + r * m, m);
        for (j = i; j < m; ++j) A[i * ld + j] = c->prec0[i * m + j] + alpha * A[i * ld + j];
        rhs[i] = shift + alpha * rhs[i];
    }
    {
        const int64_t bad = fastmf_cholesky_upper(A, m, ld, diag0, p->interrupt);
        if (bad == -2) return SFX(stopped)(r);
        if (bad >= 0) return SFX(not_pd)(r);
    }
    fastmf_cholesky_solve_upper(A, m, ld, rhs);                      /* the conditional mean */
    if (c->draw) gibbs_add_draw(A, m, ld, c->seed, c->stream, r, eps, rhs);
    {
        fastmf_error err = SFX(check_solution)(rhs, m, r);
        if (err.status != FASTMF_OK) return err;
        SFX(als_store)(c, r, rhs);
        if (c->resid_out != NULL) {            /* h_r = sum_j t_j z_j - G_r theta_r (stored values) */
            const double *restrict G = c->gram_out + r * m * m;
            double *restrict h = c->resid_out + r * m;
            for (i = 0; i < m; ++i) eps[i] = (double)(REAL)rhs[i];
            for (i = 0; i < m; ++i) h[i] = data_rhs[i] - fastmf_dot_d(G + i * m, eps, m);
        }
        return err;
    }
}

/* out = sum_e z_e (z_e . v) + D v with z_e = [y_e, 1] (biased) */
static FASTMF_INLINE void SFX(als_apply)(const SFX(als_ctx) *c, int64_t lo, int64_t hi, double lam,
                                      double lamb, const double *restrict v, double *restrict out)
{
    const int64_t k = c->p->n_factors;
    const int biased = c->p->biased;
    int64_t j, f;
    for (f = 0; f < k; ++f) out[f] = lam * v[f];
    if (biased) out[k] = lamb * v[k];
    for (j = lo; j < hi; ++j) {
        const REAL *y = c->Y + (int64_t)c->indices[j] * k;
        const double zv = SFX(dot_rd)(y, v, k) + (biased ? v[k] : 0.0);
        if (j + ALS_PREFETCH < hi) SFX(prefetch_row)(c->Y + (int64_t)c->indices[j + ALS_PREFETCH] * k, k);
        SFX(axpy_rd)(zv, y, out, k);
        if (biased) out[k] += zv;
    }
}

/* the operator of a row's CG system: als_apply on entries lo..hi-1 with the row's lambdas */
typedef struct {
    const SFX(als_ctx) *c;
    int64_t lo, hi;
    double lam, lamb;
} SFX(als_op);

static FASTMF_INLINE void SFX(als_matvec)(const void *op, const double *restrict v,
                                          double *restrict out)
{
    const SFX(als_op) *o = (const SFX(als_op) *)op;
    SFX(als_apply)(o->c, o->lo, o->hi, o->lam, o->lamb, v, out);
}

/* The explicit CG on a gathered row: Z holds the row's ne fixed rows as doubles (stride k) and T
 * their targets. out += sum_e c_e z_e (and out[k] += sum_e c_e when biased) with s_e = z_e . v (+ v[k]
 * when biased) and c_e = T_e - s_e (residual, when T) or s_e (operator). Four entries at a time: four
 * independent dot products, then one pass over out that adds their terms in entry order -- the same
 * operations in the same order as als_apply's one entry at a time, so the same bits. */
static FASTMF_INLINE void SFX(cg_accumulate)(const double *restrict Z, int64_t k, int64_t ne, int biased,
                                             const double *restrict T, const double *restrict v,
                                             double *restrict out)
{
    int64_t e = 0, f;
    for (; e + 4 <= ne; e += 4) {
        const double *restrict z0 = Z + e * k, *restrict z1 = z0 + k, *restrict z2 = z1 + k,
                     *restrict z3 = z2 + k;
        double c0 = fastmf_dot_d(z0, v, k) + (biased ? v[k] : 0.0);
        double c1 = fastmf_dot_d(z1, v, k) + (biased ? v[k] : 0.0);
        double c2 = fastmf_dot_d(z2, v, k) + (biased ? v[k] : 0.0);
        double c3 = fastmf_dot_d(z3, v, k) + (biased ? v[k] : 0.0);
        if (T) {
            c0 = T[e] - c0; c1 = T[e + 1] - c1; c2 = T[e + 2] - c2; c3 = T[e + 3] - c3;
        }
#pragma omp simd
        for (f = 0; f < k; ++f) out[f] = (((out[f] + c0 * z0[f]) + c1 * z1[f]) + c2 * z2[f]) + c3 * z3[f];
        if (biased) out[k] = (((out[k] + c0) + c1) + c2) + c3;
    }
    for (; e < ne; ++e) {
        const double *restrict z = Z + e * k;
        double c0 = fastmf_dot_d(z, v, k) + (biased ? v[k] : 0.0);
        if (T) c0 = T[e] - c0;
        fastmf_axpy_d(c0, z, out, k);
        if (biased) out[k] += c0;
    }
}

/* the gathered operator: out = sum_e z_e (z_e . v) + D v */
typedef struct {
    const double *Z;
    int64_t k, ne;
    int biased;
    double lam, lamb;
} SFX(als_gop);

static FASTMF_INLINE void SFX(als_gmatvec)(const void *op, const double *restrict v, double *restrict out)
{
    const SFX(als_gop) *o = (const SFX(als_gop) *)op;
    int64_t f;
    for (f = 0; f < o->k; ++f) out[f] = o->lam * v[f];
    if (o->biased) out[o->k] = o->lamb * v[o->k];
    SFX(cg_accumulate)(o->Z, o->k, o->ne, o->biased, NULL, v, out);
}

/* warm-started conjugate gradient for row r (entries lo..hi-1, already checked) */
static FASTMF_INLINE fastmf_error SFX(als_row_cg)(const SFX(als_ctx) *c, int64_t r, int64_t lo, int64_t hi,
                                            workspace *w)
{
    const fastmf_als_params *p = c->p;
    const int64_t k = p->n_factors, ld = c->ld, m = k + (p->biased ? 1 : 0);
    const double scale = p->weighted ? (double)(hi - lo) : 1.0;
    const double lam = p->reg * scale, lamb = p->reg_bias * scale;
    double *restrict x = w->v, *restrict res = w->v + ld, *restrict dir = w->v + 2 * ld;
    double *restrict Ap = w->v + 3 * ld;
    SFX(als_op) op;
    int64_t f, j;
    fastmf_error err = ROW_OK;

    for (f = 0; f < k; ++f) x[f] = (double)c->X[r * k + f];
    if (p->biased) x[k] = (double)c->b[r];
    if (!all_finite_d(x, m)) {
        err.status = FASTMF_ERR_VALUE; err.which = FASTMF_ALS_BAD_START; err.pos = r;
        return err;
    }
    /* res = b - A x = sum_e (t_e - z_e.x) z_e - D x */
    for (f = 0; f < k; ++f) res[f] = -lam * x[f];
    if (p->biased) res[k] = -lamb * x[k];
    if (hi - lo <= w->g_rows) {  /* the row's fixed rows gathered once for all CG steps */
        SFX(als_gop) gop;
        double *restrict T = w->G + (hi - lo) * k;
        SFX(gather)(c->Y, k, k, c->indices + lo, 0, hi - lo, w->G);
        for (j = lo; j < hi; ++j) T[j - lo] = SFX(als_target)(c, j);
        SFX(cg_accumulate)(w->G, k, hi - lo, p->biased, T, x, res);
        gop.Z = w->G; gop.k = k; gop.ne = hi - lo; gop.biased = p->biased; gop.lam = lam; gop.lamb = lamb;
        if (fastmf_cg(m, p->cg_steps, SFX(als_gmatvec), &gop, x, res, dir, Ap) != 0) return SFX(not_pd)(r);
        err = SFX(check_solution)(x, m, r);
        if (err.status == FASTMF_OK) SFX(als_store)(c, r, x);
        return err;
    }
    for (j = lo; j < hi; ++j) {
        const REAL *y = c->Y + (int64_t)c->indices[j] * k;
        const double coef = SFX(als_target)(c, j) - (SFX(dot_rd)(y, x, k) + (p->biased ? x[k] : 0.0));
        SFX(axpy_rd)(coef, y, res, k);
        if (p->biased) res[k] += coef;
    }
    op.c = c; op.lo = lo; op.hi = hi; op.lam = lam; op.lamb = lamb;
    if (fastmf_cg(m, p->cg_steps, SFX(als_matvec), &op, x, res, dir, Ap) != 0) return SFX(not_pd)(r);
    err = SFX(check_solution)(x, m, r);
    if (err.status == FASTMF_OK) SFX(als_store)(c, r, x);
    return err;
}

/* one row of an explicit half-sweep, compiled once per instruction set */
FASTMF_CLONES
static fastmf_error SFX(als_row)(const SFX(als_ctx) *c, int64_t r, workspace *w)
{
    const int64_t lo = c->indptr[r], hi = c->indptr[r + 1];
    int64_t n_pos;
    fastmf_error err;
    if (c->prec0 != NULL) {                               /* Gibbs: every row is a draw */
        err = SFX(check_entries)(c->indices, c->data, lo, hi, c->p->n_fixed, NULL, &n_pos);
        if (err.status != FASTMF_OK) return err;
        return SFX(gibbs_row_draw)(c, r, lo, hi, w);
    }
    if (hi == lo) {
        int64_t f;
        for (f = 0; f < c->p->n_factors; ++f) c->X[r * c->p->n_factors + f] = 0;
        if (c->p->biased) c->b[r] = 0;
        return ROW_OK;
    }
    err = SFX(check_entries)(c->indices, c->data, lo, hi, c->p->n_fixed, NULL, &n_pos);
    if (err.status != FASTMF_OK) return err;
    if (c->p->solver == FASTMF_ALS_CG) return SFX(als_row_cg)(c, r, lo, hi, w);
    return SFX(als_row_cholesky)(c, r, lo, hi, w);
}

static fastmf_status SFX(als_run)(SFX(als_ctx) *cp, int64_t maxdeg, fastmf_error *err);

fastmf_status SFX(fastmf_als_half_sweep)(const fastmf_als_params *p, const int64_t *indptr,
                                         const int32_t *indices, const REAL *data,
                                         const REAL *fixed_factors, const REAL *fixed_bias,
                                         REAL *factors, REAL *bias, fastmf_error *err)
{
    SFX(als_ctx) c;
    int64_t maxdeg = 0, j, pos = -1;

    fastmf_error_clear(err);
    if (!als_params_ok(p) || indptr == NULL
        || (p->nnz > 0 && (indices == NULL || data == NULL))
        || (p->n_fixed > 0 && fixed_factors == NULL) || (p->n_rows > 0 && factors == NULL)
        || (p->biased && ((p->n_fixed > 0 && fixed_bias == NULL) || (p->n_rows > 0 && bias == NULL))))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_BAD_ARGS);
    if (!check_indptr(indptr, p->n_rows, p->nnz, &maxdeg, &pos))
        return fastmf_fail(err, FASTMF_ERR_VALUE, pos, FASTMF_ALS_BAD_INDPTR);
    if ((j = SFX(first_bad_row)(fixed_factors, p->n_fixed, p->n_factors)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_FIXED);
    if (p->biased && (j = SFX(first_bad_row)(fixed_bias, p->n_fixed, 1)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_FIXED_BIAS);

    c.p = p; c.indptr = indptr; c.indices = indices; c.data = data;
    c.Y = fixed_factors; c.cb = fixed_bias; c.X = factors; c.b = bias;
    c.prec0 = c.shift0 = NULL; c.alpha = 0.0; c.draw = 0; c.seed = c.stream = 0;
    c.offset = NULL; c.gram_out = c.resid_out = NULL;
    return SFX(als_run)(&c, maxdeg, err);
}

/* the parallel row loop of an explicit ALS or Gibbs half-sweep over the context c (its p, arrays and,
 * for Gibbs, prior set; the rest is filled in here) */
static fastmf_status SFX(als_run)(SFX(als_ctx) *cp, int64_t maxdeg, fastmf_error *err)
{
    SFX(als_ctx) c = *cp;
    const fastmf_als_params *p = c.p;
    sweep_error se;
    int nt;

    c.wide = wide_tiles();
    c.kp = padded_width(p->n_factors);
    c.ld = system_stride(p->n_factors, c.kp);
    c.chunk = gather_rows(c.kp);
    se.row = p->n_rows; se.err = ROW_OK; se.nomem = 0; se.interrupted = 0;
    nt = fastmf_clamp_threads(p->n_threads, (p->n_rows + ALS_ROWS_PER_TASK - 1) / ALS_ROWS_PER_TASK);

    (void)nt;   /* unused in a serial build */
    FASTMF_OMP(omp parallel num_threads(nt))
    {
        workspace w;
        int64_t r;
        const int ok = ws_alloc(&w, c.chunk, c.kp, c.ld, maxdeg, 0, 0);
        if (!ok) flag_nomem(&se);
        if (ok && c.prec0 == NULL && p->solver == FASTMF_ALS_CG) ws_alloc_cg(&w, p->n_factors, maxdeg);
        FASTMF_OMP(omp for schedule(dynamic, ALS_ROWS_PER_TASK))
        for (r = 0; r < p->n_rows; ++r) {
            fastmf_error e;
            if (!ok || skip_row(&se, r, p->interrupt)) continue;
            e = SFX(als_row)(&c, r, &w);
            if (e.status != FASTMF_OK) record_error(&se, r, e);
        }
        ws_free(&w);
    }
    return finish(&se, p->n_rows, err);
}

fastmf_status SFX(fastmf_gibbs_half_sweep)(const fastmf_gibbs_params *g, const int64_t *indptr,
                                           const int32_t *indices, const REAL *data,
                                           const REAL *fixed_factors, const REAL *fixed_bias,
                                           const double *prior_mean, const double *prior_prec,
                                           const double *prior_offset, REAL *factors, REAL *bias,
                                           double *gram_out, double *resid_out, fastmf_error *err)
{
    SFX(als_ctx) c;
    fastmf_als_params p;
    dbuf sb;
    double *shift;
    int64_t maxdeg = 0, j, pos = -1, m, i;
    fastmf_status st;

    fastmf_error_clear(err);
    if (g == NULL || g->n_rows < 0 || g->n_fixed < 0 || g->n_factors < 1 || g->nnz < 0
        || !isfinite(g->mu) || !(g->alpha > 0.0) || !isfinite(g->alpha) || indptr == NULL
        || prior_mean == NULL || prior_prec == NULL || (resid_out != NULL && gram_out == NULL)
        || (g->nnz > 0 && (indices == NULL || data == NULL))
        || (g->n_fixed > 0 && fixed_factors == NULL) || (g->n_rows > 0 && factors == NULL)
        || (g->biased && ((g->n_fixed > 0 && fixed_bias == NULL) || (g->n_rows > 0 && bias == NULL))))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_BAD_ARGS);
    m = g->n_factors + (g->biased ? 1 : 0);
    if ((j = bad_prior(prior_mean, prior_prec, m)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_PRIOR);
    if (prior_offset != NULL && (j = first_nonfinite_d(prior_offset, g->n_rows * m)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j / m, FASTMF_ALS_BAD_OFFSET);
    if (!check_indptr(indptr, g->n_rows, g->nnz, &maxdeg, &pos))
        return fastmf_fail(err, FASTMF_ERR_VALUE, pos, FASTMF_ALS_BAD_INDPTR);
    if ((j = SFX(first_bad_row)(fixed_factors, g->n_fixed, g->n_factors)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_FIXED);
    if (g->biased && (j = SFX(first_bad_row)(fixed_bias, g->n_fixed, 1)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_FIXED_BIAS);

    memset(&p, 0, sizeof(p));
    p.n_rows = g->n_rows; p.n_fixed = g->n_fixed; p.n_factors = g->n_factors; p.nnz = g->nnz;
    p.mu = g->mu; p.biased = g->biased ? 1 : 0; p.solver = FASTMF_ALS_CHOLESKY;
    p.n_threads = g->n_threads;
    p.interrupt = g->interrupt;
    shift = dbuf_alloc(&sb, m);
    if (shift == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    for (i = 0; i < m; ++i) shift[i] = fastmf_dot_d(prior_prec + i * m, prior_mean, m);

    c.p = &p; c.indptr = indptr; c.indices = indices; c.data = data;
    c.Y = fixed_factors; c.cb = fixed_bias; c.X = factors; c.b = bias;
    c.prec0 = prior_prec; c.shift0 = shift; c.alpha = g->alpha; c.draw = g->draw != 0;
    c.seed = g->seed; c.stream = g->stream;
    c.offset = prior_offset; c.gram_out = gram_out; c.resid_out = resid_out;
    st = SFX(als_run)(&c, maxdeg, err);
    dbuf_free(&sb);
    return st;
}

/* out[r] = weights[r] * sum_{e in row r} rows[indices[e]] (n_rows x m, double): the implicit offsets */
fastmf_status SFX(fastmf_bag_sums)(const int64_t *indptr, const int32_t *indices, int64_t n_rows,
                                   const REAL *rows, int64_t n_feat, int64_t m, const double *weights,
                                   int n_threads, double *out, fastmf_error *err)
{
    int64_t maxdeg = 0, pos = -1, r;
    int bad = 0, nt;
    fastmf_error_clear(err);
    if (indptr == NULL || out == NULL || weights == NULL || m < 1 || n_rows < 0 || n_feat < 0
        || (n_feat > 0 && rows == NULL))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_BAD_ARGS);
    if (!check_indptr(indptr, n_rows, indptr[n_rows], &maxdeg, &pos))
        return fastmf_fail(err, FASTMF_ERR_VALUE, pos, FASTMF_ALS_BAD_INDPTR);
    nt = fastmf_clamp_threads(n_threads, (n_rows + 1023) / 1024);
    (void)nt;
    FASTMF_OMP(omp parallel for num_threads(nt) schedule(static))
    for (r = 0; r < n_rows; ++r) {
        double *restrict o = out + r * m;
        int64_t e, a;
        for (a = 0; a < m; ++a) o[a] = 0.0;
        for (e = indptr[r]; e < indptr[r + 1]; ++e) {
            const int64_t j = indices[e];
            const REAL *restrict y = rows + j * m;
            if ((uint64_t)j >= (uint64_t)n_feat) {
                FASTMF_OMP(omp atomic write)
                bad = 1;
                break;
            }
            for (a = 0; a < m; ++a) o[a] += (double)y[a];
        }
        for (a = 0; a < m; ++a) o[a] *= weights[r];
    }
    if (bad) {
        for (r = 0; r < indptr[n_rows]; ++r)
            if ((uint64_t)(int64_t)indices[r] >= (uint64_t)n_feat) return fastmf_fail(err, FASTMF_ERR_INDEX, r, FASTMF_ALS_BAD_INDEX);
    }
    return FASTMF_OK;
}

/* ------------------------------------------------------------------ Gibbs: implicit-feature rows */
/* D += sum_e w_e^2 G_e (m x m, full) and s += sum_e w_e h_e over the rows holding one feature */
FASTMF_CLONES
static void SFX(bag_accumulate)(int64_t lo, int64_t hi, const int32_t *rows, const REAL *bag_w,
                                const double *gram, const double *resid, int64_t m, double *D, double *s)
{
    const int64_t mm = m * m;
    int64_t e, a;
    for (e = lo; e < hi; ++e) {
        const double w = (double)bag_w[e], w2 = w * w;
        const double *restrict G = gram + (int64_t)rows[e] * mm;
        const double *restrict h = resid + (int64_t)rows[e] * m;
        double *restrict Dr = D;
        double *restrict sr = s;
#pragma omp simd
        for (a = 0; a < mm; ++a) Dr[a] += w2 * G[a];
#pragma omp simd
        for (a = 0; a < m; ++a) sr[a] += w * h[a];
    }
}

/* h_e -= w_e G_e step for the rows holding one feature (G_e symmetric: G step = sum_b step_b G[b, :]) */
FASTMF_CLONES
static void SFX(bag_update)(int64_t lo, int64_t hi, const int32_t *rows, const REAL *bag_w,
                            const double *gram, double *resid, int64_t m, const double *step, double *tmp)
{
    int64_t e, a, b;
    for (e = lo; e < hi; ++e) {
        const double w = (double)bag_w[e];
        const double *restrict G = gram + (int64_t)rows[e] * m * m;
        double *restrict h = resid + (int64_t)rows[e] * m;
        double *restrict t = tmp;
        for (a = 0; a < m; ++a) t[a] = 0.0;
        for (b = 0; b < m; ++b) {
            const double sb = step[b];
            const double *restrict Gb = G + b * m;
#pragma omp simd
            for (a = 0; a < m; ++a) t[a] += sb * Gb[a];
        }
#pragma omp simd
        for (a = 0; a < m; ++a) h[a] -= w * t[a];
    }
}

fastmf_status SFX(fastmf_gibbs_bag_sweep)(const fastmf_gibbs_params *g, const int64_t *bag_indptr,
                                          const int32_t *bag_rows, const REAL *bag_w, const double *gram,
                                          double *resid, const double *prior_mean,
                                          const double *prior_prec, REAL *features, fastmf_error *err)
{
    const int64_t n_feat = g ? g->n_rows : 0, n_side = g ? g->n_fixed : 0;
    int64_t m, ld, maxdeg = 0, pos = -1, j, e, a, b;
    dbuf pb, vb;
    double *P, *D, *rhs, *shift, *old, *eps, *diag0, *step, *tmp;

    fastmf_error_clear(err);
    if (g == NULL || g->n_rows < 0 || g->n_fixed < 0 || g->n_factors < 1 || g->nnz < 0
        || !(g->alpha > 0.0) || !isfinite(g->alpha) || bag_indptr == NULL || prior_mean == NULL
        || prior_prec == NULL || (g->nnz > 0 && (bag_rows == NULL || bag_w == NULL))
        || (n_side > 0 && (gram == NULL || resid == NULL)) || (n_feat > 0 && features == NULL))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_BAD_ARGS);
    m = g->n_factors + (g->biased ? 1 : 0);
    if ((j = bad_prior(prior_mean, prior_prec, m)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_PRIOR);
    if (!check_indptr(bag_indptr, n_feat, g->nnz, &maxdeg, &pos))
        return fastmf_fail(err, FASTMF_ERR_VALUE, pos, FASTMF_ALS_BAD_INDPTR);
    for (e = 0; e < g->nnz; ++e) {
        if ((uint64_t)(int64_t)bag_rows[e] >= (uint64_t)n_side)
            return fastmf_fail(err, FASTMF_ERR_INDEX, e, FASTMF_ALS_BAD_INDEX);
        if (!isfinite((double)bag_w[e])) return fastmf_fail(err, FASTMF_ERR_VALUE, e, FASTMF_ALS_BAD_DATA);
    }
    if ((j = first_nonfinite_d(gram, n_side * m * m)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_GRAM);
    if ((j = first_nonfinite_d(resid, n_side * m)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j / m, FASTMF_ALS_BAD_FIXED);
    if ((j = SFX(first_bad_row)(features, n_feat, m)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_START);

    ld = fastmf_round8(m);
    P = dbuf_alloc(&pb, ld * ld + m * m);
    rhs = dbuf_alloc(&vb, 7 * ld);
    if (P == NULL || rhs == NULL) {
        dbuf_free(&pb);
        dbuf_free(&vb);
        return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    }
    D = P + ld * ld;
    shift = rhs + ld; old = rhs + 2 * ld; eps = rhs + 3 * ld; diag0 = rhs + 4 * ld; step = rhs + 5 * ld;
    tmp = rhs + 6 * ld;
    for (a = 0; a < m; ++a) shift[a] = fastmf_dot_d(prior_prec + a * m, prior_mean, m);
    for (j = 0; j < n_feat; ++j) {
        REAL *psi = features + j * m;
        const int64_t lo = bag_indptr[j], hi = bag_indptr[j + 1];
        if (fastmf_interrupted(g->interrupt)) {      /* between features: the draws so far stand */
            dbuf_free(&pb);
            dbuf_free(&vb);
            return fastmf_fail(err, FASTMF_ERR_INTERRUPTED, j, -1);
        }
        for (a = 0; a < m; ++a) old[a] = (double)psi[a];
        memset(D, 0, (size_t)(m * m) * sizeof(double));
        memset(rhs, 0, (size_t)ld * sizeof(double));
        /* data part: D = sum_e w_e^2 G_e, rhs = sum_e w_e h_e + D psi_old */
        SFX(bag_accumulate)(lo, hi, bag_rows, bag_w, gram, resid, m, D, rhs);
        for (a = 0; a < m; ++a) {
            rhs[a] = shift[a] + g->alpha * (rhs[a] + fastmf_dot_d(D + a * m, old, m));
            for (b = a; b < m; ++b) P[a * ld + b] = prior_prec[a * m + b] + g->alpha * D[a * m + b];
        }
        if (fastmf_cholesky_upper(P, m, ld, diag0, NULL) >= 0) {
            dbuf_free(&pb);
            dbuf_free(&vb);
            return fastmf_fail(err, FASTMF_ERR_NOT_PD, j, FASTMF_ALS_BAD_SYSTEM);
        }
        fastmf_cholesky_solve_upper(P, m, ld, rhs);
        if (g->draw) gibbs_add_draw(P, m, ld, g->seed, g->stream, j, eps, rhs);
        if (!all_finite_d(rhs, m)) {
            dbuf_free(&pb);
            dbuf_free(&vb);
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_ALS_BAD_RESULT);
        }
        for (a = 0; a < m; ++a) {
            psi[a] = (REAL)rhs[a];
            step[a] = (double)psi[a] - old[a];
        }
        /* the rows holding j moved by w_e step: their residual moments h_e -= w_e G_e step */
        SFX(bag_update)(lo, hi, bag_rows, bag_w, gram, resid, m, step, tmp);
    }
    dbuf_free(&pb);
    dbuf_free(&vb);
    return FASTMF_OK;
}

/* ------------------------------------------------------------------------------------- Gram */
/* add the Gram matrix of rows lo..hi-1 of Y to the upper tiles of G (kp x kp, stride kp) */
FASTMF_CLONES
static int SFX(gram_block)(const REAL *Y, int64_t lo, int64_t hi, int64_t k, int64_t kp,
                           int64_t chunk, int wide, const fastmf_interrupt *interrupt, double *Z,
                           double *G)
{
    int64_t e0;
    for (e0 = lo; e0 < hi; e0 += chunk) {
        const int64_t ne = hi - e0 < chunk ? hi - e0 : chunk;
        if (fastmf_interrupted(interrupt)) return 1;   /* between chunks of at most 256 rows */
        SFX(gather)(Y, k, kp, NULL, e0, ne, Z);
        gram_tiles(Z, Z, ne, kp, G, kp, wide);
    }
    return 0;
}

fastmf_status SFX(fastmf_gram)(const REAL *Y, int64_t n, int64_t k, int n_threads,
                               const fastmf_interrupt *interrupt, double *G)
{
    const int wide = wide_tiles();
    const int64_t kp = padded_width(k), chunk = gather_rows(kp);
    int64_t nb, b, i, j;
    dbuf pb;
    double *part;
    int nomem = 0, stopped = 0, nt;

    if (n < 0 || k < 1 || G == NULL || (n > 0 && Y == NULL)) return FASTMF_ERR_VALUE;
    nb = (n + ALS_GRAM_ROWS - 1) / ALS_GRAM_ROWS;
    if (nb > ALS_GRAM_MAX_BLOCKS) nb = ALS_GRAM_MAX_BLOCKS;
    if (nb < 1) nb = 1;
    part = dbuf_alloc(&pb, nb * kp * kp);
    if (part == NULL) return FASTMF_ERR_NOMEM;
    nt = fastmf_clamp_threads(n_threads, nb);

    (void)nt;   /* unused in a serial build */
    FASTMF_OMP(omp parallel num_threads(nt))
    {
        dbuf zb;
        double *Z = dbuf_alloc(&zb, chunk * kp);
        int64_t bb;
        if (Z == NULL) {
            FASTMF_OMP(omp atomic write)
            nomem = 1;
        }
        FASTMF_OMP(omp for schedule(dynamic, 1))
        for (bb = 0; bb < nb; ++bb) {
            /* block bb = rows [n bb / nb, n (bb + 1) / nb): fixed by n alone */
            const int64_t lo = n * bb / nb, hi = n * (bb + 1) / nb;
            double *Gb = part + bb * kp * kp;
            memset(Gb, 0, (size_t)(kp * kp) * sizeof(double));
            if (Z != NULL && SFX(gram_block)(Y, lo, hi, k, kp, chunk, wide, interrupt, Z, Gb)) {
                FASTMF_OMP(omp atomic write)
                stopped = 1;
            }
        }
        dbuf_free(&zb);
    }
    if (nomem || stopped) {
        dbuf_free(&pb);
        return stopped ? FASTMF_ERR_INTERRUPTED : FASTMF_ERR_NOMEM;
    }
    for (i = 0; i < k; ++i) {                    /* partial sums in block order, then mirrored */
        for (j = i; j < k; ++j) {
            double s = 0.0;
            for (b = 0; b < nb; ++b) s += part[b * kp * kp + i * kp + j];
            G[i * k + j] = s;
            G[j * k + i] = s;
        }
    }
    dbuf_free(&pb);
    return FASTMF_OK;
}

/* --------------------------------------------------------------------------------- implicit ALS */
typedef struct {
    const fastmf_ials_params *p;
    const int64_t *indptr;
    const int32_t *indices;
    const REAL *data, *Y;
    const double *G;             /* Y^T Y, k x k full */
    REAL *X;                     /* factors (written) */
    int64_t kp, ld, chunk;
    int wide;                    /* 8 x 8 Gram tiles */
} SFX(ials_ctx);

static FASTMF_INLINE fastmf_error SFX(ials_row_cholesky)(const SFX(ials_ctx) *c, int64_t r, int64_t lo,
                                                   int64_t hi, double lam, workspace *w)
{
    const fastmf_ials_params *p = c->p;
    const int64_t k = p->n_factors, kp = c->kp, ld = c->ld;
    const int log_scaling = p->scaling == FASTMF_IALS_LOG;
    double *restrict A = w->A, *restrict rhs = w->v, *restrict diag0 = w->v + ld;
    int64_t e0, e, f;

    memset(A, 0, (size_t)(ld * ld) * sizeof(double));
    for (f = 0; f < k; ++f) memcpy(A + f * ld, c->G + f * k, (size_t)k * sizeof(double));
    memset(rhs, 0, (size_t)ld * sizeof(double));
    for (e0 = lo; e0 < hi; e0 += c->chunk) {
        const int64_t ne = hi - e0 < c->chunk ? hi - e0 : c->chunk;
        if (fastmf_interrupted(p->interrupt)) return SFX(stopped)(r);   /* large k: rows are long */
        SFX(gather)(c->Y, k, kp, c->indices + e0, 0, ne, w->Z);
        for (e = 0; e < ne; ++e) {
            const double d = (double)c->data[e0 + e];
            const double conf = confidence(d, p->alpha, p->eps, log_scaling);
            const double *restrict z = w->Z + e * kp;
            double *restrict wz = w->WZ + e * kp;
#pragma omp simd
            for (f = 0; f < kp; ++f) wz[f] = (conf - 1.0) * z[f];
            if (d > 0.0) fastmf_axpy_d(conf, z, rhs, k);          /* Y_r^T C_r p_r */
        }
        gram_tiles(w->WZ, w->Z, ne, kp, A, ld, c->wide);             /* Y_r^T (C_r - I) Y_r */
    }
    for (f = 0; f < k; ++f) A[f * ld + f] += lam;
    {
        const int64_t bad = fastmf_cholesky_upper(A, k, ld, diag0, p->interrupt);
        if (bad == -2) return SFX(stopped)(r);
        if (bad >= 0) return SFX(not_pd)(r);
    }
    fastmf_cholesky_solve_upper(A, k, ld, rhs);
    {
        fastmf_error err = SFX(check_solution)(rhs, k, r);
        if (err.status == FASTMF_OK)
            for (f = 0; f < k; ++f) c->X[r * k + f] = (REAL)rhs[f];
        return err;
    }
}

/* er = sum_e (q_e - w_e (y_e . v)) y_e over the row's entries (q = NULL: q_e = 0), with v, er and
 * the products in the element type REAL (float for float32 factors, as implicit does): the part of
 * the CG work proportional to the row's entries. The CG recurrences and the G v products stay in
 * double. */
static FASTMF_INLINE void SFX(ials_entries)(const SFX(ials_ctx) *c, int64_t lo, int64_t hi,
                                         const double *restrict wgt, const double *restrict q,
                                         const REAL *restrict v, REAL *restrict er)
{
    const int64_t k = c->p->n_factors;
    int64_t j;
    memset(er, 0, (size_t)k * sizeof(REAL));
    /* four entries at a time: four independent dot products, then one pass over er adding their
     * terms in entry order (the same operations in the same order as one entry at a time, so the
     * same bits, with a quarter of the loads and stores of er) */
    for (j = lo; j + 4 <= hi; j += 4) {
        const REAL *restrict y0 = c->Y + (int64_t)c->indices[j] * k;
        const REAL *restrict y1 = c->Y + (int64_t)c->indices[j + 1] * k;
        const REAL *restrict y2 = c->Y + (int64_t)c->indices[j + 2] * k;
        const REAL *restrict y3 = c->Y + (int64_t)c->indices[j + 3] * k;
        const double t0 = (double)SFX(dot_rr)(y0, v, k), t1 = (double)SFX(dot_rr)(y1, v, k);
        const double t2 = (double)SFX(dot_rr)(y2, v, k), t3 = (double)SFX(dot_rr)(y3, v, k);
        const REAL a0 = (REAL)((q ? q[j - lo] : 0.0) - wgt[j - lo] * t0);
        const REAL a1 = (REAL)((q ? q[j + 1 - lo] : 0.0) - wgt[j + 1 - lo] * t1);
        const REAL a2 = (REAL)((q ? q[j + 2 - lo] : 0.0) - wgt[j + 2 - lo] * t2);
        const REAL a3 = (REAL)((q ? q[j + 3 - lo] : 0.0) - wgt[j + 3 - lo] * t3);
        int64_t f;
        if (j + 4 + ALS_PREFETCH <= hi) {
            int64_t d;
            for (d = 0; d < 4; ++d)
                SFX(prefetch_row)(c->Y + (int64_t)c->indices[j + ALS_PREFETCH + d] * k, k);
        }
#pragma omp simd
        for (f = 0; f < k; ++f) er[f] = (((er[f] + a0 * y0[f]) + a1 * y1[f]) + a2 * y2[f]) + a3 * y3[f];
    }
    for (; j < hi; ++j) {
        const REAL *y = c->Y + (int64_t)c->indices[j] * k;
        const double t = (double)SFX(dot_rr)(y, v, k);
        if (j + ALS_PREFETCH < hi) SFX(prefetch_row)(c->Y + (int64_t)c->indices[j + ALS_PREFETCH] * k, k);
        SFX(axpy_rr)((REAL)((q ? q[j - lo] : 0.0) - wgt[j - lo] * t), y, er, k);
    }
}

/* out = G v + lam v + sum_e w_e (y_e . v) y_e, w_e = c_e - 1 stored in wgt[e - lo]; vr, er: REAL
 * scratch of k elements */
static FASTMF_INLINE void SFX(ials_apply)(const SFX(ials_ctx) *c, int64_t lo, int64_t hi, double lam,
                                       const double *restrict wgt, const double *restrict v,
                                       double *restrict out, REAL *restrict vr, REAL *restrict er)
{
    const int64_t k = c->p->n_factors;
    int64_t f;
    for (f = 0; f < k; ++f) vr[f] = (REAL)v[f];
    SFX(ials_entries)(c, lo, hi, wgt, NULL, vr, er);
    fastmf_symv_full(c->G, k, v, out);
    for (f = 0; f < k; ++f) out[f] += lam * v[f] - (double)er[f];
}

/* the operator of a row's iALS CG system: ials_apply with the row's entries, weights and lambda */
typedef struct {
    const SFX(ials_ctx) *c;
    int64_t lo, hi;
    double lam;
    const double *wgt;
    REAL *vr, *er;
} SFX(ials_op);

static FASTMF_INLINE void SFX(ials_matvec)(const void *op, const double *restrict v,
                                           double *restrict out)
{
    const SFX(ials_op) *o = (const SFX(ials_op) *)op;
    SFX(ials_apply)(o->c, o->lo, o->hi, o->lam, o->wgt, v, out, o->vr, o->er);
}

static FASTMF_INLINE fastmf_error SFX(ials_row_cg)(const SFX(ials_ctx) *c, int64_t r, int64_t lo,
                                             int64_t hi, double lam, workspace *w)
{
    const fastmf_ials_params *p = c->p;
    const int64_t k = p->n_factors, ld = c->ld, n_r = hi - lo;
    const int log_scaling = p->scaling == FASTMF_IALS_LOG;
    double *restrict x = w->v, *restrict res = w->v + ld, *restrict dir = w->v + 2 * ld;
    double *restrict Ap = w->v + 3 * ld;
    REAL *restrict vr = (REAL *)(w->v + 4 * ld), *restrict er = (REAL *)(w->v + 5 * ld);
    double *restrict wgt = w->ent, *restrict cp = w->ent + n_r;
    SFX(ials_op) op;
    int64_t f, j;
    fastmf_error err = ROW_OK;

    for (f = 0; f < k; ++f) x[f] = (double)c->X[r * k + f];
    if (!all_finite_d(x, k)) {
        err.status = FASTMF_ERR_VALUE; err.which = FASTMF_ALS_BAD_START; err.pos = r;
        return err;
    }
    for (j = lo; j < hi; ++j) {
        const double d = (double)c->data[j];
        const double conf = confidence(d, p->alpha, p->eps, log_scaling);
        wgt[j - lo] = conf - 1.0;
        cp[j - lo] = d > 0.0 ? conf : 0.0;
    }
    /* res = b - A x = sum_e (c_e p_e - (c_e - 1) y_e.x) y_e - G x - lam x */
    for (f = 0; f < k; ++f) vr[f] = (REAL)x[f];
    SFX(ials_entries)(c, lo, hi, wgt, cp, vr, er);
    fastmf_symv_full(c->G, k, x, res);
    for (f = 0; f < k; ++f) res[f] = (double)er[f] - res[f] - lam * x[f];
    op.c = c; op.lo = lo; op.hi = hi; op.lam = lam; op.wgt = wgt; op.vr = vr; op.er = er;
    if (fastmf_cg(k, p->cg_steps, SFX(ials_matvec), &op, x, res, dir, Ap) != 0) return SFX(not_pd)(r);
    err = SFX(check_solution)(x, k, r);
    if (err.status == FASTMF_OK)
        for (f = 0; f < k; ++f) c->X[r * k + f] = (REAL)x[f];
    return err;
}

FASTMF_CLONES
static fastmf_error SFX(ials_row)(const SFX(ials_ctx) *c, int64_t r, workspace *w)
{
    const fastmf_ials_params *p = c->p;
    const int64_t lo = c->indptr[r], hi = c->indptr[r + 1], k = p->n_factors;
    int64_t n_pos, f;
    fastmf_error err;
    if (hi == lo) {
        for (f = 0; f < k; ++f) c->X[r * k + f] = 0;
        return ROW_OK;
    }
    err = SFX(check_entries)(c->indices, c->data, lo, hi, p->n_fixed, p, &n_pos);
    if (err.status != FASTMF_OK) return err;
    if (p->solver == FASTMF_ALS_CG)
        return SFX(ials_row_cg)(c, r, lo, hi, ials_lambda(p, n_pos, p->n_fixed), w);
    return SFX(ials_row_cholesky)(c, r, lo, hi, ials_lambda(p, n_pos, p->n_fixed), w);
}

/* validate a gram argument, or compute it into *owned; *G_out is the matrix to use */
static fastmf_status SFX(use_gram)(const REAL *Y, int64_t n, int64_t k, int n_threads,
                                   const fastmf_interrupt *interrupt, const double *gram,
                                   dbuf *owned, const double **G_out, fastmf_error *err)
{
    int64_t j;
    owned->raw = NULL;
    if (gram != NULL) {
        if ((j = first_nonfinite_d(gram, k * k)) >= 0)
            return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_GRAM);
        *G_out = gram;
        return FASTMF_OK;
    }
    if (dbuf_alloc(owned, k * k) == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    {
        const fastmf_status st = SFX(fastmf_gram)(Y, n, k, n_threads, interrupt, owned->d);
        if (st != FASTMF_OK) {
            dbuf_free(owned);
            return fastmf_fail(err, st, -1, -1);
        }
    }
    *G_out = owned->d;
    return FASTMF_OK;
}

/* common argument checks of the iALS entry points */
static fastmf_status SFX(ials_check)(const fastmf_ials_params *p, const int64_t *indptr,
                                     const int32_t *indices, const REAL *data, const REAL *fixed,
                                     const REAL *rows, int64_t *maxdeg, fastmf_error *err)
{
    int64_t j, pos = -1;
    fastmf_error_clear(err);
    if (!ials_params_ok(p) || indptr == NULL || (p->nnz > 0 && (indices == NULL || data == NULL))
        || (p->n_fixed > 0 && fixed == NULL) || (p->n_rows > 0 && rows == NULL))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_BAD_ARGS);
    if (!check_indptr(indptr, p->n_rows, p->nnz, maxdeg, &pos))
        return fastmf_fail(err, FASTMF_ERR_VALUE, pos, FASTMF_ALS_BAD_INDPTR);
    if ((j = SFX(first_bad_row)(fixed, p->n_fixed, p->n_factors)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, j, FASTMF_ALS_BAD_FIXED);
    return FASTMF_OK;
}

fastmf_status SFX(fastmf_ials_half_sweep)(const fastmf_ials_params *p, const int64_t *indptr,
                                          const int32_t *indices, const REAL *data,
                                          const REAL *fixed_factors, const double *gram,
                                          REAL *factors, fastmf_error *err)
{
    SFX(ials_ctx) c;
    sweep_error se;
    dbuf owned;
    const double *G = NULL;
    int64_t maxdeg = 0;
    fastmf_status st;
    int nt, cg;

    st = SFX(ials_check)(p, indptr, indices, data, fixed_factors, factors, &maxdeg, err);
    if (st != FASTMF_OK) return st;
    st = SFX(use_gram)(fixed_factors, p->n_fixed, p->n_factors, p->n_threads, p->interrupt, gram,
                       &owned, &G, err);
    if (st != FASTMF_OK) return st;

    c.p = p; c.indptr = indptr; c.indices = indices; c.data = data; c.Y = fixed_factors;
    c.G = G; c.X = factors;
    c.wide = wide_tiles();
    c.kp = padded_width(p->n_factors);
    c.ld = system_stride(p->n_factors, c.kp);
    c.chunk = gather_rows(c.kp);
    se.row = p->n_rows; se.err = ROW_OK; se.nomem = 0; se.interrupted = 0;
    cg = p->solver == FASTMF_ALS_CG;
    nt = fastmf_clamp_threads(p->n_threads, (p->n_rows + ALS_ROWS_PER_TASK - 1) / ALS_ROWS_PER_TASK);

    (void)nt;   /* unused in a serial build */
    FASTMF_OMP(omp parallel num_threads(nt))
    {
        workspace w;
        int64_t r;
        const int ok = ws_alloc(&w, cg ? 1 : c.chunk, c.kp, c.ld, maxdeg, !cg, cg);
        if (!ok) flag_nomem(&se);
        FASTMF_OMP(omp for schedule(dynamic, ALS_ROWS_PER_TASK))
        for (r = 0; r < p->n_rows; ++r) {
            fastmf_error e;
            if (!ok || skip_row(&se, r, p->interrupt)) continue;
            e = SFX(ials_row)(&c, r, &w);
            if (e.status != FASTMF_OK) record_error(&se, r, e);
        }
        ws_free(&w);
    }
    dbuf_free(&owned);
    return finish(&se, p->n_rows, err);
}

/* loss terms of user row u: x^T G x + sum_stored [c (p - s)^2 - s^2] + lambda_u |x|^2 */
FASTMF_CLONES
static fastmf_error SFX(ials_loss_row)(const SFX(ials_ctx) *c, int64_t u, workspace *w, double *out)
{
    const fastmf_ials_params *p = c->p;
    const int64_t lo = c->indptr[u], hi = c->indptr[u + 1], k = p->n_factors;
    const int log_scaling = p->scaling == FASTMF_IALS_LOG;
    double *restrict x = w->v, *restrict Gx = w->v + c->ld;
    double total, corr = 0.0;
    int64_t n_pos = 0, f, j;
    fastmf_error err;

    for (f = 0; f < k; ++f) x[f] = (double)c->X[u * k + f];
    if (!all_finite_d(x, k)) {
        err.status = FASTMF_ERR_VALUE; err.which = FASTMF_ALS_BAD_X; err.pos = u;
        return err;
    }
    err = SFX(check_entries)(c->indices, c->data, lo, hi, p->n_fixed, p, &n_pos);
    if (err.status != FASTMF_OK) return err;
    fastmf_symv_full(c->G, k, x, Gx);
    total = fastmf_dot_d(x, Gx, k);
    for (j = lo; j < hi; ++j) {
        const double d = (double)c->data[j];
        const double s = SFX(dot_rd)(c->Y + (int64_t)c->indices[j] * k, x, k);
        const double conf = confidence(d, p->alpha, p->eps, log_scaling);
        const double resid = (d > 0.0 ? 1.0 : 0.0) - s;
        corr += conf * resid * resid - s * s;
    }
    *out = total + corr + ials_lambda(p, n_pos, p->n_fixed) * fastmf_dot_d(x, x, k);
    return ROW_OK;
}

fastmf_status SFX(fastmf_ials_loss)(const fastmf_ials_params *p, const int64_t *indptr,
                                    const int32_t *indices, const REAL *data,
                                    const REAL *user_factors, const REAL *item_factors,
                                    const double *gram, double *loss, fastmf_error *err)
{
    SFX(ials_ctx) c;
    sweep_error se;
    dbuf owned, rows_buf;
    const double *G = NULL;
    double *row_loss, total = 0.0;
    int64_t maxdeg = 0, n_items, k, u, i, f, j;
    int64_t *pos_count = NULL;
    fastmf_status st;
    int nt;

    *loss = 0.0;
    st = SFX(ials_check)(p, indptr, indices, data, item_factors, user_factors, &maxdeg, err);
    if (st != FASTMF_OK) return st;
    n_items = p->n_fixed;
    k = p->n_factors;
    st = SFX(use_gram)(item_factors, n_items, k, p->n_threads, p->interrupt, gram, &owned, &G, err);
    if (st != FASTMF_OK) return st;
    row_loss = dbuf_alloc(&rows_buf, p->n_rows);
    if (p->reg_nu != 0.0) pos_count = (int64_t *)calloc((size_t)(n_items > 0 ? n_items : 1),
                                                        sizeof(int64_t));
    if (row_loss == NULL || (p->reg_nu != 0.0 && pos_count == NULL)) {
        dbuf_free(&owned);
        dbuf_free(&rows_buf);
        free(pos_count);
        return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    }

    c.p = p; c.indptr = indptr; c.indices = indices; c.data = data; c.Y = item_factors;
    c.G = G; c.X = (REAL *)user_factors;   /* read only here */
    c.wide = 0;
    c.kp = fastmf_round8(k);
    c.ld = system_stride(k, c.kp);
    c.chunk = 1;
    se.row = p->n_rows; se.err = ROW_OK; se.nomem = 0; se.interrupted = 0;
    nt = fastmf_clamp_threads(p->n_threads, (p->n_rows + ALS_ROWS_PER_TASK - 1) / ALS_ROWS_PER_TASK);

    (void)nt;   /* unused in a serial build */
    FASTMF_OMP(omp parallel num_threads(nt))
    {
        workspace w;
        int64_t r;
        const int ok = ws_alloc(&w, 1, c.kp, c.ld, 0, 0, 0);
        if (!ok) flag_nomem(&se);
        FASTMF_OMP(omp for schedule(dynamic, 4 * ALS_ROWS_PER_TASK))
        for (r = 0; r < p->n_rows; ++r) {
            fastmf_error e;
            if (!ok || skip_row(&se, r, p->interrupt)) continue;
            e = SFX(ials_loss_row)(&c, r, &w, row_loss + r);
            if (e.status != FASTMF_OK) record_error(&se, r, e);
        }
        ws_free(&w);
    }
    st = finish(&se, p->n_rows, err);
    if (st == FASTMF_OK) {
        for (u = 0; u < p->n_rows; ++u) total += row_loss[u];
        if (pos_count != NULL)
            for (j = 0; j < p->nnz; ++j) pos_count[indices[j]] += (double)data[j] > 0.0;
        for (i = 0; i < n_items; ++i) {          /* item regularisation */
            const REAL *y = item_factors + i * k;
            double sq = 0.0;
            for (f = 0; f < k; ++f) sq += (double)y[f] * (double)y[f];
            total += ials_lambda(p, pos_count ? pos_count[i] : 0, p->n_rows) * sq;
        }
        *loss = total;
    }
    dbuf_free(&owned);
    dbuf_free(&rows_buf);
    free(pos_count);
    return st;
}

#endif /* FASTMF_ALS_TEMPLATE_PASS */
