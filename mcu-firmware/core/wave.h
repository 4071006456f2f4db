/* Simulated ADC inputs for boards without real analog signals (tether-sim,
 * QEMU): each channel carries a deterministic waveform, so a receiver can
 * check what it got.  Channel c carries, by c % 4: a sine (period 1 s plus
 * 1 s per group of four channels), a ramp (period 2 s), noise around
 * mid-scale from a seeded generator, or a constant (c + 1) / 17 of full
 * scale.  Integer arithmetic only.  Loop context. */
#ifndef TETHER_WAVE_H
#define TETHER_WAVE_H

#include <stdint.h>

enum wave_kind { WAVE_SINE, WAVE_RAMP, WAVE_NOISE, WAVE_CONST };

struct wave {
    uint32_t rng; /* noise generator state */
    uint8_t bits; /* ADC resolution: values are 0 .. 2^bits - 1 */
};

void wave_init(struct wave *w, uint8_t bits, uint32_t seed);
enum wave_kind wave_kind_of(uint8_t channel);
/* The value of a channel at MCU time t_us. */
uint16_t wave_sample(struct wave *w, uint8_t channel, uint32_t t_us);

#endif
