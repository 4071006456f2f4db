/* The alert state machine against a fake clock: every report carries an
 * explicit time, so hold-offs, windows and horizons are exact.  Heap
 * series are synthetic (clean lines, steps, seeded noise) with known
 * truths to compare the leak estimate against. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "daemon_test_util.h"

#define EVENTS_MAX 4096
#define TOTAL      65536u
#define T_LOW      6553u     /* 10% of TOTAL */
#define T_CLEAR    9829u     /* T_LOW + 5% of TOTAL */
#define S          1000000LL /* microseconds per second */

static struct alert_event events[EVENTS_MAX];
static size_t nevents;

static void record(void *ctx, const struct alert_event *ev)
{
    (void)ctx;
    ck_assert_uint_lt(nevents, EVENTS_MAX);
    events[nevents++] = *ev;
}

static void reset_events(void)
{
    nevents = 0;
}

static struct alert_config default_config(void)
{
    struct alert_config c = {
        .heap_low = {10, true},
        .heap_hysteresis = {5, true},
        .hold_off_s = 5,
        .hold_off_reports = 3,
        .leak_window_s = 60,
        .leak_horizon_s = 600,
        .leak_min_reports = 10,
    };

    return c;
}

static struct alert *make(const struct alert_config *c)
{
    struct alert *a = NULL;

    ck_assert_int_eq(alert_new(&a, c, record, NULL), 0);
    ck_assert_ptr_nonnull(a);
    return a;
}

static void report(struct alert *a, int64_t t_us, uint32_t total,
                   uint32_t free_bytes, uint32_t min_free)
{
    struct msg_heap h = {0};

    h.total = total;
    h.free = free_bytes;
    h.used = total - free_bytes;
    h.largest = free_bytes;
    h.min_free = min_free;
    alert_heap(a, t_us, &h);
}

/* The usual report: the MCU's watermark equal to what it has now. */
static void feed(struct alert *a, int64_t t_us, uint32_t free_bytes)
{
    report(a, t_us, TOTAL, free_bytes, free_bytes);
}

static size_t count_kind(enum alert_kind k)
{
    size_t c = 0;

    for (size_t i = 0; i < nevents; i++)
        c += events[i].kind == k;
    return c;
}

/* Index of the first event of kind k, or EVENTS_MAX. */
static size_t first_kind(enum alert_kind k)
{
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == k)
            return i;
    return EVENTS_MAX;
}

static uint32_t rng_state;

static uint32_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Uniform in [-amp, amp]. */
static int32_t noise(int32_t amp)
{
    return (int32_t)(rng_next() % (2u * (uint32_t)amp + 1)) - amp;
}

static void setup(void)
{
    reset_events();
    rng_state = 2463534242u;
}

/* ---- heap_low / heap_ok ---- */

START_TEST(test_alert_raises_heap_low_after_hold_off_seconds)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    const struct alert_event *ev;

    /* Reports every second: the third comes at 2 s, but 5 s must pass.
     * (The watermark, at or under free heap, is raised at once.) */
    for (int s = 0; s < 5; s++)
        feed(a, s * S, T_LOW - 1);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 0);
    feed(a, 5 * S, T_LOW - 1);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    ev = &events[first_kind(ALERT_HEAP_LOW)];
    ck_assert_str_eq(ev->name, "heap_low");
    ck_assert_str_eq(ev->state, "raised");
    ck_assert_int_eq(ev->t_us, 5 * S);
    ck_assert_double_eq(ev->value, T_LOW - 1);
    ck_assert_double_eq(ev->threshold, T_LOW);
    ck_assert_double_eq(ev->estimate_s, -1);
    ck_assert_str_eq(ev->message, "free heap 6552 B of 65536 B, under the "
                                  "6553 B threshold (10%) for 5 s over 6 "
                                  "reports");
    /* Raised once, however long it lasts. */
    for (int s = 6; s < 100; s++)
        feed(a, s * S, T_LOW - 1);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_raises_heap_low_after_hold_off_report_count)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);

    /* Reports every 10 s: 5 s pass at once, but three reports are due. */
    feed(a, 0, 100);
    feed(a, 10 * S, 100);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 0);
    feed(a, 20 * S, 100);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    ck_assert_int_eq(events[first_kind(ALERT_HEAP_LOW)].t_us, 20 * S);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_restarts_hold_off_when_the_condition_breaks)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    int64_t t = 0;

    for (int round = 0; round < 20; round++) {
        for (int s = 0; s < 4; s++, t += S)
            feed(a, t, T_LOW - 1);
        feed(a, t, T_LOW); /* one report at the threshold is not low */
        t += S;
    }
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_does_not_flap_when_free_hovers_around_threshold)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    int64_t t = 0;

    const struct alert_event *ok;

    for (int s = 0; s < 10; s++, t += S)
        feed(a, t, T_LOW - 500);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    /* Around the threshold but under threshold + hysteresis: stays low. */
    for (int i = 0; i < 1000; i++, t += S)
        feed(a, t, (uint32_t)((int32_t)T_LOW + 1000 + noise(1600)));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 0);
    /* Recovered for the hold-off: cleared once. */
    for (int s = 0; s < 10; s++, t += S)
        feed(a, t, T_CLEAR);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 1);
    ok = &events[first_kind(ALERT_HEAP_OK)];
    ck_assert_str_eq(ok->state, "cleared");
    ck_assert_double_eq(ok->value, T_CLEAR);
    ck_assert_double_eq(ok->threshold, T_LOW);
    /* Around threshold + hysteresis but never under the threshold. */
    for (int i = 0; i < 1000; i++, t += S)
        feed(a, t, (uint32_t)((int32_t)T_CLEAR + noise(2000)));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_never_clears_heap_ok_without_heap_low)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);

    for (int s = 0; s < 600; s++)
        feed(a, s * S, 50000 + (uint32_t)noise(5000));
    ck_assert_uint_eq(nevents, 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_events_come_in_pairs_on_a_random_walk)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    int32_t free_bytes = 10000;
    bool low = false;

    c.leak_window_s = 0; /* only heap_low / heap_ok here */
    alert_configure(a, &c);
    for (int s = 0; s < 20000; s++) {
        free_bytes += noise(400);
        if (free_bytes < 1000)
            free_bytes = 1000;
        if (free_bytes > 20000)
            free_bytes = 20000;
        feed(a, s * S, (uint32_t)free_bytes);
    }
    ck_assert_uint_gt(nevents, 2);
    for (size_t i = 0; i < nevents; i++) {
        if (events[i].kind == ALERT_HEAP_WATERMARK)
            continue;
        ck_assert_int_eq(events[i].kind, low ? ALERT_HEAP_OK : ALERT_HEAP_LOW);
        /* Each change was earned: under T, or at T + H and above. */
        if (low)
            ck_assert_double_ge(events[i].value, T_CLEAR);
        else
            ck_assert_double_lt(events[i].value, T_LOW);
        low = !low;
    }
    alert_free(a);
}
END_TEST

START_TEST(test_alert_takes_percent_thresholds_from_each_reports_total)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);

    /* 10% of 100000 is 10000; 5% hysteresis clears at 15000. */
    for (int s = 0; s < 6; s++)
        report(a, s * S, 100000, 9999, 9999);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    ck_assert_double_eq(events[first_kind(ALERT_HEAP_LOW)].threshold, 10000);
    for (int s = 6; s < 20; s++)
        report(a, s * S, 100000, 14999, 9999);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 0);
    for (int s = 20; s < 26; s++)
        report(a, s * S, 100000, 15000, 9999);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_takes_byte_thresholds_as_they_are)
{
    struct alert_config c = default_config();
    struct alert *a;

    c.heap_low = (struct config_amount){5000, false};
    c.heap_hysteresis = (struct config_amount){1000, false};
    a = make(&c);
    for (int s = 0; s < 6; s++)
        report(a, s * S, 1000000, 5000, 5000);
    ck_assert_uint_eq(nevents, 0);
    for (int s = 6; s < 12; s++)
        report(a, s * S, 1000000, 4999, 4999);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    ck_assert_double_eq(events[first_kind(ALERT_HEAP_LOW)].threshold, 5000);
    for (int s = 12; s < 20; s++)
        report(a, s * S, 1000000, 5999, 4999);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 0);
    for (int s = 20; s < 26; s++)
        report(a, s * S, 1000000, 6000, 4999);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_configure_applies_new_thresholds_at_the_next_report)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);

    for (int s = 0; s < 10; s++)
        feed(a, s * S, 20000);
    ck_assert_uint_eq(nevents, 0);
    c.heap_low = (struct config_amount){40, true}; /* 26214 B */
    alert_configure(a, &c);
    for (int s = 10; s < 15; s++)
        feed(a, s * S, 20000);
    ck_assert_uint_eq(nevents, 1); /* the watermark, at once */
    ck_assert_int_eq(events[0].kind, ALERT_HEAP_WATERMARK);
    feed(a, 15 * S, 20000);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    ck_assert_double_eq(events[first_kind(ALERT_HEAP_LOW)].threshold, 26214);
    alert_free(a);
}
END_TEST

/* ---- heap_leak ---- */

START_TEST(test_alert_sees_a_clean_leak_before_heap_low_within_ten_percent)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    const double rate = 50; /* bytes per second */
    size_t leak, low;
    double truth;

    for (int s = 0; s < 1190; s++)
        feed(a, s * S, (uint32_t)(60000 - rate * s));
    leak = first_kind(ALERT_HEAP_LEAK);
    low = first_kind(ALERT_HEAP_LOW);
    ck_assert_uint_lt(leak, EVENTS_MAX);
    ck_assert_uint_lt(low, EVENTS_MAX);
    ck_assert_uint_lt(leak, low);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK_OK), 0);
    /* Within the 600 s horizon since 601 s, and so for half the window. */
    ck_assert_int_eq(events[leak].t_us, 631 * S);
    truth = events[leak].value / rate;
    ck_assert_double_lt(events[leak].estimate_s, 600);
    ck_assert_double_lt(events[leak].estimate_s, truth * 1.1);
    ck_assert_double_gt(events[leak].estimate_s, truth * 0.9);
    ck_assert_str_eq(events[leak].state, "raised");
    ck_assert_double_eq(events[leak].threshold, T_LOW);
    ck_assert_ptr_nonnull(strstr(events[leak].message, "falling 50 B/s"));
    ck_assert_ptr_nonnull(strstr(events[leak].message, "exhausted in ~9 min"));
    ck_assert_ptr_nonnull(strstr(events[leak].message, "below threshold in"));
    alert_free(a);
}
END_TEST

START_TEST(test_alert_estimates_a_fast_leak_in_seconds)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    size_t leak;
    int s;

    for (s = 0; s < 200 && nevents == 0; s++)
        feed(a, s * S, (uint32_t)(30000 - 255 * s));
    leak = first_kind(ALERT_HEAP_LEAK);
    ck_assert_uint_lt(leak, EVENTS_MAX);
    /* Judged once the points span half the window (30 s), and raised
     * after leaking for another half window. */
    ck_assert_int_eq(events[leak].t_us, 60 * S);
    /* 30000 - 255 * 60 = 14700 left: 57.6 s to empty, 31.9 s to T. */
    ck_assert_double_eq_tol(events[leak].estimate_s, 14700.0 / 255, 0.01);
    ck_assert_str_eq(events[leak].message,
                     "free heap falling 255 B/s (r2 1.00): exhausted in "
                     "~58 s, below threshold in ~32 s");
    alert_free(a);
}
END_TEST

START_TEST(test_alert_sees_a_noisy_leak)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    size_t leak, low;
    double truth;

    for (int s = 0; s < 1190; s++)
        feed(a, s * S, (uint32_t)(60000 - 50 * s + noise(300)));
    leak = first_kind(ALERT_HEAP_LEAK);
    low = first_kind(ALERT_HEAP_LOW);
    ck_assert_uint_lt(leak, low);
    truth = (60000.0 - 50.0 * (double)(events[leak].t_us / S)) / 50;
    ck_assert_double_lt(events[leak].estimate_s, truth * 1.1);
    ck_assert_double_gt(events[leak].estimate_s, truth * 0.9);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_never_calls_large_flat_noise_a_leak)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);

    /* 500 windows of a level heap with noise of +-5000 B. */
    for (int s = 0; s < 30000; s++)
        feed(a, s * S, (uint32_t)(30000 + noise(5000)));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_never_calls_sparse_noise_a_leak_with_few_points)
{
    struct alert_config c = default_config();
    struct alert *a;

    /* A report every 6 s leaves 10 or 11 points per window, where lucky
     * lines are far likelier than with 60. */
    a = make(&c);
    for (int s = 0; s < 360000; s += 6)
        feed(a, s * S, (uint32_t)(30000 + noise(10000)));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_judges_no_trend_on_fewer_than_eight_points)
{
    struct alert_config c = default_config();
    struct alert *a;
    int s;

    /* A report every 10 s leaves 7 points a window: even a clean leak is
     * not judged, whatever leak_min_reports says. */
    c.leak_min_reports = 3;
    a = make(&c);
    for (s = 0; s < 990; s += 10)
        feed(a, s * S, (uint32_t)(60000 - 60 * s));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 0);
    /* Every 8 s leaves 8: judged. */
    alert_mcu_reset(a, 990 * S, MSG_RESET_PIN);
    for (s = 0; s < 990; s += 8)
        feed(a, (990 + s) * S, (uint32_t)(60000 - 60 * s));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_does_not_call_a_step_change_a_leak)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);

    /* A 30000 B buffer allocated for good at 120 s: the window's slope
     * reaches 750 B/s (27 s to empty) as the step crosses it. */
    for (int s = 0; s < 600; s++)
        feed(a, s * S, s < 120 ? 50000 : 20000);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 0);
    /* And steps down every 200 s, a staircase too coarse for a line. */
    for (int s = 600; s < 1200; s++)
        feed(a, s * S, s < 800 ? 18000 : s < 1000 ? 16000 : 14000);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_ignores_a_slow_leak_beyond_the_horizon)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);

    /* 5 B/s from 60000 down to 50000: exhaustion 2.8 h away or more. */
    for (int s = 0; s < 2000; s++)
        feed(a, s * S, (uint32_t)(60000 - 5 * s));
    ck_assert_uint_eq(nevents, 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_clears_heap_leak_when_the_heap_stops_falling)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    int s;

    for (s = 0; s < 70; s++)
        feed(a, s * S, (uint32_t)(40000 - 255 * s));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    for (; s < 200; s++)
        feed(a, s * S, 40000 - 255 * 70);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK_OK), 1);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    ck_assert_str_eq(events[first_kind(ALERT_HEAP_LEAK_OK)].state, "cleared");
    ck_assert_double_eq(events[first_kind(ALERT_HEAP_LEAK_OK)].estimate_s, -1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_clears_heap_leak_beyond_twice_the_horizon)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    size_t ok;
    int s;

    /* 50 B/s raises under 30000 B (600 s); slowing to 10 B/s puts
     * exhaustion near 2500 s, beyond 1200 s. */
    for (s = 0; s < 700; s++)
        feed(a, s * S, (uint32_t)(60000 - 50 * s));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    for (int k = 0; k < 200; k++, s++)
        feed(a, s * S, (uint32_t)(25000 - 10 * k));
    ok = first_kind(ALERT_HEAP_LEAK_OK);
    ck_assert_uint_lt(ok, EVENTS_MAX);
    ck_assert_ptr_nonnull(strstr(events[ok].message, "falling only"));
    ck_assert_ptr_nonnull(strstr(events[ok].message, "600 s horizon"));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_mcu_reset_clears_the_leak_and_restarts_the_trend)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    struct alert_event act[3];
    size_t reset;
    int s;

    for (s = 0; s < 70; s++)
        feed(a, s * S, (uint32_t)(40000 - 255 * s));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    reset_events();
    alert_mcu_reset(a, 70 * S, MSG_RESET_WATCHDOG);
    ck_assert_uint_eq(nevents, 2);
    ck_assert_int_eq(events[0].kind, ALERT_MCU_RESET);
    ck_assert_str_eq(events[0].state, "event");
    ck_assert_double_eq(events[0].value, MSG_RESET_WATCHDOG);
    ck_assert_str_eq(events[0].message, "MCU reset (watchdog)");
    ck_assert_int_eq(events[1].kind, ALERT_HEAP_LEAK_OK);
    ck_assert_uint_eq(alert_active(a, act, 3), 0);

    /* The leak starts again after the reset.  Restarted, the trend is
     * judged from 100 s and raised at 130 s; left alone, the old boot's
     * points would sit in the window under the new ones. */
    reset = nevents;
    for (s = 70; s < 130; s++)
        feed(a, s * S, (uint32_t)(40000 - 255 * (s - 70)));
    ck_assert_uint_eq(nevents, reset);
    feed(a, 130 * S, 40000 - 255 * 60);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_names_every_reset_cause)
{
    static const char *const names[] = {
        "unknown",  "power-on",  "pin",   "software",
        "watchdog", "brown-out", "fault", "unknown",
    };
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    char want[ALERT_MSG_MAX];

    for (uint8_t cause = 0; cause < 8; cause++) {
        alert_mcu_reset(a, cause * S, cause == 7 ? 200 : cause);
        snprintf(want, sizeof(want), "MCU reset (%s)", names[cause]);
        ck_assert_str_eq(events[cause].message, want);
        ck_assert_double_eq(events[cause].estimate_s, -1);
        ck_assert_double_eq(events[cause].threshold, 0);
    }
    ck_assert_uint_eq(nevents, 8);
    alert_free(a);
}
END_TEST

/* ---- heap_watermark ---- */

START_TEST(test_alert_sends_heap_watermark_once_per_boot)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);

    for (int s = 0; s < 10; s++)
        report(a, s * S, TOTAL, 40000, 20000);
    ck_assert_uint_eq(nevents, 0);
    /* A spike the reports never saw, only the MCU's watermark. */
    for (int s = 10; s < 100; s++)
        report(a, s * S, TOTAL, 40000, 3000);
    ck_assert_uint_eq(nevents, 1);
    ck_assert_int_eq(events[0].kind, ALERT_HEAP_WATERMARK);
    ck_assert_str_eq(events[0].state, "event");
    ck_assert_double_eq(events[0].value, 3000);
    ck_assert_double_eq(events[0].threshold, T_LOW);
    ck_assert_int_eq(events[0].t_us, 10 * S);

    alert_mcu_reset(a, 100 * S, MSG_RESET_PIN);
    ck_assert_uint_eq(nevents, 2);
    for (int s = 101; s < 110; s++)
        report(a, s * S, TOTAL, 40000, 40000);
    ck_assert_uint_eq(nevents, 2);
    for (int s = 110; s < 200; s++)
        report(a, s * S, TOTAL, 40000, 100);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_WATERMARK), 2);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 0);
    alert_free(a);
}
END_TEST

/* ---- Link and stale data ---- */

START_TEST(test_alert_raises_link_lost_once_and_link_restored_after_it)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    struct alert_event act[3];

    alert_link(a, 0, true);
    ck_assert_uint_eq(nevents, 0);
    alert_link(a, 1 * S, false);
    alert_link(a, 2 * S, false);
    ck_assert_uint_eq(nevents, 1);
    ck_assert_int_eq(events[0].kind, ALERT_LINK_LOST);
    ck_assert_str_eq(events[0].state, "raised");
    ck_assert_uint_eq(alert_active(a, act, 3), 1);
    ck_assert_int_eq(act[0].kind, ALERT_LINK_LOST);
    alert_link(a, 13 * S, true);
    alert_link(a, 14 * S, true);
    ck_assert_uint_eq(nevents, 2);
    ck_assert_int_eq(events[1].kind, ALERT_LINK_RESTORED);
    ck_assert_str_eq(events[1].state, "cleared");
    ck_assert_str_eq(events[1].message, "link to the MCU restored after 12 s");
    ck_assert_uint_eq(alert_active(a, act, 3), 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_ignores_reports_while_the_link_is_down)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    int s;

    alert_link(a, 0, false);
    for (s = 0; s < 300; s++)
        report(a, s * S, TOTAL, (uint32_t)(30000 - 90 * s), 0);
    ck_assert_uint_eq(nevents, 1); /* link_lost only */

    /* Raised before the link goes: stale reports do not clear it. */
    alert_link(a, 300 * S, true);
    for (s = 300; s < 310; s++)
        feed(a, s * S, 100);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    alert_link(a, 310 * S, false);
    for (s = 310; s < 400; s++)
        feed(a, s * S, 50000);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_OK), 0);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_restarts_hold_off_across_a_stale_gap)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    int s;

    for (s = 0; s < 4; s++)
        feed(a, s * S, 100);
    alert_link(a, 4 * S, false);
    alert_link(a, 5 * S, true);
    ck_assert_uint_eq(count_kind(ALERT_LINK_RESTORED), 1);
    /* Four more seconds would have been enough without the gap. */
    for (s = 5; s < 10; s++)
        feed(a, s * S, 100);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 0);
    feed(a, 10 * S, 100);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LOW), 1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_trend_does_not_bridge_a_stale_gap)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    int s;

    /* 25 s of leak, a 5 s gap, then more.  Joined across the gap the
     * window would be judged from 30 s and raised at 60 s; restarted, it
     * is judged from 60 s and raised at 90 s. */
    for (s = 0; s < 25; s++)
        feed(a, s * S, (uint32_t)(40000 - 255 * s));
    alert_link(a, 25 * S, false);
    alert_link(a, 30 * S, true);
    for (s = 30; s < 90; s++)
        feed(a, s * S, (uint32_t)(40000 - 255 * s));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 0);
    feed(a, 90 * S, 40000 - 255 * 90);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    alert_free(a);
}
END_TEST

START_TEST(test_alert_stale_data_does_not_clear_a_leak)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    int s;

    for (s = 0; s < 70; s++)
        feed(a, s * S, (uint32_t)(40000 - 255 * s));
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK), 1);
    alert_link(a, 70 * S, false);
    for (; s < 200; s++)
        feed(a, s * S, 30000);
    alert_link(a, 200 * S, true);
    /* Fresh but too few to judge: still raised. */
    for (; s < 220; s++)
        feed(a, s * S, 30000);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK_OK), 0);
    for (; s < 240; s++)
        feed(a, s * S, 30000);
    ck_assert_uint_eq(count_kind(ALERT_HEAP_LEAK_OK), 1);
    alert_free(a);
}
END_TEST

/* ---- alert_active ---- */

START_TEST(test_alert_active_lists_what_is_raised)
{
    struct alert_config c = default_config();
    struct alert *a = make(&c);
    struct alert_event act[3];
    int s;

    ck_assert_uint_eq(alert_active(a, act, 3), 0);
    for (s = 0; s < 100; s++)
        feed(a, s * S, (uint32_t)(20000 - 150 * s));
    alert_link(a, 100 * S, false);
    ck_assert_uint_eq(alert_active(a, act, 3), 3);
    ck_assert_int_eq(act[0].kind, ALERT_HEAP_LOW);
    ck_assert_int_eq(act[1].kind, ALERT_HEAP_LEAK);
    ck_assert_int_eq(act[2].kind, ALERT_LINK_LOST);
    ck_assert_double_gt(act[1].estimate_s, 0);
    ck_assert_str_eq(act[0].message,
                     events[first_kind(ALERT_HEAP_LOW)].message);
    ck_assert_uint_eq(alert_active(a, act, 2), 2);
    ck_assert_uint_eq(alert_active(a, act, 0), 0);
    alert_free(a);
    alert_free(NULL);
}
END_TEST

static Suite *alert_suite(void)
{
    Suite *s = suite_create("alert");
    TCase *low = tcase_create("heap_low");
    TCase *leak = tcase_create("heap_leak");
    TCase *once = tcase_create("one-shots");
    TCase *link = tcase_create("link");

    tcase_add_checked_fixture(low, setup, NULL);
    tcase_add_test(low, test_alert_raises_heap_low_after_hold_off_seconds);
    tcase_add_test(low, test_alert_raises_heap_low_after_hold_off_report_count);
    tcase_add_test(low, test_alert_restarts_hold_off_when_the_condition_breaks);
    tcase_add_test(low,
                   test_alert_does_not_flap_when_free_hovers_around_threshold);
    tcase_add_test(low, test_alert_never_clears_heap_ok_without_heap_low);
    tcase_add_test(low, test_alert_events_come_in_pairs_on_a_random_walk);
    tcase_add_test(low,
                   test_alert_takes_percent_thresholds_from_each_reports_total);
    tcase_add_test(low, test_alert_takes_byte_thresholds_as_they_are);
    tcase_add_test(
        low, test_alert_configure_applies_new_thresholds_at_the_next_report);
    tcase_set_timeout(low, 10);
    suite_add_tcase(s, low);

    tcase_add_checked_fixture(leak, setup, NULL);
    tcase_add_test(
        leak, test_alert_sees_a_clean_leak_before_heap_low_within_ten_percent);
    tcase_add_test(leak, test_alert_estimates_a_fast_leak_in_seconds);
    tcase_add_test(leak, test_alert_sees_a_noisy_leak);
    tcase_add_test(leak, test_alert_never_calls_large_flat_noise_a_leak);
    tcase_add_test(leak,
                   test_alert_never_calls_sparse_noise_a_leak_with_few_points);
    tcase_add_test(leak, test_alert_judges_no_trend_on_fewer_than_eight_points);
    tcase_add_test(leak, test_alert_does_not_call_a_step_change_a_leak);
    tcase_add_test(leak, test_alert_ignores_a_slow_leak_beyond_the_horizon);
    tcase_add_test(leak,
                   test_alert_clears_heap_leak_when_the_heap_stops_falling);
    tcase_add_test(leak, test_alert_clears_heap_leak_beyond_twice_the_horizon);
    tcase_add_test(leak,
                   test_alert_mcu_reset_clears_the_leak_and_restarts_the_trend);
    tcase_set_timeout(leak, 20);
    suite_add_tcase(s, leak);

    tcase_add_checked_fixture(once, setup, NULL);
    tcase_add_test(once, test_alert_names_every_reset_cause);
    tcase_add_test(once, test_alert_sends_heap_watermark_once_per_boot);
    tcase_add_test(once, test_alert_active_lists_what_is_raised);
    tcase_set_timeout(once, 10);
    suite_add_tcase(s, once);

    tcase_add_checked_fixture(link, setup, NULL);
    tcase_add_test(link,
                   test_alert_raises_link_lost_once_and_link_restored_after_it);
    tcase_add_test(link, test_alert_ignores_reports_while_the_link_is_down);
    tcase_add_test(link, test_alert_restarts_hold_off_across_a_stale_gap);
    tcase_add_test(link, test_alert_trend_does_not_bridge_a_stale_gap);
    tcase_add_test(link, test_alert_stale_data_does_not_clear_a_leak);
    tcase_set_timeout(link, 10);
    suite_add_tcase(s, link);
    return s;
}

int main(void)
{
    return dtest_run(alert_suite());
}
