/* rng.h - a fast per-thread pseudo-random generator for World ids and randomNumbers.
 *
 * TechEmpower wants a random row per query; quality needs are modest and speed matters (a
 * /queries?queries=500 request draws 500 ids). xoshiro256** seeded once per thread from
 * getrandom(2). Not for anything secret.
 */
#ifndef TRIAD_RNG_H
#define TRIAD_RNG_H

#include <stdint.h>

/* A uniformly distributed integer in 1..n (n >= 1), from the calling thread's generator. */
uint32_t rng_between_1_and(uint32_t n);

#endif
