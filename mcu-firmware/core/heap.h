/* The firmware's heap: a first-fit allocator over one static arena, with
 * exact statistics.  This is the memory tether watches: every figure in a
 * HEAP report is read from this allocator's own bookkeeping after real
 * allocations, never computed from a formula.
 *
 * The arena is cut into 8-byte units.  Every block, free or allocated,
 * starts with a one-unit header; free blocks sit on one list kept in address
 * order and are merged with their neighbours when freed, so no two free
 * blocks are ever adjacent.  Blocks are found first-fit and split when the
 * rest could hold a header and one unit of data.  Arenas up to 512 KiB.
 *
 * Loop context only: nothing here may be called from an interrupt. */
#ifndef TETHER_HEAP_H
#define TETHER_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_UNIT      8u     /* allocation granule and header size */
#define HEAP_UNITS_MAX 65535u /* arena limit: 16-bit unit indices */

#define HEAP_EINVAL -1 /* heap_free: not a live block of this heap */

struct heap_stats {
    uint32_t total;    /* usable arena bytes */
    uint32_t free;     /* total - used */
    uint32_t used;     /* bytes in allocated blocks, headers included */
    uint32_t largest;  /* largest request that would succeed now */
    uint32_t min_free; /* lowest free since heap_init() */
    uint32_t allocs;   /* successful allocations */
    uint32_t frees;    /* successful frees */
    uint32_t failures; /* refused allocations */
    uint16_t blocks;   /* allocated blocks now */
};

struct heap {
    uint8_t *base;      /* borrowed: the arena, aligned to HEAP_UNIT */
    uint16_t units;     /* arena size in units */
    uint16_t free_head; /* first free block, or HEAP_NONE */
    uint16_t used_units;
    struct heap_stats st;
};

/* Takes the arena (borrowed for the heap's lifetime); any previous contents
 * are forgotten.  Bytes past a multiple of HEAP_UNIT, or past the alignment
 * of arena, are not used. */
void heap_init(struct heap *h, void *arena, size_t size);

/* Returns n bytes aligned to HEAP_UNIT, or NULL (counted as a failure) when
 * no free block is large enough.  n == 0 returns NULL and counts nothing. */
void *heap_alloc(struct heap *h, size_t n);

/* Frees a block from heap_alloc(); NULL is a no-op.  Returns 0, or
 * HEAP_EINVAL for a pointer that is not a live block (nothing changes). */
int heap_free(struct heap *h, void *p);

/* Fills *out with the current statistics. */
void heap_stats(const struct heap *h, struct heap_stats *out);

#endif
