/* Heap workloads.  See scenario.h for what each one does. */
#include "scenario.h"

#include <stddef.h>
#include <string.h>

#include "msg.h"
#include "prng.h"

#define TICK_MS              (SCENARIO_TICK_US / 1000u)
#define LEAK_RATE_MAX        1000000u /* bytes per second */
#define LEAK_CHUNKS_PER_TICK 64u
#define FRAG_FIRST           16u
#define FRAG_STEP            8u
#define SPIKE_MIN            64u
#define SPIKE_MAX            256u

/* Pushes block p on a list threaded through the blocks' first bytes. */
static void hold(void **list, void *p)
{
    memcpy(p, list, sizeof(*list));
    *list = p;
}

static void release(struct heap *h, void **list)
{
    while (*list != NULL) {
        void *next;

        memcpy(&next, *list, sizeof(next));
        (void)heap_free(h, *list);
        *list = next;
    }
}

static void release_all(struct scenario *s)
{
    for (unsigned i = 0; i < SCENARIO_STEADY_SLOTS; i++) {
        (void)heap_free(s->heap, s->slots[i]);
        s->slots[i] = NULL;
    }
    release(s->heap, &s->chain);
    release(s->heap, &s->spike);
}

void scenario_init(struct scenario *s, struct heap *h, uint32_t seed)
{
    memset(s, 0, sizeof(*s));
    s->heap = h;
    s->rng = seed ? seed : 1u;
    s->id = MSG_SCEN_NONE;
}

int scenario_select(struct scenario *s, uint8_t id, uint32_t param)
{
    if (id >= MSG_SCEN_COUNT)
        return SCENARIO_EINVAL;
    release_all(s);
    s->id = id;
    s->param = param;
    s->elapsed_ms = 0;
    s->owed = 0;
    s->next_size = FRAG_FIRST;
    s->fragment_done = 0;
    return 0;
}

static uint32_t largest(const struct heap *h)
{
    struct heap_stats st;

    heap_stats(h, &st);
    return st.largest;
}

static void steady(struct scenario *s)
{
    unsigned i = prng_next(&s->rng) % SCENARIO_STEADY_SLOTS;
    uint32_t max = s->heap->st.total / (2u * SCENARIO_STEADY_SLOTS);

    if (s->slots[i] != NULL) {
        (void)heap_free(s->heap, s->slots[i]);
        s->slots[i] = NULL;
    } else if (max >= 8u) {
        s->slots[i] = heap_alloc(s->heap, prng_range(&s->rng, 8u, max));
    }
}

static void leak(struct scenario *s)
{
    uint32_t rate = s->param ? s->param : SCENARIO_LEAK_DEFAULT;
    const uint32_t chunk_milli = SCENARIO_LEAK_CHUNK * 1000u;

    if (rate > LEAK_RATE_MAX)
        rate = LEAK_RATE_MAX;
    /* owed counts thousandths of a byte, so slow rates leak exactly. */
    s->owed += rate * TICK_MS;
    for (unsigned n = 0; s->owed >= chunk_milli && n < LEAK_CHUNKS_PER_TICK;
         n++) {
        void *p = heap_alloc(s->heap, SCENARIO_LEAK_CHUNK);

        s->owed -= chunk_milli;
        if (p == NULL) {
            s->owed = 0; /* one attempt per chunk's worth of time */
            return;
        }
        hold(&s->chain, p);
    }
    if (s->owed > LEAK_CHUNKS_PER_TICK * chunk_milli)
        s->owed = LEAK_CHUNKS_PER_TICK * chunk_milli;
}

static void fragment(struct scenario *s)
{
    void *a, *b;

    if (s->fragment_done || s->elapsed_ms % SCENARIO_FRAG_EVERY_MS != 0)
        return;
    /* Both blocks must come out of one free run; stop before failing. */
    if (largest(s->heap) < 2u * s->next_size + HEAP_UNIT) {
        s->fragment_done = 1;
        return;
    }
    a = heap_alloc(s->heap, s->next_size);
    b = heap_alloc(s->heap, s->next_size);
    if (b != NULL)
        hold(&s->chain, b);
    /* Freeing a leaves a hole too small for every later, larger pair. */
    (void)heap_free(s->heap, a);
    s->next_size += FRAG_STEP;
}

static void spike(struct scenario *s)
{
    uint32_t phase = s->elapsed_ms % SCENARIO_SPIKE_EVERY_MS;

    if (phase == SCENARIO_SPIKE_HOLD_MS) {
        release(s->heap, &s->spike);
    } else if (phase == 0) {
        uint32_t target = s->heap->st.free / 4u * 3u;
        uint32_t taken = 0;

        while (taken < target) {
            uint32_t n = prng_range(&s->rng, SPIKE_MIN, SPIKE_MAX);
            void *p;

            if (largest(s->heap) < n)
                break;
            p = heap_alloc(s->heap, n);
            if (p == NULL)
                break;
            hold(&s->spike, p);
            taken += n;
        }
    }
}

void scenario_tick(struct scenario *s)
{
    s->elapsed_ms += TICK_MS;
    switch (s->id) {
    case MSG_SCEN_STEADY:
        steady(s);
        break;
    case MSG_SCEN_LEAK:
        leak(s);
        break;
    case MSG_SCEN_FRAGMENT:
        fragment(s);
        break;
    case MSG_SCEN_SPIKE:
        spike(s);
        break;
    default:
        break;
    }
}
