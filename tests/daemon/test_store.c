/* The store against real SQLite databases, in memory and in files under a
 * fresh temporary directory.  A second connection of the test's own reads
 * what the writer committed, and holds the write lock to block it.
 * Faults are injected with a page limit (SQLITE_FULL) and that lock
 * (SQLITE_BUSY).  Rollups are compared with a naive model computed here
 * from the same synthetic series.  Every file test ends with SQLite's
 * integrity check. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon_test_util.h"
#include "log.h"
#include "msg.h"
#include "store.h"

#define S         1000000LL /* microseconds per second */
#define MIN       (60 * S)
#define SQL_MAX   512
#define TEXT_MAX  4096
#define MODEL_MAX 512
#define WAIT_MS   5000
#define PAGE      4096 /* SQLite's page size for a new database */

static char dir[PATH_MAX];
static char db_path[PATH_MAX + 16];
static char log_path[PATH_MAX + 16];

/* ---- Helpers ---- */

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s", dtest_tmpdir());
    snprintf(db_path, sizeof(db_path), "%s/tether.db", dir);
    snprintf(log_path, sizeof(log_path), "%s/log.txt", dir);
}

static void teardown(void)
{
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[sizeof(db_path) + 16];

    log_set_fd(STDERR_FILENO);
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", db_path, suffix[i]);
        unlink(p);
    }
    unlink(log_path);
    rmdir(dir);
}

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * S + ts.tv_nsec / 1000;
}

static struct store_config config_for(const char *path)
{
    struct store_config c = {
        .path = path,
        .commit_ms = 10000, /* only flushes and commit_rows commit */
        .commit_rows = 1000,
        .queue_rows = 65536,
    };

    return c;
}

static struct store *open_ok(const struct store_config *c)
{
    char err[STORE_ERR_MAX] = "";
    struct store *s = NULL;
    int r = store_open(&s, c, err, sizeof(err));

    ck_assert_msg(r == 0, "store_open(%s): %d %s", c->path, r, err);
    ck_assert_ptr_nonnull(s);
    return s;
}

static struct store_stats stats_of(struct store *s)
{
    struct store_stats st;

    store_get_stats(s, &st);
    return st;
}

/* The test's own connection to the file the store writes. */
static sqlite3 *peek(void)
{
    sqlite3 *db;

    ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static long long q_int(sqlite3 *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static long long q_int(sqlite3 *db, const char *fmt, ...)
{
    char sql[SQL_MAX];
    sqlite3_stmt *st;
    long long v = -1;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                  "%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* First column of every row, one per line. */
static void q_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st;

    out[0] = '\0';
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                  "%s: %s", sql, sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        size_t len = strlen(out);

        snprintf(out + len, cap - len, "%s\n", t ? t : "");
    }
    sqlite3_finalize(st);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
                  "%s: %s", sql, sqlite3_errmsg(db));
}

static void assert_integrity(void)
{
    char text[TEXT_MAX];
    sqlite3 *db = peek();

    q_text(db, "PRAGMA integrity_check", text, sizeof(text));
    ck_assert_str_eq(text, "ok\n");
    sqlite3_close(db);
}

static void log_to_file(void)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);

    ck_assert_int_ge(fd, 0);
    log_set_fd(fd);
}

static int log_count(const char *needle)
{
    static char text[65536];
    int fd = open(log_path, O_RDONLY);
    ssize_t n;
    int count = 0;

    ck_assert_int_ge(fd, 0);
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    ck_assert_int_ge(n, 0);
    text[n] = '\0';
    for (const char *p = strstr(text, needle); p != NULL;
         p = strstr(p + 1, needle))
        count++;
    return count;
}

/* Polls the stats until ok() holds or WAIT_MS pass. */
static bool wait_for(struct store *s, bool (*ok)(const struct store_stats *))
{
    for (int ms = 0; ms < WAIT_MS; ms += 5) {
        struct store_stats st = stats_of(s);

        if (ok(&st))
            return true;
        usleep(5000);
    }
    return false;
}

/* ---- ADC batches ---- */

struct batch {
    uint8_t payload[MSG_ADC_LEN(MSG_ADC_VALUES_MAX)];
    struct msg_adc m;
};

static void make_batch(struct batch *b, uint16_t mask, unsigned scans,
                       uint32_t period_us, const uint16_t *values)
{
    unsigned n = scans * msg_popcount16(mask);
    struct msg_adc hdr = {0, period_us, mask, (uint8_t)scans, NULL};

    ck_assert_uint_le(n, MSG_ADC_VALUES_MAX);
    ck_assert_int_eq(msg_encode_adc_hdr(b->payload, sizeof(b->payload), &hdr),
                     MSG_ADC_HDR_LEN);
    for (unsigned i = 0; i < n; i++)
        msg_adc_put_value(b->payload, i, values[i]);
    ck_assert_int_eq(msg_decode_adc(b->payload, MSG_ADC_LEN(n), &b->m), 0);
}

/* A batch of 4 channels x 25 scans: 100 rows. */
static void put_100_rows(struct store *s, int64_t t0_us, uint16_t seq)
{
    uint16_t v[100];
    struct batch b;

    for (unsigned i = 0; i < 100; i++)
        v[i] = (uint16_t)(seq * 7 + i);
    make_batch(&b, 0x0f, 25, 1000, v);
    ck_assert_int_eq(store_put_adc(s, t0_us, seq, &b.m), 0);
}

static struct msg_heap heap_report(uint32_t i)
{
    struct msg_heap h = {
        .t_us = 5000 + i,
        .total = 65536,
        .free = 30000 + i * 3,
        .used = 65536 - (30000 + i * 3),
        .largest = 20000 + i,
        .min_free = 29000,
        .allocs = 100 + i,
        .frees = 90 + i,
        .failures = i / 10,
        .blocks = (uint16_t)(10 + i % 5),
        .scenario = MSG_SCEN_LEAK,
    };

    return h;
}

/* ---- A known set of rows of every kind ---- */

#define SET_BATCHES 5
#define SET_SCANS   7
#define SET_MASK    0xa5 /* channels 0, 2, 5, 7 */
#define SET_HEAPS   3
#define SET_ROWS    (SET_BATCHES * SET_SCANS * 4 + SET_HEAPS + 2 + 1)

static uint16_t set_value(unsigned b, unsigned scan, unsigned k)
{
    return (uint16_t)((b * 1000 + scan * 10 + k * 3 + 1) & 0x3fff);
}

static int put_set(struct store *s, int64_t t)
{
    for (unsigned b = 0; b < SET_BATCHES; b++) {
        uint16_t v[SET_SCANS * 4];
        struct batch bt;

        for (unsigned scan = 0; scan < SET_SCANS; scan++)
            for (unsigned k = 0; k < 4; k++)
                v[scan * 4 + k] = set_value(b, scan, k);
        make_batch(&bt, SET_MASK, SET_SCANS, 250, v);
        ck_assert_int_eq(
            store_put_adc(s, t + b * 10000, (uint16_t)(100 + b), &bt.m), 0);
    }
    for (uint32_t i = 0; i < SET_HEAPS; i++) {
        struct msg_heap h = heap_report(i);

        ck_assert_int_eq(store_put_heap(s, t + i * S, (uint16_t)(7 + i), &h),
                         0);
    }
    ck_assert_int_eq(store_put_event(s, t, "link", "connected: hello"), 0);
    ck_assert_int_eq(store_put_event(s, t + 1, "log", NULL), 0);
    ck_assert_int_eq(store_put_alert(s, t + 2, "heap_low", "raised", 4000.5,
                                     6553, "free 4000 below 6553"),
                     0);
    return SET_ROWS;
}

static void check_set(sqlite3 *db, int64_t t)
{
    static const unsigned ch_of[4] = {0, 2, 5, 7};
    char text[TEXT_MAX];
    sqlite3_stmt *st;
    unsigned row = 0;

    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"),
                     SET_BATCHES * SET_SCANS * 4);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT t_us, channel, value, seq "
                                        "FROM adc ORDER BY rowid",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (unsigned b = 0; b < SET_BATCHES; b++)
        for (unsigned scan = 0; scan < SET_SCANS; scan++)
            for (unsigned k = 0; k < 4; k++) {
                ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
                ck_assert_int_eq(sqlite3_column_int64(st, 0),
                                 t + b * 10000 + scan * 250);
                ck_assert_int_eq(sqlite3_column_int(st, 1), ch_of[k]);
                ck_assert_int_eq(sqlite3_column_int(st, 2),
                                 set_value(b, scan, k));
                ck_assert_int_eq(sqlite3_column_int(st, 3), 100 + b);
                row++;
            }
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    ck_assert_uint_eq(row, SET_BATCHES * SET_SCANS * 4);

    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM heap"), SET_HEAPS);
    for (uint32_t i = 0; i < SET_HEAPS; i++) {
        struct msg_heap h = heap_report(i);

        ck_assert_int_eq(
            q_int(db,
                  "SELECT count(*) FROM heap WHERE t_us = %lld AND seq = %u "
                  "AND mcu_t_us = %u AND total = %u AND free = %u AND used = "
                  "%u AND largest = %u AND min_free = %u AND allocs = %u AND "
                  "frees = %u AND failures = %u AND blocks = %u AND "
                  "scenario = %u",
                  (long long)(t + i * S), 7 + i, h.t_us, h.total, h.free,
                  h.used, h.largest, h.min_free, h.allocs, h.frees, h.failures,
                  h.blocks, h.scenario),
            1);
    }
    q_text(db,
           "SELECT (t_us - (SELECT min(t_us) FROM events)) || ' ' || kind || "
           "' [' || detail || ']' FROM events ORDER BY rowid",
           text, sizeof(text));
    ck_assert_str_eq(text, "0 link [connected: hello]\n1 log []\n");
    ck_assert_int_eq(q_int(db, "SELECT min(t_us) FROM events"), t);
    q_text(db,
           "SELECT name || ' ' || state || ' ' || value || ' ' || threshold "
           "|| ' ' || message FROM alerts",
           text, sizeof(text));
    ck_assert_str_eq(text, "heap_low raised 4000.5 6553.0 free 4000 below "
                           "6553\n");
    ck_assert_int_eq(q_int(db, "SELECT t_us FROM alerts"), t + 2);
}

/* ---- Schema and migration ---- */

START_TEST(test_store_creates_every_table_in_an_empty_file)
{
    static const char *const names[] = {
        "adc",    "adc_1s",  "adc_1m", "heap",     "heap_1m",  "alerts",
        "events", "adc_tcv", "heap_t", "alerts_t", "events_t",
    };
    struct store_config c = config_for(db_path);
    char text[TEXT_MAX];
    sqlite3 *db;

    store_close(open_ok(&c));
    db = peek();
    ck_assert_int_eq(q_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(q_int(db,
                            "SELECT count(*) FROM sqlite_master WHERE "
                            "name = '%s'",
                            names[i]) == 1,
                      "%s missing", names[i]);
    q_text(db, "PRAGMA journal_mode", text, sizeof(text));
    ck_assert_str_eq(text, "wal\n");
    sqlite3_close(db);
    assert_integrity();
}
END_TEST

START_TEST(test_store_reopens_an_existing_database_without_migrating)
{
    struct store_config c = config_for(db_path);
    char before[TEXT_MAX], after[TEXT_MAX];
    struct store *s;
    sqlite3 *db;

    log_to_file();
    s = open_ok(&c);
    ck_assert_int_eq(store_put_event(s, 1, "start", "first run"), 0);
    store_close(s);
    db = peek();
    q_text(db, "SELECT sql FROM sqlite_master ORDER BY name", before,
           sizeof(before));
    sqlite3_close(db);

    s = open_ok(&c);
    ck_assert_int_eq(store_put_event(s, 2, "start", "second run"), 0);
    store_close(s);
    db = peek();
    q_text(db, "SELECT sql FROM sqlite_master ORDER BY name", after,
           sizeof(after));
    ck_assert_str_eq(before, after);
    ck_assert_int_eq(q_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM events"), 2);
    sqlite3_close(db);
    ck_assert_int_eq(log_count("migrated to version"), STORE_SCHEMA_VERSION);
    assert_integrity();
}
END_TEST

/* A version 1 file: made by this store, then taken back to version 1's
 * index by hand, as tetherd 0.1 left it. */
START_TEST(test_store_migrates_a_version_1_database_keeping_its_rows)
{
    struct store_config c = config_for(db_path);
    int64_t t = wall_us() - 60 * S;
    struct store *s;
    sqlite3 *db;

    s = open_ok(&c);
    put_set(s, t);
    ck_assert_int_eq(store_flush(s), 0);
    store_close(s);
    db = peek();
    exec_ok(db, "DROP INDEX adc_tcv; CREATE INDEX adc_t ON adc (t_us); "
                "PRAGMA user_version = 1;");
    sqlite3_close(db);

    log_to_file();
    s = open_ok(&c);
    store_close(s);
    ck_assert_int_eq(log_count("migrated to version 2"), 1);
    db = peek();
    ck_assert_int_eq(q_int(db, "PRAGMA user_version"), 2);
    ck_assert_int_eq(
        q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'adc_t'"),
        0);
    ck_assert_int_eq(
        q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'adc_tcv'"),
        1);
    check_set(db, t);
    sqlite3_close(db);
    assert_integrity();
}
END_TEST

START_TEST(test_store_refuses_a_database_newer_than_it_knows)
{
    struct store_config c = config_for(db_path);
    char err[STORE_ERR_MAX] = "";
    struct store *s = NULL;
    sqlite3 *db = NULL;

    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE future (x); PRAGMA user_version = 3;");
    sqlite3_close(db);

    ck_assert_int_eq(store_open(&s, &c, err, sizeof(err)), -EIO);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "schema version 3") != NULL &&
                      strstr(err, "refusing") != NULL,
                  "unclear error: %s", err);
    db = peek();
    ck_assert_int_eq(q_int(db, "PRAGMA user_version"), 3);
    ck_assert_int_eq(
        q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'adc'"), 0);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_store_refuses_a_file_that_is_not_a_database)
{
    struct store_config c = config_for(db_path);
    char err[STORE_ERR_MAX] = "";
    char junk[8192];
    struct store *s = NULL;
    int fd;

    memset(junk, 'x', sizeof(junk));
    fd = open(db_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    ck_assert_int_eq(store_open(&s, &c, err, sizeof(err)), -EIO);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "not a database") != NULL, "error: %s", err);
}
END_TEST

START_TEST(test_store_refuses_a_bad_configuration)
{
    struct store_config c = config_for(db_path);
    char err[STORE_ERR_MAX] = "";
    struct store *s = NULL;

    c.commit_rows = 0;
    ck_assert_int_eq(store_open(&s, &c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_str_ne(err, "");
    c = config_for(NULL);
    ck_assert_int_eq(store_open(&s, &c, err, sizeof(err)), -EINVAL);
    c = config_for(db_path);
    c.queue_rows = 0;
    ck_assert_int_eq(store_open(&s, &c, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(access(db_path, F_OK), -1); /* nothing created */
}
END_TEST

/* ---- Rows ---- */

START_TEST(test_store_keeps_every_row_put_with_its_values)
{
    struct store_config c = config_for(db_path);
    int64_t t = wall_us();
    struct store_stats st;
    struct store *s = open_ok(&c);
    int rows = put_set(s, t);
    sqlite3 *db;

    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert_uint_eq(st.queued, (uint64_t)rows);
    ck_assert_uint_eq(st.written, (uint64_t)rows);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.dropped, 0);
    ck_assert_uint_ge(st.commits, 1);
    ck_assert(st.healthy);
    ck_assert_int_eq(st.last_error, 0);
    db = peek(); /* committed rows are visible while the store is open */
    check_set(db, t);
    sqlite3_close(db);
    store_close(s);
    db = peek();
    check_set(db, t);
    sqlite3_close(db);
    assert_integrity();
}
END_TEST

START_TEST(test_store_keeps_every_row_put_in_memory)
{
    struct store_config c = config_for(":memory:");
    struct store_stats st;
    struct store *s = open_ok(&c);
    int rows = put_set(s, wall_us());

    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert_uint_eq(st.queued, (uint64_t)rows);
    ck_assert_uint_eq(st.written, (uint64_t)rows);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert(st.healthy);
    store_close(s);
}
END_TEST

START_TEST(test_store_cuts_long_texts_on_a_character_boundary)
{
    struct store_config c = config_for(db_path);
    char longer[400], utf8[401], name[100];
    struct store *s = open_ok(&c);
    sqlite3 *db;

    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    for (size_t i = 0; i + 1 < sizeof(utf8); i += 2)
        memcpy(&utf8[i], "\xc3\xa9", 2); /* é, two bytes */
    utf8[sizeof(utf8) - 1] = '\0';
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_int_eq(store_put_event(s, 1, name, longer), 0);
    ck_assert_int_eq(store_put_event(s, 2, "log", utf8), 0);
    ck_assert_int_eq(store_put_alert(s, 3, name, "raised", 1, 2, utf8), 0);
    ck_assert_int_eq(store_flush(s), 0);
    store_close(s);

    db = peek();
    ck_assert_int_eq(q_int(db, "SELECT length(detail) FROM events "
                               "WHERE t_us = 1"),
                     STORE_TEXT_MAX - 1);
    ck_assert_int_eq(q_int(db, "SELECT length(kind) FROM events "
                               "WHERE t_us = 1"),
                     63);
    /* 191 bytes would split an é: the cut backs off to 190. */
    ck_assert_int_eq(q_int(db, "SELECT length(CAST(detail AS BLOB)) FROM "
                               "events WHERE t_us = 2"),
                     190);
    ck_assert_int_eq(q_int(db, "SELECT length(detail) FROM events "
                               "WHERE t_us = 2"),
                     95);
    ck_assert_int_eq(q_int(db, "SELECT length(CAST(message AS BLOB)) FROM "
                               "alerts"),
                     190);
    ck_assert_int_eq(q_int(db, "SELECT length(name) FROM alerts"), 63);
    sqlite3_close(db);
}
END_TEST

/* ---- Batching ---- */

START_TEST(test_store_commits_in_batches_of_at_most_commit_rows)
{
    struct store_config c = config_for(db_path);
    struct store_stats st;
    struct store *s;
    sqlite3 *db;

    c.commit_rows = 100;
    s = open_ok(&c);
    for (uint32_t i = 0; i < 1000; i++) {
        struct msg_heap h = heap_report(i);

        ck_assert_int_eq(store_put_heap(s, 1000 + i, (uint16_t)i, &h), 0);
    }
    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert_uint_eq(st.written, 1000);
    /* Fewer commits than rows, none larger than commit_rows. */
    ck_assert_uint_eq(st.commits, 10);

    /* ADC batches of 30 rows go whole: three to a commit of 90. */
    for (uint16_t b = 0; b < 10; b++) {
        uint16_t v[30] = {0};
        struct batch bt;

        make_batch(&bt, 0x7, 10, 100, v);
        ck_assert_int_eq(store_put_adc(s, 5000 + b * 1000, b, &bt.m), 0);
    }
    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert_uint_eq(st.written, 1300);
    ck_assert_uint_eq(st.commits, 14);
    store_close(s);

    db = peek();
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM heap"), 1000);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"), 300);
    sqlite3_close(db);
    assert_integrity();
}
END_TEST

static bool one_written(const struct store_stats *st)
{
    return st->written == 1;
}

START_TEST(test_store_commits_within_commit_ms_without_a_flush)
{
    struct store_config c = config_for(":memory:");
    struct store *s;

    c.commit_ms = 20;
    s = open_ok(&c);
    ck_assert_int_eq(store_put_event(s, 1, "start", "x"), 0);
    ck_assert_msg(wait_for(s, one_written), "no commit without a flush");
    ck_assert_uint_eq(stats_of(s).commits, 1);
    store_close(s);
}
END_TEST

START_TEST(test_store_flush_of_an_empty_queue_returns_at_once)
{
    struct store_config c = config_for(":memory:");
    struct store *s = open_ok(&c);

    ck_assert_int_eq(store_flush(s), 0);
    ck_assert_uint_eq(stats_of(s).commits, 0);
    store_close(s);
    store_close(NULL);
}
END_TEST

/* ---- The queue against a model ---- */

#define MODEL_ROWS 200000
#define MODEL_OPS  3000

struct adc_row {
    int64_t t_us;
    int ch, value, seq;
};

static struct adc_row want_adc[MODEL_ROWS];
static char want_text[MODEL_OPS][STORE_TEXT_MAX];

static uint32_t lcg(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

/* Random puts of every kind through a small queue, so that the ring wraps
 * many times over records of every size; a refused put is flushed and
 * retried.  Every row must come out once, in order, with its values. */
START_TEST(test_store_queue_wraps_and_keeps_every_row_in_order)
{
    struct store_config c = config_for(db_path);
    uint32_t rng = 99;
    size_t nadc = 0, ntext = 0, nheap = 0;
    uint64_t refused = 0;
    int64_t t = wall_us();
    struct store_stats st;
    struct store *s;
    sqlite3 *db;
    sqlite3_stmt *q;

    c.queue_rows = 300; /* the ring is its minimum, 64 KiB */
    c.commit_rows = 100;
    c.commit_ms = 2;
    s = open_ok(&c);
    for (int op = 0; op < MODEL_OPS; op++, t += 1000) {
        uint32_t kind = lcg(&rng) % 4;
        int r;

        if (kind <= 1) {
            uint16_t mask = (uint16_t)(lcg(&rng) & 0xffff);
            unsigned nch, scans;
            uint16_t v[MSG_ADC_VALUES_MAX];
            struct batch b;

            mask = mask ? mask : 1;
            nch = msg_popcount16(mask);
            scans = 1 + lcg(&rng) % (MSG_ADC_VALUES_MAX / nch);
            for (unsigned i = 0; i < scans * nch; i++)
                v[i] = (uint16_t)(lcg(&rng) & 0x3fff);
            make_batch(&b, mask, scans, 10, v);
            while ((r = store_put_adc(s, t, (uint16_t)op, &b.m)) != 0) {
                ck_assert_int_eq(r, -ENOBUFS);
                refused += scans * nch;
                ck_assert_int_eq(store_flush(s), 0);
            }
            for (unsigned scan = 0, i = 0; scan < scans; scan++)
                for (int ch = 0; ch < 16; ch++)
                    if (mask & (1u << ch)) {
                        ck_assert_uint_lt(nadc, MODEL_ROWS);
                        want_adc[nadc++] =
                            (struct adc_row){t + scan * 10, ch, v[i++], op};
                    }
        } else if (kind == 2) {
            struct msg_heap h = heap_report((uint32_t)op);

            while ((r = store_put_heap(s, t, (uint16_t)op, &h)) != 0) {
                refused++;
                ck_assert_int_eq(store_flush(s), 0);
            }
            nheap++;
        } else {
            char text[300];
            size_t len = lcg(&rng) % sizeof(text);

            for (size_t i = 0; i < len; i++)
                text[i] = (char)('a' + lcg(&rng) % 26);
            text[len] = '\0';
            while ((r = store_put_event(s, t, "log", text)) != 0) {
                refused++;
                ck_assert_int_eq(store_flush(s), 0);
            }
            /* Stored cut to STORE_TEXT_MAX - 1 bytes. */
            len = len < STORE_TEXT_MAX ? len : STORE_TEXT_MAX - 1;
            memcpy(want_text[ntext], text, len);
            want_text[ntext++][len] = '\0';
        }
    }
    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert_uint_eq(st.dropped, refused);
    ck_assert_uint_eq(st.written, nadc + nheap + ntext);
    ck_assert_uint_eq(st.queued, st.written);
    store_close(s);

    db = peek();
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"), nadc);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM heap"), nheap);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM events"), ntext);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT t_us, channel, value, seq "
                                        "FROM adc ORDER BY rowid",
                                        -1, &q, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < nadc; i++) {
        ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
        ck_assert_int_eq(sqlite3_column_int64(q, 0), want_adc[i].t_us);
        ck_assert_int_eq(sqlite3_column_int(q, 1), want_adc[i].ch);
        ck_assert_int_eq(sqlite3_column_int(q, 2), want_adc[i].value);
        ck_assert_int_eq(sqlite3_column_int(q, 3), want_adc[i].seq & 0xffff);
    }
    sqlite3_finalize(q);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT detail FROM events "
                                        "ORDER BY rowid",
                                        -1, &q, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < ntext; i++) {
        ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
        ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), want_text[i]);
    }
    sqlite3_finalize(q);
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM adc_1s"), nadc);
    sqlite3_close(db);
    assert_integrity();
}
END_TEST

/* ---- Faults ---- */

static bool failed_once(const struct store_stats *st)
{
    return st->failures >= 1;
}

START_TEST(test_store_drops_and_counts_rows_while_the_database_is_locked)
{
    struct store_config c = config_for(db_path);
    struct store_stats st;
    struct store *s;
    sqlite3 *lock;
    int accepted = 0, refused = 0;

    c.queue_rows = 200;
    c.commit_rows = 50;
    c.commit_ms = 1;
    log_to_file();
    s = open_ok(&c);
    lock = peek();
    exec_ok(lock, "BEGIN EXCLUSIVE");

    for (uint32_t i = 0; i < 300; i++) {
        struct msg_heap h = heap_report(i);
        int r = store_put_heap(s, 1000 + i, (uint16_t)i, &h);

        ck_assert(r == 0 || r == -ENOBUFS);
        if (r == 0)
            accepted++;
        else
            refused++;
    }
    /* The writer cannot commit, so rows leave the queue only through a
     * commit: exactly queue_rows were taken. */
    ck_assert_int_eq(accepted, 200);
    ck_assert_int_eq(refused, 100);
    st = stats_of(s);
    ck_assert_uint_eq(st.queued, 200);
    ck_assert_uint_eq(st.dropped, 100);
    ck_assert_uint_eq(st.pending, 200);

    ck_assert_msg(wait_for(s, failed_once), "the writer never gave up");
    st = stats_of(s);
    ck_assert_int_eq(st.last_error, -EBUSY);
    ck_assert(!st.healthy);
    ck_assert_uint_eq(st.written, 0);
    ck_assert_str_ne(st.last_error_text, "");

    exec_ok(lock, "ROLLBACK");
    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert(st.healthy);
    ck_assert_uint_eq(st.written, 200);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_int_eq(q_int(lock, "SELECT count(*) FROM heap"), 200);
    ck_assert_int_eq(q_int(lock, "SELECT min(seq) FROM heap"), 0);
    ck_assert_int_eq(q_int(lock, "SELECT max(seq) FROM heap"), 199);

    /* The queue takes rows again. */
    {
        struct msg_heap h = heap_report(0);

        ck_assert_int_eq(store_put_heap(s, 5000, 1, &h), 0);
    }
    ck_assert_int_eq(store_flush(s), 0);
    sqlite3_close(lock);
    store_close(s);
    /* One line per transition, however many retries. */
    ck_assert_int_eq(log_count("commit failed"), 1);
    ck_assert_int_eq(log_count("commits work again"), 1);
    ck_assert_int_eq(log_count("queue full"), 1);
    ck_assert_int_eq(log_count("accepts rows again"), 1);
    assert_integrity();
}
END_TEST

/* Fills a store limited to a few pages with whole 100-row batches, ten
 * to a flush, until a commit fails; returns the rows put. */
static unsigned fill_until_full(struct store *s, int64_t t)
{
    unsigned batches = 0;

    for (int round = 0; round < 500; round++) {
        int r;

        for (int i = 0; i < 10; i++, batches++)
            put_100_rows(s, t + batches * 25000, (uint16_t)batches);
        r = store_flush(s);
        if (r != 0) {
            ck_assert_int_eq(r, -ENOSPC);
            return batches * 100;
        }
    }
    ck_abort_msg("the page limit never filled");
    return 0;
}

START_TEST(test_store_rolls_back_a_batch_refused_for_space_whole_and_retries)
{
    struct store_config c = config_for(db_path);
    int64_t t = wall_us();
    struct store_stats st;
    struct store *s;
    unsigned rows;
    sqlite3 *db;

    c.max_bytes = 40 * PAGE;
    log_to_file();
    s = open_ok(&c);
    rows = fill_until_full(s, t);
    st = stats_of(s);
    ck_assert(!st.healthy);
    ck_assert_int_eq(st.last_error, -ENOSPC);
    ck_assert_msg(strstr(st.last_error_text, "full") != NULL, "%s",
                  st.last_error_text);
    ck_assert_uint_eq(st.pending, 1000);
    ck_assert_uint_eq(st.written + 1000, rows);

    /* Nothing partial: whole commits of ten whole batches, rollups
     * included. */
    db = peek();
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"), st.written);
    ck_assert_int_eq(q_int(db, "SELECT count(*) %% 1000 FROM adc"), 0);
    ck_assert_int_eq(q_int(db, "SELECT count(DISTINCT seq) * 100 FROM adc"),
                     st.written);
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM adc_1m"), st.written);
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM adc_1s"), st.written);

    /* Each flush retries once, and fails the same way. */
    ck_assert_int_eq(store_flush(s), -ENOSPC);
    ck_assert_int_eq(store_flush(s), -ENOSPC);
    ck_assert_uint_ge(stats_of(s).failures, 3);

    store_set_max_bytes(s, 0);
    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert(st.healthy);
    ck_assert_uint_eq(st.written, rows);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"), rows);
    ck_assert_int_eq(q_int(db, "SELECT count(DISTINCT seq) * 100 FROM adc"),
                     rows);
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM adc_1s"), rows);
    sqlite3_close(db);
    store_close(s);
    ck_assert_int_eq(log_count("commit failed"), 1);
    ck_assert_int_eq(log_count("commits work again"), 1);
    assert_integrity();
}
END_TEST

START_TEST(test_store_reports_enospc_in_memory_and_recovers)
{
    struct store_config c = config_for(":memory:");
    struct store_stats st;
    struct store *s;
    unsigned rows;

    c.max_bytes = 40 * PAGE;
    s = open_ok(&c);
    rows = fill_until_full(s, wall_us());
    st = stats_of(s);
    ck_assert(!st.healthy);
    ck_assert_int_eq(st.last_error, -ENOSPC);
    ck_assert_uint_eq(st.written % 1000, 0);
    store_set_max_bytes(s, 100000 * PAGE);
    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert(st.healthy);
    ck_assert_uint_eq(st.written, rows);
    store_close(s);
}
END_TEST

/* ---- Disk full ---- */

/* Polls the stats until ok() holds or ms pass. */
static bool wait_for_ms(struct store *s, bool (*ok)(const struct store_stats *),
                        int ms)
{
    for (int waited = 0; waited < ms; waited += 10) {
        struct store_stats st = stats_of(s);

        if (ok(&st))
            return true;
        usleep(10000);
    }
    return false;
}

static bool healthy(const struct store_stats *st)
{
    return st->healthy;
}

START_TEST(test_store_caps_the_file_at_whole_pages_of_max_bytes)
{
    struct store_config c = config_for(db_path);
    struct store_stats st;
    struct store *s;
    sqlite3 *db;

    c.max_bytes = 50 * PAGE + 1000; /* whole pages: 50 */
    log_to_file();
    s = open_ok(&c);
    st = stats_of(s);
    ck_assert_uint_eq(st.max_bytes, 50 * PAGE);
    ck_assert_uint_gt(st.db_bytes, 0); /* the schema */
    (void)fill_until_full(s, wall_us());
    st = stats_of(s);
    ck_assert_uint_le(st.db_bytes, 50 * PAGE);
    ck_assert_msg(strstr(st.last_error_text, "size limit 204800 bytes") != NULL,
                  "%s", st.last_error_text);
    db = peek();
    ck_assert_int_eq(q_int(db, "PRAGMA page_size"), PAGE);
    ck_assert_int_le(q_int(db, "PRAGMA page_count"), 50);
    ck_assert_int_eq(q_int(db, "PRAGMA page_count") * PAGE, st.db_bytes);

    /* A limit under the file's size holds the file at its size. */
    store_set_max_bytes(s, PAGE);
    ck_assert_int_eq(store_flush(s), -ENOSPC);
    st = stats_of(s);
    ck_assert_uint_eq(st.max_bytes, st.db_bytes);

    /* No limit: the batch goes in, and the file grows past the old one. */
    store_set_max_bytes(s, 0);
    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert(st.healthy);
    ck_assert_uint_eq(st.max_bytes, 0);
    ck_assert_uint_gt(st.db_bytes, 50 * PAGE);
    ck_assert_int_eq(q_int(db, "PRAGMA page_count") * PAGE, st.db_bytes);
    sqlite3_close(db);
    store_close(s);
    assert_integrity();
}
END_TEST

/* Deleting needs no new page, so retention runs in a database at its
 * limit, and the refused batch goes in at a later retry without anyone
 * asking. */
START_TEST(test_store_retention_makes_room_when_full_and_it_stores_again_alone)
{
    struct store_config c = config_for(db_path);
    struct store_stats st;
    struct store *s;
    unsigned rows = 0;
    uint16_t seq = 0;
    sqlite3 *db;
    int r = 0;

    c.max_bytes = 64 * PAGE;
    c.raw_max_age_s = 1;
    log_to_file();
    s = open_ok(&c);
    /* Rows stamped as they are put: none is a second old before the
     * limit is reached, all of them soon after. */
    while (r == 0 && seq < 5000) {
        for (int i = 0; i < 10; i++, seq++, rows += 100)
            put_100_rows(s, wall_us(), seq);
        r = store_flush(s);
    }
    ck_assert_int_eq(r, -ENOSPC);
    st = stats_of(s);
    ck_assert(!st.healthy);
    ck_assert_uint_eq(st.pending, 1000);

    ck_assert_msg(wait_for_ms(s, healthy, 15000),
                  "the store never recovered by itself: %s",
                  stats_of(s).last_error_text);
    st = stats_of(s);
    ck_assert_uint_eq(st.written, rows);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.dropped, 0);
    ck_assert_uint_le(st.db_bytes, 64 * PAGE);
    db = peek();
    ck_assert_int_le(q_int(db, "PRAGMA page_count"), 64);
    /* Every row went through a commit, the refused batch too: the
     * rollups, which outlive the raw rows retention deleted, count them
     * all. */
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM adc_1s"), rows);
    ck_assert_int_lt(q_int(db, "SELECT count(*) FROM adc"), rows);
    sqlite3_close(db);
    store_close(s);
    ck_assert_int_eq(log_count("commit failed (ENOSPC)"), 1);
    ck_assert_int_eq(log_count("commits work again"), 1);
    ck_assert_int_eq(log_count("retention failed"), 0);
    assert_integrity();
}
END_TEST

START_TEST(test_store_retries_a_full_database_slowly_and_keeps_its_queue_bound)
{
    struct store_config c = config_for(db_path);
    struct store_stats st0, st;
    struct store *s;
    unsigned refused = 0;
    sqlite3 *db;

    c.max_bytes = 40 * PAGE;
    c.queue_rows = 3000;
    c.commit_ms = 1;
    log_to_file();
    s = open_ok(&c);
    (void)fill_until_full(s, wall_us());
    st0 = stats_of(s);

    /* Two seconds of 100-row batches every 10 ms against a full file. */
    for (unsigned i = 0; i < 200; i++) {
        uint16_t v[100] = {0};
        struct batch b;
        int r;

        make_batch(&b, 0x0f, 25, 1000, v);
        r = store_put_adc(s, wall_us(), (uint16_t)(20000 + i), &b.m);
        ck_assert(r == 0 || r == -ENOBUFS);
        refused += r != 0;
        usleep(10000);
    }
    st = stats_of(s);
    ck_assert(!st.healthy);
    ck_assert_uint_eq(st.pending, 3000);
    ck_assert_uint_eq(st.dropped, refused * 100);
    ck_assert_uint_eq(st.queued, st.written + st.pending);
    /* Retried by itself, but paced (100 ms doubling): a handful of
     * attempts in two seconds, not thousands. */
    ck_assert_uint_ge(st.failures - st0.failures, 2);
    ck_assert_uint_le(st.failures - st0.failures, 10);

    /* The writer is alive and takes the whole queue once there is room. */
    store_set_max_bytes(s, 0);
    ck_assert_int_eq(store_flush(s), 0);
    st = stats_of(s);
    ck_assert(st.healthy);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.written, st.queued);
    db = peek();
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"), st.written);
    sqlite3_close(db);
    store_close(s);
    ck_assert_int_eq(log_count("commit failed"), 1);
    ck_assert_int_eq(log_count("queue full"), 1);
    assert_integrity();
}
END_TEST

/* Samples fill the queue of a full database within seconds; alerts and
 * events raised after that still have room of their own. */
START_TEST(test_store_keeps_room_for_alerts_in_a_queue_full_of_samples)
{
    struct store_config c = config_for(db_path);
    struct msg_heap h = heap_report(1);
    struct store_stats st;
    struct store *s;
    unsigned batches = 0;
    sqlite3 *db;

    c.max_bytes = 40 * PAGE;
    c.queue_rows = 2000;
    log_to_file();
    s = open_ok(&c);
    (void)fill_until_full(s, wall_us());
    for (;; batches++) {
        uint16_t v[100] = {0};
        struct batch b;
        int r;

        make_batch(&b, 0x0f, 25, 1000, v);
        r = store_put_adc(s, wall_us(), (uint16_t)(30000 + batches), &b.m);
        if (r != 0) {
            ck_assert_int_eq(r, -ENOBUFS);
            break;
        }
    }
    ck_assert_uint_eq(batches, 10); /* up to queue_rows */
    ck_assert_int_eq(store_put_heap(s, wall_us(), 1, &h), -ENOBUFS);
    for (int i = 0; i < 128; i++)
        ck_assert_int_eq(store_put_alert(s, wall_us(), "heap_low", "raised", i,
                                         4096, "free heap under the limit"),
                         0);
    ck_assert_int_eq(store_put_alert(s, wall_us(), "heap_low", "cleared", 0,
                                     4096, "one too many"),
                     -ENOBUFS);
    ck_assert_int_eq(store_put_event(s, wall_us(), "log", "also refused"),
                     -ENOBUFS);
    st = stats_of(s);
    ck_assert_uint_eq(st.pending, 2000 + 128);
    ck_assert_uint_eq(st.dropped, 100 + 1 + 1 + 1);

    store_set_max_bytes(s, 0);
    ck_assert_int_eq(store_flush(s), 0);
    db = peek();
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM alerts"), 128);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM alerts WHERE state = "
                               "'cleared'"),
                     0);
    sqlite3_close(db);
    store_close(s);
    assert_integrity();
}
END_TEST

/* ---- Retention ---- */

START_TEST(test_store_deletes_rows_older_than_their_age)
{
    struct store_config c = config_for(db_path);
    int64_t now = wall_us();
    int64_t old = now - 3 * 3600 * S, mid = now - 1800 * S;
    struct msg_heap h = heap_report(1);
    struct store *s;
    sqlite3 *db;

    c.raw_max_age_s = 3600;
    c.rollup_1s_age_s = 7200;
    c.rollup_1m_age_s = 0;
    s = open_ok(&c);
    put_100_rows(s, old, 1);
    put_100_rows(s, mid, 2);
    ck_assert_int_eq(store_put_heap(s, old, 1, &h), 0);
    ck_assert_int_eq(store_put_heap(s, mid, 2, &h), 0);
    ck_assert_int_eq(store_put_event(s, old, "start", "long ago"), 0);
    ck_assert_int_eq(store_flush(s), 0);

    db = peek();
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"), 100);
    ck_assert_int_eq(q_int(db, "SELECT min(seq) FROM adc"), 2);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM heap"), 1);
    ck_assert_int_eq(q_int(db, "SELECT seq FROM heap"), 2);
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM adc_1s"), 100);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc_1s WHERE t_us < %lld",
                           (long long)(now - 7200 * S)),
                     0);
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM adc_1m"), 200);
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM heap_1m"), 2);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM events"), 1);
    sqlite3_close(db);
    store_close(s);
    assert_integrity();
}
END_TEST

START_TEST(test_store_keeps_at_most_raw_max_rows_of_the_newest)
{
    struct store_config c = config_for(db_path);
    int64_t t = wall_us() - 600 * S;
    struct store *s;
    sqlite3 *db;

    c.raw_max_rows = 500;
    s = open_ok(&c);
    for (uint16_t b = 0; b < 20; b++)
        put_100_rows(s, t + b * 100000, b);
    for (uint32_t i = 0; i < 800; i++) {
        struct msg_heap h = heap_report(i);

        ck_assert_int_eq(store_put_heap(s, t + i * 1000, (uint16_t)i, &h), 0);
    }
    ck_assert_int_eq(store_flush(s), 0);

    db = peek();
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"), 500);
    ck_assert_int_eq(q_int(db, "SELECT min(seq) FROM adc"), 15);
    ck_assert_int_eq(q_int(db, "SELECT max(seq) FROM adc"), 19);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM heap"), 500);
    ck_assert_int_eq(q_int(db, "SELECT min(seq) FROM heap"), 300);
    /* Rollups keep what raw retention removed. */
    ck_assert_int_eq(q_int(db, "SELECT sum(count) FROM adc_1s"), 2000);
    sqlite3_close(db);
    store_close(s);
    assert_integrity();
}
END_TEST

/* ---- Rollups against a naive model ---- */

struct mbucket {
    int64_t start;
    int ch;
    int64_t min, max, sum, count, min2, max2;
};

struct model {
    struct mbucket b[MODEL_MAX];
    size_t n;
};

/* Adds v (and, for heap buckets, the pair largest/failures as u, w). */
static void model_add(struct model *m, int64_t width, int64_t t, int ch,
                      int64_t v, int64_t u, int64_t w)
{
    int64_t start = t - t % width;
    struct mbucket *b = NULL;

    for (size_t i = 0; i < m->n && b == NULL; i++)
        if (m->b[i].start == start && m->b[i].ch == ch)
            b = &m->b[i];
    if (b == NULL) {
        ck_assert_uint_lt(m->n, MODEL_MAX);
        b = &m->b[m->n++];
        *b = (struct mbucket){start, ch, v, v, 0, 0, u, w};
    }
    b->min = v < b->min ? v : b->min;
    b->max = v > b->max ? v : b->max;
    b->min2 = u < b->min2 ? u : b->min2;
    b->max2 = w > b->max2 ? w : b->max2;
    b->sum += v;
    b->count++;
}

static int by_start_then_channel(const void *pa, const void *pb)
{
    const struct mbucket *a = pa, *b = pb;

    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->ch - b->ch;
}

static void compare_adc(sqlite3 *db, const char *table, struct model *m)
{
    char sql[SQL_MAX];
    sqlite3_stmt *st;

    qsort(m->b, m->n, sizeof(m->b[0]), by_start_then_channel);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM %s", table), m->n);
    snprintf(sql, sizeof(sql),
             "SELECT t_us, channel, min, max, sum, count, avg FROM %s "
             "ORDER BY t_us, channel",
             table);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    for (size_t i = 0; i < m->n; i++) {
        const struct mbucket *b = &m->b[i];

        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_int_eq(sqlite3_column_int64(st, 0), b->start);
        ck_assert_int_eq(sqlite3_column_int(st, 1), b->ch);
        ck_assert_int_eq(sqlite3_column_int64(st, 2), b->min);
        ck_assert_int_eq(sqlite3_column_int64(st, 3), b->max);
        ck_assert_int_eq(sqlite3_column_int64(st, 4), b->sum);
        ck_assert_int_eq(sqlite3_column_int64(st, 5), b->count);
        ck_assert_double_eq_tol(sqlite3_column_double(st, 6),
                                (double)b->sum / (double)b->count, 1e-9);
    }
    sqlite3_finalize(st);
}

static void compare_heap(sqlite3 *db, struct model *m)
{
    sqlite3_stmt *st;

    qsort(m->b, m->n, sizeof(m->b[0]), by_start_then_channel);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM heap_1m"), m->n);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT t_us, min_free, max_free, "
                                        "sum_free, avg_free, min_largest, "
                                        "max_failures, count FROM heap_1m "
                                        "ORDER BY t_us",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < m->n; i++) {
        const struct mbucket *b = &m->b[i];

        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_int_eq(sqlite3_column_int64(st, 0), b->start);
        ck_assert_int_eq(sqlite3_column_int64(st, 1), b->min);
        ck_assert_int_eq(sqlite3_column_int64(st, 2), b->max);
        ck_assert_int_eq(sqlite3_column_int64(st, 3), b->sum);
        ck_assert_double_eq_tol(sqlite3_column_double(st, 4),
                                (double)b->sum / (double)b->count, 1e-9);
        ck_assert_int_eq(sqlite3_column_int64(st, 5), b->min2);
        ck_assert_int_eq(sqlite3_column_int64(st, 6), b->max2);
        ck_assert_int_eq(sqlite3_column_int64(st, 7), b->count);
    }
    sqlite3_finalize(st);
}

static struct model m1s, m1m, mheap;

/* Puts one ADC batch of channels 1 and 4, 3 scans 100 ms apart, into the
 * store and the models. */
static void put_series_batch(struct store *s, int64_t t0, uint16_t seq,
                             uint32_t *rng)
{
    uint16_t v[6];
    struct batch b;

    for (unsigned scan = 0; scan < 3; scan++)
        for (unsigned k = 0; k < 2; k++) {
            int64_t t = t0 + scan * 100000;
            int ch = k == 0 ? 1 : 4;

            v[scan * 2 + k] = (uint16_t)(lcg(rng) & 0x3fff);
            model_add(&m1s, S, t, ch, v[scan * 2 + k], 0, 0);
            model_add(&m1m, MIN, t, ch, v[scan * 2 + k], 0, 0);
        }
    make_batch(&b, (1u << 1) | (1u << 4), 3, 100000, v);
    ck_assert_int_eq(store_put_adc(s, t0, seq, &b.m), 0);
}

static void put_series_heap(struct store *s, int64_t t, uint16_t seq,
                            uint32_t *rng)
{
    struct msg_heap h = heap_report(seq);

    h.free = 1000 + lcg(rng) % 60000;
    h.largest = lcg(rng) % 50000;
    h.failures = lcg(rng) % 100;
    model_add(&mheap, MIN, t, 0, h.free, h.largest, h.failures);
    ck_assert_int_eq(store_put_heap(s, t, seq, &h), 0);
}

START_TEST(test_store_rollups_match_a_naive_model_across_bucket_boundaries)
{
    struct store_config c = config_for(db_path);
    /* Two seconds before a minute boundary; the scans fall exactly on
     * every second boundary and on the minute boundary. */
    int64_t t0 = (wall_us() / MIN) * MIN - 2 * S;
    uint32_t rng = 12345;
    struct store *s;
    sqlite3 *db;

    memset(&m1s, 0, sizeof(m1s));
    memset(&m1m, 0, sizeof(m1m));
    memset(&mheap, 0, sizeof(mheap));
    s = open_ok(&c);
    for (uint16_t i = 0; i < 100; i++) {
        int64_t t = t0 + (int64_t)i * 300000;

        put_series_batch(s, t, i, &rng);
        if (i % 2 == 0)
            put_series_heap(s, t + 7000, i, &rng);
        if (i % 7 == 6)
            ck_assert_int_eq(store_flush(s), 0); /* open buckets written */
        if (i == 50) {
            /* A restart continues the buckets it left open. */
            store_close(s);
            s = open_ok(&c);
        }
    }
    /* Late rows for buckets closed long ago are merged into them. */
    put_series_batch(s, t0 + 500000, 1000, &rng);
    put_series_heap(s, t0 + 100000, 1000, &rng);
    ck_assert_int_eq(store_flush(s), 0);
    store_close(s);

    ck_assert_uint_eq(m1s.n, 60); /* 30 seconds x 2 channels */
    ck_assert_uint_eq(m1m.n, 4);  /* 2 minutes x 2 channels */
    ck_assert_uint_eq(mheap.n, 2);
    db = peek();
    compare_adc(db, "adc_1s", &m1s);
    compare_adc(db, "adc_1m", &m1m);
    compare_heap(db, &mheap);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM adc"), 101 * 6);
    sqlite3_close(db);
    assert_integrity();
}
END_TEST

/* ---- Reading history ---- */

#define READ_T0      (1700000000LL * S)
#define READ_BATCHES 40
#define READ_POINTS  4096

/* Batches of 25 scans 1 ms apart every 20 ms, so that each batch's last
 * five scans share their time stamps with the next batch's first five;
 * every other batch leaves channel 2 out.  Values are all different. */
static void put_overlapping_batches(struct store *s)
{
    for (unsigned k = 0; k < READ_BATCHES; k++) {
        uint16_t mask = k % 2 ? 0x0b : 0x0f, v[100];
        unsigned n = 25 * msg_popcount16(mask);
        struct batch b;

        for (unsigned i = 0; i < n; i++)
            v[i] = (uint16_t)(k * 100 + i);
        make_batch(&b, mask, 25, 1000, v);
        ck_assert_int_eq(
            store_put_adc(s, READ_T0 + (int64_t)k * 20000, (uint16_t)k, &b.m),
            0);
    }
    ck_assert_int_eq(store_flush(s), 0);
}

/* Reads every page of q into out; returns the number of points. */
static size_t read_all_pages(struct store_query q, struct store_point *out,
                             size_t cap, unsigned *pages)
{
    char err[STORE_ERR_MAX] = "";
    size_t total = 0, n;
    int64_t next;

    *pages = 0;
    do {
        ck_assert_msg(store_query_adc(db_path, &q, out + total, cap - total, &n,
                                      &next, err, sizeof(err)) == 0,
                      "%s", err);
        (*pages)++;
        ck_assert_uint_le(*pages, cap);
        total += n;
        q.after_us = next;
    } while (next != STORE_QUERY_NONE);
    return total;
}

START_TEST(
    test_store_reads_rows_of_batches_sharing_a_time_stamp_in_channel_order)
{
    static struct store_point got[READ_POINTS];
    struct store_config c = config_for(db_path);
    struct store *s = open_ok(&c);
    struct store_query q = {
        .from_us = READ_T0,
        .to_us = READ_T0 + S,
        .limit = 64,
        .after_us = STORE_QUERY_NONE,
        .channels = 0x0f,
    };
    size_t n, i = 0;
    unsigned pages;
    sqlite3_stmt *st;
    sqlite3 *db;

    put_overlapping_batches(s);
    store_close(s);
    n = read_all_pages(q, got, READ_POINTS, &pages);
    ck_assert_uint_gt(pages, 1);
    /* The order asked of the points is the one SQLite gives with a sort;
     * the store reads without one. */
    db = peek();
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT t_us, channel, value FROM adc "
                                        "ORDER BY t_us, channel, rowid",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        ck_assert_uint_lt(i, n);
        ck_assert_int_eq(got[i].t_us, sqlite3_column_int64(st, 0));
        ck_assert_uint_eq(got[i].channel, sqlite3_column_int64(st, 1));
        ck_assert_msg(got[i].min == (double)sqlite3_column_int64(st, 2),
                      "point %zu: value %g", i, got[i].min);
        ck_assert_uint_eq(got[i].count, 1);
        i++;
    }
    sqlite3_finalize(st);
    ck_assert_uint_eq(i, n);
    /* The overlap is there: some time stamp has two rows of a channel. */
    ck_assert_int_gt(q_int(db, "SELECT count(*) FROM (SELECT 1 FROM adc "
                               "GROUP BY t_us, channel HAVING count(*) > 1)"),
                     0);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_store_pages_of_buckets_from_raw_rows_match_a_grouped_sum)
{
    static const uint64_t widths[] = {1000, 3000, 100000, 300000};
    static struct store_point got[READ_POINTS], one[READ_POINTS];
    struct store_config c = config_for(db_path);
    struct store *s = open_ok(&c);
    sqlite3 *db;

    put_overlapping_batches(s);
    store_close(s);
    db = peek();
    for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
        struct store_query q = {
            .from_us = READ_T0 + 2500,
            .to_us = READ_T0 + S,
            .bucket_us = widths[w],
            .limit = 0,
            .after_us = STORE_QUERY_NONE,
            .channels = 0x0d,
        };
        char sql[SQL_MAX];
        sqlite3_stmt *st;
        size_t n1, n, i = 0;
        unsigned pages;

        /* One page, then pages of 5 points: never a bucket's channels
         * split over two pages, so the same points. */
        n1 = read_all_pages(q, one, READ_POINTS, &pages);
        ck_assert_uint_eq(pages, 1);
        q.limit = 5;
        n = read_all_pages(q, got, READ_POINTS, &pages);
        ck_assert_uint_gt(pages, 1);
        ck_assert_uint_eq(n, n1);
        snprintf(sql, sizeof(sql),
                 "SELECT t_us - t_us %% %llu AS b, channel, min(value), "
                 "max(value), sum(value), count(*) FROM adc "
                 "WHERE channel IN (0, 2, 3) AND t_us >= %lld - %lld %% "
                 "%llu + %llu AND t_us < %lld GROUP BY b, channel "
                 "ORDER BY b, channel",
                 (unsigned long long)widths[w], (long long)q.from_us - 1,
                 (long long)q.from_us - 1, (unsigned long long)widths[w],
                 (unsigned long long)widths[w], (long long)q.to_us);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int64_t count = sqlite3_column_int64(st, 5);

            ck_assert_uint_lt(i, n);
            ck_assert_int_eq(got[i].t_us, sqlite3_column_int64(st, 0));
            ck_assert_int_eq(one[i].t_us, got[i].t_us);
            ck_assert_uint_eq(got[i].channel, sqlite3_column_int64(st, 1));
            ck_assert(got[i].min == (double)sqlite3_column_int64(st, 2));
            ck_assert(got[i].max == (double)sqlite3_column_int64(st, 3));
            ck_assert(got[i].avg ==
                      (double)sqlite3_column_int64(st, 4) / (double)count);
            ck_assert_uint_eq(got[i].count, (uint64_t)count);
            i++;
        }
        sqlite3_finalize(st);
        ck_assert_uint_eq(i, n);
    }
    sqlite3_close(db);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *schema = tcase_create("schema");
    TCase *rows = tcase_create("rows");
    TCase *batching = tcase_create("batching");
    TCase *queue = tcase_create("queue");
    TCase *faults = tcase_create("faults");
    TCase *full = tcase_create("disk full");
    TCase *retention = tcase_create("retention");
    TCase *rollups = tcase_create("rollups");
    TCase *reading = tcase_create("reading");

    tcase_add_checked_fixture(schema, setup, teardown);
    tcase_add_test(schema, test_store_creates_every_table_in_an_empty_file);
    tcase_add_test(schema,
                   test_store_reopens_an_existing_database_without_migrating);
    tcase_add_test(schema,
                   test_store_migrates_a_version_1_database_keeping_its_rows);
    tcase_add_test(schema, test_store_refuses_a_database_newer_than_it_knows);
    tcase_add_test(schema, test_store_refuses_a_file_that_is_not_a_database);
    tcase_add_test(schema, test_store_refuses_a_bad_configuration);
    tcase_set_timeout(schema, 10);
    suite_add_tcase(s, schema);

    tcase_add_checked_fixture(rows, setup, teardown);
    tcase_add_test(rows, test_store_keeps_every_row_put_with_its_values);
    tcase_add_test(rows, test_store_keeps_every_row_put_in_memory);
    tcase_add_test(rows, test_store_cuts_long_texts_on_a_character_boundary);
    tcase_set_timeout(rows, 10);
    suite_add_tcase(s, rows);

    tcase_add_checked_fixture(batching, setup, teardown);
    tcase_add_test(batching,
                   test_store_commits_in_batches_of_at_most_commit_rows);
    tcase_add_test(batching,
                   test_store_commits_within_commit_ms_without_a_flush);
    tcase_add_test(batching,
                   test_store_flush_of_an_empty_queue_returns_at_once);
    tcase_set_timeout(batching, 10);
    suite_add_tcase(s, batching);

    tcase_add_checked_fixture(queue, setup, teardown);
    tcase_add_test(queue, test_store_queue_wraps_and_keeps_every_row_in_order);
    tcase_set_timeout(queue, 20);
    suite_add_tcase(s, queue);

    tcase_add_checked_fixture(faults, setup, teardown);
    tcase_add_test(
        faults, test_store_drops_and_counts_rows_while_the_database_is_locked);
    tcase_add_test(
        faults,
        test_store_rolls_back_a_batch_refused_for_space_whole_and_retries);
    tcase_add_test(faults, test_store_reports_enospc_in_memory_and_recovers);
    tcase_set_timeout(faults, 20);
    suite_add_tcase(s, faults);

    tcase_add_checked_fixture(full, setup, teardown);
    tcase_add_test(full, test_store_caps_the_file_at_whole_pages_of_max_bytes);
    tcase_add_test(
        full,
        test_store_retention_makes_room_when_full_and_it_stores_again_alone);
    tcase_add_test(
        full,
        test_store_retries_a_full_database_slowly_and_keeps_its_queue_bound);
    tcase_add_test(full,
                   test_store_keeps_room_for_alerts_in_a_queue_full_of_samples);
    tcase_set_timeout(full, 40);
    suite_add_tcase(s, full);

    tcase_add_checked_fixture(retention, setup, teardown);
    tcase_add_test(retention, test_store_deletes_rows_older_than_their_age);
    tcase_add_test(retention,
                   test_store_keeps_at_most_raw_max_rows_of_the_newest);
    tcase_set_timeout(retention, 10);
    suite_add_tcase(s, retention);

    tcase_add_checked_fixture(rollups, setup, teardown);
    tcase_add_test(
        rollups,
        test_store_rollups_match_a_naive_model_across_bucket_boundaries);
    tcase_set_timeout(rollups, 10);
    suite_add_tcase(s, rollups);

    tcase_add_checked_fixture(reading, setup, teardown);
    tcase_add_test(
        reading,
        test_store_reads_rows_of_batches_sharing_a_time_stamp_in_channel_order);
    tcase_add_test(
        reading, test_store_pages_of_buckets_from_raw_rows_match_a_grouped_sum);
    tcase_set_timeout(reading, 10);
    suite_add_tcase(s, reading);
    return s;
}

int main(void)
{
    return dtest_run(store_suite());
}
