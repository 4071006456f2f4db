/* The update storage of the mps2-an505 port (port.h, "Update storage"):
 * two slots and the boot record in SSRAM1, the memory this board treats
 * as flash, at the addresses of layout.h.  The application's update
 * handler (update/fwupdate.c) writes them; the bootloader reads them at
 * every reset.
 *
 * The regions are in no segment of the ELF QEMU loads, so a system reset
 * leaves them as they were, as flash would be; a new QEMU process starts
 * with them zero, which reads as no record (its magic and CRC do not
 * check) and so as the factory image: the power-on of a board whose flash
 * is blank.  Being RAM, they need no erase before a write; an erase
 * writes the erased value all the same, so that a slot reads as flash
 * would.  Every access is bounds-checked against its region, whatever the
 * caller: the offsets come from the wire. */
#include <stdint.h>
#include <string.h>

#include "boot.h"
#include "layout.h"
#include "port.h"
#include "port_an505.h"
#include "update.h"

#define ERASED 0xffu

_Static_assert(PORT_SLOT_SIZE == AN505_SLOT_SIZE, "port_config.h and layout.h");
_Static_assert(sizeof(struct boot_record) <= AN505_BOOTREC_SIZE,
               "the boot record fits its region");

uint8_t *port_flash_slot(uint8_t slot)
{
    if (slot == 0)
        return (uint8_t *)(uintptr_t)AN505_SLOT0_BASE;
    if (slot == 1)
        return (uint8_t *)(uintptr_t)AN505_SLOT1_BASE;
    return NULL;
}

/* The slot's bytes [off, off + n), or NULL when that is not inside it. */
static uint8_t *range(uint8_t slot, uint32_t off, uint32_t n)
{
    uint8_t *base = port_flash_slot(slot);

    if (base == NULL || off > AN505_SLOT_SIZE || n > AN505_SLOT_SIZE - off)
        return NULL;
    return base + off;
}

int port_slot_erase(uint8_t slot, uint32_t len)
{
    uint8_t *p = range(slot, 0, len);

    if (p == NULL)
        return -1;
    memset(p, ERASED, len);
    return 0;
}

int port_slot_write(uint8_t slot, uint32_t off, const uint8_t *p, uint16_t n)
{
    uint8_t *to = range(slot, off, n);

    if (to == NULL)
        return -1;
    memcpy(to, p, n);
    return 0;
}

int port_slot_read(uint8_t slot, uint32_t off, uint8_t *p, uint16_t n)
{
    const uint8_t *from = range(slot, off, n);

    if (from == NULL)
        return -1;
    memcpy(p, from, n);
    return 0;
}

/* Whatever the region holds is handed over: a record that was never
 * stored is zeros (or, on a board, garbage), which boot_record_valid()
 * refuses, and the caller starts a fresh one. */
int port_boot_load(struct boot_record *r)
{
    memcpy(r, (const void *)(uintptr_t)AN505_BOOTREC_BASE, sizeof(*r));
    return 0;
}

int port_boot_store(const struct boot_record *r)
{
    memcpy((void *)(uintptr_t)AN505_BOOTREC_BASE, r, sizeof(*r));
    return 0;
}

/* An image for this board is the application linked for the execution
 * region (an505.ld): RAM-loaded there, its vector table first, which
 * needs at least the initial stack pointer and the reset handler. */
int port_image_check(const struct image_hdr *h)
{
    if (h->flags != IMAGE_FLAG_RAM || h->load_addr != AN505_EXEC_BASE ||
        h->entry != 0 || h->body_len < 8u || h->body_len > AN505_EXEC_SIZE)
        return -1;
    return 0;
}
