/* COBS: round trips at every length, the exact worst case, and the
 * streaming decoder's handling of bad input. */
#include <stdint.h>
#include <string.h>

#include "cobs.h"
#include "prng.h"
#include "suites.h"

#define LEN_MAX 1024u

static uint8_t in[LEN_MAX], enc[COBS_ENCODED_MAX(LEN_MAX)], dec[LEN_MAX];

static void round_trip(size_t n)
{
    int e = cobs_encode(enc, sizeof(enc), in, n);
    int d;

    ck_assert_int_gt(e, 0);
    ck_assert_uint_le((size_t)e, COBS_ENCODED_MAX(n));
    ck_assert_ptr_null(memchr(enc, 0, (size_t)e));
    d = cobs_decode(dec, sizeof(dec), enc, (size_t)e);
    ck_assert_int_eq(d, (int)n);
    ck_assert_mem_eq(dec, in, n);
}

START_TEST(test_cobs_round_trips_random_data_at_every_length)
{
    uint32_t rng = 7;

    for (size_t n = 0; n <= LEN_MAX; n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)prng_next(&rng);
        round_trip(n);
    }
}
END_TEST

START_TEST(test_cobs_round_trips_zeros_and_ff_at_every_length)
{
    for (size_t n = 0; n <= LEN_MAX; n++) {
        memset(in, 0, n);
        round_trip(n);
        memset(in, 0xff, n);
        round_trip(n);
    }
}
END_TEST

START_TEST(test_cobs_worst_case_is_exact_for_nonzero_input)
{
    for (size_t n = 0; n <= LEN_MAX; n++) {
        memset(in, 0xff, n);
        ck_assert_int_eq(cobs_encode(enc, sizeof(enc), in, n),
                         (int)COBS_ENCODED_MAX(n));
    }
    ck_assert_uint_eq(COBS_ENCODED_MAX(0), 1);
    ck_assert_uint_eq(COBS_ENCODED_MAX(253), 254);
    ck_assert_uint_eq(COBS_ENCODED_MAX(254), 255);
    ck_assert_uint_eq(COBS_ENCODED_MAX(255), 257);
}
END_TEST

START_TEST(test_cobs_boundary_lengths_encode_as_specified)
{
    /* 254 non-zero bytes: one full group and no trailing code byte. */
    memset(in, 0x11, 254);
    ck_assert_int_eq(cobs_encode(enc, sizeof(enc), in, 254), 255);
    ck_assert_uint_eq(enc[0], 0xff);
    /* 255: a full group, then a group of one. */
    memset(in, 0x11, 255);
    ck_assert_int_eq(cobs_encode(enc, sizeof(enc), in, 255), 257);
    ck_assert_uint_eq(enc[255], 0x02);
    /* 253 then a zero: the zero ends the first group, and an empty group
     * closes the block. */
    memset(in, 0x11, 253);
    in[253] = 0;
    ck_assert_int_eq(cobs_encode(enc, sizeof(enc), in, 254), 255);
    ck_assert_uint_eq(enc[0], 0xfe);
    ck_assert_uint_eq(enc[254], 0x01);
    /* 254 non-zero then a zero: a full group, then two code bytes. */
    memset(in, 0x11, 254);
    in[254] = 0;
    ck_assert_int_eq(cobs_encode(enc, sizeof(enc), in, 255), 257);
    ck_assert_uint_eq(enc[255], 0x01);
    ck_assert_uint_eq(enc[256], 0x01);
    /* A lone zero. */
    in[0] = 0;
    ck_assert_int_eq(cobs_encode(enc, sizeof(enc), in, 1), 2);
    ck_assert_uint_eq(enc[0], 1);
    ck_assert_uint_eq(enc[1], 1);
}
END_TEST

START_TEST(test_cobs_encode_refuses_a_short_buffer_at_every_size)
{
    memset(in, 0x22, 300);
    in[100] = 0;
    for (size_t cap = 0; cap < COBS_ENCODED_MAX(300); cap++) {
        int e = cobs_encode(enc, cap, in, 300);

        if (e >= 0)
            ck_assert_uint_le((size_t)e, cap);
    }
    ck_assert_int_eq(cobs_encode(enc, 10, in, 300), COBS_ENOSPC);
    ck_assert_int_eq(cobs_encode(enc, 0, in, 0), COBS_ENOSPC);
}
END_TEST

START_TEST(test_cobs_decode_rejects_truncated_zero_and_overflow)
{
    const uint8_t trunc[] = {0x05, 0x11, 0x22};
    const uint8_t zero[] = {0x03, 0x00, 0x22};
    const uint8_t ok[] = {0x03, 0x11, 0x22, 0x02, 0x33};

    ck_assert_int_eq(cobs_decode(dec, sizeof(dec), trunc, 3), COBS_ETRUNC);
    ck_assert_int_eq(cobs_decode(dec, sizeof(dec), zero, 3), COBS_EZERO);
    ck_assert_int_eq(cobs_decode(dec, sizeof(dec), ok, 0), COBS_ETRUNC);
    ck_assert_int_eq(cobs_decode(dec, 4, ok, sizeof(ok)), 4);
    ck_assert_int_eq(cobs_decode(dec, 3, ok, sizeof(ok)), COBS_ENOSPC);
    ck_assert_uint_eq(dec[2], 0x00);
}
END_TEST

START_TEST(test_cobs_stream_decoder_never_writes_past_its_buffer)
{
    uint8_t guard[16 + 8];
    struct cobs_dec d;
    uint32_t rng = 99;

    memset(guard, 0xaa, sizeof(guard));
    cobs_dec_init(&d, guard, 16);
    for (int i = 0; i < 100000; i++) {
        uint8_t b = (uint8_t)prng_next(&rng);
        int r = cobs_dec_push(&d, (i % 37) == 0 ? 0 : b);

        ck_assert(r == COBS_DEC_MORE || r == COBS_DEC_BLOCK ||
                  r == COBS_ENOSPC || r == COBS_ETRUNC);
        ck_assert_uint_le(d.len, 16);
    }
    for (size_t i = 16; i < sizeof(guard); i++)
        ck_assert_uint_eq(guard[i], 0xaa);
}
END_TEST

START_TEST(test_cobs_streaming_encoder_matches_one_shot)
{
    uint8_t enc2[COBS_ENCODED_MAX(LEN_MAX)];
    struct cobs_enc e;
    uint32_t rng = 3;

    for (size_t n = 0; n <= 600; n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)(prng_next(&rng) % 4 == 0 ? 0 : prng_next(&rng));
        cobs_enc_begin(&e, enc2, sizeof(enc2));
        for (size_t i = 0; i < n; i++)
            cobs_enc_put(&e, in[i]);
        ck_assert_int_eq(cobs_enc_end(&e),
                         cobs_encode(enc, sizeof(enc), in, n));
        ck_assert_mem_eq(enc, enc2, (size_t)cobs_enc_end(&e));
    }
}
END_TEST

Suite *cobs_suite(void)
{
    Suite *s = suite_create("cobs");
    TCase *tc = tcase_create("round_trip");
    TCase *edge = tcase_create("edge");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cobs_round_trips_random_data_at_every_length);
    tcase_add_test(tc, test_cobs_round_trips_zeros_and_ff_at_every_length);
    tcase_add_test(tc, test_cobs_streaming_encoder_matches_one_shot);
    suite_add_tcase(s, tc);
    tcase_add_test(edge, test_cobs_worst_case_is_exact_for_nonzero_input);
    tcase_add_test(edge, test_cobs_boundary_lengths_encode_as_specified);
    tcase_add_test(edge, test_cobs_encode_refuses_a_short_buffer_at_every_size);
    tcase_add_test(edge, test_cobs_decode_rejects_truncated_zero_and_overflow);
    tcase_add_test(edge, test_cobs_stream_decoder_never_writes_past_its_buffer);
    suite_add_tcase(s, edge);
    return s;
}
