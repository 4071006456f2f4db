/* SPSC byte FIFO.  See fifo.h for the concurrency rules. */
#include "fifo.h"

#include "port.h"

void fifo_init(struct fifo *f, uint8_t *buf, uint16_t size)
{
    f->buf = buf;
    f->size = size;
    f->head = 0;
    f->tail = 0;
}

static uint16_t used(const struct fifo *f, uint16_t head, uint16_t tail)
{
    return (uint16_t)(head >= tail ? head - tail : f->size - tail + head);
}

static uint16_t load_tail(struct fifo *f)
{
    uint32_t irq = port_irq_save();
    uint16_t t = f->tail;

    port_irq_restore(irq);
    return t;
}

static uint16_t load_head(struct fifo *f)
{
    uint32_t irq = port_irq_save();
    uint16_t h = f->head;

    port_irq_restore(irq);
    return h;
}

uint16_t fifo_used(struct fifo *f)
{
    return used(f, load_head(f), load_tail(f));
}

uint16_t fifo_space(struct fifo *f)
{
    return (uint16_t)(f->size - 1u - fifo_used(f));
}

bool fifo_put_all(struct fifo *f, const uint8_t *p, uint16_t n)
{
    uint16_t head = f->head;
    uint16_t space = (uint16_t)(f->size - 1u - used(f, head, load_tail(f)));

    if (n > space)
        return false;
    for (uint16_t i = 0; i < n; i++) {
        f->buf[head] = p[i];
        head = (uint16_t)(head + 1u == f->size ? 0 : head + 1u);
    }
    {
        uint32_t irq = port_irq_save();

        f->head = head;
        port_irq_restore(irq);
    }
    return true;
}

bool fifo_put_isr(struct fifo *f, uint8_t byte)
{
    uint16_t head = f->head;
    uint16_t next = (uint16_t)(head + 1u == f->size ? 0 : head + 1u);

    if (next == f->tail)
        return false;
    f->buf[head] = byte;
    f->head = next;
    return true;
}

static bool get(struct fifo *f, uint8_t *byte, uint16_t head)
{
    uint16_t tail = f->tail;

    if (tail == head)
        return false;
    *byte = f->buf[tail];
    return true;
}

bool fifo_get(struct fifo *f, uint8_t *byte)
{
    uint16_t tail = f->tail;

    if (!get(f, byte, load_head(f)))
        return false;
    tail = (uint16_t)(tail + 1u == f->size ? 0 : tail + 1u);
    {
        uint32_t irq = port_irq_save();

        f->tail = tail;
        port_irq_restore(irq);
    }
    return true;
}

bool fifo_get_isr(struct fifo *f, uint8_t *byte)
{
    uint16_t tail = f->tail;

    if (!get(f, byte, f->head))
        return false;
    f->tail = (uint16_t)(tail + 1u == f->size ? 0 : tail + 1u);
    return true;
}
