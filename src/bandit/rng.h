/* rng.h — fast pseudo-random numbers for arm selection and Thompson sampling.
 *
 * Design: xoshiro256** with one generator per thread. Picking an arm needs
 * speed and good statistics, not secrecy, so a non-cryptographic PRNG is used
 * and the OS CSPRNG (libsodium) only supplies seeds. Per-thread state means the
 * hot path takes no locks and threads never share or correlate streams.
 */
#ifndef SCOUT_BANDIT_RNG_H
#define SCOUT_BANDIT_RNG_H

#include <stdint.h>

typedef struct rng { uint64_t s[4]; } rng_t;

/* Deterministic: the same seed always gives the same sequence (splitmix64
 * expansion, so any seed, including 0, yields a valid non-zero state). */
void rng_seed(rng_t *r, uint64_t seed);

/* Seed from libsodium's randombytes_buf; sodium_init() must already have run. */
void rng_seed_os(rng_t *r);

uint64_t rng_next(rng_t *r);

/* Uniform double in [0,1) with 53 random bits. */
double rng_uniform(rng_t *r);

/* Uniform double in (0,1) strictly: safe to pass to log() or divide by. */
double rng_uniform_pos(rng_t *r);

/* Unbiased integer in [0,n) (Lemire's multiply-and-reject). Requires n > 0;
 * n == 0 returns 0 rather than dividing by zero. */
uint32_t rng_below(rng_t *r, uint32_t n);

/* This thread's generator, seeded with rng_seed_os on first use. Never NULL;
 * the pointer is only valid on the calling thread. */
rng_t *rng_thread(void);

#endif
