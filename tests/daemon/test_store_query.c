/* The store's history queries against a file the store itself wrote.
 *
 * Known series go in through store_put_adc() and store_put_heap(); every
 * query is compared with a naive model computed here from the same
 * series: raw rows filtered by range and mask, buckets summed into an
 * array indexed by bucket number (not streamed, as the store does).
 * Paged answers are joined page by page and must equal the model whole,
 * which catches duplicates and gaps alike.  A writer committing under a
 * reader thread checks that queries never fail or see half a batch. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_test_util.h"
#include "msg.h"
#include "store.h"

#define S          1000000LL /* microseconds per second */
#define MIN        (60 * S)
#define T0         (1699999800LL * S) /* a multiple of 5 minutes */
#define START      (T0 + 7300000)     /* first scan, on no boundary */
#define MASK       0x000bu            /* channels 0, 1 and 3 */
#define NCH        3
#define SCANS      39 /* per batch: 117 values, the most a frame holds */
#define PERIOD     500000
#define BATCHES    100
#define ROWS       (BATCHES * SCANS * NCH) /* 11700: above one page */
#define HEAPS      1500
#define HEAP_STEP  1300000
#define ALL_MAX    (ROWS + 16)
#define PAGES_MAX  20000
#define SPAN       ((int64_t)BATCHES * SCANS * PERIOD)
#define END        (START + SPAN)
#define LIVE_BATCH 60 /* batches the concurrent test writes */

struct row {
    int64_t t;
    unsigned ch;
    uint16_t v;
};

struct hrow {
    int64_t t;
    struct msg_heap h;
};

static char dir[PATH_MAX];
static char db_path[PATH_MAX + 16];
static struct row model[ROWS];
static struct hrow hmodel[HEAPS];
static struct store_point got[ALL_MAX], want[ALL_MAX];
static struct store_heap_point hgot[HEAPS + 16], hwant[HEAPS + 16];

/* ---- Helpers ---- */

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s", dtest_tmpdir());
    snprintf(db_path, sizeof(db_path), "%s/tether.db", dir);
}

static struct store *open_store(void)
{
    struct store_config c = {
        .path = db_path,
        .commit_ms = 20,
        .commit_rows = 1000,
        .queue_rows = 65536,
    };
    char err[STORE_ERR_MAX] = "";
    struct store *s = NULL;
    int r = store_open(&s, &c, err, sizeof(err));

    ck_assert_msg(r == 0, "store_open: %d %s", r, err);
    return s;
}

static uint16_t value_of(unsigned scan, unsigned ch)
{
    return (uint16_t)((scan * 7919u + ch * 104729u + (scan * scan) % 1000u) %
                      16384u);
}

static void put_batch(struct store *s, unsigned b)
{
    uint8_t payload[MSG_ADC_LEN(MSG_ADC_VALUES_MAX)];
    struct msg_adc hdr = {0, PERIOD, MASK, SCANS, NULL}, m;
    int64_t t0 = START + (int64_t)b * SCANS * PERIOD;
    unsigned i = 0;

    ck_assert_int_eq(msg_encode_adc_hdr(payload, sizeof(payload), &hdr),
                     MSG_ADC_HDR_LEN);
    for (unsigned scan = 0; scan < SCANS; scan++)
        for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++) {
            unsigned g = b * SCANS + scan;

            if (!(MASK & (1u << ch)))
                continue;
            model[g * NCH + i % NCH] =
                (struct row){t0 + (int64_t)scan * PERIOD, ch, value_of(g, ch)};
            msg_adc_put_value(payload, i++, value_of(g, ch));
        }
    ck_assert_int_eq(msg_decode_adc(payload, MSG_ADC_LEN(i), &m), 0);
    ck_assert_int_eq(store_put_adc(s, t0, (uint16_t)b, &m), 0);
}

static void put_heap(struct store *s, unsigned i)
{
    struct hrow *hr = &hmodel[i];

    hr->t = START + (int64_t)i * HEAP_STEP;
    hr->h = (struct msg_heap){
        .t_us = 1000u + i,
        .total = 65536,
        .free = 20000 + (i * 7919u) % 30000u,
        .largest = 1000 + (i * 104729u) % 15000u,
        .min_free = 20000 - i % 500,
        .failures = i / 40,
        .blocks = (uint16_t)(i % 90),
    };
    hr->h.used = hr->h.total - hr->h.free;
    ck_assert_int_eq(store_put_heap(s, hr->t, (uint16_t)i, &hr->h), 0);
}

/* Writes every series and returns the store, still open. */
static struct store *fill(void)
{
    struct store *s = open_store();

    for (unsigned b = 0; b < BATCHES; b++) {
        put_batch(s, b);
        if (b % 20 == 19)
            ck_assert_int_eq(store_flush(s), 0);
    }
    for (unsigned i = 0; i < HEAPS; i++)
        put_heap(s, i);
    ck_assert_int_eq(store_flush(s), 0);
    return s;
}

static struct store_query adc_q(uint16_t mask, int64_t from, int64_t to,
                                uint64_t bucket, uint32_t limit)
{
    struct store_query q = {
        .from_us = from,
        .to_us = to,
        .bucket_us = bucket,
        .limit = limit,
        .after_us = STORE_QUERY_NONE,
        .channels = mask,
    };

    return q;
}

static int64_t bstart(int64_t t, int64_t w)
{
    int64_t m = t % w;

    return t - (m < 0 ? m + w : m);
}

static int64_t bup(int64_t t, int64_t w)
{
    return bstart(t, w) == t ? t : bstart(t, w) + w;
}

static int by_time_then_channel(const void *a, const void *b)
{
    const struct store_point *x = a, *y = b;

    if (x->t_us != y->t_us)
        return x->t_us < y->t_us ? -1 : 1;
    return (int)x->channel - (int)y->channel;
}

/* The model's answer to q, whole (no paging): every row is added to the
 * point of its bucket and channel, found by searching back through the
 * points of its bucket; then the points are sorted. */
static size_t model_adc(const struct store_query *q, struct store_point *out)
{
    int64_t w = (int64_t)q->bucket_us;
    int64_t lo = w ? bup(q->from_us, w) : q->from_us;
    int64_t hi = w ? bup(q->to_us, w) : q->to_us;
    size_t n = 0;

    for (size_t i = 0; i < ROWS; i++) {
        const struct row *r = &model[i];
        int64_t key = w ? bstart(r->t, w) : r->t;
        struct store_point *p = NULL;

        if (r->t < lo || r->t >= hi || !(q->channels & (1u << r->ch)))
            continue;
        for (size_t j = n; w != 0 && j > 0 && out[j - 1].t_us == key; j--)
            if (out[j - 1].channel == r->ch)
                p = &out[j - 1];
        if (p == NULL) {
            ck_assert_uint_lt(n, ALL_MAX);
            out[n++] =
                (struct store_point){key, r->v, r->v, r->v, 1, (uint8_t)r->ch};
            continue;
        }
        p->min = r->v < p->min ? r->v : p->min;
        p->max = r->v > p->max ? r->v : p->max;
        /* avg holds the sum until the end. */
        p->avg += r->v;
        p->count++;
    }
    for (size_t j = 0; j < n; j++)
        out[j].avg /= (double)out[j].count;
    qsort(out, n, sizeof(out[0]), by_time_then_channel);
    return n;
}

static size_t model_heap(const struct store_query *q,
                         struct store_heap_point *out)
{
    int64_t w = (int64_t)q->bucket_us;
    int64_t lo = w ? bup(q->from_us, w) : q->from_us;
    int64_t hi = w ? bup(q->to_us, w) : q->to_us;
    size_t n = 0;

    for (size_t i = 0; i < HEAPS; i++) {
        const struct hrow *r = &hmodel[i];
        const struct msg_heap *h = &r->h;
        int64_t key = w ? bstart(r->t, w) : r->t;
        struct store_heap_point *p;

        if (r->t < lo || r->t >= hi)
            continue;
        if (w == 0 || n == 0 || out[n - 1].t_us != key) {
            out[n++] = (struct store_heap_point){
                .t_us = key,
                .count = 1,
                .free_avg = h->free,
                .free_min = h->free,
                .free_max = h->free,
                .largest_min = h->largest,
                .failures_max = h->failures,
                .total = w ? 0 : h->total,
                .used = w ? 0 : h->used,
                .min_free = w ? 0 : h->min_free,
            };
            continue;
        }
        p = &out[n - 1];
        p->free_min = h->free < p->free_min ? h->free : p->free_min;
        p->free_max = h->free > p->free_max ? h->free : p->free_max;
        p->largest_min =
            h->largest < p->largest_min ? h->largest : p->largest_min;
        p->failures_max =
            h->failures > p->failures_max ? h->failures : p->failures_max;
        p->free_avg += h->free; /* the sum until the end */
        p->count++;
    }
    for (size_t j = 0; j < n; j++)
        out[j].free_avg /= (double)out[j].count;
    return n;
}

/* Pages through q and joins the pages into got; checks every page's
 * bound and that pages move strictly forward. */
static size_t all_adc(struct store_query q, size_t cap, size_t *pages)
{
    size_t total = 0, page_max = q.limit == 0 ? STORE_QUERY_MAX : q.limit;
    int64_t last = STORE_QUERY_NONE;

    if (page_max > cap)
        page_max = cap;
    *pages = 0;
    for (;;) {
        char err[STORE_ERR_MAX] = "";
        int64_t next = 0;
        size_t n = 99999;
        int r;

        r = store_query_adc(db_path, &q, got + total,
                            cap < ALL_MAX - total ? cap : ALL_MAX - total, &n,
                            &next, err, sizeof(err));
        ck_assert_msg(r == 0, "store_query_adc: %d %s", r, err);
        ck_assert_uint_le(n, page_max);
        for (size_t i = 0; i < n; i++)
            ck_assert(last == STORE_QUERY_NONE || got[total + i].t_us > last);
        total += n;
        ++*pages;
        ck_assert_uint_lt(*pages, PAGES_MAX);
        if (next == STORE_QUERY_NONE)
            return total;
        ck_assert(next > last || last == STORE_QUERY_NONE);
        if (n > 0)
            ck_assert(got[total - 1].t_us <= next);
        last = next;
        q.after_us = next;
    }
}

static void same_points(const struct store_point *a,
                        const struct store_point *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(a[i].t_us == b[i].t_us && a[i].channel == b[i].channel,
                      "point %zu: %lld/%u, want %lld/%u", i,
                      (long long)a[i].t_us, a[i].channel, (long long)b[i].t_us,
                      b[i].channel);
        ck_assert_msg(a[i].min == b[i].min && a[i].max == b[i].max &&
                          a[i].count == b[i].count,
                      "point %zu at %lld ch %u: %g..%g n %llu, want %g..%g "
                      "n %llu",
                      i, (long long)a[i].t_us, a[i].channel, a[i].min, a[i].max,
                      (unsigned long long)a[i].count, b[i].min, b[i].max,
                      (unsigned long long)b[i].count);
        ck_assert_double_eq_tol(a[i].avg, b[i].avg, 1e-9);
    }
}

/* Queries q whole through pages of limit points and compares with the
 * model; returns the number of pages. */
static size_t check_adc(struct store_query q)
{
    size_t pages;
    size_t n = all_adc(q, ALL_MAX, &pages);
    size_t m = model_adc(&q, want);

    ck_assert_uint_eq(n, m);
    same_points(got, want, n);
    return pages;
}

static size_t heap_all(struct store_query q)
{
    size_t total = 0;

    for (int pages = 0; pages < PAGES_MAX; pages++) {
        char err[STORE_ERR_MAX] = "";
        int64_t next;
        size_t n;
        int r = store_query_heap(db_path, &q, hgot + total, HEAPS + 16 - total,
                                 &n, &next, err, sizeof(err));

        ck_assert_msg(r == 0, "store_query_heap: %d %s", r, err);
        total += n;
        if (next == STORE_QUERY_NONE)
            return total;
        q.after_us = next;
    }
    ck_abort_msg("paging did not end");
    return 0;
}

static void check_heap(struct store_query q)
{
    size_t n = heap_all(q), m = model_heap(&q, hwant);

    ck_assert_uint_eq(n, m);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        const struct store_heap_point *a = &hgot[i], *b = &hwant[i];

        ck_assert_int_eq(a->t_us, b->t_us);
        ck_assert_uint_eq(a->count, b->count);
        ck_assert_uint_eq(a->free_min, b->free_min);
        ck_assert_uint_eq(a->free_max, b->free_max);
        ck_assert_double_eq_tol(a->free_avg, b->free_avg, 1e-9);
        ck_assert_uint_eq(a->largest_min, b->largest_min);
        ck_assert_uint_eq(a->failures_max, b->failures_max);
        ck_assert_uint_eq(a->total, b->total);
        ck_assert_uint_eq(a->used, b->used);
        ck_assert_uint_eq(a->min_free, b->min_free);
    }
}

static int query_err(const char *path, struct store_query q, size_t cap)
{
    char err[STORE_ERR_MAX] = "";
    int64_t next;
    size_t n = 1;
    int r = store_query_adc(path, &q, got, cap, &n, &next, err, sizeof(err));

    ck_assert_uint_eq(n, 0);
    if (r != 0)
        ck_assert_msg(err[0] != '\0', "error %d without a message", r);
    return r;
}

/* ---- Raw rows and buckets ---- */

START_TEST(test_store_query_returns_raw_rows_exactly)
{
    struct store *s = fill();
    struct store_query q;

    check_adc(adc_q(MASK, START, END, 0, 0));
    check_adc(adc_q(MASK, START + 12345678, START + 345678901, 0, 0));
    /* to_us is excluded, from_us included. */
    check_adc(adc_q(MASK, START + PERIOD, START + 3 * PERIOD, 0, 0));
    q = adc_q(MASK, START + PERIOD, START + 3 * PERIOD, 0, 0);
    ck_assert_uint_eq(model_adc(&q, want), 2 * NCH);
    store_close(s);
}
END_TEST

START_TEST(test_store_query_buckets_match_a_naive_model)
{
    static const uint64_t widths[] = {
        1000,   250000, 500000, S,       2 * S,   10 * S,
        37 * S, MIN,    90 * S, 5 * MIN, 7 * MIN, 30 * MIN,
    };
    struct store *s = fill();

    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        check_adc(adc_q(MASK, START, END, widths[i], 0));
        check_adc(adc_q(MASK, T0 - 5 * MIN, END + 5 * MIN, widths[i], 0));
        check_adc(adc_q(MASK, START + 123456789, END - 98765432, widths[i], 0));
    }
    store_close(s);
}
END_TEST

START_TEST(test_store_query_rollup_buckets_hold_every_sample)
{
    struct store *s = fill();
    char err[STORE_ERR_MAX];
    int64_t next;
    size_t n;
    uint64_t count = 0;
    struct store_query q = adc_q(0x0001, T0, T0 + 60 * MIN, 5 * MIN, 0);

    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        0);
    ck_assert_int_eq(next, STORE_QUERY_NONE);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(got[i].channel, 0);
        ck_assert_int_eq(got[i].t_us % (5 * MIN), 0);
        count += got[i].count;
    }
    ck_assert_uint_eq(count, BATCHES * SCANS);
    store_close(s);
}
END_TEST

START_TEST(test_store_query_filters_channels_by_mask)
{
    struct store *s = fill();
    char err[STORE_ERR_MAX];
    int64_t next;
    size_t n;
    struct store_query q = adc_q(0x0004, START, END, 0, 0);

    check_adc(adc_q(0x0002, START, END, 0, 0));
    check_adc(adc_q(0x0009, START, END, 10 * S, 0));
    check_adc(adc_q(0x0008, START, END, MIN, 0));
    check_adc(adc_q(0xffff, START, END, 500000, 0));
    /* A channel without rows: nothing, and complete. */
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(next, STORE_QUERY_NONE);
    q.bucket_us = 10 * S;
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        0);
    ck_assert_uint_eq(n, 0);
    store_close(s);
}
END_TEST

/* ---- Paging and bounds ---- */

START_TEST(test_store_query_pages_cover_the_range_once_without_gaps)
{
    static const uint32_t limits[] = {3, 4, 7, 100, 1000};
    struct store *s = fill();

    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        ck_assert_uint_gt(check_adc(adc_q(MASK, START, END, 0, limits[i])), 1);
        ck_assert_uint_gt(check_adc(adc_q(MASK, START, END, S, limits[i])), 1);
        check_adc(adc_q(MASK, START + 777, END - 777, 10 * S, limits[i]));
        check_adc(adc_q(MASK, START, END, MIN, limits[i]));
        check_adc(adc_q(0x0002, START, END, 250000, limits[i]));
    }
    /* The whole range at the default limit takes two pages. */
    ck_assert_uint_eq(check_adc(adc_q(MASK, START, END, 0, 0)), 2);
    store_close(s);
}
END_TEST

START_TEST(test_store_query_respects_the_limit_and_the_cap)
{
    struct store *s = fill();
    char err[STORE_ERR_MAX];
    int64_t next;
    size_t n;
    struct store_query q = adc_q(MASK, START, END, 0, 50);

    /* 50 points hold 16 whole scans of 3 channels. */
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        0);
    ck_assert_uint_eq(n, 48);
    ck_assert_int_eq(next, got[47].t_us);
    ck_assert_int_eq(next, START + 15 * PERIOD);

    /* Above STORE_QUERY_MAX is STORE_QUERY_MAX. */
    q.limit = 4000000000u;
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        0);
    ck_assert_uint_eq(n, STORE_QUERY_MAX / NCH * NCH);
    ck_assert_int_ne(next, STORE_QUERY_NONE);

    /* A smaller output buffer bounds the page as well. */
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, 10, &n, &next, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 9);
    ck_assert_int_eq(next, START + 2 * PERIOD);

    /* A cursor at or past the end: nothing more. */
    q.after_us = END;
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(next, STORE_QUERY_NONE);
    store_close(s);
}
END_TEST

START_TEST(test_store_query_rejects_invalid_queries)
{
    char missing[sizeof(db_path) + 16], junk[sizeof(db_path) + 16];
    struct store *s = fill();
    FILE *f;

    ck_assert_int_eq(query_err(db_path, adc_q(MASK, END, START, 0, 0), 10),
                     -EINVAL);
    ck_assert_int_eq(query_err(db_path, adc_q(0, START, END, 0, 0), 10),
                     -EINVAL);
    ck_assert_int_eq(
        query_err(db_path, adc_q(MASK, START, END, 1500000, 0), 10), -EINVAL);
    ck_assert_int_eq(query_err(db_path, adc_q(MASK, START, END, 999, 0), 10),
                     -EINVAL);
    ck_assert_int_eq(
        query_err(db_path,
                  adc_q(MASK, START, END, STORE_QUERY_BUCKET_MAX + S, 0), 10),
        -EINVAL);
    ck_assert_int_eq(query_err(db_path, adc_q(MASK, START, END, 0, 2), 10),
                     -EINVAL);
    ck_assert_int_eq(query_err(db_path, adc_q(MASK, START, END, 0, 0), 2),
                     -EINVAL);
    ck_assert_int_eq(query_err(db_path, adc_q(MASK, START, END, 0, 0), 0),
                     -EINVAL);
    ck_assert_int_eq(
        query_err(db_path, adc_q(MASK, INT64_MIN + 1, INT64_MAX, S, 0), 10),
        -EINVAL);
    ck_assert_int_eq(query_err("", adc_q(MASK, START, END, 0, 0), 10), -EINVAL);
    ck_assert_int_eq(query_err(":memory:", adc_q(MASK, START, END, 0, 0), 10),
                     -ENOTSUP);
    snprintf(missing, sizeof(missing), "%s/none.db", dir);
    ck_assert_int_eq(query_err(missing, adc_q(MASK, START, END, 0, 0), 10),
                     -ENOENT);
    snprintf(junk, sizeof(junk), "%s/junk.db", dir);
    f = fopen(junk, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database, only text. ", f);
    fclose(f);
    ck_assert_int_eq(query_err(junk, adc_q(MASK, START, END, 0, 0), 10), -EIO);
    /* An empty range is fine. */
    ck_assert_int_eq(query_err(db_path, adc_q(MASK, START, START, 0, 0), 10),
                     0);
    store_close(s);
}
END_TEST

START_TEST(test_store_query_reports_a_time_stamp_larger_than_a_page)
{
    struct store *s = open_store();
    uint8_t payload[MSG_ADC_LEN(MSG_ADC_VALUES_MAX)];
    struct msg_adc hdr = {0, PERIOD, 0xffff, 1, NULL}, m;
    char err[STORE_ERR_MAX] = "";
    struct store_query q = adc_q(0xffff, T0, T0 + S, 0, 40);
    int64_t next;
    size_t n;

    /* Four frames of one scan of 16 channels at one time stamp: 64 rows,
     * as after a clock step. */
    ck_assert_int_eq(msg_encode_adc_hdr(payload, sizeof(payload), &hdr),
                     MSG_ADC_HDR_LEN);
    for (unsigned i = 0; i < 16; i++)
        msg_adc_put_value(payload, i, (uint16_t)i);
    ck_assert_int_eq(msg_decode_adc(payload, MSG_ADC_LEN(16), &m), 0);
    for (uint16_t k = 0; k < 4; k++)
        ck_assert_int_eq(store_put_adc(s, T0, k, &m), 0);
    ck_assert_int_eq(store_flush(s), 0);
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        -EOVERFLOW);
    ck_assert_uint_eq(n, 0);
    ck_assert(err[0] != '\0');
    q.limit = 64;
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        0);
    ck_assert_uint_eq(n, 64);
    ck_assert_int_eq(next, STORE_QUERY_NONE);
    /* As a bucket the time stamp is 16 points. */
    q.bucket_us = S;
    q.limit = 16;
    ck_assert_int_eq(
        store_query_adc(db_path, &q, got, ALL_MAX, &n, &next, err, sizeof(err)),
        0);
    ck_assert_uint_eq(n, 16);
    ck_assert_uint_eq(got[15].count, 4);
    store_close(s);
}
END_TEST

/* ---- Heap ---- */

START_TEST(test_store_query_heap_raw_and_buckets_match_a_naive_model)
{
    static const uint64_t widths[] = {0, 1000, S, 20 * S, 90 * S, MIN, 5 * MIN};
    struct store *s = fill();

    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        struct store_query q = adc_q(0, START, END, widths[i], 0);

        check_heap(q);
        q.limit = 7;
        check_heap(q);
        q.from_us = START + 33333333;
        q.to_us = END - 44444444;
        check_heap(q);
    }
    store_close(s);
}
END_TEST

/* ---- Files and threads ---- */

START_TEST(test_store_query_reads_a_file_after_the_store_closed)
{
    store_close(fill());
    check_adc(adc_q(MASK, START, END, 0, 0));
    check_adc(adc_q(MASK, START, END, 10 * S, 0));
    check_heap(adc_q(0, START, END, MIN, 0));
}
END_TEST

START_TEST(test_store_query_refuses_an_in_memory_store)
{
    struct store_config c = {.path = ":memory:",
                             .commit_ms = 20,
                             .commit_rows = 100,
                             .queue_rows = 1000};
    char err[STORE_ERR_MAX] = "";
    struct store *s = NULL;

    ck_assert_int_eq(store_open(&s, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(query_err(":memory:", adc_q(MASK, START, END, 0, 0), 10),
                     -ENOTSUP);
    store_close(s);
}
END_TEST

struct reader {
    volatile bool stop;
    int error; /* first failure, 0 if none */
    char err[STORE_ERR_MAX];
    size_t queries;
    size_t last_n;
    bool shrank, torn; /* a later snapshot held fewer rows; half a batch */
};

static void *reader_main(void *arg)
{
    static struct store_point pts[STORE_QUERY_MAX];
    struct reader *rd = arg;

    while (!__atomic_load_n(&rd->stop, __ATOMIC_ACQUIRE) || rd->queries < 3) {
        struct store_query q = adc_q(MASK, START, END, 0, 0);
        int64_t next;
        size_t n;
        int r;

        r = store_query_adc(db_path, &q, pts, STORE_QUERY_MAX, &n, &next,
                            rd->err, sizeof(rd->err));
        if (r == 0 && next == STORE_QUERY_NONE) {
            q.bucket_us = 10 * S;
            r = store_query_adc(db_path, &q, pts, STORE_QUERY_MAX, &n, &next,
                                rd->err, sizeof(rd->err));
            q.bucket_us = 0;
            if (r == 0)
                r = store_query_adc(db_path, &q, pts, STORE_QUERY_MAX, &n,
                                    &next, rd->err, sizeof(rd->err));
        }
        if (r != 0) {
            rd->error = r;
            return NULL;
        }
        if (n % (SCANS * NCH) != 0)
            rd->torn = true;
        if (n < rd->last_n)
            rd->shrank = true;
        rd->last_n = n;
        rd->queries++;
    }
    return NULL;
}

START_TEST(test_store_query_never_fails_while_the_writer_commits)
{
    struct store *s = open_store();
    struct reader rd = {0};
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
    for (unsigned b = 0; b < LIVE_BATCH; b++) {
        put_batch(s, b);
        if (b % 3 == 0)
            ck_assert_int_eq(store_flush(s), 0);
        usleep(2000);
    }
    ck_assert_int_eq(store_flush(s), 0);
    __atomic_store_n(&rd.stop, true, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(rd.error == 0, "query failed: %d %s", rd.error, rd.err);
    ck_assert(!rd.torn);
    ck_assert(!rd.shrank);
    ck_assert_uint_ge(rd.queries, 3);
    ck_assert_uint_le(rd.last_n, LIVE_BATCH * SCANS * NCH);
    /* Everything is there in the end. */
    ck_assert_uint_eq(check_adc(adc_q(MASK, START, END, 0, 0)), 1);
    ck_assert_uint_eq(model_adc(&(struct store_query){.from_us = START,
                                                      .to_us = END,
                                                      .channels = MASK},
                                want),
                      LIVE_BATCH * SCANS * NCH);
    store_close(s);
}
END_TEST

static Suite *store_query_suite(void)
{
    Suite *s = suite_create("store_query");
    TCase *rows = tcase_create("rows");
    TCase *paging = tcase_create("paging");
    TCase *heap = tcase_create("heap");
    TCase *files = tcase_create("files");

    tcase_add_checked_fixture(rows, setup, NULL);
    tcase_add_test(rows, test_store_query_returns_raw_rows_exactly);
    tcase_add_test(rows, test_store_query_buckets_match_a_naive_model);
    tcase_add_test(rows, test_store_query_rollup_buckets_hold_every_sample);
    tcase_add_test(rows, test_store_query_filters_channels_by_mask);
    tcase_set_timeout(rows, 60);
    suite_add_tcase(s, rows);

    tcase_add_checked_fixture(paging, setup, NULL);
    tcase_add_test(paging,
                   test_store_query_pages_cover_the_range_once_without_gaps);
    tcase_add_test(paging, test_store_query_respects_the_limit_and_the_cap);
    tcase_add_test(paging, test_store_query_rejects_invalid_queries);
    tcase_add_test(paging,
                   test_store_query_reports_a_time_stamp_larger_than_a_page);
    tcase_set_timeout(paging, 60);
    suite_add_tcase(s, paging);

    tcase_add_checked_fixture(heap, setup, NULL);
    tcase_add_test(heap,
                   test_store_query_heap_raw_and_buckets_match_a_naive_model);
    tcase_set_timeout(heap, 60);
    suite_add_tcase(s, heap);

    tcase_add_checked_fixture(files, setup, NULL);
    tcase_add_test(files, test_store_query_reads_a_file_after_the_store_closed);
    tcase_add_test(files, test_store_query_refuses_an_in_memory_store);
    tcase_add_test(files,
                   test_store_query_never_fails_while_the_writer_commits);
    tcase_set_timeout(files, 30);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    return dtest_run(store_query_suite());
}
