/* tether-sim over its pseudo-terminal: the real firmware core, heard and
 * commanded as tetherd will.  Each test starts its own sim and stops it;
 * a sim outlives no test (see simproc.h). */
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msg.h"
#include "simproc.h"

#define WAIT_MS 5000

static struct simproc sim;

static void teardown(void)
{
    simproc_stop(&sim, 2000);
}

/* The ACK or NACK for seq: its NACK code, 0 for ACK, -1 on timeout. */
static int answer(uint16_t seq)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    struct frame f;
    struct msg_ack a;

    while (simproc_now_ms() < end) {
        if (!simproc_next(&sim, &f, WAIT_MS))
            break;
        if (f.type == MSG_ACK && msg_decode_ack(f.payload, f.len, &a) == 0 &&
            a.seq == seq)
            return 0;
        if (f.type == MSG_NACK && msg_decode_nack(f.payload, f.len, &a) == 0 &&
            a.seq == seq)
            return a.error;
    }
    return -1;
}

START_TEST(test_sim_speaks_hello_adc_heap_and_acks_a_command)
{
    const char *args[] = {"--heap-period", "100", "--channels", "6",
                          "--seed",        "7",   NULL};
    struct frame f;
    struct msg_hello h;
    struct msg_adc a;
    struct msg_heap hp;
    uint8_t p[2];
    uint16_t seq;

    ck_assert_int_eq(simproc_start(&sim, args), 0);
    ck_assert(simproc_wait_type(&sim, MSG_HELLO, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, &h), 0);
    ck_assert_uint_eq(h.board, MSG_BOARD_SIM);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_POWER_ON);
    ck_assert_uint_eq(h.adc_channels, 6);
    ck_assert_uint_eq(h.adc_bits, 14);

    ck_assert(simproc_wait_type(&sim, MSG_ADC, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_adc(f.payload, f.len, &a), 0);
    ck_assert_uint_eq(a.mask, 0x3f);
    ck_assert_uint_eq(a.period_us, 10000);
    for (unsigned k = 0; k < 6; k++)
        ck_assert_uint_lt(msg_adc_value(&a, 0, k), 1u << 14);

    ck_assert(simproc_wait_type(&sim, MSG_HEAP, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_heap(f.payload, f.len, &hp), 0);
    ck_assert_uint_eq(hp.total, h.heap_total);
    ck_assert_uint_eq(hp.scenario, MSG_SCEN_STEADY);

    msg_encode_u16(p, sizeof(p), 500);
    seq = simproc_send(&sim, MSG_SET_RATE, p, 2);
    ck_assert_int_eq(answer(seq), 0);
    /* The next batch that starts after the ACK runs at 500 Hz. */
    ck_assert(simproc_wait_type(&sim, MSG_ADC, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_adc(f.payload, f.len, &a), 0);
    ck_assert_uint_eq(a.period_us, 2000);
    ck_assert_uint_eq(sim.rx.stats.crc_errors + sim.rx.stats.cobs_errors, 0);

    ck_assert_int_eq(simproc_stop(&sim, 2000), 0);
}
END_TEST

START_TEST(test_sim_rejects_bad_commands_with_nack)
{
    const char *args[] = {NULL};
    uint8_t p[8] = {0};
    uint16_t seq;

    ck_assert_int_eq(simproc_start(&sim, args), 0);
    seq = simproc_send(&sim, MSG_SET_RATE, p, 2); /* 0 Hz */
    ck_assert_int_eq(answer(seq), MSG_NACK_BAD_VALUE);
    p[0] = 0xff;
    p[1] = 0xff;
    seq = simproc_send(&sim, MSG_SET_CHANNELS, p, 2); /* 16 of 4 channels */
    ck_assert_int_eq(answer(seq), MSG_NACK_BAD_VALUE);
    seq = simproc_send(&sim, 0x7e, p, 0);
    ck_assert_int_eq(answer(seq), MSG_NACK_UNKNOWN_TYPE);
}
END_TEST

START_TEST(test_sim_reboot_restarts_the_core_with_software_reset)
{
    const char *args[] = {NULL};
    struct frame f;
    struct msg_hello h;
    uint16_t seq;

    ck_assert_int_eq(simproc_start(&sim, args), 0);
    ck_assert(simproc_wait_type(&sim, MSG_HELLO, &f, WAIT_MS));
    ck_assert(simproc_wait_type(&sim, MSG_ADC, &f, WAIT_MS));
    seq = simproc_send(&sim, MSG_REBOOT, NULL, 0);
    ck_assert_int_eq(answer(seq), 0);
    ck_assert(simproc_wait_type(&sim, MSG_HELLO, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, &h), 0);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(f.seq, 0); /* sequence numbers restart */
    ck_assert_uint_lt(h.uptime_ms, 1000);
}
END_TEST

START_TEST(test_sim_line_noise_is_rejected_and_counted_and_link_survives)
{
    /* About ten damaged bytes in the 10 KB this run carries. */
    const char *args[] = {"--rate",     "1000", "--noise-ppm", "100",
                          "--drop-ppm", "200",  "--garbage",   NULL};
    struct frame f;
    int64_t end;
    unsigned good = 0;

    ck_assert_int_eq(simproc_start(&sim, args), 0);
    end = simproc_now_ms() + 1500;
    while (simproc_now_ms() < end)
        if (simproc_next(&sim, &f, 500))
            good++;
    ck_assert_uint_gt(good, 10);
    ck_assert_uint_gt(sim.rx.stats.crc_errors + sim.rx.stats.cobs_errors +
                          sim.rx.stats.oversize,
                      0);
    ck_assert_uint_gt(sim.rx.stats.discarded, 0);
}
END_TEST

START_TEST(test_sim_paced_output_never_exceeds_the_line_rate)
{
    const char *args[] = {"--rate", "2000",   "--channels", "6",
                          "--baud", "115200", NULL};
    struct frame f;
    int64_t start, elapsed;

    ck_assert_int_eq(simproc_start(&sim, args), 0);
    start = simproc_now_ms();
    while (simproc_now_ms() - start < 1500)
        (void)simproc_next(&sim, &f, 200);
    elapsed = simproc_now_ms() - start + 200; /* the sim started first */
    /* 11,520 bytes a second plus the 64-byte burst a UART FIFO allows:
     * a slow machine can only lower this count. */
    ck_assert_uint_le(sim.bytes_in, (uint64_t)(elapsed * 11520 / 1000 + 64));
    ck_assert_uint_gt(sim.rx.stats.frames_ok, 10);
}
END_TEST

START_TEST(test_sim_link_option_makes_and_removes_a_symlink)
{
    char link[] = "/tmp/tether-sim-link-XXXXXX";
    int fd = mkstemp(link);
    const char *args[] = {"--link", link, NULL};
    struct stat st;
    struct frame f;

    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(simproc_start(&sim, args), 0);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert(simproc_wait_type(&sim, MSG_HELLO, &f, WAIT_MS));
    ck_assert_int_eq(simproc_stop(&sim, 2000), 0);
    ck_assert_int_ne(lstat(link, &st), 0);
}
END_TEST

START_TEST(test_sim_bad_arguments_exit_2_with_a_clear_message)
{
    const char *rate[] = {"--rate", "0", NULL};
    const char *scen[] = {"--scenario", "explode", NULL};
    const char *junk[] = {"--channels", "4x", NULL};
    char err[512];

    ck_assert_int_eq(simproc_run_expect_exit(rate, err, sizeof(err), 2000), 2);
    ck_assert_ptr_nonnull(strstr(err, "--rate must be a number from 1"));
    ck_assert_int_eq(simproc_run_expect_exit(scen, err, sizeof(err), 2000), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown scenario 'explode'"));
    ck_assert_int_eq(simproc_run_expect_exit(junk, err, sizeof(err), 2000), 2);
    ck_assert_ptr_nonnull(strstr(err, "--channels"));
}
END_TEST

static Suite *sim_suite(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("pty");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_sim_speaks_hello_adc_heap_and_acks_a_command);
    tcase_add_test(tc, test_sim_rejects_bad_commands_with_nack);
    tcase_add_test(tc, test_sim_reboot_restarts_the_core_with_software_reset);
    tcase_add_test(
        tc, test_sim_line_noise_is_rejected_and_counted_and_link_survives);
    tcase_add_test(tc, test_sim_paced_output_never_exceeds_the_line_rate);
    tcase_add_test(tc, test_sim_link_option_makes_and_removes_a_symlink);
    tcase_add_test(tc, test_sim_bad_arguments_exit_2_with_a_clear_message);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sim_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
