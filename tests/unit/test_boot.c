/* The boot record and the bootloader's choice (mcu-firmware/update/boot.c):
 * the life of an update (test boot once, confirm or revert), what a
 * damaged record or slot falls back to, and random sequences of events
 * against the invariants the whole scheme rests on: only a verified image
 * is ever started on test, a test image is started once, and the active
 * image is always the factory image or a confirmed one. */
#include <string.h>

#include "boot.h"
#include "port_fake.h"
#include "sha256.h"
#include "suites.h"

static struct image_hdr image_of(const uint8_t *body, uint32_t len,
                                 uint32_t version)
{
    struct image_hdr h;

    memset(&h, 0, sizeof(h));
    h.magic = IMAGE_MAGIC;
    h.hdr_version = IMAGE_HDR_VERSION;
    h.board = PORT_BOARD_ID;
    h.fw_version = version;
    h.body_len = len;
    sha256_digest(body, len, h.hash);
    return h;
}

/* Puts body into the fake's slot as an upload would. */
static struct image_hdr flash_slot(uint8_t slot, uint32_t len, uint8_t seed,
                                   uint32_t version)
{
    ck_assert_int_eq(port_slot_erase(slot, len), 0);
    for (uint32_t i = 0; i < len; i++)
        port_fake.slot[slot][i] = (uint8_t)(i * 31u + seed);
    port_fake.written[slot] = len;
    return image_of(port_fake.slot[slot], len, version);
}

static void setup(void)
{
    memset(&port_fake, 0, sizeof(port_fake));
    port_fake.flash = true;
}

START_TEST(test_boot_fresh_record_runs_the_factory_image)
{
    struct boot_record r;

    boot_record_init(&r);
    ck_assert(boot_record_valid(&r));
    ck_assert_uint_eq(boot_choose(&r), BOOT_FACTORY);
    ck_assert_uint_eq(boot_flags(&r), MSG_UPD_BOOT_FACTORY);
    ck_assert_uint_eq(boot_target_slot(&r), 0);
    ck_assert(!boot_confirm(&r));
}
END_TEST

START_TEST(test_boot_record_damage_or_bad_ranges_make_it_invalid)
{
    struct image_hdr h = flash_slot(1, 100, 7, 0x000200);
    struct boot_record r, bad;

    boot_record_init(&r);
    boot_set_pending(&r, 1, &h);
    boot_record_seal(&r);
    ck_assert(boot_record_valid(&r));
    /* Each field changed without a new seal. */
    bad = r;
    bad.magic ^= 1u;
    ck_assert(!boot_record_valid(&bad));
    bad = r;
    bad.pending = 0;
    ck_assert(!boot_record_valid(&bad));
    bad = r;
    bad.flags ^= MSG_UPD_BOOT_REVERTED;
    ck_assert(!boot_record_valid(&bad));
    bad = r;
    bad.slot[1].hash[31] ^= 0x80u;
    ck_assert(!boot_record_valid(&bad));
    bad = r;
    bad.slot[0].body_len = 5;
    ck_assert(!boot_record_valid(&bad));
    bad = r;
    bad.crc ^= 1u;
    ck_assert(!boot_record_valid(&bad));
    /* Sealed, but out of range: a foreign record, not ours. */
    bad = r;
    bad.active = 2;
    boot_record_seal(&bad);
    ck_assert(!boot_record_valid(&bad));
    bad = r;
    bad.slot[0].state = BOOT_SLOT_GOOD + 1;
    boot_record_seal(&bad);
    ck_assert(!boot_record_valid(&bad));
    bad = r;
    bad.flags = 0x80;
    boot_record_seal(&bad);
    ck_assert(!boot_record_valid(&bad));
}
END_TEST

START_TEST(test_boot_test_image_runs_once_then_reverts_without_confirm)
{
    struct image_hdr h = flash_slot(0, 300, 1, 0x000200);
    struct boot_record r;

    boot_record_init(&r);
    boot_set_pending(&r, 0, &h);
    ck_assert_uint_eq(boot_choose(&r), 0);
    ck_assert_uint_eq(boot_flags(&r), MSG_UPD_BOOT_TEST);
    ck_assert_uint_eq(r.slot[0].state, BOOT_SLOT_TEST);
    ck_assert_uint_eq(r.pending, BOOT_FACTORY);
    /* The test image is reset without a CONFIRM: back to factory. */
    ck_assert_uint_eq(boot_choose(&r), BOOT_FACTORY);
    ck_assert_uint_eq(boot_flags(&r),
                      MSG_UPD_BOOT_FACTORY | MSG_UPD_BOOT_REVERTED);
    ck_assert_uint_eq(r.slot[0].state, BOOT_SLOT_EMPTY);
    /* And it stays there: the failed image is never started again. */
    ck_assert_uint_eq(boot_choose(&r), BOOT_FACTORY);
    ck_assert(!boot_confirm(&r));
}
END_TEST

START_TEST(test_boot_confirmed_image_stays_and_the_next_goes_elsewhere)
{
    struct image_hdr v2 = flash_slot(0, 300, 1, 0x000200);
    struct image_hdr v3 = flash_slot(1, 400, 2, 0x000300);
    struct boot_record r;

    boot_record_init(&r);
    boot_set_pending(&r, 0, &v2);
    ck_assert_uint_eq(boot_choose(&r), 0);
    ck_assert_uint_eq(boot_target_slot(&r), 1);
    ck_assert(boot_confirm(&r));
    ck_assert_uint_eq(boot_flags(&r), 0); /* slot 0, confirmed */
    ck_assert_uint_eq(r.active, 0);
    ck_assert_uint_eq(boot_choose(&r), 0);
    ck_assert_uint_eq(boot_choose(&r), 0);
    ck_assert(!boot_confirm(&r)); /* already confirmed */

    /* v3 into the other slot, on test, then confirmed: slot 0 is freed. */
    ck_assert_uint_eq(boot_target_slot(&r), 1);
    boot_set_pending(&r, 1, &v3);
    ck_assert_uint_eq(boot_choose(&r), 1);
    ck_assert_uint_eq(boot_flags(&r), MSG_UPD_BOOT_TEST | MSG_UPD_BOOT_SLOT1);
    /* While it is on test no slot is free. */
    ck_assert_uint_eq(boot_target_slot(&r), BOOT_FACTORY);
    ck_assert(boot_confirm(&r));
    ck_assert_uint_eq(r.active, 1);
    ck_assert_uint_eq(r.slot[0].state, BOOT_SLOT_EMPTY);
    ck_assert_uint_eq(boot_target_slot(&r), 0);
    ck_assert_uint_eq(boot_choose(&r), 1);
}
END_TEST

START_TEST(test_boot_failed_test_slot_falls_back_to_the_active_image)
{
    struct image_hdr v2 = flash_slot(0, 300, 1, 0x000200);
    struct image_hdr v3 = flash_slot(1, 300, 2, 0x000300);
    struct boot_record r;

    boot_record_init(&r);
    boot_set_pending(&r, 0, &v2);
    boot_choose(&r);
    boot_confirm(&r);
    boot_set_pending(&r, 1, &v3);
    ck_assert_uint_eq(boot_choose(&r), 1);
    /* The bootloader finds slot 1 damaged: slot 0 runs, REVERTED. */
    ck_assert_uint_eq(boot_failed(&r, 1), 0);
    ck_assert_uint_eq(boot_flags(&r), MSG_UPD_BOOT_REVERTED);
    /* The active image itself damaged: the factory image. */
    ck_assert_uint_eq(boot_failed(&r, 0), BOOT_FACTORY);
    ck_assert_uint_eq(r.active, BOOT_FACTORY);
    ck_assert_uint_eq(r.slot[0].state, BOOT_SLOT_EMPTY);
}
END_TEST

START_TEST(test_boot_slot_verify_reads_back_and_tells_mismatch_from_read_error)
{
    struct image_hdr h = flash_slot(0, 5000, 3, 0x000200);

    ck_assert_int_eq(boot_slot_verify(0, h.body_len, h.hash), 0);
    ck_assert_uint_gt(port_fake.watchdog_kicks, 0);
    port_fake.slot[0][4321] ^= 0x01u;
    ck_assert_int_eq(boot_slot_verify(0, h.body_len, h.hash), BOOT_EHASH);
    port_fake.slot[0][4321] ^= 0x01u;
    ck_assert_int_eq(boot_slot_verify(0, h.body_len - 1, h.hash), BOOT_EHASH);
    port_fake.fail_read = true;
    ck_assert_int_eq(boot_slot_verify(0, h.body_len, h.hash), BOOT_EREAD);
    port_fake.fail_read = false;
    ck_assert_int_eq(boot_slot_verify(0, PORT_SLOT_SIZE + 1u, h.hash),
                     BOOT_EREAD);
}
END_TEST

START_TEST(test_boot_select_starts_fresh_and_skips_a_damaged_slot)
{
    struct image_hdr h = flash_slot(1, 700, 9, 0x000200);
    struct boot_record r;

    /* Nothing stored: a fresh record, stored once, then left alone. */
    ck_assert_uint_eq(boot_select(&r), BOOT_FACTORY);
    ck_assert_uint_eq(port_fake.stores, 1);
    ck_assert(boot_record_valid(&port_fake.rec));
    ck_assert_uint_eq(boot_select(&r), BOOT_FACTORY);
    ck_assert_uint_eq(port_fake.stores, 1);

    /* A good pending slot starts, on test. */
    boot_set_pending(&r, 1, &h);
    boot_record_seal(&r);
    ck_assert_int_eq(port_boot_store(&r), 0);
    ck_assert_uint_eq(boot_select(&r), 1);
    ck_assert_uint_eq(port_fake.rec.slot[1].state, BOOT_SLOT_TEST);
    ck_assert_uint_eq(port_fake.rec.running, 1);

    /* A pending slot damaged since END: never started. */
    h = flash_slot(1, 700, 9, 0x000200);
    boot_record_init(&r);
    boot_set_pending(&r, 1, &h);
    boot_record_seal(&r);
    port_boot_store(&r);
    port_fake.slot[1][10] ^= 0x04u;
    ck_assert_uint_eq(boot_select(&r), BOOT_FACTORY);
    ck_assert_uint_eq(port_fake.rec.slot[1].state, BOOT_SLOT_EMPTY);
    ck_assert(port_fake.rec.flags & MSG_UPD_BOOT_REVERTED);

    /* A torn record: the factory image, never a slot. */
    port_fake.rec.active = 1;
    ck_assert_uint_eq(boot_select(&r), BOOT_FACTORY);
    ck_assert(boot_record_valid(&port_fake.rec));
    ck_assert_uint_eq(port_fake.rec.active, BOOT_FACTORY);
}
END_TEST

/* Random events: uploads armed into the target slot, resets with or
 * without the bootloader finding the slot bad, confirms.  A model tracks
 * what the scheme promises. */
START_TEST(test_boot_random_events_keep_the_invariants)
{
    struct boot_record r;
    uint32_t seed = 99;
    uint8_t run = BOOT_FACTORY;
    bool armed[BOOT_SLOTS] = {false, false};
    bool confirmed[BOOT_SLOTS] = {false, false};
    static const uint8_t body[16] = {1};
    struct image_hdr h = image_of(body, sizeof(body), 0x000200);

    boot_record_init(&r);
    for (int step = 0; step < 20000; step++) {
        unsigned op;

        seed = seed * 1664525u + 1013904223u;
        op = (seed >> 24) % 4u;
        if (op == 0) { /* an upload armed for test (BOOT) */
            uint8_t t = boot_target_slot(&r);

            if (t != BOOT_FACTORY && !(boot_flags(&r) & MSG_UPD_BOOT_TEST)) {
                boot_set_pending(&r, t, &h);
                armed[t] = true;
                confirmed[t] = false;
            }
        } else if (op == 1) { /* CONFIRM */
            bool on_test = (boot_flags(&r) & MSG_UPD_BOOT_TEST) != 0;

            ck_assert(boot_confirm(&r) == on_test);
            if (on_test) {
                for (uint8_t i = 0; i < BOOT_SLOTS; i++)
                    confirmed[i] = false;
                confirmed[run] = true;
            }
        } else { /* a reset; sometimes the chosen slot does not check */
            run = boot_choose(&r);
            while (run != BOOT_FACTORY && (seed & 0x700u) == 0x700u) {
                confirmed[run] = false;
                armed[run] = false;
                run = boot_failed(&r, run);
                seed >>= 3;
            }
            if (run != BOOT_FACTORY) {
                /* Started: either armed for test just now (once), or the
                 * confirmed image. */
                ck_assert(armed[run] || confirmed[run]);
                if (armed[run]) {
                    ck_assert_uint_eq(r.slot[run].state, BOOT_SLOT_TEST);
                    armed[run] = false;
                } else {
                    ck_assert_uint_eq(r.slot[run].state, BOOT_SLOT_GOOD);
                    ck_assert_uint_eq(r.active, run);
                }
            }
        }
        ck_assert(r.active == BOOT_FACTORY ||
                  r.slot[r.active].state == BOOT_SLOT_GOOD);
        boot_record_seal(&r);
        ck_assert(boot_record_valid(&r));
    }
}
END_TEST

Suite *boot_suite(void)
{
    Suite *s = suite_create("boot");
    TCase *tc = tcase_create("record");
    TCase *port = tcase_create("through the port");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_boot_fresh_record_runs_the_factory_image);
    tcase_add_test(tc, test_boot_record_damage_or_bad_ranges_make_it_invalid);
    tcase_add_test(tc,
                   test_boot_test_image_runs_once_then_reverts_without_confirm);
    tcase_add_test(tc,
                   test_boot_confirmed_image_stays_and_the_next_goes_elsewhere);
    tcase_add_test(tc,
                   test_boot_failed_test_slot_falls_back_to_the_active_image);
    tcase_add_test(tc, test_boot_random_events_keep_the_invariants);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(port, setup, NULL);
    tcase_add_test(
        port,
        test_boot_slot_verify_reads_back_and_tells_mismatch_from_read_error);
    tcase_add_test(port,
                   test_boot_select_starts_fresh_and_skips_a_damaged_slot);
    suite_add_tcase(s, port);
    return s;
}
