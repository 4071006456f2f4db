/* Sizes of the ATmega328P port (the classic Arduino Uno).
 *
 * The part has 2048 bytes of SRAM, and the budget (docs/FIRMWARE.md) keeps
 * a quarter of it for the stack, so .data + .bss may use 1536 bytes.  The
 * core's static RAM scales with these figures: the TX FIFO, the RX FIFO,
 * the frame receive buffer (PORT_RX_PAYLOAD_MAX), the batch buffer and the
 * frame encode buffer (PORT_ADC_VALUES_MAX), and the heap arena.  What is
 * left after the fixed parts (the core's state, the CRC table and strings,
 * which avr-gcc keeps in RAM) goes to the heap. */
#ifndef TETHER_PORT_CONFIG_H
#define TETHER_PORT_CONFIG_H

#define PORT_BOARD_ID         4u /* MSG_BOARD_ATMEGA328P */
#define PORT_ADC_BITS         10u
#define PORT_ADC_CHANNELS_MAX 6u    /* A0..A5 */
#define PORT_ADC_VALUES_MAX   24u   /* batch of 59 bytes; 4 scans of 6 */
#define PORT_RATE_MAX_HZ      2000u /* the line carries about 3900 values/s */
#define PORT_HEAP_ARENA       512u  /* bytes of the watched heap */
/* The TX FIFO must hold a full frame beside FW_REPLY_RESERVE (64). */
#define PORT_TXQ_SIZE         256u
#define PORT_RXQ_SIZE         64u   /* 5.5 ms of input at 115200 baud */
#define PORT_RX_PAYLOAD_MAX   16u   /* every command fits; the longest is 5 */
#define PORT_WATCHDOG_MS      1000u /* the watchdog fires after 2 s */

#endif
