/* tetherd with its database full, end to end: the real daemon against
 * tether-sim over a pseudo-terminal, the disk filled by a small
 * [store] max_size_mb (SQLite's max_page_count), which fails commits with
 * SQLITE_FULL exactly as a full file system does, without needing the
 * privileges to mount a small one.
 *
 * While the database is full tetherd must go on serving live data
 * (latest, watch) and raising alerts, report the store's error in status
 * with one log line and counters (not a line per row), retry at a slow
 * pace, and leave a database that passes PRAGMA integrity_check; once a
 * reload raises the limit it must store again by itself.  Every process
 * started here dies with the test (simproc.h), and every wait is bounded. */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "simproc.h"

#define WAIT_MS      20000
#define DIR_MAX      64 /* short enough for a Unix socket path inside it */
#define FILE_MAX     (DIR_MAX + 24)
#define TEXT_MAX     4096
#define LIMIT_MB     1      /* fills within seconds at the rate below */
#define RAISED       64     /* MiB: room for the rest of the test */
#define QUEUE_ROWS   65536u /* [store] queue_rows */
#define TEXT_RESERVE 128u   /* events and alerts beyond it (SCHEMA.md) */
/* Paced retries (100 ms doubling to 5 s) fail a handful of times over the
 * test's full period; a writer retrying in a loop would fail thousands. */
#define FAILURES_MAX 20

struct run {
    char dir[DIR_MAX];
    char tty[FILE_MAX];
    char db[FILE_MAX];
    char conf[FILE_MAX];
    char sock[FILE_MAX];
    char log[FILE_MAX];
    pid_t sim;
    pid_t daemon;
};

static struct run run;

static void setup(void)
{
    memset(&run, 0, sizeof(run));
    itest_make_dir(run.dir, sizeof(run.dir), "tfull-");
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.conf, sizeof(run.conf), "%s/tetherd.conf", run.dir);
    snprintf(run.sock, sizeof(run.sock), "%s/q.sock", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
}

static void teardown(void)
{
    itest_kill(&run.daemon);
    itest_kill(&run.sim);
    itest_remove_tree(run.dir);
}

/* The configuration with a size limit of mb MiB.  The heap alerts are
 * set so that heap_low comes about 12 s into the simulator's leak, well
 * after the database has filled. */
static void write_conf(unsigned mb)
{
    char text[TEXT_MAX];

    snprintf(text, sizeof(text),
             "[store]\nmax_size_mb = %u\nqueue_rows = %u\n"
             "[alert]\nheap_low = 25%%\nheap_hysteresis = 5%%\n"
             "hold_off_s = 1\nhold_off_reports = 3\n",
             mb, QUEUE_ROWS);
    itest_write_file(run.conf, text, 0644);
}

static int log_count(const char *needle)
{
    static char text[ITEST_LOG_MAX];
    int n = 0;

    itest_read_file(run.log, text, sizeof(text));
    for (const char *p = strstr(text, needle); p != NULL;
         p = strstr(p + 1, needle))
        n++;
    return n;
}

/* status; caller owns the result (cJSON_Delete()). */
static cJSON *status(struct itest_client *c)
{
    return itest_call(c, "status", NULL);
}

static const char *store_str(const cJSON *m, const char *key)
{
    const cJSON *v = itest_member(itest_result(m), "store", key);

    ck_assert_msg(cJSON_IsString(v), "store.%s is not a string", key);
    return v->valuestring;
}

static long long store_int(const cJSON *m, const char *key)
{
    const cJSON *v = itest_member(itest_result(m), "store", key);

    ck_assert_msg(cJSON_IsNumber(v), "store.%s is not a number", key);
    return (long long)v->valuedouble;
}

static bool store_healthy(const cJSON *m)
{
    return cJSON_IsTrue(itest_member(itest_result(m), "store", "healthy"));
}

static bool alert_active(const cJSON *m, const char *name)
{
    const cJSON *a, *act = itest_member(itest_result(m), "alerts", "active");

    cJSON_ArrayForEach(a, act)
    {
        if (cJSON_IsString(a) && strcmp(a->valuestring, name) == 0)
            return true;
    }
    return false;
}

/* Polls status until the store's error is want ("" for none); returns
 * the last status (caller owns it). */
static cJSON *wait_store_error(struct itest_client *c, const char *want)
{
    int64_t end = simproc_now_ms() + WAIT_MS;

    for (;;) {
        cJSON *m = status(c);

        if (strcmp(store_str(m, "error"), want) == 0)
            return m;
        ck_assert_msg(simproc_now_ms() < end,
                      "store.error never became '%s' (it is '%s', last "
                      "error '%s')",
                      want, store_str(m, "error"), store_str(m, "last_error"));
        cJSON_Delete(m);
        usleep(100000);
    }
}

/* The newest sample of channel 0 from latest (the rings). */
static long long latest_t_us(struct itest_client *c)
{
    cJSON *m = itest_call(c, "latest", "{\"n\":1,\"channels\":[0]}");
    const cJSON *r = itest_result(m);
    const cJSON *ch = cJSON_GetArrayItem(itest_member(r, "channels", NULL), 0);
    const cJSON *s;
    long long t;

    ck_assert(cJSON_IsFalse(itest_member(r, "stale", NULL)));
    ck_assert_ptr_nonnull(ch);
    s = cJSON_GetArrayItem(itest_member(ch, "samples", NULL), 0);
    ck_assert_ptr_nonnull(s);
    t = (long long)itest_member(s, "t_us", NULL)->valuedouble;
    cJSON_Delete(m);
    return t;
}

static void assert_integrity(void)
{
    char text[TEXT_MAX];
    sqlite3 *db = itest_db_open(run.db);

    itest_query_text(db, "PRAGMA integrity_check", text, sizeof(text));
    ck_assert_str_eq(text, "ok\n");
    sqlite3_close(db);
}

/* Reads the watcher's notifications until an alert named name arrives;
 * counts the samples notifications read meanwhile into *samples. */
static bool watch_for_alert(struct itest_client *w, const char *name,
                            long *samples)
{
    int64_t end = simproc_now_ms() + 2 * WAIT_MS;

    while (simproc_now_ms() < end) {
        cJSON *m = itest_read_msg(w, (int)(end - simproc_now_ms()));
        const cJSON *method, *p;
        bool found = false;

        if (m == NULL)
            return false;
        method = cJSON_GetObjectItem(m, "method");
        p = cJSON_GetObjectItem(m, "params");
        if (cJSON_IsString(method) &&
            strcmp(method->valuestring, "samples") == 0)
            (*samples)++;
        if (cJSON_IsString(method) &&
            strcmp(method->valuestring, "alert") == 0 &&
            strcmp(itest_member(p, "name", NULL)->valuestring, name) == 0 &&
            strcmp(itest_member(p, "state", NULL)->valuestring, "raised") == 0)
            found = true;
        cJSON_Delete(m);
        if (found)
            return true;
    }
    return false;
}

START_TEST(test_diskfull_serves_live_data_and_alerts_then_stores_again)
{
    /* 8 channels at 2000 scans/s: 16,000 rows a second fill 1 MiB in a
     * few seconds; the leak takes the heap under 25% in about 12 s. */
    const char *sim[] = {"--link",      run.tty, "--rate",        "2000",
                         "--channels",  "8",     "--scenario",    "leak",
                         "--leak-rate", "1000",  "--heap-period", "100",
                         NULL};
    const char *args[] = {"--config", run.conf,   "--device", run.tty, "--db",
                          run.db,     "--socket", run.sock,   NULL};
    struct itest_client c, w;
    long long written, failures, stored_t, live_t;
    long samples = 0;
    cJSON *m;
    int log;

    write_conf(LIMIT_MB);
    run.sim = itest_start_sim(run.tty, sim, WAIT_MS);
    log = itest_open_log(run.log);
    run.daemon = simproc_spawn(itest_env_or("TETHERD", "build/tetherd"), args,
                               NULL, log, log);
    close(log);
    itest_client_open(&c, run.sock, WAIT_MS);
    itest_client_open(&w, run.sock, WAIT_MS);
    m = itest_call(&w, "watch",
                   "{\"topics\":[\"samples\",\"alerts\"],\"decimate\":20}");
    itest_result(m);
    cJSON_Delete(m);

    /* The limit is reached: status says so, with the limit and the size. */
    m = wait_store_error(&c, "ENOSPC");
    ck_assert(!store_healthy(m));
    ck_assert_msg(strstr(store_str(m, "last_error"), "full") != NULL, "%s",
                  store_str(m, "last_error"));
    ck_assert_int_eq(store_int(m, "max_bytes"), LIMIT_MB << 20);
    ck_assert_int_le(store_int(m, "db_bytes"), LIMIT_MB << 20);
    ck_assert_msg(!alert_active(m, "heap_low"),
                  "heap_low came before the database was full");
    written = store_int(m, "written");
    failures = store_int(m, "failures");
    cJSON_Delete(m);
    ck_assert_int_le(itest_db_int(run.db, "PRAGMA page_count") *
                         itest_db_int(run.db, "PRAGMA page_size"),
                     LIMIT_MB << 20);
    assert_integrity();

    /* Live data goes on past what the database holds, and alerts are
     * still raised and sent to watchers. */
    stored_t = itest_db_int(run.db, "SELECT max(t_us) FROM adc");
    live_t = latest_t_us(&c);
    ck_assert_int_gt(live_t, stored_t);
    ck_assert_msg(watch_for_alert(&w, "heap_low", &samples),
                  "no heap_low alert while the database was full");
    ck_assert_int_gt(samples, 10);
    ck_assert_int_gt(latest_t_us(&c), live_t);

    m = status(&c);
    ck_assert(alert_active(m, "heap_low"));
    ck_assert_str_eq(store_str(m, "error"), "ENOSPC");
    ck_assert_int_eq(store_int(m, "written"), written);
    /* Retried by itself, at a slow pace; the queue stayed bounded and
     * what did not fit was counted. */
    ck_assert_int_gt(store_int(m, "failures"), failures);
    ck_assert_int_le(store_int(m, "failures"), FAILURES_MAX);
    ck_assert_int_gt(store_int(m, "dropped"), 0);
    ck_assert_int_le(store_int(m, "pending"), QUEUE_ROWS + TEXT_RESERVE);
    cJSON_Delete(m);
    ck_assert_int_eq(itest_db_int(run.db, "SELECT max(t_us) FROM adc"),
                     stored_t);
    ck_assert_int_eq(log_count("store: commit failed (ENOSPC)"), 1);
    ck_assert_int_eq(log_count("store: queue full"), 1);
    ck_assert_int_eq(log_count("commits work again"), 0);
    assert_integrity();

    /* A higher limit and a reload: it stores again by itself, and the
     * alert raised while full reaches the history. */
    write_conf(RAISED);
    ck_assert_int_eq(kill(run.daemon, SIGHUP), 0);
    ck_assert(
        itest_wait_log(run.log, "database size limit now 64 MiB", WAIT_MS));
    m = wait_store_error(&c, "");
    ck_assert(store_healthy(m));
    ck_assert_int_eq(store_int(m, "max_bytes"), RAISED << 20);
    ck_assert_int_gt(store_int(m, "written"), written);
    cJSON_Delete(m);
    ck_assert(itest_wait_log(run.log, "commits work again", WAIT_MS));
    /* Rows arrive in order, so once a sample newer than this one is in,
     * so is everything queued before it, the alert included. */
    live_t = latest_t_us(&c);
    for (int64_t end = simproc_now_ms() + WAIT_MS;
         itest_db_int(run.db, "SELECT max(t_us) FROM adc") < live_t;) {
        ck_assert_msg(simproc_now_ms() < end,
                      "the samples after the reload were never stored");
        usleep(100000);
    }
    ck_assert_int_eq(itest_db_int(run.db, "SELECT count(*) FROM alerts WHERE "
                                          "name = 'heap_low' AND state = "
                                          "'raised'"),
                     1);

    itest_client_close(&w);
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, 5000);
    assert_integrity();
    ck_assert_int_eq(log_count("store: commit failed"), 1);
    ck_assert_int_eq(log_count("commits work again"), 1);
}
END_TEST

static Suite *diskfull_suite(void)
{
    Suite *s = suite_create("diskfull");
    TCase *tc = tcase_create("diskfull");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc,
                   test_diskfull_serves_live_data_and_alerts_then_stores_again);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return itest_run(diskfull_suite());
}
