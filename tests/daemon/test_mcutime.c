/* The MCU clock mapping against simulated clocks: a true timeline in
 * microseconds, an MCU clock derived from it (offset, wrap at 2^32, a
 * crystal error in ppm) and frames that arrive after a random delay.  The
 * mapping is checked against the true time of each timestamp. */
#include <stdint.h>
#include <stdlib.h>

#include "daemon_test_util.h"
#include "mcutime.h"

#define WALL0 1700000000000000LL /* an epoch time in microseconds */

static uint32_t rng = 777;

static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

/* The MCU clock at true time t (microseconds since WALL0), starting at
 * start and running ppm fast (negative: slow). */
static uint32_t mcu_at(int64_t t, uint32_t start, int ppm)
{
    return (uint32_t)((int64_t)start + t + t * ppm / 1000000);
}

START_TEST(test_mcutime_maps_monotonically_across_the_wraparound)
{
    const uint32_t start = UINT32_MAX - 5000000u; /* wraps after 5 s */
    struct mcutime mt;
    int64_t prev = INT64_MIN;

    mcutime_init(&mt);
    ck_assert_int_eq(mcutime_to_wall(&mt, 123), 0);
    for (int64_t t = 0; t < 20000000; t += 10000) {
        uint32_t m = mcu_at(t, start, 0);
        int64_t delay = 100 + next_rand() % 500, w;

        mcutime_observe(&mt, m, WALL0 + t + delay);
        w = mcutime_to_wall(&mt, m);
        ck_assert_int_gt(w, prev);
        ck_assert_int_ge(w, WALL0 + t);
        ck_assert_int_le(w, WALL0 + t + 600);
        prev = w;
    }
    /* After the wrap, a timestamp from before it still maps to its own
     * past, not 71 minutes into the future. */
    ck_assert_int_lt(mcutime_to_wall(&mt, start + 1000000u),
                     mcutime_to_wall(&mt, mcu_at(6000000, start, 0)));
    ck_assert_int_le(mcutime_to_wall(&mt, start + 1000000u), WALL0 + 1000600);
    ck_assert_int_ge(mcutime_to_wall(&mt, start + 1000000u), WALL0 + 1000000);
}
END_TEST

START_TEST(test_mcutime_accepts_out_of_order_timestamps_within_a_batch)
{
    /* One batch read at once holds frames built at 3 ms, 1 ms and 2 ms,
     * the first just after the wrap and the others just before it. */
    const uint32_t start = UINT32_MAX - 2000u;
    const int64_t order[] = {3000, 1000, 2000};
    struct mcutime mt;

    mcutime_init(&mt);
    mcutime_observe(&mt, mcu_at(0, start, 0), WALL0 + 300);
    for (size_t i = 0; i < 3; i++)
        mcutime_observe(&mt, mcu_at(order[i], start, 0), WALL0 + 3300);
    ck_assert_uint_eq(mt.last_mcu, mcu_at(3000, start, 0));
    for (size_t i = 0; i < 3; i++) {
        int64_t w = mcutime_to_wall(&mt, mcu_at(order[i], start, 0));

        ck_assert_int_eq(w, WALL0 + order[i] + 300);
    }
    /* An old frame arriving late does not raise the offset. */
    mcutime_observe(&mt, mcu_at(500, start, 0), WALL0 + 900000);
    ck_assert_int_eq(mcutime_to_wall(&mt, mcu_at(500, start, 0)), WALL0 + 800);
}
END_TEST

START_TEST(test_mcutime_reanchors_after_an_mcu_reset)
{
    struct mcutime mt;

    mcutime_init(&mt);
    for (int64_t t = 0; t < 1000000; t += 100000)
        mcutime_observe(&mt, mcu_at(t, 500000000u, 0), WALL0 + t + 200);
    ck_assert_int_eq(mcutime_to_wall(&mt, 500000000u), WALL0 + 200);

    /* The MCU restarts 2 s later with its clock at 0; the old offset
     * would put its frames in 1970 + 8 minutes. */
    mcutime_reset(&mt);
    ck_assert_int_eq(mcutime_to_wall(&mt, 0), 0);
    mcutime_observe(&mt, 100, WALL0 + 2000000 + 400);
    ck_assert_int_eq(mcutime_to_wall(&mt, 100), WALL0 + 2000400);
    mcutime_observe(&mt, 100100, WALL0 + 2100000 + 250);
    ck_assert_int_eq(mcutime_to_wall(&mt, 100), WALL0 + 2000250);
    ck_assert_int_eq(mcutime_to_wall(&mt, 0), WALL0 + 2000150);
}
END_TEST

START_TEST(test_mcutime_jitter_raises_the_offset_only_by_the_drift_allowance)
{
    const uint32_t start = 42;
    struct mcutime mt;
    int64_t best = INT64_MAX, best_at = 0;
    int64_t prev_eff = INT64_MAX, prev_wall = 0;

    mcutime_init(&mt);
    /* A perfect crystal, frames every 20 ms for 100 s, delayed 0.2 to
     * 50 ms.  The error of the mapping must stay between 0 and the
     * smallest delay seen so far plus 200 ppm of the time since. */
    for (int64_t t = 0; t < 100000000; t += 20000) {
        uint32_t m = mcu_at(t, start, 0);
        int64_t delay = 200 + next_rand() % 50000, err, allowed, eff;
        int64_t wall = WALL0 + t + delay;

        mcutime_observe(&mt, m, wall);
        if (delay < best) {
            best = delay;
            best_at = t;
        }
        err = mcutime_to_wall(&mt, m) - (WALL0 + t);
        allowed = best + (t - best_at) * MCUTIME_DRIFT_PPM / 1000000 + 1;
        ck_assert_int_ge(err, 0);
        ck_assert_int_le(err, allowed);
        ck_assert_int_le(err, delay); /* never after its own arrival */
        /* The offset in force now is at most the previous one plus the
         * allowance for the time between them. */
        eff = mt.offset_us +
              (wall - mt.offset_wall_us) * MCUTIME_DRIFT_PPM / 1000000;
        if (prev_eff != INT64_MAX)
            ck_assert_int_le(
                eff, prev_eff +
                         (wall - prev_wall) * MCUTIME_DRIFT_PPM / 1000000 + 1);
        prev_eff = eff;
        prev_wall = wall;
    }
    ck_assert_int_le(best, 400); /* the run did see a quick frame */
}
END_TEST

/* Runs hours of frames from a crystal ppm off and returns the largest
 * error of the mapping after the first minute. */
static int64_t drift_run(int ppm, int64_t hours)
{
    struct mcutime mt;
    int64_t worst = 0;

    mcutime_init(&mt);
    for (int64_t t = 0; t < hours * 3600000000LL; t += 50000) {
        uint32_t m = mcu_at(t, 3000000000u, ppm);
        int64_t delay = 100 + next_rand() % 2000, err;

        mcutime_observe(&mt, m, WALL0 + t + delay);
        err = mcutime_to_wall(&mt, m) - (WALL0 + t);
        ck_assert_int_ge(err, -1);
        if (t > 60000000 && err > worst)
            worst = err;
    }
    return worst;
}

START_TEST(test_mcutime_follows_a_crystal_100_ppm_off)
{
    /* Two hours, across two wraps: without the drift allowance a slow
     * crystal would leave the mapping 720 ms behind. */
    ck_assert_int_le(drift_run(-100, 2), 2500);
    ck_assert_int_le(drift_run(100, 2), 2500);
    ck_assert_int_le(drift_run(0, 1), 2500);
}
END_TEST

static Suite *mcutime_suite(void)
{
    Suite *s = suite_create("mcutime");
    TCase *mapping = tcase_create("mapping");
    TCase *filter = tcase_create("filter");

    tcase_add_test(mapping,
                   test_mcutime_maps_monotonically_across_the_wraparound);
    tcase_add_test(mapping,
                   test_mcutime_accepts_out_of_order_timestamps_within_a_batch);
    tcase_add_test(mapping, test_mcutime_reanchors_after_an_mcu_reset);
    tcase_set_timeout(mapping, 10);
    suite_add_tcase(s, mapping);

    tcase_add_test(
        filter,
        test_mcutime_jitter_raises_the_offset_only_by_the_drift_allowance);
    tcase_add_test(filter, test_mcutime_follows_a_crystal_100_ppm_off);
    tcase_set_timeout(filter, 60);
    suite_add_tcase(s, filter);
    return s;
}

int main(void)
{
    return dtest_run(mcutime_suite());
}
