/* Sizes for the core under unit test: small enough that tests reach the
 * limits (a full TX FIFO, a full batch, a full slot) quickly, and large
 * enough for the update handler (full frames, a window of four). */
#ifndef TETHER_PORT_CONFIG_H
#define TETHER_PORT_CONFIG_H

#define PORT_BOARD_ID         1u
#define PORT_ADC_BITS         14u
#define PORT_ADC_CHANNELS_MAX 16u
#define PORT_ADC_VALUES_MAX   117u
#define PORT_RATE_MAX_HZ      20000u
#define PORT_HEAP_ARENA       4096u
#define PORT_TXQ_SIZE         1024u
#define PORT_RXQ_SIZE         1040u /* four whole frames: UPD window 4 */
#define PORT_RX_PAYLOAD_MAX   246u  /* full UPD_DATA frames */
#define PORT_WATCHDOG_MS      1000u
#define PORT_SLOT_SIZE        8192u /* small, so a test can exceed it */

#endif
