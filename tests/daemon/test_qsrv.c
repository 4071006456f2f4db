/* The query server on a real libuv loop, driven with UV_RUN_NOWAIT by the
 * test thread, while plain non-blocking client sockets in the test talk to
 * it.  Responses are compared as exact lines: the server prints compactly
 * and in a fixed member order.  Every loop is closed with
 * uv_loop_close() == 0, which fails if a handle leaked. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "daemon_test_util.h"
#include "log.h"
#include "qsrv.h"

#define LINE_MAX_TEST 4096
#define WAIT_STEPS    5000 /* of 1 ms: how long an answer may take */
#define MANY_CLIENTS  300
#define KB_TEXT       1000 /* bytes of each string of the "size" method */

static char sock_path[108];
static int log_fd = -1;
static uv_loop_t loop;
static struct qsrv *srv;
static struct qsrv_call *stashed;
static bool admin_allowed;

static void setup(void)
{
    char log_path[PATH_MAX];

    snprintf(sock_path, sizeof(sock_path), "%s/q.sock", dtest_tmpdir());
    snprintf(log_path, sizeof(log_path), "%s.log", sock_path);
    log_fd = open(log_path, O_CREAT | O_WRONLY | O_APPEND, 0600);
    ck_assert_int_ge(log_fd, 0);
    log_set_fd(log_fd);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    srv = NULL;
    stashed = NULL;
    admin_allowed = false;
}

static void teardown(void)
{
    log_set_fd(STDERR_FILENO);
    close(log_fd);
}

/* --- Methods the tests register ----------------------------------- */

static int m_version(void *ctx, struct qsrv_call *call,
                     const struct qsrv_params *p)
{
    struct qsrv_json *j = qsrv_call_result(call);

    (void)ctx;
    (void)p;
    qsrv_json_object(j);
    qsrv_add_str(j, "version", "1.0");
    return 0;
}

static int m_echo(void *ctx, struct qsrv_call *call,
                  const struct qsrv_params *p)
{
    struct qsrv_json *j = qsrv_call_result(call);
    int64_t n;
    const char *s;
    bool b;
    double d;
    int r;

    (void)ctx;
    r = qsrv_param_int(p, "n", -1, &n);
    if (r == 0)
        r = qsrv_param_str(p, "s", "none", &s);
    if (r == 0)
        r = qsrv_param_bool(p, "b", false, &b);
    if (r == 0)
        r = qsrv_param_double(p, "d", 0.5, &d);
    if (r < 0)
        return r;
    qsrv_json_object(j);
    qsrv_add_int(j, "n", n);
    qsrv_add_str(j, "s", s);
    qsrv_add_bool(j, "b", b);
    qsrv_add_double(j, "d", d);
    qsrv_begin_array(j, "list");
    qsrv_add_int(j, NULL, 1);
    qsrv_begin_object(j, NULL);
    qsrv_add_null(j, "x");
    qsrv_end(j);
    qsrv_end(j);
    return 0;
}

static int m_later(void *ctx, struct qsrv_call *call,
                   const struct qsrv_params *p)
{
    (void)ctx;
    (void)p;
    stashed = call;
    return QSRV_LATER;
}

static int m_subscribe(void *ctx, struct qsrv_call *call,
                       const struct qsrv_params *p)
{
    int64_t topics;
    int r = qsrv_param_int(p, "topics", 0, &topics);

    (void)ctx;
    if (r < 0)
        return r;
    qsrv_subscribe(call, (unsigned)topics);
    return 0;
}

static int m_fail(void *ctx, struct qsrv_call *call,
                  const struct qsrv_params *p)
{
    (void)ctx;
    (void)call;
    (void)p;
    return QSRV_ELINK_DOWN;
}

/* Strings and numbers that need care in JSON. */
static void put_awkward(struct qsrv_json *j)
{
    qsrv_json_object(j);
    qsrv_add_str(j, "ctl", "\x01\x1f\b\f\n\r\t\"\\/\x7f");
    qsrv_add_str(j, "bytes", "caf\xc3\xa9 \xff\xfe");
    qsrv_add_str(j, "k\"e\ny", "");
    qsrv_add_str(j, "none", NULL);
    qsrv_begin_array(j, "d");
    qsrv_add_double(j, NULL, 0.1);
    qsrv_add_double(j, NULL, 1.0 / 3.0);
    qsrv_add_double(j, NULL, -2.5e-300);
    qsrv_add_double(j, NULL, 1e300);
    qsrv_add_double(j, NULL, 9007199254740993.0);
    qsrv_add_double(j, NULL, -42.0);
    qsrv_add_double(j, NULL, -0.0);
    qsrv_add_double(j, NULL, NAN);
    qsrv_add_double(j, NULL, INFINITY);
    qsrv_add_double(j, NULL, -INFINITY);
    qsrv_end(j);
    qsrv_begin_array(j, "i");
    qsrv_add_int(j, NULL, INT64_MIN);
    qsrv_add_int(j, NULL, INT64_MAX);
    qsrv_add_int(j, NULL, 0);
    qsrv_end(j);
    qsrv_begin_object(j, "o");
    qsrv_begin_array(j, "e");
    qsrv_end(j);
    qsrv_add_bool(j, "t", true);
    /* Left open: the reply closes what is still open. */
}

static int m_awkward(void *ctx, struct qsrv_call *call,
                     const struct qsrv_params *p)
{
    (void)ctx;
    (void)p;
    put_awkward(qsrv_call_result(call));
    return 0;
}

/* {"blob":[kb strings of KB_TEXT bytes]} */
static void put_blob(struct qsrv_json *j, int64_t kb)
{
    static char text[KB_TEXT + 1];

    memset(text, 'b', KB_TEXT);
    qsrv_json_object(j);
    qsrv_begin_array(j, "blob");
    for (int64_t i = 0; i < kb; i++)
        qsrv_add_str(j, NULL, text);
    qsrv_end(j);
}

static int m_size(void *ctx, struct qsrv_call *call,
                  const struct qsrv_params *p)
{
    int64_t kb;
    int r = qsrv_param_int(p, "kb", 1, &kb);

    (void)ctx;
    if (r < 0)
        return r;
    put_blob(qsrv_call_result(call), kb);
    return 0;
}

static bool admin_check(void *arg, uid_t uid, gid_t gid)
{
    (void)arg;
    (void)uid;
    (void)gid;
    return admin_allowed;
}

/* --- Harness ------------------------------------------------------ */

static void pump(void)
{
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void start_with(const struct qsrv_config *cfg, int fd)
{
    ck_assert_int_eq(qsrv_open(&srv, &loop, cfg, fd), 0);
    ck_assert_int_eq(qsrv_add_method(srv, "version", m_version, NULL, false),
                     0);
    ck_assert_int_eq(qsrv_add_method(srv, "echo", m_echo, NULL, false), 0);
    ck_assert_int_eq(qsrv_add_method(srv, "later", m_later, NULL, false), 0);
    ck_assert_int_eq(
        qsrv_add_method(srv, "subscribe", m_subscribe, NULL, false), 0);
    ck_assert_int_eq(qsrv_add_method(srv, "fail", m_fail, NULL, false), 0);
    ck_assert_int_eq(qsrv_add_method(srv, "admin", m_version, NULL, true), 0);
    ck_assert_int_eq(qsrv_add_method(srv, "awkward", m_awkward, NULL, false),
                     0);
    ck_assert_int_eq(qsrv_add_method(srv, "size", m_size, NULL, false), 0);
}

static void start(void)
{
    struct qsrv_config cfg = {.path = sock_path, .admin_check = admin_check};

    start_with(&cfg, -1);
}

static void on_done(void *arg)
{
    *(bool *)arg = true;
}

static void stop(void)
{
    bool done = false;

    qsrv_close(srv, on_done, &done);
    for (int i = 0; i < WAIT_STEPS && !done; i++)
        pump();
    ck_assert(done);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static struct qsrv_stats stats(void)
{
    struct qsrv_stats s;

    qsrv_get_stats(srv, &s);
    return s;
}

static int connect_client(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    pump(); /* accept now, so the backlog never fills */
    return fd;
}

/* Writes all of text, running the loop while the socket is full. */
static void send_text(int fd, const char *text, size_t n)
{
    size_t done = 0;
    int waits = 0;

    while (done < n) {
        ssize_t w =
            send(fd, text + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return; /* the server hung up; the reads will show why */
        ck_assert(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        ck_assert_int_lt(waits++, WAIT_STEPS);
        pump();
        usleep(1000);
    }
}

static void send_str(int fd, const char *text)
{
    send_text(fd, text, strlen(text));
}

/* Reads one line (without the newline) while running the loop; returns
 * false at end of stream.  Fails the test if nothing comes in time. */
static bool read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    int waits = 0;

    for (;;) {
        char ch;
        ssize_t r = recv(fd, &ch, 1, MSG_DONTWAIT);

        if (r == 1) {
            if (ch == '\n') {
                buf[n] = '\0';
                return true;
            }
            ck_assert_uint_lt(n, cap - 1);
            buf[n++] = ch;
            continue;
        }
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return false;
        ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
        ck_assert_int_lt(waits++, WAIT_STEPS);
        pump();
        usleep(1000);
    }
}

static void expect_line(int fd, const char *want)
{
    char buf[LINE_MAX_TEST];

    ck_assert_msg(read_line(fd, buf, sizeof(buf)), "no line, wanted %s", want);
    ck_assert_str_eq(buf, want);
}

static void rpc(int fd, const char *req, const char *want)
{
    send_str(fd, req);
    expect_line(fd, want);
}

/* Runs the loop a little and checks nothing arrived on fd. */
static void expect_silence(int fd)
{
    char ch;

    for (int i = 0; i < 20; i++) {
        pump();
        usleep(1000);
    }
    ck_assert_int_lt(recv(fd, &ch, 1, MSG_DONTWAIT), 0);
    ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
}

#define ERR(code, msg, id)                                                     \
    "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":" #code ",\"message\":\"" msg    \
    "\"},\"id\":" id "}"
#define VERSION_OK(id)                                                         \
    "{\"jsonrpc\":\"2.0\",\"result\":{\"version\":\"1.0\"},\"id\":" id "}"

/* --- Protocol ----------------------------------------------------- */

START_TEST(test_qsrv_echoes_number_and_string_ids)
{
    int fd;

    start();
    fd = connect_client();
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n",
        VERSION_OK("1"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":\"a-7\"}\n",
        VERSION_OK("\"a-7\""));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":null}\n",
        VERSION_OK("null"));
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":2,\"params\":"
        "{\"n\":9007199254740991,\"s\":\"h\\u00e9\\n\",\"b\":true,"
        "\"d\":2.25}}\n",
        "{\"jsonrpc\":\"2.0\",\"result\":{\"n\":9007199254740991,"
        "\"s\":\"h\xc3\xa9\\n\",\"b\":true,\"d\":2.25,"
        "\"list\":[1,{\"x\":null}]},\"id\":2}");
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":3}\n",
        "{\"jsonrpc\":\"2.0\",\"result\":{\"n\":-1,\"s\":\"none\","
        "\"b\":false,\"d\":0.5,\"list\":[1,{\"x\":null}]},\"id\":3}");
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"fail\",\"id\":4}\n",
        ERR(-32001, "link down", "4"));
    ck_assert_uint_eq(stats().requests, 6);
    ck_assert_uint_eq(stats().errors, 1);
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_repeats_each_id_as_the_client_wrote_it)
{
    int fd;

    start();
    fd = connect_client();
    /* Numbers a double cannot hold, or would print otherwise. */
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"version\","
        "\"id\":123456789012345678901234567890}\n",
        VERSION_OK("123456789012345678901234567890"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1.50}\n",
        VERSION_OK("1.50"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":-0}\n",
        VERSION_OK("-0"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\" : 1E+2 }\n",
        VERSION_OK("1E+2"));
    /* Escapes stay as written. */
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"version\","
        "\"id\":\"a\\u0062\\\"}{\"}\n",
        VERSION_OK("\"a\\u0062\\\"}{\""));
    /* The id of the request object, not one inside params; an escaped
     * key; the first of two. */
    rpc(fd,
        "{\"params\":{\"id\":9,\"x\":[{\"id\":8}]},\"jsonrpc\":\"2.0\","
        "\"method\":\"version\",\"id\":3}\n",
        VERSION_OK("3"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"\\u0069d\":7}\n",
        VERSION_OK("7"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"version\",\"id\":6}\n",
        VERSION_OK("5"));
    /* cJSON ends a key at an escaped NUL, so "id\u0000" is its "id":
     * the id echoed is that member's, not a later "id" that was never
     * checked (found by the query fuzzer: an object came back as id). */
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"id\\u0000\":\"x\",\"id\":{},"
        "\"method\":\"version\"}\n",
        VERSION_OK("\"x\""));
    /* Text that is not JSON (a leading zero, a raw tab in a string) is
     * printed from the value instead. */
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":012}\n",
        VERSION_OK("12"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":\"a\tb\"}\n",
        VERSION_OK("\"a\\tb\""));
    /* Errors carry it the same way. */
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"nope\","
        "\"id\":99999999999999999999}\n",
        ERR(-32601, "method not found", "99999999999999999999"));
    rpc(fd, "{\"jsonrpc\":\"1\",\"method\":\"version\",\"id\":\"x\"}\n",
        ERR(-32600, "invalid request", "\"x\""));
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_escapes_strings_and_prints_numbers_as_json)
{
    int fd;

    start();
    fd = connect_client();
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"awkward\",\"id\":1}\n",
        "{\"jsonrpc\":\"2.0\",\"result\":{"
        "\"ctl\":\"\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\x7f\","
        "\"bytes\":\"caf\xc3\xa9 \xff\xfe\","
        "\"k\\\"e\\ny\":\"\",\"none\":\"\","
        "\"d\":[0.1,0.33333333333333331,-2.5e-300,1e+300,9007199254740992,"
        "-42,0,null,null,null],"
        "\"i\":[-9223372036854775808,9223372036854775807,0],"
        "\"o\":{\"e\":[],\"t\":true}},\"id\":1}");
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_answers_parse_errors_with_a_null_id)
{
    int fd;

    start();
    fd = connect_client();
    rpc(fd, "{\"jsonrpc\":\n", ERR(-32700, "parse error", "null"));
    rpc(fd, "{} x\n", ERR(-32700, "parse error", "null"));
    rpc(fd, "\xff\xfe\n", ERR(-32700, "parse error", "null"));
    /* The client is still served afterwards; blank lines are ignored. */
    rpc(fd, "\r\n\n{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":5}\r\n",
        VERSION_OK("5"));
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_rejects_invalid_requests)
{
    int fd;

    start();
    fd = connect_client();
    rpc(fd, "[1]\n", ERR(-32600, "invalid request", "null"));
    rpc(fd, "\"x\"\n", ERR(-32600, "invalid request", "null"));
    rpc(fd, "{\"method\":\"version\",\"id\":1}\n",
        ERR(-32600, "invalid request", "1"));
    rpc(fd, "{\"jsonrpc\":\"1.0\",\"method\":\"version\",\"id\":2}\n",
        ERR(-32600, "invalid request", "2"));
    rpc(fd, "{\"jsonrpc\":2,\"method\":\"version\",\"id\":2}\n",
        ERR(-32600, "invalid request", "2"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":3}\n",
        ERR(-32600, "invalid request", "3"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"id\":3}\n",
        ERR(-32600, "invalid request", "3"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":{}}\n",
        ERR(-32600, "invalid request", "null"));
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":4}\n",
        ERR(-32601, "method not found", "4"));
    ck_assert_uint_eq(stats().errors, 9);
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_reports_wrong_param_types_as_invalid_params)
{
    int fd;

    start();
    fd = connect_client();
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1,"
        "\"params\":{\"n\":\"x\"}}\n",
        ERR(-32602, "invalid params: n must be an integer", "1"));
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":2,"
        "\"params\":{\"n\":1.5}}\n",
        ERR(-32602, "invalid params: n must be an integer", "2"));
    /* Out of int64_t's range: refused before any conversion. */
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":7,"
        "\"params\":{\"n\":1e300}}\n",
        ERR(-32602, "invalid params: n must be an integer", "7"));
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":8,"
        "\"params\":{\"n\":-9007199254740993e10}}\n",
        ERR(-32602, "invalid params: n must be an integer", "8"));
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":3,"
        "\"params\":{\"s\":1}}\n",
        ERR(-32602, "invalid params: s must be a string", "3"));
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":4,"
        "\"params\":{\"b\":0}}\n",
        ERR(-32602, "invalid params: b must be true or false", "4"));
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":5,"
        "\"params\":{\"d\":[]}}\n",
        ERR(-32602, "invalid params: d must be a number", "5"));
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":6,"
        "\"params\":[1]}\n",
        ERR(-32602, "invalid params: params must be an object", "6"));
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_sends_nothing_for_notifications)
{
    int fd;

    start();
    fd = connect_client();
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\"}\n");
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n");
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}\n");
    expect_silence(fd);
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":7}\n",
        VERSION_OK("7"));
    ck_assert_uint_eq(stats().requests, 4);
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_frames_requests_across_and_within_writes)
{
    const char *two = "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n"
                      "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":2}\n";
    const char *one = "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":3}\n";
    int fd;

    start();
    fd = connect_client();
    send_str(fd, two);
    expect_line(fd, VERSION_OK("1"));
    expect_line(fd, VERSION_OK("2"));
    /* One byte at a time, with the loop running between the bytes. */
    for (size_t i = 0; one[i] != '\0'; i++) {
        send_text(fd, one + i, 1);
        pump();
    }
    expect_line(fd, VERSION_OK("3"));
    close(fd);
    stop();
}
END_TEST

/* --- Untrusted clients ---------------------------------------------- */

START_TEST(test_qsrv_drops_a_client_after_an_over_long_line_only)
{
    size_t n = QSRV_REQUEST_MAX + 10;
    char *big = malloc(n);
    char buf[LINE_MAX_TEST];
    int bad, good;

    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    start();
    good = connect_client();
    bad = connect_client();
    /* Exactly QSRV_REQUEST_MAX bytes is still a request. */
    memset(big, ' ', QSRV_REQUEST_MAX);
    memcpy(big + QSRV_REQUEST_MAX - 2, "{}", 2);
    big[QSRV_REQUEST_MAX] = '\n';
    send_text(bad, big, QSRV_REQUEST_MAX + 1);
    expect_line(bad, ERR(-32600, "invalid request", "null"));
    /* One more byte is not. */
    memset(big, ' ', n);
    send_text(bad, big, n);
    expect_line(bad, ERR(-32600, "request too long", "null"));
    ck_assert(!read_line(bad, buf, sizeof(buf)));
    rpc(good, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n",
        VERSION_OK("1"));
    ck_assert_uint_eq(stats().too_long, 1);
    ck_assert_uint_eq(stats().clients_now, 1);
    close(bad);
    close(good);
    free(big);
    stop();
}
END_TEST

START_TEST(test_qsrv_refuses_admin_methods_to_non_admins)
{
    int fd;

    start();
    fd = connect_client();
    admin_allowed = false;
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"admin\",\"id\":1}\n",
        ERR(-32005, "permission denied", "1"));
    admin_allowed = true;
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"admin\",\"id\":2}\n",
        VERSION_OK("2"));
    close(fd);
    stop();
}
END_TEST

/* Finds a user who is in group g only as a supplementary member. */
static bool find_supplementary_member(uid_t *uid, gid_t *pgid, gid_t *g)
{
    struct group *gr;
    bool found = false;

    setgrent();
    while (!found && (gr = getgrent()) != NULL) {
        for (char **m = gr->gr_mem; *m != NULL; m++) {
            struct passwd *pw = getpwnam(*m);

            if (pw != NULL && pw->pw_uid != 0 && pw->pw_gid != gr->gr_gid) {
                *uid = pw->pw_uid;
                *pgid = pw->pw_gid;
                *g = gr->gr_gid;
                found = true;
                break;
            }
        }
    }
    endgrent();
    return found;
}

START_TEST(test_qsrv_decides_admin_rights_by_uid_and_groups)
{
    uid_t uid;
    gid_t pgid, g;

    ck_assert(qsrv_peer_is_admin(0, 0, false, 0));
    ck_assert(qsrv_peer_is_admin(0, 1234, true, 4242));
    ck_assert(!qsrv_peer_is_admin(65534, 65534, false, 0));
    ck_assert(qsrv_peer_is_admin(65534, 4242, true, 4242));
    ck_assert(!qsrv_peer_is_admin(65534, 65534, true, 4242));
    /* A uid with no user has no supplementary groups. */
    ck_assert(!qsrv_peer_is_admin(54321, 54321, true, 4242));
    if (find_supplementary_member(&uid, &pgid, &g)) {
        ck_assert(qsrv_peer_is_admin(uid, pgid, true, g));
        ck_assert(!qsrv_peer_is_admin(54321, pgid, true, g));
    }
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_qsrv_drops_a_subscriber_that_never_reads)
{
    char payload[4096];
    char buf[2 * LINE_MAX_TEST]; /* one notification */
    int slow, quick;
    int i;

    memset(payload, 'p', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    start();
    slow = connect_client();
    quick = connect_client();
    rpc(slow,
        "{\"jsonrpc\":\"2.0\",\"method\":\"subscribe\",\"id\":1,"
        "\"params\":{\"topics\":2}}\n",
        "{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":1}");
    /* Kernel buffers take some before the server queue starts to fill;
     * 10000 notifications of 4 KiB are far more than both. */
    for (i = 0; i < 10000 && stats().dropped_slow == 0; i++) {
        struct qsrv_json *j = qsrv_notify_params(srv);

        qsrv_json_object(j);
        qsrv_add_str(j, "blob", payload);
        qsrv_notify(srv, QSRV_TOPIC_HEAP, "heap");
        /* A topic nobody wants costs nothing. */
        qsrv_notify(srv, QSRV_TOPIC_ALERTS, "alert");
        pump();
    }
    ck_assert_uint_eq(stats().dropped_slow, 1);
    rpc(quick, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":2}\n",
        VERSION_OK("2"));
    /* What reached the slow client is whole notifications, then the end. */
    ck_assert(read_line(slow, buf, sizeof(buf)));
    ck_assert(strncmp(buf, "{\"jsonrpc\":\"2.0\",\"method\":\"heap\"", 32) ==
              0);
    close(slow);
    close(quick);
    stop();
}
END_TEST

/* Reads one line of up to cap bytes into a buffer of the caller's, with
 * the loop running; returns its length, or -1 at end of stream. */
static long read_big_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    int waits = 0;

    for (;;) {
        ssize_t r = recv(fd, buf + n, 1, MSG_DONTWAIT);

        if (r == 1 && buf[n] == '\n')
            return (long)n;
        if (r == 1) {
            ck_assert_uint_lt(++n, cap);
            continue;
        }
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return -1;
        ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
        ck_assert_int_lt(waits++, WAIT_STEPS);
        pump();
        usleep(1000);
    }
}

/* A request's cJSON tree comes from a small arena while it is parsed;
 * a larger tree takes the rest from malloc.  Both parts must read back
 * right, and the next request must find the arena empty again. */
START_TEST(test_qsrv_reads_requests_larger_than_the_parse_arena)
{
    enum { PAD = 3000, LONG_S = 20000 };
    size_t cap = 64 + PAD * 2 + 2 * LONG_S + 256, n = 0;
    char *req = malloc(cap), *want = malloc(cap), *big = malloc(LONG_S + 1);
    int fd;

    ck_assert(req != NULL && want != NULL && big != NULL);
    start();
    fd = connect_client();
    /* Many small nodes: the arena fills, and n and s come from malloc. */
    n += (size_t)snprintf(req + n, cap - n,
                          "{\"jsonrpc\":\"2.0\",\"method\":"
                          "\"echo\",\"params\":{\"pad\":[");
    for (int i = 0; i < PAD; i++)
        n += (size_t)snprintf(req + n, cap - n, i == 0 ? "0" : ",0");
    snprintf(req + n, cap - n, "],\"n\":7,\"s\":\"after\"},\"id\":1}\n");
    rpc(fd, req,
        "{\"jsonrpc\":\"2.0\",\"result\":{\"n\":7,\"s\":\"after\",\"b\":false,"
        "\"d\":0.5,\"list\":[1,{\"x\":null}]},\"id\":1}");
    /* One string larger than the whole arena. */
    memset(big, 'a', LONG_S);
    big[LONG_S] = '\0';
    snprintf(
        req, cap,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"s\":\"%s\"},"
        "\"id\":2}\n",
        big);
    snprintf(
        want, cap,
        "{\"jsonrpc\":\"2.0\",\"result\":{\"n\":-1,\"s\":\"%s\",\"b\":false,"
        "\"d\":0.5,\"list\":[1,{\"x\":null}]},\"id\":2}",
        big);
    send_str(fd, req);
    ck_assert_int_eq(read_big_line(fd, req, cap), (long)strlen(want));
    ck_assert(memcmp(req, want, strlen(want)) == 0);
    /* And a small one after them, all from the arena again. */
    rpc(fd,
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"s\":\"x\"},"
        "\"id\":3}\n",
        "{\"jsonrpc\":\"2.0\",\"result\":{\"n\":-1,\"s\":\"x\",\"b\":false,"
        "\"d\":0.5,\"list\":[1,{\"x\":null}]},\"id\":3}");
    close(fd);
    stop();
    free(big);
    free(want);
    free(req);
}
END_TEST

/* Runs the loop for about ms milliseconds. */
static void sleep_pumping(int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        pump();
        usleep(10000);
    }
}

/* Reads and discards whatever fd has for now. */
static void drain(int fd)
{
    char buf[LINE_MAX_TEST];

    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        continue;
}

START_TEST(test_qsrv_bounds_all_clients_output_by_dropping_the_longest)
{
    enum { TOTAL = 256 * 1024 };
    struct qsrv_config cfg = {.path = sock_path,
                              .admin_check = admin_check,
                              .output_total_max = TOTAL};
    const char *sub = "{\"jsonrpc\":\"2.0\",\"method\":\"subscribe\",\"id\":1,"
                      "\"params\":{\"topics\":2}}\n";
    const char *ok = "{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":1}";
    char payload[4096];
    int slow[2], quick;
    int i;

    memset(payload, 'p', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    start_with(&cfg, -1);
    for (i = 0; i < 2; i++) {
        slow[i] = connect_client();
        rpc(slow[i], sub, ok);
    }
    quick = connect_client();
    rpc(quick, sub, ok);
    /* The two that never read fill the kernel's buffers, then their
     * queues, each far below its own 1 MiB: only the total can stop
     * them.  The one that reads keeps up throughout. */
    for (i = 0; i < 20000 && stats().dropped_budget < 2; i++) {
        struct qsrv_json *j = qsrv_notify_params(srv);

        qsrv_json_object(j);
        qsrv_add_str(j, "blob", payload);
        qsrv_notify(srv, QSRV_TOPIC_HEAP, "heap");
        ck_assert_uint_le(stats().queued, TOTAL);
        pump();
        drain(quick);
    }
    ck_assert_uint_eq(stats().dropped_budget, 2);
    ck_assert_uint_eq(stats().dropped_slow, 0);
    drain(quick);
    rpc(quick, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":2}\n",
        VERSION_OK("2"));
    ck_assert_uint_eq(stats().clients_now, 1);
    ck_assert_uint_eq(stats().queued, 0);
    close(slow[0]);
    close(slow[1]);
    close(quick);
    stop();
}
END_TEST

START_TEST(test_qsrv_drops_a_client_that_leaves_a_line_unfinished)
{
    struct qsrv_config cfg = {
        .path = sock_path, .admin_check = admin_check, .partial_ms = 300};
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n";
    char buf[LINE_MAX_TEST];
    int stalled, silent, slow;

    start_with(&cfg, -1);
    stalled = connect_client();
    silent = connect_client();
    slow = connect_client();
    send_str(stalled, "{\"jsonrpc\":\"2.0\",");
    /* slow finishes its line in three parts, each well within the time
     * its line has; silent sends nothing, as a watcher may. */
    send_text(slow, req, 10);
    sleep_pumping(100);
    send_text(slow, req + 10, 10);
    pump();
    send_str(slow, req + 20);
    expect_line(slow, VERSION_OK("1"));
    /* Past the stalled client's time: an error, then the end. */
    ck_assert(read_line(stalled, buf, sizeof(buf)));
    ck_assert_str_eq(buf, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,"
                          "\"message\":\"request not finished in time\"},"
                          "\"id\":null}");
    ck_assert(!read_line(stalled, buf, sizeof(buf)));
    ck_assert_uint_eq(stats().dropped_stalled, 1);
    rpc(silent, req, VERSION_OK("1"));
    /* A line begun later gets its own full time, also when the read that
     * finishes one line brings the start of the next: 200 ms apart, the
     * two lines take 400 ms together, more than one line's time. */
    {
        char two[2 * sizeof("{\"jsonrpc\":\"2.0\",\"method\":\"version\","
                            "\"id\":1}\n")];
        size_t n = strlen(req);

        snprintf(two, sizeof(two), "%s%s", req, req);
        send_text(slow, two, 10);
        sleep_pumping(200);
        send_text(slow, two + 10, n - 10 + 10);
        expect_line(slow, VERSION_OK("1"));
        sleep_pumping(200);
        send_str(slow, two + n + 10);
        expect_line(slow, VERSION_OK("1"));
    }
    ck_assert_uint_eq(stats().dropped_stalled, 1);
    ck_assert_uint_eq(stats().clients_now, 2);
    close(stalled);
    close(silent);
    close(slow);
    stop();
}
END_TEST

START_TEST(test_qsrv_sends_an_answer_larger_than_the_socket_takes_at_once)
{
    size_t cap = 600 * (KB_TEXT + 3) + 256;
    char *buf = malloc(cap);
    long n;
    int fd;

    ck_assert_ptr_nonnull(buf);
    start();
    fd = connect_client();
    /* 600 kB: the kernel takes part at once, the loop writes the rest
     * while the client reads. */
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"size\",\"id\":1,"
                 "\"params\":{\"kb\":600}}\n");
    for (int i = 0; i < 10; i++)
        pump();
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":2}\n");
    n = read_big_line(fd, buf, cap);
    ck_assert_int_eq(n, 600 * (KB_TEXT + 3) - 1 + 45);
    ck_assert(strncmp(buf, "{\"jsonrpc\":\"2.0\",\"result\":{\"blob\":[\"bbb",
                      37) == 0);
    ck_assert(strncmp(buf + n - 14, "bbb\"]},\"id\":1}", 14) == 0);
    for (long i = 0; i < 600; i++)
        ck_assert(buf[35 + i * (KB_TEXT + 3)] == '"');
    /* The answer after it comes after it, whole. */
    expect_line(fd, VERSION_OK("2"));
    ck_assert_uint_eq(stats().dropped_slow, 0);
    free(buf);
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_drops_a_client_whose_answer_passes_the_output_bound)
{
    char buf[LINE_MAX_TEST];
    int big, other;

    start();
    big = connect_client();
    other = connect_client();
    send_str(big, "{\"jsonrpc\":\"2.0\",\"method\":\"size\",\"id\":1,"
                  "\"params\":{\"kb\":1100}}\n");
    ck_assert(!read_line(big, buf, sizeof(buf)));
    ck_assert_uint_eq(stats().dropped_slow, 1);
    rpc(other, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":2}\n",
        VERSION_OK("2"));
    close(big);
    close(other);
    stop();
}
END_TEST

START_TEST(test_qsrv_answers_three_hundred_clients_at_once)
{
    static int fds[MANY_CLIENTS];
    char req[128], want[128];

    start();
    for (int i = 0; i < MANY_CLIENTS; i++)
        fds[i] = connect_client();
    for (int i = 0; i < MANY_CLIENTS; i++) {
        snprintf(req, sizeof(req),
                 "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":%d}\n", i);
        send_str(fds[i], req);
    }
    for (int i = 0; i < MANY_CLIENTS; i++) {
        snprintf(want, sizeof(want),
                 "{\"jsonrpc\":\"2.0\",\"result\":{\"version\":\"1.0\"},"
                 "\"id\":%d}",
                 i);
        expect_line(fds[i], want);
    }
    ck_assert_uint_eq(stats().clients_now, MANY_CLIENTS);
    ck_assert_uint_eq(stats().accepted, MANY_CLIENTS);
    ck_assert_uint_eq(stats().rejected, 0);
    for (int i = 0; i < MANY_CLIENTS; i++)
        close(fds[i]);
    stop();
}
END_TEST

/* Both ends of every connection live in this process. */
#define OVER_CAP_FDS (2 * (QSRV_CLIENTS_MAX + 8) + 64)

START_TEST(test_qsrv_closes_connections_beyond_the_cap_at_once)
{
    static int fds[QSRV_CLIENTS_MAX + 3];
    struct rlimit rl;
    char buf[LINE_MAX_TEST];
    int n = QSRV_CLIENTS_MAX + 3;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < OVER_CAP_FDS && rl.rlim_max >= OVER_CAP_FDS) {
        rl.rlim_cur = OVER_CAP_FDS;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < OVER_CAP_FDS) {
        /* Not enough descriptors here to reach the cap. */
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        return;
    }
    start();
    for (int i = 0; i < n; i++)
        fds[i] = connect_client();
    for (int i = 0; i < 20; i++)
        pump();
    ck_assert_uint_eq(stats().clients_now, QSRV_CLIENTS_MAX);
    ck_assert_uint_eq(stats().rejected, 3);
    for (int i = QSRV_CLIENTS_MAX; i < n; i++)
        ck_assert(!read_line(fds[i], buf, sizeof(buf)));
    rpc(fds[0], "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n",
        VERSION_OK("1"));
    for (int i = 0; i < n; i++)
        close(fds[i]);
    stop();
}
END_TEST

/* --- Async calls ---------------------------------------------------- */

START_TEST(test_qsrv_sends_an_async_reply_after_the_handler_returned)
{
    struct qsrv_json *j;
    int fd;

    start();
    fd = connect_client();
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"later\",\"id\":9}\n");
    for (int i = 0; i < WAIT_STEPS && stashed == NULL; i++) {
        pump();
        usleep(1000);
    }
    ck_assert_ptr_nonnull(stashed);
    /* Other requests are answered meanwhile. */
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":10}\n",
        VERSION_OK("10"));
    ck_assert(!qsrv_call_orphaned(stashed));
    ck_assert_uint_eq(qsrv_call_uid(stashed), getuid());
    j = qsrv_call_result(stashed);
    qsrv_json_array(j);
    qsrv_add_int(j, NULL, -5);
    qsrv_reply(stashed);
    expect_line(fd, "{\"jsonrpc\":\"2.0\",\"result\":[-5],\"id\":9}");
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"later\",\"id\":11}\n");
    stashed = NULL;
    for (int i = 0; i < WAIT_STEPS && stashed == NULL; i++) {
        pump();
        usleep(1000);
    }
    ck_assert_ptr_nonnull(stashed);
    qsrv_reply_error(stashed, QSRV_ETIMEOUT, NULL);
    expect_line(fd, ERR(-32003, "timed out", "11"));
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_drops_a_late_reply_to_a_departed_client)
{
    struct qsrv_json *j;
    int fd;

    start();
    fd = connect_client();
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"later\",\"id\":1}\n");
    for (int i = 0; i < WAIT_STEPS && stashed == NULL; i++) {
        pump();
        usleep(1000);
    }
    ck_assert_ptr_nonnull(stashed);
    close(fd);
    for (int i = 0; i < WAIT_STEPS && stats().clients_now > 0; i++) {
        pump();
        usleep(1000);
    }
    ck_assert_uint_eq(stats().clients_now, 0);
    ck_assert(qsrv_call_orphaned(stashed));
    qsrv_subscribe(stashed, QSRV_TOPIC_MCU);
    j = qsrv_call_result(stashed);
    qsrv_json_object(j);
    qsrv_add_str(j, "late", "yes");
    qsrv_reply(stashed);
    pump();
    stop();
}
END_TEST

static void *build_awkward(void *arg)
{
    put_awkward(arg);
    return NULL;
}

/* Sends a "later" request and runs the loop until it is stashed. */
static void stash_later(int fd, int id)
{
    char req[128];

    snprintf(req, sizeof(req),
             "{\"jsonrpc\":\"2.0\",\"method\":\"later\",\"id\":%d}\n", id);
    stashed = NULL;
    send_str(fd, req);
    for (int i = 0; i < WAIT_STEPS && stashed == NULL; i++) {
        pump();
        usleep(1000);
    }
    ck_assert_ptr_nonnull(stashed);
}

START_TEST(test_qsrv_sends_a_result_built_on_another_thread)
{
    struct qsrv_json *j = qsrv_json_new(), *unused = qsrv_json_new();
    char want[LINE_MAX_TEST], got[LINE_MAX_TEST];
    pthread_t th;
    int fd;

    start();
    fd = connect_client();
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"awkward\",\"id\":4}\n");
    ck_assert(read_line(fd, want, sizeof(want)));
    stash_later(fd, 4);
    /* Whatever the call's own builder holds is replaced. */
    qsrv_json_array(qsrv_call_result(stashed));
    ck_assert_int_eq(pthread_create(&th, NULL, build_awkward, j), 0);
    /* The loop goes on meanwhile. */
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":5}\n",
        VERSION_OK("5"));
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    qsrv_reply_json(stashed, j);
    ck_assert(read_line(fd, got, sizeof(got)));
    ck_assert_str_eq(got, want);
    /* To a client that left, nothing; the builder is freed all the same
     * (the sanitizer build checks). */
    stash_later(fd, 6);
    close(fd);
    for (int i = 0; i < WAIT_STEPS && stats().clients_now > 0; i++) {
        pump();
        usleep(1000);
    }
    j = qsrv_json_new();
    put_blob(j, 3);
    qsrv_reply_json(stashed, j);
    put_blob(unused, 2);
    qsrv_json_free(unused);
    qsrv_json_free(NULL);
    stop();
}
END_TEST

START_TEST(test_qsrv_closes_with_clients_and_pending_calls)
{
    char buf[LINE_MAX_TEST];
    struct stat st;
    bool done = false;
    int fd;

    start();
    fd = connect_client();
    send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"later\",\"id\":1}\n");
    for (int i = 0; i < WAIT_STEPS && stashed == NULL; i++) {
        pump();
        usleep(1000);
    }
    ck_assert_ptr_nonnull(stashed);
    qsrv_close(srv, on_done, &done);
    for (int i = 0; i < WAIT_STEPS && !done; i++)
        pump();
    ck_assert(done);
    ck_assert_int_eq(stat(sock_path, &st), -1);
    ck_assert(!read_line(fd, buf, sizeof(buf)));
    /* The call outlives the server; completing it only frees it. */
    ck_assert(qsrv_call_orphaned(stashed));
    qsrv_reply_error(stashed, QSRV_EBUSY, "late");
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    close(fd);
}
END_TEST

/* --- The socket file ------------------------------------------------ */

START_TEST(test_qsrv_replaces_a_stale_socket_with_mode_0660)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd); /* leaves the socket file behind, like a crash */
    start();
    ck_assert_int_eq(stat(sock_path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0660);
    fd = connect_client();
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n",
        VERSION_OK("1"));
    close(fd);
    stop();
}
END_TEST

START_TEST(test_qsrv_refuses_unknown_groups_and_non_socket_files)
{
    struct qsrv_config cfg = {.path = sock_path,
                              .group = "tether-no-such-group"};
    struct qsrv *s = NULL;
    int fd;

    ck_assert_int_eq(qsrv_open(&s, &loop, &cfg, -1), -ENOENT);
    pump();
    cfg.group = NULL;
    cfg.admin_group = "tether-no-such-group";
    ck_assert_int_eq(qsrv_open(&s, &loop, &cfg, -1), -ENOENT);
    cfg.admin_group = NULL;
    fd = open(sock_path, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(qsrv_open(&s, &loop, &cfg, -1), -EEXIST);
    pump();
    ck_assert_int_eq(access(sock_path, F_OK), 0); /* left alone */
    cfg.path = "";
    ck_assert_int_eq(qsrv_open(&s, &loop, &cfg, -1), -EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_qsrv_chowns_the_socket_to_a_named_group)
{
    struct group *gr = getgrgid(getgid());
    struct qsrv_config cfg = {.path = sock_path};
    struct stat st;

    ck_assert_ptr_nonnull(gr);
    cfg.group = gr->gr_name;
    start_with(&cfg, -1);
    ck_assert_int_eq(stat(sock_path, &st), 0);
    ck_assert_uint_eq(st.st_gid, getgid());
    stop();
}
END_TEST

START_TEST(test_qsrv_adopts_an_already_listening_fd)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct qsrv_config cfg = {.path = NULL};
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    int fd;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 16), 0);
    start_with(&cfg, lfd);
    fd = connect_client();
    rpc(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":1}\n",
        VERSION_OK("1"));
    close(fd);
    stop();
    /* The file belongs to whoever made it (systemd). */
    ck_assert_int_eq(access(sock_path, F_OK), 0);
}
END_TEST

static Suite *qsrv_suite(void)
{
    Suite *s = suite_create("qsrv");
    TCase *proto = tcase_create("protocol");
    TCase *untrusted = tcase_create("untrusted clients");
    TCase *async = tcase_create("async calls");
    TCase *file = tcase_create("socket file");

    tcase_add_checked_fixture(proto, setup, teardown);
    tcase_set_timeout(proto, 30);
    tcase_add_test(proto, test_qsrv_echoes_number_and_string_ids);
    tcase_add_test(proto, test_qsrv_repeats_each_id_as_the_client_wrote_it);
    tcase_add_test(proto, test_qsrv_escapes_strings_and_prints_numbers_as_json);
    tcase_add_test(proto, test_qsrv_answers_parse_errors_with_a_null_id);
    tcase_add_test(proto, test_qsrv_rejects_invalid_requests);
    tcase_add_test(proto,
                   test_qsrv_reports_wrong_param_types_as_invalid_params);
    tcase_add_test(proto, test_qsrv_sends_nothing_for_notifications);
    tcase_add_test(proto, test_qsrv_frames_requests_across_and_within_writes);
    tcase_add_test(proto, test_qsrv_reads_requests_larger_than_the_parse_arena);
    tcase_add_test(proto,
                   test_qsrv_drops_a_client_that_leaves_a_line_unfinished);
    suite_add_tcase(s, proto);

    tcase_add_checked_fixture(untrusted, setup, teardown);
    tcase_set_timeout(untrusted, 60);
    tcase_add_test(untrusted,
                   test_qsrv_drops_a_client_after_an_over_long_line_only);
    tcase_add_test(untrusted, test_qsrv_refuses_admin_methods_to_non_admins);
    tcase_add_test(untrusted, test_qsrv_decides_admin_rights_by_uid_and_groups);
    tcase_add_test(untrusted, test_qsrv_drops_a_subscriber_that_never_reads);
    tcase_add_test(untrusted,
                   test_qsrv_bounds_all_clients_output_by_dropping_the_longest);
    tcase_add_test(untrusted, test_qsrv_answers_three_hundred_clients_at_once);
    tcase_add_test(
        untrusted,
        test_qsrv_sends_an_answer_larger_than_the_socket_takes_at_once);
    tcase_add_test(
        untrusted,
        test_qsrv_drops_a_client_whose_answer_passes_the_output_bound);
    tcase_add_test(untrusted,
                   test_qsrv_closes_connections_beyond_the_cap_at_once);
    suite_add_tcase(s, untrusted);

    tcase_add_checked_fixture(async, setup, teardown);
    tcase_set_timeout(async, 30);
    tcase_add_test(async,
                   test_qsrv_sends_an_async_reply_after_the_handler_returned);
    tcase_add_test(async, test_qsrv_drops_a_late_reply_to_a_departed_client);
    tcase_add_test(async, test_qsrv_sends_a_result_built_on_another_thread);
    tcase_add_test(async, test_qsrv_closes_with_clients_and_pending_calls);
    suite_add_tcase(s, async);

    tcase_add_checked_fixture(file, setup, teardown);
    tcase_set_timeout(file, 30);
    tcase_add_test(file, test_qsrv_replaces_a_stale_socket_with_mode_0660);
    tcase_add_test(file, test_qsrv_refuses_unknown_groups_and_non_socket_files);
    tcase_add_test(file, test_qsrv_chowns_the_socket_to_a_named_group);
    tcase_add_test(file, test_qsrv_adopts_an_already_listening_fd);
    suite_add_tcase(s, file);
    return s;
}

int main(void)
{
    return dtest_run(qsrv_suite());
}
