/* The history database (SQLite, the only module that uses it).
 *
 * The loop thread hands rows to store_put_*(), which copy them into a
 * bounded queue and return at once; a writer thread drains the queue in
 * transactions committed every STORE commit_ms or commit_rows rows,
 * whichever comes first, so a slow fsync never stalls ingest.  A full
 * queue drops the row and counts it; events and alerts have room for 128
 * more of their own, so that one raised while samples fill the queue is
 * still kept.  If a commit fails (disk full, read-only, locked), the
 * transaction is rolled back whole, the error is reported in the stats
 * and the batch is retried with backoff while new rows queue up to the
 * bound; nothing partial is ever committed.
 *
 * The writer also keeps the rollups (adc_1s, adc_1m per channel; heap_1m)
 * and enforces retention (raw rows by age and count, rollups by age).
 * Schema: docs/SCHEMA.md; versioned with PRAGMA user_version.
 *
 * Error codes are negative errno values: -ENOSPC (disk or page limit
 * full), -EROFS, -EBUSY (locked), -EIO (anything else), -ENOBUFS (queue
 * full), -ENOMEM, -EINVAL (store_open: a bad configuration).
 *
 * Disk full (docs/SCHEMA.md, "How rows get there"): a commit refused for
 * lack of space (-ENOSPC: the file system is full, or the database has
 * reached max_bytes) is rolled back and its rows stay queued; the writer
 * retries with backoff, running a retention pass first since deleting old
 * rows frees pages, and stores again by itself once a commit succeeds.
 * Meanwhile the stats say unhealthy and new rows queue up to the bound,
 * beyond which they are dropped and counted.  max_bytes caps the main
 * database file with SQLite's max_page_count; the WAL beside it is not
 * counted. */
#ifndef TETHER_STORE_H
#define TETHER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define STORE_SCHEMA_VERSION 2
#define STORE_ERR_MAX        256
#define STORE_TEXT_MAX       192 /* longest event detail or alert message */

struct store_config {
    const char *path; /* file, or ":memory:"; borrowed */
    uint32_t commit_ms;
    uint32_t commit_rows;
    uint32_t queue_rows;      /* at least MSG_ADC_VALUES_MAX is used */
    uint32_t raw_max_age_s;   /* 0: no age limit */
    uint32_t raw_max_rows;    /* 0: no count limit */
    uint32_t rollup_1s_age_s; /* 0: no age limit */
    uint32_t rollup_1m_age_s; /* 0: no age limit */
    /* 0: no limit.  Else the database file may hold at most max_bytes /
     * page size pages (at least one, and never fewer than it holds
     * already: SQLite does not shrink a file). */
    uint64_t max_bytes;
};

struct store_stats {
    uint64_t queued;  /* rows accepted */
    uint64_t dropped; /* rows refused: queue full */
    uint64_t written; /* rows committed */
    uint64_t commits;
    uint64_t failures; /* failed commits (each retried) */
    uint32_t pending;  /* rows in the queue now */
    /* 0 and "", or the newest failure's code and text, kept after the
     * store recovers: healthy says whether it has. */
    int last_error;
    char last_error_text[STORE_ERR_MAX];
    bool healthy; /* the last commit succeeded */
    /* The database file as of open, the last commit or retention pass:
     * its pages times the page size, and of those the free pages (left by
     * deleted rows, reused before the file grows). */
    uint64_t db_bytes;
    uint64_t free_bytes;
    uint64_t max_bytes; /* the size limit in force, whole pages; 0: none */
};

struct store;

/* Opens (creating if needed) and migrates the database, then starts the
 * writer.  Caller owns the result; close with store_close().  On failure
 * returns a negative code with a message in err. */
int store_open(struct store **out, const struct store_config *cfg, char *err,
               size_t errlen);

/* Commits everything queued, stops the writer and closes the database.
 * NULL is a no-op. */
void store_close(struct store *s);

/* Loop thread; never blocks on the disk.  Return 0 or -ENOBUFS. */
int store_put_adc(struct store *s, int64_t t0_us, uint16_t seq,
                  const struct msg_adc *a);
int store_put_heap(struct store *s, int64_t t_us, uint16_t seq,
                   const struct msg_heap *h);
/* kind: "link", "mcu_reset", "hello", "log", "stats", ...; detail is
 * free text (cut at STORE_TEXT_MAX). */
int store_put_event(struct store *s, int64_t t_us, const char *kind,
                    const char *detail);
/* state: "raised" or "cleared" (or "event" for one-shot alerts). */
int store_put_alert(struct store *s, int64_t t_us, const char *name,
                    const char *state, double value, double threshold,
                    const char *message);

/* Asks the writer to commit now and waits until it has (tests, shutdown).
 * Returns the result of that commit: 0 once every row queued before the
 * call is committed, or the code of the first commit attempt begun after
 * the call that failed.  When the rows are in, a retention pass runs
 * before it returns. */
int store_flush(struct store *s);

/* Sets the size limit of struct store_config.max_bytes (0: none) for the
 * commits that follow, and retries a failed batch at once (a reload of the
 * configuration; a test lifting the -ENOSPC it forced).  Returns at once;
 * the writer applies it before its next round. */
void store_set_max_bytes(struct store *s, uint64_t max_bytes);

void store_get_stats(struct store *s, struct store_stats *out);

/* The name of one of the codes above ("ENOSPC", "EROFS", ...), "" for 0.
 * Borrowed: a constant. */
const char *store_code_name(int code);

/* ---- Reading history ----
 *
 * store_query_adc() and store_query_heap() read a database file through a
 * read-only connection of their own, opened and closed within the call,
 * so they share nothing with a struct store or with each other: any
 * thread may call them at any time, several at once, while a writer
 * commits (WAL lets readers and the writer go on together).  They wait
 * for the disk, so never call them on the event loop (the daemon runs
 * them with uv_queue_work).  One call reads one consistent snapshot.
 *
 * A query asks for the rows with from_us <= t_us < to_us (raw, bucket_us
 * 0), or for the buckets of bucket_us, aligned to multiples of bucket_us
 * in Unix time, whose start lies in [from_us, to_us), each over all of
 * its samples.  Points come ordered by time, then channel.  The source
 * (docs/SCHEMA.md, "Reading history"): ADC buckets that are whole minutes
 * come from adc_1m, other whole seconds from adc_1s, buckets under a
 * second from the raw rows; heap buckets of whole minutes from heap_1m,
 * others from the raw rows.  So a range older than a rollup's retention
 * is empty at the widths that rollup serves.
 *
 * Paging: a call returns at most min(limit, cap) points, and ends its page
 * at the first time stamp or bucket boundary after it has read
 * STORE_QUERY_SCAN_MAX rows.  When there is more, *next_after_us is
 * set to the time of the last point or bucket it covered completely: call
 * again with after_us set to it for the rest.  *next_after_us is
 * STORE_QUERY_NONE when the range is complete.  A page never splits the
 * points of one time stamp or bucket, so the pages together hold every
 * point once; a page may hold fewer points than the limit, even none,
 * and still have a cursor.
 *
 * Return 0, or -EINVAL (a bad query: message in err), -ENOTSUP (":memory:",
 * which another connection cannot see), -ENOENT (no such file), -EOVERFLOW
 * (more raw rows share one time stamp than fit in a page: raise limit),
 * -EBUSY, -ENOMEM or -EIO (not a tetherd database, or another failure;
 * SQLite's message in err).  On error *n is 0. */

#define STORE_QUERY_MAX        10000   /* points per call */
#define STORE_QUERY_SCAN_MAX   1000000 /* rows read per page, about */
#define STORE_QUERY_T_MAX      ((int64_t)1 << 62) /* |from_us|, |to_us| */
#define STORE_QUERY_BUCKET_MIN 1000ULL            /* 1 ms */
#define STORE_QUERY_BUCKET_MAX (366ULL * 86400 * 1000000) /* 366 days */
#define STORE_QUERY_NONE       INT64_MIN /* no cursor; range complete */

struct store_query {
    int64_t from_us, to_us; /* from_us <= to_us, both within T_MAX */
    /* 0: raw rows.  Else STORE_QUERY_BUCKET_MIN..STORE_QUERY_BUCKET_MAX;
     * for ADC under one second or a whole number of seconds. */
    uint64_t bucket_us;
    /* Points per call: 0 or above STORE_QUERY_MAX means STORE_QUERY_MAX.
     * For ADC at least the number of channels asked for. */
    uint32_t limit;
    int64_t after_us;  /* STORE_QUERY_NONE, or the previous page's cursor */
    uint16_t channels; /* ADC only: bit i asks for channel i; not 0 */
};

/* One ADC channel at one time: a raw sample (min = max = avg = value,
 * count 1) or a bucket starting at t_us. */
struct store_point {
    int64_t t_us;
    double min, max, avg;
    uint64_t count;
    uint8_t channel;
};

/* One heap report (count 1: free_min = free_max = free_avg = free,
 * largest_min = largest, failures_max = failures, and total, used and
 * min_free as reported) or a bucket starting at t_us (total, used and
 * min_free 0: the rollup does not keep them). */
struct store_heap_point {
    int64_t t_us;
    uint64_t count;
    double free_avg;
    uint32_t free_min, free_max;
    uint32_t largest_min;
    uint32_t failures_max;
    uint32_t total, used, min_free;
};

/* Reads up to cap points into out (caller's storage), their number into
 * *n, and the paging cursor into *next_after_us. */
int store_query_adc(const char *db_path, const struct store_query *q,
                    struct store_point *out, size_t cap, size_t *n,
                    int64_t *next_after_us, char *err, size_t errlen);
/* As store_query_adc(); q->channels is ignored. */
int store_query_heap(const char *db_path, const struct store_query *q,
                     struct store_heap_point *out, size_t cap, size_t *n,
                     int64_t *next_after_us, char *err, size_t errlen);

/* One row of the alerts table. */
#define STORE_NAME_MAX 32 /* alert name or state, NUL included */
struct store_alert_row {
    int64_t t_us;
    char name[STORE_NAME_MAX];
    char state[STORE_NAME_MAX];
    double value, threshold; /* NAN when the row has none */
    char message[STORE_TEXT_MAX];
};

/* Reads the newest cap alert rows, newest first, into out (caller's
 * storage) and their number into *n.  Same threading and error codes as
 * store_query_adc(); text longer than a field is cut. */
int store_query_alerts(const char *db_path, struct store_alert_row *out,
                       size_t cap, size_t *n, char *err, size_t errlen);

#endif
