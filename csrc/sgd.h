/* Stochastic gradient descent (SGD) epochs for biased matrix factorization.
 *
 * The math, the invariants, buffer ownership and the thread-safety rules are described at the top of
 * sgd.c. In short: one epoch visits ratings in a given order and, for each rating (u, i, r), computes
 * e = r - (mu + b_u + b_i + p_u.q_i) and moves b_u, b_i, p_u, q_i one gradient step. All arrays are
 * C-contiguous and owned by the caller; the factors and biases are updated in place.
 */
#ifndef FASTMF_SGD_H
#define FASTMF_SGD_H

#include <stdint.h>
#include "common.h"
#include "blocks.h"
#include "rng.h"

/* element type of the ratings, factors and biases (all arrays of one problem share it) */
typedef enum { FASTMF_FLOAT32 = 0, FASTMF_FLOAT64 = 1 } fastmf_dtype;

/* What err->which reports when an epoch fails (err->pos says where). */
enum {
    FASTMF_SGD_BAD_ORDER = 0,   /* order[pos] (or a plan's block_order entry) outside [0, nnz) */
    FASTMF_SGD_BAD_USER = FASTMF_BLOCK_BAD_USER,  /* users[order[pos]] outside [0, n_users) */
    FASTMF_SGD_BAD_ITEM = FASTMF_BLOCK_BAD_ITEM,  /* items[order[pos]] outside [0, n_items) */
    FASTMF_SGD_BAD_PLAN = FASTMF_BLOCK_BAD_PLAN,  /* the rating at plan position pos lies outside its
                                                     block (or the plan's offsets are broken) */
    FASTMF_SGD_BAD_LOSS = 4,    /* DIVERGED: the running loss became non-finite near order[pos] */
    FASTMF_SGD_BAD_P = 5,       /* DIVERGED: row pos of P is non-finite at the end of the epoch */
    FASTMF_SGD_BAD_Q = 6,       /* DIVERGED: row pos of Q is non-finite at the end of the epoch */
    FASTMF_SGD_BAD_BU = 7,      /* DIVERGED: bu[pos] is non-finite at the end of the epoch */
    FASTMF_SGD_BAD_BI = 8       /* DIVERGED: bi[pos] is non-finite at the end of the epoch */
};

/* One SGD problem: the training ratings, the model being trained and the step hyper-parameters.
 * Pointers are borrowed from the caller for the duration of a call; nothing is freed or retained. */
typedef struct {
    fastmf_dtype dtype;        /* element type of ratings, P, Q, bu, bi */
    int64_t nnz;               /* number of ratings */
    int64_t n_users, n_items;  /* rows of P and Q */
    int64_t n_factors;         /* k: columns of P and Q */
    const int32_t *users;      /* [nnz] user index of each rating, in [0, n_users) (checked on use) */
    const int32_t *items;      /* [nnz] item index of each rating, in [0, n_items) (checked on use) */
    const void *ratings;       /* [nnz] rating values */
    void *P;                   /* user factors: row u is P[u * ld_P .. u * ld_P + k - 1]; updated */
    void *Q;                   /* item factors: row i is Q[i * ld_Q .. i * ld_Q + k - 1]; updated */
    int64_t ld_P, ld_Q;        /* row strides of P and Q in elements, >= k (k for a dense array;
                                  more for rows padded to a 64-byte multiple, which is faster) */
    void *bu;                  /* [n_users] user biases, updated in place; may be NULL if !biased */
    void *bi;                  /* [n_items] item biases, updated in place; may be NULL if !biased */
    double mu;                 /* global mean (ignored when !biased) */
    double lr;                 /* learning rate eta */
    double reg;                /* factor regularisation lambda */
    double reg_bias;           /* bias regularisation lambda_b */
    int biased;                /* 1: mu + b_u + b_i + p.q; 0: p.q and the biases are untouched */
    const fastmf_interrupt *interrupt;  /* the blocked epoch reads it before every block: raised, no
                                           new block starts and the epoch returns
                                           FASTMF_ERR_INTERRUPTED (NULL: never; the serial and
                                           hogwild epochs do not read it) */
    int isa;                   /* which copy of the epoch loop runs (FASTMF_ISA_*): AUTO (0), the
                                  best this CPU supports, unless an experiment or a test asks for a
                                  lower one; one fastmf_sgd_isa rejects is FASTMF_ERR_VALUE */
    int64_t l2_bytes;          /* a core's share of the L2 cache in bytes, which decides whether the
                                  factor rows are prefetched (see want_prefetch in sgd.c); <= 0: ask
                                  the C library (sysconf), else assume 1 MiB. No effect on results */
} fastmf_sgd_problem;

/* The instruction-set copies of the epoch loop. With function multi-versioning (GCC >= 11 on x86-64
 * Linux, FASTMF_HAVE_CLONES) the loop is compiled for x86-64-v4 (AVX-512, 64-byte vectors),
 * x86-64-v3 (AVX2 + FMA, 32-byte vectors) and the baseline (SSE2, 16-byte vectors); otherwise only
 * BASE exists: the loop compiled for the build's own flags (32-byte vectors with -mavx..., 64 with
 * -mavx512f, else 16: SSE2, NEON). Each copy gives bit-identical results run after run and for any
 * thread count; copies differ from each other only by FMA contraction (v3 and v4 contract, BASE
 * does not), never by the order of a sum. */
enum { FASTMF_ISA_AUTO = 0, FASTMF_ISA_BASE = 1, FASTMF_ISA_V3 = 2, FASTMF_ISA_V4 = 3 };

/* the copy `isa` selects on this CPU: AUTO gives the best one it runs; a copy this build lacks or
 * this CPU cannot run gives -1 */
int fastmf_sgd_isa(int isa);

/* the machine vector width in bytes of copy `isa`'s vector path (0 when fastmf_sgd_isa rejects it) */
int fastmf_sgd_vector_bytes(int isa);

/* The number of 64-byte vectors per row the epochs work in for this problem's P and Q (the vector
 * path: n_factors a positive multiple of 16 floats or 8 doubles, P and Q 64-byte aligned, row strides
 * multiples of 64 bytes; built with GCC or Clang), or 0 when they take the element-by-element path.
 * Both paths give bit-identical results; the vector path is faster. Reads only dtype, n_factors, P,
 * Q, ld_P, ld_Q. */
int fastmf_sgd_row_vectors(const fastmf_sgd_problem *pb);

/* One serial epoch over order[0..n_order-1] (positions into the rating arrays), in that sequence.
 * *sse = sum of e^2 (each e before its own update), accumulated in double. Bit-identical across runs.
 * Returns FASTMF_OK, FASTMF_ERR_INDEX (err->which = ORDER/USER/ITEM, err->pos = position in
 * order), or FASTMF_ERR_DIVERGED (which = LOSS: pos = position in order; P/Q/BU/BI: the row). */
fastmf_status fastmf_sgd_epoch(const fastmf_sgd_problem *pb, const int64_t *order, int64_t n_order,
                               double *sse, fastmf_error *err);

/* Hogwild epoch (opt-in): order is cut into n_threads (at most 1024) contiguous chunks processed
 * concurrently with unsynchronised updates of shared rows (a deliberate, documented race; see sgd.c).
 * Deterministic only when n_threads == 1, where it equals fastmf_sgd_epoch. The chunk losses are
 * added in chunk order. */
fastmf_status fastmf_sgd_epoch_hogwild(const fastmf_sgd_problem *pb, const int64_t *order,
                                       int64_t n_order, int n_threads, double *sse,
                                       fastmf_error *err);

/* Blocked parallel epoch over a plan from fastmf_block_plan, run by fastmf_blocks_run (blocks.h)
 * with the MF update as its per-block update. Step s = 0..n_blocks-1 holds the blocks
 * (b, fastmf_block_step_group(n_blocks, b, s)), b = 0..n_blocks-1, which share no user row and no item
 * row; each block's ratings run in the order fastmf_block_shuffle gives. Threads take blocks in
 * step-then-b order (or, when n_blocks is a power of two and the thread count divides it, each thread
 * a fixed range of user groups), and a block starts as soon as the two blocks of the previous step sharing its user group or its item group are done (no
 * barrier between steps). The result equals fastmf_sgd_epoch over the concatenation, in step-then-b
 * order, of the shuffled segments -- for every n_threads, bit for bit. At most n_blocks threads are
 * used. work[nnz] is caller-owned scratch. The plan must be the one built from pb->users /
 * pb->items (checked: a rating outside its block gives FASTMF_ERR_VALUE, err->which = PLAN). After a
 * block fails no other block starts (blocks already running finish), and the failure first in
 * schedule order is reported; with more than one thread, which blocks ran before the failure
 * depends on timing. */
fastmf_status fastmf_sgd_epoch_blocked(const fastmf_sgd_problem *pb, int n_blocks,
                                       const int32_t *user_block, const int32_t *item_block,
                                       const int64_t *block_ptr, const int64_t *block_order,
                                       int64_t *work, uint64_t seed, uint64_t epoch, int n_threads,
                                       double *sse, fastmf_error *err);

#endif
