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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cobs.h"
#include "crc32c.h"
#include "itest.h"
#include "simproc.h"
#include "update.h"

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

/* ---- A cable with a proxy on it ---- */

#define PROXY_BUF     4096 /* bytes moved per read */
#define PROXY_POLL_MS 1000

/* The proxy's side of things.  Bytes from the MCU go on as they come;
 * bytes from tetherd are held to the end of their frame, so that a frame
 * can be looked at whole before it goes on.  tetherd writes whole frames,
 * so nothing waits long; a block longer than any frame goes on as it
 * is. */
struct proxy {
    int up;     /* the MCU's pty */
    int master; /* our pty, whose other end is at link */
    const char *link;
    struct itest_fault fault;
    uint8_t pend[FRAME_WIRE_MAX];
    size_t npend;
};

enum verdict { FORWARD, CUT };

/* Writes all n bytes to the non-blocking fd, waiting while it is full;
 * gives up on an error (the other side went away: the test will see). */
static void put_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {fd, POLLOUT, 0};

            poll(&pfd, 1, 100);
        } else {
            return;
        }
    }
}

/* Whether UPD_DATA d carries body offset at. */
static int carries(const struct msg_upd_data *d, long at)
{
    return at >= 0 && (unsigned long)at >= d->offset &&
           (unsigned long)at - d->offset < d->len;
}

/* Looks at one frame from tetherd, w[0..*n) with its delimiter, and does
 * to it what the fault says: damages it in place (a valid frame again,
 * *n its new length), or says to cut the cable.  Anything that is not a
 * good UPD_DATA frame goes on untouched, damage included: the MCU must
 * see what tetherd sent. */
static enum verdict judge(const struct proxy *p, uint8_t *w, size_t *n)
{
    uint8_t raw[FRAME_RAW_MAX];
    struct msg_upd_data d;
    size_t body;
    uint32_t crc, got = 0;
    int len;

    if (*n < 2 || w[*n - 1] != 0)
        return FORWARD;
    len = cobs_decode(raw, sizeof(raw), w, *n - 1);
    if (len < (int)(FRAME_HDR_LEN + FRAME_CRC_LEN) || raw[1] != MSG_UPD_DATA)
        return FORWARD;
    body = (size_t)len - FRAME_CRC_LEN;
    for (unsigned i = 0; i < FRAME_CRC_LEN; i++)
        got |= (uint32_t)raw[body + i] << (8 * i);
    if (got != crc32c(raw, body) ||
        msg_decode_upd_data(raw + FRAME_HDR_LEN, body - FRAME_HDR_LEN, &d) != 0)
        return FORWARD;
    if (carries(&d, p->fault.cut_at))
        return CUT;
    if (!carries(&d, p->fault.flip_at))
        return FORWARD;
    raw[FRAME_HDR_LEN + MSG_UPD_DATA_HDR_LEN +
        (size_t)((unsigned long)p->fault.flip_at - d.offset)] ^= 0x01;
    crc = crc32c(raw, body);
    for (unsigned i = 0; i < FRAME_CRC_LEN; i++)
        raw[body + i] = (uint8_t)(crc >> (8 * i));
    /* The same length encodes to the same length: it fits where it was. */
    len = cobs_encode(w, FRAME_WIRE_MAX - 1, raw, (size_t)len);
    if (len <= 0)
        _exit(1);
    w[len] = 0;
    *n = (size_t)len + 1;
    return FORWARD;
}

/* Moves bytes from tetherd towards the MCU, frame by frame. */
static void from_daemon(struct proxy *p, const uint8_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len;

        p->pend[p->npend++] = in[i];
        if (in[i] != 0 && p->npend < sizeof(p->pend))
            continue;
        len = p->npend;
        p->npend = 0;
        if (judge(p, p->pend, &len) == CUT) {
            unlink(p->link);
            _exit(0); /* closes both ptys: the port vanishes */
        }
        put_all(p->up, p->pend, len);
    }
}

static void proxy_run(const char *up, const char *link,
                      const struct itest_fault *fault)
{
    struct proxy p = {.link = link, .fault = {-1, -1}};
    struct termios tio;
    uint8_t buf[PROXY_BUF];
    const char *name;
    int slave;

    if (fault != NULL)
        p.fault = *fault;
    closefrom(3); /* the test's sockets and files are not the proxy's */
    p.up = open(up, O_RDWR | O_NOCTTY | O_NONBLOCK);
    p.master = posix_openpt(O_RDWR | O_NOCTTY);
    if (p.up < 0 || p.master < 0 || grantpt(p.master) != 0 ||
        unlockpt(p.master) != 0 || (name = ptsname(p.master)) == NULL)
        _exit(1);
    slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0 || tcgetattr(slave, &tio) != 0)
        _exit(1);
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
    if (tcgetattr(p.up, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(p.up, TCSANOW, &tio);
    }
    fcntl(p.master, F_SETFL, O_NONBLOCK);
    unlink(link);
    if (symlink(name, link) != 0)
        _exit(1);
    for (;;) {
        struct pollfd pfd[2] = {{p.up, POLLIN, 0}, {p.master, POLLIN, 0}};
        ssize_t n;

        if (poll(pfd, 2, PROXY_POLL_MS) < 0 && errno != EINTR)
            _exit(1);
        n = read(p.up, buf, sizeof(buf));
        if (n > 0)
            put_all(p.master, buf, (size_t)n);
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
            _exit(1); /* the MCU's pty is gone: nothing left to carry */
        n = read(p.master, buf, sizeof(buf));
        if (n > 0)
            from_daemon(&p, buf, (size_t)n);
    }
}

pid_t itest_proxy_start(const char *up, const char *link,
                        const struct itest_fault *fault, int timeout_ms)
{
    pid_t parent = getpid();
    pid_t pid;

    unlink(link);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        proxy_run(up, link, fault);
    }
    itest_wait_link(link, timeout_ms);
    return pid;
}

void itest_proxy_stop(const char *link, pid_t *pid)
{
    unlink(link);
    itest_kill(pid);
}

int itest_proxy_wait_cut(pid_t *pid, int timeout_ms)
{
    int status = simproc_wait_exit(*pid, timeout_ms);

    *pid = 0;
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- Firmware updates through the socket ---- */

void itest_wait_running(struct itest_client *c, const char *version,
                        int fresh_ms, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    char last[64] = "none";

    while (simproc_now_ms() < end) {
        cJSON *m = itest_call(c, "status", NULL);
        const cJSON *r = itest_result(m);
        const cJSON *mcu = itest_member(r, "mcu", NULL);
        const cJSON *heap = itest_member(r, "heap", NULL);
        bool ok = strcmp(itest_member(r, "link", "state")->valuestring,
                         "connected") == 0 &&
                  cJSON_IsObject(mcu) && cJSON_IsObject(heap) &&
                  itest_member(heap, "age_ms", NULL)->valuedouble < fresh_ms;

        if (cJSON_IsObject(mcu))
            snprintf(last, sizeof(last), "%s",
                     itest_member(mcu, "firmware_version", NULL)->valuestring);
        ok = ok && strcmp(last, version) == 0;
        cJSON_Delete(m);
        if (ok)
            return;
        usleep(100000);
    }
    ck_abort_msg("tetherd never saw %s running with fresh heap reports "
                 "(last firmware %s)",
                 version, last);
}

const cJSON *itest_wait_flash_outcome(struct itest_client *c, cJSON **root,
                                      int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;

    while (simproc_now_ms() < end) {
        cJSON *m = itest_read_msg(c, (int)(end - simproc_now_ms()));
        const cJSON *meth, *p;

        ck_assert_msg(m != NULL, "no outcome of the flash");
        meth = cJSON_GetObjectItem(m, "method");
        p = cJSON_GetObjectItem(m, "params");
        if (cJSON_IsString(meth) && strcmp(meth->valuestring, "flash") == 0 &&
            strcmp(itest_member(p, "state", NULL)->valuestring, "done") == 0) {
            *root = m;
            return p;
        }
        cJSON_Delete(m);
    }
    ck_abort_msg("no outcome of the flash");
    return NULL;
}
