/* Frame envelope: header, CRC-32C, COBS and the delimiter.  See frame.h. */
#include "frame.h"

#include "crc32c.h"
#include "wire.h"

int frame_encode(uint8_t *out, size_t cap, uint8_t type, uint16_t seq,
                 const uint8_t *payload, size_t len)
{
    uint8_t hdr[FRAME_HDR_LEN];
    uint8_t crc_le[FRAME_CRC_LEN];
    struct cobs_enc e;
    uint32_t crc;
    int n;

    if (len > FRAME_PAYLOAD_MAX)
        return FRAME_EINVAL;
    if (cap < 1)
        return FRAME_ENOSPC;
    hdr[0] = FRAME_VERSION;
    hdr[1] = type;
    wire_put_u16(&hdr[2], seq);
    crc = crc32c_update(CRC32C_INIT, hdr, sizeof(hdr));
    crc = crc32c_final(crc32c_update(crc, payload, len));
    wire_put_u32(crc_le, crc);

    cobs_enc_begin(&e, out, cap - 1);
    cobs_enc_write(&e, hdr, sizeof(hdr));
    cobs_enc_write(&e, payload, len);
    cobs_enc_write(&e, crc_le, sizeof(crc_le));
    n = cobs_enc_end(&e);
    if (n < 0)
        return FRAME_ENOSPC;
    out[n] = 0;
    return n + 1;
}

void frame_rx_init(struct frame_rx *rx, uint8_t *buf, size_t cap)
{
    cobs_dec_init(&rx->dec, buf, cap);
    rx->stats = (struct frame_stats){0};
}

static int reject(struct frame_rx *rx, int err)
{
    switch (err) {
    case FRAME_ECRC:
        rx->stats.crc_errors++;
        break;
    case FRAME_EOVERSIZE:
        rx->stats.oversize++;
        break;
    case FRAME_EVERSION:
        rx->stats.version_errors++;
        break;
    default:
        rx->stats.cobs_errors++;
        break;
    }
    rx->stats.discarded += (uint32_t)rx->dec.raw;
    return err;
}

/* The envelope check of a block the decoder has just ended (ret is its
 * cobs_dec result). */
static int finish(struct frame_rx *rx, int ret, struct frame *out)
{
    const uint8_t *b = rx->dec.buf;
    size_t n;

    if (ret == COBS_DEC_MORE)
        return FRAME_RX_MORE;
    if (ret == COBS_ENOSPC)
        return reject(rx, FRAME_EOVERSIZE);
    if (ret < 0)
        return reject(rx, FRAME_ECOBS);

    n = rx->dec.len;
    if (n < FRAME_HDR_LEN + FRAME_CRC_LEN)
        return reject(rx, FRAME_ECOBS);
    if (crc32c(b, n - FRAME_CRC_LEN) != wire_get_u32(&b[n - FRAME_CRC_LEN]))
        return reject(rx, FRAME_ECRC);
    if (b[0] != FRAME_VERSION)
        return reject(rx, FRAME_EVERSION);

    out->version = b[0];
    out->type = b[1];
    out->seq = wire_get_u16(&b[2]);
    out->payload = &b[FRAME_HDR_LEN];
    out->len = n - FRAME_HDR_LEN - FRAME_CRC_LEN;
    rx->stats.frames_ok++;
    return FRAME_RX_OK;
}

int frame_rx_push(struct frame_rx *rx, uint8_t byte, struct frame *out)
{
    return finish(rx, cobs_dec_push(&rx->dec, byte), out);
}

int frame_rx_feed(struct frame_rx *rx, const uint8_t *in, size_t n,
                  size_t *used, struct frame *out)
{
    int ret;

    *used = cobs_dec_feed(&rx->dec, in, n, &ret);
    return finish(rx, ret, out);
}

const char *frame_strerror(int err)
{
    switch (err) {
    case FRAME_ENOSPC:
        return "output buffer too small";
    case FRAME_EINVAL:
        return "payload too long";
    case FRAME_ECOBS:
        return "COBS error or runt frame";
    case FRAME_EOVERSIZE:
        return "oversize frame";
    case FRAME_ECRC:
        return "CRC mismatch";
    case FRAME_EVERSION:
        return "unsupported protocol version";
    default:
        return "unknown error";
    }
}
