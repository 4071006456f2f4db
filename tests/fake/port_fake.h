/* Controls of the fake port (port_fake.c) that unit tests link against. */
#ifndef TETHER_PORT_FAKE_H
#define TETHER_PORT_FAKE_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "boot.h"
#include "port.h"

struct port_fake {
    uint32_t now_us;     /* what port_time_us() returns */
    uint8_t reset_cause; /* what port_reset_cause() returns */
    jmp_buf *reset_to;   /* port_reset() long-jumps here (abort if NULL) */
    unsigned resets;
    unsigned kicks;
    unsigned watchdog_kicks;
    uint32_t irq_depth;

    /* Update storage: in-memory slots and boot record.  Off (zeroed), the
     * board has none (port_boot_load() says PORT_ENOSTORAGE). */
    bool flash;
    bool has_record;        /* rec holds a stored record */
    struct boot_record rec; /* as last stored */
    uint8_t slot[BOOT_SLOTS][PORT_SLOT_SIZE];
    uint32_t erased[BOOT_SLOTS];  /* bytes made writable by the erase */
    uint32_t written[BOOT_SLOTS]; /* bytes written since the erase */
    unsigned erases, writes, stores;
    unsigned misuses; /* writes out of order or past the erase: a bug */
    /* Injected faults: each makes every such call fail while set. */
    bool fail_erase, fail_write, fail_read, fail_store;
    /* Flips bit 0 of slot byte flip_at + 1 as it is written (0: none). */
    uint32_t flip_at_plus1;
};

extern struct port_fake port_fake;

/* The fake ADC: channel in the top bits, time in the low bits. */
static inline uint16_t port_fake_adc_value(uint8_t ch, uint32_t t_us)
{
    return (uint16_t)(((unsigned)ch << 10) | ((t_us / 1000u) & 0x3ffu));
}

#endif
