/* The boot record and the bootloader's choice.  See boot.h.
 *
 * Everything here runs either in a bootloader, before any image, or in
 * the running image's update handler; both reach the storage only through
 * the port's verbs.  The record is small and is written whole, so the
 * only defence a torn write needs is the CRC, which sends a broken record
 * back to the factory image. */
#include "boot.h"

#include <stddef.h>
#include <string.h>

#include "crc32c.h"
#include "port.h"
#include "sha256.h"
#include "wire.h"

/* Bytes of the record as the CRC sees it: the fixed part, then each slot
 * (state, fw_version, body_len, hash). */
#define SLOT_BYTES        (1u + 4u + 4u + IMAGE_HASH_LEN)
#define RECORD_BYTES      (8u + BOOT_SLOTS * SLOT_BYTES)
/* Slot bytes hashed per read: small, for the bootloader's stack. */
#define VERIFY_BLOCK      64u
/* The watchdog is fed this often while a slot is hashed. */
#define VERIFY_KICK_EVERY 4096u

static bool is_slot(uint8_t i)
{
    return i < BOOT_SLOTS;
}

static uint32_t record_crc(const struct boot_record *r)
{
    uint8_t b[RECORD_BYTES];
    size_t at = 8;

    wire_put_u32(&b[0], r->magic);
    b[4] = r->active;
    b[5] = r->pending;
    b[6] = r->running;
    b[7] = r->flags;
    for (unsigned i = 0; i < BOOT_SLOTS; i++) {
        const struct boot_slot *s = &r->slot[i];

        b[at] = s->state;
        wire_put_u32(&b[at + 1], s->fw_version);
        wire_put_u32(&b[at + 5], s->body_len);
        memcpy(&b[at + 9], s->hash, IMAGE_HASH_LEN);
        at += SLOT_BYTES;
    }
    return crc32c(b, sizeof(b));
}

void boot_record_init(struct boot_record *r)
{
    memset(r, 0, sizeof(*r));
    r->magic = BOOT_MAGIC;
    r->active = BOOT_FACTORY;
    r->pending = BOOT_FACTORY;
    r->running = BOOT_FACTORY;
    boot_record_seal(r);
}

void boot_record_seal(struct boot_record *r)
{
    r->crc = record_crc(r);
}

static bool index_ok(uint8_t i)
{
    return is_slot(i) || i == BOOT_FACTORY;
}

bool boot_record_valid(const struct boot_record *r)
{
    if (r->magic != BOOT_MAGIC || r->crc != record_crc(r))
        return false;
    if (!index_ok(r->active) || !index_ok(r->pending) ||
        !index_ok(r->running) || (r->flags & ~MSG_UPD_BOOT_REVERTED) != 0)
        return false;
    for (unsigned i = 0; i < BOOT_SLOTS; i++)
        if (r->slot[i].state > BOOT_SLOT_GOOD)
            return false;
    return true;
}

/* Starts the confirmed image: the factory one unless active is a slot
 * that was confirmed. */
static uint8_t start_active(struct boot_record *r)
{
    if (is_slot(r->active) && r->slot[r->active].state != BOOT_SLOT_GOOD)
        r->active = BOOT_FACTORY;
    r->running = r->active;
    return r->active;
}

uint8_t boot_choose(struct boot_record *r)
{
    uint8_t run = r->running;
    uint8_t p = r->pending;

    /* A test image that reached another reset without CONFIRM crashed,
     * hung past the watchdog, or was rebooted by the daemon because it
     * failed the health gate: it is never started again. */
    if (is_slot(run) && r->slot[run].state == BOOT_SLOT_TEST) {
        r->slot[run].state = BOOT_SLOT_EMPTY;
        r->flags |= MSG_UPD_BOOT_REVERTED;
    }
    r->pending = BOOT_FACTORY;
    if (is_slot(p) && r->slot[p].state == BOOT_SLOT_VERIFIED) {
        r->slot[p].state = BOOT_SLOT_TEST;
        r->flags &= (uint8_t)~MSG_UPD_BOOT_REVERTED;
        r->running = p;
        return p;
    }
    return start_active(r);
}

uint8_t boot_failed(struct boot_record *r, uint8_t slot)
{
    if (is_slot(slot)) {
        if (r->slot[slot].state == BOOT_SLOT_TEST)
            r->flags |= MSG_UPD_BOOT_REVERTED;
        r->slot[slot].state = BOOT_SLOT_EMPTY;
    }
    if (r->active == slot)
        r->active = BOOT_FACTORY;
    return start_active(r);
}

int boot_slot_verify(uint8_t slot, uint32_t len,
                     const uint8_t hash[IMAGE_HASH_LEN])
{
    uint8_t block[VERIFY_BLOCK];
    uint8_t got[SHA256_LEN];
    struct sha256 s;
    uint32_t off = 0;

    sha256_init(&s);
    while (off < len) {
        uint16_t n =
            (uint16_t)(len - off < VERIFY_BLOCK ? len - off : VERIFY_BLOCK);

        if (port_slot_read(slot, off, block, n) != 0)
            return BOOT_EREAD;
        sha256_update(&s, block, n);
        off += n;
        if (off % VERIFY_KICK_EVERY == 0)
            port_watchdog_kick();
    }
    sha256_final(&s, got);
    return memcmp(got, hash, IMAGE_HASH_LEN) == 0 ? 0 : BOOT_EHASH;
}

uint8_t boot_select(struct boot_record *r)
{
    uint32_t before = 0;
    bool loaded = port_boot_load(r) == 0 && boot_record_valid(r);
    uint8_t img;

    if (loaded)
        before = r->crc;
    else
        boot_record_init(r);
    img = boot_choose(r);
    while (is_slot(img) &&
           boot_slot_verify(img, r->slot[img].body_len, r->slot[img].hash) != 0)
        img = boot_failed(r, img);
    boot_record_seal(r);
    /* Written only when it changed: a flash record should not wear out
     * because the MCU resets often.  If the store fails there is nothing
     * better to do than start the image; the old record still chooses a
     * verified image at the next reset. */
    if (!loaded || r->crc != before)
        (void)port_boot_store(r);
    return img;
}

uint8_t boot_target_slot(const struct boot_record *r)
{
    for (uint8_t i = 0; i < BOOT_SLOTS; i++)
        if (i != r->running && i != r->active)
            return i;
    return BOOT_FACTORY;
}

void boot_set_pending(struct boot_record *r, uint8_t slot,
                      const struct image_hdr *h)
{
    struct boot_slot *s = &r->slot[slot];

    s->state = BOOT_SLOT_VERIFIED;
    s->fw_version = h->fw_version;
    s->body_len = h->body_len;
    memcpy(s->hash, h->hash, IMAGE_HASH_LEN);
    r->pending = slot;
}

bool boot_confirm(struct boot_record *r)
{
    uint8_t run = r->running;
    uint8_t old = r->active;

    if (!is_slot(run) || r->slot[run].state != BOOT_SLOT_TEST)
        return false;
    r->slot[run].state = BOOT_SLOT_GOOD;
    r->active = run;
    if (is_slot(old) && old != run)
        r->slot[old].state = BOOT_SLOT_EMPTY;
    return true;
}

uint8_t boot_flags(const struct boot_record *r)
{
    uint8_t f = r->flags & MSG_UPD_BOOT_REVERTED;

    if (!is_slot(r->running))
        return (uint8_t)(f | MSG_UPD_BOOT_FACTORY);
    if (r->slot[r->running].state == BOOT_SLOT_TEST)
        f |= MSG_UPD_BOOT_TEST;
    if (r->running == 1)
        f |= MSG_UPD_BOOT_SLOT1;
    return f;
}
