/* The port contract on the MPS2 AN505 (Cortex-M33), as QEMU's mps2-an505
 * machine emulates it.
 *
 * Time comes from the IoT Kit's CMSDK timer 0, a 32-bit counter on the
 * 20 MHz main clock that wraps every 214 s, extended in software at every
 * read into the contract's microseconds wrapping at 2^32.  It depends on no
 * interrupt being taken in time: counting SysTick interrupts would lose
 * time whenever the host holds QEMU up, because QEMU merges the missed
 * ticks of a periodic timer into one interrupt.  SysTick only wakes the
 * idle loop every millisecond.  The UART is CMSDK UART0: its receive interrupt
 * moves each byte into the core's FIFO, its transmit interrupt refills the
 * one-byte transmit buffer from the core's FIFO, and nothing ever waits for the
 * line. The board has no ADC, so the channels carry core/wave.c's waveforms,
 * the same as tether-sim's.  The watchdog is the IoT Kit's Secure CMSDK
 * watchdog; a reset is a system reset through the SCB (AIRCR.SYSRESETREQ),
 * which QEMU performs as a full machine reset.
 *
 * Reset causes.  QEMU models only power-on resets in the IoT Kit's
 * RESET_SYNDROME register (it reads 1 after any reset), so the firmware
 * keeps its own record in 16 bytes of SRAM that no section covers (see
 * an505.ld): a reset clears registers but not SRAM, and QEMU reloads only
 * the image's own segments.  Before it resets on purpose the firmware writes
 * why (software, fault); the watchdog's early-warning interrupt writes
 * "watchdog"; at start-up the record is read and then set to "running".  A
 * record that is not valid means the SRAM was not powered: a power-on.  A
 * valid "running" record means a reset nobody here asked for and no
 * warning came before: the reset button, a debugger, QEMU's system_reset,
 * or a watchdog reset whose warning never got to run (QEMU stopped and
 * resumed runs both expiries of the watchdog before the core runs again).
 * The firmware cannot tell these apart and says so: cause unknown.
 *
 * Receive overruns.  QEMU's UART takes a byte from the pty only when its
 * one-byte buffer is empty, so bursts wait in the pty, never overrun the
 * UART, and can only overflow the core's FIFO, which counts what it loses
 * (STATS rx_overruns).  On the board a byte lost in the UART shows as a
 * damaged frame, counted by the core's receiver. */
#include "port_an505.h"

#include <stdbool.h>

#include "an505.h"
#include "fw.h"
#include "msg.h"
#include "port.h"
#include "wave.h"

#define BAUD            115200u
#define TICK_US         1000u /* SysTick period: idle wake-ups this often */
#define CYCLES_PER_US   (AN505_MAINCLK_HZ / 1000000u)
#define TICK_RELOAD     (CYCLES_PER_US * TICK_US - 1u)
#define RESET_DRAIN_US  2000u /* longest wait for the UART's last byte */
#define WDOG_WARN_TICKS WDOG_TICKS(PORT_WATCHDOG_MS / 2u)
#define IRQ_PRIORITY    0x80u /* SysTick and the UART alike: none preempts */

_Static_assert(TICK_RELOAD < (1u << 24), "SysTick has a 24-bit counter");
_Static_assert(AN505_MAINCLK_HZ / BAUD >= 16u, "UART divider is at least 16");

/* ---- The reset record ---- */

#define RETAINED_MAGIC 0x74657468u /* "teth" */

enum retained_state {
    STATE_RUNNING = 1,
    STATE_SOFTWARE, /* port_reset() */
    STATE_WATCHDOG, /* the watchdog's warning came and was not answered */
    STATE_FAULT,    /* a fault handler */
};

/* At a fixed address outside every section (an505.ld).  check is ~state, so
 * power-on garbage is not mistaken for a record. */
struct retained {
    uint32_t magic;
    uint32_t state;
    uint32_t check;
};
extern volatile struct retained port_an505_retained;

static void record(enum retained_state state)
{
    port_an505_retained.magic = RETAINED_MAGIC;
    port_an505_retained.state = (uint32_t)state;
    port_an505_retained.check = ~(uint32_t)state;
}

static uint8_t cause_from_record(void)
{
    if (port_an505_retained.magic != RETAINED_MAGIC ||
        port_an505_retained.check != ~port_an505_retained.state)
        return MSG_RESET_POWER_ON;
    switch (port_an505_retained.state) {
    case STATE_SOFTWARE:
        return MSG_RESET_SOFTWARE;
    case STATE_WATCHDOG:
        return MSG_RESET_WATCHDOG;
    case STATE_FAULT:
        return MSG_RESET_FAULT;
    default:
        return MSG_RESET_UNKNOWN;
    }
}

/* ---- State ---- */

static struct {
    uint32_t last_count;   /* timer 0 at the last reading of the clock */
    uint32_t now_us;       /* the clock at that reading */
    uint32_t cycles;       /* main clock cycles not yet in now_us */
    volatile bool rx_woke; /* a byte came since the loop last ran */
    struct wave wave;
    uint8_t cause;
} an505;

/* ---- Interrupts ---- */

uint32_t port_irq_save(void)
{
    uint32_t primask;

    __asm__ volatile("mrs %0, primask\n"
                     "cpsid i"
                     : "=r"(primask)
                     :
                     : "memory");
    return primask;
}

void port_irq_restore(uint32_t state)
{
    __asm__ volatile("msr primask, %0" : : "r"(state) : "memory");
}

static void irq_enable(uint32_t irq)
{
    NVIC_IPR(irq) = IRQ_PRIORITY;
    NVIC_ICPR(irq / 32u) = 1u << (irq % 32u);
    NVIC_ISER(irq / 32u) = 1u << (irq % 32u);
}

/* ---- Time ---- */

/* Interrupt context, every TICK_US: the interrupt itself is the point, as
 * it ends the WFI in port_an505_idle(). */
void port_an505_systick_isr(void)
{
}

/* Any context.  The loop reads the clock at least every TICK_US while it
 * idles, far more often than the 214 s the counter takes to wrap. */
uint32_t port_time_us(void)
{
    uint32_t irq = port_irq_save();
    uint32_t count = TIMER0_VALUE;
    uint32_t elapsed = an505.last_count - count; /* it counts down */
    uint32_t now;

    an505.last_count = count;
    an505.cycles += elapsed % CYCLES_PER_US;
    an505.now_us += elapsed / CYCLES_PER_US + an505.cycles / CYCLES_PER_US;
    an505.cycles %= CYCLES_PER_US;
    now = an505.now_us;
    port_irq_restore(irq);
    return now;
}

/* ---- UART ---- */

/* Moves bytes from the core's FIFO into the UART while it has room.
 * Interrupt context, or loop context with interrupts masked. */
static void tx_fill(void)
{
    while (!(UART0_STATE & UART_STATE_TXFULL)) {
        int b = fw_uart_tx_next();

        if (b < 0)
            return;
        UART0_DATA = (uint32_t)b;
    }
}

void port_uart_kick(void)
{
    uint32_t irq = port_irq_save();

    /* When the UART is still busy, its transmit interrupt comes once the
     * byte has gone, and carries on from there. */
    tx_fill();
    port_irq_restore(irq);
}

/* Interrupt context: the transmit buffer went from full to empty. */
void port_an505_uart_tx_isr(void)
{
    UART0_INTSTATUS = UART_INT_TX;
    tx_fill();
}

/* Interrupt context: a byte arrived.  The flag is cleared before the data
 * is read, so a byte that lands during the loop raises the interrupt
 * again. */
void port_an505_uart_rx_isr(void)
{
    UART0_INTSTATUS = UART_INT_RX;
    while (UART0_STATE & UART_STATE_RXFULL)
        fw_uart_rx((uint8_t)UART0_DATA);
    an505.rx_woke = true;
}

static void uart_init(void)
{
    UART0_CTRL = 0;
    UART0_BAUDDIV = AN505_MAINCLK_HZ / BAUD;
    UART0_STATE = UART_STATE_TXOVERRUN | UART_STATE_RXOVERRUN;
    UART0_INTSTATUS = UART_INT_TX | UART_INT_RX;
    UART0_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_TX_INTEN |
                 UART_CTRL_RX_INTEN;
    irq_enable(AN505_IRQ_UART0_RX);
    irq_enable(AN505_IRQ_UART0_TX);
}

/* ---- Watchdog ---- */

/* The watchdog warns (NMI) at half its period and resets the system at the
 * full period if the warning is still pending. */
static void watchdog_init(void)
{
    an505_wdog_start(WDOG_WARN_TICKS);
}

void port_watchdog_kick(void)
{
    an505_wdog_feed();
    /* A late loop that answered the warning after all: no reset comes. */
    if (port_an505_retained.state == STATE_WATCHDOG)
        record(STATE_RUNNING);
}

/* NMI context: the watchdog has not been fed for half its period.  The
 * reset follows at the full period unless the loop feeds it first; the
 * record says why, in case it does not. */
void port_an505_nmi_isr(void)
{
    record(STATE_WATCHDOG);
}

/* ---- Reset ---- */

static _Noreturn void system_reset(void)
{
    __asm__ volatile("cpsid i\n"
                     "dsb" ::
                         : "memory");
    SCB_AIRCR = SCB_AIRCR_VECTKEY | (SCB_AIRCR & SCB_AIRCR_PRIGROUP) |
                SCB_AIRCR_SYSRESETREQ;
    __asm__ volatile("dsb" ::: "memory");
    for (;;)
        __asm__ volatile("wfi");
}

uint8_t port_reset_cause(void)
{
    return an505.cause;
}

_Noreturn void port_reset(void)
{
    uint32_t start = port_time_us();

    /* The core has drained its FIFO; let the last byte leave the UART. */
    while ((UART0_STATE & UART_STATE_TXFULL) &&
           port_time_us() - start < RESET_DRAIN_US)
        ;
    record(STATE_SOFTWARE);
    system_reset();
}

_Noreturn void port_an505_fault(void)
{
    record(STATE_FAULT);
    system_reset();
}

/* ---- ADC ---- */

uint16_t port_adc_read(uint8_t ch)
{
    return wave_sample(&an505.wave, ch, port_time_us());
}

/* ---- Bring-up and idling ---- */

void port_an505_init(uint32_t seed)
{
    an505.cause = cause_from_record();
    record(STATE_RUNNING);
    wave_init(&an505.wave, PORT_ADC_BITS, seed);

    TIMER0_CTRL = 0;
    TIMER0_RELOAD = 0xffffffffu;
    an505.last_count = TIMER0_VALUE;
    TIMER0_CTRL = TIMER_CTRL_EN;

    SYST_CSR = 0;
    SCB_SHPR3 = (SCB_SHPR3 & 0x00ffffffu) | SCB_SHPR3_SYSTICK(IRQ_PRIORITY);
    SYST_RVR = TICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;

    uart_init();
    watchdog_init();
    __asm__ volatile("cpsie i" ::: "memory");
}

void port_an505_idle(uint32_t us)
{
    uint32_t start = port_time_us();

    /* With interrupts masked, WFI still wakes on a pending interrupt, which
     * then runs when they are unmasked: a byte cannot slip in between the
     * check and the sleep.  SysTick wakes the loop every millisecond to
     * look at the clock. */
    for (;;) {
        __asm__ volatile("cpsid i" ::: "memory");
        if (an505.rx_woke || port_time_us() - start >= us)
            break;
        __asm__ volatile("wfi");
        __asm__ volatile("cpsie i" ::: "memory");
    }
    an505.rx_woke = false;
    __asm__ volatile("cpsie i" ::: "memory");
}
