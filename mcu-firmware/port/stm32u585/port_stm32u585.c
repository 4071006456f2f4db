/* The port contract on the Arduino UNO Q's STM32U585, at register level.
 *
 * What the board gives us, and where each fact comes from:
 *   - The link to Linux (/dev/ttyHS1) is LPUART1 on PG7 (TX) and PG8 (RX),
 *     alternate function 8, 115200 8N1 without flow control: Zephyr's board
 *     file arduino_uno_q-common.dtsi (lpuart1 on lpuart1_tx_pg7 and
 *     lpuart1_rx_pg8), and ArduinoCore-zephyr's UNO Q overlay, which names
 *     lpuart1 the router serial.  PG2..PG15 are powered from VDDIO2, which
 *     must be declared valid first (PWR_SVMCR.IO2SV), as Zephyr's STM32 GPIO
 *     driver does for port G.
 *   - A0..A5 are PA4, PA5, PA6, PA7, PC1, PC0, on ADC1 channels 9, 10, 11,
 *     12, 2, 1 (the same two files: adc1_in9_pa4 .. adc1_in1_pc0 and the
 *     io-channels list).  PA2 drives an analog switch that connects VREF+ to
 *     VDDA when low (ArduinoCore-zephyr's analog_reference()); we drive it
 *     low, the board's default reference.
 *
 * Clocks are kept simple: SYSCLK = HCLK = PCLKx = HSI16, 16 MHz, in voltage
 * range 1 (the range the stock firmware runs in, so every peripheral is in
 * its full-performance range) with one flash wait state, which is enough in
 * every range.  HSI16 is also the kernel clock of LPUART1 (BRR = 256 *
 * 16 MHz / 115200 = 35556, an error of 0.001%, well inside the 0x300 ..
 * 0xfffff the LPUART accepts) and of ADC1.  SysTick interrupts once a
 * millisecond and its counter gives the microseconds in between.  The IWDG
 * runs from the 32 kHz LSI with a timeout of twice PORT_WATCHDOG_MS.
 *
 * Interrupts: SysTick and LPUART1 only, both at the default priority, so
 * neither preempts the other.  Everything else the core shares with them
 * goes through fw_uart_rx() / fw_uart_tx_next() and port_irq_save(). */
#include <stdbool.h>
#include <stdint.h>

#include "fw.h"
#include "msg.h"
#include "port.h"
#include "port_stm32u585.h"
#include "regs.h"

#define HSI16_HZ       16000000u
#define CYCLES_PER_US  (HSI16_HZ / 1000000u)
#define TICK_US        1000u
#define SYSTICK_RELOAD (CYCLES_PER_US * TICK_US - 1u)
#define BAUD           115200u
#define LPUART_DIV     ((256u * HSI16_HZ + BAUD / 2u) / BAUD)
#define LSI_HZ         32000u
#define IWDG_RELOAD    (LSI_HZ / 64u * 2u * PORT_WATCHDOG_MS / 1000u - 1u)

/* Why the next boot happened, kept in RAM the start-up code leaves alone
 * (.noinit) because both causes show up as a plain software reset in
 * RCC_CSR. */
#define MARK_REBOOT UINT32_C(0x5e7b0075)
#define MARK_FAULT  UINT32_C(0xfa017ed0)

_Static_assert(LPUART_DIV >= 0x300u && LPUART_DIV <= 0xfffffu,
               "LPUART1 cannot make this baud rate from HSI16");
_Static_assert(SYSTICK_RELOAD <= 0xffffffu, "SysTick reload is 24 bits");
_Static_assert(IWDG_RELOAD <= 0xfffu, "IWDG reload is 12 bits");

static const uint8_t adc_channel[PORT_ADC_CHANNELS_MAX] = {9, 10, 11, 12, 2, 1};

static uint32_t mark __attribute__((section(".noinit")));
static volatile uint32_t ticks_ms;
static uint8_t cause;

/* ---- Interrupt masking ---- */

uint32_t port_irq_save(void)
{
    uint32_t primask;

    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

void port_irq_restore(uint32_t state)
{
    __asm__ volatile("msr primask, %0" ::"r"(state) : "memory");
}

/* ---- Reset and its cause ---- */

/* RCC_CSR keeps the flags of every reset since they were last cleared; a
 * watchdog or software reset also pulls NRST, so PINRSTF comes with them
 * and is looked at last.  A low-power reset (LPWRRSTF) needs a Stop or
 * Standby mode this firmware never enters, so it reads as unknown. */
static uint8_t read_cause(void)
{
    uint32_t csr = RCC_CSR;
    uint8_t c;

    if (csr & (RCC_CSR_IWDGRSTF | RCC_CSR_WWDGRSTF))
        c = MSG_RESET_WATCHDOG;
    else if (csr & RCC_CSR_SFTRSTF)
        c = mark == MARK_FAULT ? MSG_RESET_FAULT : MSG_RESET_SOFTWARE;
    else if (csr & RCC_CSR_BORRSTF)
        c = MSG_RESET_POWER_ON; /* power-on is a brown-out reset too */
    else if (csr & RCC_CSR_PINRSTF)
        c = MSG_RESET_PIN;
    else
        c = MSG_RESET_UNKNOWN;
    RCC_CSR |= RCC_CSR_RMVF;
    mark = 0;
    return c;
}

static _Noreturn void reset_with(uint32_t why)
{
    mark = why;
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = SCB_AIRCR_VECTKEY | SCB_AIRCR_SYSRESETREQ;
    __asm__ volatile("dsb" ::: "memory");
    for (;;)
        ;
}

uint8_t port_reset_cause(void)
{
    return cause;
}

_Noreturn void port_reset(void)
{
    reset_with(MARK_REBOOT);
}

_Noreturn void port_stm32u585_fault_isr(void)
{
    reset_with(MARK_FAULT);
}

/* ---- Watchdog ---- */

static void watchdog_start(void)
{
    IWDG_KR = IWDG_KR_START; /* also starts the LSI */
    IWDG_KR = IWDG_KR_UNLOCK;
    IWDG_PR = IWDG_PR_DIV64;
    IWDG_RLR = IWDG_RELOAD;
    while (IWDG_SR & (IWDG_SR_PVU | IWDG_SR_RVU))
        ;
    IWDG_KR = IWDG_KR_RELOAD;
}

void port_watchdog_kick(void)
{
    IWDG_KR = IWDG_KR_RELOAD;
}

/* ---- Clocks ---- */

static void clock_init(void)
{
    RCC_AHB3ENR |= RCC_AHB3ENR_PWREN;
    (void)RCC_AHB3ENR; /* the enable takes effect before PWR is touched */
    PWR_VOSR = (PWR_VOSR & ~PWR_VOSR_VOS_M) | PWR_VOSR_VOS_R1;
    while (!(PWR_VOSR & PWR_VOSR_VOSRDY))
        ;
    PWR_SVMCR |= PWR_SVMCR_IO2SV | PWR_SVMCR_ASV;

    /* Wait states before the faster clock, and read back as RM0456 asks. */
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_M) | 1u;
    while ((FLASH_ACR & FLASH_ACR_LATENCY_M) != 1u)
        ;
    RCC_CR |= RCC_CR_HSION;
    while (!(RCC_CR & RCC_CR_HSIRDY))
        ;
    RCC_CFGR1 = (RCC_CFGR1 & ~RCC_CFGR1_SW_M) | RCC_CFGR1_SW_HSI16;
    while ((RCC_CFGR1 & RCC_CFGR1_SWS_M) != RCC_CFGR1_SWS_HSI16)
        ;

    RCC_CCIPR3 =
        (RCC_CCIPR3 & ~(RCC_CCIPR3_LPUART1SEL_M | RCC_CCIPR3_ADCDACSEL_M)) |
        RCC_CCIPR3_LPUART1SEL_HSI | RCC_CCIPR3_ADCDACSEL_HSI;
    RCC_AHB2ENR1 |= RCC_AHB2ENR1_GPIOAEN | RCC_AHB2ENR1_GPIOCEN |
                    RCC_AHB2ENR1_GPIOGEN | RCC_AHB2ENR1_ADC12EN;
    RCC_APB3ENR |= RCC_APB3ENR_LPUART1EN;
    (void)RCC_APB3ENR;
}

/* ---- Time ---- */

static void systick_init(void)
{
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSRC | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

void port_stm32u585_systick_isr(void)
{
    ticks_ms++;
}

uint32_t port_time_us(void)
{
    uint32_t irq = port_irq_save();
    uint32_t ms = ticks_ms;
    uint32_t left = SYST_CVR;

    /* The counter has wrapped but its interrupt has not run yet: count the
     * millisecond here, and read the counter again so it is past the
     * wrap. */
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        left = SYST_CVR;
        ms++;
    }
    port_irq_restore(irq);
    /* Wraps at 2^32 us: ms * 1000 is taken modulo 2^32 as well. */
    return ms * 1000u + (SYSTICK_RELOAD - left) / CYCLES_PER_US;
}

/* ---- GPIO ---- */

static void pin_mode(uint32_t port, unsigned pin, uint32_t mode)
{
    GPIO_MODER(port) =
        (GPIO_MODER(port) & ~(UINT32_C(3) << (2u * pin))) | mode << (2u * pin);
}

static void pins_init(void)
{
    /* VREF+ from VDDA: the analog switch's control low. */
    GPIO_BSRR(GPIOA_BASE) = BIT(2 + 16);
    pin_mode(GPIOA_BASE, 2, GPIO_MODE_OUT);

    for (unsigned pin = 4; pin <= 7; pin++)
        pin_mode(GPIOA_BASE, pin, GPIO_MODE_ANALOG);
    pin_mode(GPIOC_BASE, 0, GPIO_MODE_ANALOG);
    pin_mode(GPIOC_BASE, 1, GPIO_MODE_ANALOG);

    /* PG7 TX, PG8 RX: AF8; RX pulled up so an idle, unconnected line
     * reads as idle rather than noise. */
    GPIO_AFRL(GPIOG_BASE) =
        (GPIO_AFRL(GPIOG_BASE) & ~(UINT32_C(0xf) << 28)) | UINT32_C(8) << 28;
    GPIO_AFRH(GPIOG_BASE) =
        (GPIO_AFRH(GPIOG_BASE) & ~UINT32_C(0xf)) | UINT32_C(8);
    GPIO_PUPDR(GPIOG_BASE) =
        (GPIO_PUPDR(GPIOG_BASE) & ~(UINT32_C(3) << (2u * 8u))) |
        GPIO_PULL_UP << (2u * 8u);
    pin_mode(GPIOG_BASE, 7, GPIO_MODE_AF);
    pin_mode(GPIOG_BASE, 8, GPIO_MODE_AF);
}

/* ---- UART ---- */

static void lpuart_init(void)
{
    LPUART_CR1 = 0;
    LPUART_PRESC = 0;
    LPUART_BRR = LPUART_DIV;
    LPUART_CR1 =
        LPUART_CR1_UE | LPUART_CR1_RE | LPUART_CR1_TE | LPUART_CR1_RXNEIE;
    NVIC_ISER(IRQ_LPUART1 / 32u) = BIT(IRQ_LPUART1 % 32u);
}

void port_stm32u585_lpuart1_isr(void)
{
    uint32_t isr = LPUART_ISR;

    /* A damaged byte is still handed over: the frame it lands in fails its
     * CRC and is counted there.  The error flags must be cleared, or the
     * interrupt would never end. */
    if (isr & (LPUART_ISR_PE | LPUART_ISR_FE | LPUART_ISR_NE | LPUART_ISR_ORE))
        LPUART_ICR =
            LPUART_ISR_PE | LPUART_ISR_FE | LPUART_ISR_NE | LPUART_ISR_ORE;
    if (isr & LPUART_ISR_RXNE)
        fw_uart_rx((uint8_t)LPUART_RDR);
    if ((LPUART_CR1 & LPUART_CR1_TXEIE) && (isr & LPUART_ISR_TXE)) {
        int b = fw_uart_tx_next();

        if (b < 0)
            LPUART_CR1 &= ~LPUART_CR1_TXEIE;
        else
            LPUART_TDR = (uint32_t)b;
    }
}

void port_uart_kick(void)
{
    uint32_t irq = port_irq_save();

    /* TXE is set while the transmitter is idle, so this interrupts at once
     * and the handler sends the first byte. */
    LPUART_CR1 |= LPUART_CR1_TXEIE;
    port_irq_restore(irq);
}

/* ---- ADC ---- */

static void adc_init(void)
{
    uint32_t pcsel = 0, smpr1 = 0, smpr2 = 0;

    for (unsigned i = 0; i < PORT_ADC_CHANNELS_MAX; i++) {
        unsigned ch = adc_channel[i];

        pcsel |= BIT(ch);
        if (ch < 10)
            smpr1 |= ADC_SMP_68 << (3u * ch);
        else
            smpr2 |= ADC_SMP_68 << (3u * (ch - 10u));
    }
    ADC12_CCR = 0; /* kernel clock undivided: 16 MHz */
    ADC_CR = 0;    /* out of deep power-down */
    ADC_CR = ADC_CR_ADVREGEN;
    while (!(ADC_ISR & ADC_ISR_LDORDY))
        ;
    /* Offset and linearity calibration, with the ADC disabled. */
    ADC_CR = ADC_CR_ADVREGEN | ADC_CR_ADCALLIN;
    ADC_CR = ADC_CR_ADVREGEN | ADC_CR_ADCALLIN | ADC_CR_ADCAL;
    while (ADC_CR & ADC_CR_ADCAL)
        ;
    ADC_CFGR1 = ADC_CFGR1_OVRMOD; /* 14 bits, single conversions */
    ADC_SMPR1 = smpr1;
    ADC_SMPR2 = smpr2;
    ADC_PCSEL = pcsel;
    ADC_ISR = ADC_ISR_ADRDY;
    ADC_CR = ADC_CR_ADVREGEN | ADC_CR_ADEN;
    while (!(ADC_ISR & ADC_ISR_ADRDY))
        ;
}

uint16_t port_adc_read(uint8_t ch)
{
    if (ch >= PORT_ADC_CHANNELS_MAX)
        return 0;
    ADC_SQR1 = (uint32_t)adc_channel[ch] << ADC_SQR1_SQ1_POS;
    ADC_ISR = ADC_ISR_EOC | ADC_ISR_EOS | ADC_ISR_OVR;
    ADC_CR |= ADC_CR_ADSTART;
    /* 68 + 17 cycles of 16 MHz: about 5 us.  A stuck converter ends in a
     * watchdog reset, which the next HELLO reports. */
    while (!(ADC_ISR & ADC_ISR_EOC))
        ;
    return (uint16_t)(ADC_DR & 0x3fffu);
}

/* ---- The loop ---- */

int main(void)
{
    struct fw_options o;

    cause = read_cause();
    watchdog_start();
    clock_init();
    pins_init();
    lpuart_init();
    adc_init();
    systick_init();
    __asm__ volatile("cpsie i" ::: "memory");

    fw_defaults(&o);
    o.channels = PORT_ADC_CHANNELS_MAX;
    o.mask = (uint16_t)((1u << PORT_ADC_CHANNELS_MAX) - 1u);
    fw_init(&o);
    for (;;) {
        /* SysTick wakes the core at least once a millisecond, so sleeping
         * is safe whenever the core has nothing due for that long.  An
         * interrupt that lands between fw_poll() and WFI is served at
         * once; only its processing waits, at most one tick. */
        if (fw_poll() >= TICK_US) {
            __asm__ volatile("cpsid i\n\twfi\n\tcpsie i" ::: "memory");
        }
    }
}
