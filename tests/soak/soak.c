/* A compressed soak of tetherd (docs/TESTING.md, "Soak").
 *
 * The problem: tetherd runs for months on a board with little memory.  A
 * few bytes lost per frame, a descriptor per client or an allocation per
 * query never show in a test that runs for seconds, and memory that fills
 * up to a bound (a ring, the raw rows before retention starts pruning,
 * the allocator's caches in each thread) looks like a leak while it
 * fills.  So one test offers tetherd the most tether-sim can send (20 kHz
 * scans of 16 channels, a heap report every 100 ms), keeps every path of
 * the query socket busy (a watcher subscribed to every topic; a client
 * polling status, latest, history and alerts; a connection opened and
 * closed every round) and samples tetherd's resident memory and open
 * descriptors once a second.  Warm-up lasts until what fills up to a bound
 * is full: the time each ring takes to fill at the offered rate, the
 * raw-row bound reached with retention seen pruning in the database (its
 * oldest rowid above 1), and WARMUP_HISTORIES history requests answered
 * (each runs on one of libuv's worker threads, whose malloc arenas take
 * about that many to stop growing).  After that the resident memory may
 * drift by at most DRIFT_LIMIT_PCT, the descriptors not at all, and at the
 * end tetherd must exit 0 on SIGTERM and leave a database that passes
 * integrity_check.  A second test runs tetherd under valgrind's memcheck
 * at a rate it keeps up with, with the same query traffic, and wants no
 * error and no definite or indirect leak after SIGTERM.
 *
 * Conditions: the machine has two CPUs shared with other work, so speed
 * is reported, never asserted: rows the store drops for a full queue are
 * counted in the report, not failed.  tetherd's bounds are read from its
 * own --check-config, so the warm-up follows its real defaults, except the
 * store queue: its ring is resident only as far as it has been written,
 * and at the default 65,536 rows that grows in steps of about 220 KiB at
 * random times, so every run gives it SOAK_QUEUE_ROWS.  A run too short
 * for the defaults (SOAK_SECONDS under SHORT_RUN_FACTOR warm-ups) gives
 * tetherd smaller rings and raw-row bound too, and says so.  Every
 * process started here dies with the test (simproc.h), Check's timeout is
 * the watchdog, and every wait is bounded.
 *
 * Environment: SOAK_SECONDS (default 600), VALGRIND_SECONDS (default 60),
 * TETHERD, TETHER_SIM, VALGRIND (the valgrind executable), SOAK_TRACE (a
 * file to get one line a second: seconds; resident KiB in all, anonymous,
 * file-backed and shared; descriptors; rows written and dropped; bytes in
 * the WAL file), SOAK_KEEP (keep the files: tetherd's log, its database,
 * valgrind's log). */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "simproc.h"

#define DIR_MAX          64 /* short enough for a Unix socket path inside */
#define FILE_MAX         (DIR_MAX + 24)
#define TEXT_MAX         8192   /* --check-config output */
#define PARAMS_MAX       256    /* the params of one request */
#define ARGS_MAX         30     /* arguments simproc_spawn() passes on */
#define SERIES_MAX       86400  /* one sample a second for a day */
#define WAIT_MS          30000  /* start-up, one call, a stop */
#define VG_WAIT_MS       120000 /* the same for tetherd under valgrind */
#define STOP_MS          60000  /* SIGTERM to exit: the queue is flushed */
#define VG_STOP_MS       180000 /* ... and valgrind checks for leaks */
#define VG_ERROR_EXIT    97     /* valgrind's exit status when it found any */
#define VG_LOG_SHOWN     65536  /* of valgrind's log, printed on failure */
#define DRIFT_LIMIT_PCT  1.0
#define WARMUP_MARGIN_S  10   /* after the last bound is reached */
#define MEASURE_MIN_S    20   /* shortest measured window accepted */
#define TAIL_PARTS       4    /* the end value: max over the last quarter */
#define SETTLE_S         5    /* fds the fewest, memory the most over 5 s */
#define WARMUP_HISTORIES 1000 /* history requests before warm-up ends */
#define BURST_MS         700  /* of each warm-up second for more of them */
#define SHORT_RUN_FACTOR 3    /* defaults need runs of 3 warm-ups */
#define PROGRESS_EVERY_S 10
#define WATCH_DECIMATE   10 /* one ADC batch in 10 to the watcher ... */
#define VG_DECIMATE      1  /* ... and every batch under valgrind */
#define LATEST_N         64
#define HISTORY_LIMIT    1000
#define HISTORY_SPAN_US  10000000 /* history asks for the last 10 s */

/* The load: tether-sim's highest scan rate (PORT_RATE_MAX_HZ) on every
 * channel; under valgrind a rate its tetherd keeps up with. */
#define FULL_RATE_HZ       20000
#define FULL_CHANNELS      16
#define HEAP_PERIOD_MS     100
#define VG_RATE_HZ         1000
#define VG_CHANNELS        4
/* The store queue of every run: at full rate its ring is all written
 * within the first seconds (docs/TESTING.md, "Soak"). */
#define SOAK_QUEUE_ROWS    8192
/* Smaller bounds for short runs: the heap ring fills in 10 s, and the
 * raw rows reach their bound in about 6 s at full rate. */
#define SHORT_RING_HEAP    100
#define SHORT_RAW_MAX_ROWS 2000000

struct run {
    char dir[DIR_MAX];
    char tty[FILE_MAX];
    char db[FILE_MAX];
    char sock[FILE_MAX];
    char log[FILE_MAX];
    char out[FILE_MAX]; /* --check-config output, valgrind's log */
    pid_t sim;
    pid_t daemon;
};

/* tetherd's bounds that take time to fill, as --check-config prints them. */
struct bounds {
    long queue_rows;
    long ring_samples;
    long ring_heap;
    long raw_max_rows;
};

/* The query traffic and what it saw. */
struct traffic {
    struct itest_client poll;
    struct itest_client watch;
    unsigned rounds;
    unsigned long calls;     /* answered requests, all methods */
    unsigned long histories; /* history requests among them */
    unsigned long connects;  /* connections opened and closed */
    unsigned long watch_samples, watch_heap, watch_other;
    unsigned long not_connected; /* status rounds with the link not up */
    long slowest_ms;             /* the longest round */
    long long written, dropped;
};

static struct run run;
static long soak_seconds;     /* SOAK_SECONDS */
static long valgrind_seconds; /* VALGRIND_SECONDS */

static void teardown(void)
{
    itest_kill(&run.daemon);
    itest_kill(&run.sim);
    if (run.dir[0] != '\0' && itest_env_or("SOAK_KEEP", NULL) == NULL)
        itest_remove_tree(run.dir);
    memset(&run, 0, sizeof(run));
}

static void setup_run(const char *prefix)
{
    memset(&run, 0, sizeof(run));
    itest_make_dir(run.dir, sizeof(run.dir), prefix);
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.sock, sizeof(run.sock), "%s/q.sock", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
    snprintf(run.out, sizeof(run.out), "%s/out.txt", run.dir);
}

/* $name as seconds, def when unset; -1 when it is not 1..SERIES_MAX. */
static long env_seconds(const char *name, long def)
{
    const char *v = itest_env_or(name, NULL);
    char *end;
    long n;

    if (v == NULL)
        return def;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 1 || n > SERIES_MAX) {
        fprintf(stderr,
                "soak: %s must be a number of seconds from 1 to %d, "
                "not '%s'\n",
                name, SERIES_MAX, v);
        return -1;
    }
    return n;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The report goes to stdout line by line, so a long run shows progress. */
static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- tetherd's process, seen from /proc ---- */

/* The resident memory of pid in KiB from /proc/<pid>/status: in all
 * (VmRSS) and its parts, anonymous (the heaps), file-backed (the program,
 * the libraries, SQLite's shared-memory WAL index) and shared; -1 when
 * they cannot be read. */
struct rss {
    long all, anon, file, shmem;
};

static void rss_read(pid_t pid, struct rss *r)
{
    char path[64], line[256];
    FILE *f;

    r->all = r->anon = r->file = r->shmem = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &r->all) != 1 &&
            sscanf(line, "RssAnon: %ld kB", &r->anon) != 1 &&
            sscanf(line, "RssFile: %ld kB", &r->file) != 1)
            (void)sscanf(line, "RssShmem: %ld kB", &r->shmem);
    fclose(f);
}

/* Bytes in the file at path, 0 when there is none. */
static long long file_bytes(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* ---- Starting and stopping ---- */

static void start_sim(int rate_hz, int channels)
{
    char rate[16], ch[16], period[16];
    const char *args[] = {"--link",     run.tty, "--rate",        rate,
                          "--channels", ch,      "--heap-period", period,
                          NULL};

    snprintf(rate, sizeof(rate), "%d", rate_hz);
    snprintf(ch, sizeof(ch), "%d", channels);
    snprintf(period, sizeof(period), "%d", HEAP_PERIOD_MS);
    run.sim = itest_start_sim(run.tty, args, WAIT_MS);
}

/* The value of key in section of an INI text, or -1. */
static long ini_long(const char *text, const char *section, const char *key)
{
    size_t klen = strlen(key);
    char head[64];
    const char *p;

    snprintf(head, sizeof(head), "[%s]", section);
    p = strstr(text, head);
    while (p != NULL && (p = strchr(p, '\n')) != NULL) {
        p++;
        if (*p == '[')
            break;
        if (strncmp(p, key, klen) == 0 && (p[klen] == ' ' || p[klen] == '='))
            return strtol(p + klen + strspn(p + klen, " ="), NULL, 10);
    }
    return -1;
}

/* tetherd's effective bounds with the extra flags (NULL-terminated). */
static void read_bounds(const char *const *extra, struct bounds *b)
{
    const char *args[ARGS_MAX + 1] = {"--config", "/dev/null",
                                      "--check-config"};
    static char text[TEXT_MAX];
    size_t n = 3;
    int fd, status;

    for (size_t i = 0; extra[i] != NULL; i++) {
        ck_assert_uint_lt(n, ARGS_MAX);
        args[n++] = extra[i];
    }
    args[n] = NULL;
    fd = itest_open_log(run.out);
    status = simproc_wait_exit(
        simproc_spawn(itest_env_or("TETHERD", "build/tetherd"), args, NULL, fd,
                      fd),
        WAIT_MS);
    close(fd);
    itest_read_file(run.out, text, sizeof(text));
    unlink(run.out);
    ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "tetherd --check-config failed: %s", text);
    b->queue_rows = ini_long(text, "store", "queue_rows");
    b->ring_samples = ini_long(text, "ring", "samples");
    b->ring_heap = ini_long(text, "ring", "heap");
    b->raw_max_rows = ini_long(text, "store", "raw_max_rows");
    ck_assert_msg(b->queue_rows > 0 && b->ring_samples > 0 &&
                      b->ring_heap > 0 && b->raw_max_rows > 0,
                  "--check-config does not name the bounds: %s", text);
}

/* Starts tetherd with its defaults and the extra flags, alone or under
 * valgrind (vg: valgrind's own options, NULL-terminated, or NULL). */
static void start_tetherd(const char *const *extra, const char *const *vg)
{
    const char *tetherd = itest_env_or("TETHERD", "build/tetherd");
    const char *args[ARGS_MAX + 1];
    const char *path = tetherd;
    size_t n = 0;
    int log;

    if (vg != NULL) {
        path = itest_env_or("VALGRIND", "/usr/bin/valgrind");
        ck_assert_msg(access(path, X_OK) == 0,
                      "no valgrind at %s (set VALGRIND)", path);
        while (*vg != NULL)
            args[n++] = *vg++;
        args[n++] = tetherd;
    }
    args[n++] = "--config";
    args[n++] = "/dev/null";
    args[n++] = "--device";
    args[n++] = run.tty;
    args[n++] = "--db";
    args[n++] = run.db;
    args[n++] = "--socket";
    args[n++] = run.sock;
    for (; *extra != NULL; extra++) {
        ck_assert_uint_lt(n, ARGS_MAX);
        args[n++] = *extra;
    }
    args[n] = NULL;
    log = itest_open_log(run.log);
    run.daemon = simproc_spawn(path, args, NULL, log, log);
    close(log);
}

/* SIGTERM; returns the exit status (waitpid's) and the time it took. */
static int stop_tetherd(int timeout_ms, long *took_ms)
{
    int64_t t0 = simproc_now_ms();
    int status;

    ck_assert_int_eq(kill(run.daemon, SIGTERM), 0);
    status = simproc_wait_exit(run.daemon, timeout_ms);
    run.daemon = 0;
    *took_ms = (long)(simproc_now_ms() - t0);
    return status;
}

static void check_integrity(void)
{
    char out[256];
    sqlite3 *db = itest_db_open(run.db);

    itest_query_text(db, "PRAGMA integrity_check", out, sizeof(out));
    sqlite3_close(db);
    ck_assert_msg(strcmp(out, "ok\n") == 0, "integrity_check: %s", out);
    say("soak: integrity_check of the database: ok");
}

/* ---- Query traffic ---- */

/* Connects the poller and waits until the link is up with heap data. */
static void wait_ready(struct traffic *t, int wait_ms)
{
    int64_t end = simproc_now_ms() + wait_ms;

    itest_client_open(&t->poll, run.sock, wait_ms);
    while (simproc_now_ms() < end) {
        cJSON *m = itest_call(&t->poll, "status", NULL);
        const cJSON *r = itest_result(m);
        bool ok = strcmp(itest_member(r, "link", "state")->valuestring,
                         "connected") == 0 &&
                  cJSON_IsObject(itest_member(r, "heap", NULL));

        cJSON_Delete(m);
        if (ok)
            return;
        usleep(100000);
    }
    ck_abort_msg("tetherd never reported a connected link with heap data");
}

/* Subscribes the watcher to every topic but firmware updates. */
static void watch_open(struct traffic *t, int decimate, int wait_ms)
{
    char params[PARAMS_MAX];
    cJSON *m;

    snprintf(params, sizeof(params),
             "{\"topics\":[\"samples\",\"heap\",\"alerts\",\"link\","
             "\"mcu\"],\"decimate\":%d}",
             decimate);
    itest_client_open(&t->watch, run.sock, wait_ms);
    m = itest_call(&t->watch, "watch", params);
    (void)itest_result(m);
    cJSON_Delete(m);
}

static void count_note(struct traffic *t, const cJSON *m)
{
    const cJSON *method = cJSON_GetObjectItem(m, "method");

    ck_assert_msg(cJSON_IsString(method), "a watch line is not a "
                                          "notification");
    if (strcmp(method->valuestring, "samples") == 0)
        t->watch_samples++;
    else if (strcmp(method->valuestring, "heap") == 0)
        t->watch_heap++;
    else
        t->watch_other++;
}

/* Reads and counts the watcher's notifications until until_ms.  tetherd
 * hanging up on it (it disconnects a client that falls 1 MiB behind)
 * fails the test. */
static void watch_drain(struct traffic *t, int64_t until_ms)
{
    struct itest_client *c = &t->watch;

    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int64_t left;
        ssize_t k;

        if (nl != NULL) {
            cJSON *m;

            *nl = '\0';
            m = cJSON_Parse(c->buf);
            ck_assert_msg(m != NULL, "a watch line is not JSON");
            count_note(t, m);
            cJSON_Delete(m);
            c->len -= (size_t)(nl + 1 - c->buf);
            memmove(c->buf, nl + 1, c->len);
            continue;
        }
        ck_assert_msg(c->len < ITEST_LINE_MAX - 1, "a watch line is too long");
        left = until_ms - simproc_now_ms();
        if (left < 0)
            left = 0;
        if (poll(&pfd, 1, (int)left) <= 0) {
            if (left == 0)
                return;
            continue;
        }
        k = recv(c->fd, c->buf + c->len, ITEST_LINE_MAX - 1 - c->len,
                 MSG_DONTWAIT);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        ck_assert_msg(k > 0, "tetherd closed the watch connection");
        c->len += (size_t)k;
    }
}

static void call_ok(struct traffic *t, struct itest_client *c,
                    const char *method, const char *params)
{
    cJSON *m = itest_call(c, method, params);

    (void)itest_result(m);
    cJSON_Delete(m);
    t->calls++;
}

/* One history request; the kind turns with each.  Every range is full of
 * data long before warm-up ends, so that answers stop growing: a range
 * still filling makes bigger answers, and bigger buffers in the threads
 * that build them, until it is full. */
static void history_call(struct traffic *t)
{
    int64_t now = wall_us(), from = now - HISTORY_SPAN_US;
    char params[PARAMS_MAX];
    cJSON *m;

    switch (t->histories++ % 3) {
    case 0: /* two channels, raw: the first page of the newest second */
        snprintf(params, sizeof(params),
                 "{\"series\":\"adc\",\"from_us\":%lld,\"to_us\":%lld,"
                 "\"channels\":[0,1],\"limit\":%d}",
                 (long long)(now - 1000000), (long long)now, HISTORY_LIMIT);
        break;
    case 1: /* every channel in at most 10 buckets: 2 s, from adc_1s */
        snprintf(params, sizeof(params),
                 "{\"series\":\"adc\",\"from_us\":%lld,\"to_us\":%lld,"
                 "\"buckets\":10}",
                 (long long)from, (long long)now);
        break;
    default: /* heap reports, raw */
        snprintf(params, sizeof(params),
                 "{\"series\":\"heap\",\"from_us\":%lld,\"to_us\":%lld,"
                 "\"limit\":%d}",
                 (long long)from, (long long)now, HISTORY_LIMIT);
        break;
    }
    m = itest_call(&t->poll, "history", params);
    ck_assert(cJSON_IsArray(itest_member(itest_result(m), "points", NULL)));
    cJSON_Delete(m);
    t->calls++;
}

/* One round: a fresh connection asks for the version and goes; the
 * poller asks for status (whose store counters are kept), the newest
 * samples, a history and, every tenth round, the alerts. */
static void query_round(struct traffic *t, int wait_ms)
{
    struct itest_client once;
    char params[PARAMS_MAX];
    int64_t t0 = simproc_now_ms();
    const cJSON *r, *store;
    cJSON *m;

    itest_client_open(&once, run.sock, wait_ms);
    call_ok(t, &once, "version", NULL);
    itest_client_close(&once);
    t->connects++;

    m = itest_call(&t->poll, "status", NULL);
    r = itest_result(m);
    if (strcmp(itest_member(r, "link", "state")->valuestring, "connected"))
        t->not_connected++;
    store = itest_member(r, "store", NULL);
    t->written = (long long)itest_member(store, "written", NULL)->valuedouble;
    t->dropped = (long long)itest_member(store, "dropped", NULL)->valuedouble;
    cJSON_Delete(m);
    t->calls++;

    snprintf(params, sizeof(params), "{\"n\":%d}", LATEST_N);
    call_ok(t, &t->poll, "latest", params);
    history_call(t);
    if (t->rounds % 10 == 0)
        call_ok(t, &t->poll, "alerts", "{\"history\":10}");
    t->rounds++;
    if (simproc_now_ms() - t0 > t->slowest_ms)
        t->slowest_ms = (long)(simproc_now_ms() - t0);
}

static void traffic_close(struct traffic *t)
{
    itest_client_close(&t->watch);
    itest_client_close(&t->poll);
}

/* ---- The soak ---- */

/* When the bounds are full at the offered rate, and the ranges history
 * asks for hold data from end to end, in seconds. */
static long warmup_seconds(const struct bounds *b, double *heap_s,
                           double *raw_s)
{
    double adc_s = (double)b->ring_samples / FULL_RATE_HZ;
    double w;

    *heap_s = (double)b->ring_heap * HEAP_PERIOD_MS / 1000.0;
    *raw_s = (double)b->raw_max_rows / ((double)FULL_RATE_HZ * FULL_CHANNELS);
    w = fmax(fmax(adc_s, HISTORY_SPAN_US / 1e6), fmax(*heap_s, *raw_s));
    return (long)ceil(w) + WARMUP_MARGIN_S;
}

/* Retention has pruned raw rows: the oldest rowid left is above 1. */
static bool pruned(void)
{
    return itest_db_int(run.db, "SELECT min(rowid) FROM adc") > 1;
}

static long series_max(const long *v, long from, long to)
{
    long m = v[from];

    for (long i = from + 1; i < to; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

static long series_min(const long *v, long from, long to)
{
    long m = v[from];

    for (long i = from + 1; i < to; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

START_TEST(test_tetherd_memory_and_descriptors_stay_flat_at_full_ingest)
{
    static long rss[SERIES_MAX + 1], fds[SERIES_MAX + 1];
    char queue_flag[24], heap_flag[24], raw_flag[24];
    const char *flags[] = {"--queue-rows", queue_flag, NULL, NULL,
                           NULL,           NULL,       NULL};
    long seconds = soak_seconds;
    const char *trace_path = itest_env_or("SOAK_TRACE", NULL);
    FILE *trace = NULL;
    struct traffic t = {0};
    char wal[FILE_MAX + 8];
    struct bounds b;
    struct rss now;
    double heap_s, raw_s, drift;
    long warm, warm_end = 0, tail_from, base, top, fds_warm, fds_end, took;
    long long written_warm = 0, dropped_warm = 0;
    int64_t t0;
    int status;

    setup_run("run-");
    snprintf(wal, sizeof(wal), "%s-wal", run.db);
    snprintf(queue_flag, sizeof(queue_flag), "%d", SOAK_QUEUE_ROWS);
    read_bounds(flags, &b);
    warm = warmup_seconds(&b, &heap_s, &raw_s);
    say("soak: %ld s; tether-sim at %d Hz x %d channels (%d samples/s), a "
        "heap report every %d ms",
        seconds, FULL_RATE_HZ, FULL_CHANNELS, FULL_RATE_HZ * FULL_CHANNELS,
        HEAP_PERIOD_MS);
    say("soak: tetherd's store queue gets %d rows, not its default: the "
        "part of the queue's ring that is resident grows in steps until "
        "the whole ring has been written, which at 65536 rows took from 30 "
        "to 130 s (docs/TESTING.md, \"Soak\")",
        SOAK_QUEUE_ROWS);
    if (seconds < SHORT_RUN_FACTOR * warm) {
        say("soak: tetherd's defaults (heap ring %ld reports, %ld raw rows) "
            "need a %ld s warm-up: too long for %ld s, so this run gives it "
            "smaller bounds",
            b.ring_heap, b.raw_max_rows, warm, seconds);
        snprintf(heap_flag, sizeof(heap_flag), "%d", SHORT_RING_HEAP);
        snprintf(raw_flag, sizeof(raw_flag), "%d", SHORT_RAW_MAX_ROWS);
        flags[2] = "--ring-heap";
        flags[3] = heap_flag;
        flags[4] = "--raw-max-rows";
        flags[5] = raw_flag;
        read_bounds(flags, &b);
        warm = warmup_seconds(&b, &heap_s, &raw_s);
    }
    say("soak: bounds: %ld queued rows, %ld samples per ADC ring, %ld heap "
        "reports, %ld raw rows; the heap ring is full after %.1f s, the raw "
        "rows reach their bound after about %.1f s",
        b.queue_rows, b.ring_samples, b.ring_heap, b.raw_max_rows, heap_s,
        raw_s);
    ck_assert_msg(seconds >= warm + MEASURE_MIN_S,
                  "SOAK_SECONDS=%ld leaves no time to measure after a %ld s "
                  "warm-up",
                  seconds, warm);
    say("soak: warm-up: at least %ld s, until retention has pruned raw rows "
        "and %d history requests have been answered",
        warm, WARMUP_HISTORIES);
    if (trace_path != NULL) {
        trace = fopen(trace_path, "w");
        ck_assert_msg(trace != NULL, "cannot write %s", trace_path);
    }

    start_sim(FULL_RATE_HZ, FULL_CHANNELS);
    start_tetherd(flags, NULL);
    wait_ready(&t, WAIT_MS);
    watch_open(&t, WATCH_DECIMATE, WAIT_MS);
    t0 = simproc_now_ms();
    for (long s = 1; s <= seconds; s++) {
        watch_drain(&t, t0 + s * 1000);
        query_round(&t, WAIT_MS);
        rss_read(run.daemon, &now);
        rss[s] = now.all;
        fds[s] = itest_proc_fds(run.daemon);
        ck_assert_msg(rss[s] > 0 && fds[s] > 0, "tetherd is gone at %ld s", s);
        if (trace != NULL)
            fprintf(trace, "%ld %ld %ld %ld %ld %ld %lld %lld %lld\n", s,
                    now.all, now.anon, now.file, now.shmem, fds[s], t.written,
                    t.dropped, file_bytes(wal));
        if (warm_end == 0 && s >= warm && t.histories >= WARMUP_HISTORIES &&
            pruned()) {
            warm_end = s;
            written_warm = t.written;
            dropped_warm = t.dropped;
            say("soak: warm-up over at %ld s: resident %ld KiB, %ld "
                "descriptors",
                s, rss[s], fds[s]);
        }
        if (s % PROGRESS_EVERY_S == 0)
            say("soak: %5ld s  resident %ld KiB  descriptors %ld  rows "
                "written %lld  dropped %lld  watch: %lu samples, %lu heap",
                s, rss[s], fds[s], t.written, t.dropped, t.watch_samples,
                t.watch_heap);
        /* Warm-up spends the rest of its seconds on more history. */
        while (warm_end == 0 && t.histories < WARMUP_HISTORIES &&
               simproc_now_ms() < t0 + s * 1000 + BURST_MS) {
            history_call(&t);
            watch_drain(&t, simproc_now_ms());
        }
    }
    if (trace != NULL)
        fclose(trace);
    ck_assert_msg(warm_end > 0, "retention never pruned raw rows: the run "
                                "never reached tetherd's raw-row bound");
    ck_assert_msg(seconds - warm_end >= MEASURE_MIN_S,
                  "warm-up ended at %ld s, too late to measure in %ld s",
                  warm_end, seconds);

    tail_from = seconds - (seconds - warm_end) / TAIL_PARTS;
    if (seconds - tail_from < SETTLE_S)
        tail_from = seconds - SETTLE_S;
    base = series_max(rss, warm_end, warm_end + SETTLE_S);
    top = series_max(rss, tail_from + 1, seconds + 1);
    drift = 100.0 * (double)(top - base) / (double)base;
    /* A descriptor that leaked stays; one a client or a query held for a
     * moment does not: the fewest over a few samples counts. */
    fds_warm = series_min(fds, warm_end, warm_end + SETTLE_S);
    fds_end = series_min(fds, seconds - SETTLE_S + 1, seconds + 1);
    traffic_close(&t);
    status = stop_tetherd(STOP_MS, &took);
    itest_kill(&run.sim);

    say("soak: resident memory: at most %ld KiB over %d s from the end of "
        "warm-up (%ld s), at most %ld KiB over the last %ld s: drift %+.2f%% "
        "(limit %.0f%%)",
        base, SETTLE_S, warm_end, top, seconds - tail_from, drift,
        DRIFT_LIMIT_PCT);
    say("soak: resident memory from warm-up to the end: min %ld, max %ld "
        "KiB; at 1 s %ld KiB",
        series_min(rss, warm_end, seconds + 1),
        series_max(rss, warm_end, seconds + 1), rss[1]);
    say("soak: descriptors: %ld at the end of warm-up, %ld at the end",
        fds_warm, fds_end);
    say("soak: store after warm-up: %lld rows written (%.0f/s), %lld "
        "dropped for a full queue; in all %lld written, %lld dropped",
        t.written - written_warm,
        (double)(t.written - written_warm) / (double)(seconds - warm_end),
        t.dropped - dropped_warm, t.written, t.dropped);
    say("soak: queries: %u rounds (the slowest %ld ms), %lu answered "
        "requests, %lu connections opened and closed; watch: %lu samples, "
        "%lu heap, %lu other notifications; %lu status rounds without a "
        "connected link",
        t.rounds, t.slowest_ms, t.calls, t.connects, t.watch_samples,
        t.watch_heap, t.watch_other, t.not_connected);
    say("soak: SIGTERM: tetherd exited in %ld ms with status %d", took,
        status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "tetherd did not exit 0 on SIGTERM (see %s)", run.log);
    check_integrity();
    ck_assert_msg(t.written > written_warm, "nothing was stored after warm-up");
    ck_assert_msg(t.watch_samples > 0 && t.watch_heap > 0,
                  "the watcher got no samples or no heap reports");
    ck_assert_msg(drift <= DRIFT_LIMIT_PCT,
                  "resident memory grew %.2f%% after warm-up (%ld -> %ld "
                  "KiB)",
                  drift, base, top);
    ck_assert_msg(fds_end == fds_warm,
                  "descriptors changed after warm-up: %ld -> %ld", fds_warm,
                  fds_end);
    say("soak: passed");
}
END_TEST

/* ---- Under valgrind ---- */

/* Prints valgrind's summary lines from its log. */
static void print_valgrind_summary(const char *text)
{
    static const char *const keys[] = {
        "in use at exit:",  "total heap usage:", "All heap blocks",
        "definitely lost:", "indirectly lost:",  "possibly lost:",
        "still reachable:", "ERROR SUMMARY:",
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *p = strstr(text, keys[i]);

        if (p != NULL)
            say("valgrind: %.*s", (int)strcspn(p, "\n"), p);
    }
}

START_TEST(test_tetherd_under_valgrind_has_no_errors_and_leaks_nothing)
{
    static char text[ITEST_LOG_MAX];
    static const char *const none[] = {NULL};
    char log_opt[FILE_MAX + 16], exit_opt[32];
    const char *vg[] = {"--tool=memcheck",
                        "--leak-check=full",
                        "--show-leak-kinds=definite,indirect,possible",
                        "--errors-for-leak-kinds=definite,indirect",
                        "--track-origins=yes",
                        "--num-callers=30",
                        exit_opt,
                        log_opt,
                        NULL};
    long seconds = valgrind_seconds;
    struct traffic t = {0};
    long took;
    int64_t t0;
    int status;

    setup_run("vg-");
    snprintf(exit_opt, sizeof(exit_opt), "--error-exitcode=%d", VG_ERROR_EXIT);
    snprintf(log_opt, sizeof(log_opt), "--log-file=%s", run.out);
    say("valgrind: %ld s of tetherd under memcheck; tether-sim at %d Hz x %d "
        "channels, a heap report every %d ms; the same query traffic",
        seconds, VG_RATE_HZ, VG_CHANNELS, HEAP_PERIOD_MS);

    start_sim(VG_RATE_HZ, VG_CHANNELS);
    start_tetherd(none, vg);
    wait_ready(&t, VG_WAIT_MS);
    t.poll.wait_ms = VG_WAIT_MS;
    watch_open(&t, VG_DECIMATE, VG_WAIT_MS);
    t.watch.wait_ms = VG_WAIT_MS;
    t0 = simproc_now_ms();
    for (long s = 1; s <= seconds; s++) {
        watch_drain(&t, t0 + s * 1000);
        query_round(&t, VG_WAIT_MS);
    }
    traffic_close(&t);
    say("valgrind: %u query rounds (the slowest %ld ms), %lu answered "
        "requests; watch: %lu samples, %lu heap notifications; store: %lld "
        "rows written, %lld dropped",
        t.rounds, t.slowest_ms, t.calls, t.watch_samples, t.watch_heap,
        t.written, t.dropped);
    status = stop_tetherd(VG_STOP_MS, &took);
    itest_kill(&run.sim);
    itest_read_file(run.out, text, sizeof(text));
    say("valgrind: SIGTERM: tetherd exited in %ld ms with status %d", took,
        status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    print_valgrind_summary(text);
    if (strstr(text, "ERROR SUMMARY: 0 errors") == NULL) {
        say("valgrind: its log (the first %d bytes):", VG_LOG_SHOWN);
        say("%.*s", VG_LOG_SHOWN, text);
    }
    ck_assert_msg(status >= 0 && WIFEXITED(status),
                  "tetherd under valgrind did not exit within %d ms",
                  VG_STOP_MS);
    ck_assert_msg(WEXITSTATUS(status) != VG_ERROR_EXIT,
                  "valgrind found errors or leaks (its log is above)");
    ck_assert_msg(WEXITSTATUS(status) == 0,
                  "tetherd exited %d on SIGTERM under valgrind (see %s)",
                  WEXITSTATUS(status), run.log);
    ck_assert_msg(strstr(text, "ERROR SUMMARY: 0 errors") != NULL,
                  "valgrind's log has no clean summary (it is above)");
    check_integrity();
    say("valgrind: passed");
}
END_TEST

static Suite *soak_suite(void)
{
    Suite *s = suite_create("soak");
    TCase *tc = tcase_create("soak");
    TCase *vg = tcase_create("valgrind");

    /* The watchdog: Check kills the test and everything it started (its
     * process group) when a run takes this much longer than asked. */
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, (double)soak_seconds + 240);
    tcase_add_test(
        tc, test_tetherd_memory_and_descriptors_stay_flat_at_full_ingest);
    tcase_add_checked_fixture(vg, NULL, teardown);
    tcase_set_timeout(vg, (double)valgrind_seconds + 360);
    tcase_add_test(vg,
                   test_tetherd_under_valgrind_has_no_errors_and_leaks_nothing);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, vg);
    return s;
}

/* Each test makes its folder inside one made here, and a test that fails
 * never reaches its teardown: so the folder, with a database of up to a
 * gigabyte, goes here, whatever happened, unless SOAK_KEEP is set. */
int main(void)
{
    char base[DIR_MAX];
    int code;

    soak_seconds = env_seconds("SOAK_SECONDS", 600);
    valgrind_seconds = env_seconds("VALGRIND_SECONDS", 60);
    if (soak_seconds < 0 || valgrind_seconds < 0)
        return EXIT_FAILURE;
    snprintf(base, sizeof(base), "%.40s/soak-XXXXXX",
             itest_env_or("TMPDIR", "/tmp"));
    if (mkdtemp(base) == NULL || setenv("TMPDIR", base, 1) != 0) {
        fprintf(stderr, "soak: cannot make a folder in %s: %s\n",
                itest_env_or("TMPDIR", "/tmp"), strerror(errno));
        return EXIT_FAILURE;
    }
    printf("soak: files in %s\n", base);
    fflush(stdout);
    code = itest_run(soak_suite());
    if (itest_env_or("SOAK_KEEP", NULL) == NULL)
        itest_remove_tree(base);
    return code;
}
