/* rng.c - xoshiro256** per thread (Blackman and Vigna, 2018), seeded with getrandom(2). */
#include "rng.h"

#include <stdbool.h>
#include <sys/random.h>
#include <time.h>

struct rng_state {
    uint64_t s[4];
    bool seeded;
};

/* One generator per OS thread. A goroutine that migrates between threads simply continues on
 * the new thread's generator: that is fine for random ids. */
static _Thread_local struct rng_state rng_tls;

static uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng_state *st)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)st;
    }
    for (int i = 0; i < 4; i++)
        st->s[i] = rng_splitmix(&seed);
    st->seeded = true;
}

static uint64_t rng_next(struct rng_state *st)
{
    uint64_t *s = st->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

uint32_t rng_between_1_and(uint32_t n)
{
    struct rng_state *st = &rng_tls;
    if (!st->seeded)
        rng_seed(st);
    /* Lemire's multiply-shift: the bias for n <= 10000 is below 2^-50, negligible here. */
    return (uint32_t)(((rng_next(st) >> 32) * (uint64_t)n) >> 32) + 1;
}
