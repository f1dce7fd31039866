/* SGD epochs for biased matrix factorization (Funk 2006; Koren, Bell & Volinsky 2009): the update
 * rule and its epoch entry points. The block plan and the blocked schedule are in blocks.c (this
 * file hands it the per-block update, sgd_block), the random streams in rng.c.
 *
 * Math. For each rating (u, i, r) visited, with eta = lr, lambda = reg, lambda_b = reg_bias:
 *     e    = r - (((mu + b_u) + b_i) + p_u . q_i)      (biased = 0: e = r - p_u . q_i)
 *     b_u += eta (e - lambda_b b_u);   b_i += eta (e - lambda_b b_i)        (biased only)
 *     p_u += eta (e q_i - lambda p_u); q_i += eta (e p_u_old - lambda q_i)  (p_u_old: before the step)
 * and the epoch loss is sse = sum e^2 (each e taken before its own update), accumulated in double.
 * The arithmetic is done in the arrays' element type (float or double); mu, lr, reg, reg_bias are
 * rounded to it once. The row update is evaluated as p_u = (1 - eta lambda) p_u + (eta e) q_i (and
 * likewise q_i), two operations per element instead of three. NumPy twin: fastmf.reference.sgd_epoch;
 * the two differ only by rounding (dot-product summation order, that rearrangement, FMA).
 *
 * Invariants. users, items, ratings, order, block arrays are contiguous. Rows of P (n_users x k) and
 * Q (n_items x k) are contiguous, with row strides ld_P, ld_Q >= k (k for a dense matrix; rows padded
 * to 64-byte multiples and 64-byte aligned are faster, see aligned_factors in fastmf/_sgd.pyx).
 * ratings, P, Q, bu, bi share one element type (fastmf_sgd_problem.dtype). P, Q, bu, bi must not
 * overlap (the row loops use restrict). Indices are checked as they are read (order entries in
 * [0, nnz), users in [0, n_users), items in [0, n_items)): a bad entry stops the epoch with
 * FASTMF_ERR_INDEX before its update and never leads to an out-of-bounds access; the updates of the
 * entries before it are kept.
 *
 * Ownership. Every buffer belongs to the caller and is only borrowed during a call; the kernels write
 * P, Q, bu, bi (the model) and the `work` given to the blocked epoch (scratch). The blocked and
 * Hogwild epochs allocate small scratch arrays (per-block or per-thread results) and free them on
 * every path. No globals, no printing, no hidden random state: the blocked epoch's per-block
 * shuffles are xoshiro256** streams seeded from (seed, epoch, block) (rng.h, blocks.h).
 *
 * Threads. fastmf_sgd_epoch is serial and reentrant; for the same inputs it is bit-identical across
 * runs. fastmf_sgd_epoch_blocked (the LIBMF scheme, Chin et al. 2015, scheduled by
 * fastmf_blocks_run in blocks.c) cuts users and items into B groups each; step s holds the B blocks (b, b XOR s) when B is a power of two, else (b, (b + s)
 * mod B), which share no user row and no item row. Up to n_threads OpenMP threads run the blocks,
 * each waiting only for the two blocks of the previous step that share its user group or its item
 * group (a dataflow order, so no thread idles at a barrier while the largest block of a step
 * finishes). No two running blocks share a row, so there is no race, and since blocks that share no
 * row commute, the result does not depend on n_threads at all: it equals the serial epoch over the
 * schedule's order (bit for bit for P, Q, bu, bi; the loss is summed per block in double and the
 * block sums added in schedule order, so it too is identical for every thread count). Each rating is
 * checked to lie in its block, so even a plan that does not match the data cannot cause a race.
 * fastmf_sgd_epoch_hogwild (opt-in, Recht et al. 2011) runs contiguous chunks of the order concurrently
 * WITHOUT locks: two threads may read and write the same row of P or Q (or the same bias) at the same
 * time; an update can then be lost or computed from a partly-updated row. This data race is deliberate
 * (the "Hogwild!" argument: with sparse data collisions are rare and SGD tolerates them); results are
 * not reproducible with more than one thread.
 *
 * SIMD. The dot product keeps four accumulators of 64 bytes (16 floats or 8 doubles) that are added
 * as a fixed tree, and the row updates are plain loops over k on restrict pointers: GCC and Clang
 * vectorise both at -O3 without -ffast-math or any OpenMP flag. When the rows are whole aligned
 * 64-byte vectors (the estimator's padded layout; fastmf_sgd_row_vectors) the vector path runs
 * instead: the same arithmetic in the same order written with vector types, rows of up to 8 vectors
 * unrolled and held in registers between the dot product and the update, and two consecutive
 * ratings that share no row updated side by side (the loop is bound by the latency of dot product,
 * lane tree, error and update, so the second rating's independent chain nearly comes for free). It
 * gives bit-identical results to the element path (tested). With GCC >= 11 on x86-64 Linux
 * the epoch loop is compiled three times (the "ISA passes" below), for x86-64-v4 (AVX-512, 64-byte
 * vectors), x86-64-v3 (AVX2 + FMA, 32-byte vectors) and the baseline (SSE2, 16-byte vectors), each
 * with its own target attribute and a vector type of its register width (one 64-byte type on AVX2
 * was two registers whose shuffles and copies GCC lowered through the stack), and the copy for the
 * running CPU is picked at run time (fastmf_cpu_level; pb->isa may ask for a lower one); elsewhere
 * once, for the build's flags (NEON on aarch64: 16 bytes). A 64-byte chunk stays the unit of the
 * summation order for every width, so the copies differ only by FMA contraction: results are
 * bit-identical across runs on one machine, not across machines.
 *
 * Memory. Ratings are visited through the order (no copy per epoch). A three-stage software pipeline
 * (see run_impl) prefetches the rating arrays a few ratings ahead, and the factor rows too when the
 * rows a run touches outgrow the L2 cache (want_prefetch); with the blocked schedule and ratings
 * stored in block order, a block's working set fits in cache.
 *
 * Divergence. When the running loss becomes non-finite the epoch stops early with FASTMF_ERR_DIVERGED;
 * at the end of every epoch P, Q, bu, bi are scanned for non-finite values (O((n_users + n_items) k)).
 */
#ifndef FASTMF_SGD_TEMPLATE_PASS

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "sgd.h"
#include "blocks.h"


/* prefetch distances (ratings ahead) for the rating arrays and for the factor rows */
#ifndef FASTMF_PF_INDEX
#define FASTMF_PF_INDEX 16
#endif
#ifndef FASTMF_PF_ROWS
#define FASTMF_PF_ROWS 4
#endif


/* The vector path (GCC and Clang vector extensions; see vdot): rows of up to FASTMF_MAX_NV 64-byte
 * vectors get a fully unrolled copy of the epoch loop. Define FASTMF_NO_VECEXT to build without it. */
#if !defined(FASTMF_NO_VECEXT) && (defined(__GNUC__) || defined(__clang__))
#define FASTMF_VECEXT 1
#else
#define FASTMF_VECEXT 0
#endif
#define FASTMF_MAX_NV 8
/* FASTMF_SHUFFLE(s, mask type, lane indices...): the lanes of s in that order (hsum's lane tree) */
#if FASTMF_VECEXT && defined(__clang__)
#define FASTMF_SHUFFLE(s, type, ...) __builtin_shufflevector((s), (s), __VA_ARGS__)
#elif FASTMF_VECEXT
typedef int32_t fastmf_i32x16 __attribute__((vector_size(64)));
typedef int32_t fastmf_i32x8 __attribute__((vector_size(32)));
typedef int32_t fastmf_i32x4 __attribute__((vector_size(16)));
typedef int64_t fastmf_i64x8 __attribute__((vector_size(64)));
typedef int64_t fastmf_i64x4 __attribute__((vector_size(32)));
typedef int64_t fastmf_i64x2 __attribute__((vector_size(16)));
#define FASTMF_SHUFFLE(s, type, ...) __builtin_shuffle((s), (type){__VA_ARGS__})
#endif
/* the machine vector width (bytes) of a build without multi-versioning: the widest its flags enable */
#if defined(__AVX512F__)
#define FASTMF_NATIVE_VW 64
#elif defined(__AVX__)
#define FASTMF_NATIVE_VW 32
#else
#define FASTMF_NATIVE_VW 16
#endif
#define FASTMF_CAT_(a, b) a##b
#define FASTMF_CAT(a, b) FASTMF_CAT_(a, b)
#define RFX(name) FASTMF_CAT(name, REAL_TAG) /* a name of the element type's pass */

/* Hogwild chunks (threads) at most */
#define FASTMF_MAX_HOGWILD_THREADS 1024

/* how often (in ratings) the running loss is tested for divergence; a power of two */
#define FASTMF_LOSS_CHECK 1024

/* ---------------------------------------------------------------------- typed kernels (templated) */
/* Outcome of running the update over one stretch of an order: err.which is a FASTMF_SGD_BAD_* code
 * and err.pos a position in the stretch when err.status != OK. */
typedef struct {
    fastmf_error err;
    double sse;
} run_result;

/* what stage B of the epoch pipeline reads (see run_impl) */
typedef struct {
    const int64_t *order;
    int64_t nnz;
    const int32_t *users, *items;
    uint64_t n_users, n_items;
    const int32_t *ublk, *iblk;
    int32_t rb, cb;
    int blocked;
    int ranges;                   /* blocked, and block (rb, cb) is users [ulo, ulo + ulen) x items
                                     [ilo, ilo + ilen): one compare per index checks bounds and block */
    int64_t ulo, ilo;
    uint64_t ulen, ilen;
    const void *P, *Q;
    int64_t ldp, ldq, k;
    int prefetch;      /* prefetch the factor rows (see want_prefetch) */
} stage_ctx;

/* run the SGD update over order[0..n-1]; when blk is not NULL every rating must lie in that block */
typedef run_result (*run_fn)(const fastmf_sgd_problem *pb, const int64_t *order, int64_t n,
                             const fastmf_block *blk, int prefetch);
/* first index of a non-finite value in x[0..n-1], or -1 */
typedef int64_t (*scan_fn)(const void *x, int64_t n);

#define FASTMF_SGD_TEMPLATE_PASS
#define REAL float
#define REAL_TAG _f32
#define FASTMF_REAL_BITS 32
#define SFX(name) FASTMF_CAT(name, REAL_TAG)
#define FASTMF_REAL_F32 1
#include "sgd.c"
#undef REAL
#undef REAL_TAG
#undef FASTMF_REAL_BITS
#undef SFX
#undef FASTMF_REAL_F32
#define FASTMF_REAL_F32 0
#define REAL double
#define REAL_TAG _f64
#define FASTMF_REAL_BITS 64
#define SFX(name) FASTMF_CAT(name, REAL_TAG)
#include "sgd.c"
#undef REAL
#undef REAL_TAG
#undef FASTMF_REAL_BITS
#undef SFX
#undef FASTMF_REAL_F32
#undef FASTMF_SGD_TEMPLATE_PASS

/* ----------------------------------------------------------------------------------- drivers */
int fastmf_sgd_isa(int isa)
{
    const int best = fastmf_cpu_level();
    if (isa == FASTMF_ISA_AUTO) return best;
    if (isa < FASTMF_ISA_BASE || isa > best) return -1;
    return isa;
}

int fastmf_sgd_vector_bytes(int isa)
{
    switch (fastmf_sgd_isa(isa)) {
#if defined(FASTMF_HAVE_CLONES)
    case FASTMF_ISA_V4: return 64;
    case FASTMF_ISA_V3: return 32;
    case FASTMF_ISA_BASE: return 16;
#else
    case FASTMF_ISA_BASE: return FASTMF_NATIVE_VW;
#endif
    default: return 0;
    }
}

/* the copy of the epoch loop for the problem's element type and instruction set (pb->isa checked) */
static run_fn pick_run(const fastmf_sgd_problem *pb)
{
    const int f64 = pb->dtype == FASTMF_FLOAT64;
    switch (fastmf_sgd_isa(pb->isa)) {
#if defined(FASTMF_HAVE_CLONES)
    case FASTMF_ISA_V4: return f64 ? sgd_run_f64_v4 : sgd_run_f32_v4;
    case FASTMF_ISA_V3: return f64 ? sgd_run_f64_v3 : sgd_run_f32_v3;
#endif
    default: return f64 ? sgd_run_f64_v1 : sgd_run_f32_v1;
    }
}

int fastmf_sgd_row_vectors(const fastmf_sgd_problem *pb)
{
#if FASTMF_VECEXT
    if (pb != NULL && (pb->dtype == FASTMF_FLOAT64 ? vector_layout_f64(pb) : vector_layout_f32(pb)))
        return (int)(pb->n_factors / (pb->dtype == FASTMF_FLOAT64 ? 8 : 16));
#else
    (void)pb;
#endif
    return 0;
}

/* Prefetching the factor rows a few ratings ahead pays when they come from L3 or memory, and costs
 * (about 10% measured) when a block's rows already sit in L2, where out-of-order execution hides the
 * latency by itself. So rows are prefetched when the rows one run touches -- all of P and Q, or with
 * the blocked schedule about 1/groups of each -- would fill more than half of the L2 cache of the
 * machine running the code: pb->l2_bytes (the Python layer passes a core's share from sysfs,
 * fastmf._machine.cache_per_core, overridable with FASTMF_CACHE_SIZES), else sysconf where the C
 * library reports it, else 1 MiB. */
static int want_prefetch(const fastmf_sgd_problem *pb, int64_t groups)
{
    const double size = pb->dtype == FASTMF_FLOAT64 ? 8.0 : 4.0;
    const double ld = (double)(pb->ld_P > pb->ld_Q ? pb->ld_P : pb->ld_Q);
    const double bytes = ((double)pb->n_users + (double)pb->n_items) / (double)groups * ld * size;
    double l2 = 1048576.0;
    if (pb->l2_bytes > 0) return bytes > 0.5 * (double)pb->l2_bytes;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    {
        const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
        if (v > 0) l2 = (double)v;
    }
#endif
    return bytes > 0.5 * l2;
}

/* the problem is usable: sizes non-negative, arrays present, element type known */
static int problem_ok(const fastmf_sgd_problem *pb)
{
    if (pb == NULL) return 0;
    if (pb->dtype != FASTMF_FLOAT32 && pb->dtype != FASTMF_FLOAT64) return 0;
    if (fastmf_sgd_isa(pb->isa) < 0) return 0;
    if (pb->nnz < 0 || pb->n_users < 0 || pb->n_items < 0 || pb->n_factors < 0) return 0;
    if (pb->ld_P < pb->n_factors || pb->ld_Q < pb->n_factors) return 0;
    if (pb->nnz > 0 && (pb->users == NULL || pb->items == NULL || pb->ratings == NULL)) return 0;
    if (pb->n_factors > 0 && ((pb->n_users > 0 && pb->P == NULL) || (pb->n_items > 0 && pb->Q == NULL)))
        return 0;
    if (pb->biased && ((pb->n_users > 0 && pb->bu == NULL) || (pb->n_items > 0 && pb->bi == NULL)))
        return 0;
    return 1;
}

/* first row of an n x k matrix with row stride ld holding a non-finite value, or -1 */
static int64_t scan_rows(scan_fn scan, const void *x, int64_t n, int64_t k, int64_t ld, size_t size)
{
    int64_t r;
    if (k == 0 || n == 0) return -1;
    if (ld == k) {
        const int64_t j = scan(x, n * k);
        return j < 0 ? -1 : j / k;
    }
    for (r = 0; r < n; ++r)
        if (scan((const char *)x + (size_t)(r * ld) * size, k) >= 0) return r;
    return -1;
}

/* end-of-epoch check: every factor and bias finite, else DIVERGED with the array and row */
static fastmf_status check_model(const fastmf_sgd_problem *pb, fastmf_error *err)
{
    const scan_fn scan = pb->dtype == FASTMF_FLOAT64 ? scan_nonfinite_f64 : scan_nonfinite_f32;
    const size_t size = pb->dtype == FASTMF_FLOAT64 ? sizeof(double) : sizeof(float);
    int64_t j;
    if ((j = scan_rows(scan, pb->P, pb->n_users, pb->n_factors, pb->ld_P, size)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SGD_BAD_P);
    if ((j = scan_rows(scan, pb->Q, pb->n_items, pb->n_factors, pb->ld_Q, size)) >= 0)
        return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SGD_BAD_Q);
    if (pb->biased) {
        if ((j = scan(pb->bu, pb->n_users)) >= 0)
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SGD_BAD_BU);
        if ((j = scan(pb->bi, pb->n_items)) >= 0)
            return fastmf_fail(err, FASTMF_ERR_DIVERGED, j, FASTMF_SGD_BAD_BI);
    }
    return FASTMF_OK;
}

fastmf_status fastmf_sgd_epoch(const fastmf_sgd_problem *pb, const int64_t *order, int64_t n_order,
                               double *sse, fastmf_error *err)
{
    run_result r;
    *sse = 0.0;
    fastmf_error_clear(err);
    if (!problem_ok(pb) || n_order < 0 || (n_order > 0 && order == NULL))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    r = pick_run(pb)(pb, order, n_order, NULL, want_prefetch(pb, 1));
    *sse = r.sse;
    if (r.err.status != FASTMF_OK) {
        *err = r.err;
        return r.err.status;
    }
    return check_model(pb, err);
}

fastmf_status fastmf_sgd_epoch_hogwild(const fastmf_sgd_problem *pb, const int64_t *order,
                                       int64_t n_order, int n_threads, double *sse,
                                       fastmf_error *err)
{
    const run_fn run = pb != NULL ? pick_run(pb) : NULL;
    run_result *res;
    int nt = n_threads < 1 ? 1 : n_threads, t, pf;
    double total = 0.0;

    *sse = 0.0;
    fastmf_error_clear(err);
    if (!problem_ok(pb) || n_order < 0 || (n_order > 0 && order == NULL))
        return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    if (nt > FASTMF_MAX_HOGWILD_THREADS) nt = FASTMF_MAX_HOGWILD_THREADS;
    nt = fastmf_clamp_threads(nt, n_order);
    res = (run_result *)malloc((size_t)nt * sizeof(run_result));
    if (res == NULL) return fastmf_fail(err, FASTMF_ERR_NOMEM, -1, -1);
    pf = want_prefetch(pb, 1);

    /* chunk t = order[n*t/nt .. n*(t+1)/nt); threads race on shared rows (see the file comment) */
    FASTMF_OMP(omp parallel for num_threads(nt) schedule(static, 1))
    for (t = 0; t < nt; ++t) {
        const int64_t lo = (int64_t)((double)n_order * t / nt);
        const int64_t hi = t + 1 == nt ? n_order : (int64_t)((double)n_order * (t + 1) / nt);
        res[t] = run(pb, order + lo, hi - lo, NULL, pf);
        if (res[t].err.status != FASTMF_OK) res[t].err.pos += lo;
    }

    for (t = 0; t < nt; ++t) {  /* fixed reduction order; the first failing chunk is reported */
        if (res[t].err.status != FASTMF_OK) {
            const fastmf_status st = res[t].err.status;
            *err = res[t].err;
            free(res);
            return st;
        }
        total += res[t].sse;
    }
    free(res);
    *sse = total;
    return check_model(pb, err);
}

/* ------------------------------------------------------------------------------ blocked epoch */
/* what the per-block update of the blocked epoch needs besides the block */
typedef struct {
    const fastmf_sgd_problem *pb;
    run_fn run;
    int prefetch;
} sgd_blocks_ctx;

/* the MF update over one block's shuffled ratings (a fastmf_block_fn) */
static fastmf_status sgd_block(void *ctx, const int64_t *order, int64_t n, const fastmf_block *blk,
                               double *loss, fastmf_error *err)
{
    const sgd_blocks_ctx *c = (const sgd_blocks_ctx *)ctx;
    run_result r;
    if (fastmf_interrupted(c->pb->interrupt)) {  /* between blocks: the scheduler starts no other */
        *loss = 0.0;
        return fastmf_fail(err, FASTMF_ERR_INTERRUPTED, -1, -1);
    }
    r = c->run(c->pb, order, n, blk, c->prefetch);
    *loss = r.sse;
    *err = r.err;
    return r.err.status;
}

fastmf_status fastmf_sgd_epoch_blocked(const fastmf_sgd_problem *pb, int n_blocks,
                                       const int32_t *user_block, const int32_t *item_block,
                                       const int64_t *block_ptr, const int64_t *block_order,
                                       int64_t *work, uint64_t seed, uint64_t epoch, int n_threads,
                                       double *sse, fastmf_error *err)
{
    sgd_blocks_ctx c;
    fastmf_status st;

    *sse = 0.0;
    fastmf_error_clear(err);
    if (!problem_ok(pb)) return fastmf_fail(err, FASTMF_ERR_VALUE, -1, -1);
    c.pb = pb;
    c.run = pick_run(pb);
    c.prefetch = want_prefetch(pb, n_blocks < 1 ? 1 : n_blocks);
    st = fastmf_blocks_run(n_blocks, pb->nnz, user_block, pb->n_users, item_block, pb->n_items,
                           block_ptr, block_order, work, seed, epoch, n_threads, sgd_block, &c,
                           sse, err);
    if (st != FASTMF_OK) return st;
    return check_model(pb, err);
}


#elif !defined(FASTMF_SGD_ISA_PASS) /* the typed kernels, compiled once per REAL (float, double) */

/* elements of one 64-byte chunk: the unit of the dot product's summation order (see dot) */
#define FASTMF_LANES (64 / (int)sizeof(REAL))

#if FASTMF_VECEXT
/* the problem's rows are whole aligned vectors: k > 0 a multiple of FASTMF_LANES, P and Q 64-byte
 * aligned, row strides multiples of FASTMF_LANES */
static int SFX(vector_layout)(const fastmf_sgd_problem *pb)
{
    return pb->n_factors > 0 && pb->n_factors % FASTMF_LANES == 0 && pb->ld_P % FASTMF_LANES == 0
           && pb->ld_Q % FASTMF_LANES == 0 && ((uintptr_t)pb->P & 63) == 0
           && ((uintptr_t)pb->Q & 63) == 0;
}
#endif


/* first non-finite entry of x[0..n-1] or -1: x - x is 0 for finite x and NaN otherwise, so lane sums
 * of x - x over a chunk flag it, and only a flagged chunk is searched element by element. With vector
 * types the sums run in two 64-byte accumulators (about 10x faster than the scalar-array form, which
 * GCC compiles to stack traffic; this scan runs after every epoch). */
static int64_t SFX(scan_nonfinite)(const void *xv, int64_t n)
{
    const REAL *x = (const REAL *)xv;
    int64_t lo, j;
    for (lo = 0; lo < n; lo += 4096) {
        const int64_t hi = n - lo < 4096 ? n : lo + 4096;
        int flagged = 0;
        j = lo;
#if FASTMF_VECEXT
        {
            typedef REAL vec64 __attribute__((vector_size(64)));
            vec64 a0 = {0}, a1 = {0}, v0, v1;
            int l;
            for (; j + 2 * FASTMF_LANES <= hi; j += 2 * FASTMF_LANES) {
                memcpy(&v0, x + j, sizeof v0);  /* unaligned loads */
                memcpy(&v1, x + j + FASTMF_LANES, sizeof v1);
                a0 += v0 - v0;
                a1 += v1 - v1;
            }
            a0 += a1;
            for (l = 0; l < FASTMF_LANES; ++l) flagged |= a0[l] != 0;  /* NaN != 0 */
        }
#endif
        for (; j < hi; ++j) flagged |= !isfinite(x[j]);
        if (flagged) {
            for (j = lo; j < hi; ++j)
                if (!isfinite(x[j])) return j;
        }
    }
    return -1;
}


/* The epoch loop, compiled once per instruction set (an "ISA pass" of this file): with function
 * multi-versioning (FASTMF_HAVE_CLONES) for x86-64-v4 (AVX-512, 64-byte vectors), x86-64-v3 (AVX2 +
 * FMA, 32-byte vectors) and the baseline (SSE2, 16-byte vectors), each copy compiled with its own
 * target attribute and vector width and picked at run time by pick_run from what the CPU supports
 * (fastmf_cpu_level); otherwise once, for the build's flags, with the widest vector they enable
 * (64 bytes with AVX-512F, 32 with AVX, else 16: SSE2, NEON). */
#define FASTMF_SGD_ISA_PASS
#undef SFX
#define SFX(name) FASTMF_CAT(FASTMF_CAT(name, REAL_TAG), ISA_TAG)
#if defined(FASTMF_HAVE_CLONES)
#define ISA_TAG _v4
#define FASTMF_VW 64
#define FASTMF_TGT __attribute__((target("arch=x86-64-v4")))
#include "sgd.c"
#undef ISA_TAG
#undef FASTMF_VW
#undef FASTMF_TGT
#define ISA_TAG _v3
#define FASTMF_VW 32
#define FASTMF_TGT __attribute__((target("arch=x86-64-v3")))
#include "sgd.c"
#undef ISA_TAG
#undef FASTMF_VW
#undef FASTMF_TGT
#endif
#define ISA_TAG _v1
#if defined(FASTMF_HAVE_CLONES)
#define FASTMF_VW 16
#else
#define FASTMF_VW FASTMF_NATIVE_VW
#endif
#define FASTMF_TGT
#include "sgd.c"
#undef ISA_TAG
#undef FASTMF_VW
#undef FASTMF_TGT
#undef SFX
#define SFX(name) FASTMF_CAT(name, REAL_TAG)
#undef FASTMF_SGD_ISA_PASS
#undef FASTMF_LANES

#else /* FASTMF_SGD_ISA_PASS: the epoch loop of one element type for one instruction set */

/* p . q, summed in an order fixed by the source (not by the instruction set): the k elements are cut
 * into chunks of FASTMF_LANES (64 bytes: one AVX-512 register, two AVX2 or four SSE2 registers);
 * chunk m is multiplied lane by lane into accumulator m mod 4 (four independent chains, so the sum
 * does not wait on one long chain of additions); the accumulators are combined as (A0 + A2) + (A1 + A3),
 * the lanes of that as a balanced tree (lane l + lane l + LANES/2, and so on), and the k mod LANES
 * trailing products, summed in sequence, added last. The vector path (vdot) computes exactly this. */
FASTMF_TGT static inline REAL SFX(dot)(const REAL *restrict p, const REAL *restrict q, int64_t k)
{
    REAL a0[FASTMF_LANES], a1[FASTMF_LANES], a2[FASTMF_LANES], a3[FASTMF_LANES], tail = 0;
    const int64_t L = FASTMF_LANES;
    int64_t j = 0;
    int l;
    for (l = 0; l < FASTMF_LANES; ++l) a0[l] = a1[l] = a2[l] = a3[l] = 0;
    for (; j + 4 * L <= k; j += 4 * L)
        for (l = 0; l < FASTMF_LANES; ++l) {
            a0[l] += p[j + l] * q[j + l];
            a1[l] += p[j + L + l] * q[j + L + l];
            a2[l] += p[j + 2 * L + l] * q[j + 2 * L + l];
            a3[l] += p[j + 3 * L + l] * q[j + 3 * L + l];
        }
    if (j + L <= k) {  /* at most three whole chunks are left */
        for (l = 0; l < FASTMF_LANES; ++l) a0[l] += p[j + l] * q[j + l];
        j += L;
        if (j + L <= k) {
            for (l = 0; l < FASTMF_LANES; ++l) a1[l] += p[j + l] * q[j + l];
            j += L;
            if (j + L <= k) {
                for (l = 0; l < FASTMF_LANES; ++l) a2[l] += p[j + l] * q[j + l];
                j += L;
            }
        }
    }
    for (; j < k; ++j) tail += p[j] * q[j];
    for (l = 0; l < FASTMF_LANES; ++l) a0[l] = (a0[l] + a2[l]) + (a1[l] + a3[l]);
    if (FASTMF_LANES == 16)
        for (l = 0; l < 8; ++l) a0[l] += a0[l + 8];
    for (l = 0; l < 4; ++l) a0[l] += a0[l + 4];
    for (l = 0; l < 2; ++l) a0[l] += a0[l + 2];
    return (a0[0] + a0[1]) + tail;
}

#if FASTMF_VECEXT
/* The vector path, taken when k is a multiple of FASTMF_LANES and P, Q are 64-byte aligned with row
 * strides that are multiples of 64 bytes (the padded layout of aligned_factors): a row is nv whole
 * 64-byte chunks, each held as FASTMF_NH machine vectors of FASTMF_VW bytes (GCC/Clang vector
 * extensions, one type per instruction-set copy: 64 bytes on AVX-512, 32 on AVX2, 16 on SSE2 and
 * NEON, so that every vector is one register and nothing is lowered through the stack), the row is
 * loaded once for the dot product and the update, and for nv <= 8 chunks per row the loops are
 * unrolled at compile time. Same arithmetic, in the same order, as dot and update_rows above (a
 * 64-byte chunk's lanes are the lanes of its FASTMF_NH vectors, and the lane tree of hsum starts by
 * adding the vectors pairwise): the two paths give bit-identical results (tested), whatever the
 * vector width. */
#define FASTMF_VL (FASTMF_VW / (FASTMF_REAL_F32 ? 4 : 8))  /* lanes per machine vector */
#define FASTMF_NH (64 / FASTMF_VW)                          /* machine vectors per 64-byte chunk */
/* the shuffle masks of hsum: their integer vector type, and the lanes after the first 8 / 4 */
#if FASTMF_VL == 16
#define FASTMF_MASK_T fastmf_i32x16
#define FASTMF_MASK_TAIL8 , 8, 9, 10, 11, 12, 13, 14, 15
#define FASTMF_MASK_TAIL4 , 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
#elif FASTMF_VL == 8
#define FASTMF_MASK_T FASTMF_CAT(FASTMF_CAT(fastmf_i, FASTMF_REAL_BITS), x8)
#define FASTMF_MASK_TAIL8
#define FASTMF_MASK_TAIL4 , 4, 5, 6, 7
#elif FASTMF_VL == 4
#define FASTMF_MASK_T FASTMF_CAT(FASTMF_CAT(fastmf_i, FASTMF_REAL_BITS), x4)
#define FASTMF_MASK_TAIL4
#endif
typedef REAL SFX(vec) __attribute__((vector_size(FASTMF_VW)));
#define VEC SFX(vec)

/* the lanes of the 64-byte chunk s[0..FASTMF_NH-1] added as a balanced tree: lane l + lane
 * l + LANES/2, ..., then lanes 0 + 1. Its first levels add whole vectors (s[h] + s[h + NH/2]); the
 * rest are shuffles within one vector: the lanes that are summed, and the order, are those of one
 * 64-byte vector for every FASTMF_VW. */
FASTMF_TGT static FASTMF_INLINE REAL SFX(hsum)(const VEC *sp)
{
#if FASTMF_NH == 4
    VEC s = (sp[0] + sp[2]) + (sp[1] + sp[3]);
#elif FASTMF_NH == 2
    VEC s = sp[0] + sp[1];
#else
    VEC s = sp[0];
#endif
#if FASTMF_VL == 16
    s += FASTMF_SHUFFLE(s, fastmf_i32x16, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
#endif
#if FASTMF_VL >= 8 && FASTMF_REAL_F32
    s += FASTMF_SHUFFLE(s, FASTMF_MASK_T, 4, 5, 6, 7, 0, 1, 2, 3 FASTMF_MASK_TAIL8);
#elif FASTMF_VL == 8
    s += FASTMF_SHUFFLE(s, fastmf_i64x8, 4, 5, 6, 7, 0, 1, 2, 3);
#endif
#if FASTMF_VL >= 4
    s += FASTMF_SHUFFLE(s, FASTMF_MASK_T, 2, 3, 0, 1 FASTMF_MASK_TAIL4);
#endif
    return s[0] + s[1];
}

/* (p . q, with p and q copied into pv, qv for the update) over nv 64-byte chunks */
FASTMF_TGT static FASTMF_INLINE REAL SFX(vdot)(const VEC *restrict p, const VEC *restrict q,
                                               VEC *restrict pv, VEC *restrict qv, const int nv)
{
    VEC a[4][FASTMF_NH], sum[FASTMF_NH];
    int m, h;
    for (m = 0; m < 4; ++m)
        for (h = 0; h < FASTMF_NH; ++h) a[m][h] = (VEC){0};
    for (m = 0; m < nv; ++m)
        for (h = 0; h < FASTMF_NH; ++h) {
            const int j = m * FASTMF_NH + h;
            pv[j] = p[j];
            qv[j] = q[j];
            a[m & 3][h] += pv[j] * qv[j];
        }
    for (h = 0; h < FASTMF_NH; ++h) sum[h] = (a[0][h] + a[2][h]) + (a[1][h] + a[3][h]);
    return SFX(hsum)(sum);
}

/* p = a p + g q, q = a q + g p_old from the copies pv, qv (nv 64-byte chunks) */
FASTMF_TGT static FASTMF_INLINE void SFX(vupdate)(VEC *restrict p, VEC *restrict q,
                                                  const VEC *restrict pv, const VEC *restrict qv,
                                                  const int nv, REAL a, REAL g)
{
    int j;
    for (j = 0; j < nv * FASTMF_NH; ++j) {
        p[j] = g * qv[j] + a * pv[j];
        q[j] = g * pv[j] + a * qv[j];
    }
}

/* p = a p + g q, q = a q + g p_old in place (nv 64-byte chunks): vupdate reading the rows again
 * instead of copies (same arithmetic) */
FASTMF_TGT static FASTMF_INLINE void SFX(vupdate_in)(VEC *restrict p, VEC *restrict q, const int nv,
                                                     REAL a, REAL g)
{
    int j;
    for (j = 0; j < nv * FASTMF_NH; ++j) {
        const VEC pj = p[j], qj = q[j];
        p[j] = g * qj + a * pj;
        q[j] = g * pj + a * qj;
    }
}

/* Whether a group's rows are kept in registers (as copies) between the dot product and the update,
 * or read again from the rows (in L1) for the update: copies while the group's rows take at most
 * half of the 16 vector registers of SSE2 / AVX2 (more spill to the stack: at k = 64 on AVX2 the
 * copies cost 40% of the speed), and always with AVX-512's 32 registers of 64 bytes (measured:
 * as fast as reloading there, and unchanged from before). */
#define FASTMF_COPY_ROWS(nv) (FASTMF_VW == 64 || FASTMF_GROUP * 2 * (nv) * FASTMF_NH <= 8)

/* the dot product for a row length of nv chunks known only at run time (rows longer than
 * FASTMF_MAX_NV chunks; their update is update_rows, which the compiler vectorises) */
FASTMF_TGT static FASTMF_INLINE REAL SFX(vdot_n)(const VEC *restrict p, const VEC *restrict q, int nv)
{
    VEC a[4][FASTMF_NH], sum[FASTMF_NH];
    int m, h;
    for (m = 0; m < 4; ++m)
        for (h = 0; h < FASTMF_NH; ++h) a[m][h] = (VEC){0};
    for (m = 0; m < nv; ++m)
        for (h = 0; h < FASTMF_NH; ++h) a[m & 3][h] += p[m * FASTMF_NH + h] * q[m * FASTMF_NH + h];
    for (h = 0; h < FASTMF_NH; ++h) sum[h] = (a[0][h] + a[2][h]) + (a[1][h] + a[3][h]);
    return SFX(hsum)(sum);
}
#endif

/* p += lr (e q - reg p); q += lr (e p_old - reg q), computed as p = a p + g q and q = a q + g p_old
 * with a = 1 - lr reg and g = lr e (two floating-point operations per element instead of three).
 * p_old[j] is read before p[j] is written; p and q are distinct rows of distinct arrays (restrict). */
FASTMF_TGT static inline void SFX(update_rows)(REAL *restrict p, REAL *restrict q, int64_t k, REAL a, REAL g)
{
    int64_t j;
    for (j = 0; j < k; ++j) {
        const REAL pj = p[j], qj = q[j];
        p[j] = g * qj + a * pj;
        q[j] = g * pj + a * qj;
    }
}

/* prefetch (for writing) the cache lines of a row of k elements */
FASTMF_TGT static inline void SFX(prefetch_row)(const REAL *row, int64_t k)
{
    const char *c = (const char *)((uintptr_t)row & ~(uintptr_t)63), *end = (const char *)(row + k);
    for (; c < end; c += 64) FASTMF_PREFETCH_W(c);
}

#define FASTMF_RING 8  /* ring of checked entries between stages B and C (a power of two) */
#ifndef FASTMF_GROUP
#define FASTMF_GROUP 2  /* ratings updated side by side on the vector path (3 and 4 spill registers) */
#endif
/* the ring holds positions t .. t + FASTMF_GROUP - 1 + FASTMF_PF_ROWS at once, and a stage B failure
 * at x + FASTMF_PF_ROWS (x >= t) must leave the group t .. t + FASTMF_GROUP - 1 valid */
#if FASTMF_RING < FASTMF_PF_ROWS + FASTMF_GROUP || FASTMF_PF_ROWS < FASTMF_GROUP
#error "FASTMF_RING, FASTMF_PF_ROWS and FASTMF_GROUP do not fit together"
#endif

/* the ring entries t .. t + FASTMF_GROUP - 1 have pairwise distinct users and distinct items */
FASTMF_TGT static FASTMF_INLINE int SFX(distinct)(const int32_t *ring_u, const int32_t *ring_i, int64_t t)
{
    int a, b;
    for (a = 0; a < FASTMF_GROUP; ++a)
        for (b = a + 1; b < FASTMF_GROUP; ++b) {
            const int sa = (int)((t + a) & (FASTMF_RING - 1)), sb = (int)((t + b) & (FASTMF_RING - 1));
            if (ring_u[sa] == ring_u[sb] || ring_i[sa] == ring_i[sb]) return 0;
        }
    return 1;
}

/* stage B of position x: -1 when the entry is valid (then kept in the ring and its rows
 * prefetched), else the FASTMF_SGD_BAD_* code */
FASTMF_TGT FASTMF_INLINE
static int SFX(stage_b)(const stage_ctx *c, int64_t x, int64_t *ring_idx, int32_t *ring_u,
                        int32_t *ring_i)
{
    const int64_t f = c->order[x];
    const int slot = (int)(x & (FASTMF_RING - 1));
    int32_t u, i;
    if ((uint64_t)f >= (uint64_t)c->nnz) return FASTMF_SGD_BAD_ORDER;
    u = c->users[f];
    i = c->items[f];
    if (c->ranges) {  /* the block's ranges lie inside [0, n_users) x [0, n_items) */
        if ((uint64_t)((int64_t)u - c->ulo) >= c->ulen || (uint64_t)((int64_t)i - c->ilo) >= c->ilen) {
            if ((uint64_t)(int64_t)u >= c->n_users) return FASTMF_SGD_BAD_USER;
            if ((uint64_t)(int64_t)i >= c->n_items) return FASTMF_SGD_BAD_ITEM;
            return FASTMF_SGD_BAD_PLAN;
        }
    } else {
        if ((uint64_t)(int64_t)u >= c->n_users) return FASTMF_SGD_BAD_USER;
        if ((uint64_t)(int64_t)i >= c->n_items) return FASTMF_SGD_BAD_ITEM;
        if (c->blocked && (c->ublk[u] != c->rb || c->iblk[i] != c->cb)) return FASTMF_SGD_BAD_PLAN;
    }
    ring_idx[slot] = f;
    ring_u[slot] = u;
    ring_i[slot] = i;
    if (c->prefetch) {
        SFX(prefetch_row)((const REAL *)c->P + (int64_t)u * c->ldp, c->k);
        SFX(prefetch_row)((const REAL *)c->Q + (int64_t)i * c->ldq, c->k);
    }
    return -1;
}

/* The epoch loop over order[0..n-1] as a three-stage software pipeline:
 *   stage A (position t + FASTMF_PF_INDEX): prefetch users[], items[], ratings[] of that rating;
 *   stage B (position t + FASTMF_PF_ROWS): check the position and its user and item (and, for a
 *     blocked epoch, that the rating lies in its block), keep them in a small ring, and prefetch the
 *     two factor rows when `prefetch`;
 *   stage C (position t): the SGD update -- on the vector path (nv != 0) of ratings t .. t +
 *     FASTMF_GROUP - 1 at once when no two of them share a user or an item (the result is the same
 *     as one at a time), else of rating t alone.
 * Stage B runs in order, so when it rejects position x the updates of positions < x are done and
 * none after: the same outcome as checking each rating just before its update.
 * `nv` (0: element path; 1..FASTMF_MAX_NV: vectors per row; -1: vector path with the row length
 * read at run time) and `biased` are compile-time constants in each copy; `blocked` is a run-time
 * flag (see sgd_run). */
FASTMF_TGT FASTMF_INLINE
static run_result SFX(run_impl)(const fastmf_sgd_problem *pb, const int64_t *order, int64_t n,
                                const fastmf_block *blk, const int prefetch, const int biased,
                                const int blocked, const int nv)
{
    const int64_t k = pb->n_factors, nnz = pb->nnz, ldp = pb->ld_P, ldq = pb->ld_Q;
    const uint64_t n_users = (uint64_t)pb->n_users, n_items = (uint64_t)pb->n_items;
    const int32_t *users = pb->users, *items = pb->items;
    const REAL *ratings = (const REAL *)pb->ratings;
    REAL *P = (REAL *)pb->P, *Q = (REAL *)pb->Q, *bu = (REAL *)pb->bu, *bi = (REAL *)pb->bi;
    const REAL mu = (REAL)pb->mu, lr = (REAL)pb->lr, reg = (REAL)pb->reg, regb = (REAL)pb->reg_bias;
    const REAL decay = 1 - lr * reg;
    int64_t ring_idx[FASTMF_RING];
    int32_t ring_u[FASTMF_RING], ring_i[FASTMF_RING];
    int64_t limit = n, t, x;
    int bad = -1, step = 1;
    stage_ctx ctx;
    run_result out;
    double sse = 0.0;

    ctx.order = order; ctx.nnz = nnz; ctx.users = users; ctx.items = items;
    ctx.n_users = n_users; ctx.n_items = n_items;
    ctx.ublk = blocked ? blk->ublk : NULL; ctx.iblk = blocked ? blk->iblk : NULL;
    ctx.rb = blocked ? blk->rb : 0; ctx.cb = blocked ? blk->cb : 0;
    ctx.blocked = blocked; ctx.ranges = blocked && blk->ranges;
    ctx.ulo = ctx.ranges ? blk->ulo : 0; ctx.ulen = ctx.ranges ? (uint64_t)(blk->uhi - blk->ulo) : 0;
    ctx.ilo = ctx.ranges ? blk->ilo : 0; ctx.ilen = ctx.ranges ? (uint64_t)(blk->ihi - blk->ilo) : 0;
    ctx.P = P; ctx.Q = Q;
    ctx.ldp = ldp; ctx.ldq = ldq; ctx.k = k; ctx.prefetch = prefetch && k > 0;

    out.err.status = FASTMF_OK; out.err.which = -1; out.err.pos = -1;

    for (x = 0; x < n && x < FASTMF_PF_ROWS; ++x) {
        if ((bad = SFX(stage_b)(&ctx, x, ring_idx, ring_u, ring_i)) >= 0) {
            limit = x;
            break;
        }
    }

    for (t = 0; t < limit; t += step) {
        const int slot = (int)(t & (FASTMF_RING - 1));
        const int64_t idx = ring_idx[slot];
        const int32_t u = ring_u[slot], i = ring_i[slot];
        REAL *p, *q, e;
        /* FASTMF_GROUP ratings at once (vector path) when no two share a row: independent chains */
        const int pair = nv > 0 && t + FASTMF_GROUP - 1 < limit
                         && SFX(distinct)(ring_u, ring_i, t);
        step = pair ? FASTMF_GROUP : 1;

        for (x = t; x < t + step; ++x) {
            if (x + FASTMF_PF_INDEX < n) {                                          /* stage A */
                const int64_t f = order[x + FASTMF_PF_INDEX];
                if ((uint64_t)f < (uint64_t)nnz) {
                    FASTMF_PREFETCH(users + f);
                    FASTMF_PREFETCH(items + f);
                    FASTMF_PREFETCH(ratings + f);
                }
            }
            if (x + FASTMF_PF_ROWS < limit                                          /* stage B */
                && (bad = SFX(stage_b)(&ctx, x + FASTMF_PF_ROWS, ring_idx, ring_u, ring_i)) >= 0)
                limit = x + FASTMF_PF_ROWS;  /* >= t + FASTMF_GROUP: the group stays valid */
        }

        p = P + (int64_t)u * ldp;                                                   /* stage C */
        q = Q + (int64_t)i * ldq;
#if FASTMF_VECEXT
        if (pair) {
            REAL *pg[FASTMF_GROUP], *qg[FASTMF_GROUP], eg[FASTMF_GROUP], dg[FASTMF_GROUP];
            VEC pv[FASTMF_GROUP][FASTMF_MAX_NV * FASTMF_NH], qv[FASTMF_GROUP][FASTMF_MAX_NV * FASTMF_NH];
            int g;
            for (g = 0; g < FASTMF_GROUP; ++g) {
                const int sl = (int)((t + g) & (FASTMF_RING - 1));
                pg[g] = P + (int64_t)ring_u[sl] * ldp;
                qg[g] = Q + (int64_t)ring_i[sl] * ldq;
                dg[g] = FASTMF_COPY_ROWS(nv)
                            ? SFX(vdot)((const VEC *)pg[g], (const VEC *)qg[g], pv[g], qv[g], nv)
                            : SFX(vdot_n)((const VEC *)pg[g], (const VEC *)qg[g], nv);
            }
            for (g = 0; g < FASTMF_GROUP; ++g) {
                const int sl = (int)((t + g) & (FASTMF_RING - 1));
                if (biased) {
                    const int32_t ug = ring_u[sl], ig = ring_i[sl];
                    const REAL bug = bu[ug], big = bi[ig];
                    eg[g] = ratings[ring_idx[sl]] - (((mu + bug) + big) + dg[g]);
                    bu[ug] = bug + lr * (eg[g] - regb * bug);
                    bi[ig] = big + lr * (eg[g] - regb * big);
                } else {
                    eg[g] = ratings[ring_idx[sl]] - dg[g];
                }
            }
            for (g = 0; g < FASTMF_GROUP; ++g) {
                if (FASTMF_COPY_ROWS(nv))
                    SFX(vupdate)((VEC *)pg[g], (VEC *)qg[g], pv[g], qv[g], nv, decay, lr * eg[g]);
                else
                    SFX(vupdate_in)((VEC *)pg[g], (VEC *)qg[g], nv, decay, lr * eg[g]);
                sse += (double)eg[g] * (double)eg[g];
            }
            e = eg[FASTMF_GROUP - 1];
        } else if (nv != 0) {
            VEC pv[FASTMF_MAX_NV * FASTMF_NH], qv[FASTMF_MAX_NV * FASTMF_NH];
            const REAL d = nv > 0 && FASTMF_COPY_ROWS(nv)
                               ? SFX(vdot)((const VEC *)p, (const VEC *)q, pv, qv, nv)
                               : SFX(vdot_n)((const VEC *)p, (const VEC *)q,
                                             nv > 0 ? nv : (int)(k / FASTMF_LANES));
            e = biased ? ratings[idx] - (((mu + bu[u]) + bi[i]) + d) : ratings[idx] - d;
            if (nv > 0 && FASTMF_COPY_ROWS(nv)) SFX(vupdate)((VEC *)p, (VEC *)q, pv, qv, nv, decay, lr * e);
            else if (nv > 0) SFX(vupdate_in)((VEC *)p, (VEC *)q, nv, decay, lr * e);
            else SFX(update_rows)(p, q, k, decay, lr * e);  /* vectorised by the compiler */
            sse += (double)e * (double)e;
            if (biased) {
                bu[u] += lr * (e - regb * bu[u]);
                bi[i] += lr * (e - regb * bi[i]);
            }
        } else
#endif
        {
            const REAL d = SFX(dot)(p, q, k);
            e = biased ? ratings[idx] - (((mu + bu[u]) + bi[i]) + d) : ratings[idx] - d;
            SFX(update_rows)(p, q, k, decay, lr * e);
            sse += (double)e * (double)e;
            if (biased) {
                bu[u] += lr * (e - regb * bu[u]);
                bi[i] += lr * (e - regb * bi[i]);
            }
        }
        if (!isfinite(sse)) {
            out.err.status = FASTMF_ERR_DIVERGED; out.err.which = FASTMF_SGD_BAD_LOSS; out.err.pos = t;
            break;
        }
    }
    if (out.err.status == FASTMF_OK && bad >= 0) {
        out.err.status = bad == FASTMF_SGD_BAD_PLAN ? FASTMF_ERR_VALUE : FASTMF_ERR_INDEX;
        out.err.which = bad;
        out.err.pos = limit;
    }
    if (out.err.status == FASTMF_OK && !isfinite(sse)) {
        out.err.status = FASTMF_ERR_DIVERGED; out.err.which = FASTMF_SGD_BAD_LOSS; out.err.pos = n - 1;
    }
    out.sse = sse;
    return out;
}

/* run the update over order[0..n-1], dispatching to a copy specialised for biased/unbiased and
 * (vector path) the row length in vectors: fewer live values, no per-rating test of the flag and
 * fully unrolled row loops with the copies pv, qv in registers. `blocked` is a run-time flag (one
 * well-predicted test per rating in stage B; specialising it too doubled the copies of the loop, and
 * the build time, for no measurable speed). Compiled once per instruction set (see the ISA passes). */
#define RUN_NV(NV)                                                                              \
    (pb->biased ? SFX(run_impl)(pb, order, n, blk, pf, 1, blk != NULL, NV)                       \
                : SFX(run_impl)(pb, order, n, blk, pf, 0, blk != NULL, NV))
FASTMF_TGT
static run_result SFX(sgd_run)(const fastmf_sgd_problem *pb, const int64_t *order, int64_t n,
                               const fastmf_block *blk, int pf)
{
#if FASTMF_VECEXT
    if (RFX(vector_layout)(pb)) {
        switch (pb->n_factors / FASTMF_LANES) {
        case 1: return RUN_NV(1);
        case 2: return RUN_NV(2);
        case 3: return RUN_NV(3);
        case 4: return RUN_NV(4);
        case 5: return RUN_NV(5);
        case 6: return RUN_NV(6);
        case 7: return RUN_NV(7);
        case 8: return RUN_NV(8);
        default: return RUN_NV(-1);
        }
    }
#endif
    return RUN_NV(0);
}
#undef RUN_NV

#if FASTMF_VECEXT
#undef VEC
#undef FASTMF_VL
#undef FASTMF_NH
#undef FASTMF_MASK_T
#undef FASTMF_MASK_TAIL8
#undef FASTMF_MASK_TAIL4
#undef FASTMF_COPY_ROWS
#endif
#undef FASTMF_RING

#endif /* FASTMF_SGD_TEMPLATE_PASS */
