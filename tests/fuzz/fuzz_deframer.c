/* libFuzzer target: the frame receiver (proto/frame.c and the streaming
 * COBS decoder under it) on arbitrary line bytes.
 *
 * Input: byte 0 picks the receive buffer (payload bound 0..245, or the
 * full FRAME_PAYLOAD_MAX from 246 up, as a small MCU may choose less);
 * bytes 1 and 2 pick where a second receiver joins the stream; the rest
 * is the stream.  The receiver is byte-at-a-time, so how reads split the
 * stream cannot matter; where a receiver starts does, and is the second
 * thing checked.
 *
 * Checked at every byte, against a model written from PROTOCOL.md
 * section 3 rather than from cobs.c:
 * - a byte other than the delimiter never ends a frame;
 * - at each delimiter the receiver's answer is the model's: oversize when
 *   the decoded block passes the buffer, a COBS error for a truncated
 *   group or a runt, then the CRC, then the version, else a frame whose
 *   header and payload are the block's and whose payload fits the bound;
 * - the one-shot cobs_decode() agrees with the model on every block;
 * - a receiver that joins mid-stream answers exactly as the first one
 *   from its first delimiter on (damage costs at most one frame);
 * - the counters add up to what was answered. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cobs.h"
#include "crc32c.h"
#include "frame.h"
#include "fuzz.h"
#include "wire.h"

#define OPTION_BYTES 3

/* What the model expects of one block, and what it decoded. */
struct expect {
    int ret;
    size_t len;
};

/* The document's decoding of one block: groups of a code byte c and c - 1
 * data bytes, each group below 0xff standing for one more zero unless it
 * ends the block.  Bytes of a group cut short by the block's end are
 * still counted, as a receiver stores them before it sees the end.
 * out holds at least n bytes. */
static size_t model_cobs(const uint8_t *in, size_t n, uint8_t *out,
                         bool *truncated)
{
    size_t i = 0, len = 0;

    *truncated = false;
    while (i < n) {
        size_t want = (size_t)in[i] - 1, have;
        bool full = in[i] == 0xff;

        i++;
        have = n - i < want ? n - i : want;
        memcpy(out + len, in + i, have);
        len += have;
        i += have;
        if (have < want) {
            *truncated = true;
            break;
        }
        if (!full && i < n)
            out[len++] = 0;
    }
    return len;
}

static struct expect model_frame(const uint8_t *blk, size_t n, size_t cap,
                                 uint8_t *dec)
{
    struct expect e;
    bool truncated;

    e.len = model_cobs(blk, n, dec, &truncated);
    if (e.len > cap)
        e.ret = FRAME_EOVERSIZE;
    else if (truncated || e.len < FRAME_HDR_LEN + FRAME_CRC_LEN)
        e.ret = FRAME_ECOBS;
    else if (crc32c(dec, e.len - FRAME_CRC_LEN) !=
             wire_get_u32(&dec[e.len - FRAME_CRC_LEN]))
        e.ret = FRAME_ECRC;
    else if (dec[0] != FRAME_VERSION)
        e.ret = FRAME_EVERSION;
    else
        e.ret = FRAME_RX_OK;
    {
        /* The one-shot decoder, given room, must read the same bytes. */
        uint8_t *again = malloc(n);
        int r;

        FUZZ_CHECK(again != NULL);
        r = cobs_decode(again, n, blk, n);
        if (truncated) {
            FUZZ_CHECK(r == COBS_ETRUNC);
        } else {
            FUZZ_CHECK(r >= 0 && (size_t)r == e.len);
            FUZZ_CHECK(memcmp(again, dec, e.len) == 0);
        }
        free(again);
    }
    return e;
}

static void check_frame(const struct frame *f, const uint8_t *buf, size_t cap,
                        const uint8_t *dec, size_t len)
{
    FUZZ_CHECK(f->version == FRAME_VERSION);
    FUZZ_CHECK(f->len + FRAME_HDR_LEN + FRAME_CRC_LEN == len);
    FUZZ_CHECK(f->len <= cap - FRAME_HDR_LEN - FRAME_CRC_LEN);
    FUZZ_CHECK(f->len <= FRAME_PAYLOAD_MAX);
    FUZZ_CHECK(f->payload == buf + FRAME_HDR_LEN);
    FUZZ_CHECK(f->type == dec[1]);
    FUZZ_CHECK(f->seq == (uint16_t)(dec[2] | dec[3] << 8));
    FUZZ_CHECK(memcmp(f->payload, dec + FRAME_HDR_LEN, f->len) == 0);
}

static void tally(struct frame_stats *s, int ret, size_t raw)
{
    switch (ret) {
    case FRAME_RX_OK:
        s->frames_ok++;
        return;
    case FRAME_ECRC:
        s->crc_errors++;
        break;
    case FRAME_EOVERSIZE:
        s->oversize++;
        break;
    case FRAME_EVERSION:
        s->version_errors++;
        break;
    default:
        s->cobs_errors++;
        break;
    }
    s->discarded += (uint32_t)raw;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct frame_rx a, b, c;
    struct frame_stats want = {0};
    struct frame fa, fb, fc;
    const uint8_t *s;
    uint8_t *buf_a, *buf_b, *buf_c, *dec;
    int *ret_at;      /* what a said at each byte */
    uint32_t *crc_at; /* and the CRC-32C of its frame's payload */
    size_t n, cap, join, start = 0;
    bool b_synced = false;

    if (size < OPTION_BYTES)
        return 0;
    cap = FRAME_RX_BUF_LEN(data[0] < FRAME_PAYLOAD_MAX ? data[0]
                                                       : FRAME_PAYLOAD_MAX);
    s = data + OPTION_BYTES;
    n = size - OPTION_BYTES;
    join = ((size_t)data[1] << 8 | data[2]) % (n + 1);
    /* Buffers of exactly cap bytes, so that a write past the bound is a
     * crash under AddressSanitizer. */
    buf_a = malloc(cap);
    buf_b = malloc(cap);
    buf_c = malloc(cap);
    dec = malloc(n + 1);
    ret_at = malloc((n + 1) * sizeof(*ret_at));
    crc_at = malloc((n + 1) * sizeof(*crc_at));
    FUZZ_CHECK(buf_a != NULL && buf_b != NULL && buf_c != NULL && dec != NULL &&
               ret_at != NULL && crc_at != NULL);
    frame_rx_init(&a, buf_a, cap);
    frame_rx_init(&b, buf_b, cap);
    frame_rx_init(&c, buf_c, cap);

    for (size_t i = 0; i < n; i++) {
        int ra = frame_rx_push(&a, s[i], &fa);
        struct expect e = {FRAME_RX_MORE, 0};

        ret_at[i] = ra;
        crc_at[i] = ra == FRAME_RX_OK ? crc32c(fa.payload, fa.len) : 0;

        if (s[i] != 0) {
            FUZZ_CHECK(ra == FRAME_RX_MORE);
        } else if (i == start) {
            FUZZ_CHECK(ra == FRAME_RX_MORE); /* an empty block */
        } else {
            e = model_frame(s + start, i - start, cap, dec);
            FUZZ_CHECK(ra == e.ret);
            tally(&want, ra, i - start);
            if (ra == FRAME_RX_OK)
                check_frame(&fa, buf_a, cap, dec, e.len);
        }
        if (s[i] == 0)
            start = i + 1;

        if (i >= join) {
            int rb = frame_rx_push(&b, s[i], &fb);

            if (b_synced) {
                FUZZ_CHECK(rb == ra);
                if (rb == FRAME_RX_OK)
                    check_frame(&fb, buf_b, cap, dec, e.len);
            }
            if (s[i] == 0)
                b_synced = true;
        }
    }
    /* A third receiver takes the bytes through frame_rx_feed() in chunks
     * of sizes the input picks (as reads deliver them): it must say what
     * the first said at every byte, and count the same. */
    for (size_t i = 0, used; i < n; i += used) {
        size_t len = 1 + (size_t)(data[1] ^ (uint8_t)i) % 97u;
        int rc;

        if (len > n - i)
            len = n - i;
        rc = frame_rx_feed(&c, s + i, len, &used, &fc);
        FUZZ_CHECK(used >= 1 && used <= len);
        for (size_t k = i; k + 1 < i + used; k++)
            FUZZ_CHECK(ret_at[k] == FRAME_RX_MORE);
        FUZZ_CHECK(rc == ret_at[i + used - 1]);
        FUZZ_CHECK(rc != FRAME_RX_MORE || used == len);
        if (rc == FRAME_RX_OK)
            FUZZ_CHECK(crc32c(fc.payload, fc.len) == crc_at[i + used - 1]);
    }
    FUZZ_CHECK(memcmp(&c.stats, &a.stats, sizeof(a.stats)) == 0);
    FUZZ_CHECK(a.stats.frames_ok == want.frames_ok);
    FUZZ_CHECK(a.stats.crc_errors == want.crc_errors);
    FUZZ_CHECK(a.stats.cobs_errors == want.cobs_errors);
    FUZZ_CHECK(a.stats.oversize == want.oversize);
    FUZZ_CHECK(a.stats.version_errors == want.version_errors);
    FUZZ_CHECK(a.stats.discarded == want.discarded);
    /* The joiner's first block is a tail of one the first receiver saw
     * whole, and may be a good frame where the whole was not. */
    FUZZ_CHECK(b.stats.frames_ok <= a.stats.frames_ok + 1);
    free(crc_at);
    free(ret_at);
    free(dec);
    free(buf_c);
    free(buf_b);
    free(buf_a);
    return 0;
}
