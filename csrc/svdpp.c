/* SVD++ (Koren, "Factorization meets the neighborhood", KDD 2008) trained by SGD, with the implicit
 * sum accumulated per user instead of recomputed per rating.
 *
 * Model. r_hat_ui = mu + b_u + b_i + q_i . (p_u + z_u),  z_u = w_u sum_{j in N(u)} y_j,
 * w_u = |N(u)|^-1/2 (0 for an empty bag). Objective (the one per-rating SGD minimises; the
 * penalties sit inside the sum over ratings, as in Koren 2008, eq. 15, and in Surprise's SVDpp):
 *     sum_{(u,i) in R} [ e_ui^2 + reg (|p_u|^2 + |q_i|^2) + reg_bias (b_u^2 + b_i^2)
 *                        + reg_implicit sum_{j in N(u)} |y_j|^2 ],      e_ui = r_ui - r_hat_ui.
 * Per-rating SGD (what fastmf.reference.svdpp_epoch does literally, O(|N(u)| k) per rating), with
 * eta = lr, eta_b = lr_bias, eta_y = lr_implicit and p_u, q_i taken before the step:
 *     b_u += eta_b (e - reg_bias b_u);        b_i += eta_b (e - reg_bias b_i)
 *     p_u += eta (e q_i - reg p_u);           q_i += eta (e (p_u + z_u) - reg q_i)
 *     y_j += eta_y (e w_u q_i - reg_implicit y_j)   for every j in N(u).
 * Per-user accumulation (this file, O(k) per rating). While one user's ratings are visited, every
 * y_j of N(u) receives the same update, so with a = 1 - eta_y reg_implicit, after the visit's n-th
 * rating  y_j = a^n y_j0 + g_n  with  g_n = a g_{n-1} + eta_y e_n w_u q_{i_n}  (g_0 = 0), and
 * z_u = w_u sum y_j evolves as  z <- a z + eta_y e s_u q_i  with s_u = w_u^2 |N(u)| (1 for the
 * default weights). So a visit computes z_u once (O(|N(u)| k)), runs its ratings with z and g
 * updated in O(k) each, and writes y_j = a^n y_j + g once per j at the end: the same numbers as the
 * per-rating rule in exact arithmetic, for any order (a run of consecutive ratings of one user is a
 * visit; runs of length 1 are the per-rating rule itself). Arithmetic is in double (z, g, the
 * products); P, Q, Y, bu, bi are stored in their element type (float or double).
 *
 * Blocked epoch. The LIBMF plan and dataflow schedule of blocks.c: blocks that run at once share
 * no user and no item. Z[u] and G[u] are rows of caller-owned n_users x k arrays (the "user-owned
 * sums"): Z[u] starts the sweep as w_u sum y_j and follows u's own ratings as above, G[u] collects
 * u's y gradient; Y is read by no block, and the caller applies the sweep's y update at its end
 * (y_j <- a^{c_j} y_j + gamma_j sum_u G[u], gamma_j = (1 - a^{c_j}) / (c_j (1 - a)): the c_j
 * per-rating steps with the decay of an average step). This is SVD++ with the y step delayed to
 * the end of the sweep (the other rows move per rating); it is deterministic and the same for every
 * n_threads, bit for bit, since no two running blocks share a row and the block losses are added
 * in schedule order. The delay costs accuracy (ml-100k u1, see fastmf.models.svdpp).
 *
 * Invariants. All arrays C-contiguous; P, Q, Y, bu, bi (and Z, G) do not overlap. Indices are
 * checked as read (order, users, items, bag items): a bad entry stops the epoch with
 * FASTMF_ERR_INDEX before its update, never an out-of-bounds access. Ownership: every buffer is the
 * caller's; the serial epoch allocates 2k doubles of scratch and frees them on every path. No
 * globals, no printing, no hidden randomness (orders come from the caller or from (seed, epoch)).
 * Interrupts: the serial epoch reads the flag before every user visit, the blocked one before every
 * block. Divergence: a non-finite running loss stops the epoch; after it, P, Q, Y, bu, bi are
 * scanned. NumPy twins: fastmf.reference.svdpp_epoch (per-rating rule), svdpp_epoch_delayed (the
 * blocked rule over a given order), svdpp_user_order.
 */
#ifndef FASTMF_SVDPP_TEMPLATE_PASS

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "svdpp.h"
#include "blocks.h"
#include "rng.h"

typedef struct {
    double lr, reg, lrb, regb, lry, ay, mu;
} coefs;

typedef struct {
    const fastmf_svdpp_problem *pb;
    double *Z, *G;
} blocked_ctx;

#define FASTMF_SVDPP_TEMPLATE_PASS
#define REAL float
#define SFX(name) name##_f32
#include "svdpp.c"
#undef REAL
#undef SFX
#define REAL double
#define SFX(name) name##_f64
#include "svdpp.c"
#undef REAL
#undef SFX
#undef FASTMF_SVDPP_TEMPLATE_PASS

static coefs make_coefs(const fastmf_svdpp_problem *pb)
{
    coefs c;
    c.lr = pb->lr; c.reg = pb->reg; c.lrb = pb->lr_bias; c.regb = pb->reg_bias;
    c.lry = pb->lr_implicit; c.ay = 1.0 - pb->lr_implicit * pb->reg_implicit; c.mu = pb->mu;
    return c;
}

static int problem_ok(const fastmf_svdpp_problem *pb)
{
    if (pb == NULL) return 0;
    if (pb->dtype != FASTMF_FLOAT32 && pb->dtype != FASTMF_FLOAT64) return 0;
    if (pb->nnz < 0 || pb->n_users < 0 || pb->n_items < 0 || pb->n_factors < 0) return 0;
    if (pb->nnz > 0 && (pb->users == NULL || pb->items == NULL || pb->ratings == NULL)) return 0;
    if (pb->n_factors > 0 && ((pb->n_users > 0 && pb->P == NULL)
                              || (pb->n_items > 0 && (pb->Q == NULL || pb->Y == NULL))))
        return 0;
    if ((pb->n_users > 0 && (pb->bu == NULL || pb->bag_w == NULL)) || (pb->n_items > 0 && pb->bi == NULL))
        return 0;
    if (pb->bag_ptr == NULL) return 0;
    if (pb->bag_ptr[pb->n_users] > 0 && pb->bag_items == NULL) return 0;
    return 1;
}

static fastmf_status check_model(const fastmf_svdpp_problem *pb, fastmf_error *err)
{
    const int f64 = pb->dtype == FASTMF_FLOAT64;
    const int64_t k = pb->n_factors;
    int64_t j;
    if ((j = f64 ? bad_row_f64(pb->P, pb->n_users, k) : bad_row_f32(pb->P, pb->n_users, k)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SVDPP_BAD_P);
    if ((j = f64 ? bad_row_f64(pb->Q, pb->n_items, k) : bad_row_f32(pb->Q, pb->n_items, k)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SVDPP_BAD_Q);
    if ((j = f64 ? bad_row_f64(pb->Y, pb->n_items, k) : bad_row_f32(pb->Y, pb->n_items, k)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SVDPP_BAD_Y);
    if ((j = f64 ? bad_row_f64(pb->bu, pb->n_users, 1) : bad_row_f32(pb->bu, pb->n_users, 1)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SVDPP_BAD_BU);
    if ((j = f64 ? bad_row_f64(pb->bi, pb->n_items, 1) : bad_row_f32(pb->bi, pb->n_items, 1)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SVDPP_BAD_BI);
    return FASTMF_OK;
}

fastmf_status fastmf_svdpp_epoch(const fastmf_svdpp_problem *pb, const int64_t *order, int64_t n_order,
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
    {
        const coefs c = make_coefs(pb);
        st = pb->dtype == FASTMF_FLOAT64 ? serial_f64(pb, &c, order, n_order, scratch, sse, err)
                                         : serial_f32(pb, &c, order, n_order, scratch, sse, err);
    }
    free(scratch);
    if (st != FASTMF_OK) return st;
    return check_model(pb, err);
}

fastmf_status fastmf_svdpp_user_order(const int64_t *indptr, int64_t n_users, uint64_t seed,
                                      uint64_t epoch, int64_t *out)
{
    int64_t *users = (int64_t *)malloc((size_t)(n_users > 0 ? n_users : 1) * sizeof(int64_t));
    int64_t u, t, pos = 0;
    if (users == NULL) return FASTMF_ERR_NOMEM;
    for (u = 0; u < n_users; ++u) users[u] = u;
    fastmf_shuffle(users, n_users, seed, epoch);
    for (t = 0; t < n_users; ++t) {
        const int64_t v = users[t], lo = indptr[v], n = indptr[v + 1] - lo;
        fastmf_rng g;
        int64_t e;
        for (e = 0; e < n; ++e) out[pos + e] = lo + e;
        fastmf_rng_seed(&g, seed, epoch, (uint64_t)v + 1);
        fastmf_fisher_yates(out + pos, n, &g);
        pos += n;
    }
    free(users);
    return FASTMF_OK;
}

static fastmf_status block_update(void *ctxv, const int64_t *order, int64_t n, const fastmf_block *blk,
                                  double *loss, fastmf_error *err)
{
    const blocked_ctx *ctx = (const blocked_ctx *)ctxv;
    const coefs c = make_coefs(ctx->pb);
    if (fastmf_interrupted(ctx->pb->interrupt)) {  /* between blocks: the scheduler starts no other */
        *loss = 0.0;
        return fastmf_fail(err, FASTMF_ERR_INTERRUPTED, -1, -1);
    }
    return ctx->pb->dtype == FASTMF_FLOAT64 ? block_f64(ctx->pb, &c, ctx->Z, ctx->G, order, n, blk, loss, err)
                                            : block_f32(ctx->pb, &c, ctx->Z, ctx->G, order, n, blk, loss, err);
}

fastmf_status fastmf_svdpp_epoch_blocked(const fastmf_svdpp_problem *pb, double *Z, double *G,
                                         int n_blocks, const int32_t *user_block,
                                         const int32_t *item_block, const int64_t *block_ptr,
                                         const int64_t *block_order, int64_t *work, uint64_t seed,
                                         uint64_t epoch, int n_threads, double *sse, fastmf_error *err)
{
    blocked_ctx ctx;
    fastmf_status st;
    *sse = 0.0;
    fastmf_error_clear(err);
    if (!problem_ok(pb) || n_blocks < 1 || (pb->n_users > 0 && pb->n_factors > 0 && (Z == NULL || G == NULL)))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    ctx.pb = pb; ctx.Z = Z; ctx.G = G;
    st = fastmf_blocks_run(n_blocks, pb->nnz, user_block, pb->n_users, item_block, pb->n_items,
                           block_ptr, block_order, work, seed, epoch, n_threads, block_update, &ctx,
                           sse, err);
    if (st != FASTMF_OK) return st;
    if (!isfinite(*sse)) return fastmf_fail(err, FASTMF_ERR_DIVERGED, pb->nnz - 1, FASTMF_SVDPP_BAD_LOSS);
    return check_model(pb, err);
}

#else /* ------------------------------------------------------------ typed kernels (templated) */

/* first row of an n x k matrix holding a non-finite value, or -1 */
static int64_t SFX(bad_row)(const void *xv, int64_t n, int64_t k)
{
    const REAL *x = (const REAL *)xv;
    int64_t j;
    for (j = 0; j < n * k; ++j)
        if (!isfinite(x[j])) return j / k;
    return -1;
}

/* The update of one rating r of user u (rows p, bu_u) for item i (rows q, bi_i), with the user's
 * running implicit sum z and gradient g (s = w_u^2 |N(u)|, w = w_u; s = 0: empty bag, z = 0, no y
 * update). Returns e, measured before the update. */
static inline double SFX(rate)(REAL *restrict p, REAL *restrict q, double *restrict z,
                               double *restrict g, REAL *bu_u, REAL *bi_i, double r, int64_t k,
                               const coefs *c, double s, double w)
{
    double dot = 0.0, e, b_u = (double)*bu_u, b_i = (double)*bi_i;
    int64_t f;
    for (f = 0; f < k; ++f) dot += (double)q[f] * ((double)p[f] + z[f]);
    e = r - (((c->mu + b_u) + b_i) + dot);
    *bu_u = (REAL)(b_u + c->lrb * (e - c->regb * b_u));
    *bi_i = (REAL)(b_i + c->lrb * (e - c->regb * b_i));
    if (s != 0.0) {
        const double ez = c->lry * e * s, eg = c->lry * e * w;
        for (f = 0; f < k; ++f) {
            const double pf = (double)p[f], qf = (double)q[f], zf = z[f];
            p[f] = (REAL)(pf + c->lr * (e * qf - c->reg * pf));
            q[f] = (REAL)(qf + c->lr * (e * (pf + zf) - c->reg * qf));
            z[f] = c->ay * zf + ez * qf;
            g[f] = c->ay * g[f] + eg * qf;
        }
    } else {
        for (f = 0; f < k; ++f) {
            const double pf = (double)p[f], qf = (double)q[f];
            p[f] = (REAL)(pf + c->lr * (e * qf - c->reg * pf));
            q[f] = (REAL)(qf + c->lr * (e * pf - c->reg * qf));
        }
    }
    return e;
}

/* s_u = w_u^2 |N(u)| of a bag */
static inline double SFX(bag_scale)(const fastmf_svdpp_problem *pb, int64_t u)
{
    const double w = pb->bag_w[u];
    return w * w * (double)(pb->bag_ptr[u + 1] - pb->bag_ptr[u]);
}

static fastmf_status SFX(serial)(const fastmf_svdpp_problem *pb, const coefs *c, const int64_t *order,
                                 int64_t n, double *scratch, double *sse_out, fastmf_error *err)
{
    const int64_t k = pb->n_factors, nnz = pb->nnz;
    const int32_t *users = pb->users, *items = pb->items;
    const REAL *ratings = (const REAL *)pb->ratings;
    REAL *P = (REAL *)pb->P, *Q = (REAL *)pb->Q, *Y = (REAL *)pb->Y;
    REAL *bu = (REAL *)pb->bu, *bi = (REAL *)pb->bi;
    double *z = scratch, *g = scratch + k;
    double sse = 0.0;
    int64_t t = 0, f;

    while (t < n) {
        int64_t pos = order[t], lo, hi, e, run_end, j;
        int32_t u;
        double w, s, decay = 1.0;
        if (fastmf_interrupted(pb->interrupt)) {
            *sse_out = sse;
            return fastmf_fail(err, FASTMF_ERR_INTERRUPTED, t, -1);
        }
        if ((uint64_t)pos >= (uint64_t)nnz) return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SVDPP_BAD_ORDER);
        u = users[pos];
        if ((uint64_t)(int64_t)u >= (uint64_t)pb->n_users)
            return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SVDPP_BAD_USER);
        lo = pb->bag_ptr[u];
        hi = pb->bag_ptr[u + 1];
        if (lo < 0 || hi < lo || hi > pb->bag_ptr[pb->n_users])
            return fastmf_fail(err, FASTMF_ERR_INDEX, u, FASTMF_SVDPP_BAD_BAG);
        w = pb->bag_w[u];
        s = SFX(bag_scale)(pb, u);
        /* z = w_u sum_{j in N(u)} y_j, once per visit */
        for (f = 0; f < k; ++f) { z[f] = 0.0; g[f] = 0.0; }
        for (e = lo; e < hi; ++e) {
            const int32_t jj = pb->bag_items[e];
            const REAL *y;
            if ((uint64_t)(int64_t)jj >= (uint64_t)pb->n_items)
                return fastmf_fail(err, FASTMF_ERR_INDEX, e, FASTMF_SVDPP_BAD_BAG);
            y = Y + (int64_t)jj * k;
            for (f = 0; f < k; ++f) z[f] += (double)y[f];
        }
        for (f = 0; f < k; ++f) z[f] *= w;
        /* the visit: consecutive positions of user u */
        for (run_end = t; run_end < n; ++run_end) {
            int64_t q = order[run_end];
            int32_t i;
            if ((uint64_t)q >= (uint64_t)nnz) {
                if (run_end == t) return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SVDPP_BAD_ORDER);
                break;  /* reported when the next visit starts, after this one's y update */
            }
            if (users[q] != u) break;
            i = items[q];
            if ((uint64_t)(int64_t)i >= (uint64_t)pb->n_items) {
                /* keep the updates made so far (y included), then fail */
                for (e = lo; e < hi; ++e) {
                    REAL *y = Y + (int64_t)pb->bag_items[e] * k;
                    for (f = 0; f < k; ++f) y[f] = (REAL)(decay * (double)y[f] + g[f]);
                }
                *sse_out = sse;
                return fastmf_fail(err, FASTMF_ERR_INDEX, run_end, FASTMF_SVDPP_BAD_ITEM);
            }
            {
                const double er = SFX(rate)(P + (int64_t)u * k, Q + (int64_t)i * k, z, g, bu + u, bi + i,
                                            (double)ratings[q], k, c, s, w);
                sse += er * er;
            }
            if (s != 0.0) decay *= c->ay;
        }
        if (s != 0.0) {  /* y_j = a^n y_j + g, once per visit */
            for (e = lo; e < hi; ++e) {
                REAL *y = Y + (int64_t)pb->bag_items[e] * k;
                for (j = 0; j < k; ++j) y[j] = (REAL)(decay * (double)y[j] + g[j]);
            }
        }
        if (!isfinite(sse)) {
            *sse_out = sse;
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, run_end - 1, FASTMF_SVDPP_BAD_LOSS);
        }
        t = run_end;
    }
    *sse_out = sse;
    return FASTMF_OK;
}

/* the blocked rule over one block's shuffled ratings: user-owned Z[u], G[u]; Y untouched */
static fastmf_status SFX(block)(const fastmf_svdpp_problem *pb, const coefs *c, double *Z, double *G,
                                const int64_t *order, int64_t n, const fastmf_block *blk, double *loss,
                                fastmf_error *err)
{
    const int64_t k = pb->n_factors, nnz = pb->nnz;
    const int32_t *users = pb->users, *items = pb->items;
    const REAL *ratings = (const REAL *)pb->ratings;
    REAL *P = (REAL *)pb->P, *Q = (REAL *)pb->Q, *bu = (REAL *)pb->bu, *bi = (REAL *)pb->bi;
    double sse = 0.0;
    int64_t t;
    *loss = 0.0;
    for (t = 0; t < n; ++t) {
        const int64_t pos = order[t];
        int32_t u, i;
        if ((uint64_t)pos >= (uint64_t)nnz) return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SVDPP_BAD_ORDER);
        u = users[pos];
        i = items[pos];
        if ((uint64_t)(int64_t)u >= (uint64_t)pb->n_users)
            return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SVDPP_BAD_USER);
        if ((uint64_t)(int64_t)i >= (uint64_t)pb->n_items)
            return fastmf_fail(err, FASTMF_ERR_INDEX, t, FASTMF_SVDPP_BAD_ITEM);
        if (blk->ranges ? (u < blk->ulo || u >= blk->uhi || i < blk->ilo || i >= blk->ihi)
                        : (blk->ublk[u] != blk->rb || blk->iblk[i] != blk->cb))
            return fastmf_fail(err, FASTMF_ERR_VALUE, t, FASTMF_SVDPP_BAD_PLAN);
        {
            const double er = SFX(rate)(P + (int64_t)u * k, Q + (int64_t)i * k, Z + (int64_t)u * k,
                                        G + (int64_t)u * k, bu + u, bi + i, (double)ratings[pos], k, c,
                                        SFX(bag_scale)(pb, u), pb->bag_w[u]);
            sse += er * er;
        }
    }
    *loss = sse;
    return FASTMF_OK;
}

#endif /* FASTMF_SVDPP_TEMPLATE_PASS */
