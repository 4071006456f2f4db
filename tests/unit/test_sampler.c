/* The sampling scheduler: full batches on a time grid, the latency limit,
 * and skipping scans when the loop falls behind. */
#include "msg.h"
#include "port_fake.h"
#include "sampler.h"
#include "suites.h"

static struct sampler s;

START_TEST(test_sampler_fills_a_batch_on_the_time_grid)
{
    struct msg_adc m;
    size_t n = 0;
    uint32_t start = 5000;

    port_fake.now_us = start;
    sampler_init(&s, 1000, 0x0007, start);
    ck_assert_uint_eq(s.max_scans, 39);
    for (unsigned ms = 0; ms < 39 && n == 0; ms++) {
        port_fake.now_us = start + ms * 1000u;
        n = sampler_poll(&s, port_fake.now_us);
        ck_assert(n == 0 || ms == 38);
    }
    ck_assert_uint_eq(n, MSG_ADC_LEN(39 * 3));
    ck_assert_int_eq(msg_decode_adc(s.buf, n, &m), 0);
    ck_assert_uint_eq(m.t0_us, start);
    ck_assert_uint_eq(m.period_us, 1000);
    ck_assert_uint_eq(m.scans, 39);
    for (unsigned scan = 0; scan < 39; scan++)
        for (unsigned k = 0; k < 3; k++)
            ck_assert_uint_eq(
                msg_adc_value(&m, scan, k),
                port_fake_adc_value((uint8_t)k, start + scan * 1000u));
}
END_TEST

START_TEST(test_sampler_closes_a_slow_batch_after_the_latency_limit)
{
    struct msg_adc m;
    size_t n;

    sampler_init(&s, 25, 0x0001, 0); /* one scan every 40 ms */
    ck_assert_uint_eq(sampler_poll(&s, 0), 0);
    ck_assert_uint_eq(sampler_poll(&s, 40000), 0);
    ck_assert_uint_eq(sampler_poll(&s, 80000), 0);
    ck_assert_uint_eq(sampler_wait_us(&s, 80000), SAMPLER_LATENCY_US - 80000);
    n = sampler_poll(&s, SAMPLER_LATENCY_US);
    ck_assert_uint_eq(n, MSG_ADC_LEN(3));
    ck_assert_int_eq(msg_decode_adc(s.buf, n, &m), 0);
    ck_assert_uint_eq(m.scans, 3);
}
END_TEST

START_TEST(test_sampler_skips_and_counts_scans_when_far_behind)
{
    struct msg_adc m;
    size_t n;

    sampler_init(&s, 1000, 0x0003, 0);
    ck_assert_uint_eq(sampler_poll(&s, 2000), 0); /* scans at 0, 1, 2 ms */
    n = sampler_poll(&s, 2000 + 10000000u);       /* ten seconds late */
    ck_assert_uint_eq(n, MSG_ADC_LEN(3 * 2));     /* the old batch */
    ck_assert_uint_eq(s.missed, 0);
    ck_assert_uint_eq(sampler_poll(&s, 2000 + 10000000u), 0);
    ck_assert_uint_eq(s.missed, 9999);
    n = sampler_flush(&s);
    ck_assert_int_eq(msg_decode_adc(s.buf, n, &m), 0);
    ck_assert_uint_eq(m.t0_us, 2000 + 10000000u); /* grid restarted */
    ck_assert_uint_eq(sampler_flush(&s), 0);
}
END_TEST

START_TEST(test_sampler_with_no_channels_does_nothing)
{
    sampler_init(&s, 1000, 0, 0);
    ck_assert_uint_eq(sampler_poll(&s, 1000000), 0);
    ck_assert_uint_eq(sampler_wait_us(&s, 0), UINT32_MAX);
    sampler_set_mask(&s, 0x8000, 1000000);
    ck_assert_uint_eq(s.nch, 1);
    ck_assert_uint_eq(sampler_wait_us(&s, 1000000), 0);
}
END_TEST

START_TEST(test_sampler_batches_survive_clock_wraparound)
{
    struct msg_adc m;
    uint32_t start = 0xffffffffu - 20000u;
    size_t n = 0;

    sampler_init(&s, 1000, 0x000f, start);
    for (uint32_t t = 0; n == 0 && t < 100000; t += 1000)
        n = sampler_poll(&s, start + t);
    ck_assert_uint_eq(n, MSG_ADC_LEN(29 * 4));
    ck_assert_int_eq(msg_decode_adc(s.buf, n, &m), 0);
    ck_assert_uint_eq(m.t0_us, start);
    ck_assert_uint_eq(s.missed, 0);
}
END_TEST

Suite *sampler_suite(void)
{
    Suite *su = suite_create("sampler");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_sampler_fills_a_batch_on_the_time_grid);
    tcase_add_test(tc,
                   test_sampler_closes_a_slow_batch_after_the_latency_limit);
    tcase_add_test(tc, test_sampler_skips_and_counts_scans_when_far_behind);
    tcase_add_test(tc, test_sampler_with_no_channels_does_nothing);
    tcase_add_test(tc, test_sampler_batches_survive_clock_wraparound);
    suite_add_tcase(su, tc);
    return su;
}
