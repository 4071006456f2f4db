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
#include <ftw.h>
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

#include "simproc.h"

#define WAIT_MS    10000
#define DIR_MAX    64 /* short enough for a Unix socket path inside it */
#define FILE_MAX   (DIR_MAX + 24)
#define LINE_MAX_  (1 << 20) /* longest response line read */
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

/* One connection with its read buffer. */
struct client {
    int fd;
    char *buf;
    size_t len;
    int next_id;
};

static struct run run;

static const char *env_or(const char *name, const char *def)
{
    const char *p = getenv(name);

    return p ? p : def;
}

static int remove_one(const char *path, const struct stat *st, int type,
                      struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void start_sim(void)
{
    char ch[8];
    const char *args[] = {"--link", run.tty, "--channels", ch, NULL};
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int64_t end = simproc_now_ms() + WAIT_MS;
    struct stat st;

    snprintf(ch, sizeof(ch), "%d", CHANNELS);
    unlink(run.tty);
    run.sim = simproc_spawn(env_or("TETHER_SIM", "build/tether-sim"), args,
                            NULL, null, null);
    close(null);
    while (lstat(run.tty, &st) != 0 && simproc_now_ms() < end)
        usleep(10000);
    ck_assert_msg(lstat(run.tty, &st) == 0, "tether-sim made no pty link");
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    /* The socket's group is one an unprivileged test peer can hold. */
    const char *args[] = {"--config",       "/dev/null", "--device", run.tty,
                          "--db",           run.db,      "--socket", run.sock,
                          "--socket-group", PEER_GROUP,  "-v",       NULL};
    int log;

    memset(&run, 0, sizeof(run));
    snprintf(run.dir, sizeof(run.dir), "%.40s/tq-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(run.dir));
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.sock, sizeof(run.sock), "%s/q.sock", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
    start_sim();
    log = open(run.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ck_assert_int_ge(log, 0);
    run.daemon =
        simproc_spawn(env_or("TETHERD", "build/tetherd"), args, NULL, log, log);
    close(log);
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

/* ---- The client side ---- */

static void client_open(struct client *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int64_t end = simproc_now_ms() + WAIT_MS;

    memset(c, 0, sizeof(*c));
    c->buf = malloc(LINE_MAX_);
    ck_assert_ptr_nonnull(c->buf);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", run.sock);
    do {
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(c->fd, 0);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return;
        close(c->fd);
        usleep(20000);
    } while (simproc_now_ms() < end);
    ck_abort_msg("cannot connect to %s", run.sock);
}

static void client_close(struct client *c)
{
    close(c->fd);
    free(c->buf);
}

static void send_all(struct client *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* the server hung up; the read says so */
        p += k;
        n -= (size_t)k;
    }
}

/* Reads one line within timeout_ms; returns the parsed JSON (caller
 * deletes), or NULL on timeout or end of stream. */
static cJSON *read_msg(struct client *c, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;

    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int64_t left;
        ssize_t k;

        if (nl != NULL) {
            cJSON *m;

            *nl = '\0';
            m = cJSON_Parse(c->buf);
            c->len -= (size_t)(nl + 1 - c->buf);
            memmove(c->buf, nl + 1, c->len);
            ck_assert_ptr_nonnull(m);
            return m;
        }
        left = end - simproc_now_ms();
        if (left <= 0 || c->len >= LINE_MAX_ - 1)
            return NULL;
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        k = recv(c->fd, c->buf + c->len, LINE_MAX_ - 1 - c->len, 0);
        if (k <= 0)
            return NULL;
        c->len += (size_t)k;
    }
}

/* Sends a request and returns its response (notifications skipped). */
static cJSON *call(struct client *c, const char *method, const char *params)
{
    char line[4096];
    int id = ++c->next_id;
    int64_t end = simproc_now_ms() + WAIT_MS;

    snprintf(line, sizeof(line),
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\"%s%s}\n", id,
             method, params ? ",\"params\":" : "", params ? params : "");
    send_all(c, line, strlen(line));
    while (simproc_now_ms() < end) {
        cJSON *m = read_msg(c, (int)(end - simproc_now_ms()));
        cJSON *mid;

        ck_assert_msg(m != NULL, "no answer to %s", method);
        mid = cJSON_GetObjectItem(m, "id");
        if (cJSON_IsNumber(mid) && mid->valueint == id)
            return m;
        cJSON_Delete(m);
    }
    ck_abort_msg("no answer to %s", method);
    return NULL;
}

static const cJSON *result(const cJSON *m)
{
    const cJSON *r = cJSON_GetObjectItem(m, "result");

    ck_assert_msg(r != NULL, "error answer: %s",
                  cJSON_PrintUnformatted(cJSON_GetObjectItem(m, "error")));
    return r;
}

static int error_code(const cJSON *m)
{
    const cJSON *e = cJSON_GetObjectItem(m, "error");

    ck_assert_ptr_nonnull(e);
    return cJSON_GetObjectItem(e, "code")->valueint;
}

static const cJSON *path(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItem(o, a);

    ck_assert_msg(v != NULL, "no %s", a);
    if (b != NULL) {
        v = cJSON_GetObjectItem(v, b);
        ck_assert_msg(v != NULL, "no %s.%s", a, b);
    }
    return v;
}

/* Connects and waits until status says connected and a heap report is
 * in. */
static void wait_ready(struct client *c)
{
    int64_t end = simproc_now_ms() + WAIT_MS;

    client_open(c);
    while (simproc_now_ms() < end) {
        cJSON *m = call(c, "status", NULL);
        const cJSON *r = result(m);
        bool ok =
            strcmp(path(r, "link", "state")->valuestring, "connected") == 0 &&
            cJSON_IsObject(path(r, "heap", NULL)) &&
            cJSON_IsObject(path(r, "mcu", NULL));

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
    struct client c;
    cJSON *m;
    const cJSON *r, *pts, *chans;

    wait_ready(&c);
    m = call(&c, "version", NULL);
    r = result(m);
    ck_assert_str_eq(path(r, "daemon", NULL)->valuestring, "0.1.0");
    ck_assert_int_eq(path(r, "query_protocol", NULL)->valueint, 1);
    ck_assert_int_eq(path(r, "wire_protocol", NULL)->valueint, 1);
    cJSON_Delete(m);

    m = call(&c, "status", NULL);
    r = result(m);
    for (size_t i = 0; i < sizeof(status_keys) / sizeof(status_keys[0]); i++)
        path(r, status_keys[i][0], status_keys[i][1]);
    ck_assert(cJSON_IsArray(path(r, "alerts", "active")));
    ck_assert(cJSON_IsNumber(path(r, "link", "last_frame_age_ms")));
    ck_assert_int_lt(path(r, "link", "last_frame_age_ms")->valueint, 5000);
    ck_assert(cJSON_IsNumber(path(r, "alerts", "heap_low_threshold")));
    ck_assert_int_gt(path(r, "alerts", "heap_low_threshold")->valueint, 0);
    cJSON_Delete(m);

    m = call(&c, "latest", "{\"n\":3}");
    r = result(m);
    ck_assert(cJSON_IsFalse(path(r, "stale", NULL)));
    chans = path(r, "channels", NULL);
    ck_assert_int_eq(cJSON_GetArraySize(chans), CHANNELS);
    ck_assert_int_eq(
        cJSON_GetArraySize(path(cJSON_GetArrayItem(chans, 0), "samples", NULL)),
        3);
    cJSON_Delete(m);

    /* Commits come every 100 ms: two seconds in, there is history. */
    usleep(2000000);
    m = call(&c, "history", "{\"series\":\"adc\",\"limit\":30}");
    r = result(m);
    pts = path(r, "points", NULL);
    ck_assert_int_gt(cJSON_GetArraySize(pts), 0);
    path(cJSON_GetArrayItem(pts, 0), "value", NULL);
    ck_assert(cJSON_IsNumber(path(r, "next_after_us", NULL)));
    cJSON_Delete(m);

    m = call(&c, "history",
             "{\"series\":\"adc\",\"bucket_us\":1000000,\"channels\":[0]}");
    r = result(m);
    pts = path(r, "points", NULL);
    ck_assert_int_gt(cJSON_GetArraySize(pts), 0);
    ck_assert_int_gt(path(cJSON_GetArrayItem(pts, 0), "count", NULL)->valueint,
                     0);
    ck_assert(cJSON_IsNull(path(r, "next_after_us", NULL)));
    cJSON_Delete(m);

    /* An hour in at most ten buckets: 3600 s / 9 = 400 s, rounded to 420 s
     * (whole minutes, so served from the 1-minute rollups). */
    m = call(&c, "history",
             "{\"series\":\"adc\",\"buckets\":10,\"channels\":[0]}");
    r = result(m);
    ck_assert_int_eq((long long)path(r, "bucket_us", NULL)->valuedouble,
                     420000000LL);
    ck_assert_int_ge(cJSON_GetArraySize(path(r, "points", NULL)), 1);
    ck_assert_int_le(cJSON_GetArraySize(path(r, "points", NULL)), 10);
    cJSON_Delete(m);
    m = call(&c, "history", "{\"buckets\":10,\"bucket_us\":1000000}");
    ck_assert_int_eq(error_code(m), -32602);
    cJSON_Delete(m);
    m = call(&c, "history", "{\"buckets\":1}");
    ck_assert_int_eq(error_code(m), -32602);
    cJSON_Delete(m);
    m = call(&c, "history", "{\"buckets\":5001}");
    ck_assert_int_eq(error_code(m), -32602);
    cJSON_Delete(m);

    m = call(&c, "history", "{\"series\":\"heap\"}");
    ck_assert_int_gt(cJSON_GetArraySize(path(result(m), "points", NULL)), 0);
    cJSON_Delete(m);

    m = call(&c, "history", "{\"series\":\"nope\"}");
    ck_assert_int_eq(error_code(m), -32602);
    cJSON_Delete(m);

    m = call(&c, "alerts", NULL);
    r = result(m);
    ck_assert(cJSON_IsArray(path(r, "active", NULL)));
    ck_assert(cJSON_IsArray(path(r, "history", NULL)));
    cJSON_Delete(m);

    /* flash is tested in test_flash.c; here only that it is there. */
    m = call(&c, "flash", NULL);
    ck_assert_int_eq(error_code(m), -32602);
    cJSON_Delete(m);
    client_close(&c);
}
END_TEST

START_TEST(test_query_watch_streams_samples_and_heap)
{
    struct client c;
    bool samples = false, heap = false;
    int64_t end;
    cJSON *m;

    wait_ready(&c);
    m = call(&c, "watch", "{\"topics\":[\"samples\",\"heap\"]}");
    ck_assert_int_eq(cJSON_GetArraySize(path(result(m), "topics", NULL)), 2);
    cJSON_Delete(m);
    end = simproc_now_ms() + WAIT_MS;
    while (!(samples && heap) && simproc_now_ms() < end) {
        const cJSON *meth, *p;

        m = read_msg(&c, (int)(end - simproc_now_ms()));
        if (m == NULL)
            break;
        meth = cJSON_GetObjectItem(m, "method");
        p = cJSON_GetObjectItem(m, "params");
        if (cJSON_IsString(meth) && strcmp(meth->valuestring, "samples") == 0) {
            const cJSON *v = path(p, "values", NULL);

            ck_assert_int_eq(cJSON_GetArraySize(path(p, "channels", NULL)),
                             CHANNELS);
            ck_assert_int_eq(cJSON_GetArraySize(v),
                             path(p, "scans", NULL)->valueint);
            ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetArrayItem(v, 0)),
                             CHANNELS);
            samples = true;
        } else if (cJSON_IsString(meth) &&
                   strcmp(meth->valuestring, "heap") == 0) {
            ck_assert_int_gt(path(p, "total", NULL)->valueint, 0);
            heap = true;
        }
        cJSON_Delete(m);
    }
    ck_assert_msg(samples && heap, "samples %d heap %d", samples, heap);
    client_close(&c);
}
END_TEST

START_TEST(test_query_send_reports_ack_nack_and_link_down)
{
    struct client c;
    cJSON *m;
    int64_t end;
    int code = 0;

    wait_ready(&c);
    m = call(&c, "send", "{\"command\":\"set_rate\",\"value\":50}");
    ck_assert(cJSON_IsTrue(path(result(m), "ack", NULL)));
    cJSON_Delete(m);
    m = call(&c, "send", "{\"command\":\"set_rate\",\"value\":0}");
    ck_assert(cJSON_IsFalse(path(result(m), "ack", NULL)));
    ck_assert_str_eq(path(result(m), "nack", NULL)->valuestring, "bad_value");
    cJSON_Delete(m);
    m = call(&c, "send", "{\"command\":\"launch\"}");
    ck_assert_int_eq(error_code(m), -32602);
    cJSON_Delete(m);

    kill(run.sim, SIGKILL);
    simproc_wait_exit(run.sim, 2000);
    run.sim = 0;
    /* The link notices the pty going away within its retry period. */
    end = simproc_now_ms() + WAIT_MS;
    while (code != -32001 && simproc_now_ms() < end) {
        m = call(&c, "send", "{\"command\":\"ping\",\"timeout_ms\":200}");
        code = cJSON_GetObjectItem(m, "error") ? error_code(m) : 0;
        cJSON_Delete(m);
        if (code != -32001)
            usleep(100000);
    }
    ck_assert_int_eq(code, -32001);
    client_close(&c);
}
END_TEST

START_TEST(test_query_send_times_out_when_the_mcu_does_not_answer)
{
    struct client c;
    cJSON *m;

    wait_ready(&c);
    /* A stopped simulator still holds its pty open, so the link stays up
     * until it goes stale, while nothing answers the command. */
    ck_assert_int_eq(kill(run.sim, SIGSTOP), 0);
    m = call(&c, "send", "{\"command\":\"ping\",\"timeout_ms\":300}");
    ck_assert_int_eq(error_code(m), -32003);
    cJSON_Delete(m);
    kill(run.sim, SIGCONT);
    client_close(&c);
}
END_TEST

/* In a child that has become PEER_UID with group gid: connects, asks for
 * status and for a send, and exits with a bit mask of what happened:
 * 1 connected, 2 status answered, 4 send refused with -32005, 8 send
 * answered otherwise. */
static int peer_child(gid_t gid)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    static const char req[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"send\","
        "\"params\":{\"command\":\"ping\"}}\n";
    char buf[65536];
    size_t len = 0;
    int fd, bits = 0, answers = 0;
    int64_t end = simproc_now_ms() + WAIT_MS;

    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(PEER_UID) != 0)
        return 64;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", run.sock);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
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
    struct client c;

    if (getuid() != 0) {
        /* Becoming another user takes root; make test runs as root. */
        fprintf(stderr, "test_query: not root, peer test not run\n");
        return;
    }
    wait_ready(&c);
    client_close(&c);
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
    struct client a, b;
    char *big;
    cJSON *m;

    wait_ready(&a);
    client_open(&b);
    send_all(&a, junk, strlen(junk));
    m = read_msg(&a, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(error_code(m), -32700);
    cJSON_Delete(m);
    m = call(&a, "version", NULL);
    result(m);
    cJSON_Delete(m);

    big = malloc(LONG_LINE + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', LONG_LINE);
    big[LONG_LINE] = '\n';
    send_all(&a, big, LONG_LINE + 1);
    free(big);
    m = read_msg(&a, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(error_code(m), -32600);
    cJSON_Delete(m);
    /* Then the server hangs up on that client... */
    ck_assert_ptr_null(read_msg(&a, WAIT_MS));
    /* ...and still serves the other. */
    m = call(&b, "version", NULL);
    result(m);
    cJSON_Delete(m);
    client_close(&a);
    client_close(&b);
}
END_TEST

/* Runs tetherctl with args against the daemon's socket; returns its exit
 * status and puts what it printed in out. */
static int tetherctl(const char *const *args, char *out, size_t cap)
{
    const char *argv[16] = {"--socket", run.sock};
    char file[FILE_MAX];
    size_t n = 2;
    int fd, status;
    FILE *f;

    for (size_t i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(file, sizeof(file), "%s/ctl.out", run.dir);
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    status =
        simproc_wait_exit(simproc_spawn(env_or("TETHERCTL", "build/tetherctl"),
                                        argv, NULL, fd, fd),
                          10000);
    close(fd);
    f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    ck_assert(status >= 0 && WIFEXITED(status));
    return WEXITSTATUS(status);
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
    struct client c;
    char out[16384];

    wait_ready(&c);
    client_close(&c);
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
    SRunner *sr = srunner_create(query_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
