/* The bootloader of the STM32U585 port: the first code the core runs at
 * every reset, from the vector table at 0x08000000 (boot.ld), where the
 * part boots with TrustZone off.
 *
 * The application runs from RAM, as in MCUboot's RAM-load mode: this
 * code chooses the image with update/boot.c (a slot pending its test
 * boot, else the confirmed one, else the factory image in bank 1), which
 * also checks a slot's SHA-256 against the boot record and falls back
 * while one does not check; then it copies the chosen body to the
 * execution region in SRAM1, points VTOR at its vector table, loads its
 * stack pointer and jumps to its reset handler.  Every image is linked
 * for that one address, so the factory image and any slot's image are
 * started alike and an update never overwrites the factory image, which
 * is what a failed test falls back to (layout.h).
 *
 * The factory region holds a whole update image, header and body, and
 * may have been written by OpenOCD after this code was built, so its
 * length and hash come from its header, never from this link
 * (ramimage.h).  A factory image that does not check is not started:
 * boot_select() chooses the factory image only when no slot is confirmed
 * or pending, so there is nothing verified to start instead, and the
 * bootloader waits for the watchdog, which resets the MCU and checks
 * again every 2 s.  The MCU then says nothing on the UART and stays
 * open to SWD, for OpenOCD to write a good image.
 *
 * Conditions: the core runs from the reset clock (MSIS, 4 MHz) with the
 * reset flash latency; nothing else is initialised, and no interrupt is
 * enabled, so the vector table needs no handlers but for faults and the
 * NMI.  It must not touch RCC_CSR's reset flags or the application's RAM
 * (its .noinit word says why the last reset happened): it keeps to its
 * own RAM at the top of SRAM3.  It starts the IWDG before it does
 * anything that could hang, so an image that dies before it feeds the
 * watchdog itself (a crash in its start-up, a lock-up) still ends in a
 * reset, and the next run of this code reverts an image on test.  The
 * image starts with the watchdog running, its counter just reloaded. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cortex-m33/ramload.h"
#include "boot.h"
#include "layout.h"
#include "port.h"
#include "port_stm32u585.h"
#include "ramimage.h"
#include "regs.h"

/* Twice PORT_WATCHDOG_MS from the 32 kHz LSI, as the application sets
 * it (port_stm32u585.c), so that the timeout does not change at the
 * hand-over. */
#define LSI_HZ      32000u
#define IWDG_RELOAD (LSI_HZ / 64u * 2u * PORT_WATCHDOG_MS / 1000u - 1u)

_Static_assert(IWDG_RELOAD <= 0xfffu, "IWDG reload is 12 bits");

extern uint32_t ld_data_load[], ld_data_start[], ld_data_end[];
extern uint32_t ld_bss_start[], ld_bss_end[];
extern uint32_t ld_stack_limit[], ld_stack_top[];

void bootloader_reset(void);

/* Set while the factory region is hashed, for the NMI handler. */
static volatile bool checking_factory;

/* A fault in the bootloader, or a factory image that does not check:
 * the watchdog resets the MCU, which tries again. */
static _Noreturn void stop(void)
{
    for (;;)
        __asm__ volatile("wfi");
}

static void fault(void)
{
    stop();
}

/* NMI context.  The flash raises an NMI when a read meets a double ECC
 * error: a quad-word whose program a power loss cut short.  The one the
 * bootloader reads that can be torn so is the boot record (a slot is read
 * only after the running image read it back whole).  Erasing the
 * record's page forgets it, which sends this reset to the factory image
 * with nothing pending; then the MCU resets to start over clean.  A
 * factory region torn by a power loss while OpenOCD wrote it raises the
 * NMI too, while it is hashed: the record is not to blame then, and
 * erasing it at every reset would wear its page out, so the NMI only
 * stops, and the watchdog resets, as for a factory image that does not
 * check. */
static void nmi(void)
{
    struct boot_record fresh;

    if ((FLASH_ECCR & FLASH_ECCR_ECCD) && !checking_factory) {
        FLASH_ECCR = FLASH_ECCR_ECCD;
        boot_record_init(&fresh);
        boot_record_seal(&fresh);
        (void)port_boot_store(&fresh);
        __asm__ volatile("dsb" ::: "memory");
        SCB_AIRCR = SCB_AIRCR_VECTKEY | SCB_AIRCR_SYSRESETREQ;
        __asm__ volatile("dsb" ::: "memory");
    }
    stop();
}

struct vector_table {
    uint32_t *initial_sp;
    void (*handler[7])(void); /* exceptions 1 (reset) to 7 */
};

/* clang-format off */
__attribute__((section(".vectors"), used))
static const struct vector_table vectors = {
    ld_stack_top,
    {
        bootloader_reset,
        nmi,
        fault, /* HardFault */
        fault, /* MemManage */
        fault, /* BusFault */
        fault, /* UsageFault */
        fault, /* SecureFault */
    },
};
/* clang-format on */

/* The bootloader's own feed, for boot_slot_verify(). */
void port_watchdog_kick(void)
{
    IWDG_KR = IWDG_KR_RELOAD;
}

static void watchdog_start(void)
{
    IWDG_KR = IWDG_KR_START; /* also starts the LSI */
    IWDG_KR = IWDG_KR_UNLOCK;
    IWDG_PR = IWDG_PR_DIV64;
    IWDG_RLR = IWDG_RELOAD;
    while (IWDG_SR & (IWDG_SR_PVU | IWDG_SR_RVU))
        ;
    IWDG_KR = IWDG_KR_RELOAD;
}

/* The chosen image, copied to the execution region and started
 * (cortex-m33/ramload.h). */
static _Noreturn void start(const uint8_t *body, uint32_t len)
{
    ramload_start(body, len, U585_EXEC_BASE, U585_EXEC_SIZE,
                  port_watchdog_kick);
}

/* Reset context: no stack frame to return to, RAM not yet initialised. */
void bootloader_reset(void)
{
    const uint8_t *factory = (const uint8_t *)(uintptr_t)U585_FACTORY_BASE;
    struct boot_record r;
    struct image_hdr h;
    uint8_t img;

    /* The watchdog first: from here on, whatever hangs ends in a reset. */
    watchdog_start();
    __asm__ volatile("msr msplim, %0" : : "r"(ld_stack_limit));
    memcpy(ld_data_start, ld_data_load,
           (size_t)((uintptr_t)ld_data_end - (uintptr_t)ld_data_start));
    memset(ld_bss_start, 0,
           (size_t)((uintptr_t)ld_bss_end - (uintptr_t)ld_bss_start));

    img = boot_select(&r);
    if (img != BOOT_FACTORY)
        start(port_flash_slot(img), r.slot[img].body_len);
    checking_factory = true;
    if (ramimage_check(factory, U585_FACTORY_SIZE, port_watchdog_kick, &h) != 0)
        stop();
    checking_factory = false;
    start(factory + IMAGE_HDR_LEN, h.body_len);
}
