/* The firmware core end to end on the fake port: boot messages, every
 * command with its ACK or NACK, reports, TX back-pressure and reboot. */
#include <setjmp.h>
#include <string.h>

#include "frame.h"
#include "fw.h"
#include "msg.h"
#include "port_fake.h"
#include "suites.h"

#define SEEN_MAX 512u

struct seen {
    uint8_t type;
    uint16_t seq;
    size_t len;
    uint8_t payload[FRAME_PAYLOAD_MAX];
};

static struct seen seen[SEEN_MAX];
static size_t nseen;
static uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
static struct frame_rx host_rx;
static uint16_t host_seq;

/* Drains the core's transmit FIFO as the UART interrupt would. */
static void drain(void)
{
    struct frame f;
    int b;

    while ((b = fw_uart_tx_next()) >= 0) {
        if (frame_rx_push(&host_rx, (uint8_t)b, &f) != FRAME_RX_OK)
            continue;
        ck_assert_uint_lt(nseen, SEEN_MAX);
        seen[nseen].type = f.type;
        seen[nseen].seq = f.seq;
        seen[nseen].len = f.len;
        memcpy(seen[nseen].payload, f.payload, f.len);
        nseen++;
    }
}

static const struct seen *find(uint8_t type, size_t from)
{
    for (size_t i = from; i < nseen; i++)
        if (seen[i].type == type)
            return &seen[i];
    return NULL;
}

static void boot(void)
{
    struct fw_options o;

    memset(&port_fake, 0, sizeof(port_fake));
    port_fake.now_us = 1000;
    port_fake.reset_cause = MSG_RESET_PIN;
    frame_rx_init(&host_rx, rxbuf, sizeof(rxbuf));
    nseen = 0;
    host_seq = 100;
    fw_defaults(&o);
    o.heap_period_ms = 100;
    fw_init(&o);
    drain();
}

/* Sends one command frame to the core; returns its sequence number. */
static uint16_t command(uint8_t type, const uint8_t *p, size_t n)
{
    uint8_t w[FRAME_WIRE_MAX];
    int len = frame_encode(w, sizeof(w), type, host_seq, p, n);

    ck_assert_int_gt(len, 0);
    for (int i = 0; i < len; i++)
        fw_uart_rx(w[i]);
    return host_seq++;
}

/* Runs the core for ms milliseconds in 1 ms steps, draining as it goes. */
static void run_ms(unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        port_fake.now_us += 1000;
        (void)fw_poll();
        drain();
    }
}

/* The ACK or NACK answering seq: returns the NACK code, 0 for an ACK. */
static int answer(uint16_t seq)
{
    struct msg_ack a;

    for (size_t i = 0; i < nseen; i++) {
        if (seen[i].type == MSG_ACK &&
            msg_decode_ack(seen[i].payload, seen[i].len, &a) == 0 &&
            a.seq == seq)
            return 0;
        if (seen[i].type == MSG_NACK &&
            msg_decode_nack(seen[i].payload, seen[i].len, &a) == 0 &&
            a.seq == seq)
            return a.error;
    }
    ck_abort_msg("no answer to seq %u", seq);
    return -1;
}

START_TEST(test_fw_boots_with_hello_then_logs_and_consecutive_seqs)
{
    struct msg_hello h;

    boot();
    ck_assert_uint_ge(nseen, 3);
    ck_assert_uint_eq(seen[0].type, MSG_HELLO);
    ck_assert_int_eq(msg_decode_hello(seen[0].payload, seen[0].len, &h), 0);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_PIN);
    ck_assert_uint_eq(h.board, PORT_BOARD_ID);
    ck_assert_uint_eq(h.heap_total, PORT_HEAP_ARENA);
    ck_assert_uint_eq(h.fw_version, FW_VERSION);
    ck_assert_uint_eq(h.adc_channels, 4);
    ck_assert_uint_eq(seen[1].type, MSG_LOG);
    for (size_t i = 0; i < nseen; i++)
        ck_assert_uint_eq(seen[i].seq, i);
    ck_assert_uint_eq(host_rx.stats.cobs_errors + host_rx.stats.crc_errors, 0);
}
END_TEST

START_TEST(test_fw_reports_heap_and_stats_every_period)
{
    const struct seen *hs;
    struct msg_heap h;
    size_t before;

    boot();
    run_ms(350);
    before = 0;
    for (int i = 0; i < 3; i++) {
        hs = find(MSG_HEAP, before);
        ck_assert_ptr_nonnull(hs);
        ck_assert_int_eq(msg_decode_heap(hs->payload, hs->len, &h), 0);
        ck_assert_uint_eq(h.total, PORT_HEAP_ARENA);
        ck_assert_uint_eq(h.scenario, MSG_SCEN_STEADY);
        ck_assert_uint_gt(h.allocs, 0);
        before = (size_t)(hs - seen) + 1;
    }
    ck_assert_ptr_null(find(MSG_HEAP, before));
    ck_assert_ptr_nonnull(find(MSG_STATS, 0));
    ck_assert_ptr_nonnull(find(MSG_ADC, 0));
}
END_TEST

START_TEST(test_fw_acks_good_commands_and_nacks_bad_ones)
{
    uint8_t p[8];
    uint16_t s;

    boot();
    msg_encode_u16(p, sizeof(p), 500);
    s = command(MSG_SET_RATE, p, 2);
    run_ms(1);
    ck_assert_int_eq(answer(s), 0);

    msg_encode_u16(p, sizeof(p), 0);
    s = command(MSG_SET_RATE, p, 2);
    run_ms(1);
    ck_assert_int_eq(answer(s), MSG_NACK_BAD_VALUE);

    s = command(MSG_SET_RATE, p, 1);
    run_ms(1);
    ck_assert_int_eq(answer(s), MSG_NACK_BAD_LENGTH);

    msg_encode_u16(p, sizeof(p), 0x0010); /* channel 4 of 4 */
    s = command(MSG_SET_CHANNELS, p, 2);
    run_ms(1);
    ck_assert_int_eq(answer(s), MSG_NACK_BAD_VALUE);

    msg_encode_u16(p, sizeof(p), 5);
    s = command(MSG_SET_HEAP_PERIOD, p, 2);
    run_ms(1);
    ck_assert_int_eq(answer(s), MSG_NACK_BAD_VALUE);

    s = command(0x4f, NULL, 0);
    run_ms(1);
    ck_assert_int_eq(answer(s), MSG_NACK_UNKNOWN_TYPE);

    s = command(MSG_UPDATE_FIRST, NULL, 0);
    run_ms(1);
    ck_assert_int_eq(answer(s), MSG_NACK_UNSUPPORTED);

    p[0] = 9;
    s = command(MSG_SET_SCENARIO, p, 5);
    run_ms(1);
    ck_assert_int_eq(answer(s), MSG_NACK_BAD_VALUE);
}
END_TEST

START_TEST(test_fw_set_rate_and_mask_change_the_batches)
{
    const struct seen *b;
    struct msg_adc a;
    uint8_t p[2];
    uint16_t s;
    size_t from;

    boot();
    msg_encode_u16(p, sizeof(p), 0x0002);
    s = command(MSG_SET_CHANNELS, p, 2);
    msg_encode_u16(p, sizeof(p), 2000);
    command(MSG_SET_RATE, p, 2);
    run_ms(1);
    ck_assert_int_eq(answer(s), 0);
    from = nseen;
    run_ms(300);
    b = find(MSG_ADC, from);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(msg_decode_adc(b->payload, b->len, &a), 0);
    ck_assert_uint_eq(a.mask, 0x0002);
    ck_assert_uint_eq(a.period_us, 500);
    ck_assert_uint_eq(a.scans, PORT_ADC_VALUES_MAX); /* full, in 58.5 ms */
}
END_TEST

START_TEST(test_fw_ping_gets_ack_and_pong_with_token)
{
    const struct seen *pg;
    struct msg_pong pong;
    uint8_t p[4];
    uint16_t s;

    boot();
    msg_encode_u32(p, sizeof(p), 0xfeedf00d);
    s = command(MSG_PING, p, 4);
    run_ms(1);
    ck_assert_int_eq(answer(s), 0);
    pg = find(MSG_PONG, 0);
    ck_assert_ptr_nonnull(pg);
    ck_assert_int_eq(msg_decode_pong(pg->payload, pg->len, &pong), 0);
    ck_assert_uint_eq(pong.token, 0xfeedf00d);
}
END_TEST

START_TEST(test_fw_get_hello_and_scenario_selection)
{
    struct msg_scenario_cmd c = {MSG_SCEN_LEAK, 4000};
    const struct seen *hs;
    struct msg_heap h;
    uint8_t p[8];
    uint16_t s;
    size_t from;

    boot();
    from = nseen;
    s = command(MSG_GET_HELLO, NULL, 0);
    run_ms(1);
    ck_assert_int_eq(answer(s), 0);
    ck_assert_ptr_nonnull(find(MSG_HELLO, from));

    msg_encode_scenario(p, sizeof(p), &c);
    s = command(MSG_SET_SCENARIO, p, MSG_SET_SCENARIO_LEN);
    run_ms(3000);
    ck_assert_int_eq(answer(s), 0);
    from = nseen - 40;
    hs = find(MSG_HEAP, from);
    ck_assert_ptr_nonnull(hs);
    ck_assert_int_eq(msg_decode_heap(hs->payload, hs->len, &h), 0);
    ck_assert_uint_eq(h.scenario, MSG_SCEN_LEAK);
    ck_assert_uint_gt(h.failures, 0); /* 4000 B/s fills 4 KiB in ~1 s */
}
END_TEST

START_TEST(test_fw_full_tx_queue_drops_adc_but_still_answers)
{
    struct msg_stats st;
    const struct seen *ss;
    uint8_t p[2];
    uint16_t s;
    int b;

    boot();
    msg_encode_u16(p, sizeof(p), 20000);
    command(MSG_SET_RATE, p, 2);
    /* Nobody drains the UART for a second. */
    for (unsigned i = 0; i < 1000; i++) {
        port_fake.now_us += 1000;
        (void)fw_poll();
    }
    s = command(MSG_PING, (const uint8_t *)"abcd", 4);
    port_fake.now_us += 1000;
    (void)fw_poll();
    drain();
    ck_assert_int_eq(answer(s), 0);
    run_ms(200);
    ss = find(MSG_STATS, 0);
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].type == MSG_STATS)
            ss = &seen[i];
    ck_assert_int_eq(msg_decode_stats(ss->payload, ss->len, &st), 0);
    ck_assert_uint_gt(st.tx_dropped, 0);
    ck_assert_uint_eq(st.rx_frames_ok, 2);
    /* Sequence numbers run on: dropped frames never took one. */
    for (size_t i = 1; i < nseen; i++)
        ck_assert_uint_eq(seen[i].seq, (uint16_t)(seen[i - 1].seq + 1));
    b = fw_uart_tx_next();
    ck_assert_int_eq(b, -1);
}
END_TEST

START_TEST(test_fw_reboot_acks_then_resets)
{
    jmp_buf env;
    uint16_t s;
    int acked;

    boot();
    port_fake.reset_to = &env;
    if (setjmp(env) == 0) {
        s = command(MSG_REBOOT, NULL, 0);
        port_fake.now_us += 1000;
        (void)fw_poll(); /* queues the ACK; the FIFO is not empty yet */
        ck_assert_uint_eq(port_fake.resets, 0);
        drain();
        acked = answer(s) == 0;
        ck_assert(acked);
        run_ms(2);
        ck_abort_msg("the core did not reset");
    }
    ck_assert_uint_eq(port_fake.resets, 1);
}
END_TEST

START_TEST(test_fw_counts_damaged_commands)
{
    struct msg_stats st;
    const struct seen *ss = NULL;
    uint8_t junk[] = {0x05, 0x41, 0x42, 0x43, 0x44, 0x00};

    boot();
    for (size_t i = 0; i < sizeof(junk); i++)
        fw_uart_rx(junk[i]);
    run_ms(150);
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].type == MSG_STATS)
            ss = &seen[i];
    ck_assert_ptr_nonnull(ss);
    ck_assert_int_eq(msg_decode_stats(ss->payload, ss->len, &st), 0);
    ck_assert_uint_eq(st.rx_crc_errors + st.rx_cobs_errors, 1);
    ck_assert_uint_eq(st.rx_frames_ok, 0);
}
END_TEST

Suite *fw_suite(void)
{
    Suite *s = suite_create("fw");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fw_boots_with_hello_then_logs_and_consecutive_seqs);
    tcase_add_test(tc, test_fw_reports_heap_and_stats_every_period);
    tcase_add_test(tc, test_fw_acks_good_commands_and_nacks_bad_ones);
    tcase_add_test(tc, test_fw_set_rate_and_mask_change_the_batches);
    tcase_add_test(tc, test_fw_ping_gets_ack_and_pong_with_token);
    tcase_add_test(tc, test_fw_get_hello_and_scenario_selection);
    tcase_add_test(tc, test_fw_full_tx_queue_drops_adc_but_still_answers);
    tcase_add_test(tc, test_fw_reboot_acks_then_resets);
    tcase_add_test(tc, test_fw_counts_damaged_commands);
    suite_add_tcase(s, tc);
    return s;
}
