/* Start-up of the tether firmware on the Cortex-M33 of the MPS2 AN505: the
 * vector table, the reset handler that prepares RAM for C, and the fault
 * handlers.
 *
 * The bootloader (bootloader.c) copies this image to the execution region
 * and starts it as the core starts an image at reset: it points VTOR at
 * this table (an505.ld puts it first), loads the stack pointer from it and
 * jumps to the reset handler.  Nothing has initialised this image's RAM at
 * that point, so the reset handler copies .data and clears .bss itself.
 *
 * Faults are not survivable here: every fault handler records the cause
 * and resets the MCU, so the host sees a HELLO with reset cause "fault"
 * rather than a silent board.  Interrupts nothing enabled reset it too. */
#include <stdint.h>
#include <string.h>

#include "an505.h"
#include "port_an505.h"

#define SYSTEM_VECTORS 15u /* after the initial stack pointer */

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];

int main(void);
void startup_reset(void);

/* Fault context with a stack that may be the reason for the fault: moves
 * the stack pointer back to the top of the stack before calling anything,
 * so recording the cause cannot fault again and lock the core up. */
__attribute__((naked)) static void fault(void)
{
    __asm__ volatile("movw r0, #:lower16:__stack_top\n"
                     "movt r0, #:upper16:__stack_top\n"
                     "msr msp, r0\n"
                     "b port_an505_fault\n");
}

/* An exception or interrupt this firmware never enables: a fault as far as
 * the firmware is concerned. */
static void unexpected(void)
{
    port_an505_fault();
}

struct vector_table {
    uint32_t *initial_sp;
    void (*handler[SYSTEM_VECTORS + AN505_IRQ_COUNT])(void);
};

/* Entry k of handler is exception k + 1; interrupt n is exception 16 + n. */
#define U unexpected
/* clang-format off */
__attribute__((section(".vectors"), used))
static const struct vector_table vectors = {
    __stack_top,
    {
        /* Reset, NMI, HardFault, MemManage, BusFault, UsageFault,
         * SecureFault, reserved x 3, SVCall, DebugMonitor, reserved,
         * PendSV, SysTick. */
        startup_reset, port_an505_nmi_isr, fault, fault, fault, fault, fault,
        U, U, U, U, U, U, U, port_an505_systick_isr,
        /* Interrupts 0..31: the IoT Kit's own (timers, watchdog, security
         * controllers); none is enabled. */
        U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
        U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
        /* 32, 33: UART0 receive and transmit; 34..47: the other UARTs, SPI
         * and the rest of the FPGA, never enabled. */
        port_an505_uart_rx_isr, port_an505_uart_tx_isr,
        U, U, U, U, U, U, U, U, U, U, U, U, U, U,
    },
};
/* clang-format on */
#undef U

_Static_assert(sizeof(vectors) == 4u * (1u + SYSTEM_VECTORS + AN505_IRQ_COUNT),
               "one vector per exception and interrupt line");

/* Reset context: no stack frame to return to, RAM not yet initialised. */
void startup_reset(void)
{
    /* Catch a stack overflow as a fault rather than as corrupted .bss. */
    __asm__ volatile("msr msplim, %0" : : "r"(__stack_limit));
    SCB_VTOR = (uint32_t)(uintptr_t)&vectors;
    memcpy(__data_start, __data_load,
           (size_t)((uintptr_t)__data_end - (uintptr_t)__data_start));
    memset(__bss_start, 0,
           (size_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start));
    __asm__ volatile("dsb\nisb" ::: "memory");
    main();
    port_an505_fault(); /* main() never returns */
}
