/* The ADC sampling scheduler: scans the enabled channels at a fixed rate
 * and packs the scans into ADC batch payloads (PROTOCOL.md, ADC).
 *
 * Scans are due on a fixed grid of MCU time (t0 + k * period), so a batch
 * needs only its first timestamp and the period.  When the loop falls so far
 * behind that a whole batch of scans is overdue, the late scans are skipped
 * and counted, the partial batch is closed and the grid restarts at the
 * present: timestamps stay true, and sampling never waits for the UART.
 * A batch is closed when it is full, when its first scan is older than
 * SAMPLER_LATENCY_US, or when the rate or mask changes.  Loop context. */
#ifndef TETHER_SAMPLER_H
#define TETHER_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "port.h"

#define SAMPLER_LATENCY_US 100000u /* longest a scan waits in a batch */

struct sampler {
    uint32_t period_us; /* 1e6 / rate, rounded down */
    uint32_t next_us;   /* when the next scan is due */
    uint32_t t0_us;     /* time of the batch's first scan */
    uint32_t missed;    /* scans skipped because the loop was late */
    uint16_t rate_hz;
    uint16_t mask;
    uint8_t nch;       /* channels in mask */
    uint8_t scans;     /* scans in the open batch */
    uint8_t max_scans; /* scans that fill a batch for this mask */
    uint8_t buf[MSG_ADC_LEN(PORT_ADC_VALUES_MAX)]; /* the batch payload */
};

/* Starts sampling mask (0 = none) at rate_hz (1..PORT_RATE_MAX_HZ). */
void sampler_init(struct sampler *s, uint16_t rate_hz, uint16_t mask,
                  uint32_t now_us);

/* Takes the scans due at now_us.  Returns the length of a closed batch in
 * s->buf, which the caller sends before calling again (call until it returns
 * 0), or 0 when no batch closed. */
size_t sampler_poll(struct sampler *s, uint32_t now_us);

/* Closes the open batch: returns its length in s->buf, or 0 if empty. */
size_t sampler_flush(struct sampler *s);

/* Change the rate or mask; flush first, or the open batch is lost. */
void sampler_set_rate(struct sampler *s, uint16_t rate_hz, uint32_t now_us);
void sampler_set_mask(struct sampler *s, uint16_t mask, uint32_t now_us);

/* Microseconds until the next scan is due (0 if overdue); UINT32_MAX when
 * nothing is sampled. */
uint32_t sampler_wait_us(const struct sampler *s, uint32_t now_us);

#endif
