/* The port contract on Linux, for tether-sim.  Time is CLOCK_MONOTONIC, the
 * ADC is the simulated waveforms of core/wave.c, interrupts are the sim's
 * own loop (single-threaded, so masking them is a no-op), and a reset
 * unwinds to the top of the loop and starts the core again, as a real reset
 * would, with the pseudo-terminal left open like a wire. */
#define _POSIX_C_SOURCE 200809L
#include "port_host.h"

#include <setjmp.h>
#include <time.h>

#include "msg.h"
#include "port.h"
#include "wave.h"

static struct {
    sigjmp_buf *reset_to;
    struct wave wave;
    uint64_t start_ns;
    uint32_t offset_us;
    uint32_t last_kick_us;
    uint8_t cause;
} host;

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void port_host_init(sigjmp_buf *reset_to, uint32_t seed,
                    uint32_t clock_offset_us, uint8_t cause)
{
    host.reset_to = reset_to;
    host.start_ns = mono_ns();
    host.offset_us = clock_offset_us;
    host.cause = cause;
    wave_init(&host.wave, PORT_ADC_BITS, seed);
    host.last_kick_us = port_time_us();
}

bool port_host_watchdog_expired(void)
{
    if (port_time_us() - host.last_kick_us <= PORT_WATCHDOG_MS * 1000u)
        return false;
    host.cause = MSG_RESET_WATCHDOG;
    return true;
}

void port_host_booted(void)
{
    host.last_kick_us = port_time_us();
}

uint32_t port_time_us(void)
{
    return (uint32_t)((mono_ns() - host.start_ns) / 1000u) + host.offset_us;
}

void port_uart_kick(void)
{
    /* The sim's loop drains the FIFO on every pass. */
}

uint16_t port_adc_read(uint8_t ch)
{
    return wave_sample(&host.wave, ch, port_time_us());
}

uint8_t port_reset_cause(void)
{
    return host.cause;
}

_Noreturn void port_reset(void)
{
    host.cause = MSG_RESET_SOFTWARE;
    siglongjmp(*host.reset_to, 1);
}

void port_watchdog_kick(void)
{
    host.last_kick_us = port_time_us();
}

uint32_t port_irq_save(void)
{
    return 0;
}

void port_irq_restore(uint32_t state)
{
    (void)state;
}
