/* timeSVD++ (Koren, "Collaborative filtering with temporal dynamics", KDD 2009, eq. 13 with the
 * baseline of eq. 10-11) trained by SGD, with the SVD++ implicit sum accumulated per user
 * (csrc/svdpp.c) instead of recomputed per rating.
 *
 * Model. For a rating of user u for item i at time t (its day d = the (u, day) row, its bin b, and
 * delta = dev_u(t) = sign(t - t_u) |t - t_u|^beta, all computed by the caller from the training data):
 *     r_hat = mu + b_u + alpha_u delta + b_{u,d} + (b_i + b_{i,b}) (c_u + c_{u,d})
 *             + q_i . (p_u + alpha_{pu} delta + p_{u,d} + z_u),   z_u = w_u sum_{j in N(u)} y_j.
 * Every time term is switchable: a NULL array is a term that is off (its value 0; c_u(t) = 1 when
 * cu is NULL). Objective (per-rating SGD; penalties inside the sum over ratings, Koren 2009):
 *     sum_{(u,i,t)} [ e^2 + l_f (|p_u|^2 + |q_i|^2) + l_b (b_u^2 + b_i^2) + l_y sum_{j in N(u)} |y_j|^2
 *                     + l_a alpha_u^2 + l_bt b_{u,d}^2 + l_bin b_{i,b}^2 + l_c (c_u - 1)^2
 *                     + l_ct c_{u,d}^2 + l_ap |alpha_{pu}|^2 + l_pt |p_{u,d}|^2 ],   e = r - r_hat,
 * one (lr, reg) pair per group (FASTMF_TSVD_G_*). Per-rating SGD, every value taken before the step,
 * with s = b_i + b_{i,b}, c = c_u + c_{u,d} and p~ = p_u + alpha_{pu} delta + p_{u,d} + z_u:
 *     b_u += eta_b (e - l_b b_u);               b_i += eta_b (e c - l_b b_i)
 *     alpha_u += eta_a (e delta - l_a alpha_u); b_{u,d} += eta_bt (e - l_bt b_{u,d})
 *     b_{i,b} += eta_bin (e c - l_bin b_{i,b});  c_u += eta_c (e s - l_c (c_u - 1))
 *     c_{u,d} += eta_ct (e s - l_ct c_{u,d})
 *     p_u += eta_f (e q_i - l_f p_u);           alpha_{pu} += eta_ap (e delta q_i - l_ap alpha_{pu})
 *     p_{u,d} += eta_pt (e q_i - l_pt p_{u,d}); q_i += eta_f (e p~ - l_f q_i)
 *     y_j += eta_y (e w_u q_i - l_y y_j)   for every j in N(u).
 * The y step is accumulated per user visit exactly as in csrc/svdpp.c (z <- a z + eta_y e s_u q_i,
 * g <- a g + eta_y e w_u q_i, y_j <- a^n y_j + g once per visit, a = 1 - eta_y l_y, s_u = w_u^2
 * |N(u)|): the same numbers as the per-rating rule in exact arithmetic, for any order, at O(k) per
 * rating. Arithmetic is in double; the model arrays keep their element type (float or double).
 * Each row step x += eta (e v - lambda x) is evaluated as x = (1 - eta lambda) x + (eta e) v (the
 * twin evaluates the same form).
 *
 * Cost. Per rating two passes over k: the dot product q_i . p~ with p~ formed on the fly (16 explicit
 * partial sums, a fixed tree: vectorised without reassociation), then one loop that takes every
 * per-factor step (alpha_pu, p_ut, p_u, q_i, z, g) reading each row once; per visit one pass over
 * the bag for z (four rows at a time) and one for the y update. Each combination of the per-factor
 * terms (alpha_pu, p_ut) and of the implicit sum (on, off) is its own copy of those loops (no branch
 * inside them), and the epoch is compiled per instruction set (FASTMF_CLONES). Item rows (q_i, b_i,
 * b_{i,bin}) are prefetched a few ratings ahead, the per-rating entries (user, item, rating, bin,
 * day, dev) further ahead (a user's positions come shuffled, so they do not stream), and the bag's y
 * rows a few entries ahead. The rounding differs from the twin's (and between CPU levels) in the
 * last bits only (the dot product's summation order, FMA contraction).
 *
 * Schedule. Serial only: the caller's order (fastmf_svdpp_user_order: users shuffled, each user's
 * ratings shuffled), so the model is the same for every thread count by construction.
 *
 * Invariants. All arrays C-contiguous and non-overlapping. Indices are checked as read (order,
 * users, items, bins, days, bag items): a bad entry stops the epoch with FASTMF_ERR_INDEX before
 * its update, never an out-of-bounds access (a failing visit still writes its y update). Every
 * buffer is the caller's; the epoch allocates 2k doubles of scratch and frees them on every path.
 * No globals, no printing, no randomness. The interrupt flag is read before every user visit. A
 * non-finite running loss stops the epoch; after it every model array is scanned. NumPy twin:
 * fastmf.reference.timesvd_epoch (the literal per-rating rule).
 */
#ifndef FASTMF_TIMESVD_TEMPLATE_PASS

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "timesvd.h"

/* prefetch distances: ratings ahead in the order (their per-rating entries; their item rows), entries
 * ahead in a bag (y rows) */
#define TSVD_PF_ENTRIES 12
#define TSVD_PF_RATING 3
#define TSVD_PF_BAG 6

#define FASTMF_TIMESVD_TEMPLATE_PASS
#define REAL float
#define SFX(name) name##_f32
#include "timesvd.c"
#undef REAL
#undef SFX
#define REAL double
#define SFX(name) name##_f64
#include "timesvd.c"
#undef REAL
#undef SFX
#undef FASTMF_TIMESVD_TEMPLATE_PASS

static int problem_ok(const fastmf_timesvd_problem *pb)
{
    int g;
    if (pb == NULL) return 0;
    if (pb->dtype != FASTMF_FLOAT32 && pb->dtype != FASTMF_FLOAT64) return 0;
    if (pb->nnz < 0 || pb->n_users < 0 || pb->n_items < 0 || pb->n_factors < 0 || pb->n_bins < 0
        || pb->n_days < 0)
        return 0;
    if (pb->nnz > 0 && (pb->users == NULL || pb->items == NULL || pb->ratings == NULL)) return 0;
    if (pb->n_factors > 0 && ((pb->n_users > 0 && pb->P == NULL)
                              || (pb->n_items > 0 && (pb->Q == NULL || pb->Y == NULL))))
        return 0;
    if ((pb->n_users > 0 && (pb->bu == NULL || pb->bag_w == NULL)) || (pb->n_items > 0 && pb->bi == NULL))
        return 0;
    if (pb->bag_ptr == NULL) return 0;
    if (pb->bag_ptr[pb->n_users] > 0 && pb->bag_items == NULL) return 0;
    if (pb->nnz > 0 && pb->bit != NULL && pb->bins == NULL) return 0;
    if (pb->nnz > 0 && (pb->but != NULL || pb->cut != NULL || pb->PT != NULL) && pb->days == NULL) return 0;
    if (pb->nnz > 0 && (pb->au != NULL || pb->AP != NULL) && pb->dev == NULL) return 0;
    for (g = 0; g < FASTMF_TSVD_N_GROUPS; ++g)
        if (!isfinite(pb->lr[g]) || !isfinite(pb->reg[g])) return 0;
    return 1;
}

static fastmf_status check_model(const fastmf_timesvd_problem *pb, fastmf_error *err)
{
    const int f64 = pb->dtype == FASTMF_FLOAT64;
    const int64_t k = pb->n_factors, nu = pb->n_users, ni = pb->n_items, nd = pb->n_days;
    const void *arrays[12] = {pb->P, pb->Q, pb->Y, pb->bu, pb->bi, pb->au, pb->bit, pb->but, pb->cu,
                              pb->cut, pb->AP, pb->PT};
    const int64_t sizes[12] = {nu * k, ni * k, ni * k, nu, ni, nu, ni * pb->n_bins, nd, nu, nd, nu * k, nd * k};
    int a;
    for (a = 0; a < 12; ++a) {
        if (arrays[a] == NULL) continue;
        if (f64 ? !fastmf_all_finite_f64((const double *)arrays[a], sizes[a])
                : !fastmf_all_finite_f32((const float *)arrays[a], sizes[a]))
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, a, FASTMF_TSVD_BAD_MODEL);
    }
    return FASTMF_OK;
}

fastmf_status fastmf_timesvd_epoch(const fastmf_timesvd_problem *pb, const int64_t *order, int64_t n_order,
                                   double *sse, fastmf_error *err)
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

/* y_j = a^n y_j + g for every j of the bag [lo, hi), the rows a few entries ahead prefetched */
static FASTMF_INLINE void SFX(flush_y)(REAL *Y, const int32_t *bag_items, int64_t lo, int64_t hi, int64_t k,
                                       double decay, const double *restrict g)
{
    int64_t e, f;
    for (e = lo; e < hi; ++e) {
        REAL *restrict y = Y + (int64_t)bag_items[e] * k;
        if (e + TSVD_PF_BAG < hi)  /* the rows were checked by the sum at the start of the visit */
            fastmf_prefetch_span_w(Y + (int64_t)bag_items[e + TSVD_PF_BAG] * k, (size_t)k * sizeof(REAL));
        for (f = 0; f < k; ++f) y[f] = (REAL)(decay * (double)y[f] + g[f]);
    }
}

/* z += y (k elements) */
static FASTMF_INLINE void SFX(add_row)(double *restrict z, const REAL *restrict y, int64_t k)
{
    int64_t f;
    for (f = 0; f < k; ++f) z[f] += (double)y[f];
}

/* z += (y0 + y1) + (y2 + y3): four rows per pass over z */
static FASTMF_INLINE void SFX(add_rows4)(double *restrict z, const REAL *restrict y0, const REAL *restrict y1,
                                         const REAL *restrict y2, const REAL *restrict y3, int64_t k)
{
    int64_t f;
    for (f = 0; f < k; ++f) z[f] += ((double)y0[f] + (double)y1[f]) + ((double)y2[f] + (double)y3[f]);
}

/* bring in row j of Y when j is a valid row (a hint) */
static FASTMF_INLINE void SFX(prefetch_y)(const REAL *Y, int32_t j, int64_t n_items, int64_t k)
{
    if ((uint64_t)(int64_t)j < (uint64_t)n_items) fastmf_prefetch_span(Y + (int64_t)j * k, (size_t)k * sizeof(REAL));
}

/* element f of the effective user vector p~ = p_u + z_u (+ alpha_pu delta) (+ p_ut), in this order
 * (an off term is not added at all: adding 0.0 is not free) */
static FASTMF_INLINE double SFX(pe)(const REAL *restrict p, const double *restrict z, const REAL *restrict ap,
                                    const REAL *restrict pt, double delta, int64_t f, const int has_y,
                                    const int has_ap, const int has_pt)
{
    double v = (double)p[f];
    if (has_y) v += z[f];
    if (has_ap) v += (double)ap[f] * delta;
    if (has_pt) v += (double)pt[f];
    return v;
}
#define TSVD_PE(f) SFX(pe)(p, z, ap, pt, delta, (f), has_y, has_ap, has_pt)

/* q_i . p~, p~ formed on the fly (not stored): 16 partial sums in two chunks of 8 lanes, a fixed tree,
 * then the k mod 8 trailing products (the explicit lanes let the compiler vectorise the reduction
 * without reassociating anything itself) */
static FASTMF_INLINE double SFX(dot_eff)(const REAL *restrict q, const REAL *restrict p, const double *restrict z,
                                         const REAL *restrict ap, const REAL *restrict pt, double delta, int64_t k,
                                         const int has_y, const int has_ap, const int has_pt)
{
    double a0[8], a1[8], tail = 0.0;
    int64_t f = 0;
    int l;
    for (l = 0; l < 8; ++l) a0[l] = a1[l] = 0.0;
    for (; f + 16 <= k; f += 16)
        for (l = 0; l < 8; ++l) {
            a0[l] += (double)q[f + l] * TSVD_PE(f + l);
            a1[l] += (double)q[f + 8 + l] * TSVD_PE(f + 8 + l);
        }
    if (f + 8 <= k) {
        for (l = 0; l < 8; ++l) a0[l] += (double)q[f + l] * TSVD_PE(f + l);
        f += 8;
    }
    for (; f < k; ++f) tail += (double)q[f] * TSVD_PE(f);
    for (l = 0; l < 8; ++l) a0[l] += a1[l];
    for (l = 0; l < 4; ++l) a0[l] += a0[l + 4];
    for (l = 0; l < 2; ++l) a0[l] += a0[l + 2];
    return (a0[0] + a0[1]) + tail;
}

/* the per-factor steps of one rating in one pass, every value read before its step (p~ recomputed from
 * them, as dot_eff formed it): alpha_pu, p_ut, p_u, q_i, and the visit's z and g. Each step
 * x += eta (e v - lambda x) is evaluated as x = a x + b v with a = 1 - eta lambda (per group, once
 * per epoch) and b = eta e (per rating): two operations per element instead of three, as csrc/sgd.c
 * does; the twin evaluates the same form. */
typedef struct {
    double af, aap, apt, lrf, lrap, lrpt, ay;
} SFX(row_coefs);

static FASTMF_INLINE void SFX(update_rows)(REAL *restrict p, REAL *restrict q, double *restrict z,
                                           double *restrict g, REAL *restrict ap, REAL *restrict pt, int64_t k,
                                           const SFX(row_coefs) *c, double er, double delta, double ez, double eg,
                                           const int has_y, const int has_ap, const int has_pt)
{
    const double af = c->af, aap = c->aap, apt = c->apt, ay = c->ay;
    const double bf = c->lrf * er, bap = c->lrap * (er * delta), bpt = c->lrpt * er;
    int64_t f;
    for (f = 0; f < k; ++f) {
        const double pf = (double)p[f], qf = (double)q[f], pe = TSVD_PE(f);
        if (has_ap) ap[f] = (REAL)(aap * (double)ap[f] + bap * qf);
        if (has_pt) pt[f] = (REAL)(apt * (double)pt[f] + bpt * qf);
        p[f] = (REAL)(af * pf + bf * qf);
        q[f] = (REAL)(af * qf + bf * pe);
        if (has_y) {
            z[f] = ay * z[f] + ez * qf;
            g[f] = ay * g[f] + eg * qf;
        }
    }
}
#undef TSVD_PE

/* bring in the per-rating entries of rating position x of the order (its user, item, rating and time
 * features: a user's positions are visited in a shuffled order, so these lines are not streamed) */
static FASTMF_INLINE void SFX(prefetch_entries)(const fastmf_timesvd_problem *pb, const int64_t *order, int64_t x,
                                                int64_t n)
{
    if (x < n) {
        const int64_t q = order[x];
        if ((uint64_t)q < (uint64_t)pb->nnz) {
            FASTMF_PREFETCH(pb->users + q);
            FASTMF_PREFETCH(pb->items + q);
            FASTMF_PREFETCH((const REAL *)pb->ratings + q);
            if (pb->bins != NULL) FASTMF_PREFETCH(pb->bins + q);
            if (pb->days != NULL) FASTMF_PREFETCH(pb->days + q);
            if (pb->dev != NULL) FASTMF_PREFETCH(pb->dev + q);
        }
    }
}

/* bring in the item-side rows of rating position x of the order, when it is a valid rating (a hint) */
static FASTMF_INLINE void SFX(prefetch_rating)(const fastmf_timesvd_problem *pb, const int64_t *order, int64_t x,
                                               int64_t n)
{
    if (x < n) {
        const int64_t q = order[x];
        if ((uint64_t)q < (uint64_t)pb->nnz) {
            const int32_t i = pb->items[q];
            if ((uint64_t)(int64_t)i < (uint64_t)pb->n_items) {
                fastmf_prefetch_span_w((const REAL *)pb->Q + (int64_t)i * pb->n_factors,
                                       (size_t)pb->n_factors * sizeof(REAL));
                FASTMF_PREFETCH_W((const REAL *)pb->bi + i);
                if (pb->bit != NULL) {
                    const int32_t b = pb->bins[q];
                    if ((uint64_t)(int64_t)b < (uint64_t)pb->n_bins)
                        FASTMF_PREFETCH_W((const REAL *)pb->bit + (int64_t)i * pb->n_bins + b);
                }
            }
        }
    }
}

/* The epoch, for one combination of the per-factor terms (has_ap: alpha_pu; has_pt: p_ut), compile-time
 * constants in each copy so that the row loops hold no branch. */
static FASTMF_INLINE fastmf_status SFX(epoch)(const fastmf_timesvd_problem *pb, const int64_t *order, int64_t n,
                                              double *scratch, double *sse_out, fastmf_error *err,
                                              const int has_ap, const int has_pt)
{
    const int64_t k = pb->n_factors, nnz = pb->nnz, nb = pb->n_bins, nd = pb->n_days;
    const int32_t *users = pb->users, *items = pb->items;
    const REAL *ratings = (const REAL *)pb->ratings;
    REAL *P = (REAL *)pb->P, *Q = (REAL *)pb->Q, *Y = (REAL *)pb->Y;
    REAL *bu = (REAL *)pb->bu, *bi = (REAL *)pb->bi, *au = (REAL *)pb->au, *bit = (REAL *)pb->bit;
    REAL *but = (REAL *)pb->but, *cu = (REAL *)pb->cu, *cut = (REAL *)pb->cut;
    REAL *AP = (REAL *)pb->AP, *PT = (REAL *)pb->PT;
    const int need_day = but != NULL || (cu != NULL && cut != NULL) || PT != NULL;
    const int need_dev = au != NULL || AP != NULL;
    const double *lr = pb->lr, *rg = pb->reg;
    const double lrb = lr[FASTMF_TSVD_G_BIAS], rgb = rg[FASTMF_TSVD_G_BIAS];
    const double lry = lr[FASTMF_TSVD_G_IMPLICIT], ay = 1.0 - lry * rg[FASTMF_TSVD_G_IMPLICIT];
    SFX(row_coefs) rc;
    double *z = scratch, *g = scratch + k;
    double sse = 0.0;
    int64_t t = 0, f;

    rc.lrf = lr[FASTMF_TSVD_G_FACTORS]; rc.af = 1.0 - rc.lrf * rg[FASTMF_TSVD_G_FACTORS];
    rc.lrap = lr[FASTMF_TSVD_G_FACTOR_DRIFT]; rc.aap = 1.0 - rc.lrap * rg[FASTMF_TSVD_G_FACTOR_DRIFT];
    rc.lrpt = lr[FASTMF_TSVD_G_DAY_FACTORS]; rc.apt = 1.0 - rc.lrpt * rg[FASTMF_TSVD_G_DAY_FACTORS];
    rc.ay = ay;
    for (f = 0; f < TSVD_PF_ENTRIES && f < n; ++f) SFX(prefetch_entries)(pb, order, f, n);
    for (f = 0; f < TSVD_PF_RATING && f < n; ++f) SFX(prefetch_rating)(pb, order, f, n);

    while (t < n) {
        int64_t pos = order[t], lo, hi, e, run_end;
        int32_t u;
        double w, s, decay = 1.0;
        if (fastmf_interrupted(pb->interrupt)) {
            *sse_out = sse;
            return fastmf_fail(err, FASTMF_ERR_INTERRUPTED, t, -1);
        }
        if ((uint64_t)pos >= (uint64_t)nnz) return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_TSVD_BAD_ORDER);
        u = users[pos];
        if ((uint64_t)(int64_t)u >= (uint64_t)pb->n_users)
            return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_TSVD_BAD_USER);
        lo = pb->bag_ptr[u];
        hi = pb->bag_ptr[u + 1];
        if (lo < 0 || hi < lo || hi > pb->bag_ptr[pb->n_users])
            return fastmf_fail(err, FASTMF_ERR_INDEX, u, FASTMF_TSVD_BAD_BAG);
        w = pb->bag_w[u];
        s = w * w * (double)(hi - lo);
        /* z = w_u sum_{j in N(u)} y_j, once per visit (the bag's rows prefetched a few entries ahead) */
        for (f = 0; f < k; ++f) { z[f] = 0.0; g[f] = 0.0; }
        for (e = lo; e < hi && e < lo + TSVD_PF_BAG; ++e) SFX(prefetch_y)(Y, pb->bag_items[e], pb->n_items, k);
        for (e = lo; e < hi; e += 4) {
            const int m = hi - e < 4 ? (int)(hi - e) : 4;
            int r;
            for (r = 0; r < m; ++r) {
                if ((uint64_t)(int64_t)pb->bag_items[e + r] >= (uint64_t)pb->n_items)
                    return fastmf_fail(err, FASTMF_ERR_INDEX, e + r, FASTMF_TSVD_BAD_BAG);
                if (e + r + TSVD_PF_BAG < hi) SFX(prefetch_y)(Y, pb->bag_items[e + r + TSVD_PF_BAG], pb->n_items, k);
            }
            if (m == 4)
                SFX(add_rows4)(z, Y + (int64_t)pb->bag_items[e] * k, Y + (int64_t)pb->bag_items[e + 1] * k,
                               Y + (int64_t)pb->bag_items[e + 2] * k, Y + (int64_t)pb->bag_items[e + 3] * k, k);
            else
                for (r = 0; r < m; ++r) SFX(add_row)(z, Y + (int64_t)pb->bag_items[e + r] * k, k);
        }
        for (f = 0; f < k; ++f) z[f] *= w;
        /* the visit: consecutive positions of user u */
        for (run_end = t; run_end < n; ++run_end) {
            const int64_t q = order[run_end];
            int32_t i;
            int64_t d = 0, b = 0;
            int bad = -1;
            if ((uint64_t)q >= (uint64_t)nnz) {
                if (run_end == t) return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_TSVD_BAD_ORDER);
                break;  /* reported when the next visit starts, after this one's y update */
            }
            if (users[q] != u) break;
            SFX(prefetch_entries)(pb, order, run_end + TSVD_PF_ENTRIES, n);
            SFX(prefetch_rating)(pb, order, run_end + TSVD_PF_RATING, n);
            i = items[q];
            if ((uint64_t)(int64_t)i >= (uint64_t)pb->n_items) bad = FASTMF_TSVD_BAD_ITEM;
            if (bad < 0 && bit != NULL) {
                b = pb->bins[q];
                if ((uint64_t)b >= (uint64_t)nb) bad = FASTMF_TSVD_BAD_BIN;
            }
            if (bad < 0 && need_day) {
                d = pb->days[q];
                if ((uint64_t)d >= (uint64_t)nd) bad = FASTMF_TSVD_BAD_DAY;
            }
            if (bad >= 0) {  /* keep the updates made so far (y included), then fail */
                if (s != 0.0) SFX(flush_y)(Y, pb->bag_items, lo, hi, k, decay, g);
                *sse_out = sse;
                return fastmf_fail(err, FASTMF_ERR_INDEX, run_end, bad);
            }
            {
                REAL *p = P + (int64_t)u * k, *qi = Q + (int64_t)i * k;
                REAL *ap = has_ap ? AP + (int64_t)u * k : NULL;
                REAL *pt = has_pt ? PT + d * k : NULL;
                const double delta = need_dev ? pb->dev[q] : 0.0;
                const double b_u = (double)bu[u], b_i = (double)bi[i];
                const double a_u = au != NULL ? (double)au[u] : 0.0;
                const double b_ut = but != NULL ? (double)but[d] : 0.0;
                const double b_ib = bit != NULL ? (double)bit[(int64_t)i * nb + b] : 0.0;
                const double c_u = cu != NULL ? (double)cu[u] : 1.0;
                const double c_ut = (cu != NULL && cut != NULL) ? (double)cut[d] : 0.0;
                const double sb = b_i + b_ib, cc = c_u + c_ut;
                const double dot = s != 0.0 ? SFX(dot_eff)(qi, p, z, ap, pt, delta, k, 1, has_ap, has_pt)
                                            : SFX(dot_eff)(qi, p, z, ap, pt, delta, k, 0, has_ap, has_pt);
                const double er = (double)ratings[q] - ((((pb->mu + b_u) + a_u * delta) + b_ut) + sb * cc + dot);
                sse += er * er;
                bu[u] = (REAL)(b_u + lrb * (er - rgb * b_u));
                bi[i] = (REAL)(b_i + lrb * (er * cc - rgb * b_i));
                if (au != NULL)
                    au[u] = (REAL)(a_u + lr[FASTMF_TSVD_G_DRIFT] * (er * delta - rg[FASTMF_TSVD_G_DRIFT] * a_u));
                if (but != NULL)
                    but[d] = (REAL)(b_ut + lr[FASTMF_TSVD_G_DAY_BIAS] * (er - rg[FASTMF_TSVD_G_DAY_BIAS] * b_ut));
                if (bit != NULL)
                    bit[(int64_t)i * nb + b] = (REAL)(b_ib + lr[FASTMF_TSVD_G_BIN]
                                                      * (er * cc - rg[FASTMF_TSVD_G_BIN] * b_ib));
                if (cu != NULL) {
                    cu[u] = (REAL)(c_u + lr[FASTMF_TSVD_G_SCALE] * (er * sb - rg[FASTMF_TSVD_G_SCALE] * (c_u - 1.0)));
                    if (cut != NULL)
                        cut[d] = (REAL)(c_ut + lr[FASTMF_TSVD_G_DAY_SCALE]
                                        * (er * sb - rg[FASTMF_TSVD_G_DAY_SCALE] * c_ut));
                }
                if (s != 0.0)
                    SFX(update_rows)(p, qi, z, g, ap, pt, k, &rc, er, delta, lry * er * s, lry * er * w, 1, has_ap,
                                     has_pt);
                else
                    SFX(update_rows)(p, qi, z, g, ap, pt, k, &rc, er, delta, 0.0, 0.0, 0, has_ap, has_pt);
            }
            if (s != 0.0) decay *= ay;
        }
        if (s != 0.0) SFX(flush_y)(Y, pb->bag_items, lo, hi, k, decay, g);
        if (!isfinite(sse)) {
            *sse_out = sse;
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, run_end - 1, FASTMF_TSVD_BAD_LOSS);
        }
        t = run_end;
    }
    *sse_out = sse;
    return FASTMF_OK;
}

/* the epoch for the problem's per-factor terms (one copy per combination), per instruction set */
FASTMF_CLONES static fastmf_status SFX(serial)(const fastmf_timesvd_problem *pb, const int64_t *order, int64_t n,
                                               double *scratch, double *sse_out, fastmf_error *err)
{
    if (pb->AP != NULL)
        return pb->PT != NULL ? SFX(epoch)(pb, order, n, scratch, sse_out, err, 1, 1)
                              : SFX(epoch)(pb, order, n, scratch, sse_out, err, 1, 0);
    return pb->PT != NULL ? SFX(epoch)(pb, order, n, scratch, sse_out, err, 0, 1)
                          : SFX(epoch)(pb, order, n, scratch, sse_out, err, 0, 0);
}

#endif /* FASTMF_TIMESVD_TEMPLATE_PASS */
