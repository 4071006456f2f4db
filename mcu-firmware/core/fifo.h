/* A single-producer single-consumer byte FIFO between interrupt and loop
 * context: the UART receive interrupt fills one, the transmit interrupt
 * drains another.
 *
 * Each side writes only its own index; the buffer and both indices are
 * volatile so the compiler keeps data stores ahead of the index store that
 * publishes them (enough on a single-core MCU).  Loop-context calls read the
 * other side's index inside port_irq_save()/port_irq_restore(), because a
 * 16-bit load is not atomic on every MCU we support (AVR).  Interrupt-context
 * calls need no lock: the loop cannot run while they do. */
#ifndef TETHER_FIFO_H
#define TETHER_FIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fifo {
    volatile uint8_t *buf;  /* borrowed: size bytes */
    uint16_t size;          /* capacity + 1 */
    volatile uint16_t head; /* next write; producer only */
    volatile uint16_t tail; /* next read; consumer only */
};

/* Uses buf (size bytes, 2..65535) as storage; holds size - 1 bytes. */
void fifo_init(struct fifo *f, uint8_t *buf, uint16_t size);

/* Producer in loop context: appends all n bytes, or nothing and returns
 * false when they do not fit. */
bool fifo_put_all(struct fifo *f, const uint8_t *p, uint16_t n);
/* Producer in interrupt context: one byte; false when full. */
bool fifo_put_isr(struct fifo *f, uint8_t byte);

/* Consumer in loop context: one byte; false when empty. */
bool fifo_get(struct fifo *f, uint8_t *byte);
/* Consumer in interrupt context: one byte; false when empty. */
bool fifo_get_isr(struct fifo *f, uint8_t *byte);

/* Loop context: bytes that can be put / are waiting. */
uint16_t fifo_space(struct fifo *f);
uint16_t fifo_used(struct fifo *f);

#endif
