/* The allocator against a reference model: a naive map of which unit
 * belongs to which block, first-fit by linear scan.  After every random
 * operation the two must agree on every address and every statistic. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "prng.h"
#include "suites.h"

#define ARENA    4096u
#define UNITS    (ARENA / HEAP_UNIT)
#define LIVE_MAX 256u

struct model {
    uint16_t owner[UNITS]; /* 0 = free, else 1 + live index */
    uint16_t start[LIVE_MAX];
    uint16_t units[LIVE_MAX];
    uint32_t allocs, frees, failures, min_free;
};

static _Alignas(HEAP_UNIT) uint8_t arena[ARENA];

static uint32_t model_used(const struct model *m)
{
    uint32_t used = 0;

    for (unsigned u = 0; u < UNITS; u++)
        used += m->owner[u] != 0;
    return used * HEAP_UNIT;
}

static uint32_t model_largest(const struct model *m)
{
    unsigned best = 0, run = 0;

    for (unsigned u = 0; u < UNITS; u++) {
        run = m->owner[u] == 0 ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best >= 2 ? (best - 1) * HEAP_UNIT : 0;
}

/* First fit over maximal free runs; takes the whole run when splitting
 * would leave less than two units.  Returns the start unit or -1. */
static int model_alloc(struct model *m, unsigned slot, size_t n)
{
    unsigned need = 1 + (unsigned)((n + HEAP_UNIT - 1) / HEAP_UNIT);

    for (unsigned u = 0; u < UNITS;) {
        unsigned run = 0;

        while (u + run < UNITS && m->owner[u + run] == 0)
            run++;
        if (run >= need) {
            unsigned take = run - need >= 2 ? need : run;

            for (unsigned i = 0; i < take; i++)
                m->owner[u + i] = (uint16_t)(slot + 1);
            m->start[slot] = (uint16_t)u;
            m->units[slot] = (uint16_t)take;
            m->allocs++;
            return (int)u;
        }
        u += run ? run : 1;
    }
    m->failures++;
    return -1;
}

static void model_free(struct model *m, unsigned slot)
{
    for (unsigned i = 0; i < m->units[slot]; i++)
        m->owner[m->start[slot] + i] = 0;
    m->frees++;
}

static void check_same(const struct heap *h, const struct model *m,
                       unsigned live)
{
    struct heap_stats st;

    heap_stats(h, &st);
    ck_assert_uint_eq(st.total, ARENA);
    ck_assert_uint_eq(st.used, model_used(m));
    ck_assert_uint_eq(st.free, ARENA - model_used(m));
    ck_assert_uint_eq(st.largest, model_largest(m));
    ck_assert_uint_eq(st.min_free, m->min_free);
    ck_assert_uint_eq(st.allocs, m->allocs);
    ck_assert_uint_eq(st.frees, m->frees);
    ck_assert_uint_eq(st.failures, m->failures);
    ck_assert_uint_eq(st.blocks, live);
}

static void run_model(uint32_t seed, unsigned steps, size_t max_size)
{
    static struct model m;
    void *ptr[LIVE_MAX];
    unsigned live = 0;
    uint32_t rng = seed;
    struct heap h;

    memset(&m, 0, sizeof(m));
    m.min_free = ARENA;
    heap_init(&h, arena, sizeof(arena));
    for (unsigned step = 0; step < steps; step++) {
        bool do_alloc =
            live == 0 || (live < LIVE_MAX && prng_next(&rng) % 100 < 55);

        if (do_alloc) {
            size_t n = prng_range(&rng, 1, (uint32_t)max_size);
            void *p = heap_alloc(&h, n);
            int at = model_alloc(&m, live, n);

            if (at < 0) {
                ck_assert_ptr_null(p);
            } else {
                ck_assert_ptr_eq(p, arena + ((size_t)at + 1) * HEAP_UNIT);
                memset(p, 0xcd, n); /* the caller owns all n bytes */
                ptr[live++] = p;
            }
        } else {
            unsigned i = prng_next(&rng) % live;

            ck_assert_int_eq(heap_free(&h, ptr[i]), 0);
            model_free(&m, i);
            /* keep the live arrays dense */
            live--;
            if (i != live) {
                ptr[i] = ptr[live];
                m.start[i] = m.start[live];
                m.units[i] = m.units[live];
                for (unsigned u = 0; u < m.units[i]; u++)
                    m.owner[m.start[i] + u] = (uint16_t)(i + 1);
            }
        }
        if (ARENA - model_used(&m) < m.min_free)
            m.min_free = ARENA - model_used(&m);
        check_same(&h, &m, live);
    }
}

START_TEST(test_heap_matches_reference_model_small_blocks)
{
    run_model(1, 20000, 64);
}
END_TEST

START_TEST(test_heap_matches_reference_model_mixed_blocks_until_failures)
{
    run_model(2, 20000, 700);
    run_model(3, 5000, 4000);
}
END_TEST

START_TEST(test_heap_fills_and_empties_exactly)
{
    struct heap h;
    struct heap_stats st;
    void *p[UNITS];
    unsigned n = 0;

    heap_init(&h, arena, sizeof(arena));
    while ((p[n] = heap_alloc(&h, 8)) != NULL)
        n++;
    ck_assert_uint_eq(n, UNITS / 2);
    heap_stats(&h, &st);
    ck_assert_uint_eq(st.free, 0);
    ck_assert_uint_eq(st.largest, 0);
    ck_assert_uint_eq(st.failures, 1);
    for (unsigned i = 0; i < n; i += 2)
        heap_free(&h, p[i]);
    heap_stats(&h, &st);
    ck_assert_uint_eq(st.free, ARENA / 2);
    ck_assert_uint_eq(st.largest, 8); /* fragmented: one-unit holes */
    for (unsigned i = 1; i < n; i += 2)
        heap_free(&h, p[i]);
    heap_stats(&h, &st);
    ck_assert_uint_eq(st.free, ARENA);
    ck_assert_uint_eq(st.largest, ARENA - HEAP_UNIT);
    ck_assert_uint_eq(st.min_free, 0);
    ck_assert_uint_eq(st.blocks, 0);
}
END_TEST

START_TEST(test_heap_rejects_bad_frees_without_damage)
{
    struct heap h;
    struct heap_stats st;
    uint8_t *p;
    int outside;

    heap_init(&h, arena, sizeof(arena));
    p = heap_alloc(&h, 40);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(heap_free(&h, p + 1), HEAP_EINVAL);
    ck_assert_int_eq(heap_free(&h, p + 8), HEAP_EINVAL);
    ck_assert_int_eq(heap_free(&h, &outside), HEAP_EINVAL);
    ck_assert_int_eq(heap_free(&h, NULL), 0);
    ck_assert_int_eq(heap_free(&h, p), 0);
    ck_assert_int_eq(heap_free(&h, p), HEAP_EINVAL); /* double free */
    heap_stats(&h, &st);
    ck_assert_uint_eq(st.frees, 1);
    ck_assert_uint_eq(st.free, ARENA);
    ck_assert_ptr_null(heap_alloc(&h, 0));
    ck_assert_ptr_null(heap_alloc(&h, (size_t)-1));
    heap_stats(&h, &st);
    ck_assert_uint_eq(st.failures, 1);
}
END_TEST

START_TEST(test_heap_unaligned_and_tiny_arenas)
{
    struct heap h;
    struct heap_stats st;

    heap_init(&h, arena + 3, 100);
    heap_stats(&h, &st);
    ck_assert_uint_eq(st.total, 88); /* 5 bytes of alignment lost, 7 cut */
    ck_assert_ptr_nonnull(heap_alloc(&h, 80));
    heap_init(&h, arena, 8);
    ck_assert_ptr_null(heap_alloc(&h, 1));
    heap_init(&h, arena, 0);
    heap_stats(&h, &st);
    ck_assert_uint_eq(st.total, 0);
    ck_assert_ptr_null(heap_alloc(&h, 1));
}
END_TEST

Suite *heap_suite(void)
{
    Suite *s = suite_create("heap");
    TCase *model = tcase_create("model");
    TCase *edge = tcase_create("edge");

    tcase_set_timeout(model, 60);
    tcase_add_test(model, test_heap_matches_reference_model_small_blocks);
    tcase_add_test(
        model, test_heap_matches_reference_model_mixed_blocks_until_failures);
    suite_add_tcase(s, model);
    tcase_add_test(edge, test_heap_fills_and_empties_exactly);
    tcase_add_test(edge, test_heap_rejects_bad_frees_without_damage);
    tcase_add_test(edge, test_heap_unaligned_and_tiny_arenas);
    suite_add_tcase(s, edge);
    return s;
}
