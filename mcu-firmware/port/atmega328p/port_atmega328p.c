/* The port contract on the classic Arduino Uno's ATmega328P at 16 MHz.
 *
 * The serial line is USART0 (PD0/PD1, wired to the board's USB-serial
 * bridge), 115200 8N1 in double-speed mode: UBRR = 16 gives 117647 baud,
 * 2.1% fast.  That is inside what 8N1 receivers tolerate, and it is the
 * setting the Arduino core and the Uno's bootloader use, so the Uno's own
 * USB-serial chip, which makes its rate the same way, is off by the same
 * amount; a host with an exact 115200 sees the whole 2.1%.
 *
 * Time is Timer1 counting half-microseconds (clock / 8); its overflow, every
 * 32.768 ms, is the only periodic interrupt.  The ADC reads A0..A5 (ADC0..5)
 * at 10 bits against AVcc, with its clock at 125 kHz (16 MHz / 128, within
 * the 50..200 kHz the datasheet asks for full resolution): one conversion
 * takes 104 us.  The watchdog resets the MCU after 2 s without a kick, and
 * port_reset() uses it too, as there is no other way to reset an AVR from
 * software.
 *
 * The reset cause comes from MCUSR, which must be read and cleared before
 * anything else and the watchdog stopped (a watchdog reset leaves it
 * running at its shortest timeout).  Bootloaders such as the Uno's Optiboot
 * read and clear MCUSR themselves before starting the application, so
 * behind one the flags read as 0 and the cause is reported as unknown,
 * except for the resets this firmware asked for, which it notes in RAM that
 * survives a reset.
 *
 * The loop never sleeps: it polls the core continuously, which keeps
 * sampling on time without a second timer. */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <stdint.h>

#include "fw.h"
#include "msg.h"
#include "port.h"

#define UBRR_115200 16u
#define MARK_REBOOT 0x5e7bu

_Static_assert(F_CPU == 16000000UL, "UBRR, Timer1 and the ADC assume 16 MHz");

/* Both outlive a reset: .noinit is neither zeroed nor initialised. */
static uint8_t mcusr_at_boot __attribute__((section(".noinit")));
static uint16_t mark __attribute__((section(".noinit")));

static volatile uint32_t overflows; /* of Timer1, in interrupt context */
static uint8_t cause;

/* Runs in the start-up code, before .data and .bss are set up and before
 * main(): the avr-libc way of catching MCUSR. */
__attribute__((naked, used, section(".init3"))) static void early(void)
{
    mcusr_at_boot = MCUSR;
    MCUSR = 0;
    wdt_disable();
}

/* ---- Interrupt masking ---- */

uint32_t port_irq_save(void)
{
    uint8_t sreg = SREG;

    cli();
    return sreg;
}

void port_irq_restore(uint32_t state)
{
    __asm__ volatile("" ::: "memory");
    SREG = (uint8_t)state;
}

/* ---- Reset and its cause ---- */

static uint8_t read_cause(void)
{
    uint8_t f = mcusr_at_boot;
    uint8_t c;

    if (f & _BV(PORF))
        c = MSG_RESET_POWER_ON;
    else if (f & _BV(WDRF))
        c = mark == MARK_REBOOT ? MSG_RESET_SOFTWARE : MSG_RESET_WATCHDOG;
    else if (f & _BV(BORF))
        c = MSG_RESET_BROWN_OUT;
    else if (f & _BV(EXTRF))
        c = MSG_RESET_PIN;
    else
        c = mark == MARK_REBOOT ? MSG_RESET_SOFTWARE : MSG_RESET_UNKNOWN;
    mark = 0;
    return c;
}

uint8_t port_reset_cause(void)
{
    return cause;
}

_Noreturn void port_reset(void)
{
    mark = MARK_REBOOT;
    wdt_enable(WDTO_15MS);
    wdt_reset(); /* the shorter timeout counts from here */
    for (;;)
        ;
}

void port_watchdog_kick(void)
{
    wdt_reset();
}

/* ---- Time ---- */

ISR(TIMER1_OVF_vect)
{
    overflows++;
}

uint32_t port_time_us(void)
{
    uint8_t sreg = SREG;
    uint32_t ovf;
    uint16_t t;

    cli();
    ovf = overflows;
    t = TCNT1;
    /* Overflowed, but the interrupt has not run: the count is from after
     * the wrap if it is small. */
    if ((TIFR1 & _BV(TOV1)) && t < 0x8000u)
        ovf++;
    SREG = sreg;
    /* Each overflow is 65536 half-microseconds.  Taken modulo 2^32, this
     * wraps at 2^32 us like every port's clock. */
    return (ovf << 15) + (t >> 1);
}

/* ---- UART ---- */

ISR(USART_RX_vect)
{
    /* A byte with a framing error is still handed over: the frame it
     * lands in fails its CRC and is counted there. */
    fw_uart_rx(UDR0);
}

ISR(USART_UDRE_vect)
{
    int b = fw_uart_tx_next();

    if (b < 0)
        UCSR0B &= (uint8_t)~_BV(UDRIE0);
    else
        UDR0 = (uint8_t)b;
}

void port_uart_kick(void)
{
    uint8_t sreg = SREG;

    /* The data register is empty while the transmitter is idle, so this
     * interrupts at once and the handler sends the first byte. */
    cli();
    UCSR0B |= _BV(UDRIE0);
    SREG = sreg;
}

/* ---- ADC ---- */

uint16_t port_adc_read(uint8_t ch)
{
    if (ch >= PORT_ADC_CHANNELS_MAX)
        return 0;
    ADMUX = (uint8_t)(_BV(REFS0) | ch);
    ADCSRA |= _BV(ADSC);
    while (ADCSRA & _BV(ADSC))
        ;
    return ADC;
}

/* ---- The loop ---- */

static void hardware_init(void)
{
    wdt_enable(WDTO_2S);

    TCCR1A = 0;
    TCCR1B = _BV(CS11); /* clock / 8: 2 MHz */
    TIMSK1 = _BV(TOIE1);

    UBRR0 = UBRR_115200;
    UCSR0A = _BV(U2X0);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00); /* 8N1 */
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);

    DIDR0 = 0x3f; /* A0..A5 analog only: no digital input buffers */
    ADMUX = _BV(REFS0);
    ADCSRA = _BV(ADEN) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);
}

int main(void)
{
    struct fw_options o;

    cause = read_cause();
    hardware_init();
    sei();

    fw_defaults(&o);
    o.channels = PORT_ADC_CHANNELS_MAX;
    o.mask = (uint16_t)((1u << PORT_ADC_CHANNELS_MAX) - 1u);
    fw_init(&o);
    for (;;)
        (void)fw_poll();
}
