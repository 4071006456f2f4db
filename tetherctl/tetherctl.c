/* tetherctl: the command-line client of tetherd's query socket
 * (docs/QUERY.md, "## tetherctl" there is its manual).
 *
 * Each invocation parses its arguments completely before it connects, so a
 * typo is a usage error (exit 2) whether or not the daemon runs.  It then
 * makes one or a few JSON-RPC calls through rpc.c, each bounded by
 * --timeout, and prints the result as tables (show.c) or as JSON for
 * scripts.  Exit codes are the interface scripts rely on: 0 success, 1 the
 * daemon or MCU said no (JSON-RPC error, NACK, malformed response), 2 bad
 * usage, 3 no daemon to talk to or no answer in time. */
#include "fmt.h"
#include "rpc.h"
#include "show.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define EXIT_OK     0
#define EXIT_FAIL   1
#define EXIT_USAGE  2
#define EXIT_NOCONN 3 /* tetherd cannot be reached or does not answer */

#define DEFAULT_SOCKET     "/run/tether/tetherd.sock"
#define DEFAULT_TIMEOUT_MS 5000
#define TIMEOUT_MAX_MS     3600000 /* an hour: anything longer is a typo */
#define CHANNELS_MAX       64      /* --channel options accepted */
#define LATEST_N_MAX       1000000 /* the daemon caps it at its ring size */
/* Points asked for per history call.  The daemon allows 10,000, but it
 * drops a client whose queued output would pass 256 KiB (QSRV_OUTPUT_MAX),
 * and heap rows are up to ~200 bytes, so pages are kept to a size whose
 * response fits that (and RPC_LINE_MAX) with room to spare. */
#define HISTORY_PAGE_MAX   1000
#define HISTORY_TOTAL_MAX  100000 /* points per tetherctl invocation */
#define ALERT_HISTORY_MAX  100000
#define HEAP_RECENT_US     (10LL * 60 * 1000000) /* window heap looks at */
#define HEAP_RECENT_SHOWN  5                     /* points heap prints */
#define TOPICS_MAX         8

struct ctl {
    const char *socket;
    int json;
    int timeout_ms;
    struct rpc *rpc;
};

static const char usage_text[] =
    "usage: tetherctl [--socket PATH] [--json] [--timeout MS] COMMAND "
    "[ARGS]\n"
    "\n"
    "Commands:\n"
    "  status                      link, MCU, heap, store and alerts\n"
    "  latest [-n N] [--channel C]...\n"
    "                              newest samples per channel\n"
    "  history [--series adc|heap] [--since DUR | --from S --to S]\n"
    "          [--bucket DUR] [--channel C]...\n"
    "                              stored history, all pages\n"
    "  heap                        heap state and its recent history\n"
    "  alerts [--history N]        active alerts and past alert rows\n"
    "  watch [--topics T,...] [--decimate N] [--count N]\n"
    "                              stream notifications until Ctrl-C\n"
    "  send set-rate HZ | set-channels MASK | heap-period MS |\n"
    "       scenario NAME [PARAM] | reboot | ping | hello\n"
    "                              command the MCU; prints ACK or NACK\n"
    "  flash                       firmware update (not available yet)\n"
    "  version                     daemon and protocol versions\n"
    "\n"
    "Options:\n"
    "  --socket PATH   query socket (default $TETHER_SOCKET, else\n"
    "                  " DEFAULT_SOCKET ")\n"
    "  --json          print results as JSON (watch: one object a line)\n"
    "  --timeout MS    wait this long for each response (default 5000)\n"
    "  --selftest      check the built-in parsers and formatters\n"
    "  -h, --help      this text\n"
    "DUR is a number with a unit: 500ms, 30s, 10m, 2h, 1d (bare: seconds).\n"
    "S is seconds since the Unix epoch.  Topics: samples, heap, alerts,\n"
    "link, mcu.\n"
    "\n"
    "Exit status: 0 success; 1 error from tetherd or the MCU (NACK);\n"
    "2 bad usage; 3 cannot connect, or no response within the timeout.\n";

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "tetherctl: %s%s%s\n\n%s", what, arg ? ": " : "",
            arg ? arg : "", usage_text);
    return EXIT_USAGE;
}

/* cJSON allocates through here so that running out of memory ends the
 * program with a message instead of a NULL deep inside a printer. */
static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL) {
        fprintf(stderr, "tetherctl: out of memory\n");
        abort();
    }
    return p;
}

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i], advancing *i past
 * what it consumed.  Returns 1 on a match, 0 when argv[*i] is another
 * word, -1 when the value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name,
                     const char **value)
{
    size_t len = strlen(name);

    if (strcmp(argv[*i], name) == 0) {
        if (*i + 1 >= argc)
            return -1;
        *value = argv[*i + 1];
        *i += 2;
        return 1;
    }
    if (strncmp(argv[*i], name, len) == 0 && argv[*i][len] == '=') {
        *value = argv[*i] + len + 1;
        *i += 1;
        return 1;
    }
    return 0;
}

/* Global options are accepted before and after the command.  Returns 1
 * when argv[*i] was one (consumed), 0 when not, or EXIT_USAGE negated
 * after reporting a bad value. */
static int global_option(struct ctl *c, int argc, char **argv, int *i)
{
    const char *v;
    long long ms;
    int m;

    if (strcmp(argv[*i], "--json") == 0) {
        c->json = 1;
        (*i)++;
        return 1;
    }
    m = opt_value(argc, argv, i, "--socket", &v);
    if (m == 1) {
        c->socket = v;
        return 1;
    }
    if (m < 0)
        return -usage_error("--socket needs a path", NULL);
    m = opt_value(argc, argv, i, "--timeout", &v);
    if (m == 1) {
        if (fmt_parse_int(v, 0, 1, TIMEOUT_MAX_MS, &ms) != 0)
            return -usage_error("bad --timeout (milliseconds, 1 to "
                                "3600000)",
                                v);
        c->timeout_ms = (int)ms;
        return 1;
    }
    if (m < 0)
        return -usage_error("--timeout needs milliseconds", NULL);
    return 0;
}

static int connect_ctl(struct ctl *c)
{
    int rc = rpc_open(&c->rpc, c->socket, c->timeout_ms);

    if (rc == 0)
        return EXIT_OK;
    fprintf(stderr,
            "tetherctl: cannot connect to %s: %s\n"
            "tetherctl: is tetherd running?  Use --socket PATH or "
            "TETHER_SOCKET to name another socket.\n",
            c->socket, strerror(-rc));
    return EXIT_NOCONN;
}

static int report(const struct ctl *c, int rc, const struct rpc_error *e)
{
    switch (rc) {
    case RPC_EREMOTE:
        fprintf(stderr, "tetherctl: %s (code %ld)\n", e->message, e->code);
        return EXIT_FAIL;
    case -ETIMEDOUT:
        fprintf(stderr, "tetherctl: no response from tetherd within %d ms\n",
                c->timeout_ms);
        return EXIT_NOCONN;
    case -EMSGSIZE:
        fprintf(stderr, "tetherctl: response longer than %d bytes\n",
                RPC_LINE_MAX);
        return EXIT_FAIL;
    case -EPROTO:
        fprintf(stderr, "tetherctl: malformed response from tetherd\n");
        return EXIT_FAIL;
    case -ECONNRESET:
        fprintf(stderr, "tetherctl: tetherd closed the connection\n");
        return EXIT_FAIL;
    case -EINTR:
        fprintf(stderr, "tetherctl: interrupted\n");
        return EXIT_FAIL;
    default:
        fprintf(stderr, "tetherctl: %s\n", strerror(-rc));
        return EXIT_FAIL;
    }
}

/* Connects if needed and makes one call; takes ownership of params.  On
 * EXIT_OK caller owns *result; free with cJSON_Delete(). */
static int call(struct ctl *c, const char *method, cJSON *params,
                cJSON **result)
{
    struct rpc_error e;
    int rc;

    *result = NULL;
    if (c->rpc == NULL) {
        rc = connect_ctl(c);
        if (rc != EXIT_OK) {
            cJSON_Delete(params);
            return rc;
        }
    }
    rc = rpc_call(c->rpc, method, params, result, &e);
    return rc == 0 ? EXIT_OK : report(c, rc, &e);
}

static void print_json(const cJSON *j)
{
    char *text = cJSON_Print(j);

    printf("%s\n", text);
    cJSON_free(text);
}

/* Parses the arguments of a command with no arguments of its own. */
static int no_args(struct ctl *c, int argc, char **argv)
{
    for (int i = 0; i < argc;) {
        int g = global_option(c, argc, argv, &i);

        if (g < 0)
            return -g;
        if (g == 0)
            return usage_error("unexpected argument", argv[i]);
    }
    return EXIT_OK;
}

/* Runs a call whose result is printed as JSON or by show. */
static int simple(struct ctl *c, int argc, char **argv, const char *method,
                  cJSON *params, void (*show)(const cJSON *))
{
    cJSON *res;
    int rc = no_args(c, argc, argv);

    if (rc != EXIT_OK) {
        cJSON_Delete(params);
        return rc;
    }
    rc = call(c, method, params, &res);
    if (rc != EXIT_OK)
        return rc;
    if (c->json)
        print_json(res);
    else
        show(res);
    cJSON_Delete(res);
    return EXIT_OK;
}

static int cmd_status(struct ctl *c, int argc, char **argv)
{
    return simple(c, argc, argv, "status", NULL, show_status);
}

static void show_version(const cJSON *v)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "daemon");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(v, "query_protocol");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(v, "wire_protocol");

    printf("tetherd %s, query protocol %.0f, wire protocol %.0f\n",
           cJSON_IsString(d) ? d->valuestring : "-",
           cJSON_IsNumber(q) ? q->valuedouble : -1.0,
           cJSON_IsNumber(w) ? w->valuedouble : -1.0);
}

static int cmd_version(struct ctl *c, int argc, char **argv)
{
    return simple(c, argc, argv, "version", NULL, show_version);
}

static int cmd_flash(struct ctl *c, int argc, char **argv)
{
    return simple(c, argc, argv, "flash", NULL, print_json);
}

/* Adds a --channel value to the channels array, creating it. */
static int add_channel(cJSON *params, const char *v)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(params, "channels");
    long long ch;

    if (fmt_parse_int(v, 0, 0, CHANNELS_MAX - 1, &ch) != 0)
        return usage_error("bad --channel (0 to 63)", v);
    if (arr == NULL)
        arr = cJSON_AddArrayToObject(params, "channels");
    if (cJSON_GetArraySize(arr) >= CHANNELS_MAX)
        return usage_error("too many --channel options", v);
    cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)ch));
    return EXIT_OK;
}

static int cmd_latest(struct ctl *c, int argc, char **argv)
{
    cJSON *params = cJSON_CreateObject();
    cJSON *res;
    long long n;
    int rc = EXIT_OK;

    for (int i = 0; i < argc && rc == EXIT_OK;) {
        const char *v;
        int m = global_option(c, argc, argv, &i);

        if (m < 0)
            rc = -m;
        else if (m > 0)
            continue;
        else if ((m = opt_value(argc, argv, &i, "-n", &v)) != 0)
            rc = m < 0 || fmt_parse_int(v, 0, 1, LATEST_N_MAX, &n) != 0
                     ? usage_error("bad -n (samples per channel)",
                                   m < 0 ? NULL : v)
                     : (cJSON_AddNumberToObject(params, "n", (double)n),
                        EXIT_OK);
        else if ((m = opt_value(argc, argv, &i, "--channel", &v)) != 0)
            rc = m < 0 ? usage_error("--channel needs a number", NULL)
                       : add_channel(params, v);
        else
            rc = usage_error("unexpected argument", argv[i]);
    }
    if (rc != EXIT_OK)
        goto out_params;
    rc = call(c, "latest", params, &res);
    params = NULL;
    if (rc != EXIT_OK)
        return rc;
    if (c->json)
        print_json(res);
    else
        show_latest(res);
    cJSON_Delete(res);
    return EXIT_OK;

out_params:
    cJSON_Delete(params);
    return rc;
}

/* Receives each page of history results; may detach items from it. */
struct pager {
    void (*page)(cJSON *result, void *arg);
    void *arg;
    size_t total;  /* points received so far */
    int truncated; /* stopped at HISTORY_TOTAL_MAX with more to come */
};

/* Calls "history" with base (borrowed) until next_after_us is null or
 * HISTORY_TOTAL_MAX points have arrived. */
static int history_pages(struct ctl *c, const cJSON *base, struct pager *pg)
{
    double cursor = 0;
    int have_cursor = 0;

    pg->total = 0;
    pg->truncated = 0;
    for (;;) {
        cJSON *params = cJSON_Duplicate(base, 1);
        size_t left = HISTORY_TOTAL_MAX - pg->total;
        cJSON *res;
        const cJSON *next, *points;
        int rc;

        cJSON_AddNumberToObject(
            params, "limit",
            (double)(left < HISTORY_PAGE_MAX ? left : HISTORY_PAGE_MAX));
        if (have_cursor)
            cJSON_AddNumberToObject(params, "after_us", cursor);
        rc = call(c, "history", params, &res);
        if (rc != EXIT_OK)
            return rc;
        points = cJSON_GetObjectItemCaseSensitive(res, "points");
        next = cJSON_GetObjectItemCaseSensitive(res, "next_after_us");
        if (!cJSON_IsArray(points) ||
            (next != NULL && !cJSON_IsNull(next) && !cJSON_IsNumber(next)) ||
            (cJSON_IsNumber(next) && have_cursor &&
             next->valuedouble <= cursor)) {
            /* A cursor that does not advance would page forever. */
            cJSON_Delete(res);
            return report(c, -EPROTO, NULL);
        }
        pg->total += (size_t)cJSON_GetArraySize(points);
        have_cursor = cJSON_IsNumber(next);
        if (have_cursor)
            cursor = next->valuedouble;
        pg->page(res, pg->arg);
        cJSON_Delete(res);
        if (!have_cursor)
            return EXIT_OK;
        if (pg->total >= HISTORY_TOTAL_MAX) {
            pg->truncated = 1;
            return EXIT_OK;
        }
    }
}

struct history_out {
    int json, heap, bucketed;
    int header_done;
    cJSON *all; /* JSON mode: every point, in order */
};

static void history_page(cJSON *res, void *arg)
{
    struct history_out *h = arg;
    cJSON *points = cJSON_GetObjectItemCaseSensitive(res, "points");

    if (h->json) {
        while (cJSON_GetArraySize(points) > 0)
            cJSON_AddItemToArray(h->all, cJSON_DetachItemFromArray(points, 0));
        return;
    }
    if (!h->header_done && cJSON_GetArraySize(points) > 0) {
        show_history_header(h->heap, h->bucketed);
        h->header_done = 1;
    }
    show_history_points(points, h->heap, h->bucketed);
}

static int history_args(struct ctl *c, int argc, char **argv, cJSON *params,
                        struct history_out *h)
{
    int64_t since = -1, bucket = 0;
    long long from = -1, to = -1;
    const char *series = "adc";

    for (int i = 0; i < argc;) {
        const char *v;
        int m = global_option(c, argc, argv, &i);

        if (m < 0)
            return -m;
        if (m > 0)
            continue;
        if ((m = opt_value(argc, argv, &i, "--series", &v)) != 0) {
            if (m < 0 || (strcmp(v, "adc") != 0 && strcmp(v, "heap") != 0))
                return usage_error("--series is adc or heap", m < 0 ? NULL : v);
            series = v;
        } else if ((m = opt_value(argc, argv, &i, "--since", &v)) != 0) {
            if (m < 0 || fmt_parse_duration(v, &since) != 0 || since <= 0)
                return usage_error("bad --since (e.g. 10m, 2h, 1d)",
                                   m < 0 ? NULL : v);
        } else if ((m = opt_value(argc, argv, &i, "--bucket", &v)) != 0) {
            if (m < 0 || fmt_parse_duration(v, &bucket) != 0)
                return usage_error("bad --bucket (e.g. 1s, 1m, 1h)",
                                   m < 0 ? NULL : v);
        } else if ((m = opt_value(argc, argv, &i, "--from", &v)) != 0) {
            if (m < 0 ||
                fmt_parse_int(v, 0, 0, INT64_MAX / 1000000, &from) != 0)
                return usage_error("bad --from (epoch seconds)",
                                   m < 0 ? NULL : v);
        } else if ((m = opt_value(argc, argv, &i, "--to", &v)) != 0) {
            if (m < 0 || fmt_parse_int(v, 0, 0, INT64_MAX / 1000000, &to) != 0)
                return usage_error("bad --to (epoch seconds)",
                                   m < 0 ? NULL : v);
        } else if ((m = opt_value(argc, argv, &i, "--channel", &v)) != 0) {
            int rc = m < 0 ? usage_error("--channel needs a number", NULL)
                           : add_channel(params, v);

            if (rc != EXIT_OK)
                return rc;
        } else {
            return usage_error("unexpected argument", argv[i]);
        }
    }
    if (since >= 0 && (from >= 0 || to >= 0))
        return usage_error("--since excludes --from and --to", NULL);
    if (from >= 0 && to >= 0 && to < from)
        return usage_error("--to is before --from", NULL);
    cJSON_AddStringToObject(params, "series", series);
    if (since >= 0) {
        int64_t now = fmt_now_us();

        cJSON_AddNumberToObject(params, "from_us", (double)(now - since));
        cJSON_AddNumberToObject(params, "to_us", (double)now);
    }
    if (from >= 0)
        cJSON_AddNumberToObject(params, "from_us", (double)from * 1e6);
    if (to >= 0)
        cJSON_AddNumberToObject(params, "to_us", (double)to * 1e6);
    if (bucket > 0)
        cJSON_AddNumberToObject(params, "bucket_us", (double)bucket);
    h->heap = strcmp(series, "heap") == 0;
    h->bucketed = bucket > 0;
    return EXIT_OK;
}

static int cmd_history(struct ctl *c, int argc, char **argv)
{
    struct history_out h = {.json = c->json};
    struct pager pg = {.page = history_page, .arg = &h};
    cJSON *params = cJSON_CreateObject();
    int rc = history_args(c, argc, argv, params, &h);

    if (rc != EXIT_OK)
        goto out_params;
    if (h.json)
        h.all = cJSON_CreateArray();
    rc = history_pages(c, params, &pg);
    if (rc != EXIT_OK)
        goto out_all;
    if (h.json) {
        cJSON *out = cJSON_CreateObject();

        cJSON_AddItemToObject(
            out, "series",
            cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(params, "series"),
                            1));
        cJSON_AddItemToObject(out, "points", h.all);
        h.all = NULL;
        cJSON_AddBoolToObject(out, "truncated", pg.truncated);
        print_json(out);
        cJSON_Delete(out);
    } else if (pg.total == 0) {
        printf("no points\n");
    }
    if (pg.truncated)
        fprintf(stderr,
                "tetherctl: note: stopped after %d points; narrow the range "
                "or use --bucket\n",
                HISTORY_TOTAL_MAX);

out_all:
    cJSON_Delete(h.all);
out_params:
    cJSON_Delete(params);
    return rc;
}

/* Keeps the newest HEAP_RECENT_SHOWN points of every page it sees. */
static void keep_recent(cJSON *res, void *arg)
{
    cJSON *recent = arg;
    cJSON *points = cJSON_GetObjectItemCaseSensitive(res, "points");

    while (cJSON_GetArraySize(points) > 0) {
        cJSON_AddItemToArray(recent, cJSON_DetachItemFromArray(points, 0));
        if (cJSON_GetArraySize(recent) > HEAP_RECENT_SHOWN)
            cJSON_DeleteItemFromArray(recent, 0);
    }
}

static int cmd_heap(struct ctl *c, int argc, char **argv)
{
    cJSON *recent = cJSON_CreateArray();
    struct pager pg = {.page = keep_recent, .arg = recent};
    cJSON *status = NULL, *params, *heap;
    int rc = no_args(c, argc, argv);

    if (rc != EXIT_OK)
        goto out_recent;
    rc = call(c, "status", NULL, &status);
    if (rc != EXIT_OK)
        goto out_recent;
    heap = cJSON_GetObjectItemCaseSensitive(status, "heap");
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "series", "heap");
    cJSON_AddNumberToObject(params, "from_us",
                            (double)(fmt_now_us() - HEAP_RECENT_US));
    if (!c->json)
        show_heap(heap);
    rc = history_pages(c, params, &pg);
    cJSON_Delete(params);
    if (rc != EXIT_OK)
        goto out_status;
    if (c->json) {
        cJSON *out = cJSON_CreateObject();

        cJSON_AddItemToObject(out, "heap", cJSON_Duplicate(heap, 1));
        cJSON_AddItemToObject(out, "recent", recent);
        recent = NULL;
        print_json(out);
        cJSON_Delete(out);
    } else if (cJSON_GetArraySize(recent) == 0) {
        printf("Recent history\n  none in the last 10 min\n");
    } else {
        printf("Recent history\n");
        show_history_header(1, 0);
        show_history_points(recent, 1, 0);
    }

out_status:
    cJSON_Delete(status);
out_recent:
    cJSON_Delete(recent);
    return rc;
}

static int cmd_alerts(struct ctl *c, int argc, char **argv)
{
    cJSON *params = cJSON_CreateObject();
    cJSON *res;
    long long n;
    int rc = EXIT_OK;

    for (int i = 0; i < argc && rc == EXIT_OK;) {
        const char *v;
        int m = global_option(c, argc, argv, &i);

        if (m < 0)
            rc = -m;
        else if (m > 0)
            continue;
        else if ((m = opt_value(argc, argv, &i, "--history", &v)) != 0) {
            if (m < 0 || fmt_parse_int(v, 0, 0, ALERT_HISTORY_MAX, &n) != 0)
                rc = usage_error("bad --history (rows)", m < 0 ? NULL : v);
            else
                cJSON_AddNumberToObject(params, "history", (double)n);
        } else {
            rc = usage_error("unexpected argument", argv[i]);
        }
    }
    if (rc != EXIT_OK) {
        cJSON_Delete(params);
        return rc;
    }
    rc = call(c, "alerts", params, &res);
    if (rc != EXIT_OK)
        return rc;
    if (c->json)
        print_json(res);
    else
        show_alerts(res);
    cJSON_Delete(res);
    return EXIT_OK;
}

/* ---- watch ---- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct watch {
    int json;
    long long count; /* stop after this many; 0: never */
    long long seen;
};

static void print_note(const cJSON *note, void *arg)
{
    struct watch *w = arg;

    if (w->count > 0 && w->seen >= w->count)
        return;
    if (w->json) {
        char *text = cJSON_PrintUnformatted(note);

        printf("%s\n", text);
        cJSON_free(text);
    } else {
        show_note(note);
    }
    fflush(stdout);
    w->seen++;
}

static int watch_args(struct ctl *c, int argc, char **argv, cJSON *params,
                      struct watch *w)
{
    static const char *const known[] = {"samples", "heap", "alerts", "link",
                                        "mcu"};

    for (int i = 0; i < argc;) {
        const char *v;
        long long n;
        int m = global_option(c, argc, argv, &i);

        if (m < 0)
            return -m;
        if (m > 0)
            continue;
        if ((m = opt_value(argc, argv, &i, "--topics", &v)) != 0) {
            cJSON *topics = cJSON_AddArrayToObject(params, "topics");
            char word[16];
            const char *p = m < 0 ? NULL : v;

            if (p == NULL)
                return usage_error("--topics needs a list", NULL);
            while (*p != '\0') {
                size_t len = strcspn(p, ",");
                int ok = 0;

                for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
                    ok |= strlen(known[k]) == len &&
                          strncmp(known[k], p, len) == 0;
                if (!ok || cJSON_GetArraySize(topics) >= TOPICS_MAX)
                    return usage_error("bad --topics (samples, heap, "
                                       "alerts, link, mcu)",
                                       v);
                snprintf(word, sizeof(word), "%.*s", (int)len, p);
                cJSON_AddItemToArray(topics, cJSON_CreateString(word));
                p += len + (p[len] == ',');
            }
            if (cJSON_GetArraySize(topics) == 0)
                return usage_error("--topics is empty", NULL);
        } else if ((m = opt_value(argc, argv, &i, "--decimate", &v)) != 0) {
            if (m < 0 || fmt_parse_int(v, 0, 1, 1000000, &n) != 0)
                return usage_error("bad --decimate", m < 0 ? NULL : v);
            cJSON_AddNumberToObject(params, "decimate", (double)n);
        } else if ((m = opt_value(argc, argv, &i, "--count", &v)) != 0) {
            if (m < 0 || fmt_parse_int(v, 0, 1, INT64_MAX, &n) != 0)
                return usage_error("bad --count", m < 0 ? NULL : v);
            w->count = n;
        } else {
            return usage_error("unexpected argument", argv[i]);
        }
    }
    return EXIT_OK;
}

static int cmd_watch(struct ctl *c, int argc, char **argv)
{
    struct watch w = {.json = c->json};
    struct sigaction sa;
    cJSON *params = cJSON_CreateObject();
    cJSON *res;
    int rc = watch_args(c, argc, argv, params, &w);

    if (rc != EXIT_OK) {
        cJSON_Delete(params);
        return rc;
    }
    /* No SA_RESTART: Ctrl-C must wake the poll() that waits for data.
     * SA_RESETHAND lets a second Ctrl-C kill us should the first land just
     * before poll() blocks. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = connect_ctl(c);
    if (rc != EXIT_OK) {
        cJSON_Delete(params);
        return rc;
    }
    /* Notifications may overtake the watch result; print them in order. */
    rpc_set_note_fn(c->rpc, print_note, &w);
    rc = call(c, "watch", params, &res);
    if (rc != EXIT_OK)
        return stop_requested ? EXIT_OK : rc;
    cJSON_Delete(res);
    while (!stop_requested && (w.count == 0 || w.seen < w.count)) {
        cJSON *note;
        int r = rpc_next_note(c->rpc, -1, &note);

        if (r == -EINTR && stop_requested)
            break;
        if (r != 0)
            return report(c, r, NULL);
        print_note(note, &w);
        cJSON_Delete(note);
    }
    return EXIT_OK;
}

/* ---- send ---- */

static int send_value(cJSON *params, const char *command, const char *key,
                      const char *v, int hex, const char *what)
{
    long long n;

    if (v == NULL || fmt_parse_int(v, hex, 0, UINT32_MAX, &n) != 0)
        return usage_error(what, v);
    cJSON_AddStringToObject(params, "command", command);
    cJSON_AddNumberToObject(params, key, (double)n);
    return EXIT_OK;
}

static int send_args(struct ctl *c, int argc, char **argv, cJSON *params)
{
    const char *words[3] = {NULL, NULL, NULL};
    int nwords = 0;
    long long n;

    for (int i = 0; i < argc;) {
        int m = global_option(c, argc, argv, &i);

        if (m < 0)
            return -m;
        if (m > 0)
            continue;
        if (nwords == 3)
            return usage_error("unexpected argument", argv[i]);
        words[nwords++] = argv[i++];
    }
    if (nwords == 0)
        return usage_error("send needs a command", NULL);
    if (strcmp(words[0], "set-rate") == 0 && nwords <= 2)
        return send_value(params, "set_rate", "value", words[1], 0,
                          "set-rate needs scans per second");
    if (strcmp(words[0], "set-channels") == 0 && nwords <= 2)
        return send_value(params, "set_channels", "value", words[1], 1,
                          "set-channels needs a channel mask");
    if (strcmp(words[0], "heap-period") == 0 && nwords <= 2)
        return send_value(params, "set_heap_period", "value", words[1], 0,
                          "heap-period needs milliseconds");
    if (strcmp(words[0], "scenario") == 0 && nwords >= 2) {
        cJSON_AddStringToObject(params, "command", "scenario");
        cJSON_AddStringToObject(params, "name", words[1]);
        if (nwords == 3) {
            if (fmt_parse_int(words[2], 0, 0, UINT32_MAX, &n) != 0)
                return usage_error("bad scenario parameter", words[2]);
            cJSON_AddNumberToObject(params, "param", (double)n);
        }
        return EXIT_OK;
    }
    if ((strcmp(words[0], "reboot") == 0 || strcmp(words[0], "ping") == 0 ||
         strcmp(words[0], "hello") == 0) &&
        nwords == 1) {
        cJSON_AddStringToObject(params, "command", words[0]);
        return EXIT_OK;
    }
    return usage_error("bad send command", words[0]);
}

static int cmd_send(struct ctl *c, int argc, char **argv)
{
    cJSON *params = cJSON_CreateObject();
    cJSON *res;
    int ack;
    int rc = send_args(c, argc, argv, params);

    if (rc != EXIT_OK) {
        cJSON_Delete(params);
        return rc;
    }
    rc = call(c, "send", params, &res);
    if (rc != EXIT_OK)
        return rc;
    if (c->json) {
        print_json(res);
        ack = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "ack"));
    } else {
        ack = show_ack(res);
    }
    cJSON_Delete(res);
    return ack ? EXIT_OK : EXIT_FAIL;
}

static const struct {
    const char *name;
    int (*run)(struct ctl *c, int argc, char **argv);
} commands[] = {
    {"status", cmd_status}, {"latest", cmd_latest}, {"history", cmd_history},
    {"heap", cmd_heap},     {"alerts", cmd_alerts}, {"watch", cmd_watch},
    {"send", cmd_send},     {"flash", cmd_flash},   {"version", cmd_version},
};

int main(int argc, char **argv)
{
    cJSON_Hooks hooks = {.malloc_fn = xmalloc, .free_fn = free};
    struct ctl c = {.socket = DEFAULT_SOCKET, .timeout_ms = DEFAULT_TIMEOUT_MS};
    const char *env = getenv("TETHER_SOCKET");
    int i = 1;
    int rc;

    cJSON_InitHooks(&hooks);
    if (env != NULL && env[0] != '\0')
        c.socket = env;
    while (i < argc) {
        int g;

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--selftest") == 0)
            return fmt_selftest() == 0 ? EXIT_OK : EXIT_FAIL;
        g = global_option(&c, argc, argv, &i);
        if (g < 0)
            return -g;
        if (g == 0)
            break;
    }
    if (i >= argc)
        return usage_error("no command", NULL);
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(argv[i], commands[k].name) != 0)
            continue;
        rc = commands[k].run(&c, argc - i - 1, argv + i + 1);
        rpc_close(c.rpc);
        return rc;
    }
    return usage_error("unknown command", argv[i]);
}
