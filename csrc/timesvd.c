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
 * Each per-factor loop handles one term (no branch inside: they vectorise), the dot product is an
 * `omp simd` reduction, and the epoch is compiled per instruction set (FASTMF_CLONES), so the
 * rounding differs from the twin's (and between CPU levels) in the last bits only.
 *
 * Schedule. Serial only: the caller's order (fastmf_svdpp_user_order: users shuffled, each user's
 * ratings shuffled), so the model is the same for every thread count by construction.
 *
 * Invariants. All arrays C-contiguous and non-overlapping. Indices are checked as read (order,
 * users, items, bins, days, bag items): a bad entry stops the epoch with FASTMF_ERR_INDEX before
 * its update, never an out-of-bounds access (a failing visit still writes its y update). Every
 * buffer is the caller's; the epoch allocates 3k doubles of scratch and frees them on every path.
 * No globals, no printing, no randomness. The interrupt flag is read before every user visit. A
 * non-finite running loss stops the epoch; after it every model array is scanned. NumPy twin:
 * fastmf.reference.timesvd_epoch (the literal per-rating rule).
 */
#ifndef FASTMF_TIMESVD_TEMPLATE_PASS

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "timesvd.h"

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
        if (f64 ? !all_finite_f64(arrays[a], sizes[a]) : !all_finite_f32(arrays[a], sizes[a]))
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
    scratch = (double *)malloc((size_t)(3 * pb->n_factors + 1) * sizeof(double));
    if (scratch == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    st = pb->dtype == FASTMF_FLOAT64 ? serial_f64(pb, order, n_order, scratch, sse, err)
                                     : serial_f32(pb, order, n_order, scratch, sse, err);
    free(scratch);
    if (st != FASTMF_OK) return st;
    return check_model(pb, err);
}

#else /* ------------------------------------------------------------ typed kernels (templated) */

static int SFX(all_finite)(const void *xv, int64_t n)
{
    const REAL *x = (const REAL *)xv;
    int64_t j;
    for (j = 0; j < n; ++j)
        if (!isfinite(x[j])) return 0;
    return 1;
}

/* y_j = a^n y_j + g for every j of the bag [lo, hi) */
static void SFX(flush_y)(REAL *Y, const int32_t *bag_items, int64_t lo, int64_t hi, int64_t k,
                         double decay, const double *g)
{
    int64_t e, f;
    for (e = lo; e < hi; ++e) {
        REAL *y = Y + (int64_t)bag_items[e] * k;
        for (f = 0; f < k; ++f) y[f] = (REAL)(decay * (double)y[f] + g[f]);
    }
}

FASTMF_CLONES static fastmf_status SFX(serial)(const fastmf_timesvd_problem *pb, const int64_t *order, int64_t n,
                                 double *scratch, double *sse_out, fastmf_error *err)
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
    const double lrf = lr[FASTMF_TSVD_G_FACTORS], rgf = rg[FASTMF_TSVD_G_FACTORS];
    const double lrb = lr[FASTMF_TSVD_G_BIAS], rgb = rg[FASTMF_TSVD_G_BIAS];
    const double lry = lr[FASTMF_TSVD_G_IMPLICIT], ay = 1.0 - lry * rg[FASTMF_TSVD_G_IMPLICIT];
    const double lrap = lr[FASTMF_TSVD_G_FACTOR_DRIFT], rgap = rg[FASTMF_TSVD_G_FACTOR_DRIFT];
    const double lrpt = lr[FASTMF_TSVD_G_DAY_FACTORS], rgpt = rg[FASTMF_TSVD_G_DAY_FACTORS];
    double *z = scratch, *g = scratch + k, *pe = scratch + 2 * k;
    double sse = 0.0;
    int64_t t = 0, f;

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
        /* z = w_u sum_{j in N(u)} y_j, once per visit */
        for (f = 0; f < k; ++f) { z[f] = 0.0; g[f] = 0.0; }
        for (e = lo; e < hi; ++e) {
            const int32_t jj = pb->bag_items[e];
            const REAL *y;
            if ((uint64_t)(int64_t)jj >= (uint64_t)pb->n_items)
                return fastmf_fail(err, FASTMF_ERR_INDEX, e, FASTMF_TSVD_BAD_BAG);
            y = Y + (int64_t)jj * k;
            for (f = 0; f < k; ++f) z[f] += (double)y[f];
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
                REAL *restrict p = P + (int64_t)u * k, *restrict qi = Q + (int64_t)i * k;
                REAL *restrict ap = AP != NULL ? AP + (int64_t)u * k : NULL;
                REAL *restrict pt = PT != NULL ? PT + d * k : NULL;
                double *restrict zz = z, *restrict gg = g, *restrict pp = pe;
                const double delta = need_dev ? pb->dev[q] : 0.0;
                const double b_u = (double)bu[u], b_i = (double)bi[i];
                const double a_u = au != NULL ? (double)au[u] : 0.0;
                const double b_ut = but != NULL ? (double)but[d] : 0.0;
                const double b_ib = bit != NULL ? (double)bit[(int64_t)i * nb + b] : 0.0;
                const double c_u = cu != NULL ? (double)cu[u] : 1.0;
                const double c_ut = (cu != NULL && cut != NULL) ? (double)cut[d] : 0.0;
                const double sb = b_i + b_ib, cc = c_u + c_ut;
                double dot = 0.0, er;
                /* p~ = p_u + z_u (+ alpha_pu delta) (+ p_ut), then q_i . p~ (one loop per term: no
                 * branch inside a loop, so each one vectorises) */
                for (f = 0; f < k; ++f) pp[f] = (double)p[f] + zz[f];
                if (ap != NULL)
                    for (f = 0; f < k; ++f) pp[f] += (double)ap[f] * delta;
                if (pt != NULL)
                    for (f = 0; f < k; ++f) pp[f] += (double)pt[f];
#pragma omp simd reduction(+:dot)
                for (f = 0; f < k; ++f) dot += (double)qi[f] * pp[f];
                er = (double)ratings[q] - ((((pb->mu + b_u) + a_u * delta) + b_ut) + sb * cc + dot);
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
                {
                    const double ez = lry * er * s, eg = lry * er * w, ed = er * delta;
                    /* the drift and day rows read q_i before its step */
                    if (ap != NULL)
                        for (f = 0; f < k; ++f)
                            ap[f] = (REAL)((double)ap[f] + lrap * (ed * (double)qi[f] - rgap * (double)ap[f]));
                    if (pt != NULL)
                        for (f = 0; f < k; ++f)
                            pt[f] = (REAL)((double)pt[f] + lrpt * (er * (double)qi[f] - rgpt * (double)pt[f]));
                    if (s != 0.0) {
                        for (f = 0; f < k; ++f) {
                            const double pf = (double)p[f], qf = (double)qi[f];
                            p[f] = (REAL)(pf + lrf * (er * qf - rgf * pf));
                            qi[f] = (REAL)(qf + lrf * (er * pp[f] - rgf * qf));
                            zz[f] = ay * zz[f] + ez * qf;
                            gg[f] = ay * gg[f] + eg * qf;
                        }
                    } else {
                        for (f = 0; f < k; ++f) {
                            const double pf = (double)p[f], qf = (double)qi[f];
                            p[f] = (REAL)(pf + lrf * (er * qf - rgf * pf));
                            qi[f] = (REAL)(qf + lrf * (er * pp[f] - rgf * qf));
                        }
                    }
                }
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

#endif /* FASTMF_TIMESVD_TEMPLATE_PASS */
