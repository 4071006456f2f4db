/* Controls of the fake port (port_fake.c) that unit tests link against. */
#ifndef TETHER_PORT_FAKE_H
#define TETHER_PORT_FAKE_H

#include <setjmp.h>
#include <stdint.h>

#include "port.h"

struct port_fake {
    uint32_t now_us;     /* what port_time_us() returns */
    uint8_t reset_cause; /* what port_reset_cause() returns */
    jmp_buf *reset_to;   /* port_reset() long-jumps here (abort if NULL) */
    unsigned resets;
    unsigned kicks;
    unsigned watchdog_kicks;
    uint32_t irq_depth;
};

extern struct port_fake port_fake;

/* The fake ADC: channel in the top bits, time in the low bits. */
static inline uint16_t port_fake_adc_value(uint8_t ch, uint32_t t_us)
{
    return (uint16_t)(((unsigned)ch << 10) | ((t_us / 1000u) & 0x3ffu));
}

#endif
