/* The STM32U585 registers this port touches, and nothing else.
 *
 * Written from the reference manual RM0456 (STM32U575/585, register maps of
 * RCC, PWR, FLASH, GPIO, LPUART, ADC1 and IWDG) and the Armv8-M
 * architecture reference (SysTick, SCB, NVIC); addresses and bit positions
 * were checked against ST's published CMSIS device header for the part.
 * Only the non-secure aliases are used: the UNO Q ships with TrustZone
 * disabled (TZEN = 0), where they are the only ones that decode.
 *
 * Each register is a macro that reads or writes the hardware; bit masks are
 * named after the manual's field names so they can be looked up there. */
#ifndef TETHER_STM32U585_REGS_H
#define TETHER_STM32U585_REGS_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define BIT(n)      (UINT32_C(1) << (n))

/* ---- Memory map (RM0456) ---- */
#define FLASH_BASE_ADDR 0x08000000u /* 2 MB, two banks of 1 MB */
#define SRAM_BASE_ADDR  0x20000000u /* SRAM1 192 K, SRAM2 64 K, SRAM3 512 K */

/* ---- Cortex-M33 system control space ---- */
#define SYST_CSR         REG32(0xe000e010u) /* SysTick control and status */
#define SYST_CSR_ENABLE  BIT(0)
#define SYST_CSR_TICKINT BIT(1)
#define SYST_CSR_CLKSRC  BIT(2)             /* 1: the processor clock */
#define SYST_RVR         REG32(0xe000e014u) /* reload value, 24 bits */
#define SYST_CVR         REG32(0xe000e018u) /* current value, counts down */

#define SCB_ICSR              REG32(0xe000ed04u)
#define SCB_ICSR_PENDSTSET    BIT(26) /* SysTick exception pending */
#define SCB_VTOR              REG32(0xe000ed08u)
#define SCB_AIRCR             REG32(0xe000ed0cu)
#define SCB_AIRCR_VECTKEY     (UINT32_C(0x05fa) << 16)
#define SCB_AIRCR_SYSRESETREQ BIT(2)

#define NVIC_ISER(n) REG32(0xe000e100u + 4u * (n)) /* set-enable, 32 a word */

/* ---- Interrupt numbers (RM0456, interrupt vector table) ---- */
#define IRQ_LPUART1 66u
#define IRQ_COUNT   126u /* IRQ0 (WWDG) .. IRQ125 (LSECSSD) */

/* ---- FLASH interface, AHB1 ----
 * The update registers (NSKEYR, NSSR, NSCR, ECCR) were checked against
 * public STM32U5 register definitions other than ST's header. */
#define FLASH_ACR           REG32(0x40022000u)
#define FLASH_ACR_LATENCY_M 0xfu /* wait states, bits 3:0 */
#define FLASH_NSKEYR        REG32(0x40022008u)
#define FLASH_KEY1          UINT32_C(0x45670123)
#define FLASH_KEY2          UINT32_C(0xcdef89ab)
#define FLASH_NSSR          REG32(0x40022020u) /* error bits: write 1 to clear */
#define FLASH_NSSR_EOP      BIT(0)
#define FLASH_NSSR_OPERR    BIT(1)
#define FLASH_NSSR_PROGERR  BIT(3)
#define FLASH_NSSR_WRPERR   BIT(4)
#define FLASH_NSSR_PGAERR   BIT(5)
#define FLASH_NSSR_SIZERR   BIT(6)
#define FLASH_NSSR_PGSERR   BIT(7)
#define FLASH_NSSR_OPTWERR  BIT(13)
#define FLASH_NSSR_BSY      BIT(16)
#define FLASH_NSSR_WDW      BIT(17) /* a quad-word is partly written */
#define FLASH_NSCR          REG32(0x40022028u)
#define FLASH_NSCR_PG       BIT(0)
#define FLASH_NSCR_PER      BIT(1)
#define FLASH_NSCR_PNB_POS  3u /* bits 9:3, page in its bank */
#define FLASH_NSCR_PNB_M    (UINT32_C(0x7f) << 3)
#define FLASH_NSCR_BKER     BIT(11) /* page erase in bank 2 */
#define FLASH_NSCR_STRT     BIT(16)
#define FLASH_NSCR_LOCK     BIT(31)
#define FLASH_ECCR          REG32(0x40022030u)
#define FLASH_ECCR_ECCD     BIT(31) /* double error detected (NMI) */

/* ---- PWR, AHB3 ---- */
#define PWR_BASE        0x46020800u
#define PWR_VOSR        REG32(PWR_BASE + 0x0cu)
#define PWR_VOSR_VOSRDY BIT(15)
#define PWR_VOSR_VOS_M  (UINT32_C(3) << 16)
#define PWR_VOSR_VOS_R1 (UINT32_C(3) << 16) /* range 1: the highest */
#define PWR_SVMCR       REG32(PWR_BASE + 0x10u)
#define PWR_SVMCR_IO2SV BIT(29) /* VDDIO2 valid: PG2..PG15 usable */
#define PWR_SVMCR_ASV   BIT(30) /* VDDA valid: analog usable */

/* ---- RCC, AHB3 ---- */
#define RCC_BASE                  0x46020c00u
#define RCC_CR                    REG32(RCC_BASE + 0x00u)
#define RCC_CR_HSION              BIT(8)
#define RCC_CR_HSIRDY             BIT(10)
#define RCC_CFGR1                 REG32(RCC_BASE + 0x1cu)
#define RCC_CFGR1_SW_M            UINT32_C(3) /* bits 1:0 */
#define RCC_CFGR1_SW_HSI16        UINT32_C(1)
#define RCC_CFGR1_SWS_M           (UINT32_C(3) << 2) /* bits 3:2 */
#define RCC_CFGR1_SWS_HSI16       (UINT32_C(1) << 2)
#define RCC_AHB2ENR1              REG32(RCC_BASE + 0x8cu)
#define RCC_AHB2ENR1_GPIOAEN      BIT(0)
#define RCC_AHB2ENR1_GPIOCEN      BIT(2)
#define RCC_AHB2ENR1_GPIOGEN      BIT(6)
#define RCC_AHB2ENR1_ADC12EN      BIT(10)
#define RCC_AHB3ENR               REG32(RCC_BASE + 0x94u)
#define RCC_AHB3ENR_PWREN         BIT(2)
#define RCC_APB3ENR               REG32(RCC_BASE + 0xa8u)
#define RCC_APB3ENR_LPUART1EN     BIT(6)
#define RCC_CCIPR3                REG32(RCC_BASE + 0xe8u)
#define RCC_CCIPR3_LPUART1SEL_M   UINT32_C(7)         /* bits 2:0 */
#define RCC_CCIPR3_LPUART1SEL_HSI UINT32_C(2)         /* 010: HSI16 */
#define RCC_CCIPR3_ADCDACSEL_M    (UINT32_C(7) << 12) /* bits 14:12 */
#define RCC_CCIPR3_ADCDACSEL_HSI  (UINT32_C(4) << 12) /* 100: HSI16 */
#define RCC_CSR                   REG32(RCC_BASE + 0xf4u)
#define RCC_CSR_RMVF              BIT(23) /* write 1: clear the flags below */
#define RCC_CSR_PINRSTF           BIT(26)
#define RCC_CSR_BORRSTF           BIT(27) /* brown-out; power-on sets it too */
#define RCC_CSR_SFTRSTF           BIT(28)
#define RCC_CSR_IWDGRSTF          BIT(29)
#define RCC_CSR_WWDGRSTF          BIT(30)

/* ---- GPIO, AHB2 ---- */
#define GPIOA_BASE       0x42020000u
#define GPIOC_BASE       0x42020800u
#define GPIOG_BASE       0x42021800u
#define GPIO_MODER(p)    REG32((p) + 0x00u) /* 2 bits a pin */
#define GPIO_PUPDR(p)    REG32((p) + 0x0cu) /* 2 bits a pin */
#define GPIO_BSRR(p)     REG32((p) + 0x18u) /* set low half, reset high */
#define GPIO_AFRL(p)     REG32((p) + 0x20u) /* 4 bits a pin, pins 0..7 */
#define GPIO_AFRH(p)     REG32((p) + 0x24u) /* 4 bits a pin, pins 8..15 */
#define GPIO_MODE_OUT    UINT32_C(1)
#define GPIO_MODE_AF     UINT32_C(2)
#define GPIO_MODE_ANALOG UINT32_C(3)
#define GPIO_PULL_UP     UINT32_C(1)

/* ---- LPUART1, APB3 ---- */
#define LPUART1_BASE      0x46002400u
#define LPUART_CR1        REG32(LPUART1_BASE + 0x00u)
#define LPUART_CR1_UE     BIT(0)
#define LPUART_CR1_RE     BIT(2)
#define LPUART_CR1_TE     BIT(3)
#define LPUART_CR1_RXNEIE BIT(5)
#define LPUART_CR1_TXEIE  BIT(7)
#define LPUART_BRR        REG32(LPUART1_BASE + 0x0cu)
#define LPUART_ISR        REG32(LPUART1_BASE + 0x1cu)
#define LPUART_ISR_PE     BIT(0)
#define LPUART_ISR_FE     BIT(1)
#define LPUART_ISR_NE     BIT(2)
#define LPUART_ISR_ORE    BIT(3)
#define LPUART_ISR_RXNE   BIT(5)
#define LPUART_ISR_TXE    BIT(7)
#define LPUART_ICR        REG32(LPUART1_BASE + 0x20u) /* same bits as ISR */
#define LPUART_RDR        REG32(LPUART1_BASE + 0x24u)
#define LPUART_TDR        REG32(LPUART1_BASE + 0x28u)
#define LPUART_PRESC      REG32(LPUART1_BASE + 0x2cu)

/* ---- ADC1, the 14-bit ADC, AHB2 ---- */
#define ADC1_BASE        0x42028000u
#define ADC_ISR          REG32(ADC1_BASE + 0x00u)
#define ADC_ISR_ADRDY    BIT(0)
#define ADC_ISR_EOC      BIT(2)
#define ADC_ISR_EOS      BIT(3)
#define ADC_ISR_OVR      BIT(4)
#define ADC_ISR_LDORDY   BIT(12) /* internal regulator ready */
#define ADC_CR           REG32(ADC1_BASE + 0x08u)
#define ADC_CR_ADEN      BIT(0)
#define ADC_CR_ADSTART   BIT(2)
#define ADC_CR_ADCALLIN  BIT(16) /* calibrate linearity too */
#define ADC_CR_ADVREGEN  BIT(28)
#define ADC_CR_DEEPPWD   BIT(29) /* set at reset */
#define ADC_CR_ADCAL     BIT(31)
#define ADC_CFGR1        REG32(ADC1_BASE + 0x0cu)
#define ADC_CFGR1_OVRMOD BIT(12) /* RES (bits 3:2) = 0 is 14 bits */
#define ADC_SMPR1        REG32(ADC1_BASE + 0x14u) /* channels 0..9, 3 bits */
#define ADC_SMPR2        REG32(ADC1_BASE + 0x18u) /* channels 10..19 */
#define ADC_SMP_68       UINT32_C(5)              /* 68 ADC clock cycles */
#define ADC_PCSEL        REG32(ADC1_BASE + 0x1cu) /* channel preselection */
#define ADC_SQR1         REG32(ADC1_BASE + 0x30u) /* L = 0, SQ1 bits 10:6 */
#define ADC_SQR1_SQ1_POS 6u
#define ADC_DR           REG32(ADC1_BASE + 0x40u)
#define ADC12_CCR        REG32(0x42028308u) /* PRESC bits 21:18 = 0: /1 */

/* ---- IWDG, APB1 ---- */
#define IWDG_BASE      0x40003000u
#define IWDG_KR        REG32(IWDG_BASE + 0x00u)
#define IWDG_KR_START  UINT32_C(0xcccc)
#define IWDG_KR_UNLOCK UINT32_C(0x5555)
#define IWDG_KR_RELOAD UINT32_C(0xaaaa)
#define IWDG_PR        REG32(IWDG_BASE + 0x04u)
#define IWDG_PR_DIV64  UINT32_C(4)              /* LSI / 64 */
#define IWDG_RLR       REG32(IWDG_BASE + 0x08u) /* 12 bits */
#define IWDG_SR        REG32(IWDG_BASE + 0x0cu)
#define IWDG_SR_PVU    BIT(0)
#define IWDG_SR_RVU    BIT(1)

#endif
