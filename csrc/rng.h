/* Random streams of the kernels: splitmix64 seeding, xoshiro256**, unbiased bounded draws,
 * Fisher-Yates shuffles and standard normal draws.
 *
 * No hidden state: every stream is a caller-owned fastmf_rng seeded from the caller's seed and
 * stream numbers, so a kernel's randomness is a function of its arguments. The draws a hot loop
 * makes are static inline here; the rest is in rng.c. Pure-Python twins: fastmf.reference
 * (_Xoshiro256, permutation, normals).
 */
#ifndef FASTMF_RNG_H
#define FASTMF_RNG_H

#include <math.h>
#include <stdint.h>
#include "common.h"

/* xoshiro256** (Blackman & Vigna 2018) state, plus the spare halves of split outputs */
typedef struct {
    uint64_t s[4];
    uint32_t spare;      /* the low half of the last 64-bit output, when has_spare */
    int has_spare;
    double normal_spare; /* the second normal of the last polar pair, when has_normal */
    int has_normal;
} fastmf_rng;

/* splitmix64 (Steele, Lea & Flood 2014): seeds the generator state from 64-bit keys */
static inline uint64_t fastmf_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* seed g from the keys (seed, a, b) through splitmix64 (e.g. seed, epoch, block + 1) */
void fastmf_rng_seed(fastmf_rng *g, uint64_t seed, uint64_t a, uint64_t b);

static inline uint64_t fastmf_rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* the next 64-bit output of xoshiro256** */
static inline uint64_t fastmf_rng_next(fastmf_rng *g)
{
    uint64_t *s = g->s;
    const uint64_t result = fastmf_rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = fastmf_rotl64(s[3], 45);
    return result;
}

/* 32 random bits: the high, then the low half of each 64-bit output */
static inline uint32_t fastmf_rng_next32(fastmf_rng *g)
{
    uint64_t x;
    if (g->has_spare) {
        g->has_spare = 0;
        return g->spare;
    }
    x = fastmf_rng_next(g);
    g->spare = (uint32_t)x;
    g->has_spare = 1;
    return (uint32_t)(x >> 32);
}

/* uniform integer in [0, bound), bound >= 1, without modulo bias: Lemire's multiply-shift with
 * rejection for bounds below 2^32 (a division only on the rare rejection path), plain rejection
 * sampling above */
static inline uint64_t fastmf_rng_below(fastmf_rng *g, uint64_t bound)
{
    if (bound <= 0xFFFFFFFFULL) {
        const uint32_t b = (uint32_t)bound;
        uint64_t m = (uint64_t)fastmf_rng_next32(g) * b;
        uint32_t low = (uint32_t)m;
        if (low < b) {
            const uint32_t threshold = (uint32_t)(0u - b) % b;
            while (low < threshold) {
                m = (uint64_t)fastmf_rng_next32(g) * b;
                low = (uint32_t)m;
            }
        }
        return m >> 32;
    } else {
        const uint64_t threshold = (0ULL - bound) % bound;
        uint64_t x;
        do x = fastmf_rng_next(g); while (x < threshold);
        return x % bound;
    }
}

/* uniform double in [0, 1): the top 53 bits of a 64-bit output times 2^-53 */
static inline double fastmf_rng_uniform(fastmf_rng *g)
{
    return (double)(fastmf_rng_next(g) >> 11) * (1.0 / 9007199254740992.0);
}

/* A standard normal draw, Marsaglia's polar method (Marsaglia & Bray 1964): u, v = 2 U - 1 from two
 * uniform draws until 0 < s = u^2 + v^2 < 1, then u f and v f with f = sqrt(-2 log(s) / s) are two
 * independent normals; the first is returned, the second kept for the next call. */
static inline double fastmf_rng_normal(fastmf_rng *g)
{
    double u, v, s, f;
    if (g->has_normal) {
        g->has_normal = 0;
        return g->normal_spare;
    }
    do {
        u = 2.0 * fastmf_rng_uniform(g) - 1.0;
        v = 2.0 * fastmf_rng_uniform(g) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    f = sqrt(-2.0 * log(s) / s);
    g->normal_spare = v * f;
    g->has_normal = 1;
    return u * f;
}

/* Fisher-Yates shuffle of a[0..n-1] with the stream g: for i = n-1 down to 1, swap a[i] with a[j],
 * j = fastmf_rng_below(g, i + 1). */
void fastmf_fisher_yates(int64_t *a, int64_t n, fastmf_rng *g);

/* Shuffle order[0..n-1] in place (Fisher-Yates) with a xoshiro256** stream seeded from (seed, stream)
 * through splitmix64. The result depends only on the input contents, n, seed and stream. */
void fastmf_shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t stream);

/* out[0..n-1] = standard normal draws (fastmf_rng_normal) of the stream seeded from (seed, stream) */
void fastmf_normals(double *out, int64_t n, uint64_t seed, uint64_t stream);

#endif
