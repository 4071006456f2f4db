/* The registers of the MPS2 AN505 image (Cortex-M33 in the Arm IoT Kit) that
 * this port touches, written out from the Armv8-M architecture manual, the
 * CMSDK reference manual and the AN505 memory map.  Nothing else in the tree
 * may include this file: it is the port's own, not a vendor header.
 *
 * The firmware runs in the Secure state (the core resets into it) with the
 * SAU off, so every access it makes is Secure, and the peripheral
 * protection controllers, which leave every peripheral Secure-only after
 * reset, let it through on either alias (0x4... or 0x5...; both were tried
 * under QEMU).  It uses the Secure aliases throughout (0x1... for code,
 * 0x3... for RAM, 0x5... for peripherals): the IDAU marks those regions
 * Secure, so the addresses stay right if an SAU ever opens the others to a
 * Non-secure image. */
#ifndef TETHER_AN505_H
#define TETHER_AN505_H

#include <stdint.h>

#define AN505_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- Clocks ---- */
/* MAINCLK, which drives the core (and so SysTick with CLKSOURCE = 1), the
 * UARTs and the Secure watchdog.  The IoT Kit gives SysTick no reference
 * clock, so the processor clock is the only choice. */
#define AN505_MAINCLK_HZ 20000000u

/* ---- System control space (Armv8-M) ---- */
#define SCB_VTOR              AN505_REG(0xe000ed08u)
#define SCB_AIRCR             AN505_REG(0xe000ed0cu)
#define SCB_AIRCR_VECTKEY     (0x05fau << 16)
#define SCB_AIRCR_PRIGROUP    (7u << 8)
#define SCB_AIRCR_SYSRESETREQ (1u << 2)
#define SCB_SHPR3             AN505_REG(0xe000ed20u)
#define SCB_SHPR3_SYSTICK(p)  ((uint32_t)(p) << 24) /* SysTick priority */

#define SYST_CSR           AN505_REG(0xe000e010u)
#define SYST_CSR_ENABLE    (1u << 0)
#define SYST_CSR_TICKINT   (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* 1: the processor clock */
#define SYST_RVR           AN505_REG(0xe000e014u)
#define SYST_CVR           AN505_REG(0xe000e018u)

/* NVIC: one bit per interrupt in 32-bit set-enable words; one priority
 * byte per interrupt.  Only the top bits of a priority are implemented. */
#define NVIC_ISER(n)  AN505_REG(0xe000e100u + 4u * (n))
#define NVIC_ICER(n)  AN505_REG(0xe000e180u + 4u * (n))
#define NVIC_ICPR(n)  AN505_REG(0xe000e280u + 4u * (n))
#define NVIC_IPR(irq) (*(volatile uint8_t *)(uintptr_t)(0xe000e400u + (irq)))

/* ---- Interrupt lines ---- */
/* The IoT Kit uses lines 0..31 itself; the FPGA's expansion interrupts
 * start at 32.  Each CMSDK UART n has its own receive (32 + 2n) and
 * transmit (33 + 2n) line. */
#define AN505_IRQ_UART0_RX 32u
#define AN505_IRQ_UART0_TX 33u
#define AN505_IRQ_COUNT    48u /* lines the vector table covers */

/* ---- CMSDK APB timer 0 (Secure alias) ---- */
/* A 32-bit down-counter on MAINCLK: from RELOAD to 0, one cycle at 0, then
 * RELOAD again, so RELOAD = 0xffffffff counts through all 2^32 values.
 * Writing RELOAD also loads the counter. */
#define TIMER0_BASE   0x50000000u
#define TIMER0_CTRL   AN505_REG(TIMER0_BASE + 0x00u)
#define TIMER_CTRL_EN (1u << 0)
#define TIMER0_VALUE  AN505_REG(TIMER0_BASE + 0x04u)
#define TIMER0_RELOAD AN505_REG(TIMER0_BASE + 0x08u)

/* ---- CMSDK APB UART0 (Secure alias) ---- */
#define UART0_BASE           0x50200000u
#define UART0_DATA           AN505_REG(UART0_BASE + 0x00u)
#define UART0_STATE          AN505_REG(UART0_BASE + 0x04u)
#define UART_STATE_TXFULL    (1u << 0)
#define UART_STATE_RXFULL    (1u << 1)
#define UART_STATE_TXOVERRUN (1u << 2)
#define UART_STATE_RXOVERRUN (1u << 3)
#define UART0_CTRL           AN505_REG(UART0_BASE + 0x08u)
#define UART_CTRL_TX_EN      (1u << 0)
#define UART_CTRL_RX_EN      (1u << 1)
#define UART_CTRL_TX_INTEN   (1u << 2)
#define UART_CTRL_RX_INTEN   (1u << 3)
/* INTSTATUS bits are cleared by writing 1. */
#define UART0_INTSTATUS      AN505_REG(UART0_BASE + 0x0cu)
#define UART_INT_TX          (1u << 0)
#define UART_INT_RX          (1u << 1)
#define UART0_BAUDDIV        AN505_REG(UART0_BASE + 0x10u) /* 16 at least */

/* ---- CMSDK APB watchdog: the IoT Kit's Secure watchdog ---- */
/* Counts MAINCLK down from LOAD.  The first time it reaches zero it raises
 * its interrupt, wired to the core's NMI, and reloads; the second time, with
 * the interrupt still pending, it resets the system.  Writing INTCLR clears
 * the interrupt and reloads the counter: that is the feed.  Registers other
 * than LOCK ignore writes while the lock is on. */
#define WDOG_BASE          0x50081000u
#define WDOG_LOAD          AN505_REG(WDOG_BASE + 0x000u)
#define WDOG_CONTROL       AN505_REG(WDOG_BASE + 0x008u)
#define WDOG_CONTROL_INTEN (1u << 0)
#define WDOG_CONTROL_RESEN (1u << 1)
#define WDOG_INTCLR        AN505_REG(WDOG_BASE + 0x00cu)
#define WDOG_LOCK          AN505_REG(WDOG_BASE + 0xc00u)
#define WDOG_UNLOCK_KEY    0x1acce551u
/* MAINCLK cycles in ms milliseconds, for WDOG_LOAD. */
#define WDOG_TICKS(ms)     ((uint32_t)(AN505_MAINCLK_HZ / 1000u) * (ms))

/* Starts the watchdog: its warning (the NMI) after ticks cycles without a
 * feed, the system reset after as many again.  The bootloader starts it
 * before it runs an image, and the image starts it again. */
static inline void an505_wdog_start(uint32_t ticks)
{
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_LOAD = ticks;
    WDOG_CONTROL = WDOG_CONTROL_INTEN | WDOG_CONTROL_RESEN;
    WDOG_INTCLR = 1u;
    WDOG_LOCK = 0u;
}

/* Clears a pending warning and reloads the counter: the feed. */
static inline void an505_wdog_feed(void)
{
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_INTCLR = 1u;
    WDOG_LOCK = 0u;
}

#endif
