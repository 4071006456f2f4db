/* The ATmega328P firmware image running in simavr, heard and commanded
 * through its USART0 the way tetherd hears the real board.
 *
 * One struct avrsim is one simulated MCU: a fresh part at power-on with
 * the image loaded, 16 MHz, AVcc and AREF at 5 V.  Nothing runs by itself:
 * the simulation advances only inside avrsim_next(), instruction by
 * instruction, until a frame arrives or a deadline in simulated time
 * passes.  Time is the simulated clock (cycles since power-on), never the
 * host's, so a run is deterministic and its length bounded: each instance
 * stops at AVRSIM_RUN_MAX_US of simulated time and AVRSIM_STEPS_MAX calls
 * of the simulator.
 *
 * simavr calls back into this module from inside avr_run(): the global
 * logger is process-wide, so only one instance may be open at a time. */
#ifndef TETHER_AVRSIM_H
#define TETHER_AVRSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define AVRSIM_HZ         16000000u /* the Uno's crystal */
#define AVRSIM_ADC_INPUTS 6u        /* A0..A5 */
#define AVRSIM_AVCC_MV    5000u
/* Bounds of one instance's run: simulated time, and calls of avr_run(),
 * each of which advances the clock by at least one cycle. */
#define AVRSIM_RUN_MAX_US 10000000u
#define AVRSIM_STEPS_MAX  ((uint64_t)AVRSIM_RUN_MAX_US * (AVRSIM_HZ / 1000000u))
#define AVRSIM_FRAMES_MAX 8u   /* frames received and not yet read */
#define AVRSIM_TX_MAX     256u /* bytes queued towards the MCU */

/* Error codes. */
#define AVRSIM_ELOAD  -1 /* no readable AVR ELF image that fits the flash */
#define AVRSIM_EMCU   -2 /* simavr has no atmega328p */
#define AVRSIM_ECPU   -3 /* the simulated CPU crashed or stopped */
#define AVRSIM_ELIMIT -4 /* AVRSIM_RUN_MAX_US or AVRSIM_STEPS_MAX used up */
#define AVRSIM_EFULL  -5 /* no room for the frame towards the MCU */

/* A frame the MCU sent, with its own copy of the payload. */
struct avrsim_frame {
    uint64_t t_us; /* simulated time its delimiter left the MCU */
    uint16_t seq;
    uint8_t type;
    size_t len;
    uint8_t payload[FRAME_PAYLOAD_MAX];
};

struct avr_t;
struct avr_irq_t;
struct elf_firmware_t;

struct avrsim {
    struct avr_t *avr;
    struct avr_irq_t *uart_in;
    struct elf_firmware_t *fw; /* what the loader allocated */
    /* From the MCU: bytes are deframed as they leave its USART. */
    struct frame_rx rx;
    uint8_t rx_buf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    struct avrsim_frame q[AVRSIM_FRAMES_MAX];
    unsigned q_head;
    unsigned q_len;
    uint32_t q_overflows; /* frames lost because q was full */
    uint64_t bytes_out;   /* bytes the MCU sent */
    /* To the MCU: held while simavr's receive FIFO says XOFF. */
    uint8_t tx[AVRSIM_TX_MAX];
    size_t tx_len;
    size_t tx_pos;
    bool rx_paused;
    uint16_t tx_seq;
    uint64_t steps;        /* calls of avr_run() */
    uint32_t sim_errors;   /* simavr's own LOG_ERROR messages */
    uint32_t sim_warnings; /* and LOG_WARNING ones */
};

/* Loads the ELF image at path into a fresh ATmega328P at power-on, with
 * every ADC input at 0 V.  Returns 0, AVRSIM_ELOAD or AVRSIM_EMCU; on
 * error nothing is left to close. */
int avrsim_open(struct avrsim *s, const char *path);

/* Frees the simulated MCU; a zeroed or closed struct is a no-op. */
void avrsim_close(struct avrsim *s);

/* Puts mv millivolts on analog input ch (0 .. AVRSIM_ADC_INPUTS - 1). */
void avrsim_set_mv(struct avrsim *s, unsigned ch, uint32_t mv);

/* Frames a command with the next sequence number and queues it towards the
 * MCU's RX pin; it goes out as the simulation runs.  Returns the sequence
 * number, or AVRSIM_EFULL.  Bytes that reach the MCU while its receiver
 * is off (during a reset) are lost, as on a real line. */
int avrsim_send(struct avrsim *s, uint8_t type, const uint8_t *p, size_t n);

/* Runs the simulation until a frame from the MCU is available, then
 * copies it to *out and returns 1; returns 0 once the simulated clock
 * reaches deadline_us with no frame, or AVRSIM_ECPU or AVRSIM_ELIMIT. */
int avrsim_next(struct avrsim *s, struct avrsim_frame *out,
                uint64_t deadline_us);

/* Simulated microseconds since power-on (resets do not restart it). */
uint64_t avrsim_now_us(const struct avrsim *s);

#endif
