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
 *      fits it otherwise). Cost O(sum_g N_g (k+1)^2) = O(nnz * features per row * k^2).
 * Unbiased: the bias column and mu are dropped everywhere (m = k instead of k + 1).
 *
 * Threads and determinism. The offsets and the residuals are computed entry by entry, rows in
 * parallel (dynamic schedule), each by the same instructions whatever the thread count; the feature
 * solves are serial (features share rows and ratings: a parallel Jacobi step would not be a descent
 * step), so both calls are bit-identical for every n_threads. The systems are formed and solved
 * in double (Cholesky of linalg.h); parameters are stored in the element type, and the residuals
 * are updated with the stored (rounded) values, so they stay those of the stored model.
 *
 * Invariants. All arrays C-contiguous. indptr / f_indptr / t_indptr are checked (0 = p[0] <= ... =
 * total) before any work, indices as they are read (a bad entry fails with its position and is never
 * used to address memory). Values (ratings, factors, feature weights) are the caller's to check
 * finite (the Python wrapper does). Ownership: every array is the caller's; scratch (a k-vector per
 * thread, the residuals, one (k+1)^2 system) is allocated here and freed on every path. No globals,
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

fastmf_status SFX(fastmf_als_side_features)(const fastmf_als_side_params *p, const int64_t *indptr,
                                            const int32_t *indices, const REAL *data, const REAL *fixed,
                                            const REAL *fixed_bias, const REAL *free, const REAL *free_bias,
                                            const int64_t *f_indptr, const int32_t *f_indices,
                                            const double *f_values, const int64_t *t_indptr,
                                            const int32_t *t_indices, const double *t_values, REAL *Z,
                                            REAL *w, fastmf_error *err)
{
    const int64_t k = p ? p->n_factors : 0;
    const int biased = p ? p->biased : 0;
    const int64_t m = k + (biased ? 1 : 0), ld = fastmf_round8(m);
    int64_t maxdeg, g;
    double *res = NULL;
    dbuf rb, ab, vb;
    double *A, *v, *rhs, *sol, *diag0, *s;
    fastmf_status st;
    fastmf_error_clear(err);
    if ((st = SFX(check_args)(p, indptr, f_indptr, t_indptr, &maxdeg, err)) != FASTMF_OK) return st;
    if ((p->nnz > 0 && (indices == NULL || data == NULL || (p->n_fixed > 0 && fixed == NULL)
                        || (biased && p->n_fixed > 0 && fixed_bias == NULL)))
        || (p->n_rows > 0 && (free == NULL || (biased && free_bias == NULL)))
        || (p->feat_nnz > 0 && (f_indices == NULL || f_values == NULL || t_indices == NULL || t_values == NULL))
        || (p->n_features > 0 && (Z == NULL || (biased && w == NULL))))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, FASTMF_ALS_SIDE_BAD_ARGS);
    /* the feature -> rows CSR, checked before any work */
    for (g = 0; g < p->feat_nnz; ++g)
        if ((uint64_t)(int64_t)t_indices[g] >= (uint64_t)p->n_rows)
            return fastmf_fail(err, FASTMF_ERR_INDEX, g, FASTMF_ALS_SIDE_BAD_T_INDEX);
    res = dbuf_alloc(&rb, p->nnz);
    A = dbuf_alloc(&ab, ld * ld);
    v = dbuf_alloc(&vb, 4 * ld);
    if (res == NULL || A == NULL || v == NULL) {
        st = fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
        goto done;
    }
    rhs = v;
    sol = v + ld;
    diag0 = v + 2 * ld;
    s = v + 3 * ld;
    /* e = d - mu - c_j - b_r(eff) - y_j . x_r(eff) for every rating */
    st = SFX(per_entry)(p, indptr, indices, data, fixed, biased ? fixed_bias : NULL, biased ? p->mu : 0.0,
                        free, biased ? free_bias : NULL, f_indptr, f_indices, f_values, Z, w, NULL, res, err);
    if (st != FASTMF_OK) goto done;
    for (g = 0; g < p->n_features; ++g) {           /* Gauss-Seidel, in index order */
        REAL *restrict zg = Z + g * k;
        int64_t t, e, a, count = 0;
        double lam;
        if (fastmf_interrupted(p->interrupt)) {
            st = fastmf_fail(err, FASTMF_ERR_INTERRUPTED, g, -1);
            goto done;
        }
        memset(A, 0, (size_t)(ld * ld) * sizeof(double));
        memset(rhs, 0, (size_t)ld * sizeof(double));
        for (a = 0; a < k; ++a) sol[a] = (double)zg[a];         /* the old [z_g, w_g] */
        if (biased) sol[k] = (double)w[g];
        for (a = m; a < ld; ++a) s[a] = 0.0;
        for (t = t_indptr[g]; t < t_indptr[g + 1]; ++t) {
            const int64_t r = t_indices[t];
            const double x = t_values[t];
            count += indptr[r + 1] - indptr[r];
            for (e = indptr[r]; e < indptr[r + 1]; ++e) {
                const REAL *restrict y = fixed + (int64_t)indices[e] * k;   /* indices checked above */
                double re;
                for (a = 0; a < k; ++a) s[a] = (double)y[a];
                if (biased) s[k] = 1.0;
                re = res[e] + x * fastmf_dot_d(s, sol, m);   /* the residual without feature g */
                res[e] = re;
                for (a = 0; a < m; ++a) fastmf_axpy_d(x * x * s[a], s + a, A + a * ld + a, m - a);
                fastmf_axpy_d(x * re, s, rhs, m);
            }
        }
        if (count == 0) {                            /* no rating reaches g: its minimiser, 0 */
            for (a = 0; a < k; ++a) zg[a] = (REAL)0;
            if (biased) w[g] = (REAL)0;
            continue;
        }
        lam = p->reg_features * (p->weighted ? (double)count : 1.0);
        for (a = 0; a < m; ++a) A[a * ld + a] += lam;
        {
            const int64_t piv = fastmf_cholesky_upper(A, m, ld, diag0, p->interrupt);
            if (piv == -2) {
                st = fastmf_fail(err, FASTMF_ERR_INTERRUPTED, g, -1);
                goto done;
            }
            if (piv >= 0) {
                st = fastmf_fail(err, FASTMF_ERR_NOT_PD, g, FASTMF_ALS_SIDE_BAD_SYSTEM);
                goto done;
            }
        }
        fastmf_cholesky_solve_upper(A, m, ld, rhs);
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
    return st;
}

#endif
