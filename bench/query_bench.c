/* The query socket, timed from a client: round trips, request rate against
 * a blocking echo server, and history reads over a month of data.
 *
 * One client sends one request at a time and waits for the whole response
 * line, the way tetherctl and most scripts use the socket.  Times are
 * end to end: from just before the request is written until the newline
 * of the response has been read.  Parsing the response is not timed; it is
 * done afterwards to check every answer (and its cost is reported apart).
 *
 * The echo server is the reference for the rate: a child process that
 * accepts one connection on a Unix stream socket like tetherd's and, with
 * blocking read and write, answers each request line with a line as long
 * as tetherd's answer to the same request.  It does no work, so its rate
 * is what the socket, the scheduler and this client allow; tetherd is
 * measured against it in the same run, alternating rounds.
 *
 * Every wait goes through poll() with a timeout, so a daemon that stops
 * answering fails the run instead of hanging it; the echo child is killed
 * and reaped on every way out (and dies with us, PR_SET_PDEATHSIG).
 *
 * Usage:
 *   query_bench rtt SOCKET ECHO_SOCKET TETHERD_PID
 *       round trips of status and latest, and version against the echo
 *       server (which listens on ECHO_SOCKET, created here), in three
 *       placements: this client and the server pinned to one CPU, to two
 *       CPUs, and left to the scheduler.  The threads of TETHERD_PID are
 *       pinned for the first two and given this process's CPUs back at
 *       the end;
 *   query_bench history SOCKET DB END_US
 *       history calls to a tetherd serving DB, a database that
 *       seed_history filled up to END_US; each also read straight from
 *       the file with store_query_adc() or store_query_heap(), to show
 *       what of the time is the store's.
 * Prints "key value" lines. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "query.h"
#include "store.h"

#define REQ_MAX         512 /* one request line */
#define PROC_PATH_MAX   64  /* a /proc file name */
#define PROC_LINE_MAX   128 /* a line of /proc/.../status */
#define PARAM_MAX       64  /* one member of a request's params */
/* Request ids start here so that every id has the same number of digits
 * and tetherd's answers keep one length through a run. */
#define ID_BASE         1000000L
#define RESP_MAX        (QSRV_OUTPUT_MAX + 1) /* one response and newline */
#define ECHO_IN_MAX     4096                  /* echo server's read buffer */
#define CALL_TIMEOUT_MS 10000                 /* for any one response */
#define CONNECT_MS      5000                  /* tetherd may still start */
#define RTT_WARMUP      500
#define RTT_CALLS       5000 /* timed calls of status and of latest */
#define RATE_WARMUP     1000
#define RATE_CALLS      10000 /* version (or echo) calls in one round */
#define RATE_ROUNDS     5     /* alternating tetherd / echo */
#define HIST_WARMUP     2
#define HIST_RUNS       20
#define HIST_BUCKETS    1000 /* the "buckets" asked for */
#define US_S            1000000LL
#define HOUR_US         (3600 * US_S)
#define DAY_US          (24 * HOUR_US)
#define HOUR_ROWS       360000u /* 100 Hz for an hour, seed_history */
#define MONTH_ADC_ROWS  (HOUR_ROWS + (30 * 86400u - 3600u)) /* + 1 Hz */
#define MONTH_HEAP_ROWS (30 * 86400u)                       /* 1 Hz */
#define AGG_BUCKET_US   900000       /* sub-second: raw rows, 4,000 buckets */
#define HOUR_FALLBACK   4000000LL    /* bucket_us for 1,000 buckets an hour */
#define MONTH_FALLBACK  2640000000LL /* for 1,000 buckets in 30 days */

struct client {
    int fd;
    long id;
    size_t len;  /* bytes held in buf */
    size_t line; /* length of the line at the front, newline included */
    char *buf;   /* RESP_MAX bytes */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = now_ns();

    return now >= deadline ? 0 : (int)((deadline - now) / 1000000u) + 1;
}

/* ---- The client ---- */

static int open_client(struct client *r, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    uint64_t deadline = now_ns() + CONNECT_MS * 1000000ull;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    r->id = ID_BASE;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    r->buf = malloc(RESP_MAX);
    if (r->buf == NULL)
        return -ENOMEM;
    for (;;) {
        int e;

        r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (r->fd < 0)
            return -errno;
        if (connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return 0;
        e = errno;
        close(r->fd);
        r->fd = -1;
        if ((e != ENOENT && e != ECONNREFUSED) || remaining_ms(deadline) == 0)
            return -e;
        usleep(20000);
    }
}

static void close_client(struct client *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->buf);
    r->buf = NULL;
}

static int write_all(int fd, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        ssize_t w;
        int pr = poll(&pfd, 1, remaining_ms(deadline));

        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -errno;
        if (pr == 0)
            return -ETIMEDOUT;
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends one request and reads its response line into r->buf (r->line
 * bytes, newline included).  params is JSON text or NULL.  Returns 0,
 * -ETIMEDOUT, -EPIPE (the peer closed), -EMSGSIZE (a line over RESP_MAX)
 * or another negative errno. */
static int call(struct client *r, const char *method, const char *params)
{
    uint64_t deadline = now_ns() + CALL_TIMEOUT_MS * 1000000ull;
    char req[REQ_MAX];
    size_t scan;
    int n, e;

    /* Drop the previous line, keep whatever followed it. */
    memmove(r->buf, r->buf + r->line, r->len - r->line);
    r->len -= r->line;
    r->line = 0;
    n = snprintf(req, sizeof(req),
                 "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"%s\"%s%s}\n",
                 ++r->id, method, params ? ",\"params\":" : "",
                 params ? params : "");
    if (n < 0 || (size_t)n >= sizeof(req))
        return -EINVAL;
    if ((e = write_all(r->fd, req, (size_t)n, deadline)) != 0)
        return e;
    scan = 0;
    for (;;) {
        char *nl = memchr(r->buf + scan, '\n', r->len - scan);
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        ssize_t got;
        int pr;

        if (nl != NULL) {
            r->line = (size_t)(nl - r->buf) + 1;
            return 0;
        }
        scan = r->len;
        if (r->len == RESP_MAX)
            return -EMSGSIZE;
        pr = poll(&pfd, 1, remaining_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -errno;
        if (pr == 0)
            return -ETIMEDOUT;
        got = read(r->fd, r->buf + r->len, RESP_MAX - r->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            return -EPIPE;
        r->len += (size_t)got;
    }
}

/* The result of the response line in r, parsed into *root (caller owns
 * it; cJSON_Delete), or NULL when the line is not a result for the
 * request just sent (the error, if any, is printed). */
static const cJSON *result_of(const struct client *r, cJSON **root)
{
    const cJSON *id, *res, *err;

    *root = cJSON_ParseWithLength(r->buf, r->line);
    if (*root == NULL) {
        fprintf(stderr, "query_bench: a response is not JSON\n");
        return NULL;
    }
    id = cJSON_GetObjectItemCaseSensitive(*root, "id");
    res = cJSON_GetObjectItemCaseSensitive(*root, "result");
    err = cJSON_GetObjectItemCaseSensitive(*root, "error");
    if (!cJSON_IsNumber(id) || (long)id->valuedouble != r->id) {
        fprintf(stderr, "query_bench: a response for another request\n");
        return NULL;
    }
    if (err != NULL || res == NULL) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");

        fprintf(stderr, "query_bench: error response: %s\n",
                cJSON_IsString(m) ? m->valuestring : "(no message)");
        return NULL;
    }
    return res;
}

static bool call_ok(struct client *r, const char *method, const char *params)
{
    int e = call(r, method, params);
    const cJSON *res;
    cJSON *root;
    bool ok;

    if (e != 0) {
        fprintf(stderr, "query_bench: %s: %s\n", method, strerror(-e));
        return false;
    }
    res = result_of(r, &root);
    ok = cJSON_IsObject(res);
    cJSON_Delete(root);
    return ok;
}

/* ---- Figures ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Sorts ns[0..n) and returns the nearest-rank percentile pct, in ns. */
static uint64_t pct(uint64_t *ns, size_t n, unsigned p)
{
    size_t rank = (n * p + 99) / 100;

    qsort(ns, n, sizeof(*ns), cmp_u64);
    return ns[rank > 0 ? rank - 1 : 0];
}

static double median_d(double *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && v[k - 1] > v[k]; k--) {
            double t = v[k];

            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- Round trips ---- */

/* Times calls of method, each response checked after its clock stops.
 * Prints rtt_<place>_<method>_bytes, _p50_us and _p99_us. */
static bool time_rtt(struct client *r, const char *place, const char *method,
                     const char *params)
{
    static uint64_t ns[RTT_CALLS];
    size_t bytes = 0;
    cJSON *root;
    bool ok;

    for (unsigned i = 0; i < RTT_WARMUP; i++)
        if (!call_ok(r, method, params))
            return false;
    for (unsigned i = 0; i < RTT_CALLS; i++) {
        uint64_t t0 = now_ns();
        int e = call(r, method, params);

        ns[i] = now_ns() - t0;
        if (e != 0) {
            fprintf(stderr, "query_bench: %s: %s\n", method, strerror(-e));
            return false;
        }
        bytes = r->line;
        root = NULL;
        ok = cJSON_IsObject(result_of(r, &root));
        cJSON_Delete(root);
        if (!ok)
            return false;
    }
    printf("rtt_%s_%s_bytes %zu\n", place, method, bytes);
    printf("rtt_%s_%s_p50_us %.1f\n", place, method,
           pct(ns, RTT_CALLS, 50) / 1e3);
    printf("rtt_%s_%s_p99_us %.1f\n", place, method,
           pct(ns, RTT_CALLS, 99) / 1e3);
    return true;
}

/* ---- The echo server ---- */

static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The child: one connection, a reply line for every request line, until
 * the client goes away.  Blocking read and write, nothing else. */
static void echo_serve(int lfd, const char *reply, size_t len)
{
    char in[ECHO_IN_MAX];
    int fd = accept(lfd, NULL, NULL);

    if (fd < 0)
        _exit(1);
    for (;;) {
        ssize_t n = read(fd, in, sizeof(in));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0);
        for (ssize_t i = 0; i < n; i++)
            if (in[i] == '\n' && write_full(fd, reply, len) != 0)
                _exit(1);
    }
}

/* Listens on path and forks the echo server; returns its pid or -1. */
static pid_t echo_start(const char *path, const char *reply, size_t len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    pid_t parent = getpid(), pid;
    int lfd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -1;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(lfd, 1) != 0) {
        close(lfd);
        return -1;
    }
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        echo_serve(lfd, reply, len);
    }
    close(lfd);
    return pid;
}

static void echo_stop(pid_t pid, const char *path)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    unlink(path);
}

/* ---- Placement and the servers' own costs ---- */

/* The first two CPUs this process may use, for the placements; *n is
 * how many there are (1 or 2). */
static void pick_cpus(int cpus[2], int *n)
{
    cpu_set_t set;

    *n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE && *n < 2; c++)
        if (CPU_ISSET(c, &set))
            cpus[(*n)++] = c;
}

/* Sets the CPUs of every thread of pid (0: this process) to cpu, or to
 * set when cpu < 0. */
static void pin(pid_t pid, int cpu, const cpu_set_t *set)
{
    char path[PROC_PATH_MAX];
    cpu_set_t one;
    struct dirent *de;
    DIR *dir;

    CPU_ZERO(&one);
    if (cpu >= 0)
        CPU_SET(cpu, &one);
    snprintf(path, sizeof(path), "/proc/%d/task", pid ? (int)pid : getpid());
    dir = opendir(path);
    if (dir == NULL)
        return;
    while ((de = readdir(dir)) != NULL) {
        pid_t tid = (pid_t)atoi(de->d_name);

        if (tid > 0)
            sched_setaffinity(tid, sizeof(one), cpu >= 0 ? &one : set);
    }
    closedir(dir);
}

/* What the kernel says of one thread: time on a CPU (ns) and voluntary
 * context switches, i.e. the times it blocked and was woken. */
struct task_use {
    uint64_t cpu_ns, switches;
};

static void read_use(pid_t pid, struct task_use *u)
{
    char path[PROC_PATH_MAX], line[PROC_LINE_MAX];
    unsigned long long v;
    FILE *f;

    memset(u, 0, sizeof(*u));
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, pid);
    if ((f = fopen(path, "r")) != NULL) {
        if (fscanf(f, "%llu", &v) == 1)
            u->cpu_ns = v;
        fclose(f);
    }
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, pid);
    if ((f = fopen(path, "r")) != NULL) {
        while (fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
                u->switches = v;
        fclose(f);
    }
}

/* One server's side of the rate test: its connection, its process (the
 * thread that answers is the main one) and what the rounds gathered. */
struct server {
    const char *name;
    struct client *r;
    pid_t pid;
    double rate[RATE_ROUNDS];
    uint64_t *ns; /* RATE_CALLS * RATE_ROUNDS round trips */
    size_t n_ns;
    struct task_use used; /* summed over the rounds */
};

/* One round of RATE_CALLS sequential calls; returns calls per second, 0
 * on failure.  The check of each answer is the same cheap one for both
 * servers: the echo server returns tetherd's own answer. */
static double rate_round(struct server *sv)
{
    struct client *r = sv->r;
    struct task_use u0, u1;
    uint64_t t0, t;

    read_use(sv->pid, &u0);
    t0 = now_ns();
    for (unsigned i = 0; i < RATE_CALLS; i++) {
        uint64_t c0 = now_ns();
        int e = call(r, "version", NULL);

        sv->ns[sv->n_ns++] = now_ns() - c0;
        if (e != 0 || r->line < 2 || r->buf[0] != '{' ||
            memmem(r->buf, r->line, "\"result\":", 9) == NULL) {
            fprintf(stderr, "query_bench: version from %s: %s\n", sv->name,
                    e ? strerror(-e) : "not a result");
            return 0;
        }
    }
    t = now_ns() - t0;
    read_use(sv->pid, &u1);
    sv->used.cpu_ns += u1.cpu_ns - u0.cpu_ns;
    sv->used.switches += u1.switches - u0.switches;
    return RATE_CALLS / (t / 1e9);
}

/* Everything measured with this client and the servers placed as asked:
 * client_cpu and server_cpu, or where the scheduler likes (-1).  Round
 * trips of status and latest, then version against the echo server in
 * alternating rounds.  Prints rtt_<place>_... and rate_<place>_... lines. */
static bool measure(const char *place, int client_cpu, int server_cpu,
                    struct server sv[2], const cpu_set_t *all)
{
    double med[2];

    pin(0, client_cpu, all);
    for (int k = 0; k < 2; k++) {
        pin(sv[k].pid, server_cpu, all);
        sv[k].n_ns = 0;
        memset(&sv[k].used, 0, sizeof(sv[k].used));
    }
    if (!time_rtt(sv[0].r, place, "status", NULL) ||
        !time_rtt(sv[0].r, place, "latest", "{}"))
        return false;
    for (unsigned i = 0; i < RATE_WARMUP; i++)
        for (int k = 0; k < 2; k++)
            if (call(sv[k].r, "version", NULL) != 0)
                return false;
    for (unsigned i = 0; i < RATE_ROUNDS; i++)
        for (int k = 0; k < 2; k++)
            if ((sv[k].rate[i] = rate_round(&sv[k])) == 0)
                return false;
    for (int k = 0; k < 2; k++) {
        const double calls = (double)sv[k].n_ns;
        const char *n = sv[k].name;

        med[k] = median_d(sv[k].rate, RATE_ROUNDS);
        printf("rate_%s_%s_per_s %.0f\n", place, n, med[k]);
        printf("rate_%s_%s_cpu_us %.2f\n", place, n,
               sv[k].used.cpu_ns / 1e3 / calls);
        printf("rate_%s_%s_wakeups %.2f\n", place, n,
               sv[k].used.switches / calls);
        printf("rtt_%s_%s_p50_us %.1f\n", place, n,
               pct(sv[k].ns, sv[k].n_ns, 50) / 1e3);
        printf("rtt_%s_%s_p99_us %.1f\n", place, n,
               pct(sv[k].ns, sv[k].n_ns, 99) / 1e3);
    }
    printf("rate_%s_ratio %.3f\n", place, med[0] / med[1]);
    return true;
}

static int run_rtt(const char *sock, const char *echo_path, pid_t dpid)
{
    static char reply[RESP_MAX];
    struct client d, e = {.fd = -1};
    struct server sv[2] = {{.name = "tetherd", .r = &d, .pid = dpid},
                           {.name = "echo", .r = &e, .pid = -1}};
    int cpus[2], ncpu, code = 1, rc;
    cpu_set_t all;

    if (sched_getaffinity(0, sizeof(all), &all) != 0)
        return 1;
    pick_cpus(cpus, &ncpu);
    if ((rc = open_client(&d, sock)) != 0) {
        fprintf(stderr, "query_bench: cannot connect to %s: %s\n", sock,
                strerror(-rc));
        goto out_d;
    }
    /* The echo server answers with tetherd's own version answer. */
    if (!call_ok(&d, "version", NULL) || d.line > sizeof(reply))
        goto out_d;
    memcpy(reply, d.buf, d.line);
    sv[1].pid = echo_start(echo_path, reply, d.line);
    if (sv[1].pid < 0) {
        fprintf(stderr, "query_bench: cannot start the echo server on %s\n",
                echo_path);
        goto out_d;
    }
    if ((rc = open_client(&e, echo_path)) != 0) {
        fprintf(stderr, "query_bench: cannot connect to %s: %s\n", echo_path,
                strerror(-rc));
        goto out_echo;
    }
    for (int k = 0; k < 2; k++) {
        sv[k].ns = calloc((size_t)RATE_CALLS * RATE_ROUNDS, sizeof(uint64_t));
        if (sv[k].ns == NULL)
            goto out_echo;
    }
    printf("rtt_calls %d\nrtt_warmup %d\n", RTT_CALLS, RTT_WARMUP);
    printf("rtt_version_bytes %zu\n", d.line);
    printf("rate_cpus %d\n", ncpu);
    printf("rate_rounds %d\nrate_calls %d\n", RATE_ROUNDS, RATE_CALLS);
    if (ncpu < 1 || !measure("same", cpus[0], cpus[0], sv, &all) ||
        (ncpu >= 2 && !measure("split", cpus[0], cpus[1], sv, &all)) ||
        !measure("free", -1, -1, sv, &all))
        goto out_echo;
    code = 0;
out_echo:
    close_client(&e); /* the echo server sees EOF and exits */
    echo_stop(sv[1].pid, echo_path);
out_d:
    pin(dpid, -1, &all);
    pin(0, -1, &all);
    close_client(&d);
    free(sv[0].ns);
    free(sv[1].ns);
    return code;
}

/* ---- History ---- */

struct hcase {
    const char *key;    /* output key: hist_<key>_... */
    const char *series; /* "adc" or "heap" */
    int64_t from_us, to_us;
    int64_t bucket_us;  /* -1: "buckets": HIST_BUCKETS */
    int64_t fallback;   /* bucket_us when tetherd lacks "buckets" */
    size_t points;      /* exactly this many, or 0: 1..HIST_BUCKETS */
    bool more;          /* a cursor expected: a first page */
    uint64_t count_min; /* raw rows the points cover, at least */
    uint64_t count_max; /* ... and at most (0: not checked) */
};

/* What a history answer says, checked against c. */
struct hresult {
    int64_t bucket_us;
    size_t points;
    uint64_t count;
    bool more;
};

static bool read_history(const struct client *r, struct hresult *h)
{
    const cJSON *res, *pts, *p, *b, *next;
    cJSON *root;
    bool ok = false;

    memset(h, 0, sizeof(*h));
    res = result_of(r, &root);
    pts = cJSON_GetObjectItemCaseSensitive(res, "points");
    b = cJSON_GetObjectItemCaseSensitive(res, "bucket_us");
    next = cJSON_GetObjectItemCaseSensitive(res, "next_after_us");
    if (res == NULL)
        goto out_root;
    if (!cJSON_IsArray(pts) || !cJSON_IsNumber(b) || next == NULL) {
        fprintf(stderr, "query_bench: a history answer without points, "
                        "bucket_us or next_after_us\n");
        goto out_root;
    }
    h->bucket_us = (int64_t)b->valuedouble;
    h->more = !cJSON_IsNull(next);
    cJSON_ArrayForEach(p, pts)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(p, "count");

        h->points++;
        h->count += cJSON_IsNumber(c) ? (uint64_t)c->valuedouble : 1;
    }
    ok = true;
out_root:
    cJSON_Delete(root);
    return ok;
}

static bool check_history(const struct hcase *c, const struct hresult *h)
{
    bool ok = h->more == c->more &&
              (c->points ? h->points == c->points
                         : h->points > 0 && h->points <= HIST_BUCKETS) &&
              h->count >= c->count_min &&
              (c->count_max == 0 || h->count <= c->count_max);

    if (!ok)
        fprintf(stderr,
                "query_bench: history %s: %zu points covering %" PRIu64
                " rows, cursor %s: not what the database holds\n",
                c->key, h->points, h->count, h->more ? "set" : "null");
    return ok;
}

static void history_params(const struct hcase *c, bool buckets, char *out,
                           size_t cap, uint32_t limit)
{
    char width[PARAM_MAX], lim[PARAM_MAX] = "";

    if (c->bucket_us >= 0)
        snprintf(width, sizeof(width), "\"bucket_us\":%" PRId64, c->bucket_us);
    else if (buckets)
        snprintf(width, sizeof(width), "\"buckets\":%d", HIST_BUCKETS);
    else
        snprintf(width, sizeof(width), "\"bucket_us\":%" PRId64, c->fallback);
    if (limit != 0)
        snprintf(lim, sizeof(lim), ",\"limit\":%" PRIu32, limit);
    snprintf(out, cap,
             "{\"series\":\"%s\",\"from_us\":%" PRId64 ",\"to_us\":%" PRId64
             ",%s%s%s}",
             c->series, c->from_us, c->to_us, width,
             c->series[0] == 'a' ? ",\"channels\":[0]" : "", lim);
}

/* The same read straight from the file, on this thread: the store's
 * share of the time.  Returns the median in ns, 0 on failure. */
static uint64_t time_store(const char *db, const struct hcase *c,
                           int64_t bucket_us)
{
    struct store_query q = {
        .from_us = c->from_us,
        .to_us = c->to_us,
        .bucket_us = (uint64_t)bucket_us,
        .limit = QUERY_POINTS_MAX,
        .after_us = STORE_QUERY_NONE,
        .channels = 1u,
    };
    bool heap = c->series[0] == 'h';
    size_t size =
        heap ? sizeof(struct store_heap_point) : sizeof(struct store_point);
    void *pts = calloc(QUERY_POINTS_MAX, size);
    uint64_t ns[HIST_RUNS], med = 0;
    char err[STORE_ERR_MAX];
    int64_t next;
    size_t n;

    if (pts == NULL)
        return 0;
    for (unsigned i = 0; i < HIST_WARMUP + HIST_RUNS; i++) {
        uint64_t t0 = now_ns();
        int rc = heap ? store_query_heap(db, &q, pts, QUERY_POINTS_MAX, &n,
                                         &next, err, sizeof(err))
                      : store_query_adc(db, &q, pts, QUERY_POINTS_MAX, &n,
                                        &next, err, sizeof(err));

        if (rc != 0) {
            fprintf(stderr, "query_bench: store read %s: %s\n", c->key, err);
            goto out_pts;
        }
        if (i >= HIST_WARMUP)
            ns[i - HIST_WARMUP] = now_ns() - t0;
    }
    med = pct(ns, HIST_RUNS, 50);
out_pts:
    free(pts);
    return med;
}

static bool time_history(struct client *r, const char *db,
                         const struct hcase *c, bool buckets)
{
    char params[REQ_MAX];
    uint64_t ns[HIST_RUNS], parse[HIST_RUNS], store;
    struct hresult h = {0};

    history_params(c, buckets, params, sizeof(params), 0);
    for (unsigned i = 0; i < HIST_WARMUP + HIST_RUNS; i++) {
        uint64_t t0 = now_ns(), t1;
        int e = call(r, "history", params);

        t1 = now_ns();
        if (e != 0) {
            fprintf(stderr, "query_bench: history %s: %s\n", c->key,
                    strerror(-e));
            return false;
        }
        if (!read_history(r, &h) || !check_history(c, &h))
            return false;
        if (i >= HIST_WARMUP) {
            ns[i - HIST_WARMUP] = t1 - t0;
            parse[i - HIST_WARMUP] = now_ns() - t1;
        }
    }
    store = time_store(db, c, h.bucket_us);
    if (store == 0)
        return false;
    printf("hist_%s_bucket_us %" PRId64 "\n", c->key, h.bucket_us);
    printf("hist_%s_points %zu\n", c->key, h.points);
    printf("hist_%s_rows %" PRIu64 "\n", c->key, h.count);
    printf("hist_%s_bytes %zu\n", c->key, r->line);
    printf("hist_%s_p50_ms %.1f\n", c->key, pct(ns, HIST_RUNS, 50) / 1e6);
    printf("hist_%s_p99_ms %.1f\n", c->key, pct(ns, HIST_RUNS, 99) / 1e6);
    printf("hist_%s_store_ms %.1f\n", c->key, store / 1e6);
    printf("hist_%s_parse_ms %.1f\n", c->key, pct(parse, HIST_RUNS, 50) / 1e6);
    return true;
}

/* Whether tetherd takes "buckets": asked for one point, it answers with
 * the width it chose; a tetherd without the parameter ignores it and
 * answers with raw rows (width 0). */
static int has_buckets(struct client *r, const struct hcase *c, bool *yes)
{
    char params[REQ_MAX];
    struct hresult h;
    int e;

    history_params(c, true, params, sizeof(params), 1);
    if ((e = call(r, "history", params)) != 0) {
        fprintf(stderr, "query_bench: history: %s\n", strerror(-e));
        return -1;
    }
    if (!read_history(r, &h))
        return -1;
    *yes = h.bucket_us > 0;
    return 0;
}

static int run_history(const char *sock, const char *db, int64_t end)
{
    const int64_t hour = end - HOUR_US, month = end - 30 * DAY_US;
    /* A bucket of 44 min may start up to 44 min after the month does:
     * the rows before it are outside every bucket. */
    const uint64_t skip = MONTH_FALLBACK / US_S;
    const struct hcase cases[] = {
        {"hour_agg", "adc", hour, end, AGG_BUCKET_US, 0,
         HOUR_US / AGG_BUCKET_US, false, HOUR_ROWS, HOUR_ROWS},
        {"hour_1000", "adc", hour, end, -1, HOUR_FALLBACK, 0, false, HOUR_ROWS,
         HOUR_ROWS},
        {"month_adc", "adc", month, end, -1, MONTH_FALLBACK, 0, false,
         MONTH_ADC_ROWS - skip, MONTH_ADC_ROWS},
        {"month_heap", "heap", month, end, -1, MONTH_FALLBACK, 0, false,
         MONTH_HEAP_ROWS - skip, MONTH_HEAP_ROWS},
        {"hour_page", "adc", hour, end, 0, 0, QUERY_POINTS_MAX, true,
         QUERY_POINTS_MAX, QUERY_POINTS_MAX},
    };
    struct client r;
    bool buckets = false;
    int code = 1, rc;

    if ((rc = open_client(&r, sock)) != 0) {
        fprintf(stderr, "query_bench: cannot connect to %s: %s\n", sock,
                strerror(-rc));
        goto out_r;
    }
    if (has_buckets(&r, &cases[1], &buckets) != 0)
        goto out_r;
    printf("hist_buckets_param %d\n", buckets ? 1 : 0);
    printf("hist_runs %d\nhist_warmup %d\n", HIST_RUNS, HIST_WARMUP);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (!time_history(&r, db, &cases[i], buckets))
            goto out_r;
    code = 0;
out_r:
    close_client(&r);
    return code;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a closed peer is an error code */
    if (argc == 5 && strcmp(argv[1], "rtt") == 0)
        return run_rtt(argv[2], argv[3], (pid_t)atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "history") == 0)
        return run_history(argv[2], argv[3], strtoll(argv[4], NULL, 10));
    fprintf(stderr, "usage: query_bench rtt SOCKET ECHO_SOCKET TETHERD_PID\n"
                    "       query_bench history SOCKET DB END_US\n");
    return 2;
}
