/* xorshift32: a small deterministic generator for simulated waveforms and
 * heap workloads.  Not for anything that needs unpredictability. */
#ifndef TETHER_PRNG_H
#define TETHER_PRNG_H

#include <stdint.h>

/* Advances *state (never 0) and returns the new value. */
static inline uint32_t prng_next(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x9e3779b9u;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* A value in [lo, hi]. */
static inline uint32_t prng_range(uint32_t *state, uint32_t lo, uint32_t hi)
{
    return lo + prng_next(state) % (hi - lo + 1u);
}

#endif
