/* Messages: every test vector in proto/PROTOCOL.md, encoded and decoded
 * byte for byte, and the decoders' length and range checks.
 *
 * The expected bytes live only in PROTOCOL.md ("vector" and "wire" lines);
 * this file holds the field values, so the document and the code cannot
 * drift apart without a failure here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "suites.h"
#include "test_util.h"

#define DOC_LINE_MAX 1024u

struct vector {
    const char *id;
    uint8_t type;
    uint16_t seq;
    uint8_t payload[FRAME_PAYLOAD_MAX];
    int len;
};

static const struct msg_hello hello = {
    .proto_version = 1,
    .board = MSG_BOARD_STM32U585,
    .reset_cause = MSG_RESET_POWER_ON,
    .adc_bits = 14,
    .adc_channels = 6,
    .caps = 0x000f,
    .fw_version = 0x000100,
    .build_id = 0x1234abcd,
    .heap_total = 16384,
    .uptime_ms = 1500,
    .time_us = 1500123,
    .rx_max = 64,
};
static const uint16_t adc_values[6] = {0, 1, 8191, 16383, 4660, 43981};
static const struct msg_adc adc = {
    .t0_us = 0xfffffff0u,
    .period_us = 1000,
    .mask = 0x0007,
    .scans = 2,
};
static const struct msg_heap heap = {
    .t_us = 2000000,
    .total = 16384,
    .free = 12288,
    .used = 4096,
    .largest = 8000,
    .min_free = 10000,
    .allocs = 300,
    .frees = 290,
    .failures = 2,
    .blocks = 10,
    .scenario = MSG_SCEN_LEAK,
};
static const char log_text[] = "boot tether-fw 0.1.0";
static const struct msg_log logm = {
    .t_us = 42,
    .level = 6,
    .text = log_text,
    .text_len = sizeof(log_text) - 1,
};
static const struct msg_pong pong = {.token = 0xdeadbeef, .t_us = 77};
static const struct msg_ack ack = {.seq = 513, .type = MSG_SET_RATE};
static const struct msg_ack nack = {
    .seq = 514, .type = MSG_SET_RATE, .error = MSG_NACK_BAD_VALUE};
static const struct msg_stats stats = {
    .t_us = 3000000,
    .tx_frames = 1000,
    .tx_dropped = 3,
    .rx_frames_ok = 12,
    .rx_crc_errors = 1,
    .rx_cobs_errors = 2,
    .rx_oversize = 0,
    .rx_version_errors = 0,
    .rx_overruns = 5,
    .scans_missed = 7,
};
static const struct msg_scenario_cmd scen = {.id = MSG_SCEN_LEAK, .param = 512};

static struct vector vectors[15];
static size_t nvectors;

static struct vector *add(const char *id, uint8_t type, uint16_t seq)
{
    struct vector *v = &vectors[nvectors++];

    v->id = id;
    v->type = type;
    v->seq = seq;
    return v;
}

static void build_vectors(void)
{
    struct vector *v;

    nvectors = 0;
    v = add("hello", MSG_HELLO, 0);
    v->len = msg_encode_hello(v->payload, sizeof(v->payload), &hello);
    v = add("adc", MSG_ADC, 1);
    v->len = msg_encode_adc_hdr(v->payload, sizeof(v->payload), &adc);
    for (size_t i = 0; i < 6; i++)
        msg_adc_put_value(v->payload, i, adc_values[i]);
    v->len += 12;
    v = add("heap", MSG_HEAP, 2);
    v->len = msg_encode_heap(v->payload, sizeof(v->payload), &heap);
    v = add("log", MSG_LOG, 3);
    v->len = msg_encode_log(v->payload, sizeof(v->payload), &logm);
    v = add("pong", MSG_PONG, 4);
    v->len = msg_encode_pong(v->payload, sizeof(v->payload), &pong);
    v = add("ack", MSG_ACK, 5);
    v->len = msg_encode_ack(v->payload, sizeof(v->payload), &ack);
    v = add("nack", MSG_NACK, 6);
    v->len = msg_encode_nack(v->payload, sizeof(v->payload), &nack);
    v = add("stats", MSG_STATS, 7);
    v->len = msg_encode_stats(v->payload, sizeof(v->payload), &stats);
    v = add("ping", MSG_PING, 0x0100);
    v->len = msg_encode_u32(v->payload, sizeof(v->payload), 0xdeadbeef);
    v = add("set_rate", MSG_SET_RATE, 0x0201);
    v->len = msg_encode_u16(v->payload, sizeof(v->payload), 1000);
    v = add("set_channels", MSG_SET_CHANNELS, 0x0202);
    v->len = msg_encode_u16(v->payload, sizeof(v->payload), 0x003f);
    v = add("set_heap_period", MSG_SET_HEAP_PERIOD, 0x0203);
    v->len = msg_encode_u16(v->payload, sizeof(v->payload), 250);
    v = add("get_hello", MSG_GET_HELLO, 0x0204);
    v->len = 0;
    v = add("reboot", MSG_REBOOT, 0x0205);
    v->len = 0;
    v = add("set_scenario", MSG_SET_SCENARIO, 0xffff);
    v->len = msg_encode_scenario(v->payload, sizeof(v->payload), &scen);
}

/* Finds "vector ID ..." in PROTOCOL.md and parses the "wire" line after
 * it.  Returns the byte count, or -1 when the document lacks the vector. */
static int doc_wire(const char *id, uint8_t *out, size_t cap)
{
    const char *path = getenv("TETHER_PROTOCOL_MD");
    char line[DOC_LINE_MAX];
    size_t idlen = strlen(id);
    FILE *f = fopen(path ? path : "proto/PROTOCOL.md", "r");
    int found = 0, n = -1;

    ck_assert_msg(f != NULL, "cannot open PROTOCOL.md");
    while (fgets(line, sizeof(line), f) != NULL) {
        if (!found && strncmp(line, "vector ", 7) == 0 &&
            strncmp(line + 7, id, idlen) == 0 && line[7 + idlen] == ' ') {
            found = 1;
        } else if (found && strncmp(line, "wire ", 5) == 0) {
            n = test_parse_hex(line + 5, out, cap);
            break;
        }
    }
    fclose(f);
    return n;
}

static void print_hex(const char *id, const uint8_t *p, int n)
{
    fprintf(stderr, "vector %s: wire", id);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

START_TEST(test_msg_every_protocol_vector_encodes_byte_for_byte)
{
    unsigned bad = 0;

    build_vectors();
    /* Check them all before failing, printing each mismatch, so one run
     * shows everything that differs. */
    for (size_t i = 0; i < nvectors; i++) {
        const struct vector *v = &vectors[i];
        uint8_t want[FRAME_WIRE_MAX], got[FRAME_WIRE_MAX];
        int n, m;

        ck_assert_int_ge(v->len, 0);
        m = frame_encode(got, sizeof(got), v->type, v->seq, v->payload,
                         (size_t)v->len);
        ck_assert_int_gt(m, 0);
        n = doc_wire(v->id, want, sizeof(want));
        if (n != m || memcmp(want, got, (size_t)m) != 0) {
            print_hex(v->id, got, m);
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%u vectors differ from PROTOCOL.md", bad);
}
END_TEST

/* Decodes the document's bytes of vector id into *f (payload borrowed from
 * rx's buffer). */
static void doc_frame(const char *id, struct frame_rx *rx, uint8_t *buf,
                      struct frame *f)
{
    uint8_t w[FRAME_WIRE_MAX];
    int n = doc_wire(id, w, sizeof(w)), r = FRAME_RX_MORE;

    ck_assert_int_gt(n, 0);
    frame_rx_init(rx, buf, FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX));
    for (int i = 0; i < n; i++)
        r = frame_rx_push(rx, w[i], f);
    ck_assert_int_eq(r, FRAME_RX_OK);
}

START_TEST(test_msg_every_protocol_vector_decodes_to_its_fields)
{
    static uint8_t buf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    struct frame_rx rx;
    struct frame f;
    struct msg_hello h;
    struct msg_adc a;
    struct msg_heap hp;
    struct msg_log l;
    struct msg_pong p;
    struct msg_ack k;
    struct msg_stats s;
    struct msg_scenario_cmd c;
    uint32_t u32;
    uint16_t u16;

    doc_frame("hello", &rx, buf, &f);
    ck_assert_uint_eq(f.type, MSG_HELLO);
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, &h), 0);
    ck_assert_uint_eq(h.proto_version, hello.proto_version);
    ck_assert_uint_eq(h.board, hello.board);
    ck_assert_uint_eq(h.reset_cause, hello.reset_cause);
    ck_assert_uint_eq(h.adc_bits, hello.adc_bits);
    ck_assert_uint_eq(h.adc_channels, hello.adc_channels);
    ck_assert_uint_eq(h.caps, hello.caps);
    ck_assert_uint_eq(h.fw_version, hello.fw_version);
    ck_assert_uint_eq(h.build_id, hello.build_id);
    ck_assert_uint_eq(h.heap_total, hello.heap_total);
    ck_assert_uint_eq(h.uptime_ms, hello.uptime_ms);
    ck_assert_uint_eq(h.time_us, hello.time_us);
    ck_assert_uint_eq(h.rx_max, hello.rx_max);

    doc_frame("adc", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_adc(f.payload, f.len, &a), 0);
    ck_assert_uint_eq(a.t0_us, adc.t0_us);
    ck_assert_uint_eq(a.period_us, adc.period_us);
    ck_assert_uint_eq(a.mask, adc.mask);
    ck_assert_uint_eq(a.scans, adc.scans);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_eq(msg_adc_value(&a, i / 3, i % 3), adc_values[i]);

    doc_frame("heap", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_heap(f.payload, f.len, &hp), 0);
    ck_assert_uint_eq(hp.free, heap.free);
    ck_assert_uint_eq(hp.largest, heap.largest);
    ck_assert_uint_eq(hp.min_free, heap.min_free);
    ck_assert_uint_eq(hp.failures, heap.failures);
    ck_assert_uint_eq(hp.blocks, heap.blocks);
    ck_assert_uint_eq(hp.scenario, heap.scenario);

    doc_frame("log", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_log(f.payload, f.len, &l), 0);
    ck_assert_uint_eq(l.level, 6);
    ck_assert_uint_eq(l.text_len, strlen(log_text));
    ck_assert_mem_eq(l.text, log_text, l.text_len);

    doc_frame("pong", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_pong(f.payload, f.len, &p), 0);
    ck_assert_uint_eq(p.token, pong.token);
    ck_assert_uint_eq(p.t_us, pong.t_us);

    doc_frame("ack", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_ack(f.payload, f.len, &k), 0);
    ck_assert_uint_eq(k.seq, 513);
    ck_assert_uint_eq(k.type, MSG_SET_RATE);

    doc_frame("nack", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_nack(f.payload, f.len, &k), 0);
    ck_assert_uint_eq(k.seq, 514);
    ck_assert_uint_eq(k.error, MSG_NACK_BAD_VALUE);

    doc_frame("stats", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_stats(f.payload, f.len, &s), 0);
    ck_assert_mem_eq(&s, &stats, sizeof(s));

    doc_frame("ping", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_u32(f.payload, f.len, &u32), 0);
    ck_assert_uint_eq(u32, 0xdeadbeef);
    ck_assert_uint_eq(f.seq, 0x0100);

    doc_frame("set_rate", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_u16(f.payload, f.len, &u16), 0);
    ck_assert_uint_eq(u16, 1000);

    doc_frame("set_channels", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_u16(f.payload, f.len, &u16), 0);
    ck_assert_uint_eq(u16, 0x3f);

    doc_frame("set_heap_period", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_u16(f.payload, f.len, &u16), 0);
    ck_assert_uint_eq(u16, 250);

    doc_frame("get_hello", &rx, buf, &f);
    ck_assert_uint_eq(f.type, MSG_GET_HELLO);
    ck_assert_uint_eq(f.len, 0);

    doc_frame("reboot", &rx, buf, &f);
    ck_assert_uint_eq(f.type, MSG_REBOOT);
    ck_assert_uint_eq(f.len, 0);

    doc_frame("set_scenario", &rx, buf, &f);
    ck_assert_int_eq(msg_decode_scenario(f.payload, f.len, &c), 0);
    ck_assert_uint_eq(c.id, MSG_SCEN_LEAK);
    ck_assert_uint_eq(c.param, 512);
    ck_assert_uint_eq(f.seq, 0xffff);
}
END_TEST

START_TEST(test_msg_decoders_reject_short_payloads_at_every_length)
{
    uint8_t p[FRAME_PAYLOAD_MAX] = {0};
    struct msg_hello h;
    struct msg_heap hp;
    struct msg_stats s;
    struct msg_pong pg;
    struct msg_ack k;
    struct msg_scenario_cmd c;
    struct msg_log l;
    struct msg_adc a;

    for (size_t n = 0; n < MSG_HELLO_LEN; n++)
        ck_assert_int_eq(msg_decode_hello(p, n, &h), MSG_ELEN);
    for (size_t n = 0; n < MSG_HEAP_LEN; n++)
        ck_assert_int_eq(msg_decode_heap(p, n, &hp), MSG_ELEN);
    for (size_t n = 0; n < MSG_STATS_LEN; n++)
        ck_assert_int_eq(msg_decode_stats(p, n, &s), MSG_ELEN);
    for (size_t n = 0; n < MSG_PONG_LEN; n++)
        ck_assert_int_eq(msg_decode_pong(p, n, &pg), MSG_ELEN);
    for (size_t n = 0; n < MSG_ACK_LEN; n++)
        ck_assert_int_eq(msg_decode_ack(p, n, &k), MSG_ELEN);
    for (size_t n = 0; n < MSG_NACK_LEN; n++)
        ck_assert_int_eq(msg_decode_nack(p, n, &k), MSG_ELEN);
    for (size_t n = 0; n < MSG_SET_SCENARIO_LEN; n++)
        ck_assert_int_eq(msg_decode_scenario(p, n, &c), MSG_ELEN);
    for (size_t n = 0; n < MSG_LOG_HDR_LEN; n++)
        ck_assert_int_eq(msg_decode_log(p, n, &l), MSG_ELEN);
    for (size_t n = 0; n < MSG_ADC_HDR_LEN; n++)
        ck_assert_int_eq(msg_decode_adc(p, n, &a), MSG_ELEN);
}
END_TEST

START_TEST(test_msg_longer_payloads_are_accepted_and_tail_ignored)
{
    uint8_t p[FRAME_PAYLOAD_MAX];
    struct msg_hello h;
    int n = msg_encode_hello(p, sizeof(p), &hello);

    memset(p + n, 0xee, sizeof(p) - (size_t)n);
    ck_assert_int_eq(msg_decode_hello(p, (size_t)n + 10, &h), 0);
    ck_assert_uint_eq(h.heap_total, hello.heap_total);
}
END_TEST

START_TEST(test_msg_adc_length_must_match_mask_and_scans_exactly)
{
    uint8_t p[FRAME_PAYLOAD_MAX] = {0};
    struct msg_adc a;
    struct msg_adc hdr = {
        .t0_us = 1, .period_us = 10, .mask = 0x0101, .scans = 3};

    ck_assert_int_eq(msg_encode_adc_hdr(p, sizeof(p), &hdr), MSG_ADC_HDR_LEN);
    ck_assert_int_eq(msg_decode_adc(p, MSG_ADC_LEN(6), &a), 0);
    ck_assert_int_eq(msg_decode_adc(p, MSG_ADC_LEN(6) - 1, &a), MSG_ELEN);
    ck_assert_int_eq(msg_decode_adc(p, MSG_ADC_LEN(6) + 2, &a), MSG_ELEN);
    hdr.mask = 0;
    msg_encode_adc_hdr(p, sizeof(p), &hdr);
    ck_assert_int_eq(msg_decode_adc(p, MSG_ADC_HDR_LEN, &a), MSG_EINVAL);
    hdr.mask = 1;
    hdr.scans = 0;
    msg_encode_adc_hdr(p, sizeof(p), &hdr);
    ck_assert_int_eq(msg_decode_adc(p, MSG_ADC_HDR_LEN, &a), MSG_EINVAL);
    ck_assert_int_eq(msg_encode_adc_hdr(p, 5, &hdr), MSG_ENOSPC);
    ck_assert_uint_eq(MSG_ADC_VALUES_MAX, 117);
}
END_TEST

START_TEST(test_msg_inconsistent_heap_and_bad_ranges_are_rejected)
{
    uint8_t p[FRAME_PAYLOAD_MAX];
    struct msg_heap bad = heap;
    struct msg_heap out;
    struct msg_scenario_cmd c = {.id = MSG_SCEN_COUNT, .param = 0};
    struct msg_log l = {.t_us = 0, .level = 8, .text = "x", .text_len = 1};
    struct msg_ack k = {.seq = 1, .type = 2, .error = 0};

    bad.free = bad.total - bad.used + 1;
    msg_encode_heap(p, sizeof(p), &bad);
    ck_assert_int_eq(msg_decode_heap(p, MSG_HEAP_LEN, &out), MSG_EINVAL);
    bad = heap;
    bad.largest = bad.free + 8;
    msg_encode_heap(p, sizeof(p), &bad);
    ck_assert_int_eq(msg_decode_heap(p, MSG_HEAP_LEN, &out), MSG_EINVAL);

    msg_encode_scenario(p, sizeof(p), &c);
    ck_assert_int_eq(msg_decode_scenario(p, MSG_SET_SCENARIO_LEN, &c),
                     MSG_EINVAL);
    msg_encode_log(p, sizeof(p), &l);
    ck_assert_int_eq(msg_decode_log(p, MSG_LOG_HDR_LEN + 1, &l), MSG_EINVAL);
    msg_encode_nack(p, sizeof(p), &k);
    ck_assert_int_eq(msg_decode_nack(p, MSG_NACK_LEN, &k), MSG_EINVAL);
}
END_TEST

START_TEST(test_msg_encoders_refuse_short_buffers)
{
    uint8_t p[4];

    ck_assert_int_eq(msg_encode_hello(p, sizeof(p), &hello), MSG_ENOSPC);
    ck_assert_int_eq(msg_encode_heap(p, sizeof(p), &heap), MSG_ENOSPC);
    ck_assert_int_eq(msg_encode_stats(p, sizeof(p), &stats), MSG_ENOSPC);
    ck_assert_int_eq(msg_encode_log(p, sizeof(p), &logm), MSG_ENOSPC);
    ck_assert_int_eq(msg_encode_pong(p, sizeof(p), &pong), MSG_ENOSPC);
    ck_assert_int_eq(msg_encode_nack(p, 3, &nack), MSG_ENOSPC);
    ck_assert_int_eq(msg_encode_scenario(p, sizeof(p), &scen), MSG_ENOSPC);
    ck_assert_int_eq(msg_encode_u32(p, 3, 1), MSG_ENOSPC);
    ck_assert_int_eq(msg_encode_u16(p, 1, 1), MSG_ENOSPC);
}
END_TEST

START_TEST(test_msg_long_log_text_is_cut_at_the_limit)
{
    char text[100];
    uint8_t p[FRAME_PAYLOAD_MAX];
    struct msg_log l = {
        .t_us = 1, .level = 3, .text = text, .text_len = sizeof(text)};

    memset(text, 'x', sizeof(text));
    ck_assert_int_eq(msg_encode_log(p, sizeof(p), &l),
                     (int)(MSG_LOG_HDR_LEN + MSG_LOG_TEXT_MAX));
}
END_TEST

START_TEST(test_msg_names_cover_every_defined_type)
{
    const uint8_t types[] = {
        MSG_HELLO,     MSG_ADC,      MSG_HEAP,         MSG_LOG,
        MSG_PONG,      MSG_ACK,      MSG_NACK,         MSG_STATS,
        MSG_PING,      MSG_SET_RATE, MSG_SET_CHANNELS, MSG_SET_HEAP_PERIOD,
        MSG_GET_HELLO, MSG_REBOOT,   MSG_SET_SCENARIO};

    for (size_t i = 0; i < sizeof(types); i++)
        ck_assert_ptr_nonnull(msg_type_name(types[i]));
    ck_assert_ptr_null(msg_type_name(0));
    ck_assert_ptr_null(msg_type_name(0x80));
    ck_assert_str_eq(msg_scenario_name(MSG_SCEN_FRAGMENT), "fragment");
    ck_assert_ptr_null(msg_scenario_name(MSG_SCEN_COUNT));
}
END_TEST

START_TEST(test_msg_popcount16_counts_every_mask_bit_by_bit)
{
    for (uint32_t mask = 0; mask <= 0xffffu; mask++) {
        unsigned n = 0;

        for (unsigned bit = 0; bit < 16; bit++)
            n += (mask >> bit) & 1u;
        ck_assert_uint_eq(msg_popcount16((uint16_t)mask), n);
    }
}
END_TEST

Suite *msg_suite(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("vectors");
    TCase *edge = tcase_create("edge");

    tcase_add_test(tc, test_msg_every_protocol_vector_encodes_byte_for_byte);
    tcase_add_test(tc, test_msg_every_protocol_vector_decodes_to_its_fields);
    suite_add_tcase(s, tc);
    tcase_add_test(edge,
                   test_msg_decoders_reject_short_payloads_at_every_length);
    tcase_add_test(edge,
                   test_msg_longer_payloads_are_accepted_and_tail_ignored);
    tcase_add_test(edge, test_msg_adc_length_must_match_mask_and_scans_exactly);
    tcase_add_test(edge,
                   test_msg_inconsistent_heap_and_bad_ranges_are_rejected);
    tcase_add_test(edge, test_msg_encoders_refuse_short_buffers);
    tcase_add_test(edge, test_msg_long_log_text_is_cut_at_the_limit);
    tcase_add_test(edge, test_msg_names_cover_every_defined_type);
    tcase_add_test(edge, test_msg_popcount16_counts_every_mask_bit_by_bit);
    suite_add_tcase(s, edge);
    return s;
}
