/* What the STM32U585 port's files share: startup.c owns the vector
 * table and the reset path, port_stm32u585.c the peripherals and main(),
 * port_flash.c the update storage (also linked into the bootloader). */
#ifndef TETHER_PORT_STM32U585_H
#define TETHER_PORT_STM32U585_H

#include <stdint.h>

/* ---- startup.c ---- */

/* The reset vector: sets up .data and .bss, then calls main().  Also the
 * ELF entry point, so a debugger's "load" starts in the right place. */
_Noreturn void startup_reset(void);

/* ---- port_stm32u585.c, reached through the vector table ---- */

/* SysTick, once a millisecond: advances the clock.  Interrupt context. */
void port_stm32u585_systick_isr(void);

/* LPUART1: feeds received bytes to the core and drains its TX FIFO.
 * Interrupt context. */
void port_stm32u585_lpuart1_isr(void);

/* Every fault, and any exception or interrupt nobody expects: notes the
 * fault for the next HELLO and resets the MCU.  Handler mode. */
_Noreturn void port_stm32u585_fault_isr(void);

/* ---- port_flash.c ---- */

/* The first byte of slot 0 or 1 in flash, or NULL for another index.
 * For the bootloader, which starts an image from where it lies. */
const uint8_t *port_flash_slot(uint8_t slot);

#endif
