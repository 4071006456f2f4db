/* The frame envelope of the tether wire protocol (PROTOCOL.md section 2).
 *
 * Before stuffing, a frame is
 *     version (1) | type (1) | seq (2, LE) | payload (0..246) | crc32c (4, LE)
 * with the CRC-32C taken over everything before it.  The frame is COBS
 * encoded and followed by one 0x00 delimiter.  Version first and CRC-32C last
 * are the one part of the format that no future version may change, so a
 * receiver can always tell a damaged frame (bad CRC) from a frame of a
 * version it does not speak (good CRC, other version), and reject the second
 * loudly instead of misparsing it.
 *
 * The receiver is a byte-at-a-time state machine that never blocks,
 * allocates or calls out.  Its input may start in the middle of a frame, may
 * hold garbage between frames and may lose or flip bytes: any damaged frame
 * is counted and dropped, and decoding resumes at the next delimiter, so one
 * bad byte costs at most the frame it landed in. */
#ifndef TETHER_FRAME_H
#define TETHER_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cobs.h"

#define FRAME_VERSION     1u   /* the protocol version this code speaks */
#define FRAME_HDR_LEN     4u   /* version, type, seq */
#define FRAME_CRC_LEN     4u   /* CRC-32C, little-endian */
#define FRAME_RAW_MAX     254u /* largest frame before stuffing */
#define FRAME_PAYLOAD_MAX (FRAME_RAW_MAX - FRAME_HDR_LEN - FRAME_CRC_LEN)
/* Bytes on the wire for a payload of n bytes, worst case, with delimiter. */
#define FRAME_WIRE_LEN(n)                                                      \
    (COBS_ENCODED_MAX(FRAME_HDR_LEN + (n) + FRAME_CRC_LEN) + 1u)
#define FRAME_WIRE_MAX      FRAME_WIRE_LEN(FRAME_PAYLOAD_MAX) /* 256 */
/* Receive buffer size that holds any frame with n payload bytes. */
#define FRAME_RX_BUF_LEN(n) (FRAME_HDR_LEN + (n) + FRAME_CRC_LEN)

/* Error codes. */
#define FRAME_ENOSPC    -1 /* encode: output buffer too small */
#define FRAME_EINVAL    -2 /* encode: payload longer than FRAME_PAYLOAD_MAX */
#define FRAME_ECOBS     -3 /* receive: COBS violation or frame too short */
#define FRAME_EOVERSIZE -4 /* receive: longer than the receive buffer */
#define FRAME_ECRC      -5 /* receive: CRC mismatch */
#define FRAME_EVERSION  -6 /* receive: good CRC, version not FRAME_VERSION */

/* A received frame.  Borrowed: payload points into the receiver's buffer and
 * is valid until the next frame_rx_push(). */
struct frame {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    const uint8_t *payload;
    size_t len;
};

/* Receive counters; they only grow (wrapping at 2^32). */
struct frame_stats {
    uint32_t frames_ok;      /* good frames delivered */
    uint32_t crc_errors;     /* frames whose CRC did not match */
    uint32_t cobs_errors;    /* COBS violations and runts (< 8 bytes) */
    uint32_t oversize;       /* frames longer than the receive buffer */
    uint32_t version_errors; /* good frames of another protocol version */
    uint32_t discarded;      /* bytes of every rejected frame */
};

struct frame_rx {
    struct cobs_dec dec;
    struct frame_stats stats;
};

/* Encodes one frame with its delimiter into out; returns the number of bytes
 * written (at most FRAME_WIRE_LEN(len)), FRAME_EINVAL or FRAME_ENOSPC. */
int frame_encode(uint8_t *out, size_t cap, uint8_t type, uint16_t seq,
                 const uint8_t *payload, size_t len);

/* Prepares a receiver over the caller's buffer (FRAME_RX_BUF_LEN(n) bytes to
 * accept payloads up to n).  Borrowed: buf must outlive the receiver. */
void frame_rx_init(struct frame_rx *rx, uint8_t *buf, size_t cap);

#define FRAME_RX_MORE 0 /* no frame ended at this byte */
#define FRAME_RX_OK   1 /* *out holds a good frame */

/* Feeds one received byte.  Returns FRAME_RX_MORE, FRAME_RX_OK, or the
 * negative FRAME_E* code of a frame that was rejected at this byte (already
 * counted in rx->stats).  Safe on any input. */
int frame_rx_push(struct frame_rx *rx, uint8_t byte, struct frame *out);

/* Feeds received bytes in[0..n), as frame_rx_push() would one at a time,
 * up to and including the byte that ends a frame or a rejected block;
 * *used says how many were taken (all n when the result is FRAME_RX_MORE).
 * Returns what frame_rx_push() would have returned for that last byte.
 * Call again with the rest.  Several times faster on long frames: a
 * group's data bytes are copied in one loop. */
int frame_rx_feed(struct frame_rx *rx, const uint8_t *in, size_t n,
                  size_t *used, struct frame *out);

/* A short constant name for a FRAME_E* code, for logs. */
const char *frame_strerror(int err);

#endif
