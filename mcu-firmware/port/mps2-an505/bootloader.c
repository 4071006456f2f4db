/* The bootloader of the mps2-an505 port: the first code the core runs at
 * every reset, from the vector table at 0x10000000 (boot.ld).
 *
 * QEMU puts the ELF's own segments back at every system reset, so an
 * update cannot overwrite the image QEMU loaded.  Instead the application
 * runs from RAM, as in MCUboot's RAM-load mode: this code chooses the
 * image with update/boot.c (a slot pending its test boot, else the
 * confirmed one, else the factory image carried in this file), which also
 * checks a slot's SHA-256 against the boot record and falls back while
 * one does not check; then it copies the chosen body to the execution
 * region, points VTOR at its vector table, loads its stack pointer and
 * jumps to its reset handler.  The slots and the record survive the reset
 * because no segment covers them (layout.h).
 *
 * Conditions: nothing is initialised; no interrupt is enabled and none
 * is, so the vector table needs no handlers but for faults and the
 * watchdog's warning.  It must not touch the reset-cause record at the
 * start of SSRAM2: the application reads it to say why the MCU reset.  It
 * starts the watchdog before it does anything that could hang, so an
 * image that dies before it starts the watchdog itself (a crash in its
 * start-up, a lock-up) still ends in a reset, and the next run of this
 * code reverts an image on test.  The image starts with the watchdog
 * running, its counter just reloaded. */
#include <stdint.h>
#include <string.h>

#include "cortex-m33/ramload.h"
#include "an505.h"
#include "boot.h"
#include "layout.h"
#include "port.h"
#include "port_an505.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];
extern const uint8_t __factory_start[], __factory_end[];

void bootloader_reset(void);

/* A fault in the bootloader or a choice that cannot be started: the
 * watchdog resets the MCU, which tries again; a fault that comes back
 * every time keeps the MCU here, resetting once a second. */
static _Noreturn void stop(void)
{
    for (;;)
        __asm__ volatile("wfi");
}

/* NMI context: the watchdog's warning.  The bootloader takes
 * milliseconds and feeds it while it hashes a slot, so a warning means it
 * hangs; the reset that follows is the way out. */
static void warned(void)
{
}

static void fault(void)
{
    stop();
}

struct vector_table {
    uint32_t *initial_sp;
    void (*handler[7])(void); /* exceptions 1 (reset) to 7 */
};

/* The core's reset value of VTOR (QEMU's init-svtor) is this table's
 * address; it needs no more than the exceptions that can happen before an
 * image starts. */
/* clang-format off */
__attribute__((section(".vectors"), used))
static const struct vector_table vectors = {
    __stack_top,
    {
        bootloader_reset,
        warned, /* NMI: the watchdog's warning */
        fault,  /* HardFault */
        fault,  /* MemManage */
        fault,  /* BusFault */
        fault,  /* UsageFault */
        fault,  /* SecureFault */
    },
};
/* clang-format on */

/* The bootloader's own feed, for boot_slot_verify(). */
void port_watchdog_kick(void)
{
    an505_wdog_feed();
}

/* The chosen image, copied to the execution region and started
 * (cortex-m33/ramload.h). */
static _Noreturn void start(const uint8_t *body, uint32_t len)
{
    ramload_start(body, len, AN505_EXEC_BASE, AN505_EXEC_SIZE, an505_wdog_feed);
}

/* Reset context: no stack frame to return to, RAM not yet initialised. */
void bootloader_reset(void)
{
    struct boot_record r;
    uint8_t img;

    /* The watchdog first: from here on, whatever hangs ends in a reset. */
    an505_wdog_start(WDOG_TICKS(PORT_WATCHDOG_MS / 2u));
    __asm__ volatile("msr msplim, %0" : : "r"(__stack_limit));
    memcpy(__data_start, __data_load,
           (size_t)((uintptr_t)__data_end - (uintptr_t)__data_start));
    memset(__bss_start, 0,
           (size_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start));

    img = boot_select(&r);
    if (img == BOOT_FACTORY)
        start(__factory_start, (uint32_t)((uintptr_t)__factory_end -
                                          (uintptr_t)__factory_start));
    start(port_flash_slot(img), r.slot[img].body_len);
}
