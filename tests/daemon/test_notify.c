/* The alert command runner on a real libuv loop with real children: small
 * scripts written to a temporary directory report what they were given,
 * and the runner's counters and log lines are checked.  Every loop is
 * closed with uv_loop_close() == 0, which fails if a handle leaked. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon_test_util.h"
#include "log.h"
#include "notify.h"

#define TEXT_MAX   65536
#define WAIT_STEPS 500 /* of 10 ms: how long a child may take to start */

static char dir[PATH_MAX];
static char log_path[PATH_MAX + 16];
static int log_fd = -1;
static uv_loop_t loop;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s", dtest_tmpdir());
    snprintf(log_path, sizeof(log_path), "%s/log", dir);
    log_fd = open(log_path, O_CREAT | O_WRONLY | O_APPEND, 0600);
    ck_assert_int_ge(log_fd, 0);
    log_set_fd(log_fd);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    log_set_fd(STDERR_FILENO);
    close(log_fd);
}

/* Reads a whole (small) file into buf; returns false if it is absent. */
static bool read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return false;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return true;
}

static void write_script(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
            return true;
        p += len;
    }
    return false;
}

static bool log_has(const char *what)
{
    static char text[TEXT_MAX];

    ck_assert(read_text(log_path, text, sizeof(text)));
    return strstr(text, what) != NULL;
}

static struct alert_event leak_event(void)
{
    struct alert_event ev = {
        .kind = ALERT_HEAP_LEAK,
        .name = "heap_leak",
        .state = "raised",
        .t_us = 1700000000123456LL, /* 2023-11-14T22:13:20Z */
        .value = 12345,
        .threshold = 6553,
        .estimate_s = 48.4,
    };

    snprintf(ev.message, sizeof(ev.message),
             "free heap falling 255 B/s (r2 0.99): exhausted in ~48 s");
    return ev;
}

static void on_done(void *arg)
{
    (*(int *)arg)++;
}

/* Closes n, runs the loop dry and checks nothing was left behind. */
static void close_all(struct notify *n)
{
    int done = 0;

    notify_close(n, on_done, &done);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* Runs the loop until path exists, or fails the test. */
static void wait_for_file(const char *path)
{
    struct timespec pause = {0, 10 * 1000 * 1000};

    for (int i = 0; i < WAIT_STEPS; i++) {
        if (access(path, F_OK) == 0)
            return;
        uv_run(&loop, UV_RUN_NOWAIT);
        nanosleep(&pause, NULL);
    }
    ck_abort_msg("%s did not appear", path);
}

START_TEST(test_notify_passes_every_variable_in_the_environment)
{
    char script[PATH_MAX + 16], out[PATH_MAX + 16], cmd[3 * PATH_MAX];
    static char text[TEXT_MAX];
    struct alert_event ev = leak_event();
    struct notify_stats st;
    struct notify *n;

    snprintf(script, sizeof(script), "%s/env.sh", dir);
    write_script(script, "env > \"$1.tmp\"\n"
                         "readlink /proc/self/fd/0 > \"$1.stdin\"\n"
                         "echo \"$#\" > \"$1.argc\"\n"
                         "mv \"$1.tmp\" \"$1\"\n");
    snprintf(out, sizeof(out), "%s/env1", dir);
    /* Blanks of any kind and number separate words. */
    snprintf(cmd, sizeof(cmd), "  %s \t %s   second ", script, out);
    ck_assert_int_eq(setenv("TETHER_EVENT", "inherited", 1), 0);
    ck_assert_int_eq(setenv("NOTIFY_TEST_INHERITED", "kept", 1), 0);
    ck_assert_int_eq(notify_new(&n, &loop, cmd, 10000), 0);

    ck_assert_int_eq(notify_run(n, &ev), 0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert(read_text(out, text, sizeof(text)));
    ck_assert(has_line(text, "TETHER_EVENT=heap_leak"));
    ck_assert(!has_line(text, "TETHER_EVENT=inherited"));
    ck_assert(has_line(text, "TETHER_STATE=raised"));
    ck_assert(has_line(text, "TETHER_VALUE=12345"));
    ck_assert(has_line(text, "TETHER_THRESHOLD=6553"));
    ck_assert(has_line(text, "TETHER_ESTIMATE=48"));
    ck_assert(has_line(text, "TETHER_TIME=2023-11-14T22:13:20Z"));
    ck_assert(has_line(text, "TETHER_TIME_US=1700000000123456"));
    ck_assert(has_line(text, "TETHER_MESSAGE=free heap falling 255 B/s "
                             "(r2 0.99): exhausted in ~48 s"));
    ck_assert(has_line(text, "NOTIFY_TEST_INHERITED=kept"));
    ck_assert(strstr(text, "PATH=") != NULL);
    snprintf(out, sizeof(out), "%s/env1.stdin", dir);
    ck_assert(read_text(out, text, sizeof(text)));
    ck_assert_str_eq(text, "/dev/null\n");
    snprintf(out, sizeof(out), "%s/env1.argc", dir);
    ck_assert(read_text(out, text, sizeof(text)));
    ck_assert_str_eq(text, "2\n");

    /* No threshold and no estimate: both empty. */
    snprintf(out, sizeof(out), "%s/env2", dir);
    snprintf(cmd, sizeof(cmd), "%s %s", script, out);
    ck_assert_int_eq(notify_set_command(n, cmd, 10000), 0);
    ev.kind = ALERT_LINK_LOST;
    ev.name = "link_lost";
    ev.value = 0;
    ev.threshold = 0;
    ev.estimate_s = -1;
    ck_assert_int_eq(notify_run(n, &ev), 0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert(read_text(out, text, sizeof(text)));
    ck_assert(has_line(text, "TETHER_EVENT=link_lost"));
    ck_assert(has_line(text, "TETHER_VALUE=0"));
    ck_assert(has_line(text, "TETHER_THRESHOLD="));
    ck_assert(has_line(text, "TETHER_ESTIMATE="));

    notify_get_stats(n, &st);
    ck_assert_uint_eq(st.started, 2);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.timeouts, 0);
    ck_assert_uint_eq(st.dropped, 0);
    close_all(n);
}
END_TEST

START_TEST(test_notify_kills_a_command_that_outlives_its_timeout)
{
    char script[PATH_MAX + 16], pidfile[PATH_MAX + 16], cmd[3 * PATH_MAX];
    char text[32];
    struct alert_event ev = leak_event();
    struct notify_stats st;
    struct notify *n;
    pid_t pid;

    snprintf(script, sizeof(script), "%s/slow.sh", dir);
    write_script(script, "echo $$ > \"$1.tmp\"\nmv \"$1.tmp\" \"$1\"\n"
                         "exec sleep 30\n");
    snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
    snprintf(cmd, sizeof(cmd), "%s %s", script, pidfile);
    ck_assert_int_eq(notify_new(&n, &loop, cmd, 500), 0);
    ck_assert_int_eq(notify_run(n, &ev), 0);
    /* The loop runs dry only once the child is killed and reaped. */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert(read_text(pidfile, text, sizeof(text)));
    pid = (pid_t)atoi(text);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(kill(pid, 0), -1);
    ck_assert_int_eq(errno, ESRCH);

    notify_get_stats(n, &st);
    ck_assert_uint_eq(st.started, 1);
    ck_assert_uint_eq(st.timeouts, 1);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert(log_has("still running after 500 ms: killing it"));
    close_all(n);
}
END_TEST

START_TEST(test_notify_counts_and_logs_a_command_that_cannot_start)
{
    struct alert_event ev = leak_event();
    struct notify_stats st;
    struct notify *n;

    ck_assert_int_eq(notify_new(&n, &loop, "/nonexistent/tether-alert x", 1000),
                     0);
    ck_assert_int_eq(notify_run(n, &ev), -ENOENT);
    notify_get_stats(n, &st);
    ck_assert_uint_eq(st.started, 0);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert(log_has("alert command /nonexistent/tether-alert cannot "
                      "start: no such file or directory"));
    close_all(n);
}
END_TEST

START_TEST(test_notify_counts_and_logs_a_nonzero_exit)
{
    char script[PATH_MAX + 16], want[PATH_MAX + 64];
    struct alert_event ev = leak_event();
    struct notify_stats st;
    struct notify *n;

    snprintf(script, sizeof(script), "%s/fail.sh", dir);
    write_script(script, "exit 3\n");
    ck_assert_int_eq(notify_new(&n, &loop, script, 10000), 0);
    ck_assert_int_eq(notify_run(n, &ev), 0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    notify_get_stats(n, &st);
    ck_assert_uint_eq(st.started, 1);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.timeouts, 0);
    snprintf(want, sizeof(want), "alert command %s exited with 3", script);
    ck_assert(log_has(want));
    close_all(n);
}
END_TEST

START_TEST(test_notify_drops_runs_beyond_the_running_max)
{
    char script[PATH_MAX + 16], cmd[3 * PATH_MAX], pidfile[PATH_MAX + 16];
    struct alert_event ev = leak_event();
    struct notify_stats st;
    struct notify *n;

    snprintf(script, sizeof(script), "%s/slow.sh", dir);
    write_script(script, "echo $$ > \"$1.tmp\"\nmv \"$1.tmp\" \"$1\"\n"
                         "exec sleep 30\n");
    ck_assert_int_eq(notify_new(&n, &loop, NULL, 60000), 0);
    for (int i = 0; i < NOTIFY_RUNNING_MAX; i++) {
        snprintf(cmd, sizeof(cmd), "%s %s/pid%d", script, dir, i);
        ck_assert_int_eq(notify_set_command(n, cmd, 60000), 0);
        ck_assert_int_eq(notify_run(n, &ev), 0);
    }
    ck_assert_int_eq(notify_run(n, &ev), -EBUSY);
    ck_assert_int_eq(notify_run(n, &ev), -EBUSY);
    notify_get_stats(n, &st);
    ck_assert_uint_eq(st.started, NOTIFY_RUNNING_MAX);
    ck_assert_uint_eq(st.dropped, 2);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert(log_has("commands still running"));

    /* Every child is killed and reaped on close. */
    for (int i = 0; i < NOTIFY_RUNNING_MAX; i++) {
        snprintf(pidfile, sizeof(pidfile), "%s/pid%d", dir, i);
        wait_for_file(pidfile);
    }
    close_all(n);
    for (int i = 0; i < NOTIFY_RUNNING_MAX; i++) {
        char text[32];

        snprintf(pidfile, sizeof(pidfile), "%s/pid%d", dir, i);
        ck_assert(read_text(pidfile, text, sizeof(text)));
        ck_assert_int_eq(kill((pid_t)atoi(text), 0), -1);
        ck_assert_int_eq(errno, ESRCH);
    }
}
END_TEST

START_TEST(test_notify_close_kills_a_running_child_and_leaves_no_handle)
{
    char script[PATH_MAX + 16], pidfile[PATH_MAX + 16], cmd[3 * PATH_MAX];
    char text[32];
    struct alert_event ev = leak_event();
    struct notify_stats st;
    struct notify *n;
    int done = 0;
    pid_t pid;

    snprintf(script, sizeof(script), "%s/slow.sh", dir);
    write_script(script, "echo $$ > \"$1.tmp\"\nmv \"$1.tmp\" \"$1\"\n"
                         "exec sleep 30\n");
    snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
    snprintf(cmd, sizeof(cmd), "%s %s", script, pidfile);
    ck_assert_int_eq(notify_new(&n, &loop, cmd, 60000), 0);
    ck_assert_int_eq(notify_run(n, &ev), 0);
    wait_for_file(pidfile);
    ck_assert(read_text(pidfile, text, sizeof(text)));
    pid = (pid_t)atoi(text);
    ck_assert_int_eq(kill(pid, 0), 0);
    notify_get_stats(n, &st);
    ck_assert_uint_eq(st.started, 1);

    notify_close(n, on_done, &done);
    ck_assert_int_eq(done, 0); /* the child has yet to exit */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(kill(pid, 0), -1);
    ck_assert_int_eq(errno, ESRCH);
}
END_TEST

START_TEST(test_notify_does_nothing_without_a_command)
{
    struct alert_event ev = leak_event();
    struct notify_stats st;
    struct notify *n;
    int done = 0;

    ck_assert_int_eq(notify_new(&n, &loop, NULL, 1000), 0);
    ck_assert_int_eq(notify_run(n, &ev), 0);
    ck_assert_int_eq(notify_set_command(n, " \t ", 1000), 0);
    ck_assert_int_eq(notify_run(n, &ev), 0);
    notify_get_stats(n, &st);
    ck_assert_uint_eq(st.started + st.failed + st.dropped + st.timeouts, 0);
    /* Nothing runs: done comes at once. */
    notify_close(n, on_done, &done);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(notify_run(NULL, &ev), -ESHUTDOWN);
    notify_close(NULL, on_done, &done);
    ck_assert_int_eq(done, 2);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_notify_rejects_a_command_with_too_many_words)
{
    char cmd[512] = "/bin/true";
    struct alert_event ev = leak_event();
    struct notify_stats st;
    struct notify *n = NULL;
    char big[CONFIG_COMMAND_MAX + 1];

    for (int i = 1; i < NOTIFY_ARGS_MAX; i++)
        strcat(cmd, " a");
    ck_assert_int_eq(notify_new(&n, &loop, cmd, 1000), 0);
    strcat(cmd, " a");
    ck_assert_int_eq(notify_set_command(n, cmd, 1000), -E2BIG);
    ck_assert(log_has("more than 16 words"));
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(notify_set_command(n, big, 1000), -E2BIG);

    /* The old command stays. */
    ck_assert_int_eq(notify_run(n, &ev), 0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    notify_get_stats(n, &st);
    ck_assert_uint_eq(st.started, 1);
    ck_assert_uint_eq(st.failed, 0);
    close_all(n);

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    n = NULL;
    ck_assert_int_eq(notify_new(&n, &loop, cmd, 1000), -E2BIG);
    ck_assert_ptr_null(n);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *notify_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *run = tcase_create("run");
    TCase *limits = tcase_create("limits");

    tcase_add_checked_fixture(run, setup, teardown);
    tcase_add_test(run, test_notify_passes_every_variable_in_the_environment);
    tcase_add_test(run, test_notify_does_nothing_without_a_command);
    tcase_set_timeout(run, 10);
    suite_add_tcase(s, run);

    tcase_add_checked_fixture(limits, setup, teardown);
    tcase_add_test(limits,
                   test_notify_kills_a_command_that_outlives_its_timeout);
    tcase_add_test(limits,
                   test_notify_counts_and_logs_a_command_that_cannot_start);
    tcase_add_test(limits, test_notify_counts_and_logs_a_nonzero_exit);
    tcase_add_test(limits, test_notify_drops_runs_beyond_the_running_max);
    tcase_add_test(
        limits, test_notify_close_kills_a_running_child_and_leaves_no_handle);
    tcase_add_test(limits, test_notify_rejects_a_command_with_too_many_words);
    tcase_set_timeout(limits, 10);
    suite_add_tcase(s, limits);
    return s;
}

int main(void)
{
    return dtest_run(notify_suite());
}
