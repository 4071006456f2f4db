/* The boot record and the bootloader's choice of image (docs/UPDATE.md
 * section 3), shared by the bootloaders of every updatable port and by
 * the update handler in the running firmware.
 *
 * The MCU has a factory image (what was first flashed or, in QEMU and
 * tether-sim, what was started) and two update slots.  The record says
 * which image is active (confirmed), which slot holds a verified image
 * waiting for its one test boot, and whether the last test failed.  A
 * record that does not check (magic, CRC, ranges) counts as "factory,
 * nothing pending": losing it can only fall back to the factory image,
 * never boot something unverified.  Portable and freestanding: the port
 * stores the record and the slots (the update storage verbs of port.h). */
#ifndef TETHER_BOOT_H
#define TETHER_BOOT_H

#include <stdbool.h>
#include <stdint.h>

#include "update.h" /* proto/update.h: struct image_hdr */

#define BOOT_MAGIC   0x544f4f42u /* "BOOT" */
#define BOOT_FACTORY 0xffu       /* the image that is not in a slot */
#define BOOT_SLOTS   2u

enum boot_slot_state {
    BOOT_SLOT_EMPTY = 0,    /* nothing, or an upload under way */
    BOOT_SLOT_VERIFIED = 1, /* hash checked, never booted */
    BOOT_SLOT_TEST = 2,     /* booted once on test, not confirmed */
    BOOT_SLOT_GOOD = 3,     /* confirmed */
};

struct boot_slot {
    uint8_t state;       /* enum boot_slot_state */
    uint32_t fw_version; /* from its image header */
    uint32_t body_len;
    uint8_t hash[IMAGE_HASH_LEN];
};

struct boot_record {
    uint32_t magic;  /* BOOT_MAGIC */
    uint8_t active;  /* confirmed image: slot index or BOOT_FACTORY */
    uint8_t pending; /* slot to boot next on test, or BOOT_FACTORY */
    uint8_t running; /* what the bootloader started last */
    uint8_t flags;   /* MSG_UPD_BOOT_REVERTED after a failed test */
    struct boot_slot slot[BOOT_SLOTS];
    uint32_t crc; /* CRC-32C of the fields above in a fixed little-endian
                   * layout (not of the struct's memory, whose padding is
                   * the compiler's), set by boot_record_seal() */
};

/* Errors of boot_slot_verify(). */
#define BOOT_EHASH -1 /* the slot's bytes do not hash to the expected value */
#define BOOT_EREAD -2 /* the slot could not be read */

/* A fresh record: factory active, nothing pending, slots empty. */
void boot_record_init(struct boot_record *r);
/* Sets crc.  Ports store and load whole records; the CRC makes a torn or
 * foreign record detectable. */
void boot_record_seal(struct boot_record *r);
/* True if magic and CRC check and every index and state is in range. */
bool boot_record_valid(const struct boot_record *r);

/* The bootloader's decision at every reset.  Updates r (the caller
 * stores it before starting the image) and returns the image to start:
 * a slot index or BOOT_FACTORY.
 *   - the running slot is still TEST at this reset (no CONFIRM came):
 *     mark it EMPTY and set REVERTED;
 *   - a verified slot pending test: mark it TEST, clear REVERTED, start
 *     it (this once: pending is cleared);
 *   - else start `active` (the factory image if active is not GOOD).
 * The caller checks the chosen slot's hash before starting it and calls
 * boot_failed() when it does not match. */
uint8_t boot_choose(struct boot_record *r);
/* The chosen slot did not check: forget it (REVERTED if it was on test;
 * the factory image becomes active if it was active) and return what to
 * start instead, which the caller checks in turn. */
uint8_t boot_failed(struct boot_record *r, uint8_t slot);

/* 0 if the first len bytes of slot hash to hash, else BOOT_EHASH or
 * BOOT_EREAD.  Reads through port_slot_read() in small blocks and feeds
 * the watchdog as it goes.  Loop context (or the bootloader's). */
int boot_slot_verify(uint8_t slot, uint32_t len,
                     const uint8_t hash[IMAGE_HASH_LEN]);

/* The bootloader's whole step at a reset, through the port: loads the
 * record (a missing or broken one starts fresh), chooses, verifies the
 * chosen slot (falling back while one does not check), stores the record
 * when it changed, and returns the image to start, r holding the record. */
uint8_t boot_select(struct boot_record *r);

/* For the update handler in the running image. */
/* The slot a new upload goes to: the one neither running nor active, or
 * BOOT_FACTORY when there is none (a slot image on test while another
 * slot is active). */
uint8_t boot_target_slot(const struct boot_record *r);
/* A verified upload in slot: pending test at the next reset. */
void boot_set_pending(struct boot_record *r, uint8_t slot,
                      const struct image_hdr *h);
/* CONFIRM: the running test image becomes active (GOOD); the slot that
 * was active before is emptied for the next upload.  False if the running
 * image is not on test. */
bool boot_confirm(struct boot_record *r);
/* MSG_UPD_BOOT_* flags describing the running image. */
uint8_t boot_flags(const struct boot_record *r);

#endif
