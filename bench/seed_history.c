/* Builds the history database the query benchmark reads, through the
 * store's own API, so that the rollups are made the way tetherd makes them.
 *
 * One ADC channel and the heap, ending at END (now, rounded down to three
 * minutes so that 0.9 s, 4 s and 1 min buckets all line up with the
 * hour):
 * - the last hour, [END - 1 h, END): channel 0 at 100 Hz, 360,000 raw rows;
 * - the 29 days and 23 hours before it: channel 0 at 1 Hz.  Feeding 30
 *   days at 100 Hz would be 259 million rows; 1 Hz still gives every
 *   second its adc_1s row and every minute its adc_1m row, which is what
 *   queries over days read;
 * - heap reports at 1 Hz over all 30 days (tether-sim's default period).
 * The store runs with tetherd's default retention, so raw rows older
 * than a day are deleted as they would be in a daemon that had run for
 * 30 days: the file ends up with a day of raw rows, 30 days of adc_1s and
 * all of adc_1m and heap_1m.  Rows are fed oldest first, as the MCU would
 * send them, and the feeder waits whenever the queue holds more than
 * BACKLOG_MAX rows, so that nothing is dropped.
 *
 * Prints "seed_end_us END" and the row counts.  Usage: seed_history DB */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "store.h"

#define US_S          1000000LL
#define HOUR_US       (3600 * US_S)
#define DAY_US        (24 * HOUR_US)
#define SPAN_US       (30 * DAY_US)
#define ALIGN_US      (180 * US_S)       /* END is a multiple of this */
#define FAST_PERIOD   10000u             /* 100 Hz */
#define SLOW_PERIOD   1000000u           /* 1 Hz */
#define HEAP_EVERY_US US_S               /* one heap report a second */
#define SCANS         MSG_ADC_VALUES_MAX /* one channel: a full batch */
#define RAW_AGE_S     86400u             /* tetherd's defaults */
#define RAW_ROWS      20000000u
#define ROLLUP_1S_S   2592000u
#define ROLLUP_1M_S   31536000u
#define PASSES_MAX    200 /* retention passes waited for at the end */
#define HEAP_TOTAL    16384u
#define SQL_MAX       64 /* a row count statement */
#define QUEUE_ROWS    (1u << 20)
#define BACKLOG_MAX   (QUEUE_ROWS / 8) /* rows queued before the feeder waits */

struct feed {
    struct store *s;
    uint16_t seq;
    uint64_t adc_rows, heap_rows;
    int64_t heap_next; /* time of the next heap report */
};

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * US_S + ts.tv_nsec / 1000;
}

/* Keeps the queue well below its bound, so that no put is refused (a
 * refused put counts as dropped even when it is retried). */
static void wait_room(struct feed *f)
{
    struct store_stats st;

    for (;;) {
        store_get_stats(f->s, &st);
        if (st.pending < BACKLOG_MAX)
            return;
        usleep(1000);
    }
}

/* A heap that breathes: free swings over ten minutes, a little noise. */
static void heap_at(int64_t t_us, uint32_t k, struct msg_heap *h)
{
    uint32_t phase = (uint32_t)((t_us / US_S) % 600);
    uint32_t swing = phase < 300 ? phase : 600 - phase;

    memset(h, 0, sizeof(*h));
    h->t_us = (uint32_t)t_us;
    h->total = HEAP_TOTAL;
    h->used = 1200 + swing * 8 + (k * 7919u) % 64;
    h->free = h->total - h->used;
    h->largest = h->free - (k % 5) * 16;
    h->min_free = HEAP_TOTAL - 1200 - 300 * 8 - 64;
    h->allocs = k * 3;
    h->frees = k * 3 - 6;
    h->blocks = 6;
    h->scenario = MSG_SCEN_STEADY;
}

static void put_heap_until(struct feed *f, int64_t until_us)
{
    struct msg_heap h;

    while (f->heap_next < until_us) {
        heap_at(f->heap_next, (uint32_t)f->heap_rows, &h);
        if (f->heap_rows % 1024 == 0)
            wait_room(f);
        while (store_put_heap(f->s, f->heap_next, f->seq, &h) == -ENOBUFS)
            usleep(100);
        f->seq++;
        f->heap_rows++;
        f->heap_next += HEAP_EVERY_US;
    }
}

/* Channel 0 from t_us up to end at the given period, in full batches
 * (the last one cut at end), with the heap reports of the same span. */
static void put_adc_span(struct feed *f, int64_t t_us, int64_t end,
                         uint32_t period)
{
    uint8_t payload[MSG_ADC_LEN(SCANS)];
    struct msg_adc a;

    while (t_us < end) {
        int64_t left = (end - t_us + period - 1) / period;
        unsigned scans = left < SCANS ? (unsigned)left : SCANS;
        struct msg_adc hdr = {(uint32_t)t_us, period, 1u, (uint8_t)scans, NULL};

        msg_encode_adc_hdr(payload, sizeof(payload), &hdr);
        for (unsigned i = 0; i < scans; i++) {
            uint64_t n = f->adc_rows + i;

            /* A ramp with a wobble: every bucket sees different values. */
            msg_adc_put_value(
                payload, i,
                (uint16_t)((n * 37u + (n / 1000u) * 11u) & 0x3fffu));
        }
        msg_decode_adc(payload, MSG_ADC_LEN(scans), &a);
        put_heap_until(f, t_us);
        wait_room(f);
        while (store_put_adc(f->s, t_us, f->seq, &a) == -ENOBUFS)
            usleep(100);
        f->seq++;
        f->adc_rows += scans;
        t_us += (int64_t)scans * period;
    }
    put_heap_until(f, end);
}

/* Raw rows older than the retention age, read through a connection of
 * its own; -1 when the count cannot be read. */
static int64_t old_raw_rows(const char *path)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM adc WHERE t_us < ?1) + "
        "(SELECT count(*) FROM heap WHERE t_us < ?1)";
    sqlite3_stmt *st = NULL;
    sqlite3 *db = NULL;
    int64_t n = -1;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out_db;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out_db;
    sqlite3_bind_int64(st, 1, wall_us() - (int64_t)RAW_AGE_S * US_S);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
out_db:
    sqlite3_close(db);
    return n;
}

static int64_t count_rows(const char *path, const char *table)
{
    char sql[SQL_MAX];
    sqlite3_stmt *st = NULL;
    sqlite3 *db = NULL;
    int64_t n = -1;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

int main(int argc, char **argv)
{
    static const char *const tables[] = {"adc", "adc_1s", "adc_1m", "heap",
                                         "heap_1m"};
    struct store_config cfg = {
        .commit_ms = 100,
        .commit_rows = 1000,
        .queue_rows = QUEUE_ROWS,
        .raw_max_age_s = RAW_AGE_S,
        .raw_max_rows = RAW_ROWS,
        .rollup_1s_age_s = ROLLUP_1S_S,
        .rollup_1m_age_s = ROLLUP_1M_S,
    };
    struct feed f = {0};
    struct store_stats st;
    char err[STORE_ERR_MAX];
    int64_t end, start, old = -1;
    int passes = 0, code = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: seed_history DB\n");
        return 2;
    }
    cfg.path = argv[1];
    unlink(cfg.path);
    end = wall_us() / ALIGN_US * ALIGN_US;
    start = end - SPAN_US;
    if (store_open(&f.s, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "seed_history: %s\n", err);
        return 1;
    }
    f.heap_next = start;
    put_adc_span(&f, start, end - HOUR_US, SLOW_PERIOD);
    put_adc_span(&f, end - HOUR_US, end, FAST_PERIOD);
    if (store_flush(f.s) != 0)
        goto out_store;
    /* Retention deletes at most 100,000 rows a table per pass; a flush
     * after a new row runs one more pass, until the old rows are gone. */
    while ((old = old_raw_rows(cfg.path)) > 0 && passes++ < PASSES_MAX) {
        store_put_event(f.s, wall_us(), "bench", "seed: retention pass");
        if (store_flush(f.s) != 0)
            goto out_store;
    }
    store_get_stats(f.s, &st);
    if (old != 0 || st.dropped != 0 || st.written < f.adc_rows + f.heap_rows) {
        fprintf(stderr,
                "seed_history: %" PRId64 " old raw rows left, %" PRIu64
                " dropped, %" PRIu64 " written\n",
                old, st.dropped, st.written);
        goto out_store;
    }
    code = 0;
out_store:
    store_close(f.s);
    if (code != 0)
        return code;
    printf("seed_end_us %" PRId64 "\n", end);
    printf("seed_adc_rows_fed %" PRIu64 "\n", f.adc_rows);
    printf("seed_heap_rows_fed %" PRIu64 "\n", f.heap_rows);
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        printf("seed_rows_%s %" PRId64 "\n", tables[i],
               count_rows(cfg.path, tables[i]));
    return 0;
}
