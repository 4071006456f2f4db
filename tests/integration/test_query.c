/* The query socket end to end: the real tetherd against tether-sim over a
 * pseudo-terminal, asked through its Unix socket with JSON-RPC lines
 * exactly as a client would (docs/QUERY.md).  Every process started here
 * dies with the test that started it (simproc.h), and every wait is
 * bounded. */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
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

#define WAIT_MS    10000
#define DIR_MAX    64 /* short enough for a Unix socket path inside it */
#define FILE_MAX   (DIR_MAX + 24)
#define LONG_LINE  (70 * 1024)
#define CHANNELS   3
/* The unprivileged peer of the permission test: Debian's nobody and
 * nogroup, and a group that is neither the socket's nor an admin's. */
#define PEER_UID   65534
#define PEER_GID   65534
#define PEER_GROUP "nogroup"
#define OTHER_GID  54321

struct run {
    char dir[DIR_MAX];
    char tty[FILE_MAX];
    char db[FILE_MAX];
    char sock[FILE_MAX];
    char log[FILE_MAX];
    pid_t sim;
    pid_t daemon;
};

static struct run run;

static void start_sim(void)
{
    char ch[8];
    const char *args[] = {"--link", run.tty, "--channels", ch, NULL};

    snprintf(ch, sizeof(ch), "%d", CHANNELS);
    unlink(run.tty);
    run.sim = itest_start_sim(run.tty, args, WAIT_MS);
}

static void setup(void)
{
    /* The socket's group is one an unprivileged test peer can hold. */
    const char *args[] = {"--config",       "/dev/null", "--device", run.tty,
                          "--db",           run.db,      "--socket", run.sock,
                          "--socket-group", PEER_GROUP,  "-v",       NULL};
    int log;

    memset(&run, 0, sizeof(run));
    itest_make_dir(run.dir, sizeof(run.dir), "tq-");
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.sock, sizeof(run.sock), "%s/q.sock", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
    start_sim();
    log = itest_open_log(run.log);
    run.daemon = simproc_spawn(itest_env_or("TETHERD", "build/tetherd"), args,
                               NULL, log, log);
    close(log);
}

static void teardown(void)
{
    itest_kill(&run.daemon);
    itest_kill(&run.sim);
    itest_remove_tree(run.dir);
}

/* ---- The client side ---- */

/* Connects and waits until status says connected and a heap report is
 * in. */
static void wait_ready(struct itest_client *c)
{
    int64_t end = simproc_now_ms() + WAIT_MS;

    itest_client_open(c, run.sock, WAIT_MS);
    while (simproc_now_ms() < end) {
        cJSON *m = itest_call(c, "status", NULL);
        const cJSON *r = itest_result(m);
        bool ok = strcmp(itest_member(r, "link", "state")->valuestring,
                         "connected") == 0 &&
                  cJSON_IsObject(itest_member(r, "heap", NULL)) &&
                  cJSON_IsObject(itest_member(r, "mcu", NULL));

        cJSON_Delete(m);
        if (ok)
            return;
        usleep(100000);
    }
    ck_abort_msg("tetherd never reported a connected link with heap data");
}

/* ---- Tests ---- */

START_TEST(test_query_answers_version_status_latest_history_and_alerts)
{
    static const char *const status_keys[][2] = {
        {"link", "state"},
        {"link", "frames_ok"},
        {"link", "crc_errors"},
        {"link", "seq_gaps"},
        {"mcu", "firmware_version"},
        {"mcu", "uptime_ms"},
        {"heap", "free"},
        {"heap", "min_free"},
        {"alerts", "active"},
    };
    struct itest_client c;
    cJSON *m;
    const cJSON *r, *pts, *chans;

    wait_ready(&c);
    m = itest_call(&c, "version", NULL);
    r = itest_result(m);
    ck_assert_str_eq(itest_member(r, "daemon", NULL)->valuestring, "0.1.0");
    ck_assert_int_eq(itest_member(r, "query_protocol", NULL)->valueint, 1);
    ck_assert_int_eq(itest_member(r, "wire_protocol", NULL)->valueint, 1);
    cJSON_Delete(m);

    m = itest_call(&c, "status", NULL);
    r = itest_result(m);
    for (size_t i = 0; i < sizeof(status_keys) / sizeof(status_keys[0]); i++)
        itest_member(r, status_keys[i][0], status_keys[i][1]);
    ck_assert(cJSON_IsArray(itest_member(r, "alerts", "active")));
    ck_assert(cJSON_IsNumber(itest_member(r, "link", "last_frame_age_ms")));
    ck_assert_int_lt(itest_member(r, "link", "last_frame_age_ms")->valueint,
                     5000);
    ck_assert(cJSON_IsNumber(itest_member(r, "alerts", "heap_low_threshold")));
    ck_assert_int_gt(itest_member(r, "alerts", "heap_low_threshold")->valueint,
                     0);
    cJSON_Delete(m);

    m = itest_call(&c, "latest", "{\"n\":3}");
    r = itest_result(m);
    ck_assert(cJSON_IsFalse(itest_member(r, "stale", NULL)));
    chans = itest_member(r, "channels", NULL);
    ck_assert_int_eq(cJSON_GetArraySize(chans), CHANNELS);
    ck_assert_int_eq(cJSON_GetArraySize(itest_member(
                         cJSON_GetArrayItem(chans, 0), "samples", NULL)),
                     3);
    cJSON_Delete(m);

    /* Commits come every 100 ms: two seconds in, there is history. */
    usleep(2000000);
    m = itest_call(&c, "history", "{\"series\":\"adc\",\"limit\":30}");
    r = itest_result(m);
    pts = itest_member(r, "points", NULL);
    ck_assert_int_gt(cJSON_GetArraySize(pts), 0);
    itest_member(cJSON_GetArrayItem(pts, 0), "value", NULL);
    ck_assert(cJSON_IsNumber(itest_member(r, "next_after_us", NULL)));
    cJSON_Delete(m);

    m = itest_call(
        &c, "history",
        "{\"series\":\"adc\",\"bucket_us\":1000000,\"channels\":[0]}");
    r = itest_result(m);
    pts = itest_member(r, "points", NULL);
    ck_assert_int_gt(cJSON_GetArraySize(pts), 0);
    ck_assert_int_gt(
        itest_member(cJSON_GetArrayItem(pts, 0), "count", NULL)->valueint, 0);
    ck_assert(cJSON_IsNull(itest_member(r, "next_after_us", NULL)));
    cJSON_Delete(m);

    /* An hour in at most ten buckets: 3600 s / 9 = 400 s, rounded to 420 s
     * (whole minutes, so served from the 1-minute rollups). */
    m = itest_call(&c, "history",
                   "{\"series\":\"adc\",\"buckets\":10,\"channels\":[0]}");
    r = itest_result(m);
    ck_assert_int_eq((long long)itest_member(r, "bucket_us", NULL)->valuedouble,
                     420000000LL);
    ck_assert_int_ge(cJSON_GetArraySize(itest_member(r, "points", NULL)), 1);
    ck_assert_int_le(cJSON_GetArraySize(itest_member(r, "points", NULL)), 10);
    cJSON_Delete(m);
    m = itest_call(&c, "history", "{\"buckets\":10,\"bucket_us\":1000000}");
    ck_assert_int_eq(itest_error_code(m), -32602);
    cJSON_Delete(m);
    m = itest_call(&c, "history", "{\"buckets\":1}");
    ck_assert_int_eq(itest_error_code(m), -32602);
    cJSON_Delete(m);
    m = itest_call(&c, "history", "{\"buckets\":5001}");
    ck_assert_int_eq(itest_error_code(m), -32602);
    cJSON_Delete(m);

    m = itest_call(&c, "history", "{\"series\":\"heap\"}");
    ck_assert_int_gt(
        cJSON_GetArraySize(itest_member(itest_result(m), "points", NULL)), 0);
    cJSON_Delete(m);

    m = itest_call(&c, "history", "{\"series\":\"nope\"}");
    ck_assert_int_eq(itest_error_code(m), -32602);
    cJSON_Delete(m);

    m = itest_call(&c, "alerts", NULL);
    r = itest_result(m);
    ck_assert(cJSON_IsArray(itest_member(r, "active", NULL)));
    ck_assert(cJSON_IsArray(itest_member(r, "history", NULL)));
    cJSON_Delete(m);

    /* flash is tested in test_flash.c; here only that it is there. */
    m = itest_call(&c, "flash", NULL);
    ck_assert_int_eq(itest_error_code(m), -32602);
    cJSON_Delete(m);
    itest_client_close(&c);
}
END_TEST

START_TEST(test_query_watch_streams_samples_and_heap)
{
    struct itest_client c;
    bool samples = false, heap = false;
    int64_t end;
    cJSON *m;

    wait_ready(&c);
    m = itest_call(&c, "watch", "{\"topics\":[\"samples\",\"heap\"]}");
    ck_assert_int_eq(
        cJSON_GetArraySize(itest_member(itest_result(m), "topics", NULL)), 2);
    cJSON_Delete(m);
    end = simproc_now_ms() + WAIT_MS;
    while (!(samples && heap) && simproc_now_ms() < end) {
        const cJSON *meth, *p;

        m = itest_read_msg(&c, (int)(end - simproc_now_ms()));
        if (m == NULL)
            break;
        meth = cJSON_GetObjectItem(m, "method");
        p = cJSON_GetObjectItem(m, "params");
        if (cJSON_IsString(meth) && strcmp(meth->valuestring, "samples") == 0) {
            const cJSON *v = itest_member(p, "values", NULL);

            ck_assert_int_eq(
                cJSON_GetArraySize(itest_member(p, "channels", NULL)),
                CHANNELS);
            ck_assert_int_eq(cJSON_GetArraySize(v),
                             itest_member(p, "scans", NULL)->valueint);
            ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetArrayItem(v, 0)),
                             CHANNELS);
            samples = true;
        } else if (cJSON_IsString(meth) &&
                   strcmp(meth->valuestring, "heap") == 0) {
            ck_assert_int_gt(itest_member(p, "total", NULL)->valueint, 0);
            heap = true;
        }
        cJSON_Delete(m);
    }
    ck_assert_msg(samples && heap, "samples %d heap %d", samples, heap);
    itest_client_close(&c);
}
END_TEST

START_TEST(test_query_send_reports_ack_nack_and_link_down)
{
    struct itest_client c;
    cJSON *m;
    int64_t end;
    int code = 0;

    wait_ready(&c);
    m = itest_call(&c, "send", "{\"command\":\"set_rate\",\"value\":50}");
    ck_assert(cJSON_IsTrue(itest_member(itest_result(m), "ack", NULL)));
    cJSON_Delete(m);
    m = itest_call(&c, "send", "{\"command\":\"set_rate\",\"value\":0}");
    ck_assert(cJSON_IsFalse(itest_member(itest_result(m), "ack", NULL)));
    ck_assert_str_eq(itest_member(itest_result(m), "nack", NULL)->valuestring,
                     "bad_value");
    cJSON_Delete(m);
    m = itest_call(&c, "send", "{\"command\":\"launch\"}");
    ck_assert_int_eq(itest_error_code(m), -32602);
    cJSON_Delete(m);

    itest_kill(&run.sim);
    /* The link notices the pty going away within its retry period. */
    end = simproc_now_ms() + WAIT_MS;
    while (code != -32001 && simproc_now_ms() < end) {
        m = itest_call(&c, "send", "{\"command\":\"ping\",\"timeout_ms\":200}");
        code = cJSON_GetObjectItem(m, "error") ? itest_error_code(m) : 0;
        cJSON_Delete(m);
        if (code != -32001)
            usleep(100000);
    }
    ck_assert_int_eq(code, -32001);
    itest_client_close(&c);
}
END_TEST

START_TEST(test_query_send_times_out_when_the_mcu_does_not_answer)
{
    struct itest_client c;
    cJSON *m;

    wait_ready(&c);
    /* A stopped simulator still holds its pty open, so the link stays up
     * until it goes stale, while nothing answers the command. */
    ck_assert_int_eq(kill(run.sim, SIGSTOP), 0);
    m = itest_call(&c, "send", "{\"command\":\"ping\",\"timeout_ms\":300}");
    ck_assert_int_eq(itest_error_code(m), -32003);
    cJSON_Delete(m);
    kill(run.sim, SIGCONT);
    itest_client_close(&c);
}
END_TEST

/* In a child that has become PEER_UID with group gid: connects, asks for
 * status and for a send, and exits with a bit mask of what happened:
 * 1 connected, 2 status answered, 4 send refused with -32005, 8 send
 * answered otherwise. */
static int peer_child(gid_t gid)
{
    static const char req[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"send\","
        "\"params\":{\"command\":\"ping\"}}\n";
    char buf[65536];
    size_t len = 0;
    int bits = 0, answers = 0;
    int fd = itest_peer_connect(run.sock, PEER_UID, gid);
    int64_t end = simproc_now_ms() + WAIT_MS;

    if (fd == -EPERM)
        return 64;
    if (fd < 0)
        return bits;
    bits |= 1;
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        return bits;
    while (answers < 2 && simproc_now_ms() < end && len < sizeof(buf) - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char *line = buf, *nl;
        ssize_t k;

        if (poll(&pfd, 1, 200) <= 0)
            continue;
        k = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        buf[len] = '\0';
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            if (strstr(line, "\"id\":1") && strstr(line, "\"result\""))
                bits |= 2;
            if (strstr(line, "\"id\":2"))
                bits |= strstr(line, "-32005") ? 4 : 8;
            answers += strstr(line, "\"id\":") != NULL;
            line = nl + 1;
        }
        len -= (size_t)(line - buf);
        memmove(buf, line, len);
    }
    return bits;
}

static int run_peer(gid_t gid)
{
    pid_t pid = fork();
    int status;

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(peer_child(gid));
    status = simproc_wait_exit(pid, WAIT_MS + 2000);
    ck_assert(status >= 0 && WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_query_refuses_send_to_a_peer_outside_the_admin_group)
{
    struct itest_client c;

    if (getuid() != 0) {
        /* Becoming another user takes root; make test runs as root. */
        fprintf(stderr, "test_query: not root, peer test not run\n");
        return;
    }
    wait_ready(&c);
    itest_client_close(&c);
    ck_assert_int_eq(chmod(run.dir, 0711), 0); /* the peer may reach run.sock */
    /* In the socket's group: may read, may not command the MCU. */
    ck_assert_int_eq(run_peer(PEER_GID), 1 | 2 | 4);
    /* In neither group: the socket's mode keeps it out. */
    ck_assert_int_eq(run_peer(OTHER_GID), 0);
}
END_TEST

START_TEST(test_query_survives_malformed_and_over_long_lines)
{
    static const char junk[] = "this is not json\n";
    struct itest_client a, b;
    char *big;
    cJSON *m;

    wait_ready(&a);
    itest_client_open(&b, run.sock, WAIT_MS);
    (void)itest_send_all(&a, junk, strlen(junk));
    m = itest_read_msg(&a, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(itest_error_code(m), -32700);
    cJSON_Delete(m);
    m = itest_call(&a, "version", NULL);
    itest_result(m);
    cJSON_Delete(m);

    big = malloc(LONG_LINE + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', LONG_LINE);
    big[LONG_LINE] = '\n';
    (void)itest_send_all(&a, big, LONG_LINE + 1);
    free(big);
    m = itest_read_msg(&a, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(itest_error_code(m), -32600);
    cJSON_Delete(m);
    /* Then the server hangs up on that client... */
    ck_assert_ptr_null(itest_read_msg(&a, WAIT_MS));
    /* ...and still serves the other. */
    m = itest_call(&b, "version", NULL);
    itest_result(m);
    cJSON_Delete(m);
    itest_client_close(&a);
    itest_client_close(&b);
}
END_TEST

/* Runs tetherctl with args against the daemon's socket; returns its exit
 * status and puts what it printed in out. */
static int tetherctl(const char *const *args, char *out, size_t cap)
{
    char file[FILE_MAX];

    snprintf(file, sizeof(file), "%s/ctl.out", run.dir);
    return itest_tetherctl(run.sock, file, args, out, cap, 10000);
}

START_TEST(test_query_tetherctl_shows_status_sends_and_reports_errors)
{
    const char *status[] = {"status", NULL};
    const char *json[] = {"--json", "status", NULL};
    const char *rate[] = {"send", "set-rate", "200", NULL};
    const char *bad[] = {"send", "set-rate", "0", NULL};
    const char *hist[] = {"history", "--since", "1m", "--bucket", "1s", NULL};
    const char *flash[] = {"flash", NULL};
    const char *plot_heap[] = {"plot", "heap.free", "--since", "1m", "--width",
                               "20",   "--height",  "5",       NULL};
    const char *plot_adc[] = {"plot", "adc.0", "--since", "10s", NULL};
    const char *plot_bad[] = {"plot", "heap", "--since", "1m", NULL};
    struct itest_client c;
    char out[16384];

    wait_ready(&c);
    itest_client_close(&c);
    ck_assert_int_eq(tetherctl(status, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "connected"));
    ck_assert_ptr_nonnull(strstr(out, "tether-sim"));
    ck_assert_int_eq(tetherctl(json, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"frames_ok\""));
    ck_assert_int_eq(tetherctl(rate, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "ACK"));
    ck_assert_int_eq(tetherctl(bad, out, sizeof(out)), 1);
    ck_assert_ptr_nonnull(strstr(out, "NACK: bad_value"));
    usleep(1200000); /* a whole second bucket in the store */
    ck_assert_int_eq(tetherctl(hist, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "count"));
    ck_assert_int_eq(tetherctl(plot_heap, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "heap.free: free heap"));
    ck_assert_ptr_nonnull(strstr(out, "heap_low threshold"));
    ck_assert_int_eq(tetherctl(plot_adc, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, " |"));
    ck_assert_ptr_nonnull(strstr(out, "*"));
    ck_assert_int_eq(tetherctl(plot_bad, out, sizeof(out)), 2);
    ck_assert_int_eq(tetherctl(flash, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "flash needs an image file"));
    /* No daemon there: exit 3 with a hint. */
    snprintf(run.sock, sizeof(run.sock), "%s/none.sock", run.dir);
    ck_assert_int_eq(tetherctl(status, out, sizeof(out)), 3);
    ck_assert_ptr_nonnull(strstr(out, "cannot connect"));
}
END_TEST

static Suite *query_suite(void)
{
    Suite *s = suite_create("query socket");
    TCase *tc = tcase_create("end to end");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc,
                   test_query_answers_version_status_latest_history_and_alerts);
    tcase_add_test(tc, test_query_watch_streams_samples_and_heap);
    tcase_add_test(tc, test_query_send_reports_ack_nack_and_link_down);
    tcase_add_test(tc, test_query_send_times_out_when_the_mcu_does_not_answer);
    tcase_add_test(tc,
                   test_query_refuses_send_to_a_peer_outside_the_admin_group);
    tcase_add_test(tc, test_query_survives_malformed_and_over_long_lines);
    tcase_add_test(tc,
                   test_query_tetherctl_shows_status_sends_and_reports_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return itest_run(query_suite());
}
