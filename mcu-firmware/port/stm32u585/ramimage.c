/* See ramimage.h.
 *
 * The bootloader runs this on every reset that starts the factory image,
 * over bytes that OpenOCD, a power loss half-way through a write, or an
 * erase may have left in any state: every field is checked before it is
 * used, lengths are compared by subtraction so that nothing wraps, and
 * the body is read only once the header says it lies inside the region.
 * Hashing 64 KiB at the reset clock (MSIS, 4 MHz) takes about as long as
 * the watchdog allows, so the watchdog is fed between blocks, as
 * boot_slot_verify() does for a slot. */
#include "ramimage.h"

#include <stddef.h>
#include <string.h>

#include "layout.h"
#include "msg.h"
#include "sha256.h"

_Static_assert(U585_IMAGE_HDR_LEN == IMAGE_HDR_LEN,
               "layout.h and proto/update.h agree on the header");
_Static_assert(U585_BODY_MAX <= U585_EXEC_SIZE,
               "a body that fits the factory region fits the execution "
               "region");
_Static_assert(U585_BODY_MAX <= U585_SLOT_SIZE, "and a slot");

/* The vector table's first two words: initial stack pointer and reset
 * handler (cortex-m33/ramload.c refuses less). */
#define BODY_MIN 8u

int ramimage_layout(const struct image_hdr *h)
{
    if (h->flags != IMAGE_FLAG_RAM || h->load_addr != U585_EXEC_BASE ||
        h->entry != 0 || h->body_len < BODY_MIN || h->body_len > U585_BODY_MAX)
        return RAMIMAGE_ELAYOUT;
    return 0;
}

int ramimage_check(const uint8_t *region, uint32_t size, void (*feed)(void),
                   struct image_hdr *h)
{
    const uint8_t *body = region + IMAGE_HDR_LEN;
    uint8_t got[SHA256_LEN];
    struct sha256 s;
    uint32_t off = 0;

    if (size < IMAGE_HDR_LEN || image_decode(region, IMAGE_HDR_LEN, h) != 0)
        return RAMIMAGE_EHEADER;
    if (h->board != MSG_BOARD_STM32U585)
        return RAMIMAGE_EBOARD;
    if (ramimage_layout(h) != 0)
        return RAMIMAGE_ELAYOUT;
    if (h->body_len > size - IMAGE_HDR_LEN)
        return RAMIMAGE_ESIZE;
    sha256_init(&s);
    while (off < h->body_len) {
        uint32_t n = h->body_len - off;

        if (n > RAMIMAGE_FEED_EVERY)
            n = RAMIMAGE_FEED_EVERY;
        sha256_update(&s, body + off, n);
        off += n;
        feed();
    }
    sha256_final(&s, got);
    return memcmp(got, h->hash, IMAGE_HASH_LEN) == 0 ? 0 : RAMIMAGE_EHASH;
}
