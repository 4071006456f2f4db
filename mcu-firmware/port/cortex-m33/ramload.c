/* See ramload.h.  Runs in the bootloader with interrupts as the reset
 * left them (off), so nothing can run between setting VTOR and the jump. */
#include "cortex-m33/ramload.h"

#include <stddef.h>
#include <string.h>

/* The System Control Block's vector table offset register: part of the
 * ARMv8-M architecture, at the same address on every Cortex-M33. */
#define SCB_VTOR_ADDR 0xE000ED08u
#define VECTORS_MIN   8u /* the initial stack pointer and reset handler */

_Noreturn void ramload_start(const uint8_t *body, uint32_t len, uint32_t base,
                             uint32_t size, void (*feed)(void))
{
    uint8_t *exec = (uint8_t *)(uintptr_t)base;
    const volatile uint32_t *table = (const volatile uint32_t *)exec;
    uint32_t sp, entry;

    if (len < VECTORS_MIN || len > size)
        for (;;)
            __asm__ volatile("wfi");
    memcpy(exec, body, len);
    memset(exec + len, 0, size - len);
    sp = table[0];
    entry = table[1];
    feed();
    *(volatile uint32_t *)(uintptr_t)SCB_VTOR_ADDR = base;
    __asm__ volatile("dsb\n"
                     "isb\n"
                     "msr msplim, %0\n"
                     "msr msp, %1\n"
                     "bx %2\n"
                     :
                     : "r"(0u), "r"(sp), "r"(entry)
                     : "memory");
    __builtin_unreachable();
}
