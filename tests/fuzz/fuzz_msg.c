/* libFuzzer target: the message decoders of proto/msg.h and
 * proto/update.h, reached through a real frame.
 *
 * Input: a frame before its CRC, version (1) | type (1) | seq (2) |
 * payload (at most FRAME_PAYLOAD_MAX; longer input is cut).  The harness
 * appends the right CRC-32C and COBS-encodes it as a sender would, so
 * mutations are not all spent failing the CRC check; the frame is then
 * received byte by byte and its payload handed to every decoder, whatever
 * the type byte says (a decoder must be safe on any payload).
 *
 * Checked:
 * - the wire form is exactly one byte longer than the frame plus the
 *   delimiter, and for version 1 is what frame_encode() writes;
 * - the receiver gives back the frame (version 1) or a version error;
 * - each decoder returns 0, MSG_ELEN or MSG_EINVAL; fixed-size messages
 *   are MSG_ELEN exactly when the payload is shorter than the message,
 *   and a longer payload decodes as its first bytes do (the tail is
 *   ignored);
 * - whatever decodes re-encodes to the same bytes (reserved bytes aside)
 *   and decodes again to the same fields;
 * - the image header, with its own CRC fixed up as well, decodes unless
 *   its magic or version is wrong, and re-encodes to the same 64 bytes.
 * The payload is copied into a buffer of its exact size first, so that a
 * decoder reading past it is a crash under AddressSanitizer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cobs.h"
#include "crc32c.h"
#include "frame.h"
#include "fuzz.h"
#include "msg.h"
#include "update.h"
#include "wire.h"

#define BODY_MAX (FRAME_RAW_MAX - FRAME_CRC_LEN)

static void check_code(int r)
{
    FUZZ_CHECK(r == 0 || r == MSG_ELEN || r == MSG_EINVAL);
}

/* A fixed-size message: MSG_ELEN exactly when short. */
static void check_fixed(int r, size_t n, size_t len)
{
    check_code(r);
    FUZZ_CHECK((r == MSG_ELEN) == (n < len));
}

/* enc (len bytes) equals p but for the reserved byte at skip (or none
 * when skip >= len), which the encoder writes as 0. */
static void check_same(const uint8_t *enc, const uint8_t *p, size_t len,
                       size_t skip)
{
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK(i == skip ? enc[i] == 0 : enc[i] == p[i]);
}

static void check_name(const char *name)
{
    FUZZ_CHECK(name == NULL || (name[0] != '\0' && strlen(name) < 32));
}

/* ---- One function per message: decode, compare, re-encode ---- */

static bool hello_eq(const struct msg_hello *a, const struct msg_hello *b)
{
    return a->proto_version == b->proto_version && a->board == b->board &&
           a->reset_cause == b->reset_cause && a->adc_bits == b->adc_bits &&
           a->adc_channels == b->adc_channels && a->caps == b->caps &&
           a->fw_version == b->fw_version && a->build_id == b->build_id &&
           a->heap_total == b->heap_total && a->uptime_ms == b->uptime_ms &&
           a->time_us == b->time_us && a->rx_max == b->rx_max;
}

static void try_hello(const uint8_t *p, size_t n)
{
    struct msg_hello m, again;
    uint8_t enc[MSG_HELLO_LEN];
    int r = msg_decode_hello(p, n, &m);

    check_fixed(r, n, MSG_HELLO_LEN);
    if (r == MSG_ELEN)
        return;
    FUZZ_CHECK(msg_decode_hello(p, MSG_HELLO_LEN, &again) == r);
    FUZZ_CHECK(hello_eq(&m, &again));
    if (r != 0)
        return;
    FUZZ_CHECK(m.adc_channels <= MSG_ADC_CHANNELS_MAX && m.adc_bits <= 16);
    FUZZ_CHECK(msg_encode_hello(enc, sizeof(enc), &m) == MSG_HELLO_LEN);
    check_same(enc, p, MSG_HELLO_LEN, 5);
    FUZZ_CHECK(msg_decode_hello(enc, sizeof(enc), &again) == 0);
    FUZZ_CHECK(hello_eq(&m, &again));
}

static void try_adc(const uint8_t *p, size_t n)
{
    struct msg_adc m, again;
    uint8_t enc[FRAME_PAYLOAD_MAX];
    size_t values;
    unsigned nch, i = 0;
    int r = msg_decode_adc(p, n, &m);

    check_code(r);
    if (n < MSG_ADC_HDR_LEN)
        FUZZ_CHECK(r == MSG_ELEN);
    if (r != 0)
        return;
    nch = msg_popcount16(m.mask);
    values = (size_t)m.scans * nch;
    FUZZ_CHECK(m.mask != 0 && m.scans != 0 && m.period_us != 0);
    FUZZ_CHECK(n == MSG_ADC_LEN(values) && values <= MSG_ADC_VALUES_MAX);
    FUZZ_CHECK(m.values == p + MSG_ADC_HDR_LEN);
    FUZZ_CHECK(msg_encode_adc_hdr(enc, sizeof(enc), &m) == MSG_ADC_HDR_LEN);
    for (unsigned s = 0; s < m.scans; s++)
        for (unsigned k = 0; k < nch; k++)
            msg_adc_put_value(enc, i++, msg_adc_value(&m, s, k));
    check_same(enc, p, n, n);
    FUZZ_CHECK(msg_decode_adc(enc, n, &again) == 0);
    FUZZ_CHECK(again.t0_us == m.t0_us && again.period_us == m.period_us &&
               again.mask == m.mask && again.scans == m.scans);
}

static bool heap_eq(const struct msg_heap *a, const struct msg_heap *b)
{
    return a->t_us == b->t_us && a->total == b->total && a->free == b->free &&
           a->used == b->used && a->largest == b->largest &&
           a->min_free == b->min_free && a->allocs == b->allocs &&
           a->frees == b->frees && a->failures == b->failures &&
           a->blocks == b->blocks && a->scenario == b->scenario;
}

static void try_heap(const uint8_t *p, size_t n)
{
    struct msg_heap m, again;
    uint8_t enc[MSG_HEAP_LEN];
    int r = msg_decode_heap(p, n, &m);

    check_fixed(r, n, MSG_HEAP_LEN);
    if (r == MSG_ELEN)
        return;
    FUZZ_CHECK(msg_decode_heap(p, MSG_HEAP_LEN, &again) == r);
    FUZZ_CHECK(heap_eq(&m, &again));
    if (r != 0)
        return;
    FUZZ_CHECK(m.used <= m.total && m.free == m.total - m.used &&
               m.largest <= m.free && m.min_free <= m.total);
    FUZZ_CHECK(msg_encode_heap(enc, sizeof(enc), &m) == MSG_HEAP_LEN);
    check_same(enc, p, MSG_HEAP_LEN, 39);
    FUZZ_CHECK(msg_decode_heap(enc, sizeof(enc), &again) == 0);
    FUZZ_CHECK(heap_eq(&m, &again));
}

static void try_log(const uint8_t *p, size_t n)
{
    struct msg_log m, again;
    uint8_t enc[MSG_LOG_HDR_LEN + MSG_LOG_TEXT_MAX];
    int r = msg_decode_log(p, n, &m);

    check_code(r);
    FUZZ_CHECK((r == MSG_ELEN) == (n < MSG_LOG_HDR_LEN));
    if (r != 0)
        return;
    FUZZ_CHECK(m.level <= 7 && m.text_len <= MSG_LOG_TEXT_MAX);
    FUZZ_CHECK(MSG_LOG_HDR_LEN + m.text_len == n);
    FUZZ_CHECK(msg_encode_log(enc, sizeof(enc), &m) == (int)n);
    check_same(enc, p, n, n);
    FUZZ_CHECK(msg_decode_log(enc, n, &again) == 0);
    FUZZ_CHECK(again.t_us == m.t_us && again.level == m.level &&
               again.text_len == m.text_len &&
               memcmp(again.text, m.text, m.text_len) == 0);
}

static void try_pong(const uint8_t *p, size_t n)
{
    struct msg_pong m;
    uint8_t enc[MSG_PONG_LEN];
    int r = msg_decode_pong(p, n, &m);

    check_fixed(r, n, MSG_PONG_LEN);
    if (r != 0)
        return;
    FUZZ_CHECK(msg_encode_pong(enc, sizeof(enc), &m) == MSG_PONG_LEN);
    check_same(enc, p, MSG_PONG_LEN, MSG_PONG_LEN);
}

static void try_ack(const uint8_t *p, size_t n)
{
    struct msg_ack m;
    uint8_t enc[MSG_NACK_LEN];
    int r = msg_decode_ack(p, n, &m);

    check_fixed(r, n, MSG_ACK_LEN);
    if (r == 0) {
        FUZZ_CHECK(m.error == 0);
        FUZZ_CHECK(msg_encode_ack(enc, sizeof(enc), &m) == MSG_ACK_LEN);
        check_same(enc, p, MSG_ACK_LEN, MSG_ACK_LEN);
    }
    r = msg_decode_nack(p, n, &m);
    check_fixed(r, n, MSG_NACK_LEN);
    if (r == 0) {
        FUZZ_CHECK(m.error != 0);
        FUZZ_CHECK(msg_encode_nack(enc, sizeof(enc), &m) == MSG_NACK_LEN);
        check_same(enc, p, MSG_NACK_LEN, MSG_NACK_LEN);
    }
}

static void try_stats(const uint8_t *p, size_t n)
{
    struct msg_stats m;
    uint8_t enc[MSG_STATS_LEN];
    int r = msg_decode_stats(p, n, &m);

    check_fixed(r, n, MSG_STATS_LEN);
    if (r != 0)
        return;
    FUZZ_CHECK(msg_encode_stats(enc, sizeof(enc), &m) == MSG_STATS_LEN);
    check_same(enc, p, MSG_STATS_LEN, MSG_STATS_LEN);
}

static void try_commands(const uint8_t *p, size_t n)
{
    struct msg_scenario_cmd sc;
    uint8_t enc[MSG_SET_SCENARIO_LEN];
    uint16_t v16;
    uint32_t v32;
    int r = msg_decode_scenario(p, n, &sc);

    check_fixed(r, n, MSG_SET_SCENARIO_LEN);
    if (r == 0) {
        FUZZ_CHECK(sc.id < MSG_SCEN_COUNT);
        check_name(msg_scenario_name(sc.id));
        FUZZ_CHECK(msg_scenario_name(sc.id) != NULL);
        FUZZ_CHECK(msg_encode_scenario(enc, sizeof(enc), &sc) ==
                   MSG_SET_SCENARIO_LEN);
        check_same(enc, p, MSG_SET_SCENARIO_LEN, MSG_SET_SCENARIO_LEN);
    }
    r = msg_decode_u16(p, n, &v16);
    check_fixed(r, n, 2);
    if (r == 0) {
        FUZZ_CHECK(msg_encode_u16(enc, sizeof(enc), v16) == 2);
        check_same(enc, p, 2, 2);
    }
    r = msg_decode_u32(p, n, &v32);
    check_fixed(r, n, 4);
    if (r == 0) {
        FUZZ_CHECK(msg_encode_u32(enc, sizeof(enc), v32) == 4);
        check_same(enc, p, 4, 4);
    }
}

static void try_upd_data(const uint8_t *p, size_t n)
{
    struct msg_upd_data m;
    uint8_t enc[FRAME_PAYLOAD_MAX];
    int r = msg_decode_upd_data(p, n, &m);

    check_code(r);
    FUZZ_CHECK((r == MSG_ELEN) == (n < MSG_UPD_DATA_HDR_LEN));
    if (r != 0)
        return;
    FUZZ_CHECK(m.len >= 1 && m.len <= MSG_UPD_CHUNK_MAX);
    FUZZ_CHECK(m.data == p + MSG_UPD_DATA_HDR_LEN);
    FUZZ_CHECK(MSG_UPD_DATA_HDR_LEN + m.len == n);
    FUZZ_CHECK(msg_encode_upd_data(enc, sizeof(enc), &m) == (int)n);
    check_same(enc, p, n, n);
}

static bool status_eq(const struct msg_upd_status *a,
                      const struct msg_upd_status *b)
{
    return a->req_seq == b->req_seq && a->req_type == b->req_type &&
           a->state == b->state && a->error == b->error && a->boot == b->boot &&
           a->chunk_max == b->chunk_max && a->stored == b->stored &&
           a->body_len == b->body_len && a->fw_version == b->fw_version &&
           a->window == b->window;
}

static void try_upd_status(const uint8_t *p, size_t n)
{
    struct msg_upd_status m, again;
    uint8_t enc[MSG_UPD_STATUS_LEN];
    int r = msg_decode_upd_status(p, n, &m);

    check_fixed(r, n, MSG_UPD_STATUS_LEN);
    if (r == MSG_ELEN)
        return;
    FUZZ_CHECK(msg_decode_upd_status(p, MSG_UPD_STATUS_LEN, &again) == r);
    FUZZ_CHECK(status_eq(&m, &again));
    check_name(msg_upd_error_name(m.error));
    check_name(msg_upd_state_name(m.state));
    check_name(msg_upd_type_name(m.req_type));
    if (r != 0)
        return;
    FUZZ_CHECK(m.state <= MSG_UPD_BOOTING && m.window != 0 &&
               m.stored <= m.body_len);
    FUZZ_CHECK(msg_upd_state_name(m.state) != NULL);
    FUZZ_CHECK(msg_encode_upd_status(enc, sizeof(enc), &m) ==
               MSG_UPD_STATUS_LEN);
    check_same(enc, p, MSG_UPD_STATUS_LEN, 21);
    FUZZ_CHECK(msg_decode_upd_status(enc, sizeof(enc), &again) == 0);
    FUZZ_CHECK(status_eq(&m, &again));
}

/* The image header as it comes (its CRC is almost never right), then
 * with its CRC fixed up so that the fields behind it are reached. */
static void try_image(const uint8_t *p, size_t n)
{
    struct image_hdr h;
    uint8_t fixed[IMAGE_HDR_LEN], enc[IMAGE_HDR_LEN];
    int r = image_decode(p, n, &h), want;

    FUZZ_CHECK(r == 0 || r == MSG_ELEN || r == IMAGE_EMAGIC ||
               r == IMAGE_EVERSION || r == IMAGE_ECRC);
    FUZZ_CHECK((r == MSG_ELEN) == (n < IMAGE_HDR_LEN));
    if (n < IMAGE_HDR_LEN)
        return;
    memcpy(fixed, p, IMAGE_HDR_LEN);
    wire_put_u32(&fixed[60], crc32c(fixed, 60));
    want = wire_get_u32(fixed) != IMAGE_MAGIC ? IMAGE_EMAGIC
           : fixed[4] != IMAGE_HDR_VERSION    ? IMAGE_EVERSION
                                              : 0;
    r = image_decode(fixed, sizeof(fixed), &h);
    FUZZ_CHECK(r == want);
    if (r != 0)
        return;
    FUZZ_CHECK(image_encode(enc, sizeof(enc), &h) == (int)IMAGE_HDR_LEN);
    FUZZ_CHECK(memcmp(enc, fixed, IMAGE_HDR_LEN) == 0);
}

/* ---- The frame around them ---- */

/* Encodes body and its CRC as a sender does; returns the wire length. */
static size_t to_wire(const uint8_t *body, size_t n, uint8_t *wire, size_t cap)
{
    uint8_t raw[FRAME_RAW_MAX];
    int len;

    memcpy(raw, body, n);
    wire_put_u32(&raw[n], crc32c(body, n));
    len = cobs_encode(wire, cap - 1, raw, n + FRAME_CRC_LEN);
    /* At most 254 bytes before stuffing: COBS adds exactly one. */
    FUZZ_CHECK(len >= 0 && (size_t)len == n + FRAME_CRC_LEN + 1);
    wire[len] = 0;
    return (size_t)len + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t wire[FRAME_WIRE_MAX], again[FRAME_WIRE_MAX];
    uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    struct frame_rx rx;
    struct frame f;
    size_t n = size < BODY_MAX ? size : BODY_MAX, wlen, plen;
    uint8_t *p;
    int r = FRAME_RX_MORE;

    if (n < FRAME_HDR_LEN)
        return 0;
    plen = n - FRAME_HDR_LEN;
    wlen = to_wire(data, n, wire, sizeof(wire));
    if (data[0] == FRAME_VERSION) {
        int k = frame_encode(again, sizeof(again), data[1],
                             (uint16_t)(data[2] | data[3] << 8),
                             data + FRAME_HDR_LEN, plen);

        FUZZ_CHECK(k >= 0 && (size_t)k == wlen);
        FUZZ_CHECK(memcmp(again, wire, wlen) == 0);
    }

    frame_rx_init(&rx, rxbuf, sizeof(rxbuf));
    for (size_t i = 0; i < wlen; i++) {
        r = frame_rx_push(&rx, wire[i], &f);
        FUZZ_CHECK(i + 1 == wlen || r == FRAME_RX_MORE);
    }
    if (data[0] != FRAME_VERSION) {
        FUZZ_CHECK(r == FRAME_EVERSION && rx.stats.version_errors == 1);
        return 0;
    }
    FUZZ_CHECK(r == FRAME_RX_OK && rx.stats.frames_ok == 1);
    FUZZ_CHECK(f.type == data[1] && f.len == plen);
    FUZZ_CHECK(f.seq == (uint16_t)(data[2] | data[3] << 8));
    FUZZ_CHECK(memcmp(f.payload, data + FRAME_HDR_LEN, plen) == 0);
    check_name(msg_type_name(f.type));
    check_name(msg_upd_type_name(f.type));

    p = malloc(plen == 0 ? 1 : plen);
    FUZZ_CHECK(p != NULL);
    memcpy(p, f.payload, plen);
    try_hello(p, plen);
    try_adc(p, plen);
    try_heap(p, plen);
    try_log(p, plen);
    try_pong(p, plen);
    try_ack(p, plen);
    try_stats(p, plen);
    try_commands(p, plen);
    try_upd_data(p, plen);
    try_upd_status(p, plen);
    try_image(p, plen);
    free(p);
    return 0;
}
