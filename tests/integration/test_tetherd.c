/* tetherd end to end: the real daemon against the real firmware core in
 * tether-sim, over a pseudo-terminal, with the database checked through
 * SQLite afterwards.  Every process started here dies with the test that
 * started it (simproc.h), and every wait is bounded. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
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

#include "itest.h"
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

static void setup(void)
{
    memset(&run, 0, sizeof(run));
    itest_make_dir(run.dir, sizeof(run.dir), "tetherd-test-");
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.conf, sizeof(run.conf), "%s/tetherd.conf", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
}

static void teardown(void)
{
    itest_kill(&run.daemon);
    itest_kill(&run.sim);
    itest_remove_tree(run.dir);
}

/* Starts tether-sim on run.tty with extra args; waits for the link. */
static pid_t start_sim(const char *const *extra)
{
    const char *args[ARGV_MAX] = {"--link", run.tty};
    size_t n = 2;

    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return itest_start_sim(run.tty, args, WAIT_MS);
}

/* Starts tetherd on run.tty and run.db with run.conf plus extra flags,
 * logging to run.log; env may add NOTIFY_SOCKET. */
static pid_t start_daemon(const char *const *extra, const char *const *env)
{
    const char *args[ARGV_MAX] = {"--config", run.conf, "--device", run.tty,
                                  "--db",     run.db,   "-v"};
    size_t n = 7;
    int log = itest_open_log(run.log);
    pid_t pid;

    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    if (access(run.conf, F_OK) != 0)
        itest_write_file(run.conf, "", 0644);
    pid = simproc_spawn(itest_env_or("TETHERD", "build/tetherd"), args, env,
                        log, log);
    close(log);
    return pid;
}

/* Waits until run.log contains needle; returns 1 if it did in time. */
static int wait_log(const char *needle, int timeout_ms)
{
    return itest_wait_log(run.log, needle, timeout_ms);
}

static void assert_integrity(void)
{
    char text[TEXT_MAX];
    sqlite3 *db = itest_db_open(run.db);

    itest_query_text(db, "PRAGMA integrity_check", text, sizeof(text));
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
    itest_stop_cleanly(&run.daemon, 2000);

    db = itest_db_open(run.db);
    itest_assert_stored_telemetry(db, 10);
    /* The link's own account, written at shutdown: no gaps, no damage. */
    itest_query_text(db,
                     "SELECT detail FROM events WHERE kind = 'stats' "
                     "ORDER BY t_us DESC LIMIT 1",
                     text, sizeof(text));
    ck_assert_ptr_nonnull(strstr(text, " seq_gaps=0 "));
    ck_assert_ptr_nonnull(strstr(text, " crc_errors=0 "));
    itest_query_text(db, "SELECT detail FROM events WHERE kind = 'hello'", text,
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
    itest_write_file(cmd, text, 0755);
    snprintf(conf, sizeof(conf),
             "[alert]\nheap_low = 25%%\nheap_hysteresis = 5%%\n"
             "hold_off_s = 1\nhold_off_reports = 3\nleak_window_s = 4\n"
             "leak_horizon_s = 60\nleak_min_reports = 10\ncommand = %s\n",
             cmd);
    itest_write_file(run.conf, conf, 0644);

    run.sim = start_sim(sim);
    run.daemon = start_daemon(NULL, NULL);
    /* 16 KiB at 1.5 KB/s: the trend sees it within seconds, the threshold
     * (4 KiB free) after about 8 s. */
    ck_assert_msg(wait_log("alert heap_leak", 15000), "no heap_leak alert");
    ck_assert_msg(wait_log("alert heap_low", 15000), "no heap_low alert");
    usleep(500000);
    itest_stop_cleanly(&run.daemon, 2000);

    itest_read_file(out, text, sizeof(text));
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

    db = itest_db_open(run.db);
    itest_query_text(db,
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
    itest_stop_cleanly(&run.daemon, 2000);

    db = itest_db_open(run.db);
    itest_query_text(db,
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
        db = itest_db_open(run.db);
        rows = itest_query_int(db, "SELECT count(*) FROM adc");
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

    itest_write_file(run.conf, "[alert]\nheap_low = 10%\n", 0644);
    run.sim = start_sim(NULL);
    run.daemon = start_daemon(NULL, NULL);
    ck_assert(wait_log("link connected", WAIT_MS));
    itest_write_file(run.conf,
                     "[alert]\nheap_low = 30%\n[log]\nlevel = debug\n", 0644);
    kill(run.daemon, SIGHUP);
    ck_assert(wait_log("configuration reloaded", 5000));
    /* A broken file on reload keeps the old settings and the daemon. */
    itest_write_file(run.conf, "[alert]\nheap_low = lots\n", 0644);
    kill(run.daemon, SIGHUP);
    ck_assert(wait_log("reload failed", 5000));
    ck_assert_int_eq(kill(run.daemon, 0), 0);
    itest_stop_cleanly(&run.daemon, 2000);

    /* At start, a broken file is a clear error and exit status 2. */
    run.daemon = start_daemon(NULL, NULL);
    status = simproc_wait_exit(run.daemon, 5000);
    run.daemon = 0;
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
    itest_read_file(run.log, text, sizeof(text));
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
    return itest_run(tetherd_suite());
}
