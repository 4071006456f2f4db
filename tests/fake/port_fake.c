/* A link-time fake of the port contract for unit tests: the clock moves
 * only when a test says so, the ADC returns a value made of the channel and
 * the time, and a reset long-jumps to where the test asked. */
#include "port_fake.h"

#include <stdlib.h>

struct port_fake port_fake;

uint32_t port_time_us(void)
{
    return port_fake.now_us;
}

void port_uart_kick(void)
{
    port_fake.kicks++;
}

uint16_t port_adc_read(uint8_t ch)
{
    return port_fake_adc_value(ch, port_fake.now_us);
}

uint8_t port_reset_cause(void)
{
    return port_fake.reset_cause;
}

_Noreturn void port_reset(void)
{
    port_fake.resets++;
    if (port_fake.reset_to == NULL)
        abort();
    longjmp(*port_fake.reset_to, 1);
}

void port_watchdog_kick(void)
{
    port_fake.watchdog_kicks++;
}

uint32_t port_irq_save(void)
{
    return port_fake.irq_depth++;
}

void port_irq_restore(uint32_t state)
{
    port_fake.irq_depth = state;
}
