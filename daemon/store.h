/* The history database (SQLite, the only module that uses it).
 *
 * The loop thread hands rows to store_put_*(), which copy them into a
 * bounded queue and return at once; a writer thread drains the queue in
 * transactions committed every STORE commit_ms or commit_rows rows,
 * whichever comes first, so a slow fsync never stalls ingest.  A full
 * queue drops the row and counts it.  If a commit fails (disk full,
 * read-only, locked), the transaction is rolled back whole, the error is
 * reported in the stats and the batch is retried with backoff while new
 * rows queue up to the bound; nothing partial is ever committed.
 *
 * The writer also keeps the rollups (adc_1s, adc_1m per channel; heap_1m)
 * and enforces retention (raw rows by age and count, rollups by age).
 * Schema: docs/SCHEMA.md; versioned with PRAGMA user_version.
 *
 * Error codes are negative errno values: -ENOSPC (disk or page limit
 * full), -EROFS, -EBUSY (locked), -EIO (anything else), -ENOBUFS (queue
 * full), -ENOMEM, -EINVAL (store_open: a bad configuration). */
#ifndef TETHER_STORE_H
#define TETHER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define STORE_SCHEMA_VERSION 1
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
    uint32_t max_pages;       /* 0: none; tests use it to force -ENOSPC */
};

struct store_stats {
    uint64_t queued;  /* rows accepted */
    uint64_t dropped; /* rows refused: queue full */
    uint64_t written; /* rows committed */
    uint64_t commits;
    uint64_t failures; /* failed commits (each retried) */
    uint32_t pending;  /* rows in the queue now */
    int last_error;    /* 0, or the newest failure's code */
    char last_error_text[STORE_ERR_MAX];
    bool healthy; /* the last commit succeeded */
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

/* Sets the page limit of struct store_config.max_pages (0: none) for the
 * commits that follow, and retries a failed batch at once: how a test
 * lifts the -ENOSPC it forced. */
void store_set_max_pages(struct store *s, uint32_t max_pages);

void store_get_stats(struct store *s, struct store_stats *out);

#endif
