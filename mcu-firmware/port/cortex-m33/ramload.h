/* Starting an image that a bootloader runs from RAM (MCUboot's RAM-load
 * scheme) on a Cortex-M33, shared by the bootloaders of the mps2-an505
 * and stm32u585 ports.  Only ARMv8-M architecture registers are touched
 * here (VTOR, MSP, MSPLIM); where the execution region is, and how the
 * watchdog is fed, is the port's. */
#ifndef TETHER_RAMLOAD_H
#define TETHER_RAMLOAD_H

#include <stdint.h>

/* Copies the body (len bytes) to the execution region [base, base + size),
 * clears the rest of the region so that nothing of an earlier image is
 * left to run by mistake, feeds the watchdog, and starts the image as the
 * core starts one at reset: VTOR, the main stack pointer and the reset
 * handler from its vector table at offset 0, MSPLIM cleared for the image
 * to set.  A body shorter than a vector table or longer than the region
 * (which the boot record and port_image_check() rule out) stops in a
 * wait-for-interrupt loop, for the watchdog to reset. */
_Noreturn void ramload_start(const uint8_t *body, uint32_t len, uint32_t base,
                             uint32_t size, void (*feed)(void));

#endif
