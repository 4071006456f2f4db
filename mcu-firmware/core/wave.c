/* Deterministic waveforms for simulated ADC channels.  See wave.h. */
#include "wave.h"

#include "prng.h"

/* sin(x) * 32767 for x in [0, pi/2], 64 steps plus the end point. */
/* clang-format off */
static const uint16_t quarter[65] = {
        0,   804,  1608,  2410,  3212,  4011,  4808,  5602,
     6393,  7179,  7962,  8739,  9512, 10278, 11039, 11793,
    12539, 13279, 14010, 14732, 15446, 16151, 16846, 17530,
    18204, 18868, 19519, 20159, 20787, 21403, 22005, 22594,
    23170, 23731, 24279, 24811, 25329, 25832, 26319, 26790,
    27245, 27683, 28105, 28510, 28898, 29268, 29621, 29956,
    30273, 30571, 30852, 31113, 31356, 31580, 31785, 31971,
    32137, 32285, 32412, 32521, 32609, 32678, 32728, 32757,
    32767,
};
/* clang-format on */

void wave_init(struct wave *w, uint8_t bits, uint32_t seed)
{
    w->rng = seed ? seed : 1u;
    w->bits = bits > 16 ? 16 : bits;
}

enum wave_kind wave_kind_of(uint8_t channel)
{
    return (enum wave_kind)(channel % 4u);
}

/* sin of phase/256 of a turn, in -32767..32767. */
static int32_t sine256(uint32_t phase)
{
    uint32_t i = phase & 63u;
    int32_t v;

    switch ((phase >> 6) & 3u) {
    case 0:
        v = quarter[i];
        break;
    case 1:
        v = quarter[64u - i];
        break;
    case 2:
        v = -(int32_t)quarter[i];
        break;
    default:
        v = -(int32_t)quarter[64u - i];
        break;
    }
    return v;
}

/* floor(r * full / RAMP_US) for r < RAMP_US and full < 2^16, exactly, in
 * 32-bit arithmetic: the product needs 37 bits, and 64-bit division is a
 * costly library call on small MCUs.  With r = 32a + b and RAMP_US = 32 *
 * 62500, a * full fits 32 bits, and so does what its remainder carries. */
#define RAMP_US 2000000u
static uint32_t ramp(uint32_t r, uint32_t full)
{
    uint32_t a = r / 32u, b = r % 32u;
    uint32_t q = a * full / (RAMP_US / 32u);
    uint32_t rem = a * full % (RAMP_US / 32u);

    return q + (32u * rem + b * full) / RAMP_US;
}

uint16_t wave_sample(struct wave *w, uint8_t channel, uint32_t t_us)
{
    uint32_t full = (UINT32_C(1) << w->bits) - 1u;
    uint32_t half = full / 2u;
    uint32_t period, v;

    switch (wave_kind_of(channel)) {
    case WAVE_SINE:
        period = 1000000u * (1u + channel / 4u);
        v = (uint32_t)((int32_t)half +
                       sine256((t_us % period) / (period / 256u)) *
                           (int32_t)half / 32767);
        break;
    case WAVE_RAMP:
        v = ramp(t_us % RAMP_US, full);
        break;
    case WAVE_NOISE:
        v = half - full / 16u + prng_next(&w->rng) % (full / 8u + 1u);
        break;
    default:
        v = full * (channel + 1u) / 17u;
        break;
    }
    return (uint16_t)(v > full ? full : v);
}
