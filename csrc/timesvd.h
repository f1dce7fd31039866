/* SGD epochs for timeSVD++ (Koren, "Collaborative filtering with temporal dynamics", KDD 2009): the
 * update rule of every term and the per-user accumulation of the SVD++ implicit sum. The math, the
 * invariants and the thread-safety rules are at the top of timesvd.c. All arrays are C-contiguous
 * and owned by the caller; the model is updated in place.
 *
 * A problem holds the ratings (users, items, ratings) with the time features of each rating (its
 * item-bias bin, its user-day row and dev_u(t), computed by the caller from the training data), the
 * static model (P, Q, Y, bu, bi as for SVD++), the time terms (each may be NULL: that term is off),
 * the implicit bags N(u) as a CSR over users with one weight per user, and one learning rate and
 * one penalty per parameter group (FASTMF_TSVD_G_*).
 */
#ifndef FASTMF_TIMESVD_H
#define FASTMF_TIMESVD_H

#include <stdint.h>
#include "common.h"
#include "sgd.h"   /* fastmf_dtype */

/* parameter groups: index of lr[] and reg[] */
enum {
    FASTMF_TSVD_G_FACTORS = 0,      /* p_u, q_i */
    FASTMF_TSVD_G_BIAS = 1,         /* b_u, b_i */
    FASTMF_TSVD_G_IMPLICIT = 2,     /* y_j */
    FASTMF_TSVD_G_DRIFT = 3,        /* alpha_u */
    FASTMF_TSVD_G_DAY_BIAS = 4,     /* b_{u,t} */
    FASTMF_TSVD_G_BIN = 5,          /* b_{i,Bin(t)} */
    FASTMF_TSVD_G_SCALE = 6,        /* c_u (penalised toward 1) */
    FASTMF_TSVD_G_DAY_SCALE = 7,    /* c_{u,t} */
    FASTMF_TSVD_G_FACTOR_DRIFT = 8, /* alpha_{pu} */
    FASTMF_TSVD_G_DAY_FACTORS = 9,  /* p_{u,t} */
    FASTMF_TSVD_N_GROUPS = 10
};

/* What err->which reports when an epoch fails (err->pos says where). */
enum {
    FASTMF_TSVD_BAD_ORDER = 0,   /* order[pos] outside [0, nnz) */
    FASTMF_TSVD_BAD_USER = 1,    /* users[order[pos]] outside [0, n_users) */
    FASTMF_TSVD_BAD_ITEM = 2,    /* items[order[pos]] outside [0, n_items) */
    FASTMF_TSVD_BAD_BIN = 3,     /* bins[order[pos]] outside [0, n_bins) */
    FASTMF_TSVD_BAD_DAY = 4,     /* days[order[pos]] outside [0, n_days) */
    FASTMF_TSVD_BAD_LOSS = 5,    /* DIVERGED: the running loss became non-finite near position pos */
    FASTMF_TSVD_BAD_MODEL = 6,   /* DIVERGED: model array number pos (P, Q, Y, bu, bi, au, bit, but, cu,
                                  * cut, AP, PT: 0..11) holds a non-finite value after the epoch */
    FASTMF_TSVD_BAD_BAG = 7      /* bag_items[pos] outside [0, n_items), or bag_ptr not rising */
};

typedef struct {
    fastmf_dtype dtype;          /* element type of ratings and every model array */
    int64_t nnz;                 /* ratings */
    int64_t n_users, n_items;    /* rows of P; rows of Q and Y */
    int64_t n_factors;           /* k */
    int64_t n_bins;              /* columns of bit (item bias per time bin) */
    int64_t n_days;              /* user-day rows of but, cut, PT */
    const int32_t *users;        /* [nnz] in [0, n_users) (checked on use) */
    const int32_t *items;        /* [nnz] in [0, n_items) (checked on use) */
    const void *ratings;         /* [nnz] */
    const int32_t *bins;         /* [nnz] Bin(t) in [0, n_bins) (read when bit != NULL) */
    const int64_t *days;         /* [nnz] the (user, day) row in [0, n_days) (read when a day term is on) */
    const double *dev;           /* [nnz] dev_u(t) (read when au or AP is on) */
    void *P, *Q, *Y;             /* n_users x k, n_items x k, n_items x k; updated */
    void *bu, *bi;               /* [n_users], [n_items]; updated */
    void *au;                    /* [n_users] alpha_u, or NULL */
    void *bit;                   /* n_items x n_bins b_{i,Bin}, or NULL */
    void *but;                   /* [n_days] b_{u,t}, or NULL */
    void *cu;                    /* [n_users] c_u, or NULL (then c_u(t) = 1 and cut is ignored) */
    void *cut;                   /* [n_days] c_{u,t}, or NULL */
    void *AP;                    /* n_users x k alpha_{pu}, or NULL */
    void *PT;                    /* n_days x k p_{u,t}, or NULL */
    const int64_t *bag_ptr;      /* [n_users + 1]: N(u) = bag_items[bag_ptr[u] .. bag_ptr[u+1]) */
    const int32_t *bag_items;    /* [bag_ptr[n_users]] in [0, n_items) (checked on use) */
    const double *bag_w;         /* [n_users] w_u (|N(u)|^-1/2; 0 for an empty bag) */
    double mu;                   /* global mean */
    double lr[FASTMF_TSVD_N_GROUPS], reg[FASTMF_TSVD_N_GROUPS];  /* per group */
    const fastmf_interrupt *interrupt;  /* read before every user visit; NULL: never */
} fastmf_timesvd_problem;

/* Serial epoch over order[0..n_order-1] (rating positions). Each maximal run of consecutive
 * positions of one user is one visit of that user: its implicit sum is computed once at the start
 * of the run, its ratings are visited, its y_j are updated once at the end. For ANY order the
 * result equals (up to rounding) the per-rating timeSVD++ SGD that updates every y_j, j in N(u),
 * after each rating (fastmf.reference.timesvd_epoch). *sse = sum of e^2, each before its update.
 * Returns FASTMF_OK, FASTMF_ERR_VALUE (a malformed problem), FASTMF_ERR_INDEX (which =
 * ORDER/USER/ITEM/BIN/DAY/BAG), FASTMF_ERR_DIVERGED (LOSS: pos in order; MODEL: pos = the
 * number of the first non-finite array), FASTMF_ERR_NOMEM or FASTMF_ERR_INTERRUPTED. */
fastmf_status fastmf_timesvd_epoch(const fastmf_timesvd_problem *pb, const int64_t *order, int64_t n_order,
                                   double *sse, fastmf_error *err);

#endif
