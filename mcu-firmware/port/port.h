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

#endif
