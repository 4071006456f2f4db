/* What tether-sim's main loop needs from the host port beyond port.h. */
#ifndef TETHER_PORT_HOST_H
#define TETHER_PORT_HOST_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

/* port_reset() long-jumps to reset_to (borrowed for the process lifetime).
 * The MCU clock starts at clock_offset_us, so wraparound can be reached. */
void port_host_init(jmp_buf *reset_to, uint32_t seed, uint32_t clock_offset_us);

/* True when the core has not fed the watchdog for PORT_WATCHDOG_MS (the
 * process was stopped, say); the next reset cause is then WATCHDOG. */
bool port_host_watchdog_expired(void);

/* The core has been (re)started: the watchdog period begins now. */
void port_host_booted(void);

#endif
