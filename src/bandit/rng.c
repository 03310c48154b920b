/* rng.c — xoshiro256** core, splitmix64 seeding and bounded/real conversions.
 *
 * The only mutable global is the _Thread_local generator behind rng_thread(),
 * so concurrent request handlers each draw from an independent OS-seeded
 * stream without synchronisation.
 */
#include "rng.h"

#include <sodium.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void rng_seed(rng_t *r, uint64_t seed)
{
    /* splitmix64 is a bijection of a counter, so the four words are distinct
     * and can never all be zero (the one state xoshiro cannot leave). */
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

void rng_seed_os(rng_t *r)
{
    do {
        randombytes_buf(r->s, sizeof r->s);
    } while ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0);
}

uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

double rng_uniform_pos(rng_t *r)
{
    /* Centre each of 2^52 cells: smallest value 2^-53, largest 1 - 2^-53,
     * both exactly representable, so neither endpoint can be produced. */
    return ((double)(rng_next(r) >> 12) + 0.5) * 0x1.0p-52;
}

uint32_t rng_below(rng_t *r, uint32_t n)
{
    if (n == 0)
        return 0;
    uint64_t m = (rng_next(r) >> 32) * (uint64_t)n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        /* Only the 2^32 mod n over-represented low words need rejecting;
         * the costly modulo runs just when a rejection is possible. */
        uint32_t threshold = (uint32_t)-n % n;
        while (low < threshold) {
            m = (rng_next(r) >> 32) * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

rng_t *rng_thread(void)
{
    static _Thread_local rng_t gen;
    static _Thread_local int seeded;
    if (!seeded) {
        rng_seed_os(&gen);
        seeded = 1;
    }
    return &gen;
}
