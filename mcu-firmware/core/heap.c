/* First-fit allocator with an address-ordered free list.  See heap.h. */
#include "heap.h"

#include <string.h>

#define HEAP_NONE  0xffffu
#define MAGIC_USED 0xa110u
#define MAGIC_FREE 0xf4eeu

/* The header at the start of every block.  It is read and written with
 * memcpy because the arena is the caller's byte array. */
struct hdr {
    uint16_t units; /* block size in units, header included */
    uint16_t next;  /* free blocks: the next free block, or HEAP_NONE */
    uint16_t magic; /* MAGIC_USED or MAGIC_FREE */
    uint16_t pad;
};

static struct hdr get(const struct heap *h, uint16_t at)
{
    struct hdr b;

    memcpy(&b, h->base + (size_t)at * HEAP_UNIT, sizeof(b));
    return b;
}

static void put(struct heap *h, uint16_t at, uint16_t units, uint16_t next,
                uint16_t magic)
{
    struct hdr b = {units, next, magic, 0};

    memcpy(h->base + (size_t)at * HEAP_UNIT, &b, sizeof(b));
}

void heap_init(struct heap *h, void *arena, size_t size)
{
    uintptr_t a = (uintptr_t)arena;
    size_t skip = (HEAP_UNIT - (a % HEAP_UNIT)) % HEAP_UNIT;
    size_t units = size > skip ? (size - skip) / HEAP_UNIT : 0;

    if (units > HEAP_UNITS_MAX)
        units = HEAP_UNITS_MAX;
    h->base = (uint8_t *)arena + skip;
    h->units = (uint16_t)units;
    h->used_units = 0;
    h->st = (struct heap_stats){0};
    h->st.total = (uint32_t)units * HEAP_UNIT;
    h->st.free = h->st.total;
    h->st.min_free = h->st.total;
    if (units >= 2) {
        h->free_head = 0;
        put(h, 0, (uint16_t)units, HEAP_NONE, MAGIC_FREE);
    } else {
        h->free_head = HEAP_NONE;
    }
}

static void account(struct heap *h)
{
    h->st.used = (uint32_t)h->used_units * HEAP_UNIT;
    h->st.free = h->st.total - h->st.used;
    if (h->st.free < h->st.min_free)
        h->st.min_free = h->st.free;
}

void *heap_alloc(struct heap *h, size_t n)
{
    uint16_t prev = HEAP_NONE;
    size_t need;

    if (n == 0)
        return NULL;
    /* More than the arena can never succeed.  Checking this first also
     * keeps the rounding below from wrapping where size_t is 16 bits. */
    if (n > (size_t)h->units * HEAP_UNIT) {
        h->st.failures++;
        return NULL;
    }
    need = 1 + n / HEAP_UNIT + (n % HEAP_UNIT != 0);
    for (uint16_t at = h->free_head; at != HEAP_NONE;) {
        struct hdr b = get(h, at);

        if (b.units >= need) {
            uint16_t next = b.next;
            uint16_t take = b.units;

            if (b.units - need >= 2) {
                /* Split: the front is handed out, the rest stays free. */
                uint16_t rest = (uint16_t)(at + need);

                take = (uint16_t)need;
                put(h, rest, (uint16_t)(b.units - need), b.next, MAGIC_FREE);
                next = rest;
            }
            if (prev == HEAP_NONE)
                h->free_head = next;
            else
                put(h, prev, get(h, prev).units, next, MAGIC_FREE);
            put(h, at, take, HEAP_NONE, MAGIC_USED);
            h->used_units = (uint16_t)(h->used_units + take);
            h->st.allocs++;
            h->st.blocks++;
            account(h);
            return h->base + ((size_t)at + 1) * HEAP_UNIT;
        }
        prev = at;
        at = b.next;
    }
    h->st.failures++;
    return NULL;
}

int heap_free(struct heap *h, void *p)
{
    uint8_t *q = p;
    uint16_t at, prev = HEAP_NONE, next;
    size_t off;
    struct hdr b;

    if (p == NULL)
        return 0;
    if (q < h->base + HEAP_UNIT || q >= h->base + (size_t)h->units * HEAP_UNIT)
        return HEAP_EINVAL;
    off = (size_t)(q - h->base);
    if (off % HEAP_UNIT != 0)
        return HEAP_EINVAL;
    at = (uint16_t)(off / HEAP_UNIT - 1);
    b = get(h, at);
    /* at < h->units here; the header's size is checked by subtraction,
     * because at + b.units can wrap where int is 16 bits. */
    if (b.magic != MAGIC_USED || b.units < 2 || b.units > h->units - at)
        return HEAP_EINVAL;

    h->used_units = (uint16_t)(h->used_units - b.units);
    h->st.frees++;
    h->st.blocks--;
    account(h);

    /* Insert in address order, then merge with the neighbours. */
    next = h->free_head;
    while (next != HEAP_NONE && next < at) {
        prev = next;
        next = get(h, next).next;
    }
    if (next != HEAP_NONE && at + b.units == next) {
        struct hdr nb = get(h, next);

        b.units = (uint16_t)(b.units + nb.units);
        next = nb.next;
    }
    put(h, at, b.units, next, MAGIC_FREE);
    if (prev == HEAP_NONE) {
        h->free_head = at;
    } else {
        struct hdr pb = get(h, prev);

        if (prev + pb.units == at)
            put(h, prev, (uint16_t)(pb.units + b.units), next, MAGIC_FREE);
        else
            put(h, prev, pb.units, at, MAGIC_FREE);
    }
    return 0;
}

void heap_stats(const struct heap *h, struct heap_stats *out)
{
    uint16_t best = 0;

    for (uint16_t at = h->free_head; at != HEAP_NONE;) {
        struct hdr b = get(h, at);

        if (b.units > best)
            best = b.units;
        at = b.next;
    }
    *out = h->st;
    out->largest = best >= 2 ? (uint32_t)(best - 1u) * HEAP_UNIT : 0;
}
