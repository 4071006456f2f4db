/* The update storage of the STM32U585 port (port.h, "Update storage"):
 * two slots and the boot record in flash bank 2, at the addresses of
 * layout.h.  The application's update handler (update/fwupdate.c) writes
 * them; the bootloader reads them, and stores the record, at every reset.
 *
 * The flash controller (RM0456, "Embedded flash memory") erases 8 KiB
 * pages and programs 16-byte quad-words, each once after its erase: the
 * quad-word carries ECC, so a second program of it is refused
 * (PROGERR), and a quad-word whose program was cut short may not read
 * back at all.  So writes are gathered here into one quad-word buffer
 * and programmed whole; a write that leaves the buffered quad-word, a
 * read, an erase or a record store programs what is buffered first,
 * padded with the erased value, as port.h allows.  fwupdate.c writes
 * every byte in order once after its slot's erase and reads the slot only
 * after the last write, so no quad-word is programmed twice; a caller
 * that went on writing into a quad-word a read had programmed would get
 * -1 from the controller's PROGERR (which RM0456 waives only for an
 * all-zero quad-word), not a silently changed byte.
 *
 * The code runs from SRAM and the storage is in bank 2, so the CPU never
 * fetches from the bank being erased or programmed; interrupts go on
 * being served while an operation runs.  Each operation unlocks the
 * controller, waits for BSY to clear, checks and clears the error flags
 * and locks it again, so a stray write elsewhere finds it locked.  A BSY
 * that never clears ends in a watchdog reset, as a stuck ADC does.
 *
 * The boot record has a page to itself: a store erases the page and
 * programs the record's quad-words.  A reset in between leaves no record
 * or a torn one, whose CRC does not check, which boot.c reads as "factory
 * image, nothing pending": an update is lost, never a bad image booted.
 * Every access is bounds-checked against its region, whatever the
 * caller: the offsets come from the wire. */
#include <stdint.h>
#include <string.h>

#include "boot.h"
#include "layout.h"
#include "port.h"
#include "port_stm32u585.h"
#include "ramimage.h"
#include "regs.h"
#include "update.h"

#define ERASED 0xffu
#define NSSR_ERRORS                                                            \
    (FLASH_NSSR_OPERR | FLASH_NSSR_PROGERR | FLASH_NSSR_WRPERR |               \
     FLASH_NSSR_PGAERR | FLASH_NSSR_SIZERR | FLASH_NSSR_PGSERR |               \
     FLASH_NSSR_OPTWERR)
/* The record, rounded up to whole quad-words. */
#define RECORD_LEN                                                             \
    ((sizeof(struct boot_record) + U585_QWORD - 1u) / U585_QWORD * U585_QWORD)

_Static_assert(PORT_SLOT_SIZE == U585_SLOT_SIZE, "port_config.h and layout.h");
_Static_assert(U585_SLOT_SIZE % U585_PAGE_SIZE == 0 &&
                   U585_SLOT0_BASE % U585_PAGE_SIZE == 0 &&
                   U585_SLOT1_BASE % U585_PAGE_SIZE == 0 &&
                   U585_BOOTREC_BASE % U585_PAGE_SIZE == 0,
               "the slots and the record are whole pages");
_Static_assert(U585_SLOT0_BASE >= U585_BANK2_BASE &&
                   U585_BOOTREC_BASE + U585_BOOTREC_SIZE <=
                       U585_BANK2_BASE + U585_BANK_SIZE,
               "the update storage is in bank 2");
_Static_assert(RECORD_LEN <= U585_BOOTREC_SIZE, "the record fits its page");

/* The quad-word being gathered: its flash address (0: none) and bytes. */
static struct {
    uint32_t addr;
    uint8_t data[U585_QWORD];
} pend;

const uint8_t *port_flash_slot(uint8_t slot)
{
    if (slot == 0)
        return (const uint8_t *)(uintptr_t)U585_SLOT0_BASE;
    if (slot == 1)
        return (const uint8_t *)(uintptr_t)U585_SLOT1_BASE;
    return NULL;
}

/* The flash address of the slot's bytes [off, off + n), or 0 when that is
 * not inside it. */
static uint32_t range(uint8_t slot, uint32_t off, uint32_t n)
{
    const uint8_t *base = port_flash_slot(slot);

    if (base == NULL || off > U585_SLOT_SIZE || n > U585_SLOT_SIZE - off)
        return 0;
    return (uint32_t)(uintptr_t)base + off;
}

/* ---- The controller ---- */

static int unlock(void)
{
    if (FLASH_NSCR & FLASH_NSCR_LOCK) {
        FLASH_NSKEYR = FLASH_KEY1;
        FLASH_NSKEYR = FLASH_KEY2;
    }
    /* A wrong sequence keeps it locked until the next reset. */
    return (FLASH_NSCR & FLASH_NSCR_LOCK) ? -1 : 0;
}

/* Waits for the operation under way, clears PER and PG, locks the
 * controller, and reports (and clears) any error it flagged. */
static int finish(void)
{
    uint32_t sr;

    while (FLASH_NSSR & FLASH_NSSR_BSY)
        ;
    sr = FLASH_NSSR;
    FLASH_NSSR = (sr & NSSR_ERRORS) | FLASH_NSSR_EOP;
    FLASH_NSCR &= ~(FLASH_NSCR_PG | FLASH_NSCR_PER | FLASH_NSCR_PNB_M |
                    FLASH_NSCR_BKER | FLASH_NSCR_STRT);
    FLASH_NSCR |= FLASH_NSCR_LOCK;
    return (sr & NSSR_ERRORS) ? -1 : 0;
}

/* Readies the controller for an operation: none under way, no error
 * left flagged by an earlier one, unlocked. */
static int begin(void)
{
    while (FLASH_NSSR & FLASH_NSSR_BSY)
        ;
    FLASH_NSSR = NSSR_ERRORS | FLASH_NSSR_EOP;
    return unlock();
}

/* Erases the page at addr (a page boundary in either bank). */
static int erase_page(uint32_t addr)
{
    uint32_t bank2 = addr >= U585_BANK2_BASE;
    uint32_t page =
        (addr - (bank2 ? U585_BANK2_BASE : U585_BANK1_BASE)) / U585_PAGE_SIZE;

    if (begin() != 0)
        return -1;
    FLASH_NSCR = (FLASH_NSCR & ~(FLASH_NSCR_PNB_M | FLASH_NSCR_BKER)) |
                 FLASH_NSCR_PER | page << FLASH_NSCR_PNB_POS |
                 (bank2 ? FLASH_NSCR_BKER : 0u);
    FLASH_NSCR |= FLASH_NSCR_STRT;
    return finish();
}

/* Programs the quad-word at addr (16-byte aligned): four word writes in
 * a row with PG set, after which the controller starts by itself. */
static int program(uint32_t addr, const uint8_t data[U585_QWORD])
{
    volatile uint32_t *to = (volatile uint32_t *)(uintptr_t)addr;
    uint32_t w[U585_QWORD / 4u];

    memcpy(w, data, sizeof(w));
    if (begin() != 0)
        return -1;
    FLASH_NSCR |= FLASH_NSCR_PG;
    for (unsigned i = 0; i < U585_QWORD / 4u; i++)
        to[i] = w[i];
    __asm__ volatile("dsb" ::: "memory");
    return finish();
}

/* Programs the buffered quad-word, if any. */
static int flush(void)
{
    uint32_t addr = pend.addr;

    if (addr == 0)
        return 0;
    pend.addr = 0;
    return program(addr, pend.data);
}

/* ---- Slots ---- */

int port_slot_erase(uint8_t slot, uint32_t len)
{
    uint32_t base = range(slot, 0, len);

    if (base == 0)
        return -1;
    /* A quad-word of this slot is about to be erased anyway; one of the
     * other slot is programmed, as a read would. */
    if (pend.addr >= base && pend.addr < base + U585_SLOT_SIZE)
        pend.addr = 0;
    else if (flush() != 0)
        return -1;
    for (uint32_t off = 0; off < len; off += U585_PAGE_SIZE)
        if (erase_page(base + off) != 0)
            return -1;
    return 0;
}

int port_slot_write(uint8_t slot, uint32_t off, const uint8_t *p, uint16_t n)
{
    uint32_t addr = range(slot, off, n);

    if (addr == 0)
        return -1;
    for (uint16_t i = 0; i < n; i++, addr++) {
        uint32_t q = addr & ~(uint32_t)(U585_QWORD - 1u);

        if (pend.addr != q) {
            if (flush() != 0)
                return -1;
            pend.addr = q;
            memset(pend.data, ERASED, sizeof(pend.data));
        }
        pend.data[addr - q] = p[i];
        if (addr - q == U585_QWORD - 1u && flush() != 0)
            return -1;
    }
    return 0;
}

int port_slot_read(uint8_t slot, uint32_t off, uint8_t *p, uint16_t n)
{
    uint32_t addr = range(slot, off, n);

    if (addr == 0 || flush() != 0)
        return -1;
    memcpy(p, (const void *)(uintptr_t)addr, n);
    return 0;
}

/* ---- The boot record ---- */

/* Whatever the page holds is handed over: an erased page (no record yet)
 * or a torn one does not check in boot_record_valid(), and the caller
 * starts a fresh record. */
int port_boot_load(struct boot_record *r)
{
    memcpy(r, (const void *)(uintptr_t)U585_BOOTREC_BASE, sizeof(*r));
    return 0;
}

int port_boot_store(const struct boot_record *r)
{
    uint8_t buf[RECORD_LEN];

    memset(buf, ERASED, sizeof(buf));
    memcpy(buf, r, sizeof(*r));
    if (flush() != 0 || erase_page(U585_BOOTREC_BASE) != 0)
        return -1;
    for (uint32_t off = 0; off < sizeof(buf); off += U585_QWORD)
        if (program(U585_BOOTREC_BASE + off, buf + off) != 0)
            return -1;
    return 0;
}

/* An image for this board is the application linked for the execution
 * region (stm32u585.ld): RAM-loaded there by the bootloader, its vector
 * table first, and small enough for the factory region too
 * (ramimage.h), so that any image may also be written as the factory
 * one. */
int port_image_check(const struct image_hdr *h)
{
    return ramimage_layout(h) == 0 ? 0 : -1;
}
