/* Random streams: seeding, Fisher-Yates and batch draws (the per-draw functions are inline in
 * rng.h). No globals: every function works on a caller-owned state. */
#include "rng.h"

void fastmf_rng_seed(fastmf_rng *g, uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = fastmf_splitmix64(&x);
    x = h ^ a;
    h = fastmf_splitmix64(&x);
    x = h ^ b;
    g->s[0] = fastmf_splitmix64(&x);
    g->s[1] = fastmf_splitmix64(&x);
    g->s[2] = fastmf_splitmix64(&x);
    g->s[3] = fastmf_splitmix64(&x);
    if ((g->s[0] | g->s[1] | g->s[2] | g->s[3]) == 0) g->s[0] = 1; /* the one forbidden state */
    g->spare = 0;
    g->has_spare = 0;
    g->normal_spare = 0.0;
    g->has_normal = 0;
}

/* Above FASTMF_FY_SMALL entries the partners are drawn FASTMF_FY_AHEAD steps early (in the same
 * sequence, so the result is unchanged) and their slots prefetched: on a large array each swap
 * would otherwise wait for a cache miss. Small arrays (a block of ml-100k has about 1,250 entries)
 * skip that bookkeeping, which costs more than it saves in L1 (2.5% of a blocked ml-100k epoch).
 * Pure-Python twin: fastmf.reference.permutation. */
#define FASTMF_FY_AHEAD 16  /* a power of two */
#define FASTMF_FY_SMALL 4096
/* the shuffle on a local copy of the state: stores to a[] (int64) may alias the state's uint64
 * words through a pointer, which would make the compiler reload them after every swap */
static void fisher_yates(int64_t *a, int64_t n, fastmf_rng *g)
{
    int64_t ahead[FASTMF_FY_AHEAD];
    int64_t i, d;
    if (n <= FASTMF_FY_SMALL) {  /* the array sits in L1: no prefetching, same draws */
        for (i = n - 1; i > 0; --i) {
            const int64_t j = (int64_t)fastmf_rng_below(g, (uint64_t)i + 1), t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        return;
    }
    for (d = 0; d < FASTMF_FY_AHEAD && n - 1 - d > 0; ++d) {
        ahead[d] = (int64_t)fastmf_rng_below(g, (uint64_t)(n - d));
        FASTMF_PREFETCH_W(a + ahead[d]);
    }
    for (i = n - 1; i > 0; --i) {
        const int slot = (int)((n - 1 - i) & (FASTMF_FY_AHEAD - 1));
        const int64_t j = ahead[slot], t = a[i];
        if (i - FASTMF_FY_AHEAD > 0) {
            ahead[slot] = (int64_t)fastmf_rng_below(g, (uint64_t)(i - FASTMF_FY_AHEAD) + 1);
            FASTMF_PREFETCH_W(a + ahead[slot]);
        }
        a[i] = a[j];
        a[j] = t;
    }
}

void fastmf_fisher_yates(int64_t *a, int64_t n, fastmf_rng *g)
{
    fastmf_rng local = *g;
    fisher_yates(a, n, &local);
    *g = local;
}

void fastmf_shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t stream)
{
    fastmf_rng g;
    fastmf_rng_seed(&g, seed, stream, 0);
    fastmf_fisher_yates(order, n, &g);
}

void fastmf_normals(double *out, int64_t n, uint64_t seed, uint64_t stream)
{
    fastmf_rng g;
    int64_t i;
    fastmf_rng_seed(&g, seed, stream, 0);
    for (i = 0; i < n; ++i) out[i] = fastmf_rng_normal(&g);
}
