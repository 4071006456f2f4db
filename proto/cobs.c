/* COBS encoder and decoder.  See cobs.h for the rules they follow. */
#include "cobs.h"

void cobs_enc_begin(struct cobs_enc *e, uint8_t *out, size_t cap)
{
    e->out = out;
    e->cap = cap;
    e->pos = 1;
    e->code_pos = 0;
    e->code = 1;
    e->open = true;
    e->overflow = cap == 0;
}

static void close_group(struct cobs_enc *e)
{
    if (e->code_pos < e->cap)
        e->out[e->code_pos] = e->code;
    else
        e->overflow = true;
    e->open = false;
}

static void open_group(struct cobs_enc *e)
{
    e->code_pos = e->pos++;
    e->code = 1;
    e->open = true;
}

void cobs_enc_put(struct cobs_enc *e, uint8_t byte)
{
    if (!e->open)
        open_group(e);
    if (byte == 0) {
        close_group(e);
        open_group(e);
        return;
    }
    if (e->pos < e->cap)
        e->out[e->pos] = byte;
    else
        e->overflow = true;
    e->pos++;
    e->code++;
    /* A full group (254 data bytes) has no implicit zero; the next group is
     * opened only if another byte comes, so no stray code byte is added. */
    if (e->code == 0xff)
        close_group(e);
}

void cobs_enc_write(struct cobs_enc *e, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cobs_enc_put(e, p[i]);
}

int cobs_enc_end(struct cobs_enc *e)
{
    if (e->open)
        close_group(e);
    if (e->overflow || e->pos > e->cap)
        return COBS_ENOSPC;
    return (int)e->pos;
}

int cobs_encode(uint8_t *out, size_t cap, const uint8_t *in, size_t n)
{
    struct cobs_enc e;

    cobs_enc_begin(&e, out, cap);
    cobs_enc_write(&e, in, n);
    return cobs_enc_end(&e);
}

void cobs_dec_init(struct cobs_dec *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    d->len = 0;
    d->raw = 0;
    d->left = 0;
    d->code = 0;
    d->overflow = false;
    d->ended = false;
}

static void dec_append(struct cobs_dec *d, uint8_t byte)
{
    if (d->len < d->cap)
        d->buf[d->len++] = byte;
    else
        d->overflow = true;
}

static void dec_restart(struct cobs_dec *d)
{
    d->left = 0;
    d->code = 0;
    d->overflow = false;
}

int cobs_dec_push(struct cobs_dec *d, uint8_t byte)
{
    int ret;

    if (d->ended) {
        d->raw = 0;
        d->len = 0;
        d->ended = false;
    }
    if (byte == 0) {
        if (d->raw == 0)
            ret = COBS_DEC_MORE; /* empty block: back-to-back delimiters */
        else if (d->overflow)
            ret = COBS_ENOSPC;
        else if (d->left != 0)
            ret = COBS_ETRUNC;
        else
            ret = COBS_DEC_BLOCK;
        dec_restart(d);
        d->ended = true;
        return ret;
    }
    d->raw++;
    if (d->overflow)
        return COBS_DEC_MORE; /* discard until the delimiter */
    if (d->left == 0) {
        /* A code byte.  The previous group, unless it was full, stood for
         * a zero that is real because the block goes on. */
        if (d->code != 0 && d->code != 0xff)
            dec_append(d, 0);
        d->code = byte;
        d->left = (uint8_t)(byte - 1u);
    } else {
        dec_append(d, byte);
        d->left--;
    }
    return COBS_DEC_MORE;
}

size_t cobs_dec_feed(struct cobs_dec *d, const uint8_t *in, size_t n, int *ret)
{
    size_t i = 0;

    while (i < n) {
        /* Inside a group with room for it, data bytes are copied in a
         * tight loop; everything else (code bytes, delimiters, a block
         * that outgrows buf) takes the byte-at-a-time path. */
        if (!d->ended && !d->overflow && d->left != 0) {
            size_t run = d->left;
            size_t len = d->len;

            if (run > n - i)
                run = n - i;
            if (run > d->cap - len)
                run = d->cap - len;
            while (run > 0 && in[i] != 0) {
                d->buf[len++] = in[i++];
                run--;
            }
            d->raw += len - d->len;
            d->left = (uint8_t)(d->left - (len - d->len));
            d->len = len;
            if (i == n)
                break;
        }
        *ret = cobs_dec_push(d, in[i++]);
        if (*ret != COBS_DEC_MORE)
            return i;
    }
    *ret = COBS_DEC_MORE;
    return i;
}

int cobs_decode(uint8_t *out, size_t cap, const uint8_t *in, size_t n)
{
    struct cobs_dec d;
    int ret;

    if (n == 0)
        return COBS_ETRUNC;
    cobs_dec_init(&d, out, cap);
    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0)
            return COBS_EZERO;
        (void)cobs_dec_push(&d, in[i]);
    }
    ret = cobs_dec_push(&d, 0);
    if (ret == COBS_DEC_BLOCK)
        return (int)d.len;
    return ret;
}
