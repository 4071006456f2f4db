/* What the mps2-an505 startup code, main loop and bootloader need from
 * the port beyond port.h: bring-up, the idle wait, where the slots are,
 * and the handlers the vector table names. */
#ifndef TETHER_PORT_AN505_H
#define TETHER_PORT_AN505_H

#include <stdint.h>

/* Works out why the MCU reset, starts the clock, the UART and the watchdog
 * with seed for the simulated ADC, and enables interrupts.  Call once,
 * before fw_init(). */
void port_an505_init(uint32_t seed);

/* Sleeps until us microseconds have passed or a byte has been received,
 * whichever comes first.  Loop context. */
void port_an505_idle(uint32_t us);

/* Records a fault as the reset cause and resets.  Fault handler context. */
_Noreturn void port_an505_fault(void);

/* The first byte of update slot 0 or 1 in memory, or NULL for another
 * index; the bootloader runs a slot's image from there (port_flash.c). */
uint8_t *port_flash_slot(uint8_t slot);

/* Interrupt handlers, named in the vector table (startup.c). */
void port_an505_systick_isr(void);
void port_an505_uart_rx_isr(void);
void port_an505_uart_tx_isr(void);
void port_an505_nmi_isr(void);

#endif
