/* Sizes of the mps2-an505 port: the core on a Cortex-M33 under QEMU.
 *
 * The board has megabytes of SRAM, but the image is held to the budget of a
 * small MCU (32 KiB of code, 8 KiB of static RAM besides the heap arena) so
 * that what runs here would fit the STM32U585 with room to spare.  The
 * arena is the simulator's, so heap reports from the two can be compared
 * figure for figure. */
#ifndef TETHER_PORT_CONFIG_H
#define TETHER_PORT_CONFIG_H

#define PORT_BOARD_ID         2u     /* MSG_BOARD_MPS2_AN505 */
#define PORT_ADC_BITS         14u    /* simulated, as tether-sim's */
#define PORT_ADC_CHANNELS_MAX 4u     /* simulated channels */
#define PORT_ADC_VALUES_MAX   117u   /* values per batch: MSG_ADC_VALUES_MAX */
#define PORT_RATE_MAX_HZ      10000u /* scans per second accepted */
#define PORT_HEAP_ARENA       16384u /* bytes of the watched heap */
#define PORT_TXQ_SIZE         2048u  /* transmit FIFO bytes */
/* Four whole frames and change, as tether-sim's: a firmware upload may
 * keep four UPD_DATA frames unanswered (UPD_STATUS window) without
 * overrunning it, however long the loop is busy. */
#define PORT_RXQ_SIZE         1040u
#define PORT_RX_PAYLOAD_MAX   246u /* a full frame: UPD_DATA chunks */
/* Reset after this long without a feed.  Longer than a real board's
 * second: QEMU's clock is the host's, so a host that starves QEMU of CPU
 * for a second (a loaded test machine) would otherwise fire the watchdog
 * in a healthy image. */
#define PORT_WATCHDOG_MS      4000u
/* Each update slot (layout.h): twice the code budget. */
#define PORT_SLOT_SIZE        65536u

#endif
