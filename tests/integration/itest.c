/* Helpers shared by the end-to-end tests that run tetherd (itest.h).
 *
 * The daemon under test is a separate process that may be slow, stopped
 * or gone: every read from it polls with a deadline, every line read has
 * a cap, and a server hanging up is something a test may want to see, so
 * sending reports it instead of failing.  Files the daemon writes (its log,
 * its database) are read while it writes them: a missing log reads as
 * empty, and the database is opened read-only with a busy timeout. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#define REQUEST_MAX 4096 /* one request line */
#define KILL_MS     2000

/* ---- Environment, files and processes ---- */

const char *itest_env_or(const char *name, const char *def)
{
    const char *p = getenv(name);

    return p != NULL && p[0] != '\0' ? p : def;
}

void itest_make_dir(char *dir, size_t cap, const char *prefix)
{
    snprintf(dir, cap, "%.40s/%sXXXXXX", itest_env_or("TMPDIR", "/tmp"),
             prefix);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int remove_one(const char *path, const struct stat *st, int type,
                      struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

void itest_remove_tree(const char *dir)
{
    nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

void itest_write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
}

void itest_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    buf[0] = '\0';
    if (f == NULL)
        return;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

int itest_open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    ck_assert_msg(fd >= 0, "cannot open %s", path);
    return fd;
}

int itest_wait_log(const char *path, const char *needle, int timeout_ms)
{
    /* Static: a megabyte is too much for a test's stack. */
    static char text[ITEST_LOG_MAX];
    int64_t end = simproc_now_ms() + timeout_ms;

    do {
        itest_read_file(path, text, sizeof(text));
        if (strstr(text, needle) != NULL)
            return 1;
        usleep(50000);
    } while (simproc_now_ms() < end);
    return 0;
}

void itest_wait_link(const char *path, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    struct stat st;

    while (lstat(path, &st) != 0 && simproc_now_ms() < end)
        usleep(10000);
    ck_assert_msg(lstat(path, &st) == 0, "no pty link %s", path);
}

pid_t itest_start_sim(const char *link, const char *const *args, int timeout_ms)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_t pid;

    ck_assert_int_ge(null, 0);
    pid = simproc_spawn(itest_env_or("TETHER_SIM", "build/tether-sim"), args,
                        NULL, null, null);
    close(null);
    itest_wait_link(link, timeout_ms);
    return pid;
}

void itest_kill(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    simproc_wait_exit(*pid, KILL_MS);
    *pid = 0;
}

void itest_stop_cleanly(pid_t *pid, int timeout_ms)
{
    int status;

    ck_assert_int_eq(kill(*pid, SIGTERM), 0);
    status = simproc_wait_exit(*pid, timeout_ms);
    *pid = 0;
    ck_assert_msg(status >= 0, "it did not exit within %d ms of SIGTERM",
                  timeout_ms);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}

int itest_tetherctl(const char *sock, const char *out_file,
                    const char *const *args, char *out, size_t cap,
                    int timeout_ms)
{
    const char *argv[ITEST_ARGV_MAX] = {"--socket", sock};
    size_t n = 2;
    int fd, status;

    for (size_t i = 0; args[i] != NULL && n < ITEST_ARGV_MAX - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fd = open(out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "cannot open %s", out_file);
    status = simproc_wait_exit(
        simproc_spawn(itest_env_or("TETHERCTL", "build/tetherctl"), argv, NULL,
                      fd, fd),
        timeout_ms);
    close(fd);
    itest_read_file(out_file, out, cap);
    ck_assert_msg(status >= 0 && WIFEXITED(status), "tetherctl hung: %s", out);
    return WEXITSTATUS(status);
}

int itest_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

long itest_proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int itest_proc_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- The query socket ---- */

int itest_connect(const char *sock)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, err;

    if (strlen(sock) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

void itest_client_open(struct itest_client *c, const char *sock, int wait_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int64_t end = simproc_now_ms() + wait_ms;

    memset(c, 0, sizeof(*c));
    c->wait_ms = wait_ms;
    c->buf = malloc(ITEST_LINE_MAX);
    ck_assert_ptr_nonnull(c->buf);
    ck_assert_uint_lt(strlen(sock), sizeof(sa.sun_path));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    do {
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(c->fd, 0);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return;
        close(c->fd);
        usleep(20000);
    } while (simproc_now_ms() < end);
    ck_abort_msg("cannot connect to %s", sock);
}

int itest_peer_connect(const char *sock, uid_t uid, gid_t gid)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        return -EPERM;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -ECONNREFUSED;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -ECONNREFUSED;
    }
    return fd;
}

void itest_client_close(struct itest_client *c)
{
    close(c->fd);
    free(c->buf);
    c->buf = NULL;
}

int itest_send_all(struct itest_client *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

cJSON *itest_read_msg(struct itest_client *c, int timeout_ms)
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
            ck_assert_msg(m != NULL, "a response line is not JSON");
            return m;
        }
        left = end - simproc_now_ms();
        if (left <= 0 || c->len >= ITEST_LINE_MAX - 1)
            return NULL;
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        k = recv(c->fd, c->buf + c->len, ITEST_LINE_MAX - 1 - c->len, 0);
        if (k <= 0)
            return NULL;
        c->len += (size_t)k;
    }
}

cJSON *itest_call(struct itest_client *c, const char *method,
                  const char *params)
{
    char line[REQUEST_MAX];
    int id = ++c->next_id;
    int64_t end = simproc_now_ms() + c->wait_ms;
    int n;

    n = snprintf(line, sizeof(line),
                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\"%s%s}\n", id,
                 method, params ? ",\"params\":" : "", params ? params : "");
    ck_assert_msg(n > 0 && (size_t)n < sizeof(line), "request too long");
    ck_assert_msg(itest_send_all(c, line, (size_t)n) == 0,
                  "the server hung up before %s", method);
    while (simproc_now_ms() < end) {
        cJSON *m = itest_read_msg(c, (int)(end - simproc_now_ms()));
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

const cJSON *itest_result(const cJSON *m)
{
    const cJSON *r = cJSON_GetObjectItem(m, "result");

    /* The printed error leaks, but only on the way out of a failed test. */
    ck_assert_msg(r != NULL, "error answer: %s",
                  cJSON_PrintUnformatted(cJSON_GetObjectItem(m, "error")));
    return r;
}

int itest_error_code(const cJSON *m)
{
    const cJSON *e = cJSON_GetObjectItem(m, "error");

    ck_assert_msg(e != NULL, "not an error: %s", cJSON_PrintUnformatted(m));
    return itest_member(e, "code", NULL)->valueint;
}

const char *itest_error_message(const cJSON *m)
{
    const cJSON *msg = itest_member(m, "error", "message");

    ck_assert(cJSON_IsString(msg));
    return msg->valuestring;
}

const cJSON *itest_member(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItem(o, a);

    ck_assert_msg(v != NULL, "no %s", a);
    if (b != NULL) {
        v = cJSON_GetObjectItem(v, b);
        ck_assert_msg(v != NULL, "no %s.%s", a, b);
    }
    return v;
}

/* ---- The database ---- */

sqlite3 *itest_db_open(const char *path)
{
    sqlite3 *db;

    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    return db;
}

long long itest_query_int(sqlite3 *db, const char *sql)
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

void itest_query_text(sqlite3 *db, const char *sql, char *out, size_t cap)
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

long long itest_db_int(const char *path, const char *sql)
{
    sqlite3 *db = itest_db_open(path);
    long long v = itest_query_int(db, sql);

    sqlite3_close(db);
    return v;
}

void itest_assert_stored_telemetry(sqlite3 *db, long long min_heap)
{
    ck_assert_int_ge(itest_query_int(db, "SELECT count(DISTINCT seq) FROM adc"),
                     20);
    ck_assert_int_eq(itest_query_int(db,
                                     "SELECT count(*) FROM (SELECT seq, "
                                     "count(*) % 4 AS r FROM adc GROUP BY seq) "
                                     "WHERE r != 0"),
                     0);
    ck_assert_int_gt(
        itest_query_int(db, "SELECT count(*) FROM adc WHERE channel = 3"), 0);
    ck_assert_int_eq(
        itest_query_int(db, "SELECT count(*) FROM adc WHERE channel = 3 "
                            "AND value != 3854"),
        0);
    ck_assert_int_ge(itest_query_int(db, "SELECT count(*) FROM heap"),
                     min_heap);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(*) FROM heap WHERE "
                                         "free + used != total"),
                     0);
}
