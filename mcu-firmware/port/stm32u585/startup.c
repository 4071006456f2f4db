/* Start-up of the STM32U585 application in C: the vector table and the
 * reset handler.
 *
 * The linker script places the vector table at the start of the execution
 * region in SRAM1, where the bootloader copies the image; the bootloader
 * starts it as the core starts an image at reset, loading the stack
 * pointer and first program counter from the table's first two words, so
 * no assembly is needed: the reset handler runs on a valid stack and only
 * has to copy .data from its load address in the image, clear .bss and
 * call main().  Every exception and interrupt this firmware does not use
 * goes to the fault handler, which resets the MCU and reports the fault in
 * the next HELLO: with nothing else enabled, reaching one of them is a
 * fault. */
#include <stddef.h>
#include <stdint.h>

#include "port_stm32u585.h"
#include "regs.h"

/* Defined by stm32u585.ld. */
extern uint32_t ld_stack_top[];
extern const uint32_t ld_data_load[];
extern uint32_t ld_data_start[], ld_data_end[];
extern uint32_t ld_bss_start[], ld_bss_end[];

int main(void);

#define SYSTEM_VECTORS 16u
#define FAULT          port_stm32u585_fault_isr
#define RESERVED       NULL
/* Runs of unused IRQ vectors. */
#define UNUSED1        FAULT
#define UNUSED2        UNUSED1, UNUSED1
#define UNUSED4        UNUSED2, UNUSED2
#define UNUSED8        UNUSED4, UNUSED4
#define UNUSED16       UNUSED8, UNUSED8
#define UNUSED32       UNUSED16, UNUSED16
#define UNUSED64       UNUSED32, UNUSED32

/* Handlers, except the first word: the initial stack pointer, stored as one
 * (a conversion GCC allows). */
void (*const startup_vectors[])(void)
    __attribute__((used, section(".vectors"))) = {
        (void (*)(void))ld_stack_top,
        startup_reset,
        FAULT, /* NMI */
        FAULT, /* HardFault */
        FAULT, /* MemManage */
        FAULT, /* BusFault */
        FAULT, /* UsageFault */
        FAULT, /* SecureFault */
        RESERVED,
        RESERVED,
        RESERVED,
        FAULT, /* SVCall */
        FAULT, /* DebugMonitor */
        RESERVED,
        FAULT, /* PendSV */
        port_stm32u585_systick_isr,
        /* IRQ0 .. IRQ65 */
        UNUSED64,
        UNUSED2,
        /* IRQ66 */
        port_stm32u585_lpuart1_isr,
        /* IRQ67 .. IRQ125 */
        UNUSED32,
        UNUSED16,
        UNUSED8,
        UNUSED2,
        UNUSED1,
};

_Static_assert(64u + 2u == IRQ_LPUART1, "LPUART1 follows 66 unused IRQs");
_Static_assert(sizeof(startup_vectors) / sizeof(startup_vectors[0]) ==
                   SYSTEM_VECTORS + IRQ_COUNT,
               "the table covers every IRQ of the part");

_Noreturn void startup_reset(void)
{
    const uint32_t *src = ld_data_load;

    for (uint32_t *dst = ld_data_start; dst < ld_data_end;)
        *dst++ = *src++;
    for (uint32_t *dst = ld_bss_start; dst < ld_bss_end;)
        *dst++ = 0;
    /* The bootloader sets it too, but a debugger that loads this image
     * alone may have left the table elsewhere. */
    SCB_VTOR = (uint32_t)(uintptr_t)startup_vectors;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    (void)main();
    port_stm32u585_fault_isr();
}
