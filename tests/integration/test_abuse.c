/* tetherd's query socket under abuse, end to end: the real daemon against
 * tether-sim over a pseudo-terminal, and clients that misbehave in every
 * way a local program can (docs/QUERY.md, "Limits"):
 *   - a thousand connections that close at once, close after sending a
 *     request without reading the answer, or close in the middle of a
 *     line;
 *   - clients that send half a line and stall: each holds its slot until
 *     its request_timeout_ms (here STALL_MS) has passed, then gets -32600
 *     and is cut off;
 *   - clients that connect and send nothing: they hold their slots (a
 *     watcher only reads), which the 1,024-client limit bounds (the next
 *     connection is accepted and closed at once);
 *   - lines over the 64 KiB cap (the client gets -32600 and is cut off);
 *   - watchers that never read (cut off once their 1 MiB output queue is
 *     full).
 * Throughout, a well-behaved client on a thread of its own asks for status
 * in a loop, and every answer must come within PROBE_MS.  Afterwards
 * tetherd must hold as many descriptors as before and not much more
 * memory (RSS_SLACK_KB).  Every process started here dies with the test
 * (simproc.h), and every wait is bounded. */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itest.h"
#include "simproc.h"

#define WAIT_MS  20000
#define DIR_MAX  64 /* short enough for a Unix socket path inside it */
#define FILE_MAX (DIR_MAX + 24)

#define CLIENTS_MAX   1024      /* docs/QUERY.md: clients at once */
#define LINE_CAP      65536     /* docs/QUERY.md: request line */
#define CYCLES        1000      /* connect and disconnect */
#define STALLERS      100       /* half a line, then nothing */
#define STALL_MS      "2000"    /* tetherd's request_timeout_ms here */
#define WATCHERS      4         /* watch, then never read */
#define PROBE_MS      2000      /* every status answered within this */
#define PROBE_EVERY   20000     /* µs between status requests */
#define RESPONSE_MAX  (1 << 16) /* a status answer, with room to spare */
#define FDS_NEEDED    (CLIENTS_MAX + 64)
#define RSS_NOTES_MAX 256 /* the RSS after each phase, as text */

/* What tetherd's RSS may grow by after the abuse, once every abuser has
 * gone.  The abuse allocates far more while it lasts: a line buffer of
 * 64 KiB for each of 1,024 clients, and up to 1 MiB of queued output for
 * each watcher, all freed when the clients go.  What may stay is what the
 * allocator keeps of the heap it grew (fragments, free lists), a fraction
 * of a megabyte once freed pages go back to the system; 2 MiB leaves room
 * for another heap layout, but not for keeping the peak.
 * AddressSanitizer's allocator keeps freed blocks in a quarantine of
 * 256 MiB and never returns memory, so under it (SAN=1) the RSS says
 * nothing about tetherd and is not checked. */
#define RSS_SLACK_KB (2 * 1024)
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED false
#else
#define RSS_CHECKED true
#endif

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

/* The well-behaved client on its own thread.  It must not call Check
 * (which is not thread-safe): it records, and the test checks after
 * joining it. */
struct probe {
    pthread_t thread;
    atomic_bool stop;
    long answered;
    long failed;
    int64_t worst_ms;
    char why[160];
};

static void setup(void)
{
    memset(&run, 0, sizeof(run));
    itest_make_dir(run.dir, sizeof(run.dir), "tabuse-");
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.sock, sizeof(run.sock), "%s/q.sock", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
}

static void teardown(void)
{
    itest_kill(&run.daemon);
    itest_kill(&run.sim);
    itest_remove_tree(run.dir);
}

/* Room for every abuser at once, in this process and in tetherd (which
 * inherits the limit): CLIENTS_MAX clients need as many descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur >= FDS_NEEDED)
        return;
    if (rl.rlim_max < FDS_NEEDED) {
        struct rlimit up = {FDS_NEEDED, FDS_NEEDED};

        /* Only root may raise the hard limit. */
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return;
    }
    ck_assert_msg(rl.rlim_max >= FDS_NEEDED,
                  "the test needs %d descriptors; the hard limit is %llu",
                  FDS_NEEDED, (unsigned long long)rl.rlim_max);
    rl.rlim_cur = FDS_NEEDED;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += (size_t)k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads fd until a line holds want and ends with the id (JSON text, the
 * last member of an answer), within timeout_ms; buf (cap bytes) keeps
 * what follows.  Returns true when it came. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len,
                       const char *want, const char *id, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    char tail[32];

    snprintf(tail, sizeof(tail), ",\"id\":%s}", id);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left;
        ssize_t k;
        char *nl;

        while ((nl = memchr(buf, '\n', *len)) != NULL) {
            bool hit;

            *nl = '\0';
            hit = strstr(buf, want) != NULL &&
                  (size_t)(nl - buf) >= strlen(tail) &&
                  strcmp(nl - strlen(tail), tail) == 0;
            *len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, *len);
            if (hit)
                return true;
        }
        left = end - simproc_now_ms();
        if (left <= 0 || *len >= cap - 1)
            return false;
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        k = recv(fd, buf + *len, cap - 1 - *len, 0);
        if (k <= 0)
            return false;
        *len += (size_t)k;
    }
}

static void *probe_main(void *arg)
{
    struct probe *p = arg;
    char *buf = malloc(RESPONSE_MAX);
    size_t len = 0;
    int fd = itest_connect(run.sock), id = 0;

    if (buf == NULL || fd < 0) {
        snprintf(p->why, sizeof(p->why), "cannot connect: %s",
                 buf == NULL ? "out of memory" : strerror(-fd));
        p->failed++;
        goto out;
    }
    while (!atomic_load(&p->stop)) {
        char req[128], idtext[16];
        int64_t t0 = simproc_now_ms(), dt;
        int n = snprintf(req, sizeof(req),
                         "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":"
                         "\"status\"}\n",
                         ++id);

        snprintf(idtext, sizeof(idtext), "%d", id);
        if (send_all(fd, req, (size_t)n) != 0 ||
            !read_until(fd, buf, RESPONSE_MAX, &len, "\"result\":{\"link\"",
                        idtext, PROBE_MS)) {
            snprintf(p->why, sizeof(p->why),
                     "status request %d not answered within %d ms", id,
                     PROBE_MS);
            p->failed++;
            break;
        }
        dt = simproc_now_ms() - t0;
        if (dt > p->worst_ms)
            p->worst_ms = dt;
        p->answered++;
        usleep(PROBE_EVERY);
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static const cJSON *socket_stat(const cJSON *m, const char *key)
{
    const cJSON *v = itest_member(itest_result(m), "socket", key);

    ck_assert_msg(cJSON_IsNumber(v), "socket.%s is not a number", key);
    return v;
}

static long long stat_of(struct itest_client *c, const char *key)
{
    cJSON *m = itest_call(c, "status", NULL);
    long long v = (long long)socket_stat(m, key)->valuedouble;

    cJSON_Delete(m);
    return v;
}

/* Polls status until socket.key reaches at least want. */
static void wait_stat(struct itest_client *c, const char *key, long long want)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    long long v;

    while ((v = stat_of(c, key)) < want) {
        ck_assert_msg(simproc_now_ms() < end,
                      "socket.%s stayed at %lld, expected %lld", key, v, want);
        usleep(50000);
    }
}

/* Polls status until socket.clients is exactly want. */
static void wait_clients(struct itest_client *c, long long want)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    long long v;

    while ((v = stat_of(c, "clients")) != want) {
        ck_assert_msg(simproc_now_ms() < end,
                      "socket.clients stayed at %lld, expected %lld", v, want);
        usleep(50000);
    }
}

/* Reads fd until the server closes it; false if it stays open for
 * timeout_ms.  What arrives is thrown away. */
static bool drains_to_eof(int fd, int timeout_ms)
{
    static char sink[1 << 16];
    int64_t end = simproc_now_ms() + timeout_ms;

    while (simproc_now_ms() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t k;

        if (poll(&pfd, 1, 100) <= 0)
            continue;
        k = recv(fd, sink, sizeof(sink), 0);
        if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
            return true;
    }
    return false;
}

/* Appends tetherd's RSS after a phase to the notes in rss. */
static void note(char *rss, const char *phase)
{
    size_t n = strlen(rss);

    snprintf(rss + n, RSS_NOTES_MAX - n, "%s%s %ld", n > 0 ? ", " : "", phase,
             itest_proc_rss_kb(run.daemon));
}

static int connect_ok(void)
{
    int fd = itest_connect(run.sock);

    ck_assert_msg(fd >= 0, "cannot connect: %s", strerror(-fd));
    return fd;
}

/* Some requests tetherd answers from memory, some from the thread pool. */
static void warm_up(struct itest_client *c)
{
    static const char *const calls[][2] = {
        {"version", NULL},
        {"status", NULL},
        {"latest", "{\"n\":100}"},
        {"history", "{\"series\":\"adc\",\"limit\":500}"},
        {"history", "{\"series\":\"heap\"}"},
        {"alerts", NULL},
        {"watch", "{\"topics\":[\"samples\",\"heap\"]}"},
        {"unwatch", NULL},
    };

    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
            cJSON *m = itest_call(c, calls[i][0], calls[i][1]);

            itest_result(m);
            cJSON_Delete(m);
        }
}

/* Connections that come and go: 1 in 4 closes at once, 1 in 4 sends a
 * request and closes without reading the answer, 1 in 4 reads its answer
 * first, 1 in 4 closes in the middle of a line. */
static void come_and_go(void)
{
    static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":"
                              "\"latest\",\"params\":{\"n\":50}}\n";
    char *buf = malloc(RESPONSE_MAX);
    size_t len;

    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < CYCLES; i++) {
        int fd = connect_ok();

        switch (i % 4) {
        case 0:
            break;
        case 1:
            ck_assert_int_eq(send_all(fd, req, sizeof(req) - 1), 0);
            break;
        case 2:
            len = 0;
            ck_assert_int_eq(send_all(fd, req, sizeof(req) - 1), 0);
            ck_assert_msg(read_until(fd, buf, RESPONSE_MAX, &len,
                                     "\"result\":{", "7", WAIT_MS),
                          "connection %d got no answer", i);
            break;
        default:
            ck_assert_int_eq(send_all(fd, req, sizeof(req) / 2), 0);
            break;
        }
        close(fd);
    }
    free(buf);
}

/* One line over the cap: the answer is -32600 and then the end. */
static void too_long(bool with_newline)
{
    size_t n = LINE_CAP + 4096;
    char *big = malloc(n + 1), *buf = malloc(RESPONSE_MAX);
    size_t len = 0;
    int fd = connect_ok();

    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_nonnull(buf);
    memset(big, 'x', n);
    big[n] = '\n';
    /* The server may hang up before taking it all. */
    (void)send_all(fd, big, with_newline ? n + 1 : n);
    ck_assert_msg(read_until(fd, buf, RESPONSE_MAX, &len,
                             "\"code\":-32600,\"message\":\"request too long\"",
                             "null", WAIT_MS),
                  "no -32600 for a line over the cap");
    ck_assert_msg(drains_to_eof(fd, WAIT_MS), "still connected after it");
    close(fd);
    free(big);
    free(buf);
}

START_TEST(test_abuse_leaves_the_socket_answering_and_memory_bounded)
{
    const char *sim[] = {"--link",     run.tty, "--rate", "4000",
                         "--channels", "8",     NULL};
    const char *args[] = {"--config", "/dev/null", "--device",
                          run.tty,    "--db",      run.db,
                          "--socket", run.sock,    "--request-timeout-ms",
                          STALL_MS,   NULL};
    static const char half[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"meth";
    static const char watch[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
                                "\"watch\",\"params\":{\"topics\":"
                                "[\"samples\",\"heap\"]}}\n";
    static const char version[] = "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":"
                                  "\"version\"}\n";
    static int hold[CLIENTS_MAX];
    int fds0, fds1, nhold = 0, watchers[WATCHERS], extra, log;
    char rss[RSS_NOTES_MAX] = "", buf[4096];
    struct probe probe = {0};
    struct itest_client c;
    long long clients;
    long rss0, rss1;
    size_t len = 0;

    raise_fd_limit();
    run.sim = itest_start_sim(run.tty, sim, WAIT_MS);
    log = itest_open_log(run.log);
    run.daemon = simproc_spawn(itest_env_or("TETHERD", "build/tetherd"), args,
                               NULL, log, log);
    close(log);
    itest_client_open(&c, run.sock, WAIT_MS);
    warm_up(&c);
    ck_assert_int_eq(pthread_create(&probe.thread, NULL, probe_main, &probe),
                     0);
    wait_clients(&c, 2);
    sleep(1);
    rss0 = itest_proc_rss_kb(run.daemon);
    fds0 = itest_proc_fds(run.daemon);
    note(rss, "before");
    ck_assert_int_gt(rss0, 0);
    ck_assert_int_gt(fds0, 0);

    /* A thousand connections come and go. */
    come_and_go();
    note(rss, "cycles");

    /* Half a line, then nothing: each holds its slot until its time is
     * up, then gets an error and the end. */
    for (int i = 0; i < STALLERS; i++) {
        hold[i] = connect_ok();
        ck_assert_int_eq(send_all(hold[i], half, sizeof(half) - 1), 0);
    }
    wait_clients(&c, 2 + STALLERS);
    note(rss, "stallers");
    wait_stat(&c, "dropped_stalled", STALLERS);
    for (int i = 0; i < STALLERS; i++) {
        len = 0;
        ck_assert_msg(read_until(hold[i], buf, sizeof(buf), &len,
                                 "\"request not finished in time\"", "null",
                                 WAIT_MS),
                      "staller %d got no error", i);
        ck_assert_msg(drains_to_eof(hold[i], WAIT_MS),
                      "staller %d still connected", i);
        close(hold[i]);
    }
    wait_clients(&c, 2);

    /* Lines over the cap, ended or not. */
    too_long(true);
    too_long(false);
    ck_assert_int_eq(stat_of(&c, "too_long"), 2);
    note(rss, "over-long");

    /* Watchers that never read are cut off when their queue is full. */
    for (int i = 0; i < WATCHERS; i++) {
        watchers[i] = connect_ok();
        ck_assert_int_eq(send_all(watchers[i], watch, sizeof(watch) - 1), 0);
    }
    wait_stat(&c, "dropped_slow", WATCHERS);
    for (int i = 0; i < WATCHERS; i++) {
        ck_assert_msg(drains_to_eof(watchers[i], WAIT_MS),
                      "watcher %d still connected", i);
        close(watchers[i]);
    }
    note(rss, "watchers");

    /* Every slot taken: the next connection is closed at once, and the
     * clients already in are still served. */
    clients = stat_of(&c, "clients");
    while (nhold < CLIENTS_MAX && clients + nhold < CLIENTS_MAX)
        hold[nhold++] = connect_ok();
    wait_clients(&c, CLIENTS_MAX);
    ck_assert_int_eq(stat_of(&c, "rejected"), 0);
    extra = connect_ok();
    ck_assert_msg(drains_to_eof(extra, WAIT_MS),
                  "a connection over the limit was kept");
    close(extra);
    ck_assert_int_eq(stat_of(&c, "rejected"), 1);
    note(rss, "at the limit");

    /* The abusers go: the slots come back. */
    for (int i = 0; i < nhold; i++)
        close(hold[i]);
    wait_clients(&c, 2);
    extra = connect_ok();
    ck_assert_int_eq(send_all(extra, version, sizeof(version) - 1), 0);
    ck_assert(read_until(extra, buf, sizeof(buf), &len, "\"result\":{", "3",
                         WAIT_MS));
    close(extra);
    wait_clients(&c, 2);

    atomic_store(&probe.stop, true);
    pthread_join(probe.thread, NULL);
    ck_assert_msg(probe.failed == 0, "the well-behaved client: %s", probe.why);
    ck_assert_int_gt(probe.answered, 20);

    /* Descriptors back to what they were; memory within the bound. */
    for (int64_t end = simproc_now_ms() + WAIT_MS;
         (fds1 = itest_proc_fds(run.daemon)) != fds0 - 1 &&
         simproc_now_ms() < end;)
        usleep(50000);
    /* One less: the probe's connection is gone too. */
    ck_assert_int_eq(fds1, fds0 - 1);
    rss1 = itest_proc_rss_kb(run.daemon);
    note(rss, "after");
    fprintf(stderr,
            "abuse: tetherd %d -> %d descriptors; RSS in KiB: %s; slowest of "
            "%ld status answers %lld ms\n",
            fds0, fds1, rss, probe.answered, (long long)probe.worst_ms);
    ck_assert_msg(!RSS_CHECKED || rss1 <= rss0 + RSS_SLACK_KB,
                  "RSS grew from %ld to %ld KiB (%s)", rss0, rss1, rss);
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, 5000);
}
END_TEST

static Suite *abuse_suite(void)
{
    Suite *s = suite_create("abuse");
    TCase *tc = tcase_create("abuse");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc,
                   test_abuse_leaves_the_socket_answering_and_memory_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return itest_run(abuse_suite());
}
