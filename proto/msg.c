/* Message payload encoders and decoders.  See msg.h and PROTOCOL.md. */
#include "msg.h"

#include <string.h>

#include "wire.h"

int msg_encode_hello(uint8_t *out, size_t cap, const struct msg_hello *m)
{
    if (cap < MSG_HELLO_LEN)
        return MSG_ENOSPC;
    out[0] = m->proto_version;
    out[1] = m->board;
    out[2] = m->reset_cause;
    out[3] = m->adc_bits;
    out[4] = m->adc_channels;
    out[5] = 0;
    wire_put_u16(&out[6], m->caps);
    wire_put_u32(&out[8], m->fw_version);
    wire_put_u32(&out[12], m->build_id);
    wire_put_u32(&out[16], m->heap_total);
    wire_put_u32(&out[20], m->uptime_ms);
    wire_put_u32(&out[24], m->time_us);
    wire_put_u16(&out[28], m->rx_max);
    return MSG_HELLO_LEN;
}

int msg_decode_hello(const uint8_t *p, size_t n, struct msg_hello *m)
{
    if (n < MSG_HELLO_LEN)
        return MSG_ELEN;
    m->proto_version = p[0];
    m->board = p[1];
    m->reset_cause = p[2];
    m->adc_bits = p[3];
    m->adc_channels = p[4];
    m->caps = wire_get_u16(&p[6]);
    m->fw_version = wire_get_u32(&p[8]);
    m->build_id = wire_get_u32(&p[12]);
    m->heap_total = wire_get_u32(&p[16]);
    m->uptime_ms = wire_get_u32(&p[20]);
    m->time_us = wire_get_u32(&p[24]);
    m->rx_max = wire_get_u16(&p[28]);
    if (m->adc_channels > MSG_ADC_CHANNELS_MAX || m->adc_bits > 16)
        return MSG_EINVAL;
    return 0;
}

/* Bits counted in parallel (pairs, nibbles, bytes) in a dozen operations
 * with no branch: msg_adc_value() counts the mask for every value it reads,
 * and a bit-at-a-time loop made that a third of the decoder's cost. */
unsigned msg_popcount16(uint16_t mask)
{
    unsigned x = mask;

    x = x - ((x >> 1) & 0x5555u);
    x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
    x = (x + (x >> 4)) & 0x0f0fu;
    return (x + (x >> 8)) & 0x1fu;
}

int msg_encode_adc_hdr(uint8_t *out, size_t cap, const struct msg_adc *m)
{
    size_t values = (size_t)m->scans * msg_popcount16(m->mask);

    if (cap < MSG_ADC_LEN(values))
        return MSG_ENOSPC;
    wire_put_u32(&out[0], m->t0_us);
    wire_put_u32(&out[4], m->period_us);
    wire_put_u16(&out[8], m->mask);
    out[10] = m->scans;
    return MSG_ADC_HDR_LEN;
}

void msg_adc_put_value(uint8_t *payload, size_t index, uint16_t value)
{
    wire_put_u16(&payload[MSG_ADC_HDR_LEN + 2u * index], value);
}

int msg_decode_adc(const uint8_t *p, size_t n, struct msg_adc *m)
{
    size_t values;

    if (n < MSG_ADC_HDR_LEN)
        return MSG_ELEN;
    m->t0_us = wire_get_u32(&p[0]);
    m->period_us = wire_get_u32(&p[4]);
    m->mask = wire_get_u16(&p[8]);
    m->scans = p[10];
    m->values = &p[MSG_ADC_HDR_LEN];
    if (m->mask == 0 || m->scans == 0 || m->period_us == 0)
        return MSG_EINVAL;
    /* The values fill the payload exactly: a batch has no room for
     * appended fields, so any other length is a damaged or foreign frame. */
    values = (size_t)m->scans * msg_popcount16(m->mask);
    if (n != MSG_ADC_LEN(values))
        return MSG_ELEN;
    return 0;
}

uint16_t msg_adc_value(const struct msg_adc *m, unsigned scan, unsigned k)
{
    size_t i = (size_t)scan * msg_popcount16(m->mask) + k;

    return wire_get_u16(&m->values[2u * i]);
}

int msg_encode_heap(uint8_t *out, size_t cap, const struct msg_heap *m)
{
    if (cap < MSG_HEAP_LEN)
        return MSG_ENOSPC;
    wire_put_u32(&out[0], m->t_us);
    wire_put_u32(&out[4], m->total);
    wire_put_u32(&out[8], m->free);
    wire_put_u32(&out[12], m->used);
    wire_put_u32(&out[16], m->largest);
    wire_put_u32(&out[20], m->min_free);
    wire_put_u32(&out[24], m->allocs);
    wire_put_u32(&out[28], m->frees);
    wire_put_u32(&out[32], m->failures);
    wire_put_u16(&out[36], m->blocks);
    out[38] = m->scenario;
    out[39] = 0;
    return MSG_HEAP_LEN;
}

int msg_decode_heap(const uint8_t *p, size_t n, struct msg_heap *m)
{
    if (n < MSG_HEAP_LEN)
        return MSG_ELEN;
    m->t_us = wire_get_u32(&p[0]);
    m->total = wire_get_u32(&p[4]);
    m->free = wire_get_u32(&p[8]);
    m->used = wire_get_u32(&p[12]);
    m->largest = wire_get_u32(&p[16]);
    m->min_free = wire_get_u32(&p[20]);
    m->allocs = wire_get_u32(&p[24]);
    m->frees = wire_get_u32(&p[28]);
    m->failures = wire_get_u32(&p[32]);
    m->blocks = wire_get_u16(&p[36]);
    m->scenario = p[38];
    /* The figures are one consistent snapshot; anything else is a bug on
     * the other side, not something to store. */
    if (m->used > m->total || m->free != m->total - m->used ||
        m->largest > m->free || m->min_free > m->total)
        return MSG_EINVAL;
    return 0;
}

int msg_encode_log(uint8_t *out, size_t cap, const struct msg_log *m)
{
    size_t len = m->text_len;

    if (len > MSG_LOG_TEXT_MAX)
        len = MSG_LOG_TEXT_MAX;
    if (cap < MSG_LOG_HDR_LEN + len)
        return MSG_ENOSPC;
    wire_put_u32(&out[0], m->t_us);
    out[4] = m->level;
    memcpy(&out[MSG_LOG_HDR_LEN], m->text, len);
    return (int)(MSG_LOG_HDR_LEN + len);
}

int msg_decode_log(const uint8_t *p, size_t n, struct msg_log *m)
{
    if (n < MSG_LOG_HDR_LEN)
        return MSG_ELEN;
    m->t_us = wire_get_u32(&p[0]);
    m->level = p[4];
    m->text = (const char *)&p[MSG_LOG_HDR_LEN];
    m->text_len = n - MSG_LOG_HDR_LEN;
    if (m->level > 7 || m->text_len > MSG_LOG_TEXT_MAX)
        return MSG_EINVAL;
    return 0;
}

int msg_encode_pong(uint8_t *out, size_t cap, const struct msg_pong *m)
{
    if (cap < MSG_PONG_LEN)
        return MSG_ENOSPC;
    wire_put_u32(&out[0], m->token);
    wire_put_u32(&out[4], m->t_us);
    return MSG_PONG_LEN;
}

int msg_decode_pong(const uint8_t *p, size_t n, struct msg_pong *m)
{
    if (n < MSG_PONG_LEN)
        return MSG_ELEN;
    m->token = wire_get_u32(&p[0]);
    m->t_us = wire_get_u32(&p[4]);
    return 0;
}

int msg_encode_ack(uint8_t *out, size_t cap, const struct msg_ack *m)
{
    if (cap < MSG_ACK_LEN)
        return MSG_ENOSPC;
    wire_put_u16(&out[0], m->seq);
    out[2] = m->type;
    return MSG_ACK_LEN;
}

int msg_encode_nack(uint8_t *out, size_t cap, const struct msg_ack *m)
{
    if (cap < MSG_NACK_LEN)
        return MSG_ENOSPC;
    wire_put_u16(&out[0], m->seq);
    out[2] = m->type;
    out[3] = m->error;
    return MSG_NACK_LEN;
}

int msg_decode_ack(const uint8_t *p, size_t n, struct msg_ack *m)
{
    if (n < MSG_ACK_LEN)
        return MSG_ELEN;
    m->seq = wire_get_u16(&p[0]);
    m->type = p[2];
    m->error = 0;
    return 0;
}

int msg_decode_nack(const uint8_t *p, size_t n, struct msg_ack *m)
{
    if (n < MSG_NACK_LEN)
        return MSG_ELEN;
    m->seq = wire_get_u16(&p[0]);
    m->type = p[2];
    m->error = p[3];
    if (m->error == 0)
        return MSG_EINVAL;
    return 0;
}

int msg_encode_stats(uint8_t *out, size_t cap, const struct msg_stats *m)
{
    const uint32_t f[] = {
        m->t_us,         m->tx_frames,         m->tx_dropped,
        m->rx_frames_ok, m->rx_crc_errors,     m->rx_cobs_errors,
        m->rx_oversize,  m->rx_version_errors, m->rx_overruns,
        m->scans_missed,
    };

    if (cap < MSG_STATS_LEN)
        return MSG_ENOSPC;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        wire_put_u32(&out[4u * i], f[i]);
    return MSG_STATS_LEN;
}

int msg_decode_stats(const uint8_t *p, size_t n, struct msg_stats *m)
{
    uint32_t *f[] = {
        &m->t_us,         &m->tx_frames,         &m->tx_dropped,
        &m->rx_frames_ok, &m->rx_crc_errors,     &m->rx_cobs_errors,
        &m->rx_oversize,  &m->rx_version_errors, &m->rx_overruns,
        &m->scans_missed,
    };

    if (n < MSG_STATS_LEN)
        return MSG_ELEN;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        *f[i] = wire_get_u32(&p[4u * i]);
    return 0;
}

int msg_encode_scenario(uint8_t *out, size_t cap,
                        const struct msg_scenario_cmd *m)
{
    if (cap < MSG_SET_SCENARIO_LEN)
        return MSG_ENOSPC;
    out[0] = m->id;
    wire_put_u32(&out[1], m->param);
    return MSG_SET_SCENARIO_LEN;
}

int msg_decode_scenario(const uint8_t *p, size_t n, struct msg_scenario_cmd *m)
{
    if (n < MSG_SET_SCENARIO_LEN)
        return MSG_ELEN;
    m->id = p[0];
    m->param = wire_get_u32(&p[1]);
    if (m->id >= MSG_SCEN_COUNT)
        return MSG_EINVAL;
    return 0;
}

int msg_encode_u16(uint8_t *out, size_t cap, uint16_t v)
{
    if (cap < 2)
        return MSG_ENOSPC;
    wire_put_u16(out, v);
    return 2;
}

int msg_encode_u32(uint8_t *out, size_t cap, uint32_t v)
{
    if (cap < 4)
        return MSG_ENOSPC;
    wire_put_u32(out, v);
    return 4;
}

int msg_decode_u16(const uint8_t *p, size_t n, uint16_t *v)
{
    if (n < 2)
        return MSG_ELEN;
    *v = wire_get_u16(p);
    return 0;
}

int msg_decode_u32(const uint8_t *p, size_t n, uint32_t *v)
{
    if (n < 4)
        return MSG_ELEN;
    *v = wire_get_u32(p);
    return 0;
}

const char *msg_type_name(uint8_t type)
{
    /* The names are stored in the table rather than pointed to, so that a
     * program that never asks for them (the firmware) can leave them out
     * at link time: string literals share one section per file, and this
     * file's other strings are needed. */
    static const struct {
        uint8_t type;
        char name[16];
    } names[] = {
        {MSG_HELLO, "HELLO"},
        {MSG_ADC, "ADC"},
        {MSG_HEAP, "HEAP"},
        {MSG_LOG, "LOG"},
        {MSG_PONG, "PONG"},
        {MSG_ACK, "ACK"},
        {MSG_NACK, "NACK"},
        {MSG_STATS, "STATS"},
        {MSG_PING, "PING"},
        {MSG_SET_RATE, "SET_RATE"},
        {MSG_SET_CHANNELS, "SET_CHANNELS"},
        {MSG_SET_HEAP_PERIOD, "SET_HEAP_PERIOD"},
        {MSG_GET_HELLO, "GET_HELLO"},
        {MSG_REBOOT, "REBOOT"},
        {MSG_SET_SCENARIO, "SET_SCENARIO"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].type == type)
            return names[i].name;
    return NULL;
}

const char *msg_scenario_name(uint8_t id)
{
    static const char *const names[MSG_SCEN_COUNT] = {
        "none", "steady", "leak", "fragment", "spike",
    };

    return id < MSG_SCEN_COUNT ? names[id] : NULL;
}
