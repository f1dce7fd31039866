/* Exact top-n per row: fastmf's recommendation kernel (declarations and error codes in topk.h).
 *
 * Math. For output row r, with user u = users[r] (or r when users is NULL) and a score s[r, c] for
 * every column c in [0, n_items):
 *     allowed(r, c)  <=>  s[r, c] > -inf  and  c not in E(u)  and  (candidates == NULL or candidates[c])
 * where E(u) = excl_indices[excl_indptr[u] : excl_indptr[u + 1]] (empty without a CSR or for u = -1).
 * The output row is the first n' = min(n, #allowed) allowed columns ordered by (score descending,
 * column ascending) -- NumPy: np.lexsort((c, -s))[:n] over the allowed columns -- followed by n - n'
 * padding slots (index -1, score -inf). A NaN score is an error (FASTMF_TOPK_BAD_NAN); +inf is a
 * score like any other.
 *   fastmf_topk_rows_* read s from a dense matrix. fastmf_topk_factors_* compute
 *     s[r, i] = ((double) t + offset[u]) + bias[i],   t = sum_{j = 0..k-1} U[u, j] V[i, j]
 * with t accumulated in REAL (float or double) in the order j = 0, 1, ..., k-1, each product rounded
 * before it is added: this file is compiled with FP contraction off, so no FMA is formed and the
 * scores are bit-identical on every machine and instruction set. NumPy computes the same bits with
 *     t = np.zeros((m, n_items), REAL); for j in range(k): t = t + U[:, j:j+1] * V[:, j]
 *     s = (t.astype(np.float64) + offset[:, None]) + bias
 * (a term is left out, not added as 0, when offset or bias is NULL). This is the order of
 * MatrixFactorization._score_users (dot, + (mu + b_u), + b_i), whose BLAS dot product only rounds
 * differently.
 *
 * Algorithm. Each row is one pass over its columns in ascending order, keeping the best n' so far in
 * a binary heap whose root is the worst entry under the (score, -column) ordering. Since columns
 * arrive in ascending order, a later column enters a full heap only if its score is strictly greater
 * than the root's, so the inner loop is a single comparison `s <= threshold` (threshold = root score,
 * -inf while the heap is not full); the exclusion bit test and the candidate test are made only for
 * the few columns that pass it, and a NaN (which fails `<=`) is caught there too. The heap is then
 * heap-sorted in place, best first. Cost O(n_items log n') per row (O(n_items) comparisons plus
 * O(n' log n' log(n_items / n')) heap work on random scores). The heaps live in the output rows.
 *   The factor kernel cuts the rows into chunks of at most TOPK_CHUNK (256) users and the items into
 * panels of B items (k x B values, about FASTMF_TOPK_PANEL_BYTES, so a panel stays in cache). A
 * thread takes a chunk, marks each chunk user's excluded items in a bit set, then for each panel in
 * item order: copies V[panel] transposed (k x B, items contiguous) into its scratch, computes the dot
 * products of 4 users at a time against it (a register-blocked loop over 64 bytes of items, which the
 * compiler vectorises; with GCC >= 11 on x86-64 Linux it is also compiled for x86-64-v3 and -v4 and
 * picked at load time -- the results do not change, only the speed), adds offset and bias in double
 * while testing, vectorised, which groups of TOPK_G items hold a score above the user's current
 * threshold, and offers only those groups to the user's heap (the threshold only rises, so a group
 * below it at the start of the panel stays below it).
 *
 * Invariants. All arrays are C-contiguous, except that rows of U and V may be padded (row strides
 * ld_U, ld_V >= k, as made by fastmf._sgd.aligned_factors). Before any selection the spec is
 * validated for every output row: users[r] in range (-1 is also allowed by fastmf_topk_rows: no
 * exclusions), each used excluded range lo <= hi inside [0, excl_nnz], each used excluded index in
 * [0, n_items). A violation returns FASTMF_ERR_INDEX naming the smallest offending row, before any
 * output is written, and nothing is ever read out of bounds. Rows of the exclusion CSR that no output
 * row uses are not read. Sizes and offsets are int64 (nnz and n_rows * n may exceed 2^31).
 *
 * Ownership. Every array belongs to the caller and is borrowed for one call; the kernels write only
 * out_idx, out_score and *err. Each thread allocates its scratch inside the parallel region and frees
 * it on every path: for fastmf_topk_rows a bit set of n_items bits; for fastmf_topk_factors the panel
 * copy and the dot products (O((k + 4) B) values, about 40 kB) and the bit sets of the chunk's users
 * (TOPK_CHUNK n_items / 8 bytes: 570 kB at 17,770 items). Memory beyond the outputs is therefore
 * O(n_threads (k B + TOPK_CHUNK n_items / 8)), independent of n_rows: no users x items matrix.
 * No globals, no printing, no randomness.
 *
 * Threads. Rows (chunks of rows) are shared among n_threads OpenMP threads with a dynamic schedule;
 * each output row is written by exactly one thread and every input is only read, so the kernels are
 * reentrant and their results do not depend on the thread count, bit for bit. An error is recorded in
 * a critical section (entered only on error) that keeps the smallest row, so the report does not
 * depend on the thread count either.
 */
#if !defined(FASTMF_TOPK_HEAP_PASS) && !defined(FASTMF_TOPK_KERNEL_PASS)

/* columns per threshold pre-test group of the factor kernel */
#define TOPK_G 8

/* no FMA contraction: a * b + c stays two roundings (see "Math" above) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topk.h"   /* and common.h: restrict, FASTMF_CLONES (the dot-product panel loop), FASTMF_OMP */

/* users per chunk of the factor kernel (the unit of work of a thread) */
#ifndef TOPK_CHUNK
#define TOPK_CHUNK 256
#endif
/* users whose dot products are computed together against one panel */
#define TOPK_RU 4
/* target size in bytes of one transposed panel of V (k x B values) */
#ifndef FASTMF_TOPK_PANEL_BYTES
#define FASTMF_TOPK_PANEL_BYTES 32768
#endif
#define TOPK_MAX_PANEL 4096

/* malloc'ed block of `bytes` whose returned pointer is 64-byte aligned; *raw is what to free */
static void *alloc_aligned(size_t bytes, void **raw)
{
    *raw = malloc(bytes + 64);
    if (*raw == NULL)
        return NULL;
    return (void *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63);
}

/* keep the error of the smallest row (rows are unique per thread, so the result is deterministic) */
static void note_error(fastmf_topk_error *err, int64_t row, int64_t pos, int which)
{
    FASTMF_OMP(omp critical(fastmf_topk_error))
    {
        if (err->row < 0 || row < err->row) {
            err->row = row;
            err->pos = pos;
            err->which = which;
        }
    }
}

/* 0 when output row r is valid; else 1 with *pos / *which set (see FASTMF_TOPK_BAD_*) */
static int check_row(const fastmf_topk_spec *sp, int64_t r, int64_t user_lo, int64_t *pos, int *which)
{
    const int64_t u = sp->users != NULL ? sp->users[r] : r;
    int64_t lo, hi, p;
    if (u < user_lo || u >= sp->n_users) {
        *pos = u;
        *which = FASTMF_TOPK_BAD_USER;
        return 1;
    }
    if (sp->excl_indptr == NULL || u < 0)
        return 0;
    lo = sp->excl_indptr[u];
    hi = sp->excl_indptr[u + 1];
    if (lo < 0 || hi < lo || hi > sp->excl_nnz) {
        *pos = u;
        *which = FASTMF_TOPK_BAD_INDPTR;
        return 1;
    }
    for (p = lo; p < hi; ++p) {
        const int32_t c = sp->excl_indices[p];
        if (c < 0 || (int64_t)c >= sp->n_items) {
            *pos = p;
            *which = FASTMF_TOPK_BAD_EXCL;
            return 1;
        }
    }
    return 0;
}

/* Validate the spec (sizes, then every output row, in parallel); on failure fill *err with the
 * smallest offending row. user_lo is -1 when users[r] = -1 is allowed, else 0. */
static fastmf_status check_spec(const fastmf_topk_spec *sp, int64_t user_lo, fastmf_topk_error *err)
{
    const int nt = sp->n_threads > 1 ? sp->n_threads : 1;
    const int64_t m = sp->n_rows;
    int64_t first = INT64_MAX;
    err->row = -1;
    err->pos = -1;
    err->which = 0;
    if (m < 0 || sp->n_items < 0 || sp->n < 0 || sp->n_users < 0 || sp->excl_nnz < 0
        || (sp->users == NULL && sp->n_users < m)
        || (sp->excl_indptr != NULL && sp->excl_nnz > 0 && sp->excl_indices == NULL)) {
        err->which = FASTMF_TOPK_BAD_SPEC;
        return FASTMF_ERR_VALUE;
    }
    FASTMF_OMP(omp parallel num_threads(nt) if (nt > 1 && m > 4096))
    {
        int64_t mine = INT64_MAX, r, pos;
        int which;
        /* static schedule: each thread's rows ascend, so its first bad row is its smallest */
        FASTMF_OMP(omp for schedule(static))
        for (r = 0; r < m; ++r) {
            if (mine == INT64_MAX && check_row(sp, r, user_lo, &pos, &which))
                mine = r;
        }
        FASTMF_OMP(omp critical(fastmf_topk_check))
        {
            if (mine < first)
                first = mine;
        }
    }
    (void)nt;
    if (first != INT64_MAX) {
        check_row(sp, first, user_lo, &err->pos, &err->which);
        err->row = first;
        return FASTMF_ERR_INDEX;
    }
    return FASTMF_OK;
}

/* set (value 1) or clear (value 0) the bits of user u's excluded items in bits[] */
/* The spec and the factor matrices of a factor kernel: FASTMF_OK, or the status of check_spec, or
 * FASTMF_ERR_VALUE (BAD_SPEC) for a negative k, a row stride below k or a missing matrix. */
static fastmf_status check_factor_spec(const fastmf_topk_spec *sp, const void *U, int64_t ld_U,
                                       const void *V, int64_t ld_V, int64_t k, fastmf_topk_error *err)
{
    fastmf_status st = check_spec(sp, 0, err);
    if (st != FASTMF_OK)
        return st;
    if (k < 0 || ld_U < k || ld_V < k || (k > 0 && ((sp->n_users > 0 && U == NULL)
                                                    || (sp->n_items > 0 && V == NULL)))) {
        err->which = FASTMF_TOPK_BAD_SPEC;
        return FASTMF_ERR_VALUE;
    }
    return FASTMF_OK;
}

/* Panel width of the factor kernels: about FASTMF_TOPK_PANEL_BYTES of V (k values of `size` bytes
 * per item), a multiple of the register block `lanes`, at most TOPK_MAX_PANEL and no wider than
 * the items rounded up to `lanes`. */
static int64_t panel_width(int64_t k, int64_t N, int64_t size, int64_t lanes)
{
    int64_t bp = FASTMF_TOPK_PANEL_BYTES / ((k > 0 ? k : 1) * size);
    bp = bp / lanes * lanes;
    if (bp < lanes)
        bp = lanes;
    if (bp > TOPK_MAX_PANEL)
        bp = TOPK_MAX_PANEL;
    if (bp > (N + lanes - 1) / lanes * lanes)
        bp = (N + lanes - 1) / lanes * lanes;
    return bp < lanes ? lanes : bp;
}

/* Users per chunk of the factor kernels: at most TOPK_CHUNK (each panel copy serves them all), and
 * about 4 chunks per thread when there are few rows, so the dynamic schedule can balance threads. */
static int64_t chunk_rows(int64_t m, int nt)
{
    int64_t chunk = (m + 4 * (int64_t)nt - 1) / (4 * (int64_t)nt);
    if (chunk < 16)
        chunk = 16;
    return chunk > TOPK_CHUNK ? TOPK_CHUNK : chunk;
}

static void mark_excluded(const fastmf_topk_spec *sp, int64_t u, uint64_t *bits, int value)
{
    int64_t p, hi;
    if (sp->excl_indptr == NULL || u < 0)
        return;
    hi = sp->excl_indptr[u + 1];
    for (p = sp->excl_indptr[u]; p < hi; ++p) {
        const int64_t c = sp->excl_indices[p];
        if (value)
            bits[c >> 6] |= (uint64_t)1 << (c & 63);
        else
            bits[c >> 6] = 0;
    }
}

/* ------------------------------------------------------------------- heaps (templated by SCORE) */
#define FASTMF_TOPK_HEAP_PASS
#define SCORE float
#define HSFX(name) name##_f32
#include "topk.c"
#undef SCORE
#undef HSFX
#define SCORE double
#define HSFX(name) name##_f64
#include "topk.c"
#undef SCORE
#undef HSFX
#undef FASTMF_TOPK_HEAP_PASS

/* ------------------------------------------------------------------ kernels (templated by REAL) */
#define FASTMF_TOPK_KERNEL_PASS
#define REAL float
#define SFX(name) name##_f32
#include "topk.c"
#undef REAL
#undef SFX
#define REAL double
#define SFX(name) name##_f64
#include "topk.c"
#undef REAL
#undef SFX
#undef FASTMF_TOPK_KERNEL_PASS

#elif defined(FASTMF_TOPK_HEAP_PASS) /* ---------------- heap of (SCORE score, int64 column) pairs */

/* Entry a is worse than entry b: lower score, or the same score and a higher column. */
#define TOPK_WORSE(sa, ia, sb, ib) ((sa) < (sb) || ((sa) == (sb) && (ia) > (ib)))

/* restore the heap property below pos in hs/hi[0..cnt-1] (root = worst entry) */
static void HSFX(sift_down)(SCORE *hs, int64_t *hi, int64_t cnt, int64_t pos)
{
    const SCORE s = hs[pos];
    const int64_t id = hi[pos];
    for (;;) {
        int64_t c = 2 * pos + 1;
        if (c >= cnt)
            break;
        if (c + 1 < cnt && TOPK_WORSE(hs[c + 1], hi[c + 1], hs[c], hi[c]))
            ++c;
        if (!TOPK_WORSE(hs[c], hi[c], s, id))
            break;
        hs[pos] = hs[c];
        hi[pos] = hi[c];
        pos = c;
    }
    hs[pos] = s;
    hi[pos] = id;
}

/* move the entry at pos up to its place */
static void HSFX(sift_up)(SCORE *hs, int64_t *hi, int64_t pos)
{
    const SCORE s = hs[pos];
    const int64_t id = hi[pos];
    while (pos > 0) {
        const int64_t parent = (pos - 1) / 2;
        if (!TOPK_WORSE(s, id, hs[parent], hi[parent]))
            break;
        hs[pos] = hs[parent];
        hi[pos] = hi[parent];
        pos = parent;
    }
    hs[pos] = s;
    hi[pos] = id;
}

/* Offer x[0..len-1] (columns c0 .. c0 + len - 1, all above every column offered before) to the heap
 * hs/hi of capacity cap >= 1 holding *cnt entries. Columns whose bit is set in bits (if not NULL) or
 * whose candidates entry is 0 (if not NULL) are skipped; -inf is never taken. Returns the first
 * column whose score is NaN (it is skipped too), or -1. */
static int64_t HSFX(select_run)(const SCORE *restrict x, int64_t len, int64_t c0,
                                const uint64_t *bits, const uint8_t *cand,
                                SCORE *restrict hs, int64_t *restrict hi, int64_t cap, int64_t *cnt_io)
{
    int64_t cnt = *cnt_io, c, bad = -1;
    SCORE thr = cnt == cap ? hs[0] : (SCORE)-INFINITY;
    for (c = 0; c < len; ++c) {
        const SCORE s = x[c];
        const int64_t col = c0 + c;
        if (s <= thr)
            continue;
        if (s != s) {
            if (bad < 0)
                bad = col;
            continue;
        }
        if (bits != NULL && ((bits[col >> 6] >> (col & 63)) & 1u))
            continue;
        if (cand != NULL && !cand[col])
            continue;
        if (cnt < cap) {
            hs[cnt] = s;
            hi[cnt] = col;
            HSFX(sift_up)(hs, hi, cnt);
            if (++cnt == cap)
                thr = hs[0];
        } else {
            hs[0] = s;
            hi[0] = col;
            HSFX(sift_down)(hs, hi, cnt, 0);
            thr = hs[0];
        }
    }
    *cnt_io = cnt;
    return bad;
}

/* select_run over the groups of TOPK_G columns of x[0..len-1] whose flag is set (flag[g] = 0 promises
 * that no column of group g passes the current threshold) */
FASTMF_MAYBE_UNUSED static int64_t HSFX(select_groups)(const SCORE *restrict x, int64_t len, int64_t c0,
                                   const uint8_t *restrict flag, const uint64_t *bits,
                                   const uint8_t *cand, SCORE *restrict hs, int64_t *restrict hi,
                                   int64_t cap, int64_t *cnt_io)
{
    int64_t g, bad = -1;
    for (g = 0; g < len; g += TOPK_G) {
        const int64_t end = g + TOPK_G < len ? g + TOPK_G : len;
        int64_t b;
        if (!flag[g / TOPK_G])
            continue;
        b = HSFX(select_run)(x + g, end - g, c0 + g, bits, cand, hs, hi, cap, cnt_io);
        if (bad < 0)
            bad = b;
    }
    return bad;
}

/* heap-sort the cnt entries best first, then pad slots cnt..n-1 with (-1, -inf) */
static void HSFX(finish_row)(SCORE *hs, int64_t *hi, int64_t cnt, int64_t n)
{
    int64_t end;
    for (end = cnt - 1; end > 0; --end) {
        const SCORE s = hs[0];
        const int64_t id = hi[0];
        hs[0] = hs[end];
        hi[0] = hi[end];
        hs[end] = s;
        hi[end] = id;
        HSFX(sift_down)(hs, hi, end, 0);
    }
    for (end = cnt; end < n; ++end) {
        hs[end] = (SCORE)-INFINITY;
        hi[end] = -1;
    }
}

#undef TOPK_WORSE

#else /* FASTMF_TOPK_KERNEL_PASS: the kernels, compiled once per REAL (float, double) */

/* items per register block: 64 bytes (16 float, 8 double) */
#define TOPK_LANES ((int)(64 / sizeof(REAL)))

fastmf_status SFX(fastmf_topk_rows)(const fastmf_topk_spec *sp, const REAL *scores,
                                    int64_t *out_idx, REAL *out_score, fastmf_topk_error *err)
{
    const int nt = sp->n_threads > 1 ? sp->n_threads : 1;
    const int64_t m = sp->n_rows, N = sp->n_items, n = sp->n, cap = n < N ? n : N;
    const int64_t W = (N + 63) / 64;
    int nomem = 0;
    fastmf_status st = check_spec(sp, -1, err);
    if (st != FASTMF_OK)
        return st;
    if (m == 0 || n == 0)
        return FASTMF_OK;
    FASTMF_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        uint64_t *bits = NULL;
        int ok = 1;
        int64_t r;
        if (sp->excl_indptr != NULL && N > 0) {
            bits = (uint64_t *)calloc((size_t)W, sizeof(uint64_t));
            if (bits == NULL) {
                ok = 0;
                FASTMF_OMP(omp critical(fastmf_topk_nomem))
                nomem = 1;
            }
        }
        FASTMF_OMP(omp for schedule(dynamic, 16))
        for (r = 0; r < m; ++r) {
            const int64_t u = sp->users != NULL ? sp->users[r] : r;
            REAL *hs = out_score + r * n;
            int64_t *hi = out_idx + r * n;
            int64_t cnt = 0, bad;
            if (!ok || fastmf_interrupted(sp->interrupt))
                continue;
            if (cap > 0) {
                if (bits != NULL)
                    mark_excluded(sp, u, bits, 1);
                bad = SFX(select_run)(scores + r * N, N, 0, bits, sp->candidates, hs, hi, cap, &cnt);
                if (bits != NULL)
                    mark_excluded(sp, u, bits, 0);
                if (bad >= 0)
                    note_error(err, r, bad, FASTMF_TOPK_BAD_NAN);
            }
            SFX(finish_row)(hs, hi, cnt, n);
        }
        free(bits);
    }
    (void)nt;
    if (nomem)
        return FASTMF_ERR_NOMEM;
    if (fastmf_interrupted(sp->interrupt))
        return FASTMF_ERR_INTERRUPTED;
    return err->row >= 0 ? FASTMF_ERR_VALUE : FASTMF_OK;
}

/* acc[t * bp + c] = sum_j u_t[j] * vt[j * bp + c] for t < 4, c < bp (bp a multiple of TOPK_LANES),
 * summed in order j = 0..k-1. Four users times 64 bytes of items are kept in registers over j. */
FASTMF_CLONES
static void SFX(dot_panel)(const REAL *restrict vt, int64_t bp, int64_t k,
                           const REAL *restrict u0, const REAL *restrict u1,
                           const REAL *restrict u2, const REAL *restrict u3, REAL *restrict acc)
{
    int64_t c0, j;
    int c;
    for (c0 = 0; c0 < bp; c0 += TOPK_LANES) {
        REAL a0[TOPK_LANES], a1[TOPK_LANES], a2[TOPK_LANES], a3[TOPK_LANES];
        for (c = 0; c < TOPK_LANES; ++c)
            a0[c] = a1[c] = a2[c] = a3[c] = 0;
        for (j = 0; j < k; ++j) {
            const REAL *restrict v = vt + j * bp + c0;
            const REAL x0 = u0[j], x1 = u1[j], x2 = u2[j], x3 = u3[j];
            /* element-wise (no reduction across c), so `simd` keeps each item's summation order */
#if defined(_OPENMP) || defined(__GNUC__) || defined(__clang__)
#pragma omp simd
#endif
            for (c = 0; c < TOPK_LANES; ++c) {
                a0[c] = a0[c] + x0 * v[c];
                a1[c] = a1[c] + x1 * v[c];
                a2[c] = a2[c] + x2 * v[c];
                a3[c] = a3[c] + x3 * v[c];
            }
        }
        for (c = 0; c < TOPK_LANES; ++c) {
            acc[c0 + c] = a0[c];
            acc[bp + c0 + c] = a1[c];
            acc[2 * bp + c0 + c] = a2[c];
            acc[3 * bp + c0 + c] = a3[c];
        }
    }
}

/* vt[j * bp + c] = V[i0 + c, j] for c < bs, 0 for bs <= c < bp */
static void SFX(load_panel)(const REAL *restrict V, int64_t ld_V, int64_t k, int64_t i0, int64_t bs,
                            int64_t bp, REAL *restrict vt)
{
    int64_t c, j;
    for (c = 0; c < bs; ++c) {
        const REAL *restrict row = V + (i0 + c) * ld_V;
        for (j = 0; j < k; ++j)
            vt[j * bp + c] = row[j];
    }
    if (bs < bp)
        for (j = 0; j < k; ++j)
            for (c = bs; c < bp; ++c)
                vt[j * bp + c] = 0;
}

/* sd[c] = ((double)a[c] + off) + bias[c] for c < bs (a term left out when use_off == 0 / bias NULL),
 * and flag[g] = 1 when a score of group g (columns g*TOPK_G ..) is not <= thr (so NaN too); the
 * last, partial group is always flagged. Returns the number of flagged groups. */
FASTMF_CLONES
static int64_t SFX(score_panel)(const REAL *restrict a, int64_t bs, const double *restrict bias,
                                double off, int use_off, double thr, double *restrict sd,
                                uint8_t *restrict flag)
{
    const int64_t full = bs / TOPK_G * TOPK_G;
    int64_t c, g, n_flag = 0;
    if (use_off && bias != NULL)
        for (c = 0; c < bs; ++c)
            sd[c] = ((double)a[c] + off) + bias[c];
    else if (use_off)
        for (c = 0; c < bs; ++c)
            sd[c] = (double)a[c] + off;
    else if (bias != NULL)
        for (c = 0; c < bs; ++c)
            sd[c] = (double)a[c] + bias[c];
    else
        for (c = 0; c < bs; ++c)
            sd[c] = (double)a[c];
    for (g = 0; g < full; g += TOPK_G) {
        int64_t any = 0;
        int t;
#if defined(_OPENMP) || defined(__GNUC__) || defined(__clang__)
#pragma omp simd reduction(| : any)
#endif
        for (t = 0; t < TOPK_G; ++t)
            any |= !(sd[g + t] <= thr);
        flag[g / TOPK_G] = (uint8_t)(any != 0);
        n_flag += any != 0;
    }
    if (full < bs) {
        flag[full / TOPK_G] = 1;
        ++n_flag;
    }
    return n_flag;
}

/* The factor kernels' one loop: with dense == NULL the top-n selection of fastmf_topk_factors into
 * out_idx / out_score, else the scores themselves into dense[r * n_items + i] (nothing selected,
 * NaN written like any other score). */
static fastmf_status SFX(factors_pass)(const fastmf_topk_spec *sp, const REAL *U, int64_t ld_U,
                                       const REAL *V, int64_t ld_V, int64_t k,
                                       const double *item_bias, const double *user_offset,
                                       int64_t *out_idx, double *out_score, double *dense,
                                       fastmf_topk_error *err)
{
    const int nt = sp->n_threads > 1 ? sp->n_threads : 1;
    const int64_t m = sp->n_rows, N = sp->n_items, n = dense != NULL ? N : sp->n, cap = n < N ? n : N;
    const int64_t W = (N + 63) / 64;
    const int lanes = TOPK_LANES;
    int64_t bp, chunk, n_chunks, ch;
    int nomem = 0;
    fastmf_status st = check_factor_spec(sp, U, ld_U, V, ld_V, k, err);
    if (st != FASTMF_OK)
        return st;
    if (m == 0 || n == 0)
        return FASTMF_OK;
    bp = panel_width(k, N, (int64_t)sizeof(REAL), lanes);
    chunk = chunk_rows(m, nt);
    n_chunks = (m + chunk - 1) / chunk;
    FASTMF_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        void *raw_vt = NULL, *raw_acc = NULL;
        REAL *vt = (REAL *)alloc_aligned((size_t)(k * bp) * sizeof(REAL), &raw_vt);
        REAL *acc = (REAL *)alloc_aligned((size_t)(TOPK_RU * bp) * sizeof(REAL), &raw_acc);
        double *sd = (double *)malloc((size_t)bp * sizeof(double));
        uint8_t *flag = (uint8_t *)malloc((size_t)(bp / TOPK_G + 1));
        const REAL **urow = (const REAL **)malloc((size_t)chunk * sizeof(REAL *));
        double *offs = (double *)malloc((size_t)chunk * sizeof(double));
        int64_t *cnt = (int64_t *)malloc((size_t)chunk * sizeof(int64_t));
        uint64_t *bits = NULL;
        int ok = vt != NULL && acc != NULL && sd != NULL && flag != NULL && urow != NULL
                 && offs != NULL && cnt != NULL;
        if (ok && dense == NULL && sp->excl_indptr != NULL && N > 0) {
            bits = (uint64_t *)calloc((size_t)(chunk * W), sizeof(uint64_t));
            ok = bits != NULL;
        }
        if (!ok) {
            FASTMF_OMP(omp critical(fastmf_topk_nomem))
            nomem = 1;
        }
        FASTMF_OMP(omp for schedule(dynamic, 1))
        for (ch = 0; ch < n_chunks; ++ch) {
            const int64_t r0 = ch * chunk;
            const int64_t nr = m - r0 < chunk ? m - r0 : chunk;
            int64_t q, q0, i0;
            if (!ok || fastmf_interrupted(sp->interrupt))
                continue;
            for (q = 0; q < nr; ++q) {
                const int64_t u = sp->users != NULL ? sp->users[r0 + q] : r0 + q;
                urow[q] = U + u * ld_U;
                offs[q] = user_offset != NULL ? user_offset[u] : 0.0;
                cnt[q] = 0;
                if (bits != NULL)
                    mark_excluded(sp, u, bits + q * W, 1);
            }
            for (i0 = 0; cap > 0 && i0 < N; i0 += bp) {
                const int64_t bs = N - i0 < bp ? N - i0 : bp;
                SFX(load_panel)(V, ld_V, k, i0, bs, bp, vt);
                for (q0 = 0; q0 < nr; q0 += TOPK_RU) {
                    const int64_t last = nr - 1;
                    int t;
                    SFX(dot_panel)(vt, bp, k, urow[q0], urow[q0 + 1 <= last ? q0 + 1 : last],
                                   urow[q0 + 2 <= last ? q0 + 2 : last],
                                   urow[q0 + 3 <= last ? q0 + 3 : last], acc);
                    for (t = 0; t < TOPK_RU && q0 + t < nr; ++t) {
                        const int64_t qq = q0 + t, r = r0 + qq;
                        const double *bias = item_bias != NULL ? item_bias + i0 : NULL;
                        double *hs;
                        double thr;
                        const uint64_t *ex;
                        int64_t bad = -1;
                        if (dense != NULL) {  /* threshold +inf: the flags (NaN only) are not used */
                            (void)SFX(score_panel)(acc + t * bp, bs, bias, offs[qq], user_offset != NULL,
                                                   INFINITY, dense + r * N + i0, flag);
                            continue;
                        }
                        hs = out_score + r * n;
                        thr = cnt[qq] == cap ? hs[0] : -INFINITY;
                        ex = bits != NULL ? bits + qq * W : NULL;
                        if (SFX(score_panel)(acc + t * bp, bs, bias, offs[qq], user_offset != NULL,
                                             thr, sd, flag) > 0)
                            bad = select_groups_f64(sd, bs, i0, flag, ex, sp->candidates, hs,
                                                    out_idx + r * n, cap, &cnt[qq]);
                        if (bad >= 0)
                            note_error(err, r, bad, FASTMF_TOPK_BAD_NAN);
                    }
                }
            }
            for (q = 0; dense == NULL && q < nr; ++q) {
                finish_row_f64(out_score + (r0 + q) * n, out_idx + (r0 + q) * n, cnt[q], n);
                if (bits != NULL)
                    mark_excluded(sp, sp->users != NULL ? sp->users[r0 + q] : r0 + q,
                                  bits + q * W, 0);
            }
        }
        free(bits);
        free(cnt);
        free(offs);
        free(urow);
        free(sd);
        free(flag);
        free(raw_acc);
        free(raw_vt);
    }
    (void)nt;
    if (nomem)
        return FASTMF_ERR_NOMEM;
    if (fastmf_interrupted(sp->interrupt))
        return FASTMF_ERR_INTERRUPTED;
    return err->row >= 0 ? FASTMF_ERR_VALUE : FASTMF_OK;
}

fastmf_status SFX(fastmf_topk_factors)(const fastmf_topk_spec *sp, const REAL *U, int64_t ld_U,
                                       const REAL *V, int64_t ld_V, int64_t k,
                                       const double *item_bias, const double *user_offset,
                                       int64_t *out_idx, double *out_score, fastmf_topk_error *err)
{
    return SFX(factors_pass)(sp, U, ld_U, V, ld_V, k, item_bias, user_offset, out_idx, out_score,
                             NULL, err);
}

/* The dense scores of fastmf_topk_factors: out[r * n_items + i] = s[r, i], the same bits as the
 * scores that kernel selects from (the same loop). */
fastmf_status SFX(fastmf_score_factors)(const fastmf_topk_spec *sp, const REAL *U, int64_t ld_U,
                                        const REAL *V, int64_t ld_V, int64_t k,
                                        const double *item_bias, const double *user_offset,
                                        double *out, fastmf_topk_error *err)
{
    return SFX(factors_pass)(sp, U, ld_U, V, ld_V, k, item_bias, user_offset, NULL, NULL, out, err);
}

#undef TOPK_LANES

#endif /* FASTMF_TOPK_KERNEL_PASS */
