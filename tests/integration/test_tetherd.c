/* tetherd end to end: the real daemon against the real firmware core in
 * tether-sim, over a pseudo-terminal, with the database checked through
 * SQLite afterwards.  Every process started here dies with the test that
 * started it (simproc.h), and every wait is bounded. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simproc.h"

#define WAIT_MS  10000
#define ARGV_MAX 24
#define TEXT_MAX 4096

#define DIR_MAX  64 /* short enough for a Unix socket path inside it */
#define FILE_MAX (DIR_MAX + 24)

struct run {
    char dir[DIR_MAX];
    char tty[FILE_MAX];
    char db[FILE_MAX];
    char conf[FILE_MAX];
    char log[FILE_MAX];
    pid_t sim;
    pid_t daemon;
};

static struct run run;

static const char *tetherd_path(void)
{
    const char *p = getenv("TETHERD");

    return p ? p : "build/tetherd";
}

static const char *sim_path(void)
{
    const char *p = getenv("TETHER_SIM");

    return p ? p : "build/tether-sim";
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");

    memset(&run, 0, sizeof(run));
    snprintf(run.dir, sizeof(run.dir), "%.40s/tetherd-test-XXXXXX",
             base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(run.dir));
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.conf, sizeof(run.conf), "%s/tetherd.conf", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
}

static int remove_one(const char *path, const struct stat *st, int type,
                      struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (run.daemon > 0) {
        kill(run.daemon, SIGKILL);
        simproc_wait_exit(run.daemon, 2000);
    }
    if (run.sim > 0) {
        kill(run.sim, SIGKILL);
        simproc_wait_exit(run.sim, 2000);
    }
    nftw(run.dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;

    buf[0] = '\0';
    if (f == NULL)
        return;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Starts tether-sim on run.tty with extra args; waits for the link. */
static pid_t start_sim(const char *const *extra)
{
    const char *args[ARGV_MAX] = {"--link", run.tty};
    size_t n = 2;
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int64_t end = simproc_now_ms() + WAIT_MS;
    struct stat st;
    pid_t pid;

    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    pid = simproc_spawn(sim_path(), args, NULL, null, null);
    close(null);
    while (lstat(run.tty, &st) != 0 && simproc_now_ms() < end)
        usleep(10000);
    ck_assert_msg(lstat(run.tty, &st) == 0, "tether-sim made no pty link");
    return pid;
}

/* Starts tetherd on run.tty and run.db with run.conf plus extra flags,
 * logging to run.log; env may add NOTIFY_SOCKET. */
static pid_t start_daemon(const char *const *extra, const char *const *env)
{
    const char *args[ARGV_MAX] = {"--config", run.conf, "--device", run.tty,
                                  "--db",     run.db,   "-v"};
    size_t n = 7;
    int log = open(run.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_t pid;

    ck_assert_int_ge(log, 0);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    if (access(run.conf, F_OK) != 0)
        write_file(run.conf, "", 0644);
    pid = simproc_spawn(tetherd_path(), args, env, log, log);
    close(log);
    return pid;
}

/* Waits until run.log contains needle; returns 1 if it did in time. */
static int wait_log(const char *needle, int timeout_ms)
{
    static char text[1 << 20];
    int64_t end = simproc_now_ms() + timeout_ms;

    do {
        read_file(run.log, text, sizeof(text));
        if (strstr(text, needle) != NULL)
            return 1;
        usleep(50000);
    } while (simproc_now_ms() < end);
    return 0;
}

/* SIGTERM, expecting exit status 0 within 2 s. */
static void stop_daemon_cleanly(void)
{
    int status;

    kill(run.daemon, SIGTERM);
    status = simproc_wait_exit(run.daemon, 2000);
    run.daemon = 0;
    ck_assert_msg(status >= 0, "tetherd did not exit within 2 s of SIGTERM");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}

static sqlite3 *open_db(void)
{
    sqlite3 *db;

    ck_assert_int_eq(sqlite3_open_v2(run.db, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    return db;
}

static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;

    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                  "%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void query_text(sqlite3 *db, const char *sql, char *out, size_t cap)
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

static void assert_integrity(void)
{
    char text[TEXT_MAX];
    sqlite3 *db = open_db();

    query_text(db, "PRAGMA integrity_check", text, sizeof(text));
    ck_assert_str_eq(text, "ok\n");
    sqlite3_close(db);
}

START_TEST(test_tetherd_stores_what_the_sim_sends_without_gaps)
{
    const char *sim[] = {"--baud",        "115200",     "--rate",
                         "200",           "--channels", "4",
                         "--heap-period", "200",        NULL};
    char text[TEXT_MAX];
    sqlite3 *db;

    run.sim = start_sim(sim);
    run.daemon = start_daemon(NULL, NULL);
    ck_assert(wait_log("mcu hello", WAIT_MS));
    sleep(3);
    stop_daemon_cleanly();

    db = open_db();
    ck_assert_int_ge(query_int(db, "SELECT count(DISTINCT seq) FROM adc"), 20);
    /* Every stored batch is whole: 4 channels x scans, all 4 channels. */
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM (SELECT seq, "
                                   "count(*) % 4 AS r FROM adc GROUP BY seq) "
                                   "WHERE r != 0"),
                     0);
    /* Channel 3 carries a constant: 4/17 of 14-bit full scale. */
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM adc WHERE channel = 3 "
                                   "AND value != 3854"),
                     0);
    ck_assert_int_gt(
        query_int(db, "SELECT count(*) FROM adc WHERE channel = 3"), 0);
    ck_assert_int_ge(query_int(db, "SELECT count(*) FROM heap"), 10);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM heap WHERE "
                                   "free + used != total"),
                     0);
    /* The link's own account, written at shutdown: no gaps, no damage. */
    query_text(db,
               "SELECT detail FROM events WHERE kind = 'stats' "
               "ORDER BY t_us DESC LIMIT 1",
               text, sizeof(text));
    ck_assert_ptr_nonnull(strstr(text, " seq_gaps=0 "));
    ck_assert_ptr_nonnull(strstr(text, " crc_errors=0 "));
    query_text(db, "SELECT detail FROM events WHERE kind = 'hello'", text,
               sizeof(text));
    ck_assert_ptr_nonnull(strstr(text, "board=1"));
    sqlite3_close(db);
    assert_integrity();
}
END_TEST

START_TEST(test_tetherd_leak_raises_heap_leak_then_heap_low_and_runs_command)
{
    const char *sim[] = {
        "--scenario", "leak",   "--leak-rate", "1500", "--heap-period",
        "100",        "--rate", "50",          NULL};
    char conf[1024], cmd[FILE_MAX], out[FILE_MAX], text[TEXT_MAX];
    sqlite3 *db;

    snprintf(cmd, sizeof(cmd), "%s/alert.sh", run.dir);
    snprintf(out, sizeof(out), "%s/alerts.txt", run.dir);
    snprintf(text, sizeof(text),
             "#!/bin/sh\n"
             "echo \"$TETHER_EVENT $TETHER_STATE value=$TETHER_VALUE "
             "threshold=$TETHER_THRESHOLD estimate=$TETHER_ESTIMATE "
             "time=$TETHER_TIME\" >> %s\n",
             out);
    write_file(cmd, text, 0755);
    snprintf(conf, sizeof(conf),
             "[alert]\nheap_low = 25%%\nheap_hysteresis = 5%%\n"
             "hold_off_s = 1\nhold_off_reports = 3\nleak_window_s = 4\n"
             "leak_horizon_s = 60\nleak_min_reports = 10\ncommand = %s\n",
             cmd);
    write_file(run.conf, conf, 0644);

    run.sim = start_sim(sim);
    run.daemon = start_daemon(NULL, NULL);
    /* 16 KiB at 1.5 KB/s: the trend sees it within seconds, the threshold
     * (4 KiB free) after about 8 s. */
    ck_assert_msg(wait_log("alert heap_leak", 15000), "no heap_leak alert");
    ck_assert_msg(wait_log("alert heap_low", 15000), "no heap_low alert");
    usleep(500000);
    stop_daemon_cleanly();

    read_file(out, text, sizeof(text));
    ck_assert_msg(strstr(text, "heap_leak raised value=") != NULL,
                  "alert command output: %s", text);
    ck_assert_ptr_nonnull(strstr(text, "heap_low raised value="));
    ck_assert_ptr_nonnull(strstr(text, "threshold=4096"));
    /* heap_leak carries its estimate in seconds; heap_low has none. */
    {
        const char *leak = strstr(text, "heap_leak raised");
        const char *est = strstr(leak, "estimate=");

        ck_assert(est != NULL && est[9] >= '0' && est[9] <= '9');
        ck_assert(est < strchr(leak, '\n'));
    }
    ck_assert(strstr(text, "heap_leak") < strstr(text, "heap_low"));

    db = open_db();
    query_text(db,
               "SELECT name FROM alerts WHERE state = 'raised' "
               "ORDER BY t_us",
               text, sizeof(text));
    ck_assert_ptr_nonnull(strstr(text, "heap_leak\n"));
    ck_assert(strstr(text, "heap_leak") < strstr(text, "heap_low"));
    sqlite3_close(db);
}
END_TEST

START_TEST(test_tetherd_survives_the_sim_going_away_and_reattaches)
{
    const char *sim[] = {"--heap-period", "200", NULL};
    char text[TEXT_MAX];
    int64_t gone;
    sqlite3 *db;

    run.sim = start_sim(sim);
    run.daemon = start_daemon(NULL, NULL);
    ck_assert(wait_log("mcu hello", WAIT_MS));
    kill(run.sim, SIGKILL);
    simproc_wait_exit(run.sim, 2000);
    unlink(run.tty);
    ck_assert_msg(wait_log("disconnected", 5000), "no disconnect seen");
    sleep(1);
    ck_assert_int_eq(kill(run.daemon, 0), 0); /* still running */
    gone = simproc_now_ms();
    run.sim = start_sim(sim);
    ck_assert_msg(wait_log("link connected", 5000) &&
                      simproc_now_ms() - gone < 3000,
                  "no reattach");
    sleep(1);
    stop_daemon_cleanly();

    db = open_db();
    query_text(db,
               "SELECT substr(detail, 1, instr(detail, ':') - 1) FROM "
               "events WHERE kind = 'link' ORDER BY t_us",
               text, sizeof(text));
    ck_assert_msg(strstr(text, "connected\ndisconnected\n") != NULL &&
                      strstr(strstr(text, "disconnected\n"), "connected\n"),
                  "link events: %s", text);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_tetherd_kill_9_during_ingest_leaves_an_intact_database)
{
    const char *sim[] = {"--rate", "5000", "--channels", "8", NULL};
    long long before = 0;

    run.sim = start_sim(sim);
    for (int round = 0; round < 5; round++) {
        sqlite3 *db;
        long long rows;

        run.daemon = start_daemon(NULL, NULL);
        ck_assert(wait_log("mcu hello", WAIT_MS) ||
                  wait_log("link connected", WAIT_MS));
        usleep(700000 + 100000 * (useconds_t)round);
        kill(run.daemon, SIGKILL);
        simproc_wait_exit(run.daemon, 2000);
        run.daemon = 0;
        assert_integrity();
        db = open_db();
        rows = query_int(db, "SELECT count(*) FROM adc");
        sqlite3_close(db);
        /* Committed rows are never lost, and ingest kept going. */
        ck_assert_int_gt(rows, before);
        before = rows;
    }
}
END_TEST

static int notify_socket(char *path, size_t cap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    snprintf(path, cap, "%s/notify", run.dir);
    ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads datagrams until one contains needle; returns 1 if in time. */
static int wait_notify(int fd, const char *needle, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    char msg[512];

    while (simproc_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(fd, msg, sizeof(msg) - 1, 0);
        if (n <= 0)
            continue;
        msg[n] = '\0';
        if (strstr(msg, needle) != NULL)
            return 1;
    }
    return 0;
}

START_TEST(test_tetherd_tells_systemd_ready_status_and_stopping)
{
    char path[FILE_MAX], env[FILE_MAX + 16];
    const char *envs[] = {env, "WATCHDOG_USEC=400000", NULL};
    int fd;

    fd = notify_socket(path, sizeof(path));
    snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", path);
    run.sim = start_sim(NULL);
    run.daemon = start_daemon(NULL, envs);
    ck_assert_msg(wait_notify(fd, "READY=1", WAIT_MS), "no READY=1");
    ck_assert_msg(wait_notify(fd, "STATUS=link connected", WAIT_MS),
                  "no STATUS with the link state");
    /* WatchdogSec=0.4s: a keep-alive at least every 200 ms. */
    ck_assert_msg(wait_notify(fd, "WATCHDOG=1", 1000), "no WATCHDOG=1");
    kill(run.daemon, SIGTERM);
    ck_assert_msg(wait_notify(fd, "STOPPING=1", 3000), "no STOPPING=1");
    ck_assert_int_eq(simproc_wait_exit(run.daemon, 2000) >= 0, 1);
    run.daemon = 0;
    close(fd);
}
END_TEST

START_TEST(test_tetherd_reloads_on_sighup_and_rejects_bad_config)
{
    char text[TEXT_MAX];
    int status;

    write_file(run.conf, "[alert]\nheap_low = 10%\n", 0644);
    run.sim = start_sim(NULL);
    run.daemon = start_daemon(NULL, NULL);
    ck_assert(wait_log("link connected", WAIT_MS));
    write_file(run.conf, "[alert]\nheap_low = 30%\n[log]\nlevel = debug\n",
               0644);
    kill(run.daemon, SIGHUP);
    ck_assert(wait_log("configuration reloaded", 5000));
    /* A broken file on reload keeps the old settings and the daemon. */
    write_file(run.conf, "[alert]\nheap_low = lots\n", 0644);
    kill(run.daemon, SIGHUP);
    ck_assert(wait_log("reload failed", 5000));
    ck_assert_int_eq(kill(run.daemon, 0), 0);
    stop_daemon_cleanly();

    /* At start, a broken file is a clear error and exit status 2. */
    run.daemon = start_daemon(NULL, NULL);
    status = simproc_wait_exit(run.daemon, 5000);
    run.daemon = 0;
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
    read_file(run.log, text, sizeof(text));
    ck_assert_ptr_nonnull(strstr(text, "tetherd.conf:2"));
}
END_TEST

static Suite *tetherd_suite(void)
{
    Suite *s = suite_create("tetherd");
    TCase *tc = tcase_create("sim");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_tetherd_stores_what_the_sim_sends_without_gaps);
    tcase_add_test(
        tc, test_tetherd_leak_raises_heap_leak_then_heap_low_and_runs_command);
    tcase_add_test(tc, test_tetherd_survives_the_sim_going_away_and_reattaches);
    tcase_add_test(tc,
                   test_tetherd_kill_9_during_ingest_leaves_an_intact_database);
    tcase_add_test(tc, test_tetherd_tells_systemd_ready_status_and_stopping);
    tcase_add_test(tc, test_tetherd_reloads_on_sighup_and_rejects_bad_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tetherd_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
