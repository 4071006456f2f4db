/* A second main() for the mps2-an505 port, linked into a test image
 * (tether-fw-resets.elf, port.mk) in place of main.c: it misbehaves on
 * purpose so that tests can see the port's reset causes under QEMU.
 *
 * It runs the core as main.c does, and RESET_TEST_AFTER_US after each boot
 * it acts on how that boot began: after a power-on it stops feeding the
 * watchdog (a hung loop, interrupts still on), so the watchdog warns and
 * then resets it; after that watchdog reset it executes an undefined
 * instruction, so the fault handler resets it; after the fault it runs on
 * like the real image.  The host therefore sees HELLO with reset causes
 * power-on, watchdog and fault, in that order, and then normal telemetry. */
#include <stdint.h>

#include "fw.h"
#include "msg.h"
#include "port.h"
#include "port_an505.h"

#define RESET_TEST_AFTER_US 2000000u

static _Noreturn void hang(void)
{
    for (;;)
        __asm__ volatile("" ::: "memory");
}

static _Noreturn void fault(void)
{
    for (;;)
        __asm__ volatile("udf #0" ::: "memory");
}

int main(void)
{
    struct fw_options o;
    uint32_t start;
    uint8_t cause;

    fw_defaults(&o);
    o.channels = PORT_ADC_CHANNELS_MAX;
    o.mask = (uint16_t)((1u << PORT_ADC_CHANNELS_MAX) - 1u);
    port_an505_init(o.seed);
    fw_init(&o);
    cause = port_reset_cause();
    start = port_time_us();
    for (;;) {
        port_an505_idle(fw_poll());
        if (port_time_us() - start < RESET_TEST_AFTER_US)
            continue;
        if (cause == MSG_RESET_POWER_ON)
            hang();
        if (cause == MSG_RESET_WATCHDOG)
            fault();
    }
}
