/* Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999).
 *
 * COBS rewrites a block of bytes so that it contains no 0x00; the sender then
 * ends every frame with a 0x00 delimiter, which a receiver can always find
 * again after line noise.  A code byte c in 0x01..0xff is followed by c-1
 * data bytes; a code below 0xff stands for those bytes plus a zero, except at
 * the end of the block where that implicit zero is dropped.  A block that
 * ends just after a full 0xff group gets no extra code byte, so the encoded
 * size is exactly COBS_ENCODED_MAX(n) in the worst case (no zero in the
 * input) and never more.
 *
 * Neither direction allocates or blocks: the encoder writes into a caller's
 * buffer, the decoder takes one byte at a time.  The delimiter itself is not
 * part of what these functions produce or consume, except that the streaming
 * decoder treats 0x00 as the end of a block. */
#ifndef TETHER_COBS_H
#define TETHER_COBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exact worst-case encoded size of n input bytes (without the delimiter). */
#define COBS_ENCODED_MAX(n) ((n) + ((n) + 253u) / 254u + ((n) == 0u ? 1u : 0u))

/* Error codes (negative, so they fit beside lengths in an int). */
#define COBS_ENOSPC -1 /* the output buffer is too small */
#define COBS_ETRUNC -2 /* a block ended inside a group */
#define COBS_EZERO  -3 /* a zero byte inside an encoded block */

/* ---- Streaming encoder: put bytes one at a time, then end. ---- */
struct cobs_enc {
    uint8_t *out;    /* borrowed: the caller's output buffer */
    size_t cap;      /* bytes available at out */
    size_t pos;      /* next write position */
    size_t code_pos; /* position of the open group's code byte */
    uint8_t code;    /* 1 + data bytes in the open group */
    bool open;       /* a group is open (false right after a full group) */
    bool overflow;   /* a byte did not fit; cobs_enc_end() reports it */
};

void cobs_enc_begin(struct cobs_enc *e, uint8_t *out, size_t cap);
void cobs_enc_put(struct cobs_enc *e, uint8_t byte);
void cobs_enc_write(struct cobs_enc *e, const uint8_t *p, size_t n);
/* Closes the block; returns its encoded length or COBS_ENOSPC. */
int cobs_enc_end(struct cobs_enc *e);

/* One-shot encode of n bytes; returns the encoded length or COBS_ENOSPC. */
int cobs_encode(uint8_t *out, size_t cap, const uint8_t *in, size_t n);

/* ---- Streaming decoder: one byte at a time, 0x00 ends a block. ---- */
struct cobs_dec {
    uint8_t *buf;  /* borrowed: where decoded bytes go */
    size_t cap;    /* bytes available at buf */
    size_t len;    /* decoded bytes so far in this block */
    size_t raw;    /* encoded bytes seen so far in this block */
    uint8_t left;  /* data bytes still due in the open group */
    uint8_t code;  /* code byte of the open group */
    bool overflow; /* the block outgrew buf; dropped at the delimiter */
    bool ended;    /* the last byte was a delimiter */
};

#define COBS_DEC_MORE  0 /* inside a block, or an empty block */
#define COBS_DEC_BLOCK 1 /* a block ended: buf[0..len) holds it */

void cobs_dec_init(struct cobs_dec *d, uint8_t *buf, size_t cap);
/* Feeds one byte.  Returns COBS_DEC_MORE, COBS_DEC_BLOCK (the block stays
 * in buf until the next call), COBS_ENOSPC (the block was longer than cap)
 * or COBS_ETRUNC (the delimiter came inside a group).  After a block or an
 * error the decoder is ready for the next block; d->raw still holds the
 * size of the block just ended until the next byte. */
int cobs_dec_push(struct cobs_dec *d, uint8_t byte);

/* Feeds bytes from in[0..n) as cobs_dec_push() would one at a time, but
 * copies the data bytes of a group in one loop.  Stops after the first byte
 * whose result is not COBS_DEC_MORE and returns how many bytes it took;
 * *ret is that result, or COBS_DEC_MORE when all n were taken. */
size_t cobs_dec_feed(struct cobs_dec *d, const uint8_t *in, size_t n, int *ret);

/* One-shot decode of a block without its delimiter; returns the decoded
 * length, COBS_ENOSPC, COBS_ETRUNC or COBS_EZERO. */
int cobs_decode(uint8_t *out, size_t cap, const uint8_t *in, size_t n);

#endif
