/* Sizes of the STM32U585 port (the Arduino UNO Q's MCU).
 *
 * The part has 768 KB of SRAM, but the Cortex-M33 budget (docs/FIRMWARE.md)
 * allows 8 KiB of static RAM besides the heap arena, so the queues are sized
 * by the line instead: at 115200 baud the TX FIFO holds about 180 ms of
 * output; the RX FIFO holds four full frames for firmware updates. */
#ifndef TETHER_PORT_CONFIG_H
#define TETHER_PORT_CONFIG_H

#define PORT_BOARD_ID         3u    /* MSG_BOARD_STM32U585 */
#define PORT_ADC_BITS         14u   /* ADC1 */
#define PORT_ADC_CHANNELS_MAX 6u    /* A0..A5 */
#define PORT_ADC_VALUES_MAX   117u  /* values per batch: MSG_ADC_VALUES_MAX */
#define PORT_RATE_MAX_HZ      5000u /* about the line's capacity, one channel */
#define PORT_HEAP_ARENA       16384u /* bytes of the watched heap, as the sim */
#define PORT_TXQ_SIZE         2048u  /* transmit FIFO bytes */
/* Four whole frames and change, as the other updatable ports': a
 * firmware upload may keep four UPD_DATA frames unanswered (UPD_STATUS
 * window) without overrunning it, however long a flash erase keeps the
 * loop busy. */
#define PORT_RXQ_SIZE         1040u
#define PORT_RX_PAYLOAD_MAX   246u  /* a full frame: UPD_DATA chunks */
#define PORT_WATCHDOG_MS      1000u /* the IWDG fires after twice this */
/* Each update slot (layout.h): twice the code budget. */
#define PORT_SLOT_SIZE        65536u

#endif
