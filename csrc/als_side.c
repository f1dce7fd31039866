/* Explicit ALS with jointly learned side-feature factors: the per-rating loops of a side with
 * features (MatrixFactorization(solver="als", side="joint"); NumPy twins fastmf.reference.als_side).
 *
 * Model (the one of csrc/sgd_side.c, written here for the side being solved, rows r, against the
 * fixed side, rows j with effective factors y_j and biases c_j): with the normalised feature row x_r,
 *     x_r(eff) = x_r + sum_g x_rg z_g,      b_r(eff) = b_r + sum_g x_rg w_g,
 *     r_hat_rj = mu + c_j + b_r(eff) + y_j . x_r(eff)      (unbiased: y_j . x_r(eff)).
 * Objective (penalties per rating, as sgd_side.c; weighted = 0 makes every penalty a constant):
 *     L = sum_{(r,j)} e_rj^2 + sum_r n_r (reg_free |x_r|^2 + reg_bias b_r^2)
 *         + sum_g reg_features N_g (|z_g|^2 + w_g^2) + (the fixed side's penalties),
 * n_r the ratings of row r, N_g = sum_{r: x_rg != 0} n_r the ratings of the rows holding feature g.
 *
 * A sweep of a side with features is two exact block minimisations of L, so L never increases (the
 * caller, fastmf.reference.als_joint_sweep, runs (c) before (b), see there why):
 *  (b) the free parts [x_r, b_r] with the feature rows fixed: a ridge per row whose targets carry a
 *      per-rating offset, d_rj - y_j . f_r - fb_r (f_r, fb_r: the feature part), formed by
 *      fastmf_als_side_offsets_*; the caller then runs the explicit ALS half-sweep of als.c on them
 *      (fastmf_als_half_sweep_*, penalties reg_free and reg_bias): the same row solver.
 *  (c) the feature rows, by fastmf_als_side_features_*: Gauss-Seidel over g in index order, each
 *      [z_g, w_g] set to its exact conditional minimiser with e the current residuals and s_e = [y_j, 1]:
 *          (sum_{e in g} x_rg^2 s_e s_e^T + lambda_g I) [z_g; w_g] = sum_{e in g} x_rg (e_e + x_rg s_e . [z_g; w_g]_old) s_e,
 *      lambda_g = reg_features N_g (weighted) or reg_features, then e_e -= x_rg s_e . ([z_g; w_g]_new - old).
 *      A feature no rating reaches (N_g = 0) gets 0 (its minimiser when reg_features > 0; any value
 *      fits it otherwise). Cost O(sum_g N_g (k+1)^2) = O(nnz * features per row * k^2) for the
 *      systems (parallel), O(nnz * features per row * k) for the serial pass.
 * Unbiased: the bias column and mu are dropped everywhere (m = k instead of k + 1).
 *
 * Threads and determinism. The offsets and the residuals are computed entry by entry, rows in
 * parallel (dynamic schedule), each by the same instructions whatever the thread count. A feature's
 * system matrix does not depend on the residuals, so all of them are formed (register-tiled Gram of
 * linalg.h over gathered blocks, entry order) and factorised first, features in parallel; the
 * Gauss-Seidel pass (right-hand sides, triangular solves, residual updates: O(N_g k) per feature)
 * is serial (features share rows and ratings: a parallel Jacobi step would not be a descent step).
 * Both calls are bit-identical for every n_threads. The system builder is compiled per instruction
 * set (FASTMF_CLONES, as the row solvers of als.c): bit-identical across runs on one machine.
 * A failing feature system (not positive definite) is reported, lowest feature first, before any
 * feature row changes. The systems are formed and solved
 * in double (Cholesky of linalg.h); parameters are stored in the element type, and the residuals
 * are updated with the stored (rounded) values, so they stay those of the stored model.
 *
 * Invariants. All arrays C-contiguous. indptr / f_indptr / t_indptr are checked (0 = p[0] <= ... =
 * total) before any work, indices as they are read (a bad entry fails with its position and is never
 * used to address memory). Values (ratings, factors, feature weights) are the caller's to check
 * finite (the Python wrapper does). Ownership: every array is the caller's; scratch (a k-vector per
 * thread, the residuals, every feature's (k+1)^2 system) is allocated here and freed on every path. No globals,
 * no printing, no randomness. Interrupts: read before every row and every feature.
 */
#ifndef FASTMF_ALS_SIDE_TEMPLATE_PASS

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "als_side.h"
#include "als_rows.h"
#include "linalg.h"

FASTMF_DOT(dot_f32, float)

#define FASTMF_ALS_SIDE_TEMPLATE_PASS
#define REAL float
#define SFX(name) name##_f32
#define DOT dot_f32
#include "als_side.c"
#undef REAL
#undef SFX
#undef DOT
#define REAL double
#define SFX(name) name##_f64
#define DOT fastmf_dot_d
#include "als_side.c"
#undef REAL
#undef SFX
#undef DOT
#undef FASTMF_ALS_SIDE_TEMPLATE_PASS

#else /* ------------------------------------------------------------ typed kernels (templated) */

/* The sizes and the three CSR row pointers (t_indptr may be NULL: not needed). */
static fastmf_status SFX(check_args)(const fastmf_als_side_params *p, const int64_t *indptr,
                                     const int64_t *f_indptr, const int64_t *t_indptr, int64_t *maxdeg,
                                     fastmf_error *err)
{
    int64_t bad = -1, deg;
    if (p == NULL || p->n_rows < 0 || p->n_fixed < 0 || p->n_factors < 1 || p->nnz < 0
        || p->n_features < 0 || p->feat_nnz < 0 || p->n_threads < 1 || indptr == NULL || f_indptr == NULL)
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_SIDE_BAD_ARGS);
    if (!check_indptr(indptr, p->n_rows, p->nnz, maxdeg, &bad))
        return fastmf_fail(err, FASTMF_ERR_VALUE, bad, FASTMF_ALS_SIDE_BAD_INDPTR);
    if (!check_indptr(f_indptr, p->n_rows, p->feat_nnz, &deg, &bad))
        return fastmf_fail(err, FASTMF_ERR_VALUE, bad, FASTMF_ALS_SIDE_BAD_FEAT_INDPTR);
    if (t_indptr != NULL && !check_indptr(t_indptr, p->n_features, p->feat_nnz, &deg, &bad))
        return fastmf_fail(err, FASTMF_ERR_VALUE, bad, FASTMF_ALS_SIDE_BAD_T_INDPTR);
    return FASTMF_OK;
}

/* f = base_r (or 0) + sum_g x_rg z_g, *fb = base_bias_r (or 0) + sum_g x_rg w_g, in double; -1, or
 * the first feature entry outside [0, n_features) */
static int64_t SFX(feature_part)(const fastmf_als_side_params *p, int64_t r, const int64_t *f_indptr,
                                 const int32_t *f_indices, const double *f_values, const REAL *Z,
                                 const REAL *w, const REAL *base, const REAL *base_bias, double *restrict f,
                                 double *fb)
{
    const int64_t k = p->n_factors;
    int64_t e, c;
    if (base != NULL) for (c = 0; c < k; ++c) f[c] = (double)base[r * k + c];
    else memset(f, 0, (size_t)k * sizeof(double));
    *fb = (p->biased && base_bias != NULL) ? (double)base_bias[r] : 0.0;
    for (e = f_indptr[r]; e < f_indptr[r + 1]; ++e) {
        const int32_t g = f_indices[e];
        const double x = f_values[e];
        const REAL *restrict z;
        if ((uint64_t)(int64_t)g >= (uint64_t)p->n_features) return e;
        z = Z + (int64_t)g * k;
        for (c = 0; c < k; ++c) f[c] += x * (double)z[c];
        if (p->biased) *fb += x * (double)w[g];
    }
    return -1;
}

/* The rows of a side in parallel, each: its feature part (plus base), then, for each rating entry e
 * of the row, out_d[e] / out_r[e] = data[e] - shift - c_j - fb - y_j . f (shift = mu, c = fixed_bias
 * when given). Results per entry only: bit-identical for every n_threads. */
static fastmf_status SFX(per_entry)(const fastmf_als_side_params *p, const int64_t *indptr,
                                    const int32_t *indices, const REAL *data, const REAL *fixed,
                                    const REAL *fixed_bias, double shift, const REAL *base,
                                    const REAL *base_bias, const int64_t *f_indptr, const int32_t *f_indices,
                                    const double *f_values, const REAL *Z, const REAL *w, REAL *out_r,
                                    double *out_d, fastmf_error *err)
{
    const int64_t k = p->n_factors, n = p->n_rows;
    sweep_error se;
    se.row = n;
    se.nomem = 0;
    se.interrupted = 0;
    fastmf_error_clear(&se.err);
    FASTMF_OMP(omp parallel num_threads(p->n_threads))
    {
        dbuf fb_buf;
        double *f = dbuf_alloc(&fb_buf, k);
        int64_t r;
        if (f == NULL) flag_nomem(&se);
        FASTMF_OMP(omp for schedule(dynamic, 16))
        for (r = 0; r < n; ++r) {
            double fb;
            int64_t e, bad;
            fastmf_error re;
            if (f == NULL || skip_row(&se, r, p->interrupt)) continue;
            bad = SFX(feature_part)(p, r, f_indptr, f_indices, f_values, Z, w, base, base_bias, f, &fb);
            if (bad >= 0) {
                re.status = FASTMF_ERR_INDEX; re.pos = bad; re.which = FASTMF_ALS_SIDE_BAD_FEAT_INDEX;
                record_error(&se, r, re);
                continue;
            }
            for (e = indptr[r]; e < indptr[r + 1]; ++e) {
                const int32_t j = indices[e];
                double v;
                if ((uint64_t)(int64_t)j >= (uint64_t)p->n_fixed) {
                    re.status = FASTMF_ERR_INDEX; re.pos = e; re.which = FASTMF_ALS_SIDE_BAD_INDEX;
                    record_error(&se, r, re);
                    break;
                }
                v = (double)data[e] - shift - fb - DOT(fixed + (int64_t)j * k, f, k);
                if (fixed_bias != NULL) v -= (double)fixed_bias[j];
                if (out_r != NULL) out_r[e] = (REAL)v;
                else out_d[e] = v;
            }
        }
        dbuf_free(&fb_buf);
    }
    return finish(&se, n, err);
}

fastmf_status SFX(fastmf_als_side_offsets)(const fastmf_als_side_params *p, const int64_t *indptr,
                                           const int32_t *indices, const REAL *data, const REAL *fixed,
                                           const int64_t *f_indptr, const int32_t *f_indices,
                                           const double *f_values, const REAL *Z, const REAL *w,
                                           REAL *out, fastmf_error *err)
{
    int64_t maxdeg;
    fastmf_status st;
    fastmf_error_clear(err);
    if ((st = SFX(check_args)(p, indptr, f_indptr, NULL, &maxdeg, err)) != FASTMF_OK) return st;
    if ((p->nnz > 0 && (indices == NULL || data == NULL || out == NULL || (p->n_fixed > 0 && fixed == NULL)))
        || (p->feat_nnz > 0 && (f_indices == NULL || f_values == NULL))
        || (p->n_features > 0 && (Z == NULL || (p->biased && w == NULL))))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_SIDE_BAD_ARGS);
    return SFX(per_entry)(p, indptr, indices, data, fixed, NULL, 0.0, NULL, NULL, f_indptr, f_indices,
                          f_values, Z, w, out, NULL, err);
}

#ifndef ALS_SIDE_CHUNK
#define ALS_SIDE_CHUNK 64   /* rating entries gathered at a time into a block for the Gram tiles */
#endif

/* The Cholesky factor of feature g's system, sum_{e in g} x_rg^2 s_e s_e^T + lambda_g I (m x m in
 * A, row stride and rows ld = round8(m)), and *count = N_g. It depends on the fixed rows and the
 * features only, not on the residuals, so every feature's system is factorised before the
 * Gauss-Seidel pass (features in parallel). The entries are gathered ALS_SIDE_CHUNK at a time as
 * rows x_rg s_e (zero-padded to ld) and added by the register-tiled Gram of linalg.h, in entry
 * order: the same sums for any thread. buf: ALS_SIDE_CHUNK * ld + ld doubles.
 * Returns -1, -3 when N_g = 0 (no system), or the failing pivot (-2: interrupted). */
FASTMF_CLONES
static int64_t SFX(feature_system)(const fastmf_als_side_params *p, int64_t g, const int64_t *indptr,
                                   const int32_t *indices, const REAL *fixed, const int64_t *t_indptr,
                                   const int32_t *t_indices, const double *t_values, double *restrict A,
                                   int64_t ld, double *restrict buf, int wide, int64_t *count)
{
    const int64_t k = p->n_factors, m = k + (p->biased ? 1 : 0);
    double *restrict B = buf, *restrict diag0 = buf + ALS_SIDE_CHUNK * ld;
    int64_t t, e, a, n = 0, ne = 0;
    memset(A, 0, (size_t)(ld * ld) * sizeof(double));
    memset(B, 0, (size_t)(ALS_SIDE_CHUNK * ld) * sizeof(double));
    for (t = t_indptr[g]; t < t_indptr[g + 1]; ++t) {
        const int64_t r = t_indices[t];
        const double x = t_values[t];
        n += indptr[r + 1] - indptr[r];
        for (e = indptr[r]; e < indptr[r + 1]; ++e) {
            const REAL *restrict y = fixed + (int64_t)indices[e] * k;   /* indices checked before */
            double *restrict row = B + ne * ld;
            for (a = 0; a < k; ++a) row[a] = x * (double)y[a];
            if (p->biased) row[k] = x;
            if (++ne == ALS_SIDE_CHUNK) {
                gram_tiles(B, B, ne, ld, A, ld, wide);
                ne = 0;
            }
        }
    }
    if (ne > 0) gram_tiles(B, B, ne, ld, A, ld, wide);
    *count = n;
    if (n == 0) return -3;
    {
        const double lam = p->reg_features * (p->weighted ? (double)n : 1.0);
        for (a = 0; a < m; ++a) A[a * ld + a] += lam;
    }
    return fastmf_cholesky_upper(A, m, ld, diag0, p->interrupt);
}

fastmf_status SFX(fastmf_als_side_features)(const fastmf_als_side_params *p, const int64_t *indptr,
                                            const int32_t *indices, const REAL *data, const REAL *fixed,
                                            const REAL *fixed_bias, const REAL *free_part, const REAL *free_bias,
                                            const int64_t *f_indptr, const int32_t *f_indices,
                                            const double *f_values, const int64_t *t_indptr,
                                            const int32_t *t_indices, const double *t_values, REAL *Z,
                                            REAL *w, fastmf_error *err)
{
    const int64_t k = p ? p->n_factors : 0;
    const int biased = p ? p->biased : 0;
    const int64_t m = k + (biased ? 1 : 0), ld = fastmf_round8(m);
    int64_t maxdeg, g, e;
    double *res, *A, *v, *rhs, *sol, *s;
    int64_t *counts;
    dbuf rb, ab, vb;
    sweep_error se;
    fastmf_status st;
    const int wide = wide_tiles();
    fastmf_error_clear(err);
    if ((st = SFX(check_args)(p, indptr, f_indptr, t_indptr, &maxdeg, err)) != FASTMF_OK) return st;
    if ((p->nnz > 0 && (indices == NULL || data == NULL || (p->n_fixed > 0 && fixed == NULL)
                        || (biased && p->n_fixed > 0 && fixed_bias == NULL)))
        || (p->n_rows > 0 && (free_part == NULL || (biased && free_bias == NULL)))
        || (p->feat_nnz > 0 && (f_indices == NULL || f_values == NULL || t_indices == NULL || t_values == NULL))
        || (p->n_features > 0 && (Z == NULL || (biased && w == NULL))))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_SIDE_BAD_ARGS);
    /* the rating and the feature -> rows indices, checked before any work */
    for (e = 0; e < p->feat_nnz; ++e)
        if ((uint64_t)(int64_t)t_indices[e] >= (uint64_t)p->n_rows)
            return fastmf_fail(err, FASTMF_ERR_INDEX, e, FASTMF_ALS_SIDE_BAD_T_INDEX);
    for (e = 0; e < p->nnz; ++e)
        if ((uint64_t)(int64_t)indices[e] >= (uint64_t)p->n_fixed)
            return fastmf_fail(err, FASTMF_ERR_INDEX, e, FASTMF_ALS_SIDE_BAD_INDEX);
    res = dbuf_alloc(&rb, p->nnz);
    A = dbuf_alloc(&ab, p->n_features * ld * ld);     /* every feature's factorised system */
    v = dbuf_alloc(&vb, 3 * ld);
    counts = (int64_t *)malloc((size_t)(p->n_features > 0 ? p->n_features : 1) * sizeof(int64_t));
    if (res == NULL || A == NULL || v == NULL || counts == NULL) {
        st = fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
        goto done;
    }
    rhs = v;
    sol = v + ld;
    s = v + 2 * ld;
    /* (1) the systems, features in parallel: each is the same computation whatever the thread */
    se.row = p->n_features;
    se.nomem = 0;
    se.interrupted = 0;
    fastmf_error_clear(&se.err);
    FASTMF_OMP(omp parallel num_threads(p->n_threads))
    {
        dbuf sb;
        double *ts = dbuf_alloc(&sb, (ALS_SIDE_CHUNK + 1) * ld);
        int64_t gg;
        if (ts == NULL) flag_nomem(&se);
        FASTMF_OMP(omp for schedule(dynamic, 1))
        for (gg = 0; gg < p->n_features; ++gg) {
            int64_t piv;
            fastmf_error fe;
            if (ts == NULL || skip_row(&se, gg, p->interrupt)) continue;
            piv = SFX(feature_system)(p, gg, indptr, indices, fixed, t_indptr, t_indices, t_values,
                                      A + gg * ld * ld, ld, ts, wide, &counts[gg]);
            if (piv == -2) {
                FASTMF_OMP(omp atomic write)
                se.interrupted = 1;
            } else if (piv >= 0) {
                fe.status = FASTMF_ERR_NOT_PD; fe.pos = gg; fe.which = FASTMF_ALS_SIDE_BAD_SYSTEM;
                record_error(&se, gg, fe);
            }
        }
        dbuf_free(&sb);
    }
    if ((st = finish(&se, p->n_features, err)) != FASTMF_OK) goto done;
    /* (2) e = d - mu - c_j - b_r(eff) - y_j . x_r(eff) for every rating, rows in parallel */
    st = SFX(per_entry)(p, indptr, indices, data, fixed, biased ? fixed_bias : NULL, biased ? p->mu : 0.0,
                        free_part, biased ? free_bias : NULL, f_indptr, f_indices, f_values, Z, w, NULL, res, err);
    if (st != FASTMF_OK) goto done;
    /* (3) Gauss-Seidel in index order: the right-hand side from the residuals without feature g,
     * the solve, the residuals with its new row */
    for (g = 0; g < p->n_features; ++g) {
        REAL *restrict zg = Z + g * k;
        int64_t t, a;
        if (fastmf_interrupted(p->interrupt)) {
            st = fastmf_fail(err, FASTMF_ERR_INTERRUPTED, g, -1);
            goto done;
        }
        if (counts[g] == 0) {                        /* no rating reaches g: its minimiser, 0 */
            for (a = 0; a < k; ++a) zg[a] = (REAL)0;
            if (biased) w[g] = (REAL)0;
            continue;
        }
        for (a = 0; a < k; ++a) sol[a] = (double)zg[a];         /* the old [z_g, w_g] */
        if (biased) sol[k] = (double)w[g];
        memset(rhs, 0, (size_t)ld * sizeof(double));
        for (t = t_indptr[g]; t < t_indptr[g + 1]; ++t) {
            const int64_t r = t_indices[t];
            const double x = t_values[t];
            for (e = indptr[r]; e < indptr[r + 1]; ++e) {
                const REAL *restrict y = fixed + (int64_t)indices[e] * k;
                double re;
                for (a = 0; a < k; ++a) s[a] = (double)y[a];
                if (biased) s[k] = 1.0;
                re = res[e] + x * fastmf_dot_d(s, sol, m);   /* the residual without feature g */
                res[e] = re;
                fastmf_axpy_d(x * re, s, rhs, m);
            }
        }
        fastmf_cholesky_solve_upper(A + g * ld * ld, m, ld, rhs);
        for (a = 0; a < m; ++a)
            if (!isfinite(rhs[a])) {
                st = fastmf_fail(err, FASTMF_ERR_DIVERGED, g, FASTMF_ALS_SIDE_BAD_RESULT);
                goto done;
            }
        for (a = 0; a < k; ++a) { zg[a] = (REAL)rhs[a]; sol[a] = (double)zg[a]; }
        if (biased) { w[g] = (REAL)rhs[k]; sol[k] = (double)w[g]; }
        for (t = t_indptr[g]; t < t_indptr[g + 1]; ++t) {   /* put the new feature g back */
            const int64_t r = t_indices[t];
            const double x = t_values[t];
            for (e = indptr[r]; e < indptr[r + 1]; ++e) {
                const REAL *restrict y = fixed + (int64_t)indices[e] * k;
                for (a = 0; a < k; ++a) s[a] = (double)y[a];
                if (biased) s[k] = 1.0;
                res[e] -= x * fastmf_dot_d(s, sol, m);
            }
        }
    }
done:
    dbuf_free(&rb);
    dbuf_free(&ab);
    dbuf_free(&vb);
    free(counts);
    return st;
}

#endif
