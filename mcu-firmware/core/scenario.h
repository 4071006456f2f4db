/* Heap workloads: what the firmware does with its heap so that tether has
 * something real to watch.  Every byte a scenario holds comes from
 * heap_alloc() on the firmware's own heap.
 *
 *   none      no allocations.
 *   steady    random blocks allocated and freed at random in a fixed set of
 *             slots: usage wanders but stays bounded; never fails.
 *   leak      param bytes per second (SCENARIO_LEAK_DEFAULT if 0) allocated
 *             in SCENARIO_LEAK_CHUNK pieces and never given back, until
 *             allocations fail; then one attempt per chunk's worth of time,
 *             each failure counted by the heap.
 *   fragment  pairs of equal blocks, each pair larger than the last; one of
 *             each pair is freed at once.  Free memory stays near half the
 *             arena while the largest free block shrinks to a hole.
 *   spike     every SCENARIO_SPIKE_EVERY_MS, a burst of blocks takes about
 *             three quarters of the free memory for SCENARIO_SPIKE_HOLD_MS.
 *
 * Blocks a scenario holds are chained through their first bytes, so the
 * number held is limited only by the heap.  Selecting another scenario
 * frees everything the previous one held (a leak is "fixed" by stopping
 * it).  Loop context. */
#ifndef TETHER_SCENARIO_H
#define TETHER_SCENARIO_H

#include <stdint.h>

#include "heap.h"

#define SCENARIO_TICK_US        10000u /* scenario_tick() cadence */
#define SCENARIO_STEADY_SLOTS   16u
#define SCENARIO_LEAK_DEFAULT   256u /* bytes per second */
#define SCENARIO_LEAK_CHUNK     32u
#define SCENARIO_FRAG_EVERY_MS  200u /* one pair per period */
#define SCENARIO_SPIKE_EVERY_MS 2000u
#define SCENARIO_SPIKE_HOLD_MS  300u

#define SCENARIO_EINVAL -1 /* unknown scenario id */

struct scenario {
    struct heap *heap; /* borrowed */
    uint32_t rng;
    uint32_t param;
    uint32_t elapsed_ms; /* since the scenario was selected */
    uint32_t owed;       /* leak: bytes due but not yet allocated */
    uint32_t next_size;  /* fragment: size of the next pair */
    void *slots[SCENARIO_STEADY_SLOTS];
    void *chain;           /* blocks held, linked through their heads */
    void *spike;           /* spike: blocks of the current burst */
    uint8_t id;            /* enum msg_scenario */
    uint8_t fragment_done; /* fragment: the arena is used up */
};

/* Starts with scenario none on heap h (borrowed). */
void scenario_init(struct scenario *s, struct heap *h, uint32_t seed);

/* Frees what the running scenario holds and starts another.  Returns 0, or
 * SCENARIO_EINVAL (nothing changes). */
int scenario_select(struct scenario *s, uint8_t id, uint32_t param);

/* Advances the workload by one SCENARIO_TICK_US step. */
void scenario_tick(struct scenario *s);

#endif
