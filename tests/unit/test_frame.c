/* The frame envelope and the receiver: round trips, a recorded stream in
 * random chunks, and every kind of damage a line can do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "frame.h"
#include "prng.h"
#include "suites.h"
#include "test_util.h"
#include "wire.h"

#define STREAM_MAX (64u * 1024u)

static uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];

struct sink {
    struct frame_rx rx;
    unsigned ok;
    int last_err;
    unsigned errors;
    struct frame last;
    uint8_t last_payload[FRAME_PAYLOAD_MAX];
};

static void sink_init(struct sink *s)
{
    memset(s, 0, sizeof(*s));
    frame_rx_init(&s->rx, rxbuf, sizeof(rxbuf));
}

static void feed(struct sink *s, const uint8_t *p, size_t n)
{
    struct frame f;

    for (size_t i = 0; i < n; i++) {
        int r = frame_rx_push(&s->rx, p[i], &f);

        if (r == FRAME_RX_OK) {
            s->ok++;
            s->last = f;
            memcpy(s->last_payload, f.payload, f.len);
        } else if (r < 0) {
            s->errors++;
            s->last_err = r;
        }
    }
}

static int make_frame(uint8_t *out, uint8_t type, uint16_t seq, size_t len,
                      uint8_t fill)
{
    uint8_t payload[FRAME_PAYLOAD_MAX];

    for (size_t i = 0; i < len; i++)
        payload[i] = (uint8_t)(fill + i);
    return frame_encode(out, FRAME_WIRE_MAX, type, seq, payload, len);
}

START_TEST(test_frame_round_trips_every_payload_length)
{
    uint8_t wire[FRAME_WIRE_MAX];
    struct sink s;

    sink_init(&s);
    for (size_t len = 0; len <= FRAME_PAYLOAD_MAX; len++) {
        int n =
            make_frame(wire, 0x02, (uint16_t)(len * 257), len, (uint8_t)len);

        ck_assert_int_gt(n, 0);
        ck_assert_uint_le((size_t)n, FRAME_WIRE_LEN(len));
        ck_assert_uint_eq(wire[n - 1], 0);
        feed(&s, wire, (size_t)n);
        ck_assert_uint_eq(s.ok, len + 1);
        ck_assert_uint_eq(s.last.type, 0x02);
        ck_assert_uint_eq(s.last.seq, (uint16_t)(len * 257));
        ck_assert_uint_eq(s.last.len, len);
        for (size_t i = 0; i < len; i++)
            ck_assert_uint_eq(s.last_payload[i], (uint8_t)(len + i));
    }
    ck_assert_uint_eq(s.errors, 0);
    ck_assert_uint_eq(FRAME_WIRE_MAX, 256);
}
END_TEST

START_TEST(test_frame_encode_refuses_long_payloads_and_short_buffers)
{
    uint8_t wire[FRAME_WIRE_MAX + 8];
    uint8_t payload[FRAME_PAYLOAD_MAX + 1] = {0};

    ck_assert_int_eq(
        frame_encode(wire, sizeof(wire), 1, 0, payload, FRAME_PAYLOAD_MAX + 1),
        FRAME_EINVAL);
    ck_assert_int_eq(frame_encode(wire, 5, 1, 0, payload, 10), FRAME_ENOSPC);
    ck_assert_int_eq(frame_encode(wire, 0, 1, 0, payload, 0), FRAME_ENOSPC);
}
END_TEST

/* The recorded stream and its expected decoding: one line per frame,
 * "ok TYPE SEQ LEN" or "err CODE", as tether-sim produced it. */
START_TEST(test_frame_recorded_stream_in_random_chunks_matches_check_file)
{
    static uint8_t stream[STREAM_MAX];
    char expect[64], got[64];
    size_t n = test_read_data("sim-seed1.bin", stream, sizeof(stream));
    FILE *chk = test_open_data("sim-seed1.chk");
    uint32_t rng = 12345;
    struct frame_rx rx;
    struct frame f;
    unsigned lines = 0;

    frame_rx_init(&rx, rxbuf, sizeof(rxbuf));
    for (size_t at = 0; at < n;) {
        size_t chunk = prng_range(&rng, 1, 64);

        if (chunk > n - at)
            chunk = n - at;
        for (size_t i = at; i < at + chunk; i++) {
            int r = frame_rx_push(&rx, stream[i], &f);

            if (r == FRAME_RX_MORE)
                continue;
            if (r == FRAME_RX_OK)
                snprintf(got, sizeof(got), "ok %u %u %zu\n", f.type, f.seq,
                         f.len);
            else
                snprintf(got, sizeof(got), "err %d\n", r);
            ck_assert_msg(fgets(expect, sizeof(expect), chk) != NULL,
                          "more frames than the check file lists");
            ck_assert_str_eq(got, expect);
            lines++;
        }
        at += chunk;
    }
    ck_assert_msg(fgets(expect, sizeof(expect), chk) == NULL,
                  "fewer frames than the check file lists");
    ck_assert_uint_gt(lines, 50);
    fclose(chk);
}
END_TEST

START_TEST(test_frame_resyncs_after_leading_garbage)
{
    uint8_t stream[600];
    size_t at = 0;
    struct sink s;
    int n, first;

    /* Garbage with no delimiter runs into the first frame, which is lost;
     * the frame after it must come through. */
    for (unsigned i = 0; i < 40; i++)
        stream[at++] = (uint8_t)(0x80 + i);
    first = make_frame(&stream[at], 3, 1, 20, 1);
    at += (size_t)first;
    n = make_frame(&stream[at], 3, 2, 20, 2);
    at += (size_t)n;

    sink_init(&s);
    feed(&s, stream, at);
    ck_assert_uint_eq(s.ok, 1);
    ck_assert_uint_eq(s.last.seq, 2);
    ck_assert_uint_eq(s.errors, 1);
    ck_assert_uint_eq(s.rx.stats.crc_errors + s.rx.stats.cobs_errors, 1);
    ck_assert_uint_eq(s.rx.stats.discarded, 40u + (unsigned)first - 1u);
}
END_TEST

START_TEST(test_frame_every_single_bit_flip_is_rejected_and_next_frame_ok)
{
    uint8_t a[FRAME_WIRE_MAX], b[FRAME_WIRE_MAX], c[FRAME_WIRE_MAX];
    int na = make_frame(a, 2, 10, 100, 0x30);
    int nb = make_frame(b, 2, 11, 100, 0x40);
    int nc = make_frame(c, 2, 12, 100, 0x50);

    for (int bit = 0; bit < 8 * na; bit++) {
        struct sink s;

        sink_init(&s);
        a[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        feed(&s, a, (size_t)na);
        feed(&s, b, (size_t)nb);
        feed(&s, c, (size_t)nc);
        a[bit / 8] ^= (uint8_t)(1u << (bit % 8));

        /* The damaged frame never comes through; c always does, and b
         * too unless the flip hit a's delimiter and merged the two. */
        ck_assert_uint_ge(s.errors, 1);
        ck_assert_uint_eq(s.last.seq, 12);
        if (bit / 8 != na - 1)
            ck_assert_uint_eq(s.ok, 2);
        else
            ck_assert_uint_eq(s.ok, 1);
        ck_assert_uint_eq(s.rx.stats.frames_ok, s.ok);
        ck_assert_uint_eq(s.rx.stats.crc_errors + s.rx.stats.cobs_errors +
                              s.rx.stats.oversize,
                          s.errors);
    }
}
END_TEST

START_TEST(test_frame_truncated_frames_are_rejected)
{
    uint8_t a[FRAME_WIRE_MAX], b[FRAME_WIRE_MAX];
    int na = make_frame(a, 4, 1, 50, 0x11);
    int nb = make_frame(b, 4, 2, 50, 0x22);

    for (int cut = 1; cut < na - 1; cut++) {
        struct sink s;
        const uint8_t zero = 0;

        sink_init(&s);
        feed(&s, a, (size_t)cut); /* the line died mid-frame */
        feed(&s, &zero, 1);
        feed(&s, b, (size_t)nb);
        ck_assert_uint_eq(s.ok, 1);
        ck_assert_uint_eq(s.last.seq, 2);
        ck_assert_uint_eq(s.errors, 1);
        ck_assert_uint_eq(s.rx.stats.discarded, (unsigned)cut);
    }
}
END_TEST

START_TEST(test_frame_oversize_frame_is_counted_and_next_frame_ok)
{
    uint8_t big[600], b[FRAME_WIRE_MAX];
    int nb = make_frame(b, 4, 9, 10, 0x22);
    struct sink s;

    memset(big, 0x41, sizeof(big));
    big[sizeof(big) - 1] = 0;
    sink_init(&s);
    feed(&s, big, sizeof(big));
    feed(&s, b, (size_t)nb);
    ck_assert_uint_eq(s.rx.stats.oversize, 1);
    ck_assert_uint_eq(s.rx.stats.discarded, sizeof(big) - 1);
    ck_assert_uint_eq(s.ok, 1);
    ck_assert_uint_eq(s.last.seq, 9);
}
END_TEST

START_TEST(test_frame_small_receive_buffer_rejects_long_frames_as_oversize)
{
    uint8_t small[FRAME_RX_BUF_LEN(8)];
    uint8_t w[FRAME_WIRE_MAX];
    struct frame_rx rx;
    struct frame f;
    int n, r = 0;

    frame_rx_init(&rx, small, sizeof(small));
    n = make_frame(w, 4, 1, 9, 0);
    for (int i = 0; i < n; i++)
        r = frame_rx_push(&rx, w[i], &f);
    ck_assert_int_eq(r, FRAME_EOVERSIZE);
    n = make_frame(w, 4, 2, 8, 0);
    for (int i = 0; i < n; i++)
        r = frame_rx_push(&rx, w[i], &f);
    ck_assert_int_eq(r, FRAME_RX_OK);
    ck_assert_uint_eq(f.len, 8);
}
END_TEST

START_TEST(test_frame_other_version_is_rejected_loudly_not_parsed)
{
    uint8_t raw[FRAME_HDR_LEN + 4 + FRAME_CRC_LEN] = {2, 0x03, 1, 0,
                                                      1, 2,    3, 4};
    uint8_t w[FRAME_WIRE_MAX];
    struct sink s;
    int n;

    wire_put_u32(&raw[8], crc32c(raw, 8));
    n = cobs_encode(w, sizeof(w), raw, sizeof(raw));
    ck_assert_int_gt(n, 0);
    w[n++] = 0;
    sink_init(&s);
    feed(&s, w, (size_t)n);
    ck_assert_uint_eq(s.ok, 0);
    ck_assert_int_eq(s.last_err, FRAME_EVERSION);
    ck_assert_uint_eq(s.rx.stats.version_errors, 1);
    ck_assert_uint_eq(s.rx.stats.crc_errors, 0);
    ck_assert_str_eq(frame_strerror(FRAME_EVERSION),
                     "unsupported protocol version");
}
END_TEST

START_TEST(test_frame_runts_and_empty_frames)
{
    const uint8_t runt[] = {0x04, 0x01, 0x02, 0x03, 0x00};
    const uint8_t empties[] = {0, 0, 0, 0};
    struct sink s;

    sink_init(&s);
    feed(&s, empties, sizeof(empties));
    ck_assert_uint_eq(s.errors, 0);
    feed(&s, runt, sizeof(runt));
    ck_assert_uint_eq(s.rx.stats.cobs_errors, 1);
    ck_assert_uint_eq(s.rx.stats.discarded, 4);
}
END_TEST

START_TEST(test_frame_random_noise_never_yields_a_frame)
{
    struct sink s;
    uint32_t rng = 77;
    uint8_t buf[4096];

    sink_init(&s);
    for (int round = 0; round < 256; round++) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)prng_next(&rng);
        feed(&s, buf, sizeof(buf));
    }
    /* 1 MiB of noise: a false frame needs a CRC-32C match (2^-32 odds per
     * candidate) and a version byte of 1. */
    ck_assert_uint_eq(s.ok, 0);
    ck_assert_uint_gt(s.errors, 1000);
}
END_TEST

/* One result of a receiver: what frame_rx_push() said at a byte, and the
 * frame when there was one. */
struct outcome {
    size_t at; /* index of the byte in the stream */
    int r;
    uint8_t type;
    uint16_t seq;
    size_t len;
    uint32_t crc; /* of the payload */
};

/* A stream of good frames of every size, with damage between and inside
 * them: bit flips, truncations, zero runs, noise and oversize blocks. */
static size_t noisy_stream(uint8_t *out, size_t cap, uint32_t *rng)
{
    size_t n = 0;

    while (n + 2 * FRAME_WIRE_MAX + 8 < cap) {
        uint32_t what = prng_range(rng, 0, 9);
        int len = make_frame(
            out + n, (uint8_t)prng_next(rng), (uint16_t)prng_next(rng),
            prng_range(rng, 0, FRAME_PAYLOAD_MAX), (uint8_t)prng_next(rng));

        ck_assert_int_gt(len, 0);
        if (what == 0) /* a flipped bit */
            out[n + prng_range(rng, 0, (uint32_t)len - 1)] ^=
                (uint8_t)(1u << prng_range(rng, 0, 7));
        else if (what == 1) /* cut short by a delimiter */
            len = (int)prng_range(rng, 1, (uint32_t)len - 1),
            out[n + len++] = 0;
        n += (size_t)len;
        if (what == 2) /* noise, zeros among it */
            for (uint32_t k = prng_range(rng, 1, 40); k > 0; k--)
                out[n++] =
                    prng_range(rng, 0, 3) == 0 ? 0 : (uint8_t)prng_next(rng);
        else if (what == 3) /* a block too long for any frame */
            for (uint32_t k = 0; k < FRAME_WIRE_MAX + 10; k++)
                out[n++] = (uint8_t)(k % 255u + 1u);
    }
    return n;
}

static size_t outcomes_push(const uint8_t *p, size_t n, struct outcome *o,
                            size_t max, struct frame_stats *st)
{
    struct frame_rx rx;
    struct frame f;
    size_t k = 0;

    frame_rx_init(&rx, rxbuf, sizeof(rxbuf));
    for (size_t i = 0; i < n; i++) {
        int r = frame_rx_push(&rx, p[i], &f);

        if (r == FRAME_RX_MORE)
            continue;
        ck_assert_uint_lt(k, max);
        o[k] = (struct outcome){i, r, 0, 0, 0, 0};
        if (r == FRAME_RX_OK)
            o[k] = (struct outcome){i,     r,     f.type,
                                    f.seq, f.len, crc32c(f.payload, f.len)};
        k++;
    }
    *st = rx.stats;
    return k;
}

/* The same through frame_rx_feed(), in chunks of random sizes. */
static size_t outcomes_feed(const uint8_t *p, size_t n, struct outcome *o,
                            size_t max, struct frame_stats *st, uint32_t *rng)
{
    struct frame_rx rx;
    struct frame f;
    size_t k = 0, i = 0;

    frame_rx_init(&rx, rxbuf, sizeof(rxbuf));
    while (i < n) {
        size_t end = i + prng_range(rng, 1, 700), used;

        if (end > n)
            end = n;
        while (i < end) {
            int r = frame_rx_feed(&rx, p + i, end - i, &used, &f);

            ck_assert_uint_ge(used, 1);
            ck_assert_uint_le(used, end - i);
            i += used;
            if (r == FRAME_RX_MORE) {
                ck_assert_uint_eq(i, end);
                continue;
            }
            ck_assert_uint_lt(k, max);
            o[k] = (struct outcome){i - 1, r, 0, 0, 0, 0};
            if (r == FRAME_RX_OK)
                o[k] = (struct outcome){i - 1, r,     f.type,
                                        f.seq, f.len, crc32c(f.payload, f.len)};
            k++;
        }
    }
    *st = rx.stats;
    return k;
}

START_TEST(test_frame_feed_gives_what_push_gives_byte_for_byte)
{
    enum { OUTCOMES_MAX = 8192 };
    static uint8_t stream[4 * STREAM_MAX];
    static struct outcome a[OUTCOMES_MAX], b[OUTCOMES_MAX];
    uint32_t rng = 2024;

    for (int round = 0; round < 8; round++) {
        size_t n = noisy_stream(stream, sizeof(stream), &rng);
        struct frame_stats sa, sb;
        size_t na = outcomes_push(stream, n, a, OUTCOMES_MAX, &sa);
        size_t nb = outcomes_feed(stream, n, b, OUTCOMES_MAX, &sb, &rng);
        size_t ok = 0;

        ck_assert_uint_eq(na, nb);
        for (size_t k = 0; k < na; k++) {
            ck_assert_uint_eq(a[k].at, b[k].at);
            ck_assert_int_eq(a[k].r, b[k].r);
            ck_assert_uint_eq(a[k].type, b[k].type);
            ck_assert_uint_eq(a[k].seq, b[k].seq);
            ck_assert_uint_eq(a[k].len, b[k].len);
            ck_assert_uint_eq(a[k].crc, b[k].crc);
            ok += a[k].r == FRAME_RX_OK;
        }
        ck_assert_mem_eq(&sa, &sb, sizeof(sa));
        /* The stream exercised every path. */
        ck_assert_uint_gt(ok, 100);
        ck_assert_uint_gt(sa.crc_errors, 5);
        ck_assert_uint_gt(sa.oversize, 5);
        ck_assert_uint_gt(sa.cobs_errors, 5);
    }
}
END_TEST

Suite *frame_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("envelope");
    TCase *damage = tcase_create("damage");

    tcase_add_test(tc, test_frame_round_trips_every_payload_length);
    tcase_add_test(tc,
                   test_frame_encode_refuses_long_payloads_and_short_buffers);
    tcase_add_test(
        tc, test_frame_recorded_stream_in_random_chunks_matches_check_file);
    suite_add_tcase(s, tc);
    tcase_set_timeout(damage, 30);
    tcase_add_test(damage, test_frame_resyncs_after_leading_garbage);
    tcase_add_test(
        damage, test_frame_every_single_bit_flip_is_rejected_and_next_frame_ok);
    tcase_add_test(damage, test_frame_truncated_frames_are_rejected);
    tcase_add_test(damage,
                   test_frame_oversize_frame_is_counted_and_next_frame_ok);
    tcase_add_test(
        damage,
        test_frame_small_receive_buffer_rejects_long_frames_as_oversize);
    tcase_add_test(damage,
                   test_frame_other_version_is_rejected_loudly_not_parsed);
    tcase_add_test(damage, test_frame_runts_and_empty_frames);
    tcase_add_test(damage, test_frame_random_noise_never_yields_a_frame);
    tcase_add_test(damage, test_frame_feed_gives_what_push_gives_byte_for_byte);
    suite_add_tcase(s, damage);
    return s;
}
