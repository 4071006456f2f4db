/* What tether-sim's main loop needs from the host port beyond port.h. */
#ifndef TETHER_PORT_HOST_H
#define TETHER_PORT_HOST_H

#include <setjmp.h> /* sigjmp_buf: POSIX, not C11 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* port_reset() long-jumps to reset_to (borrowed for the process lifetime;
 * a sigjmp_buf, as the SIGALRM watchdog resets from a signal handler).
 * The MCU clock starts at clock_offset_us, so wraparound can be reached.
 * The first reset cause is cause (POWER_ON, or what made the previous
 * image exec this one). */
void port_host_init(sigjmp_buf *reset_to, uint32_t seed,
                    uint32_t clock_offset_us, uint8_t cause);

/* True when the core has not fed the watchdog for PORT_WATCHDOG_MS (the
 * process was stopped, say); the next reset cause is then WATCHDOG. */
bool port_host_watchdog_expired(void);

/* The core has been (re)started: the watchdog period begins now. */
void port_host_booted(void);

/* ---- Update storage in files (port_flash.c) ---- */
/* Keeps slots and boot record in dir, created if missing.  0, or -1 with
 * a message on stderr.  Without it the sim has no update storage. */
int port_host_flash_open(const char *dir);
/* Damages every upload: bit 0 of body byte `byte` flips as it is stored. */
void port_host_flash_flip(uint32_t byte);
/* The file of a slot, to execute it.  0, or -1 without storage. */
int port_host_slot_path(uint8_t slot, char *buf, size_t cap);
/* Closes the slot files (before exec). */
void port_host_flash_close(void);

#endif
