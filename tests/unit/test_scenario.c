/* Heap workloads: each scenario's effect on the heap's statistics. */
#include <string.h>

#include "heap.h"
#include "msg.h"
#include "scenario.h"
#include "suites.h"

#define ARENA 4096u

static _Alignas(HEAP_UNIT) uint8_t arena[ARENA];
static struct heap heap;
static struct scenario scen;

static struct heap_stats stats(void)
{
    struct heap_stats st;

    heap_stats(&heap, &st);
    return st;
}

static void setup(uint8_t id, uint32_t param)
{
    heap_init(&heap, arena, sizeof(arena));
    scenario_init(&scen, &heap, 42);
    ck_assert_int_eq(scenario_select(&scen, id, param), 0);
}

static void ticks(unsigned n)
{
    while (n--)
        scenario_tick(&scen);
}

START_TEST(test_scenario_steady_balances_and_never_fails)
{
    struct heap_stats st;

    setup(MSG_SCEN_STEADY, 0);
    for (unsigned i = 0; i < 100; i++) {
        ticks(100);
        st = stats();
        ck_assert_uint_ge(st.free, ARENA / 4);
        ck_assert_uint_le(st.blocks, SCENARIO_STEADY_SLOTS);
    }
    ck_assert_uint_eq(st.failures, 0);
    ck_assert_uint_gt(st.allocs, 1000);
    ck_assert_uint_gt(st.frees, 1000);
    ck_assert_uint_le(st.allocs - st.frees, SCENARIO_STEADY_SLOTS);
}
END_TEST

START_TEST(test_scenario_leak_loses_its_rate_until_allocations_fail)
{
    struct heap_stats st;

    setup(MSG_SCEN_LEAK, 1000);
    ticks(100); /* one second at 1000 B/s: 31 whole chunks of 32 bytes */
    st = stats();
    ck_assert_uint_eq(st.blocks, 31);
    ck_assert_uint_eq(st.used, 31 * (SCENARIO_LEAK_CHUNK + HEAP_UNIT));
    ck_assert_uint_eq(st.frees, 0);
    ck_assert_uint_eq(st.failures, 0);

    ticks(1000); /* ten more seconds: the 4 KiB arena is gone */
    st = stats();
    ck_assert_uint_gt(st.failures, 0);
    ck_assert_uint_lt(st.largest, SCENARIO_LEAK_CHUNK);
    ck_assert_uint_eq(st.min_free, st.free);
    ck_assert_uint_eq(st.frees, 0);

    /* Stopping the leak gives everything back. */
    ck_assert_int_eq(scenario_select(&scen, MSG_SCEN_NONE, 0), 0);
    st = stats();
    ck_assert_uint_eq(st.free, ARENA);
    ck_assert_uint_eq(st.blocks, 0);
}
END_TEST

START_TEST(test_scenario_leak_default_rate_and_failure_pacing)
{
    struct heap_stats st;
    uint32_t failed;

    setup(MSG_SCEN_LEAK, 0);
    ticks(100);
    st = stats();
    ck_assert_uint_eq(st.blocks, SCENARIO_LEAK_DEFAULT / SCENARIO_LEAK_CHUNK);
    ticks(100 * 30);
    failed = stats().failures;
    ck_assert_uint_gt(failed, 0);
    ticks(100); /* one more second: one attempt per chunk's worth */
    ck_assert_uint_eq(stats().failures - failed,
                      SCENARIO_LEAK_DEFAULT / SCENARIO_LEAK_CHUNK);
}
END_TEST

START_TEST(test_scenario_fragment_keeps_free_memory_but_shrinks_largest)
{
    struct heap_stats st;

    setup(MSG_SCEN_FRAGMENT, 0);
    ticks(100 * 60);
    st = stats();
    ck_assert_uint_eq(scen.fragment_done, 1);
    ck_assert_uint_eq(st.failures, 0);
    ck_assert_uint_gt(st.free, ARENA / 3);
    ck_assert_uint_lt(st.largest, st.free / 4);
    ck_assert_int_eq(scenario_select(&scen, MSG_SCEN_STEADY, 0), 0);
    ck_assert_uint_eq(stats().free, ARENA);
}
END_TEST

START_TEST(test_scenario_spike_takes_memory_briefly_then_returns_it)
{
    struct heap_stats st;

    setup(MSG_SCEN_SPIKE, 0);
    ticks(SCENARIO_SPIKE_EVERY_MS / 10 - 1);
    ck_assert_uint_eq(stats().used, 0);
    ticks(1);
    st = stats();
    ck_assert_uint_ge(st.used, ARENA / 2);
    ticks(SCENARIO_SPIKE_HOLD_MS / 10);
    st = stats();
    ck_assert_uint_eq(st.used, 0);
    ck_assert_uint_le(st.min_free, ARENA / 2);
    ck_assert_uint_eq(st.failures, 0);
}
END_TEST

START_TEST(test_scenario_unknown_id_changes_nothing)
{
    setup(MSG_SCEN_LEAK, 1000);
    ticks(50);
    ck_assert_int_eq(scenario_select(&scen, MSG_SCEN_COUNT, 0),
                     SCENARIO_EINVAL);
    ck_assert_uint_eq(scen.id, MSG_SCEN_LEAK);
    ck_assert_uint_gt(stats().blocks, 0);
}
END_TEST

Suite *scenario_suite(void)
{
    Suite *s = suite_create("scenario");
    TCase *tc = tcase_create("workloads");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_scenario_steady_balances_and_never_fails);
    tcase_add_test(tc,
                   test_scenario_leak_loses_its_rate_until_allocations_fail);
    tcase_add_test(tc, test_scenario_leak_default_rate_and_failure_pacing);
    tcase_add_test(
        tc, test_scenario_fragment_keeps_free_memory_but_shrinks_largest);
    tcase_add_test(tc,
                   test_scenario_spike_takes_memory_briefly_then_returns_it);
    tcase_add_test(tc, test_scenario_unknown_id_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}
