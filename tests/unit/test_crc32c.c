/* CRC-32C: the catalogue check value and incremental use. */
#include <stdint.h>
#include <string.h>

#include "crc32c.h"
#include "suites.h"

START_TEST(test_crc32c_matches_the_catalogue_check_value)
{
    const char *s = "123456789";

    ck_assert_uint_eq(crc32c((const uint8_t *)s, 9), CRC32C_CHECK);
    ck_assert_uint_eq(CRC32C_CHECK, 0xe3069283u);
}
END_TEST

START_TEST(test_crc32c_of_nothing_is_zero)
{
    ck_assert_uint_eq(crc32c(NULL, 0), 0);
}
END_TEST

START_TEST(test_crc32c_in_pieces_equals_crc32c_at_once)
{
    uint8_t buf[300];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t cut = 0; cut <= sizeof(buf); cut += 13) {
        uint32_t st = crc32c_update(CRC32C_INIT, buf, cut);

        st = crc32c_update(st, buf + cut, sizeof(buf) - cut);
        ck_assert_uint_eq(crc32c_final(st), crc32c(buf, sizeof(buf)));
    }
}
END_TEST

START_TEST(test_crc32c_detects_every_single_bit_flip)
{
    uint8_t buf[64];
    uint32_t good;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i ^ 0x5a);
    good = crc32c(buf, sizeof(buf));
    for (size_t bit = 0; bit < 8 * sizeof(buf); bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ck_assert_uint_ne(crc32c(buf, sizeof(buf)), good);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}
END_TEST

Suite *crc32c_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_crc32c_matches_the_catalogue_check_value);
    tcase_add_test(tc, test_crc32c_of_nothing_is_zero);
    tcase_add_test(tc, test_crc32c_in_pieces_equals_crc32c_at_once);
    tcase_add_test(tc, test_crc32c_detects_every_single_bit_flip);
    suite_add_tcase(s, tc);
    return s;
}
