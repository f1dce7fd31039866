/* Block plan and dataflow block scheduler (see blocks.h for the contract). */
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#endif

#include "blocks.h"
#include "rng.h"

/* group[r] in [0, B) for every row: B contiguous ranges of rows with near-equal rating counts. Row r
 * covers the ratings [c_r, c_r + deg_r) of the running count c; it goes to group
 * floor(B (c_r + deg_r / 2) / total), the group whose share of the ratings holds its midpoint, so
 * every group holds total / B +- max degree ratings. Contiguous ranges (rather than, say, a greedy
 * interleaved assignment) keep the biases and short factor rows of different groups in different
 * cache lines, except at the B - 1 boundaries: threads working on different blocks then do not
 * write to one cache line (false sharing halved the 2-thread speed with an interleaved layout). */
static void assign_groups(const int64_t *deg, int64_t n, int B, int32_t *group)
{
    int64_t r, total = 0, before = 0;
    for (r = 0; r < n; ++r) total += deg[r];
    for (r = 0; r < n; ++r) {
        /* without ratings, cut the rows evenly */
        int64_t g = total > 0 ? ((2 * before + deg[r]) * (int64_t)B) / (2 * total) : (r * B) / n;
        group[r] = (int32_t)(g < B ? g : B - 1);
        before += deg[r];
    }
}

fastmf_status fastmf_block_plan(int64_t nnz, const int32_t *users, const int32_t *items,
                                int64_t n_users, int64_t n_items, int n_blocks,
                                int32_t *user_block, int32_t *item_block,
                                int64_t *block_ptr, int64_t *block_order, fastmf_error *err)
{
    const int64_t B = n_blocks, nblk = B * B;
    int64_t *deg_u = NULL, *deg_i = NULL, *cursor = NULL, k, b;
    fastmf_status st = FASTMF_OK;

    fastmf_error_clear(err);
    if (n_blocks < 1 || nnz < 0 || n_users < 0 || n_items < 0)
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    for (k = 0; k < nnz; ++k) {
        if (users[k] < 0 || users[k] >= n_users)
            return fastmf_fail(err, FASTMF_ERR_INDEX, k, FASTMF_BLOCK_BAD_USER);
        if (items[k] < 0 || items[k] >= n_items)
            return fastmf_fail(err, FASTMF_ERR_INDEX, k, FASTMF_BLOCK_BAD_ITEM);
    }
    deg_u = (int64_t *)calloc((size_t)(n_users > 0 ? n_users : 1), sizeof(int64_t));
    deg_i = (int64_t *)calloc((size_t)(n_items > 0 ? n_items : 1), sizeof(int64_t));
    cursor = (int64_t *)malloc((size_t)nblk * sizeof(int64_t));
    if (deg_u == NULL || deg_i == NULL || cursor == NULL) {
        st = fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
        goto done;
    }

    for (k = 0; k < nnz; ++k) { deg_u[users[k]]++; deg_i[items[k]]++; }
    assign_groups(deg_u, n_users, n_blocks, user_block);
    assign_groups(deg_i, n_items, n_blocks, item_block);

    /* stable counting sort of the rating positions by block id = group(u) * B + group(i) */
    memset(block_ptr, 0, (size_t)(nblk + 1) * sizeof(int64_t));
    for (k = 0; k < nnz; ++k) block_ptr[(int64_t)user_block[users[k]] * B + item_block[items[k]] + 1]++;
    for (b = 0; b < nblk; ++b) block_ptr[b + 1] += block_ptr[b];
    memcpy(cursor, block_ptr, (size_t)nblk * sizeof(int64_t));
    if (block_order != NULL)
        for (k = 0; k < nnz; ++k)
            block_order[cursor[(int64_t)user_block[users[k]] * B + item_block[items[k]]]++] = k;

done:
    free(deg_u);
    free(deg_i);
    free(cursor);
    return st;
}

/* out[0..hi-lo) = block_order[lo..hi) (lo, lo + 1, .. for block_order NULL, the identity)
 * shuffled by the stream of (seed, epoch, block id + 1) */
static void shuffle_block(const int64_t *block_order, int64_t *out, int64_t lo, int64_t hi,
                          uint64_t seed, uint64_t epoch, int64_t id)
{
    fastmf_rng g;
    int64_t k;
    if (hi <= lo) return;
    if (block_order != NULL)
        memcpy(out, block_order + lo, (size_t)(hi - lo) * sizeof(int64_t));
    else
        for (k = lo; k < hi; ++k) out[k - lo] = k;
    fastmf_rng_seed(&g, seed, epoch, (uint64_t)id + 1);
    fastmf_fisher_yates(out, hi - lo, &g);
}

fastmf_status fastmf_block_scatter(int64_t nnz, const int32_t *users, const int32_t *items,
                                   const void *values, int value_size, int n_blocks,
                                   const int32_t *user_block, const int32_t *item_block,
                                   const int64_t *block_ptr, int32_t *out_users, int32_t *out_items,
                                   void *out_values, fastmf_error *err)
{
    const int64_t B = n_blocks, nblk = B * B;
    int64_t *cursor, k;
    const char *v = (const char *)values;
    char *ov = (char *)out_values;

    fastmf_error_clear(err);
    if (n_blocks < 1 || nnz < 0 || (value_size != 4 && value_size != 8))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    if (block_ptr[0] != 0 || block_ptr[nblk] != nnz)
        return fastmf_fail(err, FASTMF_ERR_VALUE, block_ptr[0] != 0 ? 0 : nblk, FASTMF_BLOCK_BAD_PLAN);
    cursor = (int64_t *)malloc((size_t)nblk * sizeof(int64_t));
    if (cursor == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    memcpy(cursor, block_ptr, (size_t)nblk * sizeof(int64_t));
    for (k = 0; k < nnz; ++k) {
        const int64_t id = (int64_t)user_block[users[k]] * B + item_block[items[k]];
        const int64_t to = cursor[id]++;
        if (to >= block_ptr[id + 1]) {  /* a plan built from other ratings */
            free(cursor);
            return fastmf_fail(err, FASTMF_ERR_VALUE, k, FASTMF_BLOCK_BAD_PLAN);
        }
        out_users[to] = users[k];
        out_items[to] = items[k];
        if (value_size == 4) memcpy(ov + 4 * to, v + 4 * k, 4);
        else memcpy(ov + 8 * to, v + 8 * k, 8);
    }
    free(cursor);
    return FASTMF_OK;
}

void fastmf_block_shuffle(int n_blocks, const int64_t *block_ptr, const int64_t *block_order,
                          uint64_t seed, uint64_t epoch, int64_t *work)
{
    const int64_t nblk = (int64_t)n_blocks * n_blocks;
    int64_t id;
    for (id = 0; id < nblk; ++id)
        shuffle_block(block_order, work + block_ptr[id], block_ptr[id], block_ptr[id + 1], seed, epoch, id);
}

/* 1 when group[0..n-1] is non-decreasing with values in [0, B) (each group a contiguous range of
 * rows, as assign_groups makes them); start[g] .. start[g + 1] is then group g's range. Else 0. */
static int group_ranges(const int32_t *group, int64_t n, int B, int64_t *start)
{
    int64_t r;
    int g = 0;
    start[0] = 0;
    for (r = 0; r < n; ++r) {
        if (group[r] < g || group[r] >= B) return 0;
        while (g < group[r]) start[++g] = r;
    }
    while (g < B) start[++g] = n;
    return 1;
}

/* The item group of user group b in step s: b XOR s when B is a power of two, else (b + s) mod B.
 * Either way each step pairs every user group with a different item group and every block appears
 * in exactly one step. The XOR steps keep the item groups b ^ s of a range of user groups
 * b = t B/T .. (t + 1) B/T - 1 (T a power of two) inside that range's own block of item groups for
 * B/T consecutive steps, which lets a thread keep its rows (see fastmf_blocks_run). */
int fastmf_block_step_group(int B, int b, int s)
{
    return (B & (B - 1)) == 0 ? b ^ s : (b + s) % B;
}

/* the user group whose block in step s has item group c (the inverse of step_group in b) */
static int step_owner(int B, int c, int s)
{
    return (B & (B - 1)) == 0 ? c ^ s : ((c - s) % B + B) % B;
}

/* A thread waiting for a block spins FASTMF_SPINS times (a block takes microseconds, and waking a
 * sleeping thread costs more), then gives its core away between checks: with more threads than free
 * cores (n_threads above the core count, or other processes running) a spinning thread would
 * otherwise hold the core that the thread it waits for needs. */
#define FASTMF_SPINS 20000
static void wait_a_little(void)
{
#if defined(__unix__) || defined(__APPLE__)
    sched_yield();
#endif
}

/* what one block left: its error record and its loss */
typedef struct {
    fastmf_error err;
    double loss;
} block_result;

fastmf_status fastmf_blocks_run(int n_blocks, int64_t nnz, const int32_t *user_block, int64_t n_users,
                                const int32_t *item_block, int64_t n_items, const int64_t *block_ptr,
                                const int64_t *block_order, int64_t *work, uint64_t seed,
                                uint64_t epoch, int n_threads, fastmf_block_fn fn, void *ctx,
                                double *loss, fastmf_error *err)
{
    const int B = n_blocks;
    const int64_t nblk = (int64_t)B * B;
    const int nt = n_threads < 1 ? 1 : (n_threads > B ? B : n_threads);  /* <= B blocks per step */
    block_result *res;
    fastmf_status st = FASTMF_OK;
    double total = 0.0;
    int s, b, ranges, failed = 0;
    int64_t id, *ustart, *istart, next = 0, largest = 0;
    int *done;

    *loss = 0.0;
    fastmf_error_clear(err);
    if (B < 1 || fn == NULL || block_ptr == NULL || (n_users > 0 && user_block == NULL)
        || (n_items > 0 && item_block == NULL))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    /* the plan's offsets must cut [0, nnz) into consecutive segments (they index work) */
    if (block_ptr[0] != 0 || block_ptr[nblk] != nnz)
        return fastmf_fail(err, FASTMF_ERR_VALUE, block_ptr[0] != 0 ? 0 : nblk, FASTMF_BLOCK_BAD_PLAN);
    for (id = 0; id < nblk; ++id)
        if (block_ptr[id + 1] < block_ptr[id])
            return fastmf_fail(err, FASTMF_ERR_VALUE, id + 1, FASTMF_BLOCK_BAD_PLAN);
    for (id = 0; id < nblk; ++id)
        if (block_ptr[id + 1] - block_ptr[id] > largest) largest = block_ptr[id + 1] - block_ptr[id];
    (void)nt;  /* only read by the OpenMP clause */
    res = (block_result *)malloc((size_t)nblk * sizeof(block_result));
    ustart = (int64_t *)malloc((size_t)(2 * B + 2) * sizeof(int64_t));
    done = (int *)malloc((size_t)nblk * sizeof(int));
    if (res == NULL || ustart == NULL || done == NULL) {
        free(res);
        free(ustart);
        free(done);
        return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    }
    istart = ustart + B + 1;
    ranges = group_ranges(user_block, n_users, B, ustart)
             && group_ranges(item_block, n_items, B, istart);
    for (id = 0; id < nblk; ++id) {
        fastmf_error_clear(&res[id].err);
        res[id].loss = 0.0;
        done[id] = 0;
    }

    /* Task x = s B + b is block (b, c) of step s, c = fastmf_block_step_group(B, b, s). A task
     * shuffles its block, then waits for the two tasks of step s - 1 that share its user group (task
     * x - B) or its item group (user group step_owner(B, c, s - 1)) -- by induction every earlier
     * block sharing a row is done -- and runs. Blocks of one step, and any blocks not ordered by
     * these dependencies, share no row, so the result is the serial one for every thread count,
     * without a barrier after each step. Who runs a task changes only the speed: when B is a power
     * of two and the thread count divides it, thread t runs the user groups t B/nt .. (t + 1) B/nt - 1
     * of every step, so its user rows stay in its core's caches, and with the XOR steps its item rows
     * too for B/nt steps in a row (rows cross cores nt times per epoch instead of at nearly every
     * block: 1.42x instead of 1.28x on 2 threads for ml-100k, whose model fits one core's L2); the
     * last step before another thread takes over its item groups runs in descending b, which is the
     * order in which that thread will need them (4% on ml-100k). Otherwise the threads take the
     * tasks in schedule order from a shared counter. The choice uses the team OpenMP actually
     * started (it may be smaller than nt), so every task has a thread. After a failed block no new
     * block runs. */
    FASTMF_OMP(omp parallel num_threads(nt))
    {
        const int tid = fastmf_thread_num(), team = fastmf_team_size();
        const int affine = B % team == 0 && (B & (B - 1)) == 0, per = B / team;
        int64_t mine = 0;  /* affine: how many of this thread's tasks it has taken */
        /* work NULL: this thread's scratch for one block's shuffled segment */
        int64_t *own = work == NULL && largest > 0 ? (int64_t *)malloc((size_t)largest * sizeof(int64_t)) : NULL;
        for (;;) {
            int64_t x;
            int sx, bx, cx, dep_done, stop;
            int64_t bid, lo, hi, *seg;
            fastmf_block blk;
            if (affine) {
                /* the last step of a phase (the next step takes item groups from other threads)
                 * runs in descending b: the block another thread needs first is done first */
                const int64_t sm = mine / per, j = mine % per;
                if (sm >= B) break;
                x = sm * B + (int64_t)tid * per + ((sm + 1) % per == 0 ? per - 1 - j : j);
                ++mine;
            } else {
                FASTMF_OMP(omp atomic capture)
                x = next++;
                if (x >= nblk) break;
            }
            sx = (int)(x / B); bx = (int)(x % B); cx = fastmf_block_step_group(B, bx, sx);
            bid = (int64_t)bx * B + cx; lo = block_ptr[bid]; hi = block_ptr[bid + 1];
            seg = work != NULL ? work + lo : own;
            if (seg != NULL) shuffle_block(block_order, seg, lo, hi, seed, epoch, bid);
            if (sx > 0) {
                const int64_t d1 = x - B, d2 = (int64_t)(sx - 1) * B + step_owner(B, cx, sx - 1);
                int spins = 0;
                do {
                    int a1, a2;
                    if (++spins > FASTMF_SPINS) wait_a_little();
                    FASTMF_OMP(omp atomic read seq_cst)
                    a1 = done[d1];
                    FASTMF_OMP(omp atomic read seq_cst)
                    a2 = done[d2];
                    dep_done = a1 && a2;
                } while (!dep_done);
            }
            FASTMF_OMP(omp atomic read seq_cst)
            stop = failed;
            if (!stop && seg == NULL && hi > lo) {  /* no scratch (allocation failed) */
                res[bid].err.status = FASTMF_ERR_NOMEM;
                FASTMF_OMP(omp atomic write seq_cst)
                failed = 1;
                stop = 1;
            }
            if (!stop) {
                fastmf_status bst;
                blk.ublk = user_block; blk.iblk = item_block; blk.rb = bx; blk.cb = cx;
                blk.ranges = ranges;
                blk.ulo = ranges ? ustart[bx] : 0; blk.uhi = ranges ? ustart[bx + 1] : 0;
                blk.ilo = ranges ? istart[cx] : 0; blk.ihi = ranges ? istart[cx + 1] : 0;
                bst = fn(ctx, seg, hi - lo, &blk, &res[bid].loss, &res[bid].err);
                if (bst != FASTMF_OK) {
                    res[bid].err.status = bst;
                    /* a position in work; without work, the rating position itself */
                    if (work == NULL && res[bid].err.pos >= 0 && res[bid].err.pos < hi - lo)
                        res[bid].err.pos = seg[res[bid].err.pos];
                    else if (work != NULL)
                        res[bid].err.pos += lo;
                    FASTMF_OMP(omp atomic write seq_cst)
                    failed = 1;
                }
            }
            FASTMF_OMP(omp atomic write seq_cst)
            done[x] = 1;
        }
        free(own);
    }
    for (id = 0; id < nblk; ++id) {  /* the first failed block in schedule order */
        const int64_t bid = (id % B) * B + fastmf_block_step_group(B, (int)(id % B), (int)(id / B));
        if (res[bid].err.status != FASTMF_OK) {
            *err = res[bid].err;
            st = err->status;
            break;
        }
    }
    /* deterministic reduction: block losses added in schedule order (step, then b) */
    for (s = 0; s < B; ++s)
        for (b = 0; b < B; ++b) total += res[(int64_t)b * B + fastmf_block_step_group(B, b, s)].loss;
    free(res);
    free(ustart);
    free(done);
    *loss = total;
    return st;
}
