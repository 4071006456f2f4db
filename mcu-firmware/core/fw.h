/* The firmware core: the one place that knows sampling, the heap and its
 * workloads, the link and the commands, and ties them together.  A port
 * drives it through these entry points (see port/port.h for the other
 * direction).
 *
 * Transmission never blocks: frames are encoded into a bounded FIFO that the
 * port drains.  A frame that does not fit is dropped and counted (STATS
 * tx_dropped).  Everything but the replies to commands leaves
 * FW_REPLY_RESERVE bytes free.  HEAP and STATS reports that do not fit wait
 * for room, and ADC batches are dropped while they wait, so a saturated
 * line sheds data, delivers reports late but whole, and always answers. */
#ifndef TETHER_FW_H
#define TETHER_FW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Test builds of other versions pass these with -D (the Makefile's
 * sim-v2 and sim-mute). */
#ifndef FW_VERSION_MAJOR
#define FW_VERSION_MAJOR 0u
#endif
#ifndef FW_VERSION_MINOR
#define FW_VERSION_MINOR 1u
#endif
#ifndef FW_VERSION_PATCH
#define FW_VERSION_PATCH 0u
#endif
/* 0x00MMmmpp.  The shifts are done in 32 bits: int may be 16 bits wide. */
#define FW_VERSION                                                             \
    (((uint32_t)FW_VERSION_MAJOR << 16) | ((uint32_t)FW_VERSION_MINOR << 8) |  \
     FW_VERSION_PATCH)
#ifndef FW_BUILD_ID
#define FW_BUILD_ID 0u /* the build passes the source revision */
#endif

#define FW_REPLY_RESERVE   64u     /* TX bytes reports leave free for replies */
#define FW_REBOOT_DRAIN_US 200000u /* longest wait to send the REBOOT ACK */

/* Start-up settings; fw_defaults() fills them, a port may change them. */
struct fw_options {
    uint32_t seed;           /* waveforms and workloads */
    uint32_t scenario_param; /* see scenario.h */
    uint16_t rate_hz;        /* scans per second */
    uint16_t mask;           /* channels sampled */
    uint16_t heap_period_ms; /* HEAP and STATS reports; 0 = none */
    uint8_t channels;        /* ADC channels the board has */
    uint8_t scenario;        /* enum msg_scenario */
};

void fw_defaults(struct fw_options *o);

/* (Re)starts the core from scratch: heap, workload, sampler and link.
 * Sends a delimiter, then HELLO and a boot LOG.  Loop context. */
void fw_init(const struct fw_options *o);

/* Does all work that is due.  Returns the microseconds the port may sleep
 * (interrupts wake it earlier).  Loop context. */
uint32_t fw_poll(void);

/* Receive interrupt entry: one byte from the UART.  Interrupt context. */
void fw_uart_rx(uint8_t byte);

/* Queues a reply frame (ACK, NACK, PONG, UPD_STATUS) with the core's
 * sequence numbers; false when the TX FIFO has no room (the frame is then
 * dropped and counted in STATS tx_dropped).  For the update handler
 * (fwupdate.h).  Loop context. */
bool fw_send_reply(uint8_t type, const uint8_t *payload, size_t len);

/* Resets the MCU (port_reset()) once the frames queued so far have gone
 * out, or FW_REBOOT_DRAIN_US from now at the latest, as REBOOT does.  For
 * the update handler's UPD_BOOT.  Loop context. */
void fw_reboot(void);

/* Transmit interrupt entry: the next byte to send, or -1 when the FIFO is
 * empty.  Interrupt context. */
int fw_uart_tx_next(void);

#endif
