/* SGD epochs for biased matrix factorization with side-feature factors learned jointly (the
 * "joint" mode of fastmf.models.side; Koren 2009 eq. 6 on the item side, the SVDFeature form).
 * The math, the invariants and the schedule are described at the top of sgd_side.c. All arrays are
 * C-contiguous and owned by the caller; the model is updated in place. The plain MF kernel
 * (sgd.c) is not touched by this file.
 */
#ifndef FASTMF_SGD_SIDE_H
#define FASTMF_SGD_SIDE_H

#include <stdint.h>
#include "common.h"
#include "sgd.h"   /* fastmf_dtype */

/* What err->which reports when an epoch fails (err->pos says where). */
enum {
    FASTMF_SIDE_BAD_ORDER = 0,    /* order[pos] outside [0, nnz) */
    FASTMF_SIDE_BAD_USER = 1,     /* users[order[pos]] outside [0, n_users) */
    FASTMF_SIDE_BAD_ITEM = 2,     /* items[order[pos]] outside [0, n_items) */
    FASTMF_SIDE_BAD_LOSS = 4,     /* DIVERGED: the running loss became non-finite at order[pos] */
    FASTMF_SIDE_BAD_P = 5,        /* DIVERGED: row pos of P is non-finite after the epoch */
    FASTMF_SIDE_BAD_Q = 6,        /* DIVERGED: row pos of Q */
    FASTMF_SIDE_BAD_BU = 7,       /* DIVERGED: bu[pos] */
    FASTMF_SIDE_BAD_BI = 8,       /* DIVERGED: bi[pos] */
    FASTMF_SIDE_BAD_USER_FEATURE = 9,   /* INDEX: user feature entry pos outside [0, n_features) or
                                           its row's indptr out of range; DIVERGED: row pos of
                                           the user side's Z or entry pos of its w */
    FASTMF_SIDE_BAD_ITEM_FEATURE = 10   /* the same for the item side */
};

/* The features of one side (users or items): a CSR over the side's rows and the learned feature
 * factors. indptr == NULL: the side has no features (then Z and w are ignored). */
typedef struct {
    const int64_t *indptr;     /* [n_rows + 1], rising from 0 */
    const int32_t *indices;    /* [indptr[n_rows]] feature index, in [0, n_features) (checked on use) */
    const double *values;      /* [indptr[n_rows]] feature weight x_rg (rows normalised by the caller) */
    int64_t n_features;
    void *Z;                   /* n_features x k feature factors z_g (dtype of the problem); updated */
    void *w;                   /* [n_features] feature biases w_g; updated when biased */
} fastmf_side_features;

typedef struct {
    fastmf_dtype dtype;        /* element type of ratings, P, Q, bu, bi, Z, w */
    int64_t nnz;
    int64_t n_users, n_items, n_factors;
    const int32_t *users;      /* [nnz] in [0, n_users) (checked on use) */
    const int32_t *items;      /* [nnz] in [0, n_items) (checked on use) */
    const void *ratings;       /* [nnz] */
    void *P, *Q;               /* C-contiguous n_users x k, n_items x k: the FREE factors; updated */
    void *bu, *bi;             /* [n_users], [n_items]: the free biases; updated when biased */
    fastmf_side_features user_side, item_side;
    double mu, lr;
    double reg;                /* penalty of the factors of a side WITHOUT features */
    double reg_bias;           /* penalty of the free biases */
    double reg_free;           /* penalty of the free factors of a side WITH features */
    double reg_side;           /* penalty of the feature factors z_g and biases w_g */
    int biased;
    const uint8_t *drop;       /* [n_order] or NULL: bit 0 of drop[t] drops the free item part
                                  (q_i, b_i) of the t-th visited rating, bit 1 the free user part */
    int drop_features_only;    /* 1: a rating with a dropped part updates only the feature rows of
                                  the dropped side(s); 0: every parameter it uses */
    const fastmf_interrupt *interrupt;  /* read every 4096 ratings; NULL: never */
} fastmf_sgd_side_problem;

/* One serial epoch over order[0..n_order-1] (rating positions), in that sequence; every update
 * (feature rows included) is applied at its rating, so the result depends on the order only.
 * *sse = sum of e^2, each before its update, in double. Returns FASTMF_OK, FASTMF_ERR_VALUE (a
 * malformed problem), FASTMF_ERR_INDEX (which = ORDER/USER/ITEM: pos = position in order;
 * USER_FEATURE/ITEM_FEATURE: pos = entry of the CSR), FASTMF_ERR_DIVERGED (LOSS: position in
 * order; P/Q/BU/BI/..._FEATURE: the row), FASTMF_ERR_NOMEM or FASTMF_ERR_INTERRUPTED. */
fastmf_status fastmf_sgd_side_epoch(const fastmf_sgd_side_problem *pb, const int64_t *order,
                                    int64_t n_order, double *sse, fastmf_error *err);

#endif
