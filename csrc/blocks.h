/* The block plan and the dataflow block scheduler of the SGD family (LIBMF's scheme, Chin et al.
 * 2015), over a per-block update given as a callback: an update rule (biased MF in sgd.c; SVD++ or a
 * time-aware model later) supplies one function that runs its update over the ratings of one block,
 * and this file decides which block runs when and on which thread.
 *
 * Plan. Users and items are each cut into B contiguous index ranges ("groups") of near-equal rating
 * counts; block (a, b) holds the ratings of user group a and item group b. Schedule. Step s = 0..B-1
 * holds the blocks (b, fastmf_block_step_group(B, b, s)), b = 0..B-1, which share no user row and no
 * item row. Each block's ratings are shuffled by the stream of (seed, epoch, block id + 1) before the
 * callback runs over them. A block starts as soon as the two blocks of the previous step sharing its
 * user group or its item group are done (no barrier between steps), so no two running blocks share
 * a row, and the outcome equals running the blocks one by one in step-then-b order, for every thread
 * count, bit for bit. The callback is called once per block (its indirect call costs nothing
 * measurable against the thousands of ratings of a block).
 *
 * Ownership: all arrays belong to the caller; the scheduler allocates small per-block records and
 * frees them on every path. No globals, no printing; randomness only from (seed, epoch).
 */
#ifndef FASTMF_BLOCKS_H
#define FASTMF_BLOCKS_H

#include <stdint.h>
#include "common.h"

/* fastmf_error.which of the plan and the scheduler (update rules use the same codes for these) */
enum {
    FASTMF_BLOCK_BAD_USER = 1,  /* users[pos] outside [0, n_users) */
    FASTMF_BLOCK_BAD_ITEM = 2,  /* items[pos] outside [0, n_items) */
    FASTMF_BLOCK_BAD_PLAN = 3   /* the plan's offsets (or a rating) do not fit the plan */
};

/* The block a callback runs over: user group rb x item group cb of the plan (user_block,
 * item_block). When the plan's groups are contiguous index ranges (as fastmf_block_plan builds
 * them), ranges = 1 and the block is users [ulo, uhi) x items [ilo, ihi), so a rating's block can be
 * checked without a lookup. */
typedef struct {
    const int32_t *ublk, *iblk;
    int32_t rb, cb;
    int ranges;
    int64_t ulo, uhi, ilo, ihi;
} fastmf_block;

/* The per-block update: run over order[0..n-1] (rating positions, the block's shuffled segment),
 * every rating of which must lie in *blk. Set *loss (e.g. the block's sum of squared errors, added
 * in schedule order by the scheduler) and return FASTMF_OK, or fill *err (err->pos relative to
 * order) and return its status. Called concurrently for blocks that share no row. */
typedef fastmf_status (*fastmf_block_fn)(void *ctx, const int64_t *order, int64_t n,
                                         const fastmf_block *blk, double *loss, fastmf_error *err);

/* Block plan, built once per fit. Outputs (caller-allocated):
 *   user_block[n_users], item_block[n_items]  (int32): the group of each user / item (each group
 *       within the largest row degree of nnz / n_blocks ratings);
 *   block_ptr[n_blocks * n_blocks + 1]         (int64): block (a, b) = users of group a x items of
 *       group b owns block_order[block_ptr[a * n_blocks + b] .. block_ptr[a * n_blocks + b + 1] - 1];
 *   block_order[nnz]                           (int64): rating positions, grouped by block, ascending
 *       within a block (so it is a permutation of 0..nnz-1); NULL: not computed (the groups and
 *       offsets are all fastmf_block_scatter needs).
 * Returns FASTMF_ERR_INDEX (which = FASTMF_BLOCK_BAD_USER / _ITEM, pos = rating position) on an index
 * out of range, FASTMF_ERR_VALUE if n_blocks < 1, FASTMF_ERR_NOMEM on allocation failure. */
fastmf_status fastmf_block_plan(int64_t nnz, const int32_t *users, const int32_t *items,
                                int64_t n_users, int64_t n_items, int n_blocks,
                                int32_t *user_block, int32_t *item_block,
                                int64_t *block_ptr, int64_t *block_order, fastmf_error *err);

/* The ratings copied into block order without a permutation array: out_users/out_items/out_values
 * [block_ptr[id] ..] get the ratings of block id in their input order (the stable counting sort of
 * fastmf_block_plan, i.e. out_x = x[block_order]). values are value_size (4 or 8) bytes each. The
 * plan (groups and offsets) must come from these users and items: a block overflowing its offsets
 * gives FASTMF_ERR_VALUE, which = FASTMF_BLOCK_BAD_PLAN, pos = the rating. Memory: nnz outputs
 * (caller's) and n_blocks^2 cursors. */
fastmf_status fastmf_block_scatter(int64_t nnz, const int32_t *users, const int32_t *items,
                                   const void *values, int value_size, int n_blocks,
                                   const int32_t *user_block, const int32_t *item_block,
                                   const int64_t *block_ptr, int32_t *out_users, int32_t *out_items,
                                   void *out_values, fastmf_error *err);

/* The item group paired with user group b (0 <= b < B) in step s (0 <= s < B) of the schedule:
 * b XOR s when B is a power of two, else (b + s) mod B. */
int fastmf_block_step_group(int B, int b, int s);

/* Copy block_order into work and shuffle each block's segment in place with the stream seeded from
 * (seed, epoch, block id + 1); the segments keep the plan's offsets. fastmf_blocks_run does exactly
 * this before running a block, so this function gives the order an epoch follows. */
void fastmf_block_shuffle(int n_blocks, const int64_t *block_ptr, const int64_t *block_order,
                          uint64_t seed, uint64_t epoch, int64_t *work);

/* Run fn over every block of the plan in the schedule above on up to n_threads OpenMP threads (at
 * most n_blocks are used). Threads take blocks in step-then-b order from a shared counter or, when
 * n_blocks is a power of two and the team size divides it, each thread a fixed range of user groups.
 * block_order NULL stands for the identity (ratings stored in block order, fastmf_block_scatter),
 * so no nnz-long order is needed. work[nnz] is caller-owned scratch (the shuffled segments), or
 * NULL: each thread then shuffles a block into scratch of its own of the largest block's length
 * (FASTMF_ERR_NOMEM if that fails), and an error's pos is the rating position rather than a
 * position in work. The result is the same either way. *loss = the blocks' losses added in
 * schedule order (the same for every thread count). The plan's offsets must cut [0, nnz) into
 * consecutive segments (else FASTMF_ERR_VALUE, which = FASTMF_BLOCK_BAD_PLAN, pos = the offset's
 * index). After a block fails no other block starts (blocks already running finish), and the
 * failure first in schedule order is reported, its pos made a position in work; with more than one
 * thread, which blocks ran before the failure depends on timing. */
fastmf_status fastmf_blocks_run(int n_blocks, int64_t nnz, const int32_t *user_block, int64_t n_users,
                                const int32_t *item_block, int64_t n_items, const int64_t *block_ptr,
                                const int64_t *block_order, int64_t *work, uint64_t seed,
                                uint64_t epoch, int n_threads, fastmf_block_fn fn, void *ctx,
                                double *loss, fastmf_error *err);

#endif
