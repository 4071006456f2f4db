/* Sizes of the host port (tether-sim).  Linux has memory to spare, so these
 * are the protocol's limits rather than an MCU's. */
#ifndef TETHER_PORT_CONFIG_H
#define TETHER_PORT_CONFIG_H

#define PORT_BOARD_ID         1u     /* MSG_BOARD_SIM */
#define PORT_ADC_BITS         14u    /* as the STM32U585's ADC1 */
#define PORT_ADC_CHANNELS_MAX 16u    /* --channels may ask for up to this */
#define PORT_ADC_VALUES_MAX   117u   /* values per batch: MSG_ADC_VALUES_MAX */
#define PORT_RATE_MAX_HZ      20000u /* highest scan rate accepted */
#define PORT_HEAP_ARENA       16384u /* bytes of the watched heap */
#define PORT_TXQ_SIZE         4096u  /* transmit FIFO bytes */
/* Four whole frames and change: a firmware upload may keep four UPD_DATA
 * frames unanswered (UPD_STATUS window) without overrunning it. */
#define PORT_RXQ_SIZE         1040u
#define PORT_RX_PAYLOAD_MAX   246u /* a full frame: UPD_DATA chunks */
/* The simulator's watchdog runs on the host's clock: longer than a real
 * MCU's second, so that a loaded host that holds the process up for a
 * second does not reset a healthy simulator. */
#define PORT_WATCHDOG_MS      3000u
/* Each update slot holds a tether-sim executable (--flash DIR); a cap, as
 * the files take only what is written. */
#define PORT_SLOT_SIZE        (16u * 1024u * 1024u)

#endif
