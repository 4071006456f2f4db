/* The history database: a bounded queue in front of one SQLite connection
 * that only a writer thread uses.  See store.h and docs/SCHEMA.md.
 *
 * The problem: rows arrive on the event-loop thread thousands of times a
 * second, and the disk under them (an SD card, eMMC) takes 7 to 28 ms to
 * fsync, can fill up, go read-only or be locked by a reader.  None of
 * that may stall the loop, lose a committed row or leave half a batch in
 * the database.
 *
 * The queue is a ring of variable-length records in one buffer allocated
 * at open: an ADC batch is one record with its values copied (at most
 * MSG_ADC_VALUES_MAX of them) that counts scans x channels rows; a heap
 * report, an event or an alert is one record of one row.  Two bounds hold
 * at once: at most queue_rows rows wait, and the records fit in
 * queue_rows * QUEUE_ROW_BYTES bytes (QUEUE_MIN_BYTES at least), which a
 * queue of ADC samples never reaches first but a flood of long texts can.
 * A put that would pass either bound is refused and counted; the queue
 * never blocks and never grows.  Events and alerts may go TEXT_RESERVE
 * records of the longest texts beyond both bounds: when the disk is full
 * the samples fill the queue within seconds, and an alert raised after
 * that would otherwise never reach the history.
 *
 * A record leaves the ring only when the transaction that wrote it has
 * committed.  So a failed batch needs no copy of its own: after the
 * rollback it is still at the head of the ring and is written again,
 * with backoff, while new rows queue up behind it until the bound.  The
 * writer reads records between rpos and a snapshot of wpos without the
 * lock, because the loop thread writes only beyond wpos and cannot reuse
 * that space until rpos has moved past it.
 *
 * Rollups (adc_1s, adc_1m, heap_1m) are bucketed in C as rows pass:
 * SQLite's GROUP BY over millions of rows is far too slow to run
 * periodically.  Each open bucket is read back from its table when it
 * opens (so a restart continues the bucket it left) and written back when
 * it closes and at every commit, so a crash loses no more of a rollup
 * than of the raw rows.  The accumulators of a transaction are a working
 * copy that becomes the kept copy only when the commit succeeds.
 *
 * Retention runs on the writer every RETAIN_EVERY_MS, after a flush, and
 * before retrying a batch refused for lack of space.  It deletes at most
 * RETAIN_CHUNK rows per table per pass, so a large backlog of old rows is
 * trimmed over several passes instead of stalling the writer for long.
 *
 * A full disk and the size limit (max_page_count) look alike: SQLITE_FULL,
 * which becomes -ENOSPC.  Deleting needs no new page (freed pages go to
 * the free list, and the WAL is not counted against max_page_count), so a
 * retention pass still runs in a database at its limit and makes room.
 * A real file system with no free block may refuse even that once the
 * WAL must grow; then only space freed outside tetherd helps, and the
 * paced retries notice it.
 *
 * Queries (store_query_*) run on the caller's thread with a read-only
 * connection of their own, one per call, so they need no lock of the
 * store's.  They read one statement's rows ordered by time and cut them
 * into pages and buckets in C: the same reasons as for the rollups rule
 * out GROUP BY over computed buckets, and stepping in C lets a page stop
 * at a bucket boundary after a bounded number of rows. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

#define BUSY_MS         1000      /* a locked database waits this long */
#define QUEUE_ROWS_MAX  16777216u /* largest queue_rows accepted */
#define QUEUE_ROW_BYTES 16u       /* ring bytes per row of queue_rows */
#define QUEUE_MIN_BYTES 65536u    /* so small queues still take texts */
#define REC_ALIGN       8u        /* records start 8-byte aligned */
#define TAG_MAX         64        /* kind, alert name and state, with NUL */
#define TEXT_RESERVE    128u      /* events and alerts beyond the queue bound */
#define RETRY_FIRST_MS  100u      /* backoff after a failed commit ... */
#define RETRY_MAX_MS    5000u     /* ... doubling up to this */
#define RETAIN_EVERY_MS 2000u
#define RETAIN_CHUNK    100000   /* rows per table per retention pass */
#define EVENTS_KEEP     1000000u /* newest rows kept in events */
#define ALERTS_KEEP     100000u  /* newest rows kept in alerts */
#define RETAIN_RULES    9
#define SQL_MAX         320 /* a retention statement */
#define PRAGMA_MAX      64  /* a PRAGMA with a number, or its answer */
/* The writer's page cache, in KiB (SQLite's negative cache_size).  Rows
 * are appended at the right edge of each table and index and retention
 * deletes from the left, so a few hundred pages hold every hot path;
 * SQLite's default of 2000 KiB only adds resident memory. */
#define CACHE_KIB       "-512"
#define US_1S           1000000LL
#define US_1M           60000000LL
#define NS_PER_MS       1000000LL
#define NEVER           INT64_MAX

/* ---- Queue records ---- */

enum rec_type {
    REC_WRAP, /* filler up to the end of the ring */
    REC_ADC,
    REC_HEAP,
    REC_EVENT,
    REC_ALERT,
};

struct rec {
    uint32_t size; /* bytes, padding included: the next record follows */
    uint16_t rows;
    uint8_t type;
};

struct rec_adc {
    struct rec r;
    int64_t t0_us;
    uint32_t period_us;
    uint16_t mask;
    uint16_t seq;
    uint16_t scans;
    uint16_t values[]; /* scans * popcount(mask), scan by scan */
};

struct rec_heap {
    struct rec r;
    int64_t t_us;
    struct msg_heap h;
    uint16_t seq;
};

/* An event (kind, detail) or an alert (name, state, message): the strings
 * back to back, each NUL-terminated. */
struct rec_text {
    struct rec r;
    int64_t t_us;
    double value;
    double threshold;
    char text[];
};

/* The ring bytes kept for events and alerts only: TEXT_RESERVE records of
 * the longest (name, state and message each at its cut, padding). */
#define TEXT_RESERVE_BYTES                                                     \
    (TEXT_RESERVE *                                                            \
     (sizeof(struct rec_text) + 2 * TAG_MAX + STORE_TEXT_MAX + REC_ALIGN))

/* ---- Rollup accumulators ---- */

enum level { LEVEL_1S, LEVEL_1M, LEVELS };

static const int64_t level_width[LEVELS] = {US_1S, US_1M};

struct adc_bucket {
    int64_t start; /* bucket start, µs; valid when open */
    int64_t sum;
    int64_t count;
    uint16_t min, max;
    bool open;
    bool dirty; /* changed since it was last written */
};

struct heap_bucket {
    int64_t start;
    int64_t sum_free;
    int64_t count;
    uint32_t min_free, max_free, min_largest, max_failures;
    bool open;
    bool dirty;
};

struct rollups {
    struct adc_bucket adc[LEVELS][MSG_ADC_CHANNELS_MAX];
    struct heap_bucket heap;
};

/* ---- Statements ---- */

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INS_ADC,
    ST_INS_HEAP,
    ST_INS_EVENT,
    ST_INS_ALERT,
    ST_GET_ADC_1S,
    ST_GET_ADC_1M,
    ST_PUT_ADC_1S,
    ST_PUT_ADC_1M,
    ST_GET_HEAP_1M,
    ST_PUT_HEAP_1M,
    ST_PAGE_COUNT,
    ST_FREELIST_COUNT,
    ST_COUNT
};

#define ADC_GET(t)                                                             \
    "SELECT min, max, sum, count FROM " t " WHERE t_us = ?1 AND channel = ?2"
#define ADC_PUT(t)                                                             \
    "INSERT INTO " t " (t_us, channel, min, max, sum, count) "                 \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (t_us, channel) DO UPDATE "   \
    "SET min = excluded.min, max = excluded.max, sum = excluded.sum, "         \
    "count = excluded.count"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INS_ADC] = "INSERT INTO adc (t_us, channel, value, seq) "
                   "VALUES (?1, ?2, ?3, ?4)",
    [ST_INS_HEAP] = "INSERT INTO heap (t_us, seq, mcu_t_us, total, free, "
                    "used, largest, min_free, allocs, frees, failures, "
                    "blocks, scenario) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                    "?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_INS_EVENT] = "INSERT INTO events (t_us, kind, detail) "
                     "VALUES (?1, ?2, ?3)",
    [ST_INS_ALERT] = "INSERT INTO alerts (t_us, name, state, value, "
                     "threshold, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_GET_ADC_1S] = ADC_GET("adc_1s"),
    [ST_GET_ADC_1M] = ADC_GET("adc_1m"),
    [ST_PUT_ADC_1S] = ADC_PUT("adc_1s"),
    [ST_PUT_ADC_1M] = ADC_PUT("adc_1m"),
    [ST_GET_HEAP_1M] = "SELECT min_free, max_free, sum_free, min_largest, "
                       "max_failures, count FROM heap_1m WHERE t_us = ?1",
    [ST_PUT_HEAP_1M] =
        "INSERT INTO heap_1m (t_us, min_free, max_free, sum_free, "
        "min_largest, max_failures, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
        "?7) ON CONFLICT (t_us) DO UPDATE SET min_free = excluded.min_free, "
        "max_free = excluded.max_free, sum_free = excluded.sum_free, "
        "min_largest = excluded.min_largest, "
        "max_failures = excluded.max_failures, count = excluded.count",
    [ST_PAGE_COUNT] = "PRAGMA page_count",
    [ST_FREELIST_COUNT] = "PRAGMA freelist_count",
};

/* One retention rule: rows of a table older than `limit` seconds, or all
 * but its `limit` newest rows. */
struct retain {
    const char *table;
    bool by_age;
    uint32_t limit;
    sqlite3_stmt *st;
};

/* ---- Schema migrations: step i takes user_version i to i + 1 ---- */

/* The text is kept as written, so it is laid out for .schema in the
 * sqlite3 shell. */
static const char *const migrations[] = {
    /* 1: everything. */
    "CREATE TABLE adc (\n"
    "    t_us INTEGER NOT NULL,    -- wall clock of the scan, microseconds\n"
    "    channel INTEGER NOT NULL, -- 0..15\n"
    "    value INTEGER NOT NULL,   -- raw ADC counts\n"
    "    seq INTEGER NOT NULL      -- frame sequence number\n"
    ");\n"
    "CREATE INDEX adc_t ON adc (t_us);\n"
    "CREATE TABLE adc_1s (\n"
    "    t_us INTEGER NOT NULL,    -- bucket start, microseconds\n"
    "    channel INTEGER NOT NULL,\n"
    "    min INTEGER NOT NULL,\n"
    "    max INTEGER NOT NULL,\n"
    "    sum INTEGER NOT NULL,\n"
    "    count INTEGER NOT NULL,\n"
    "    avg REAL GENERATED ALWAYS AS (CAST(sum AS REAL) / count) VIRTUAL,\n"
    "    PRIMARY KEY (t_us, channel)\n"
    ");\n"
    "CREATE TABLE adc_1m (\n"
    "    t_us INTEGER NOT NULL,    -- bucket start, microseconds\n"
    "    channel INTEGER NOT NULL,\n"
    "    min INTEGER NOT NULL,\n"
    "    max INTEGER NOT NULL,\n"
    "    sum INTEGER NOT NULL,\n"
    "    count INTEGER NOT NULL,\n"
    "    avg REAL GENERATED ALWAYS AS (CAST(sum AS REAL) / count) VIRTUAL,\n"
    "    PRIMARY KEY (t_us, channel)\n"
    ");\n"
    "CREATE TABLE heap (\n"
    "    t_us INTEGER NOT NULL,    -- wall clock of the report, microseconds\n"
    "    seq INTEGER NOT NULL,     -- frame sequence number\n"
    "    mcu_t_us INTEGER NOT NULL, -- MCU clock in the report\n"
    "    total INTEGER NOT NULL,\n"
    "    free INTEGER NOT NULL,\n"
    "    used INTEGER NOT NULL,\n"
    "    largest INTEGER NOT NULL,\n"
    "    min_free INTEGER NOT NULL,\n"
    "    allocs INTEGER NOT NULL,\n"
    "    frees INTEGER NOT NULL,\n"
    "    failures INTEGER NOT NULL,\n"
    "    blocks INTEGER NOT NULL,\n"
    "    scenario INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX heap_t ON heap (t_us);\n"
    "CREATE TABLE heap_1m (\n"
    "    t_us INTEGER PRIMARY KEY, -- bucket start, microseconds\n"
    "    min_free INTEGER NOT NULL,\n"
    "    max_free INTEGER NOT NULL,\n"
    "    sum_free INTEGER NOT NULL,\n"
    "    avg_free REAL GENERATED ALWAYS AS\n"
    "        (CAST(sum_free AS REAL) / count) VIRTUAL,\n"
    "    min_largest INTEGER NOT NULL,\n"
    "    max_failures INTEGER NOT NULL,\n"
    "    count INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE alerts (\n"
    "    t_us INTEGER NOT NULL,\n"
    "    name TEXT NOT NULL,       -- heap_low, heap_leak, link_lost, ...\n"
    "    state TEXT NOT NULL,      -- raised, cleared or event\n"
    "    value REAL,\n"
    "    threshold REAL,\n"
    "    message TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX alerts_t ON alerts (t_us);\n"
    "CREATE TABLE events (\n"
    "    t_us INTEGER NOT NULL,\n"
    "    kind TEXT NOT NULL,       -- start, link, hello, log, stats, ...\n"
    "    detail TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX events_t ON events (t_us);\n",
    /* 2: history reads of raw ADC rows find every column they read in the
     * time index and no longer look each row up in the table: a third
     * less time for an hour at 100 Hz. */
    "CREATE INDEX adc_tcv ON adc (t_us, channel, value);\n"
    "DROP INDEX adc_t;\n",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
                   STORE_SCHEMA_VERSION,
               "one migration step per schema version");

/* ---- The store ---- */

/* What the writer takes from the shared state for one round. */
struct job {
    uint64_t from, to;  /* ring positions: the rows it may write */
    uint64_t flush_to;  /* a flush waits for rows up to here */
    uint64_t attempt;   /* number of this round */
    int last_error;     /* 0 when the last commit succeeded */
    bool for_flush;     /* a flush waits for this round's retention */
    uint64_t max_bytes; /* to apply first when set_limit */
    bool set_limit;
};

struct outcome {
    int result;
    uint64_t end; /* ring position after the last row committed */
    uint32_t rows;
    bool retained; /* a retention pass ran after the commit */
    bool measured; /* db_bytes and free_bytes are new */
    uint64_t db_bytes, free_bytes;
    bool limited; /* max_bytes is the limit now in force */
    uint64_t max_bytes;
};

struct store {
    /* Fixed at open. */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    struct retain retain[RETAIN_RULES];
    size_t nretain;
    uint32_t commit_ms, commit_rows, queue_rows;
    int64_t no_page_limit; /* SQLite's own max_page_count */
    int64_t page_size;     /* bytes */
    uint8_t *ring;
    uint64_t ring_cap;
    pthread_t writer;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the writer waits here (monotonic clock) */
    pthread_cond_t done; /* flush waiters wait here */

    /* Writer thread only. */
    struct rollups kept; /* as of the last commit */
    struct rollups work; /* inside the transaction under way */
    int64_t retain_at_ns;
    uint32_t retry_ms;
    uint64_t failed_in_a_row; /* commits, since the last that worked */
    int64_t limit_pages;      /* max_page_count in force; 0: none */
    bool failing;
    bool retain_failing;
    char why[STORE_ERR_MAX];

    /* Under lock. */
    uint64_t wpos, rpos;     /* ring byte positions; they never wrap */
    uint64_t cut;            /* wpos when the writer last took a job */
    int64_t old_ns;          /* arrival of the oldest row before cut */
    int64_t new_ns;          /* arrival of the first row after cut */
    bool need_stamp;         /* no row has arrived after cut yet */
    uint64_t retained_to;    /* rows before here were followed by retention */
    uint64_t flush_to;       /* flushes wait for retained_to to reach this */
    uint64_t flush_attempt;  /* ... and at least for this round's result */
    uint64_t attempts;       /* jobs taken */
    uint64_t failed_attempt; /* number of the newest failed one */
    int64_t retry_at_ns;
    bool retry_now;
    uint64_t max_bytes; /* the limit asked for ... */
    bool max_bytes_set; /* ... and not yet taken by the writer */
    bool stopping;
    bool dropping;
    struct store_stats stats; /* pending counts the rows in the ring */
};

/* ---- Small helpers ---- */

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Start of the bucket of width w holding t, also for t < 0. */
static int64_t bucket_start(int64_t t, int64_t w)
{
    int64_t m = t % w;

    return t - (m < 0 ? m + w : m);
}

static uint32_t rec_size(size_t bytes)
{
    return (uint32_t)((bytes + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1));
}

/* Length of src cut to at most max - 1 bytes, backing off to the start
 * of a UTF-8 sequence so that the cut leaves valid text. */
static size_t cut_len(const char *src, size_t max)
{
    size_t n = strnlen(src, max);

    if (n < max)
        return n;
    n = max - 1;
    while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* Copies n bytes and a NUL; returns where the next string goes. */
static char *put_text(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
    return dst + n + 1;
}

/* SQLite's result codes become the negative errno values of store.h. */
static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

const char *store_code_name(int r)
{
    switch (r) {
    case 0:
        return "";
    case -ENOSPC:
        return "ENOSPC";
    case -EROFS:
        return "EROFS";
    case -EBUSY:
        return "EBUSY";
    case -ENOMEM:
        return "ENOMEM";
    case -ENOBUFS:
        return "ENOBUFS";
    case -EINVAL:
        return "EINVAL";
    default:
        return "EIO";
    }
}

/* Records what failed, with SQLite's own words, and maps the code.
 * Writer thread (or store_open before the writer starts). */
static int fail(struct store *s, int rc, const char *what)
{
    snprintf(s->why, sizeof(s->why), "%s: %s", what, sqlite3_errmsg(s->db));
    return map_rc(rc);
}

/* Steps a statement that returns no row and resets it. */
static int run(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : fail(s, rc, what);

    sqlite3_reset(st);
    return r;
}

static int exec(struct store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : fail(s, rc, what);
}

/* The one integer a statement such as a PRAGMA returns. */
static int query_int(struct store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return fail(s, rc, sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = fail(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc, sql);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc;
}

/* Leaves a failed transaction; SQLite may have rolled it back itself. */
static void rollback(struct store *s)
{
    int rc;

    if (sqlite3_get_autocommit(s->db))
        return;
    rc = sqlite3_step(s->st[ST_ROLLBACK]);
    sqlite3_reset(s->st[ST_ROLLBACK]);
    if (rc != SQLITE_DONE)
        log_err("store: rollback failed: %s", sqlite3_errmsg(s->db));
}

/* ---- Rollups (writer thread) ---- */

static int put_adc_bucket(struct store *s, enum level lv, unsigned ch,
                          struct adc_bucket *b)
{
    sqlite3_stmt *st = s->st[ST_PUT_ADC_1S + lv];
    int r;

    sqlite3_bind_int64(st, 1, b->start);
    sqlite3_bind_int(st, 2, (int)ch);
    sqlite3_bind_int(st, 3, b->min);
    sqlite3_bind_int(st, 4, b->max);
    sqlite3_bind_int64(st, 5, b->sum);
    sqlite3_bind_int64(st, 6, b->count);
    r = run(s, st, lv == LEVEL_1S ? "write adc_1s" : "write adc_1m");
    if (r == 0)
        b->dirty = false;
    return r;
}

/* Opens the bucket at start, continuing the row already stored for it. */
static int get_adc_bucket(struct store *s, enum level lv, unsigned ch,
                          int64_t start, struct adc_bucket *b)
{
    sqlite3_stmt *st = s->st[ST_GET_ADC_1S + lv];
    int rc;

    sqlite3_bind_int64(st, 1, start);
    sqlite3_bind_int(st, 2, (int)ch);
    rc = sqlite3_step(st);
    memset(b, 0, sizeof(*b));
    if (rc == SQLITE_ROW) {
        b->min = (uint16_t)sqlite3_column_int(st, 0);
        b->max = (uint16_t)sqlite3_column_int(st, 1);
        b->sum = sqlite3_column_int64(st, 2);
        b->count = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, rc, lv == LEVEL_1S ? "read adc_1s" : "read adc_1m");
    b->start = start;
    b->open = true;
    return 0;
}

static int add_adc(struct store *s, unsigned ch, int64_t t, uint16_t v)
{
    for (int lv = 0; lv < LEVELS; lv++) {
        struct adc_bucket *b = &s->work.adc[lv][ch];
        int64_t start = bucket_start(t, level_width[lv]);
        int r;

        if (!b->open || b->start != start) {
            if (b->open && b->dirty &&
                (r = put_adc_bucket(s, (enum level)lv, ch, b)) != 0)
                return r;
            if ((r = get_adc_bucket(s, (enum level)lv, ch, start, b)) != 0)
                return r;
        }
        if (b->count == 0 || v < b->min)
            b->min = v;
        if (b->count == 0 || v > b->max)
            b->max = v;
        b->sum += v;
        b->count++;
        b->dirty = true;
    }
    return 0;
}

static int put_heap_bucket(struct store *s, struct heap_bucket *b)
{
    sqlite3_stmt *st = s->st[ST_PUT_HEAP_1M];
    int r;

    sqlite3_bind_int64(st, 1, b->start);
    sqlite3_bind_int64(st, 2, b->min_free);
    sqlite3_bind_int64(st, 3, b->max_free);
    sqlite3_bind_int64(st, 4, b->sum_free);
    sqlite3_bind_int64(st, 5, b->min_largest);
    sqlite3_bind_int64(st, 6, b->max_failures);
    sqlite3_bind_int64(st, 7, b->count);
    r = run(s, st, "write heap_1m");
    if (r == 0)
        b->dirty = false;
    return r;
}

static int get_heap_bucket(struct store *s, int64_t start,
                           struct heap_bucket *b)
{
    sqlite3_stmt *st = s->st[ST_GET_HEAP_1M];
    int rc;

    sqlite3_bind_int64(st, 1, start);
    rc = sqlite3_step(st);
    memset(b, 0, sizeof(*b));
    if (rc == SQLITE_ROW) {
        b->min_free = (uint32_t)sqlite3_column_int64(st, 0);
        b->max_free = (uint32_t)sqlite3_column_int64(st, 1);
        b->sum_free = sqlite3_column_int64(st, 2);
        b->min_largest = (uint32_t)sqlite3_column_int64(st, 3);
        b->max_failures = (uint32_t)sqlite3_column_int64(st, 4);
        b->count = sqlite3_column_int64(st, 5);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, rc, "read heap_1m");
    b->start = start;
    b->open = true;
    return 0;
}

static int add_heap(struct store *s, int64_t t, const struct msg_heap *h)
{
    struct heap_bucket *b = &s->work.heap;
    int64_t start = bucket_start(t, US_1M);
    bool first;
    int r;

    if (!b->open || b->start != start) {
        if (b->open && b->dirty && (r = put_heap_bucket(s, b)) != 0)
            return r;
        if ((r = get_heap_bucket(s, start, b)) != 0)
            return r;
    }
    first = b->count == 0;
    if (first || h->free < b->min_free)
        b->min_free = h->free;
    if (first || h->free > b->max_free)
        b->max_free = h->free;
    if (first || h->largest < b->min_largest)
        b->min_largest = h->largest;
    if (first || h->failures > b->max_failures)
        b->max_failures = h->failures;
    b->sum_free += h->free;
    b->count++;
    b->dirty = true;
    return 0;
}

/* Writes every open bucket that changed, so that the commit carries the
 * rollups as far as the raw rows. */
static int put_open_buckets(struct store *s)
{
    int r;

    for (int lv = 0; lv < LEVELS; lv++)
        for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++) {
            struct adc_bucket *b = &s->work.adc[lv][ch];

            if (b->open && b->dirty &&
                (r = put_adc_bucket(s, (enum level)lv, ch, b)) != 0)
                return r;
        }
    if (s->work.heap.open && s->work.heap.dirty)
        return put_heap_bucket(s, &s->work.heap);
    return 0;
}

/* ---- Writing records (writer thread) ---- */

static int write_adc(struct store *s, const struct rec_adc *a)
{
    sqlite3_stmt *st = s->st[ST_INS_ADC];
    size_t i = 0;
    int r;

    sqlite3_bind_int(st, 4, a->seq);
    for (unsigned scan = 0; scan < a->scans; scan++) {
        int64_t t = a->t0_us + (int64_t)scan * a->period_us;

        for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++) {
            uint16_t v;

            if (!(a->mask & (1u << ch)))
                continue;
            v = a->values[i++];
            sqlite3_bind_int64(st, 1, t);
            sqlite3_bind_int(st, 2, (int)ch);
            sqlite3_bind_int(st, 3, v);
            if ((r = run(s, st, "insert into adc")) != 0 ||
                (r = add_adc(s, ch, t, v)) != 0)
                return r;
        }
    }
    return 0;
}

static int write_heap(struct store *s, const struct rec_heap *rh)
{
    sqlite3_stmt *st = s->st[ST_INS_HEAP];
    const struct msg_heap *h = &rh->h;
    int r;

    sqlite3_bind_int64(st, 1, rh->t_us);
    sqlite3_bind_int(st, 2, rh->seq);
    sqlite3_bind_int64(st, 3, h->t_us);
    sqlite3_bind_int64(st, 4, h->total);
    sqlite3_bind_int64(st, 5, h->free);
    sqlite3_bind_int64(st, 6, h->used);
    sqlite3_bind_int64(st, 7, h->largest);
    sqlite3_bind_int64(st, 8, h->min_free);
    sqlite3_bind_int64(st, 9, h->allocs);
    sqlite3_bind_int64(st, 10, h->frees);
    sqlite3_bind_int64(st, 11, h->failures);
    sqlite3_bind_int(st, 12, h->blocks);
    sqlite3_bind_int(st, 13, h->scenario);
    if ((r = run(s, st, "insert into heap")) != 0)
        return r;
    return add_heap(s, rh->t_us, h);
}

static int write_text(struct store *s, const struct rec_text *rt, bool alert)
{
    const char *a = rt->text;
    const char *b = a + strlen(a) + 1;
    sqlite3_stmt *st;

    if (!alert) {
        st = s->st[ST_INS_EVENT];
        sqlite3_bind_int64(st, 1, rt->t_us);
        sqlite3_bind_text(st, 2, a, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, b, -1, SQLITE_STATIC);
        return run(s, st, "insert into events");
    }
    st = s->st[ST_INS_ALERT];
    sqlite3_bind_int64(st, 1, rt->t_us);
    sqlite3_bind_text(st, 2, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, b, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, rt->value);
    sqlite3_bind_double(st, 5, rt->threshold);
    sqlite3_bind_text(st, 6, b + strlen(b) + 1, -1, SQLITE_STATIC);
    return run(s, st, "insert into alerts");
}

static int write_rec(struct store *s, const struct rec *r)
{
    switch (r->type) {
    case REC_ADC:
        return write_adc(s, (const struct rec_adc *)r);
    case REC_HEAP:
        return write_heap(s, (const struct rec_heap *)r);
    case REC_EVENT:
        return write_text(s, (const struct rec_text *)r, false);
    case REC_ALERT:
        return write_text(s, (const struct rec_text *)r, true);
    default:
        assert(!"a record of unknown type in the queue");
        return -EIO;
    }
}

/* One transaction: whole records from j->from, up to commit_rows rows
 * (at least one record), with the open rollup buckets.  On failure it is
 * rolled back whole and the accumulators are left as of the last
 * commit. */
static int write_batch(struct store *s, const struct job *j, struct outcome *o)
{
    uint64_t pos = j->from;
    uint32_t rows = 0;
    int r;

    if (j->from == j->to)
        return 0;
    s->work = s->kept;
    if ((r = run(s, s->st[ST_BEGIN], "begin")) != 0)
        goto err_txn;
    while (pos < j->to) {
        const struct rec *rec =
            (const struct rec *)(s->ring + pos % s->ring_cap);

        if (rec->type != REC_WRAP) {
            if (rows > 0 && rows + rec->rows > s->commit_rows)
                break;
            if ((r = write_rec(s, rec)) != 0)
                goto err_txn;
            rows += rec->rows;
        }
        pos += rec->size;
    }
    if ((r = put_open_buckets(s)) != 0 ||
        (r = run(s, s->st[ST_COMMIT], "commit")) != 0)
        goto err_txn;
    s->kept = s->work;
    o->end = pos;
    o->rows = rows;
    return 0;

err_txn:
    rollback(s);
    return r;
}

/* ---- Retention (writer thread) ---- */

/* One pass in its own transaction.  A failure costs nothing but disk
 * space, so it is logged (once until a pass succeeds again) and the next
 * pass tries again. */
static void retain(struct store *s)
{
    int64_t now = wall_us();
    bool more = false;
    int r;

    s->retain_at_ns = now_ns() + RETAIN_EVERY_MS * NS_PER_MS;
    if (s->nretain == 0)
        return;
    if ((r = run(s, s->st[ST_BEGIN], "begin retention")) != 0)
        goto err_txn;
    for (size_t i = 0; i < s->nretain; i++) {
        struct retain *rt = &s->retain[i];

        sqlite3_bind_int64(rt->st, 1,
                           rt->by_age ? now - (int64_t)rt->limit * US_1S
                                      : (int64_t)rt->limit);
        sqlite3_bind_int64(rt->st, 2, RETAIN_CHUNK);
        if ((r = run(s, rt->st, rt->table)) != 0)
            goto err_txn;
        if (sqlite3_changes(s->db) >= RETAIN_CHUNK)
            more = true;
    }
    if ((r = run(s, s->st[ST_COMMIT], "commit retention")) != 0)
        goto err_txn;
    if (more)
        s->retain_at_ns = 0; /* a backlog: go on at the next commit */
    if (s->retain_failing)
        log_info("store: retention works again");
    s->retain_failing = false;
    return;

err_txn:
    rollback(s);
    if (!s->retain_failing)
        log_warn("store: retention failed (%s): %s; retrying later",
                 store_code_name(r), s->why);
    s->retain_failing = true;
}

/* ---- The writer thread ---- */

/* Sets max_page_count for a limit of max_bytes (0: none), in whole pages
 * and at least one; SQLite answers with the limit it took, which is never
 * below the pages the file has.  Returns that limit in bytes (0: none),
 * or -1 when the PRAGMA failed and the old limit stays. */
static int64_t apply_limit(struct store *s, uint64_t max_bytes)
{
    int64_t pages = s->no_page_limit, got;
    char sql[PRAGMA_MAX];

    if (max_bytes != 0 &&
        max_bytes / (uint64_t)s->page_size < (uint64_t)s->no_page_limit)
        pages = (int64_t)(max_bytes / (uint64_t)s->page_size);
    if (pages < 1)
        pages = 1;
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %" PRId64, pages);
    if (query_int(s, sql, &got) != 0) {
        log_warn("store: cannot set the size limit: %s", s->why);
        return -1;
    }
    s->limit_pages = got >= s->no_page_limit ? 0 : got;
    return s->limit_pages * s->page_size;
}

/* The file's size and free space now, into o. */
static void measure(struct store *s, struct outcome *o)
{
    sqlite3_stmt *pc = s->st[ST_PAGE_COUNT], *fl = s->st[ST_FREELIST_COUNT];

    if (sqlite3_step(pc) == SQLITE_ROW && sqlite3_step(fl) == SQLITE_ROW) {
        o->db_bytes = (uint64_t)(sqlite3_column_int64(pc, 0) * s->page_size);
        o->free_bytes = (uint64_t)(sqlite3_column_int64(fl, 0) * s->page_size);
        o->measured = true;
    }
    sqlite3_reset(pc);
    sqlite3_reset(fl);
}

/* After a commit refused for space: adds the size limit and the file's
 * size to s->why, since SQLite's message does not tell a limit reached
 * from a full disk. */
static void explain_full(struct store *s)
{
    struct outcome o = {0};
    size_t n = strlen(s->why);

    if (s->limit_pages == 0)
        return;
    measure(s, &o);
    if (o.measured)
        snprintf(s->why + n, sizeof(s->why) - n,
                 " (size limit %" PRId64 " bytes, file %" PRIu64 " bytes)",
                 s->limit_pages * s->page_size, o.db_bytes);
}

/* Whether the writer has a round to do now; if not, until when it may
 * sleep.  Under lock. */
static bool job_due(const struct store *s, int64_t now, int64_t *until)
{
    int64_t oldest, deadline;

    *until = NEVER;
    /* A flush is served at once, but after a failure only by one fresh
     * attempt: the backoff applies again after that. */
    if (s->flush_to > s->retained_to &&
        (s->stats.healthy || s->attempts < s->flush_attempt))
        return true;
    if (s->rpos == s->wpos)
        return false;
    if (s->retry_now)
        return true;
    if (!s->stats.healthy) {
        *until = s->retry_at_ns;
        return now >= s->retry_at_ns;
    }
    if (s->stats.pending >= s->commit_rows)
        return true;
    /* Rows before the cut are older than any after it. */
    oldest = s->rpos < s->cut ? s->old_ns : s->new_ns;
    deadline = oldest + (int64_t)s->commit_ms * NS_PER_MS;
    *until = deadline;
    return now >= deadline;
}

static void take_job(struct store *s, struct job *j)
{
    j->from = s->rpos;
    j->to = s->wpos;
    j->flush_to = s->flush_to;
    j->for_flush = s->flush_to > s->retained_to;
    j->attempt = ++s->attempts;
    j->last_error = s->stats.healthy ? 0 : s->stats.last_error;
    j->set_limit = s->max_bytes_set;
    j->max_bytes = s->max_bytes;
    s->max_bytes_set = false;
    s->retry_now = false;
    if (s->rpos >= s->cut)
        s->old_ns = s->new_ns;
    s->cut = s->wpos;
    s->need_stamp = true;
}

/* The disk work of one round, without the lock. */
static void run_job(struct store *s, const struct job *j, struct outcome *o)
{
    bool flushed;

    memset(o, 0, sizeof(*o));
    o->end = j->from;
    if (j->set_limit) {
        int64_t limit = apply_limit(s, j->max_bytes);

        o->limited = limit >= 0;
        o->max_bytes = limit >= 0 ? (uint64_t)limit : 0;
    }
    if (j->last_error == -ENOSPC)
        retain(s); /* deleting old rows may make room */
    o->result = write_batch(s, j, o);
    if (o->result != 0) {
        if (o->result == -ENOSPC)
            explain_full(s);
        /* One line when the failures start, not one per retry: the
         * stats count them. */
        if (!s->failing)
            log_err("store: commit failed (%s): %s; keeping the rows and "
                    "retrying",
                    store_code_name(o->result), s->why);
        s->failing = true;
        s->failed_in_a_row++;
        return;
    }
    if (s->failing)
        log_info("store: commits work again after %" PRIu64 " failed attempts",
                 s->failed_in_a_row);
    s->failing = false;
    s->failed_in_a_row = 0;
    flushed = j->for_flush && o->end >= j->flush_to;
    if (flushed || now_ns() >= s->retain_at_ns) {
        retain(s);
        o->retained = true;
    }
    measure(s, o);
}

/* Publishes a round's outcome.  Under lock. */
static void finish_job(struct store *s, const struct job *j,
                       const struct outcome *o)
{
    if (o->result == 0) {
        /* An empty round may end behind an empty queue that reserve()
         * moved on to the next lap; positions never go back. */
        uint64_t end = o->end > s->rpos ? o->end : s->rpos;

        s->rpos = end;
        s->stats.pending -= o->rows;
        s->stats.written += o->rows;
        if (o->rows > 0)
            s->stats.commits++;
        if (o->retained)
            s->retained_to = end;
        s->stats.healthy = true;
        s->retry_ms = 0;
    } else {
        s->stats.failures++;
        s->stats.last_error = o->result;
        snprintf(s->stats.last_error_text, sizeof(s->stats.last_error_text),
                 "%s", s->why);
        s->stats.healthy = false;
        s->failed_attempt = j->attempt;
        s->retry_ms = s->retry_ms == 0
                          ? RETRY_FIRST_MS
                          : (s->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
                                                            : s->retry_ms * 2);
        s->retry_at_ns = now_ns() + (int64_t)s->retry_ms * NS_PER_MS;
    }
    if (o->measured) {
        s->stats.db_bytes = o->db_bytes;
        s->stats.free_bytes = o->free_bytes;
    }
    if (o->limited)
        s->stats.max_bytes = o->max_bytes;
    pthread_cond_broadcast(&s->done);
}

static void wait_until(struct store *s, int64_t until)
{
    struct timespec ts;

    if (until == NEVER) {
        pthread_cond_wait(&s->wake, &s->lock);
        return;
    }
    ts.tv_sec = (time_t)(until / 1000000000);
    ts.tv_nsec = (long)(until % 1000000000);
    pthread_cond_timedwait(&s->wake, &s->lock, &ts);
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    struct job j;
    struct outcome o;

    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t until;

        if (!job_due(s, now_ns(), &until)) {
            wait_until(s, until);
            continue;
        }
        take_job(s, &j);
        pthread_mutex_unlock(&s->lock);
        run_job(s, &j, &o);
        pthread_mutex_lock(&s->lock);
        finish_job(s, &j, &o);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- Opening and closing ---- */

static void add_rule(struct store *s, const char *table, bool by_age,
                     uint32_t limit)
{
    assert(s->nretain < RETAIN_RULES);
    if (limit == 0)
        return;
    s->retain[s->nretain].table = table;
    s->retain[s->nretain].by_age = by_age;
    s->retain[s->nretain].limit = limit;
    s->nretain++;
}

/* Age rules delete the oldest rows before ?1 (µs); count rules delete
 * rows below the newest ?1 by rowid, which grows with every insert.  Both
 * stop after ?2 rows. */
static int prepare_rules(struct store *s, const struct store_config *cfg)
{
    add_rule(s, "adc", true, cfg->raw_max_age_s);
    add_rule(s, "adc", false, cfg->raw_max_rows);
    add_rule(s, "heap", true, cfg->raw_max_age_s);
    add_rule(s, "heap", false, cfg->raw_max_rows);
    add_rule(s, "adc_1s", true, cfg->rollup_1s_age_s);
    add_rule(s, "adc_1m", true, cfg->rollup_1m_age_s);
    add_rule(s, "heap_1m", true, cfg->rollup_1m_age_s);
    add_rule(s, "events", false, EVENTS_KEEP);
    add_rule(s, "alerts", false, ALERTS_KEEP);
    for (size_t i = 0; i < s->nretain; i++) {
        struct retain *rt = &s->retain[i];
        const char *t = rt->table;
        char sql[SQL_MAX];
        int rc;

        if (rt->by_age)
            snprintf(sql, sizeof(sql),
                     "DELETE FROM %s WHERE rowid IN (SELECT rowid FROM %s "
                     "WHERE t_us < ?1 ORDER BY t_us LIMIT ?2)",
                     t, t);
        else
            snprintf(sql, sizeof(sql),
                     "DELETE FROM %s WHERE rowid <= min((SELECT max(rowid) "
                     "FROM %s) - ?1, (SELECT min(rowid) FROM %s) + ?2 - 1)",
                     t, t, t);
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &rt->st, NULL);
        if (rc != SQLITE_OK)
            return fail(s, rc, "prepare retention");
    }
    return 0;
}

static int prepare_all(struct store *s, const struct store_config *cfg)
{
    for (int i = 0; i < ST_COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);

        if (rc != SQLITE_OK)
            return fail(s, rc, "prepare");
    }
    return prepare_rules(s, cfg);
}

/* Applies the missing steps, each in its own transaction that also sets
 * user_version, so a crash between steps leaves a consistent version. */
static int migrate(struct store *s, char *err, size_t errlen)
{
    int r;

    for (;;) {
        char sql[PRAGMA_MAX];
        int64_t v;

        /* The version is read inside the write transaction, so that two
         * processes opening one file cannot both apply a step. */
        if ((r = exec(s, "BEGIN IMMEDIATE", "begin migration")) != 0)
            goto err_msg;
        if ((r = query_int(s, "PRAGMA user_version", &v)) != 0)
            goto err_txn;
        if (v > STORE_SCHEMA_VERSION || v < 0) {
            exec(s, "ROLLBACK", "rollback");
            snprintf(err, errlen,
                     "the database has schema version %" PRId64
                     " but this tetherd knows versions up to %d only; "
                     "refusing to use it (upgrade tetherd or move the file "
                     "away)",
                     v, STORE_SCHEMA_VERSION);
            return -EIO;
        }
        if (v == STORE_SCHEMA_VERSION) {
            if ((r = exec(s, "COMMIT", "commit migration")) != 0)
                goto err_txn;
            return 0;
        }
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %" PRId64, v + 1);
        if ((r = exec(s, migrations[v], "migration")) != 0 ||
            (r = exec(s, sql, "set user_version")) != 0 ||
            (r = exec(s, "COMMIT", "commit migration")) != 0)
            goto err_txn;
        log_info("store: database schema migrated to version %" PRId64, v + 1);
    }

err_txn:
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
err_msg:
    snprintf(err, errlen, "%s", s->why);
    return r;
}

static int open_db(struct store *s, const struct store_config *cfg, char *err,
                   size_t errlen)
{
    bool memory = strcmp(cfg->path, ":memory:") == 0;
    char mode[PRAGMA_MAX] = "";
    sqlite3_stmt *st;
    int rc, r;

    rc = sqlite3_open_v2(cfg->path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        if (s->db == NULL) {
            snprintf(err, errlen, "%s: out of memory", cfg->path);
            return -ENOMEM;
        }
        r = fail(s, rc, "open");
        goto err_msg;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_MS);
    /* WAL keeps readers (the sqlite3 CLI, the query server) from blocking
     * the writer, and with synchronous=NORMAL a commit costs no fsync. */
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        r = fail(s, rc, "journal_mode");
        goto err_msg;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(mode, sizeof(mode), "%s",
                 (const char *)sqlite3_column_text(st, 0));
    else
        r = fail(s, rc, "journal_mode");
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        goto err_msg;
    if (!memory && strcmp(mode, "wal") != 0) {
        snprintf(err, errlen,
                 "%s: cannot use write-ahead logging (journal mode %s)",
                 cfg->path, mode);
        return -EIO;
    }
    if ((r = exec(s, "PRAGMA synchronous = NORMAL", "synchronous")) != 0 ||
        (r = exec(s, "PRAGMA cache_size = " CACHE_KIB, "cache_size")) != 0 ||
        (r = query_int(s, "PRAGMA max_page_count", &s->no_page_limit)) != 0 ||
        (r = query_int(s, "PRAGMA page_size", &s->page_size)) != 0)
        goto err_msg;
    if (s->page_size <= 0) {
        snprintf(err, errlen, "%s: page size %" PRId64, cfg->path,
                 s->page_size);
        return -EIO;
    }
    s->max_bytes = cfg->max_bytes;
    if (cfg->max_bytes != 0) {
        int64_t limit = apply_limit(s, cfg->max_bytes);

        if (limit < 0) {
            r = -EIO;
            goto err_msg;
        }
        s->stats.max_bytes = (uint64_t)limit;
    }
    return 0;

err_msg:
    snprintf(err, errlen, "%s: %s", cfg->path, s->why);
    return r;
}

/* Finalizes every statement and closes the connection; NULL-safe. */
static void close_db(struct store *s)
{
    int rc;

    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    for (size_t i = 0; i < s->nretain; i++)
        sqlite3_finalize(s->retain[i].st);
    rc = sqlite3_close(s->db);
    if (rc != SQLITE_OK)
        log_err("store: closing the database failed: %s", sqlite3_errstr(rc));
}

static int init_sync(struct store *s)
{
    pthread_condattr_t ca;
    int r;

    if (pthread_condattr_init(&ca) != 0)
        return -ENOMEM;
    r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (r == 0)
        r = pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (r != 0)
        return -ENOMEM;
    if (pthread_cond_init(&s->done, NULL) != 0)
        goto err_wake;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto err_done;
    return 0;

err_done:
    pthread_cond_destroy(&s->done);
err_wake:
    pthread_cond_destroy(&s->wake);
    return -ENOMEM;
}

static void destroy_sync(struct store *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->done);
    pthread_cond_destroy(&s->wake);
}

/* The writer takes no signals: they belong to the event loop. */
static int start_writer(struct store *s)
{
    sigset_t all, old;
    int r;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&s->writer, NULL, writer_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r == 0 ? 0 : -r;
}

int store_open(struct store **out, const struct store_config *cfg, char *err,
               size_t errlen)
{
    struct outcome size = {0};
    struct store *s;
    int r;

    *out = NULL;
    if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0') {
        snprintf(err, errlen, "no database path");
        return -EINVAL;
    }
    if (cfg->commit_rows == 0 || cfg->queue_rows == 0 ||
        cfg->queue_rows > QUEUE_ROWS_MAX) {
        snprintf(err, errlen,
                 "commit_rows must be at least 1 and queue_rows 1..%u",
                 QUEUE_ROWS_MAX);
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto err_nomem;
    s->commit_ms = cfg->commit_ms;
    s->commit_rows = cfg->commit_rows;
    s->queue_rows = cfg->queue_rows < MSG_ADC_VALUES_MAX ? MSG_ADC_VALUES_MAX
                                                         : cfg->queue_rows;
    s->ring_cap = (uint64_t)s->queue_rows * QUEUE_ROW_BYTES;
    if (s->ring_cap < QUEUE_MIN_BYTES)
        s->ring_cap = QUEUE_MIN_BYTES;
    s->ring_cap += TEXT_RESERVE_BYTES;
    s->ring = malloc(s->ring_cap);
    if (s->ring == NULL)
        goto err_store;
    s->need_stamp = true;
    s->stats.healthy = true;
    if ((r = open_db(s, cfg, err, errlen)) != 0)
        goto err_db;
    if ((r = migrate(s, err, errlen)) != 0)
        goto err_db;
    if ((r = prepare_all(s, cfg)) != 0) {
        snprintf(err, errlen, "%s: %s", cfg->path, s->why);
        goto err_db;
    }
    measure(s, &size);
    s->stats.db_bytes = size.db_bytes;
    s->stats.free_bytes = size.free_bytes;
    if ((r = init_sync(s)) != 0) {
        snprintf(err, errlen, "cannot create the writer's locks");
        goto err_db;
    }
    if ((r = start_writer(s)) != 0) {
        snprintf(err, errlen, "cannot start the writer thread: %s",
                 strerror(-r));
        goto err_sync;
    }
    *out = s;
    return 0;

err_sync:
    destroy_sync(s);
err_db:
    close_db(s);
    free(s->ring);
    free(s);
    return r;
err_store:
    free(s);
err_nomem:
    snprintf(err, errlen, "out of memory for a queue of %u rows",
             cfg->queue_rows);
    return -ENOMEM;
}

void store_close(struct store *s)
{
    int r;

    if (s == NULL)
        return;
    r = store_flush(s);
    pthread_mutex_lock(&s->lock);
    if (r != 0)
        log_err("store: closing with %" PRIu32 " rows unwritten: %s",
                s->stats.pending, s->stats.last_error_text);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer, NULL);
    close_db(s);
    destroy_sync(s);
    free(s->ring);
    free(s);
}

/* ---- Putting rows (loop thread) ---- */

/* Room for a record of size bytes and rows rows at wpos, after a filler
 * when it would cross the end of the ring; NULL when the queue is full.
 * An empty queue starts again at the front of the ring (both positions
 * move on to the next lap).  On a paced line the queue empties at every
 * commit, so only as much of the ring is touched, and resident, as the
 * deepest backlog between commits: a few kilobytes, not the whole bound.
 * Under sustained overload it never empties and the whole ring becomes
 * resident, in steps, as positions march on: still within the bound.
 * Under lock. */
static struct rec *reserve(struct store *s, uint32_t size, uint32_t rows,
                           uint8_t type)
{
    uint64_t idx = s->wpos % s->ring_cap;
    uint64_t skip = idx + size > s->ring_cap ? s->ring_cap - idx : 0;
    bool text = type == REC_EVENT || type == REC_ALERT;
    uint64_t max_rows = s->queue_rows + (text ? TEXT_RESERVE : 0);
    uint64_t max_bytes = s->ring_cap - (text ? 0 : TEXT_RESERVE_BYTES);
    struct rec *r;

    if (s->wpos == s->rpos && idx != 0) {
        s->wpos += s->ring_cap - idx;
        s->rpos = s->wpos;
        idx = 0;
        skip = 0;
    }

    if (s->stats.pending + rows > max_rows ||
        s->wpos - s->rpos + skip + size > max_bytes)
        return NULL;
    if (skip > 0) {
        r = (struct rec *)(s->ring + idx);
        r->size = (uint32_t)skip;
        r->rows = 0;
        r->type = REC_WRAP;
        s->wpos += skip;
    }
    r = (struct rec *)(s->ring + s->wpos % s->ring_cap);
    r->size = size;
    r->rows = (uint16_t)rows;
    r->type = type;
    return r;
}

/* Ends a put that took the lock: publishes the record r (NULL: refused),
 * wakes the writer when this row makes a round due, unlocks, and logs
 * when drops begin or end (once each way). */
static int put_end(struct store *s, struct rec *r, uint32_t rows)
{
    uint32_t before = s->stats.pending;
    bool began = false, ended = false;
    uint64_t dropped = s->stats.dropped;

    if (r == NULL) {
        s->stats.dropped += rows;
        began = !s->dropping;
        s->dropping = true;
    } else {
        s->wpos += r->size;
        s->stats.pending += rows;
        s->stats.queued += rows;
        if (s->need_stamp) {
            s->new_ns = now_ns();
            s->need_stamp = false;
        }
        if (before == 0 ||
            (before < s->commit_rows && s->stats.pending >= s->commit_rows))
            pthread_cond_signal(&s->wake);
        /* Half the queue free before the drops count as over, so that
         * a queue at its bound does not log every other put. */
        ended = s->dropping && s->stats.pending <= s->queue_rows / 2;
        if (ended)
            s->dropping = false;
    }
    pthread_mutex_unlock(&s->lock);
    if (began)
        log_warn("store: queue full (%" PRIu32 " rows), dropping rows", before);
    if (ended)
        log_info("store: queue accepts rows again after %" PRIu64
                 " dropped in all",
                 dropped);
    return r == NULL ? -ENOBUFS : 0;
}

int store_put_adc(struct store *s, int64_t t0_us, uint16_t seq,
                  const struct msg_adc *a)
{
    unsigned nch = msg_popcount16(a->mask);
    size_t n = (size_t)a->scans * nch;
    struct rec_adc *r;

    assert(n <= MSG_ADC_VALUES_MAX);
    if (n == 0)
        return 0;
    pthread_mutex_lock(&s->lock);
    r = (struct rec_adc *)reserve(
        s, rec_size(sizeof(*r) + n * sizeof(r->values[0])), (uint32_t)n,
        REC_ADC);
    if (r != NULL) {
        r->t0_us = t0_us;
        r->period_us = a->period_us;
        r->mask = a->mask;
        r->seq = seq;
        r->scans = a->scans;
        for (unsigned scan = 0, i = 0; scan < a->scans; scan++)
            for (unsigned k = 0; k < nch; k++)
                r->values[i++] = msg_adc_value(a, scan, k);
    }
    return put_end(s, r ? &r->r : NULL, (uint32_t)n);
}

int store_put_heap(struct store *s, int64_t t_us, uint16_t seq,
                   const struct msg_heap *h)
{
    struct rec_heap *r;

    pthread_mutex_lock(&s->lock);
    r = (struct rec_heap *)reserve(s, rec_size(sizeof(*r)), 1, REC_HEAP);
    if (r != NULL) {
        r->t_us = t_us;
        r->h = *h;
        r->seq = seq;
    }
    return put_end(s, r ? &r->r : NULL, 1);
}

int store_put_event(struct store *s, int64_t t_us, const char *kind,
                    const char *detail)
{
    const char *k = kind ? kind : "";
    const char *d = detail ? detail : "";
    size_t kn = cut_len(k, TAG_MAX), dn = cut_len(d, STORE_TEXT_MAX);
    struct rec_text *r;

    pthread_mutex_lock(&s->lock);
    r = (struct rec_text *)reserve(s, rec_size(sizeof(*r) + kn + dn + 2), 1,
                                   REC_EVENT);
    if (r != NULL) {
        r->t_us = t_us;
        r->value = 0;
        r->threshold = 0;
        put_text(put_text(r->text, k, kn), d, dn);
    }
    return put_end(s, r ? &r->r : NULL, 1);
}

int store_put_alert(struct store *s, int64_t t_us, const char *name,
                    const char *state, double value, double threshold,
                    const char *message)
{
    const char *n = name ? name : "";
    const char *st = state ? state : "";
    const char *m = message ? message : "";
    size_t nn = cut_len(n, TAG_MAX), sn = cut_len(st, TAG_MAX);
    size_t mn = cut_len(m, STORE_TEXT_MAX);
    struct rec_text *r;

    pthread_mutex_lock(&s->lock);
    r = (struct rec_text *)reserve(s, rec_size(sizeof(*r) + nn + sn + mn + 3),
                                   1, REC_ALERT);
    if (r != NULL) {
        r->t_us = t_us;
        r->value = value;
        r->threshold = threshold;
        put_text(put_text(put_text(r->text, n, nn), st, sn), m, mn);
    }
    return put_end(s, r ? &r->r : NULL, 1);
}

/* ---- Control (any thread but the writer) ---- */

int store_flush(struct store *s)
{
    uint64_t target, started;
    int r = 0;

    pthread_mutex_lock(&s->lock);
    target = s->wpos;
    started = s->attempts;
    if (s->retained_to < target) {
        if (s->flush_to < target)
            s->flush_to = target;
        if (s->flush_attempt < started + 1)
            s->flush_attempt = started + 1;
        pthread_cond_signal(&s->wake);
        while (s->retained_to < target && s->failed_attempt <= started)
            pthread_cond_wait(&s->done, &s->lock);
        if (s->retained_to < target)
            r = s->stats.last_error;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

void store_set_max_bytes(struct store *s, uint64_t max_bytes)
{
    pthread_mutex_lock(&s->lock);
    s->max_bytes = max_bytes;
    s->max_bytes_set = true;
    s->retry_now = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

void store_get_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}

/* ---- Reading history (any thread, own connection) ---- */

/* Per-channel (ADC) or whole (heap) accumulator of one bucket. */
struct acc {
    int64_t min, max, sum, count;
    int64_t largest_min, failures_max; /* heap */
};

/* One call's walk over the rows.  A group is the rows of one time stamp
 * (raw) or one bucket; a page holds whole groups only. */
struct scan {
    bool heap;
    bool raw_rows; /* the statement reads raw rows, not a rollup */
    uint16_t mask;
    int64_t width; /* bucket width, 0: raw */
    size_t limit;
    struct store_point *adc;
    struct store_heap_point *hp;
    size_t n;
    uint64_t rows;   /* read so far */
    bool open;       /* a group is under way */
    int64_t key;     /* its time stamp or bucket start */
    size_t group_at; /* raw: index of its first point */
    int64_t done;    /* key of the last group completed, or NONE */
    struct acc acc[MSG_ADC_CHANNELS_MAX];
};

/* Rollups give the columns t_us, channel, min, max, sum, count, then for
 * the heap largest_min, failures_max, total, used, min_free (the last
 * three 0).  Raw rows give t_us, channel, value (free for the heap), then
 * for the heap largest, failures, total, used, min_free.
 *
 * Every statement walks the time index in order and sorts nothing: a
 * temporary B-tree over a range's rows would cost more than reading them.
 * Raw ADC rows come in the order of the covering index adc_tcv: by time
 * stamp, then channel, then value; raw heap rows of one time stamp by
 * rowid, which heap_t gives for free.  close_group() puts the rows of one
 * time stamp in channel order, which for ADC rows they already are.
 * Buckets need no order inside a bucket: sums are per channel. */
#define Q_RANGE " WHERE t_us >= ?1 AND t_us < ?2 ORDER BY t_us"
static const char sql_adc_raw[] =
    "SELECT t_us, channel, value FROM adc" Q_RANGE;
static const char sql_adc_raw_buckets[] =
    "SELECT t_us, channel, value FROM adc" Q_RANGE;
static const char sql_adc_1s[] =
    "SELECT t_us, channel, min, max, sum, count FROM adc_1s" Q_RANGE;
static const char sql_adc_1m[] =
    "SELECT t_us, channel, min, max, sum, count FROM adc_1m" Q_RANGE;
static const char sql_heap_raw[] =
    "SELECT t_us, 0, free, largest, failures, total, used, min_free "
    "FROM heap" Q_RANGE ", rowid";
static const char sql_heap_raw_buckets[] =
    "SELECT t_us, 0, free, largest, failures, total, used, min_free "
    "FROM heap" Q_RANGE;
static const char sql_heap_1m[] =
    "SELECT t_us, 0, min_free, max_free, sum_free, count, min_largest, "
    "max_failures FROM heap_1m" Q_RANGE;

/* The smallest multiple of w at or above t. */
static int64_t align_up(int64_t t, int64_t w)
{
    int64_t b = bucket_start(t, w);

    return b == t ? t : b + w;
}

static int qerr(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int qerr(char *err, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;

    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

static int check_query(const char *path, const struct store_query *q, bool heap,
                       size_t limit, char *err, size_t errlen)
{
    uint64_t b = q->bucket_us;

    if (path == NULL || path[0] == '\0')
        return qerr(err, errlen, -EINVAL, "no database path");
    if (strcmp(path, ":memory:") == 0)
        return qerr(err, errlen, -ENOTSUP,
                    "an in-memory database cannot be queried: another "
                    "connection cannot see it");
    if (q->from_us > q->to_us)
        return qerr(err, errlen, -EINVAL, "from_us is after to_us");
    if (q->from_us < -STORE_QUERY_T_MAX || q->to_us > STORE_QUERY_T_MAX)
        return qerr(err, errlen, -EINVAL, "time out of range");
    if (b != 0 && (b < STORE_QUERY_BUCKET_MIN || b > STORE_QUERY_BUCKET_MAX))
        return qerr(err, errlen, -EINVAL,
                    "bucket_us must be 0 (raw) or %llu..%llu",
                    (unsigned long long)STORE_QUERY_BUCKET_MIN,
                    (unsigned long long)STORE_QUERY_BUCKET_MAX);
    if (limit == 0)
        return qerr(err, errlen, -EINVAL, "no room for a point");
    if (heap)
        return 0;
    if (b >= (uint64_t)US_1S && b % US_1S != 0)
        return qerr(err, errlen, -EINVAL,
                    "an ADC bucket of a second or more must be a whole "
                    "number of seconds");
    if (q->channels == 0)
        return qerr(err, errlen, -EINVAL, "no channels asked for");
    if (limit < msg_popcount16(q->channels))
        return qerr(err, errlen, -EINVAL,
                    "a page of %zu points cannot hold %u channels", limit,
                    msg_popcount16(q->channels));
    return 0;
}

/* The statement for q; *raw tells whether it reads raw rows. */
static const char *pick_sql(const struct store_query *q, bool heap, bool *raw)
{
    uint64_t b = q->bucket_us;

    *raw = false;
    if (heap && b != 0 && b % US_1M == 0)
        return sql_heap_1m;
    if (!heap && b != 0 && b % US_1M == 0)
        return sql_adc_1m;
    if (!heap && b != 0 && b % US_1S == 0)
        return sql_adc_1s;
    *raw = true;
    if (heap)
        return b == 0 ? sql_heap_raw : sql_heap_raw_buckets;
    return b == 0 ? sql_adc_raw : sql_adc_raw_buckets;
}

/* The points of the group under way, added at n; false (and nothing
 * added) when they do not fit.  Buckets only: raw points go straight to
 * the page. */
static bool emit_group(struct scan *sc)
{
    size_t k = 0;

    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++)
        k += sc->acc[ch].count > 0;
    if (sc->n + k > sc->limit)
        return false;
    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++) {
        const struct acc *a = &sc->acc[ch];

        if (a->count == 0)
            continue;
        if (sc->heap) {
            struct store_heap_point *p = &sc->hp[sc->n++];

            memset(p, 0, sizeof(*p));
            p->t_us = sc->key;
            p->count = (uint64_t)a->count;
            p->free_avg = (double)a->sum / (double)a->count;
            p->free_min = (uint32_t)a->min;
            p->free_max = (uint32_t)a->max;
            p->largest_min = (uint32_t)a->largest_min;
            p->failures_max = (uint32_t)a->failures_max;
        } else {
            struct store_point *p = &sc->adc[sc->n++];

            p->t_us = sc->key;
            p->channel = (uint8_t)ch;
            p->min = (double)a->min;
            p->max = (double)a->max;
            p->avg = (double)a->sum / (double)a->count;
            p->count = (uint64_t)a->count;
        }
    }
    return true;
}

/* Puts a raw group's ADC points, read in rowid order, in channel order.
 * Stable, so rows of one channel keep their rowid order; and linear for
 * the usual group, one scan already in channel order. */
static void sort_group(struct scan *sc)
{
    for (size_t i = sc->group_at + 1; i < sc->n; i++) {
        struct store_point p = sc->adc[i];
        size_t j = i;

        for (; j > sc->group_at && sc->adc[j - 1].channel > p.channel; j--)
            sc->adc[j] = sc->adc[j - 1];
        sc->adc[j] = p;
    }
}

/* Ends the group under way: emits a bucket, or keeps a raw group's
 * points.  False when the page has no room for it. */
static bool close_group(struct scan *sc)
{
    if (sc->width != 0 && !emit_group(sc))
        return false;
    if (sc->width == 0 && !sc->heap)
        sort_group(sc);
    sc->done = sc->key;
    sc->group_at = sc->n;
    sc->open = false;
    return true;
}

static void add_row(struct scan *sc, sqlite3_stmt *st, unsigned ch)
{
    struct acc *a = &sc->acc[ch];
    /* A raw row is a bucket of one: its value is min, max and sum. */
    int col = sc->raw_rows ? 3 : 6;
    int64_t mn = sqlite3_column_int64(st, 2);
    int64_t mx = sc->raw_rows ? mn : sqlite3_column_int64(st, 3);
    int64_t sum = sc->raw_rows ? mn : sqlite3_column_int64(st, 4);
    int64_t count = sc->raw_rows ? 1 : sqlite3_column_int64(st, 5);
    int64_t lmin = sc->heap ? sqlite3_column_int64(st, col) : 0;
    int64_t fmax = sc->heap ? sqlite3_column_int64(st, col + 1) : 0;
    bool first = a->count == 0;

    if (first || mn < a->min)
        a->min = mn;
    if (first || mx > a->max)
        a->max = mx;
    if (first || lmin < a->largest_min)
        a->largest_min = lmin;
    if (first || fmax > a->failures_max)
        a->failures_max = fmax;
    a->sum += sum;
    a->count += count;
}

static void put_raw(struct scan *sc, sqlite3_stmt *st, int64_t t, unsigned ch)
{
    uint32_t v = (uint32_t)sqlite3_column_int64(st, 2);

    if (sc->heap) {
        struct store_heap_point *p = &sc->hp[sc->n++];

        p->t_us = t;
        p->count = 1;
        p->free_avg = v;
        p->free_min = p->free_max = v;
        p->largest_min = (uint32_t)sqlite3_column_int64(st, 3);
        p->failures_max = (uint32_t)sqlite3_column_int64(st, 4);
        p->total = (uint32_t)sqlite3_column_int64(st, 5);
        p->used = (uint32_t)sqlite3_column_int64(st, 6);
        p->min_free = (uint32_t)sqlite3_column_int64(st, 7);
    } else {
        struct store_point *p = &sc->adc[sc->n++];

        p->t_us = t;
        p->channel = (uint8_t)ch;
        p->min = p->max = p->avg = v;
        p->count = 1;
    }
}

/* Takes one row.  Returns 0 to go on, 1 when the page is full (it ends
 * after the group sc->done), or -EOVERFLOW. */
static int scan_row(struct scan *sc, sqlite3_stmt *st)
{
    int64_t t = sqlite3_column_int64(st, 0);
    int64_t ch = sqlite3_column_int64(st, 1);
    int64_t key = sc->width ? bucket_start(t, sc->width) : t;

    if (sc->open && key != sc->key) {
        if (!close_group(sc))
            return sc->done == STORE_QUERY_NONE ? -EOVERFLOW : 1;
        /* Only here, between groups, may the row budget end a page. */
        if (sc->rows >= STORE_QUERY_SCAN_MAX)
            return 1;
    }
    sc->rows++;
    if (!sc->open) {
        memset(sc->acc, 0, sizeof(sc->acc));
        sc->key = key;
        sc->open = true;
    }
    if (!sc->heap && (ch < 0 || ch >= (int64_t)MSG_ADC_CHANNELS_MAX ||
                      !(sc->mask & (1u << ch))))
        return 0;
    if (sc->width != 0) {
        add_row(sc, st, sc->heap ? 0 : (unsigned)ch);
        return 0;
    }
    if (sc->n == sc->limit) {
        if (sc->group_at == 0)
            return -EOVERFLOW;
        sc->n = sc->group_at; /* drop the part of the group it holds */
        return 1;
    }
    put_raw(sc, st, t, (unsigned)ch);
    return 0;
}

/* Opens the file read-only and checks that it is a database of ours. */
static int open_reader(const char *path, sqlite3 **out, char *err,
                       size_t errlen)
{
    struct stat sb;
    sqlite3_stmt *st = NULL;
    sqlite3 *db = NULL;
    int64_t v = -1;
    int rc;

    *out = NULL;
    if (stat(path, &sb) != 0)
        return qerr(err, errlen, errno == ENOENT ? -ENOENT : -EIO, "%s: %s",
                    path, strerror(errno));
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (db == NULL)
        return qerr(err, errlen, -ENOMEM, "%s: out of memory", path);
    if (rc != SQLITE_OK)
        goto err_db;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_MS);
    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto err_db;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        goto err_db;
    if (v != STORE_SCHEMA_VERSION) {
        sqlite3_close(db);
        return qerr(err, errlen, -EIO,
                    "%s: schema version %" PRId64 ", expected %d", path, v,
                    STORE_SCHEMA_VERSION);
    }
    *out = db;
    return 0;

err_db:
    qerr(err, errlen, 0, "%s: %s", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return map_rc(rc);
}

static int query(const char *path, const struct store_query *q, struct scan *sc,
                 size_t cap, size_t *n, int64_t *next_after_us, char *err,
                 size_t errlen)
{
    int64_t w = (int64_t)q->bucket_us, lo, hi;
    const char *sql;
    sqlite3_stmt *st;
    sqlite3 *db;
    int rc, r;

    assert(q != NULL && n != NULL && next_after_us != NULL);
    *n = 0;
    *next_after_us = STORE_QUERY_NONE;
    if (errlen > 0)
        err[0] = '\0';
    sc->limit = q->limit == 0 || q->limit > STORE_QUERY_MAX ? STORE_QUERY_MAX
                                                            : q->limit;
    if (sc->limit > cap)
        sc->limit = cap;
    if ((r = check_query(path, q, sc->heap, sc->limit, err, errlen)) != 0)
        return r;
    assert(cap == 0 || sc->adc != NULL || sc->hp != NULL);
    sc->mask = q->channels;
    sc->width = w;
    sc->done = STORE_QUERY_NONE;
    lo = w ? align_up(q->from_us, w) : q->from_us;
    hi = w ? align_up(q->to_us, w) : q->to_us;
    /* lo <= after < hi keeps after + 1 and its alignment in range. */
    if (q->after_us != STORE_QUERY_NONE && q->after_us >= lo) {
        if (q->after_us >= hi)
            return 0;
        lo = w ? align_up(q->after_us + 1, w) : q->after_us + 1;
    }
    if (lo >= hi)
        return 0;
    if ((r = open_reader(path, &db, err, errlen)) != 0)
        return r;
    sql = pick_sql(q, sc->heap, &sc->raw_rows);
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto err_db;
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((r = scan_row(sc, st)) != 0)
            break;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        goto err_db;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (r == 0 && sc->open && !close_group(sc))
        r = sc->done == STORE_QUERY_NONE ? -EOVERFLOW : 1;
    if (r < 0) {
        sc->n = 0;
        return qerr(err, errlen, r,
                    "the points at %" PRId64 " do not fit in a page of %zu; "
                    "ask for a larger page",
                    sc->key, sc->limit);
    }
    if (r == 1)
        *next_after_us = sc->done;
    *n = sc->n;
    return 0;

err_db:
    r = qerr(err, errlen, map_rc(rc), "%s: %s", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return r;
}

int store_query_adc(const char *db_path, const struct store_query *q,
                    struct store_point *out, size_t cap, size_t *n,
                    int64_t *next_after_us, char *err, size_t errlen)
{
    static const struct scan zero;
    struct scan sc = zero;

    sc.adc = out;
    return query(db_path, q, &sc, cap, n, next_after_us, err, errlen);
}

int store_query_heap(const char *db_path, const struct store_query *q,
                     struct store_heap_point *out, size_t cap, size_t *n,
                     int64_t *next_after_us, char *err, size_t errlen)
{
    static const struct scan zero;
    struct scan sc = zero;

    sc.heap = true;
    sc.hp = out;
    return query(db_path, q, &sc, cap, n, next_after_us, err, errlen);
}

/* Copies a text column, cut to cap - 1 bytes. */
static void column_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

static double column_real(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL
               ? NAN
               : sqlite3_column_double(st, col);
}

int store_query_alerts(const char *db_path, struct store_alert_row *out,
                       size_t cap, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    sqlite3 *db;
    size_t k = 0;
    int rc, r;

    assert(n != NULL && (cap == 0 || out != NULL));
    *n = 0;
    if (errlen > 0)
        err[0] = '\0';
    if (db_path == NULL || db_path[0] == '\0')
        return qerr(err, errlen, -EINVAL, "no database path");
    if (strcmp(db_path, ":memory:") == 0)
        return qerr(err, errlen, -ENOTSUP,
                    "an in-memory database cannot be read from outside");
    if (cap == 0)
        return 0;
    if ((r = open_reader(db_path, &db, err, errlen)) != 0)
        return r;
    rc = sqlite3_prepare_v2(db,
                            "SELECT t_us, name, state, value, threshold, "
                            "message FROM alerts ORDER BY t_us DESC, "
                            "rowid DESC LIMIT ?1",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto err_db;
    sqlite3_bind_int64(st, 1,
                       (sqlite3_int64)(cap > INT64_MAX ? INT64_MAX : cap));
    while (k < cap && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_alert_row *a = &out[k++];

        a->t_us = sqlite3_column_int64(st, 0);
        column_text(st, 1, a->name, sizeof(a->name));
        column_text(st, 2, a->state, sizeof(a->state));
        a->value = column_real(st, 3);
        a->threshold = column_real(st, 4);
        column_text(st, 5, a->message, sizeof(a->message));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        goto err_db;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    *n = k;
    return 0;

err_db:
    r = qerr(err, errlen, map_rc(rc), "%s: %s", db_path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return r;
}
