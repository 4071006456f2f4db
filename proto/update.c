/* Firmware image header and update message codecs.  See update.h and
 * PROTOCOL.md section 4 (firmware update). */
#include "update.h"

#include <string.h>

#include "crc32c.h"
#include "wire.h"

#define IMAGE_CRC_AT 60u /* the CRC covers bytes 0..59 */

int image_encode(uint8_t *out, size_t cap, const struct image_hdr *h)
{
    if (cap < IMAGE_HDR_LEN)
        return MSG_ENOSPC;
    wire_put_u32(&out[0], h->magic);
    out[4] = h->hdr_version;
    out[5] = h->board;
    wire_put_u16(&out[6], h->flags);
    wire_put_u32(&out[8], h->fw_version);
    wire_put_u32(&out[12], h->build_id);
    wire_put_u32(&out[16], h->body_len);
    wire_put_u32(&out[20], h->load_addr);
    wire_put_u32(&out[24], h->entry);
    memcpy(&out[28], h->hash, IMAGE_HASH_LEN);
    wire_put_u32(&out[IMAGE_CRC_AT], crc32c(out, IMAGE_CRC_AT));
    return (int)IMAGE_HDR_LEN;
}

int image_decode(const uint8_t *p, size_t n, struct image_hdr *h)
{
    if (n < IMAGE_HDR_LEN)
        return MSG_ELEN;
    if (wire_get_u32(&p[0]) != IMAGE_MAGIC)
        return IMAGE_EMAGIC;
    if (p[4] != IMAGE_HDR_VERSION)
        return IMAGE_EVERSION;
    if (wire_get_u32(&p[IMAGE_CRC_AT]) != crc32c(p, IMAGE_CRC_AT))
        return IMAGE_ECRC;
    h->magic = IMAGE_MAGIC;
    h->hdr_version = p[4];
    h->board = p[5];
    h->flags = wire_get_u16(&p[6]);
    h->fw_version = wire_get_u32(&p[8]);
    h->build_id = wire_get_u32(&p[12]);
    h->body_len = wire_get_u32(&p[16]);
    h->load_addr = wire_get_u32(&p[20]);
    h->entry = wire_get_u32(&p[24]);
    memcpy(h->hash, &p[28], IMAGE_HASH_LEN);
    return 0;
}

int msg_encode_upd_data(uint8_t *out, size_t cap, const struct msg_upd_data *m)
{
    if (m->len == 0 || m->len > MSG_UPD_CHUNK_MAX)
        return MSG_EINVAL;
    if (cap < MSG_UPD_DATA_HDR_LEN + m->len)
        return MSG_ENOSPC;
    wire_put_u32(&out[0], m->offset);
    memcpy(&out[MSG_UPD_DATA_HDR_LEN], m->data, m->len);
    return (int)(MSG_UPD_DATA_HDR_LEN + m->len);
}

int msg_decode_upd_data(const uint8_t *p, size_t n, struct msg_upd_data *m)
{
    if (n < MSG_UPD_DATA_HDR_LEN)
        return MSG_ELEN;
    /* The data is the rest of the payload, so there is no tail to ignore:
     * its length must be one a sender may use. */
    if (n == MSG_UPD_DATA_HDR_LEN ||
        n - MSG_UPD_DATA_HDR_LEN > MSG_UPD_CHUNK_MAX)
        return MSG_EINVAL;
    m->offset = wire_get_u32(&p[0]);
    m->data = &p[MSG_UPD_DATA_HDR_LEN];
    m->len = n - MSG_UPD_DATA_HDR_LEN;
    return 0;
}

int msg_encode_upd_status(uint8_t *out, size_t cap,
                          const struct msg_upd_status *m)
{
    if (cap < MSG_UPD_STATUS_LEN)
        return MSG_ENOSPC;
    wire_put_u16(&out[0], m->req_seq);
    out[2] = m->req_type;
    out[3] = m->state;
    out[4] = m->error;
    out[5] = m->boot;
    wire_put_u16(&out[6], m->chunk_max);
    wire_put_u32(&out[8], m->stored);
    wire_put_u32(&out[12], m->body_len);
    wire_put_u32(&out[16], m->fw_version);
    out[20] = m->window;
    out[21] = 0;
    return (int)MSG_UPD_STATUS_LEN;
}

int msg_decode_upd_status(const uint8_t *p, size_t n, struct msg_upd_status *m)
{
    if (n < MSG_UPD_STATUS_LEN)
        return MSG_ELEN;
    m->req_seq = wire_get_u16(&p[0]);
    m->req_type = p[2];
    m->state = p[3];
    m->error = p[4];
    m->boot = p[5];
    m->chunk_max = wire_get_u16(&p[6]);
    m->stored = wire_get_u32(&p[8]);
    m->body_len = wire_get_u32(&p[12]);
    m->fw_version = wire_get_u32(&p[16]);
    m->window = p[20];
    if (m->state > MSG_UPD_BOOTING || m->window == 0 || m->stored > m->body_len)
        return MSG_EINVAL;
    return 0;
}

const char *msg_upd_error_name(uint8_t error)
{
    static const char *const names[] = {
        "ok",        "bad_header", "wrong_board",  "too_large",   "bad_offset",
        "bad_state", "bad_hash",   "write_failed", "not_on_test", "bad_layout",
    };

    return error < sizeof(names) / sizeof(names[0]) ? names[error] : NULL;
}

const char *msg_upd_state_name(uint8_t state)
{
    static const char *const names[] = {"idle", "receiving", "verified",
                                        "booting"};

    return state < sizeof(names) / sizeof(names[0]) ? names[state] : NULL;
}

const char *msg_upd_type_name(uint8_t type)
{
    switch (type) {
    case MSG_UPD_BEGIN:
        return "UPD_BEGIN";
    case MSG_UPD_DATA:
        return "UPD_DATA";
    case MSG_UPD_END:
        return "UPD_END";
    case MSG_UPD_BOOT:
        return "UPD_BOOT";
    case MSG_UPD_CONFIRM:
        return "UPD_CONFIRM";
    case MSG_UPD_QUERY:
        return "UPD_QUERY";
    case MSG_UPD_ABORT:
        return "UPD_ABORT";
    case MSG_UPD_STATUS:
        return "UPD_STATUS";
    default:
        return NULL;
    }
}
