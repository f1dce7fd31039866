/* SGD epochs for SVD++ (Koren, KDD 2008): the update rule, its per-user accumulation, and the
 * blocked parallel epoch. The math, the invariants and the thread-safety rules are at the top of
 * svdpp.c. All arrays are C-contiguous and owned by the caller; the model is updated in place.
 *
 * A problem holds the ratings (users, items, ratings), the model (P, Q, Y, bu, bi: n_users x k,
 * n_items x k, n_items x k, n_users, n_items), the implicit bags N(u) as a CSR over users (bag_ptr,
 * bag_items) with one weight per user (bag_w, |N(u)|^-1/2 as fastmf.models.bags decides), and one
 * learning rate and one penalty per parameter group (factors p, q; biases; implicit rows y), so a
 * time-aware model can add groups of its own.
 */
#ifndef FASTMF_SVDPP_H
#define FASTMF_SVDPP_H

#include <stdint.h>
#include "common.h"
#include "blocks.h"
#include "sgd.h"   /* fastmf_dtype */

/* What err->which reports when an epoch fails (err->pos says where). The first codes are those of
 * the SGD family (sgd.h, blocks.h). */
enum {
    FASTMF_SVDPP_BAD_ORDER = 0,   /* order[pos] outside [0, nnz) */
    FASTMF_SVDPP_BAD_USER = 1,    /* users[order[pos]] outside [0, n_users) */
    FASTMF_SVDPP_BAD_ITEM = 2,    /* items[order[pos]] outside [0, n_items) */
    FASTMF_SVDPP_BAD_PLAN = 3,    /* the rating at position pos lies outside its block */
    FASTMF_SVDPP_BAD_LOSS = 4,    /* DIVERGED: the running loss became non-finite near position pos */
    FASTMF_SVDPP_BAD_P = 5,       /* DIVERGED: row pos of P is non-finite after the epoch */
    FASTMF_SVDPP_BAD_Q = 6,       /* DIVERGED: row pos of Q */
    FASTMF_SVDPP_BAD_BU = 7,      /* DIVERGED: bu[pos] */
    FASTMF_SVDPP_BAD_BI = 8,      /* DIVERGED: bi[pos] */
    FASTMF_SVDPP_BAD_Y = 9,       /* DIVERGED: row pos of Y */
    FASTMF_SVDPP_BAD_BAG = 10     /* bag_items[pos] outside [0, n_items), or bag_ptr not rising */
};

typedef struct {
    fastmf_dtype dtype;          /* element type of ratings, P, Q, Y, bu, bi */
    int64_t nnz;                 /* ratings */
    int64_t n_users, n_items;    /* rows of P; rows of Q and Y */
    int64_t n_factors;           /* k */
    const int32_t *users;        /* [nnz] in [0, n_users) (checked on use) */
    const int32_t *items;        /* [nnz] in [0, n_items) (checked on use) */
    const void *ratings;         /* [nnz] */
    void *P, *Q, *Y;             /* C-contiguous n_users x k, n_items x k, n_items x k; updated */
    void *bu, *bi;               /* [n_users], [n_items]; updated */
    const int64_t *bag_ptr;      /* [n_users + 1]: N(u) = bag_items[bag_ptr[u] .. bag_ptr[u+1]) */
    const int32_t *bag_items;    /* [bag_ptr[n_users]] in [0, n_items) (checked on use) */
    const double *bag_w;         /* [n_users] w_u (|N(u)|^-1/2; 0 for an empty bag) */
    double mu;                   /* global mean */
    double lr, reg;              /* step and penalty of the factors p_u, q_i */
    double lr_bias, reg_bias;    /* of the biases b_u, b_i */
    double lr_implicit, reg_implicit;  /* of the implicit rows y_j */
    const fastmf_interrupt *interrupt;  /* read between users (serial) / blocks (blocked); NULL: never */
} fastmf_svdpp_problem;

/* Serial epoch over order[0..n_order-1] (rating positions). Each maximal run of consecutive
 * positions of one user is one visit of that user: its implicit sum is computed once at the start
 * of the run, its ratings are visited, and its y_j are updated once at the end. For ANY order the
 * result equals (up to rounding) the per-rating SVD++ SGD that updates every y_j, j in N(u), after
 * each rating (fastmf.reference.svdpp_epoch). *sse = sum of e^2, each before its update. Returns
 * FASTMF_OK, FASTMF_ERR_INDEX (which = ORDER/USER/ITEM/BAG), FASTMF_ERR_DIVERGED (LOSS: pos in
 * order; P/Q/Y/BU/BI: the row), FASTMF_ERR_NOMEM or FASTMF_ERR_INTERRUPTED. */
fastmf_status fastmf_svdpp_epoch(const fastmf_svdpp_problem *pb, const int64_t *order, int64_t n_order,
                                 double *sse, fastmf_error *err);

/* The user-grouped order of a serial epoch over ratings stored by user (CSR: user u's ratings are
 * positions indptr[u] .. indptr[u+1]-1): the users in the permutation fastmf_shuffle(seed, epoch)
 * gives, each user's positions shuffled by the stream (seed, epoch, u + 1). out[indptr[n_users]].
 * Returns FASTMF_ERR_NOMEM or FASTMF_OK. */
fastmf_status fastmf_svdpp_user_order(const int64_t *indptr, int64_t n_users, uint64_t seed,
                                      uint64_t epoch, int64_t *out);

/* Blocked parallel epoch (the plan and schedule of blocks.h). The implicit sums and their gradient
 * are user-owned rows: Z[u] (in: w_u sum_{j in N(u)} y_j at the start of the sweep) and G[u] (in:
 * 0), both n_users x k doubles, are updated by u's ratings as the serial epoch updates its per-visit
 * copies, and Y is NOT touched: the caller applies the sweep's y update afterwards,
 * y_j <- a^{c_j} y_j + gamma_j sum_{u: j in N(u)} G[u] with a = 1 - lr_implicit reg_implicit, c_j
 * the ratings of the users holding j and gamma_j = (1 - a^{c_j}) / (c_j (1 - a))
 * (fastmf.models.svdpp). Blocks that run concurrently share no user and no
 * item, so the result is the same for every n_threads, bit for bit, and equals the blocks run one
 * by one in schedule order. work[nnz] is scratch. Errors as fastmf_svdpp_epoch (which = PLAN when a
 * rating lies outside its block). */
fastmf_status fastmf_svdpp_epoch_blocked(const fastmf_svdpp_problem *pb, double *Z, double *G,
                                         int n_blocks, const int32_t *user_block,
                                         const int32_t *item_block, const int64_t *block_ptr,
                                         const int64_t *block_order, int64_t *work, uint64_t seed,
                                         uint64_t epoch, int n_threads, double *sse, fastmf_error *err);

#endif
