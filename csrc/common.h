/* fastmf C kernels: shared definitions.
 *
 * Every kernel in csrc/ is plain C99: no Python headers, no printing, no globals, no hidden random
 * state. A kernel returns an fastmf_status and, when it fails, fills ONE error record (fastmf_error:
 * the status, where and which input); the Cython wrapper turns it into a Python exception with
 * context (fastmf/_common.pxd). Buffers are owned by the caller unless a function says otherwise.
 *
 * This header also holds the compiler preamble every kernel file shares: `restrict` for MSVC,
 * forced inlining, function multi-versioning, prefetch hints and the OpenMP helpers.
 */
#ifndef FASTMF_COMMON_H
#define FASTMF_COMMON_H

#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef enum {
    FASTMF_OK = 0,
    FASTMF_ERR_NOMEM = 1,      /* an allocation failed */
    FASTMF_ERR_INDEX = 2,      /* an index lies outside [0, n); err->pos says where */
    FASTMF_ERR_VALUE = 3,      /* a non-finite or otherwise invalid value; err->pos says where */
    FASTMF_ERR_NOT_PD = 4,     /* a linear system is not positive definite */
    FASTMF_ERR_DIVERGED = 5,   /* the loss or a factor became non-finite */
    FASTMF_ERR_PARSE = 6,      /* malformed text; err->pos gives the line */
    FASTMF_ERR_INTERRUPTED = 7 /* the caller's interrupt flag was raised: the call stopped early */
} fastmf_status;

/* An interrupt request: a long kernel takes a `const fastmf_interrupt *` (NULL: never
 * interrupted) and reads it between row chunks; once it reads nonzero it stops starting new work
 * and returns FASTMF_ERR_INTERRUPTED. The flag belongs to the caller (the Python wrappers raise it
 * from a SIGINT handler, fastmf/_sigint.h): the kernels only read it. An interrupted call has done
 * part of its work, so its outputs are to be discarded; a call that is not interrupted computes
 * exactly what it would without a flag (the check never changes which rows are computed or how). */
typedef volatile int fastmf_interrupt;

static inline int fastmf_interrupted(const fastmf_interrupt *flag)
{
    return flag != NULL && *flag != 0;
}

/* What a failed kernel reports: its status, which input or check failed (a kernel-specific code
 * from its header, or -1) and a position (an index into the input the kernel names, or -1). A
 * kernel that returns FASTMF_OK leaves the record as {FASTMF_OK, -1, -1}. The two 4-byte fields
 * come first so the record is 16 bytes, not 24: per-row checks return it by value in registers. */
typedef struct {
    fastmf_status status;
    int which;
    int64_t pos;
} fastmf_error;

/* *err = {FASTMF_OK, -1, -1} */
static inline void fastmf_error_clear(fastmf_error *err)
{
    err->status = FASTMF_OK;
    err->pos = -1;
    err->which = -1;
}

/* *err = {status, pos, which}; returns status */
static inline fastmf_status fastmf_fail(fastmf_error *err, fastmf_status status, int64_t pos,
                                        int which)
{
    err->status = status;
    err->pos = pos;
    err->which = which;
    return status;
}

/* 1 when this translation unit was compiled with OpenMP, else 0. */
int fastmf_openmp_enabled(void);

/* Threads an OpenMP parallel region would use by default (1 without OpenMP). */
int fastmf_max_threads(void);

/* ------------------------------------------------------------------------- compiler preamble */
#if defined(_MSC_VER) && !defined(__cplusplus)
#define restrict __restrict
#endif

/* forced inlining of the small helpers of a hot loop (they must be compiled into the caller's
 * instruction-set clone, see FASTMF_CLONES) */
#if defined(__GNUC__) || defined(__clang__)
#define FASTMF_INLINE __attribute__((always_inline)) inline
#else
#define FASTMF_INLINE inline
#endif

/* a static function of a template that some of its instances do not call (no -Wunused-function) */
#if defined(__GNUC__) || defined(__clang__)
#define FASTMF_MAYBE_UNUSED __attribute__((unused))
#else
#define FASTMF_MAYBE_UNUSED
#endif

/* Function multi-versioning of the hot loops: GCC >= 11 (x86-64-v3/v4 names) on x86-64 glibc
 * (ifunc). The loop is compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline,
 * and the version for the running CPU is picked at load time, without any -march flag. FMA
 * contraction differs between the versions, so results are bit-identical across runs on one
 * machine, not across machines; everything a cloned function calls must be inlined into it (so that
 * it is compiled for the same instruction set). Define FASTMF_NO_CLONES to build the baseline only. */
#if !defined(FASTMF_NO_CLONES) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && defined(__linux__) && defined(__GLIBC__) && (__GNUC__ >= 11)
#define FASTMF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FASTMF_HAVE_CLONES 1
#else
#define FASTMF_CLONES
#endif

/* The best function multi-versioning level this CPU runs: 3 (x86-64-v4: AVX-512), 2 (x86-64-v3: AVX2,
 * FMA), else 1 (the baseline); always 1 without FASTMF_HAVE_CLONES. The same test as the one the
 * ifunc resolver of a FASTMF_CLONES function makes, for kernels that pick their own copy. */
static inline int fastmf_cpu_level(void)
{
#if defined(FASTMF_HAVE_CLONES)
    __builtin_cpu_init();
#if __GNUC__ >= 12
    if (__builtin_cpu_supports("x86-64-v4")) return 3;
    if (__builtin_cpu_supports("x86-64-v3")) return 2;
#else
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2")) {
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512cd"))
            return 3;
        return 2;
    }
#endif
#endif
    return 1;
}

/* cache hints (no effect on results): bring the line at addr in for reading / for writing */
#if defined(__GNUC__) || defined(__clang__)
#define FASTMF_PREFETCH(addr) __builtin_prefetch((const void *)(addr), 0, 3)
#define FASTMF_PREFETCH_W(addr) __builtin_prefetch((const void *)(addr), 1, 3)
#else
#define FASTMF_PREFETCH(addr) ((void)0)
#define FASTMF_PREFETCH_W(addr) ((void)0)
#endif

/* bring the cache lines of the bytes [addr, addr + bytes) in, for reading / for writing (a hint: no
 * effect on results; a row of factors is the usual span) */
static FASTMF_INLINE void fastmf_prefetch_span(const void *addr, size_t bytes)
{
    const char *c = (const char *)((uintptr_t)addr & ~(uintptr_t)63), *end = (const char *)addr + bytes;
    for (; c < end; c += 64) FASTMF_PREFETCH(c);
}

static FASTMF_INLINE void fastmf_prefetch_span_w(const void *addr, size_t bytes)
{
    const char *c = (const char *)((uintptr_t)addr & ~(uintptr_t)63), *end = (const char *)addr + bytes;
    for (; c < end; c += 64) FASTMF_PREFETCH_W(c);
}

/* 1 when the n values at x are all finite, else 0: x - x is 0 for a finite x and NaN otherwise, summed
 * in 16 independent lanes (a loop the compiler vectorises without reassociating anything) */
#define FASTMF_ALL_FINITE_BODY(T)                                                                   \
    T acc[16] = {0};                                                                                \
    int64_t j = 0;                                                                                  \
    int l, ok = 1;                                                                                  \
    for (; j + 16 <= n; j += 16)                                                                    \
        for (l = 0; l < 16; ++l) acc[l] += x[j + l] - x[j + l];                                     \
    for (; j < n; ++j) acc[0] += x[j] - x[j];                                                       \
    for (l = 0; l < 16; ++l) ok &= acc[l] == 0;  /* NaN == 0 is false */                            \
    return ok;
static inline int fastmf_all_finite_f32(const float *x, int64_t n) { FASTMF_ALL_FINITE_BODY(float) }
static inline int fastmf_all_finite_f64(const double *x, int64_t n) { FASTMF_ALL_FINITE_BODY(double) }
#undef FASTMF_ALL_FINITE_BODY

/* FASTMF_OMP(omp ...): an OpenMP pragma in a macro-friendly form, nothing in a serial build */
#ifdef _OPENMP
#define FASTMF_OMP(x) _Pragma(#x)
#else
#define FASTMF_OMP(x)
#endif

/* the calling thread's number in its OpenMP team (0 outside a parallel region or without OpenMP) */
static inline int fastmf_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* the size of the calling thread's OpenMP team (1 outside a parallel region or without OpenMP) */
static inline int fastmf_team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* n_threads clamped to [1, work_items] (work_items < 1 counts as 1) */
static inline int fastmf_clamp_threads(int n_threads, int64_t work_items)
{
    int nt = n_threads < 1 ? 1 : n_threads;
    if ((int64_t)nt > work_items) nt = work_items > 1 ? (int)work_items : 1;
    return nt;
}

#endif
