/* Biased MF with jointly learned side-feature factors, trained by serial SGD.
 *
 * Model (Koren, "Factorization meets the neighborhood", KDD 2008 / Koren, Bell & Volinsky 2009,
 * eq. 6 with the attribute set on the item side; Chen et al., "SVDFeature", JMLR 2012): with the
 * normalised feature row x_i of item i (weights x_ig, e.g. |G(i)|^-1/2 for binary genres) and y_u
 * of user u,
 *     q_i(eff) = q_i + sum_g x_ig z_g,      b_i(eff) = b_i + sum_g x_ig w_g,
 *     p_u(eff) = p_u + sum_h y_uh z'_h,     b_u(eff) = b_u + sum_h y_uh w'_h,
 *     r_hat_ui = mu + b_u(eff) + b_i(eff) + p_u(eff) . q_i(eff)   (unbiased: p_u(eff) . q_i(eff)).
 * A side without features has q_i(eff) = q_i (p_u(eff) = p_u). Objective (penalties inside the sum
 * over ratings, as the per-rating SGD of sgd.c):
 *     sum_{(u,i)} [ e_ui^2 + reg_u |p_u|^2 + reg_i |q_i|^2 + reg_bias (b_u^2 + b_i^2)
 *                   + reg_side sum_{g in x_i} (|z_g|^2 + w_g^2) + reg_side sum_{h in y_u} (...) ]
 * with reg_u (reg_i) = reg_free on a side with features, else reg: a free part penalised more than
 * the features moves the signal items share into the shared rows z_g, w_g.
 *
 * Feature dropout: bit 0 of drop[t] drops the item's free part for the t-th visited rating (q_i
 * and b_i are taken as 0 in its prediction and not updated), bit 1 the user's: the feature part
 * then learns to predict alone, as it must for a cold item (user). With drop_features_only, a
 * rating with a dropped part updates only the feature rows (z, w) of the dropped side(s): the
 * other parameters learn from the ratings they see whole, and the feature part learns to predict
 * for the model they give.
 *
 * Update of one rating (u, i, r), eta = lr, every right-hand side taken before the step:
 *     e = r - r_hat_ui
 *     b_u += eta (e - reg_bias b_u);        b_i += eta (e - reg_bias b_i)        (when not dropped)
 *     p_u += eta (e q_i(eff) - reg_u p_u);  q_i += eta (e p_u(eff) - reg_i q_i)  (when not dropped)
 *     z_g += eta (e x_ig p_u(eff) - reg_side z_g);  w_g += eta (e x_ig - reg_side w_g)  for g in x_i
 *     z'_h += eta (e y_uh q_i(eff) - reg_side z'_h); w'_h += eta (e y_uh - reg_side w'_h) for h in y_u
 * The arithmetic is in double (the effective rows, the dot product, every update), stored in the
 * element type; the NumPy twin fastmf.reference.sgd_side_epoch does the same steps.
 *
 * Schedule and determinism. The feature rows are shared by many items (users), so a rating's
 * update touches rows no block plan separates: the epoch is serial, in the caller's order (the
 * model's shuffled order of the seed and epoch), and its result depends on that order only: the
 * same seed gives the same model for any thread count (the thread count is not used).
 *
 * Invariants. All arrays C-contiguous and non-overlapping; indices checked as read (order, users,
 * items, feature indices and the CSR rows), so a bad entry stops the epoch with FASTMF_ERR_INDEX
 * before its update. Ownership: every buffer is the caller's; 2k doubles of scratch are allocated
 * and freed on every path. No globals, no printing, no hidden randomness (the dropout mask comes
 * from the caller). Divergence: a non-finite running loss stops the epoch; after it every array
 * is scanned.
 */
#ifndef FASTMF_SIDE_TEMPLATE_PASS

#include <math.h>
#include <stdlib.h>

#include "sgd_side.h"

#define FASTMF_SIDE_TEMPLATE_PASS
#define REAL float
#define SFX(name) name##_f32
#include "sgd_side.c"
#undef REAL
#undef SFX
#define REAL double
#define SFX(name) name##_f64
#include "sgd_side.c"
#undef REAL
#undef SFX
#undef FASTMF_SIDE_TEMPLATE_PASS

static int side_ok(const fastmf_side_features *s, int64_t n_rows, int64_t k, int biased)
{
    if (s->indptr == NULL) return 1;
    if (s->n_features < 0) return 0;
    if (s->indptr[n_rows] > 0 && (s->indices == NULL || s->values == NULL)) return 0;
    if (s->n_features > 0 && ((k > 0 && s->Z == NULL) || (biased && s->w == NULL))) return 0;
    return 1;
}

static int problem_ok(const fastmf_sgd_side_problem *pb)
{
    if (pb == NULL) return 0;
    if (pb->dtype != FASTMF_FLOAT32 && pb->dtype != FASTMF_FLOAT64) return 0;
    if (pb->nnz < 0 || pb->n_users < 0 || pb->n_items < 0 || pb->n_factors < 0) return 0;
    if (pb->nnz > 0 && (pb->users == NULL || pb->items == NULL || pb->ratings == NULL)) return 0;
    if (pb->n_factors > 0 && ((pb->n_users > 0 && pb->P == NULL) || (pb->n_items > 0 && pb->Q == NULL)))
        return 0;
    if (pb->biased && ((pb->n_users > 0 && pb->bu == NULL) || (pb->n_items > 0 && pb->bi == NULL))) return 0;
    return side_ok(&pb->user_side, pb->n_users, pb->n_factors, pb->biased)
        && side_ok(&pb->item_side, pb->n_items, pb->n_factors, pb->biased);
}

static fastmf_status check_model(const fastmf_sgd_side_problem *pb, fastmf_error *err)
{
    const int f64 = pb->dtype == FASTMF_FLOAT64;
    const int64_t k = pb->n_factors;
    int64_t j;
#define BAD(x, n, w) (f64 ? bad_row_f64((x), (n), (w)) : bad_row_f32((x), (n), (w)))
    if ((j = BAD(pb->P, pb->n_users, k)) >= 0) return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SIDE_BAD_P);
    if ((j = BAD(pb->Q, pb->n_items, k)) >= 0) return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SIDE_BAD_Q);
    if (pb->biased) {
        if ((j = BAD(pb->bu, pb->n_users, 1)) >= 0)
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SIDE_BAD_BU);
        if ((j = BAD(pb->bi, pb->n_items, 1)) >= 0)
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SIDE_BAD_BI);
    }
    if (pb->user_side.indptr != NULL) {
        if ((j = BAD(pb->user_side.Z, pb->user_side.n_features, k)) >= 0
            || (pb->biased && (j = BAD(pb->user_side.w, pb->user_side.n_features, 1)) >= 0))
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SIDE_BAD_USER_FEATURE);
    }
    if (pb->item_side.indptr != NULL) {
        if ((j = BAD(pb->item_side.Z, pb->item_side.n_features, k)) >= 0
            || (pb->biased && (j = BAD(pb->item_side.w, pb->item_side.n_features, 1)) >= 0))
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SIDE_BAD_ITEM_FEATURE);
    }
#undef BAD
    return FASTMF_OK;
}

fastmf_status fastmf_sgd_side_epoch(const fastmf_sgd_side_problem *pb, const int64_t *order,
                                    int64_t n_order, double *sse, fastmf_error *err)
{
    double *scratch;
    fastmf_status st;
    *sse = 0.0;
    fastmf_error_clear(err);
    if (!problem_ok(pb) || n_order < 0 || (n_order > 0 && order == NULL))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    scratch = (double *)malloc((size_t)(2 * pb->n_factors + 1) * sizeof(double));
    if (scratch == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    st = pb->dtype == FASTMF_FLOAT64 ? serial_f64(pb, order, n_order, scratch, sse, err)
                                     : serial_f32(pb, order, n_order, scratch, sse, err);
    free(scratch);
    if (st != FASTMF_OK) return st;
    return check_model(pb, err);
}

#else /* ------------------------------------------------------------ typed kernels (templated) */

#ifndef FASTMF_SIDE_DOT_DEFINED
#define FASTMF_SIDE_DOT_DEFINED
/* sum_f a[f] b[f], left to right */
static double dot_rows(const double *restrict a, const double *restrict b, int64_t k)
{
    double s = 0.0;
    int64_t f;
    for (f = 0; f < k; ++f) s += a[f] * b[f];
    return s;
}
#endif

/* first row of an n x k matrix holding a non-finite value, or -1 */
static int64_t SFX(bad_row)(const void *xv, int64_t n, int64_t k)
{
    const REAL *x = (const REAL *)xv;
    int64_t j;
    for (j = 0; j < n * k; ++j)
        if (!isfinite(x[j])) return j / k;
    return -1;
}

/* eff = x (or 0 when dropped), in double */
static void SFX(load_row)(double *restrict eff, const REAL *restrict x, int64_t k, int dropped)
{
    int64_t f;
    if (dropped) { for (f = 0; f < k; ++f) eff[f] = 0.0; return; }
    for (f = 0; f < k; ++f) eff[f] = (double)x[f];
}

/* x = a x + c other, i.e. x + lr (e other - reg x) with c = lr e, a = 1 - lr reg */
static void SFX(step_row)(REAL *restrict x, const double *restrict other, int64_t k, double c, double a)
{
    int64_t f;
    for (f = 0; f < k; ++f) x[f] = (REAL)(a * (double)x[f] + c * other[f]);
}

/* Add the feature part of row r of side s (n_rows rows) to (eff[0..k-1], *beff): eff += sum_g x_rg z_g,
 * beff += sum_g x_rg w_g. Returns the first bad CSR entry (or -2 for a row range outside the
 * CSR), else -1. */
static int64_t SFX(add_features)(const fastmf_side_features *s, int64_t r, int64_t n_rows, int64_t k,
                                 int biased, double *restrict eff, double *beff)
{
    const REAL *Z = (const REAL *)s->Z, *w = (const REAL *)s->w;
    const int64_t lo = s->indptr[r], hi = s->indptr[r + 1];
    int64_t e, f;
    if (lo < 0 || hi < lo || hi > s->indptr[n_rows]) return -2;
    for (e = lo; e < hi; ++e) {
        const int32_t g = s->indices[e];
        const double x = s->values[e];
        const REAL *z;
        if ((uint64_t)(int64_t)g >= (uint64_t)s->n_features) return e;
        z = Z + (int64_t)g * k;
        for (f = 0; f < k; ++f) eff[f] += x * (double)z[f];
        if (biased) *beff += x * (double)w[g];
    }
    return -1;
}

/* The feature rows' step of row r: z_g += lr (e x_rg other - reg_side z_g), w_g likewise. */
static void SFX(step_features)(const fastmf_side_features *s, int64_t r, int64_t k, int biased,
                               const double *restrict other, double e, double lr, double reg_side)
{
    REAL *Z = (REAL *)s->Z, *w = (REAL *)s->w;
    int64_t q;
    for (q = s->indptr[r]; q < s->indptr[r + 1]; ++q) {
        const int32_t g = s->indices[q];
        const double ex = e * s->values[q];
        REAL *z = Z + (int64_t)g * k;
        SFX(step_row)(z, other, k, lr * ex, 1.0 - lr * reg_side);
        if (biased) {
            const double wg = (double)w[g];
            w[g] = (REAL)(wg + lr * (ex - reg_side * wg));
        }
    }
}

static fastmf_status SFX(serial)(const fastmf_sgd_side_problem *pb, const int64_t *order, int64_t n,
                                 double *scratch, double *sse_out, fastmf_error *err)
{
    const int64_t k = pb->n_factors, nnz = pb->nnz;
    const int32_t *users = pb->users, *items = pb->items;
    const REAL *ratings = (const REAL *)pb->ratings;
    REAL *P = (REAL *)pb->P, *Q = (REAL *)pb->Q, *bu = (REAL *)pb->bu, *bi = (REAL *)pb->bi;
    const fastmf_side_features *us = &pb->user_side, *is = &pb->item_side;
    const int has_u = us->indptr != NULL, has_i = is->indptr != NULL, biased = pb->biased;
    const double lr = pb->lr, regb = pb->reg_bias, rs = pb->reg_side;
    const double reg_u = has_u ? pb->reg_free : pb->reg, reg_i = has_i ? pb->reg_free : pb->reg;
    double *pe = scratch, *qe = scratch + k;
    double sse = 0.0;
    int64_t t;

    for (t = 0; t < n; ++t) {
        const int64_t pos = order[t];
        const int du = pb->drop != NULL && (pb->drop[t] & 2), di = pb->drop != NULL && (pb->drop[t] & 1);
        int32_t u, i;
        int64_t bad;
        int frozen;
        REAL *p, *q;
        double bue = 0.0, bie = 0.0, dot = 0.0, e;
        if ((t & 4095) == 0 && fastmf_interrupted(pb->interrupt)) {
            *sse_out = sse;
            return fastmf_fail(err, FASTMF_ERR_INTERRUPTED, t, -1);
        }
        if ((uint64_t)pos >= (uint64_t)nnz) return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SIDE_BAD_ORDER);
        u = users[pos];
        i = items[pos];
        if ((uint64_t)(int64_t)u >= (uint64_t)pb->n_users)
            return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SIDE_BAD_USER);
        if ((uint64_t)(int64_t)i >= (uint64_t)pb->n_items)
            return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SIDE_BAD_ITEM);
        p = P + (int64_t)u * k;
        q = Q + (int64_t)i * k;
        SFX(load_row)(pe, p, k, du);
        SFX(load_row)(qe, q, k, di);
        if (biased) {
            bue = du ? 0.0 : (double)bu[u];
            bie = di ? 0.0 : (double)bi[i];
        }
        if (has_u && (bad = SFX(add_features)(us, u, pb->n_users, k, biased, pe, &bue)) != -1)
            return fastmf_fail(err, FASTMF_ERR_INDEX, bad == -2 ? us->indptr[u] : bad, FASTMF_SIDE_BAD_USER_FEATURE);
        if (has_i && (bad = SFX(add_features)(is, i, pb->n_items, k, biased, qe, &bie)) != -1)
            return fastmf_fail(err, FASTMF_ERR_INDEX, bad == -2 ? is->indptr[i] : bad, FASTMF_SIDE_BAD_ITEM_FEATURE);
        dot = dot_rows(pe, qe, k);
        e = (double)ratings[pos] - (biased ? ((pb->mu + bue) + bie) + dot : dot);
        sse += e * e;
        if (!isfinite(sse)) {
            *sse_out = sse;
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, t, FASTMF_SIDE_BAD_LOSS);
        }
        frozen = pb->drop_features_only && (du || di);
        if (biased && !frozen) {
            if (!du) { const double b = (double)bu[u]; bu[u] = (REAL)(b + lr * (e - regb * b)); }
            if (!di) { const double b = (double)bi[i]; bi[i] = (REAL)(b + lr * (e - regb * b)); }
        }
        if (!du && !frozen) SFX(step_row)(p, qe, k, lr * e, 1.0 - lr * reg_u);
        if (!di && !frozen) SFX(step_row)(q, pe, k, lr * e, 1.0 - lr * reg_i);
        if (has_u && (!frozen || du)) SFX(step_features)(us, u, k, biased, qe, e, lr, rs);
        if (has_i && (!frozen || di)) SFX(step_features)(is, i, k, biased, pe, e, lr, rs);
    }
    *sse_out = sse;
    return FASTMF_OK;
}

#endif
