/* ADC sampling scheduler and batcher.  See sampler.h. */
#include "sampler.h"

static void configure(struct sampler *s, uint16_t rate_hz, uint16_t mask,
                      uint32_t now_us)
{
    unsigned per_batch;

    s->rate_hz = rate_hz;
    s->mask = mask;
    s->period_us = 1000000u / rate_hz;
    s->nch = (uint8_t)msg_popcount16(mask);
    per_batch = s->nch ? PORT_ADC_VALUES_MAX / s->nch : 0;
    s->max_scans = (uint8_t)(per_batch > 255u ? 255u : per_batch);
    s->scans = 0;
    s->next_us = now_us;
}

void sampler_init(struct sampler *s, uint16_t rate_hz, uint16_t mask,
                  uint32_t now_us)
{
    s->missed = 0;
    configure(s, rate_hz, mask, now_us);
}

void sampler_set_rate(struct sampler *s, uint16_t rate_hz, uint32_t now_us)
{
    configure(s, rate_hz, s->mask, now_us);
}

void sampler_set_mask(struct sampler *s, uint16_t mask, uint32_t now_us)
{
    configure(s, s->rate_hz, mask, now_us);
}

size_t sampler_flush(struct sampler *s)
{
    struct msg_adc m;
    size_t n;

    if (s->scans == 0)
        return 0;
    m.t0_us = s->t0_us;
    m.period_us = s->period_us;
    m.mask = s->mask;
    m.scans = s->scans;
    (void)msg_encode_adc_hdr(s->buf, sizeof(s->buf), &m);
    n = MSG_ADC_LEN((size_t)s->scans * s->nch);
    s->scans = 0;
    return n;
}

static void scan(struct sampler *s)
{
    size_t at = (size_t)s->scans * s->nch;

    if (s->scans == 0)
        s->t0_us = s->next_us;
    for (uint8_t ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++)
        if (s->mask & (1u << ch))
            msg_adc_put_value(s->buf, at++, port_adc_read(ch));
    s->scans++;
    s->next_us += s->period_us;
}

size_t sampler_poll(struct sampler *s, uint32_t now_us)
{
    if (s->nch == 0)
        return 0;
    if (s->scans != 0 && now_us - s->t0_us >= SAMPLER_LATENCY_US)
        return sampler_flush(s);
    while ((int32_t)(now_us - s->next_us) >= 0) {
        uint32_t late = now_us - s->next_us;

        if (late >= (uint32_t)s->max_scans * s->period_us) {
            size_t n = sampler_flush(s);

            s->missed += late / s->period_us;
            s->next_us = now_us;
            if (n)
                return n;
        }
        scan(s);
        if (s->scans >= s->max_scans)
            return sampler_flush(s);
    }
    return 0;
}

uint32_t sampler_wait_us(const struct sampler *s, uint32_t now_us)
{
    int32_t d;

    if (s->nch == 0)
        return UINT32_MAX;
    d = (int32_t)(s->next_us - now_us);
    if (s->scans != 0) {
        int32_t close = (int32_t)(s->t0_us + SAMPLER_LATENCY_US - now_us);

        if (close < d)
            d = close;
    }
    return d > 0 ? (uint32_t)d : 0;
}
