/* The contract between the portable firmware core and a board port.
 *
 * A port (one folder under port/) implements these verbs and provides
 * port_config.h with its sizes; nothing in core/ includes anything else from
 * a port, a vendor or an OS.  The port owns main(): it calls fw_init() once
 * and fw_poll() in its loop, feeds received bytes to fw_uart_rx() from its
 * receive interrupt and drains fw_uart_tx_next() from its transmit
 * interrupt (core/fw.h).  Context rules are stated per verb. */
#ifndef TETHER_PORT_H
#define TETHER_PORT_H

#include <stdint.h>

#include "port_config.h"

/* Monotonic time in microseconds, wrapping at 2^32.  Any context. */
uint32_t port_time_us(void);

/* The core has queued bytes for transmission: start draining them with
 * fw_uart_tx_next() if the transmitter is idle.  Loop context. */
void port_uart_kick(void);

/* One conversion of ADC channel ch (0 .. adc_channels - 1), right-aligned
 * to PORT_ADC_BITS.  Loop context; may take a few microseconds. */
uint16_t port_adc_read(uint8_t ch);

/* Why the MCU last reset: an enum msg_reset value.  Loop context. */
uint8_t port_reset_cause(void);

/* Resets the MCU; on the host, restarts the core as if it had.  Loop
 * context; does not return. */
_Noreturn void port_reset(void);

/* Feeds the watchdog.  Loop context, at least every PORT_WATCHDOG_MS. */
void port_watchdog_kick(void);

/* Masks interrupts and returns the previous state; port_irq_restore()
 * puts it back.  Both act as compiler barriers.  Loop context. */
uint32_t port_irq_save(void);
void port_irq_restore(uint32_t state);

/* ---- Update storage: only ports that build mcu-firmware/update/ ----
 * Two slots of PORT_SLOT_SIZE bytes (port_config.h) and one boot record
 * (update/boot.h).  Loop context (or the bootloader's, before the core
 * starts); each call may block for as long as the medium needs (a flash
 * page erase), which the caller allows for.  A port may buffer written
 * bytes up to its medium's write unit; a read programs what is buffered
 * first (padding the unit with the erased value), so what a read returns
 * is what the medium holds and what the bootloader will find. */
struct boot_record;
struct image_hdr;

#define PORT_ENOSTORAGE -2 /* port_boot_load: no update storage this run */

/* Makes the first len bytes of slot 0 or 1 ready to be written from
 * offset 0 (len <= PORT_SLOT_SIZE).  0, or -1. */
int port_slot_erase(uint8_t slot, uint32_t len);
/* Writes n bytes at off (written in order, each byte once since the
 * erase).  0, or -1 on a write error or a range outside the slot. */
int port_slot_write(uint8_t slot, uint32_t off, const uint8_t *p, uint16_t n);
/* Reads n bytes at off.  0, or -1. */
int port_slot_read(uint8_t slot, uint32_t off, uint8_t *p, uint16_t n);
/* Loads the boot record: 0; -1 when none is stored (the caller then
 * starts a fresh one); PORT_ENOSTORAGE when this board has no update
 * storage in this run (tether-sim without --flash): updates are then
 * refused.  Validity is checked by the caller (boot_record_valid()). */
int port_boot_load(struct boot_record *r);
/* Stores the whole record so that it survives a reset.  0, or -1. */
int port_boot_store(const struct boot_record *r);
/* 0 if an image with this header can run from a slot of this board
 * (flags, load_addr and entry; board and size are checked by the caller),
 * else -1. */
int port_image_check(const struct image_hdr *h);

#endif
