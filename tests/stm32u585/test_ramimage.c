/* The STM32U585 bootloader's check of its factory image
 * (mcu-firmware/port/stm32u585/ramimage.c), run on the host: the port
 * cannot run here (no board, no emulator of the part), but this check is
 * portable C, and it decides whether the MCU starts whatever OpenOCD or
 * the build left in the factory region.  Each test lays out a 64 KiB
 * region as the flash would hold it, an update image then erased bytes,
 * and damages one thing.  The last test checks the image the build
 * embeds in tether-fw.elf ($TETHER_U585_IMG, port.mk's tether-app.img),
 * so that the build and the bootloader agree. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "ramimage.h"
#include "sha256.h"
#include "update.h"

#define REGION_SIZE U585_FACTORY_SIZE
#define ERASED      0xffu

static uint8_t region[REGION_SIZE];
static unsigned feeds;

static void feed(void)
{
    feeds++;
}

static struct image_hdr good_header(uint32_t body_len)
{
    struct image_hdr h;

    memset(&h, 0, sizeof(h));
    h.magic = IMAGE_MAGIC;
    h.hdr_version = IMAGE_HDR_VERSION;
    h.board = MSG_BOARD_STM32U585;
    h.flags = IMAGE_FLAG_RAM;
    h.fw_version = 0x000200;
    h.build_id = 0x1a2b3c4d;
    h.body_len = body_len;
    h.load_addr = U585_EXEC_BASE;
    h.entry = 0;
    return h;
}

/* Writes header h over the region; the hash is the body's in the region
 * unless keep_hash. */
static void put_header(struct image_hdr *h, int keep_hash)
{
    uint32_t n = h->body_len;

    if (!keep_hash) {
        if (n > REGION_SIZE - IMAGE_HDR_LEN)
            n = REGION_SIZE - IMAGE_HDR_LEN;
        sha256_digest(region + IMAGE_HDR_LEN, n, h->hash);
    }
    ck_assert_int_eq(image_encode(region, IMAGE_HDR_LEN, h), IMAGE_HDR_LEN);
}

/* An erased region with an image of body_len bytes at its start. */
static struct image_hdr lay_out(uint32_t body_len)
{
    struct image_hdr h = good_header(body_len);

    memset(region, ERASED, sizeof(region));
    for (uint32_t i = 0; i < body_len && i < REGION_SIZE - IMAGE_HDR_LEN; i++)
        region[IMAGE_HDR_LEN + i] = (uint8_t)(i * 7u + 3u);
    put_header(&h, 0);
    return h;
}

static int check(struct image_hdr *got)
{
    return ramimage_check(region, REGION_SIZE, feed, got);
}

static void setup(void)
{
    feeds = 0;
}

START_TEST(test_ramimage_good_image_checks_and_gives_its_header)
{
    struct image_hdr want = lay_out(12000), got;

    ck_assert_int_eq(check(&got), 0);
    ck_assert_uint_eq(got.body_len, 12000);
    ck_assert_uint_eq(got.fw_version, want.fw_version);
    ck_assert_uint_eq(got.load_addr, U585_EXEC_BASE);
    ck_assert_mem_eq(got.hash, want.hash, IMAGE_HASH_LEN);
}
END_TEST

START_TEST(test_ramimage_largest_body_fills_the_region_exactly)
{
    struct image_hdr got;

    lay_out(U585_BODY_MAX);
    ck_assert_uint_eq(U585_BODY_MAX + IMAGE_HDR_LEN, REGION_SIZE);
    ck_assert_int_eq(check(&got), 0);
    ck_assert_uint_eq(got.body_len, U585_BODY_MAX);
}
END_TEST

START_TEST(test_ramimage_feeds_the_watchdog_while_hashing_a_long_body)
{
    struct image_hdr got;

    lay_out(U585_BODY_MAX);
    ck_assert_int_eq(check(&got), 0);
    /* One feed per block hashed, whole or not. */
    ck_assert_uint_eq(feeds, (U585_BODY_MAX + RAMIMAGE_FEED_EVERY - 1) /
                                 RAMIMAGE_FEED_EVERY);
}
END_TEST

START_TEST(test_ramimage_erased_region_has_no_header)
{
    struct image_hdr got;

    memset(region, ERASED, sizeof(region));
    ck_assert_int_eq(check(&got), RAMIMAGE_EHEADER);
    memset(region, 0, sizeof(region));
    ck_assert_int_eq(check(&got), RAMIMAGE_EHEADER);
    ck_assert_uint_eq(feeds, 0);
}
END_TEST

/* The flat binary alone, as the factory region held it before it held
 * whole images: its vector table is not a header. */
START_TEST(test_ramimage_flat_binary_without_header_is_refused)
{
    static const uint8_t vectors[] = {0x00, 0xf0, 0x0b, 0x20,
                                      0x41, 0x01, 0x00, 0x20};
    struct image_hdr got;

    memset(region, ERASED, sizeof(region));
    memcpy(region, vectors, sizeof(vectors));
    ck_assert_int_eq(check(&got), RAMIMAGE_EHEADER);
}
END_TEST

START_TEST(test_ramimage_damaged_header_fails_its_crc)
{
    struct image_hdr got;

    lay_out(4096);
    region[16] ^= 0x01; /* body_len, under the CRC */
    ck_assert_int_eq(check(&got), RAMIMAGE_EHEADER);
    lay_out(4096);
    region[IMAGE_HDR_LEN - 1] ^= 0x80; /* the CRC itself */
    ck_assert_int_eq(check(&got), RAMIMAGE_EHEADER);
}
END_TEST

START_TEST(test_ramimage_unknown_header_version_is_refused)
{
    struct image_hdr h = lay_out(4096), got;

    h.hdr_version = IMAGE_HDR_VERSION + 1;
    put_header(&h, 1);
    ck_assert_int_eq(check(&got), RAMIMAGE_EHEADER);
}
END_TEST

START_TEST(test_ramimage_image_for_another_board_is_refused)
{
    struct image_hdr h = lay_out(4096), got;

    h.board = MSG_BOARD_MPS2_AN505;
    put_header(&h, 1);
    ck_assert_int_eq(check(&got), RAMIMAGE_EBOARD);
}
END_TEST

START_TEST(
    test_ramimage_image_not_ram_loaded_at_the_execution_region_is_refused)
{
    struct image_hdr h, got;

    h = lay_out(4096);
    h.flags = 0;
    h.load_addr = 0;
    put_header(&h, 1);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);

    h = lay_out(4096);
    h.flags = IMAGE_FLAG_RAM | 0x0002u;
    put_header(&h, 1);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);

    h = lay_out(4096);
    h.load_addr = U585_EXEC_BASE + 0x100;
    put_header(&h, 1);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);

    h = lay_out(4096);
    h.entry = 0x100;
    put_header(&h, 1);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);
    ck_assert_uint_eq(feeds, 0);
}
END_TEST

START_TEST(test_ramimage_body_too_short_or_too_long_is_refused)
{
    struct image_hdr got;

    lay_out(7);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);
    lay_out(0);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);
    lay_out(8);
    ck_assert_int_eq(check(&got), 0);
    /* Would fit the execution region, not the factory region behind its
     * header: refused before a byte past the region is read. */
    lay_out(U585_BODY_MAX + 1);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);
    lay_out(U585_EXEC_SIZE);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);
    lay_out(0xffffffffu);
    ck_assert_int_eq(check(&got), RAMIMAGE_ELAYOUT);
    ck_assert_uint_eq(feeds, 1);
}
END_TEST

START_TEST(test_ramimage_body_past_a_smaller_region_is_refused_unread)
{
    struct image_hdr got;

    lay_out(8192);
    ck_assert_int_eq(ramimage_check(region, IMAGE_HDR_LEN + 8191, feed, &got),
                     RAMIMAGE_ESIZE);
    ck_assert_int_eq(ramimage_check(region, IMAGE_HDR_LEN - 1, feed, &got),
                     RAMIMAGE_EHEADER);
    ck_assert_int_eq(ramimage_check(region, IMAGE_HDR_LEN + 8192, feed, &got),
                     0);
}
END_TEST

START_TEST(test_ramimage_one_flipped_body_bit_fails_the_hash)
{
    struct image_hdr got;

    lay_out(20000);
    region[IMAGE_HDR_LEN + 19999] ^= 0x40;
    ck_assert_int_eq(check(&got), RAMIMAGE_EHASH);
    lay_out(20000);
    region[IMAGE_HDR_LEN] ^= 0x01;
    ck_assert_int_eq(check(&got), RAMIMAGE_EHASH);
}
END_TEST

/* A write cut short: the header of the new image, the erased rest. */
START_TEST(test_ramimage_body_cut_short_by_an_interrupted_write_fails)
{
    struct image_hdr got;

    lay_out(30000);
    memset(region + IMAGE_HDR_LEN + 16384, ERASED,
           REGION_SIZE - IMAGE_HDR_LEN - 16384);
    ck_assert_int_eq(check(&got), RAMIMAGE_EHASH);
}
END_TEST

/* Bytes after the body (an older, longer image) do not matter. */
START_TEST(test_ramimage_bytes_after_the_body_are_not_checked)
{
    struct image_hdr got;

    lay_out(5000);
    memset(region + IMAGE_HDR_LEN + 5000, 0x5a,
           REGION_SIZE - IMAGE_HDR_LEN - 5000);
    ck_assert_int_eq(check(&got), 0);
}
END_TEST

START_TEST(test_ramimage_layout_is_what_the_update_handler_accepts)
{
    struct image_hdr h = good_header(4096);

    ck_assert_int_eq(ramimage_layout(&h), 0);
    h.board = MSG_BOARD_SIM; /* the handler checks the board apart */
    ck_assert_int_eq(ramimage_layout(&h), 0);
    h.body_len = U585_BODY_MAX;
    ck_assert_int_eq(ramimage_layout(&h), 0);
    h.body_len = U585_BODY_MAX + 1;
    ck_assert_int_eq(ramimage_layout(&h), RAMIMAGE_ELAYOUT);
}
END_TEST

/* The build's tether-app.img, in an erased region as boot.ld places it. */
START_TEST(test_ramimage_built_factory_image_checks)
{
    const char *path = getenv("TETHER_U585_IMG");
    struct image_hdr got;
    FILE *f;
    size_t n;

    ck_assert_msg(path != NULL, "set TETHER_U585_IMG (make check-u585)");
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    memset(region, ERASED, sizeof(region));
    n = fread(region, 1, sizeof(region), f);
    ck_assert_int_eq(fgetc(f), EOF); /* it fits the region */
    fclose(f);
    ck_assert_uint_gt(n, IMAGE_HDR_LEN);
    ck_assert_int_eq(check(&got), 0);
    ck_assert_uint_eq(got.body_len, n - IMAGE_HDR_LEN);
}
END_TEST

static Suite *ramimage_suite(void)
{
    Suite *s = suite_create("stm32u585 factory image");
    TCase *tc = tcase_create("check");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_ramimage_good_image_checks_and_gives_its_header);
    tcase_add_test(tc, test_ramimage_largest_body_fills_the_region_exactly);
    tcase_add_test(tc,
                   test_ramimage_feeds_the_watchdog_while_hashing_a_long_body);
    tcase_add_test(tc, test_ramimage_erased_region_has_no_header);
    tcase_add_test(tc, test_ramimage_flat_binary_without_header_is_refused);
    tcase_add_test(tc, test_ramimage_damaged_header_fails_its_crc);
    tcase_add_test(tc, test_ramimage_unknown_header_version_is_refused);
    tcase_add_test(tc, test_ramimage_image_for_another_board_is_refused);
    tcase_add_test(
        tc,
        test_ramimage_image_not_ram_loaded_at_the_execution_region_is_refused);
    tcase_add_test(tc, test_ramimage_body_too_short_or_too_long_is_refused);
    tcase_add_test(tc,
                   test_ramimage_body_past_a_smaller_region_is_refused_unread);
    tcase_add_test(tc, test_ramimage_one_flipped_body_bit_fails_the_hash);
    tcase_add_test(tc,
                   test_ramimage_body_cut_short_by_an_interrupted_write_fails);
    tcase_add_test(tc, test_ramimage_bytes_after_the_body_are_not_checked);
    tcase_add_test(tc, test_ramimage_layout_is_what_the_update_handler_accepts);
    tcase_add_test(tc, test_ramimage_built_factory_image_checks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ramimage_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
