/* The store's writer against a bare SQLite insert loop, in one run.
 *
 * Both write the same rows (ADC samples: t_us, channel, value, seq) to a
 * fresh WAL database with synchronous=NORMAL, committing every
 * BATCH_ROWS rows.  The bare loop is the best one thread can do with a
 * prepared statement; the store adds its queue, its thread hand-off and
 * its rollups.  Prints rows/s for both and the ratio (target >= 0.8).
 * Usage: store_bench DIR [ROWS] */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "store.h"

#define BATCH_ROWS 1000u
#define CHANNELS   6u
#define SCANS      19u /* a full 6-channel batch */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bare(const char *path, unsigned long rows)
{
    sqlite3 *db;
    sqlite3_stmt *ins;
    double t0, t;

    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return 0;
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "CREATE TABLE adc (t_us INTEGER NOT NULL, channel INTEGER "
                 "NOT NULL, value INTEGER NOT NULL, seq INTEGER NOT NULL);"
                 "CREATE INDEX adc_tcv ON adc (t_us, channel, value);",
                 NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO adc VALUES (?, ?, ?, ?)", -1, &ins,
                       NULL);
    t0 = now_s();
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (unsigned long i = 0; i < rows; i++) {
        sqlite3_bind_int64(ins, 1, 1700000000000000LL + (long long)i * 100);
        sqlite3_bind_int(ins, 2, (int)(i % CHANNELS));
        sqlite3_bind_int(ins, 3, (int)(i & 0x3fff));
        sqlite3_bind_int(ins, 4, (int)((i / (CHANNELS * SCANS)) & 0xffff));
        sqlite3_step(ins);
        sqlite3_reset(ins);
        if ((i + 1) % BATCH_ROWS == 0) {
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        }
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    t = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return (double)rows / t;
}

static double through_store(const char *path, unsigned long rows)
{
    uint8_t payload[MSG_ADC_LEN(CHANNELS * SCANS)];
    struct store_config cfg = {
        .path = path,
        .commit_ms = 100,
        .commit_rows = BATCH_ROWS,
        .queue_rows = 1u << 22,
        .raw_max_age_s = 0,
        .raw_max_rows = 0,
        .rollup_1s_age_s = 86400,
        .rollup_1m_age_s = 86400,
    };
    struct msg_adc hdr = {0, 100, (1u << CHANNELS) - 1, SCANS, NULL};
    struct store_stats st;
    char err[STORE_ERR_MAX];
    struct store *s;
    unsigned long batches = rows / (CHANNELS * SCANS);
    double t0, t;

    unlink(path);
    if (store_open(&s, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 0;
    }
    msg_encode_adc_hdr(payload, sizeof(payload), &hdr);
    for (unsigned i = 0; i < CHANNELS * SCANS; i++)
        msg_adc_put_value(payload, i, (uint16_t)(i * 37));
    msg_decode_adc(payload, sizeof(payload), &hdr);
    t0 = now_s();
    for (unsigned long b = 0; b < batches; b++) {
        int64_t t_us = 1700000000000000LL + (int64_t)b * SCANS * 100;

        while (store_put_adc(s, t_us, (uint16_t)b, &hdr) == -ENOBUFS)
            usleep(100); /* the bench waits; the daemon would drop */
    }
    store_flush(s);
    t = now_s() - t0;
    store_get_stats(s, &st);
    store_close(s);
    return (double)st.written / t;
}

int main(int argc, char **argv)
{
    char a[PATH_MAX], b[PATH_MAX];
    unsigned long rows = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000ul;
    double r_bare, r_store;

    if (argc < 2) {
        fprintf(stderr, "usage: store_bench DIR [ROWS]\n");
        return 2;
    }
    snprintf(a, sizeof(a), "%s/bare.db", argv[1]);
    snprintf(b, sizeof(b), "%s/store.db", argv[1]);
    r_bare = bare(a, rows);
    r_store = through_store(b, rows);
    printf("store_writer_rows_per_s %.0f\n", r_store);
    printf("bare_insert_rows_per_s %.0f\n", r_bare);
    printf("store_vs_bare %.3f\n", r_bare > 0 ? r_store / r_bare : 0);
    return 0;
}
