/* tetherctl: the command-line client of tetherd's query socket
 * (docs/QUERY.md, "## tetherctl" there is its manual).
 *
 * Each invocation parses its arguments completely before it connects, so a
 * typo is a usage error (exit 2) whether or not the daemon runs.  Every
 * command declares its options in a table that one parser reads, so that
 * they all accept the same forms ("--name VALUE", "--name=VALUE", global
 * options anywhere) and report bad values the same way.  It then makes
 * one or a few JSON-RPC calls through rpc.c, each bounded by --timeout,
 * and prints the result as tables (show.c), a chart (plot.c) or JSON for
 * scripts; `watch` and `flash` then follow notifications (a flash runs
 * for minutes in tetherd, which reports its progress and outcome).
 * `image` needs no daemon: it wraps a firmware into an image file
 * (mkimage.c).  Exit codes are the interface scripts rely on: 0 success,
 * 1 the daemon or MCU said no (JSON-RPC error, NACK, malformed response,
 * a failed or reverted flash), 2 bad usage, 3 no daemon to talk to or no
 * answer in time. */
#include "fmt.h"
#include "mkimage.h"
#include "plot.h"
#include "rpc.h"
#include "show.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
/* Points asked for per history call.  The daemon allows 5,000, but it
 * drops a client whose queued output would pass 1 MiB (QSRV_OUTPUT_MAX),
 * and heap rows are up to ~200 bytes, so pages are kept to a size whose
 * response fits that (and RPC_LINE_MAX) with room to spare. */
#define HISTORY_PAGE_MAX   1000
#define HISTORY_TOTAL_MAX  100000 /* points per tetherctl invocation */
#define ALERT_HISTORY_MAX  100000
#define HEAP_RECENT_US     (10LL * 60 * 1000000) /* window heap looks at */
#define HEAP_RECENT_SHOWN  5                     /* points heap prints */
#define PLOT_SINCE_US      3600000000LL          /* plot's default range */
#define TOPICS_MAX         8
#define WORDS_MAX          3 /* positional arguments of a command */
#define MESSAGE_MAX        RPC_MESSAGE_MAX

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
    "  history [--series adc|heap] [--since T | --from S] [--until T | --to "
    "S]\n"
    "          [--bucket DUR] [--channel C]...\n"
    "                              stored history, all pages\n"
    "  heap [--since T] [--until T]\n"
    "                              heap state and its recent history\n"
    "  plot SERIES [--since T] [--until T] [--width N] [--height N]\n"
    "       [--threshold V|none]   chart of heap.free, heap.largest or "
    "adc.N\n"
    "  alerts [--history N]        active alerts and past alert rows\n"
    "  watch [--topics T,...] [--decimate N] [--count N]\n"
    "                              stream notifications until Ctrl-C\n"
    "  send set-rate HZ | set-channels MASK | heap-period MS |\n"
    "       scenario NAME [PARAM] | reboot | ping | hello\n"
    "                              command the MCU; prints ACK or NACK\n"
    "  flash [--no-confirm] [--force] IMAGE\n"
    "                              update the MCU's firmware (admin)\n"
    "  image --board NAME --version X.Y.Z [--build-id N]\n"
    "        [--load-addr A] [--entry E] INPUT -o OUTPUT\n"
    "                              wrap a built firmware into an image\n"
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
    "T is a time: DUR ago (10m), now, or ISO 8601 local or UTC time\n"
    "(2026-11-25T07:00, 2026-11-25T07:00:00Z).  S is seconds since the\n"
    "Unix epoch.  Topics: samples, heap, alerts, link, mcu, flash.\n"
    "\n"
    "Exit status: 0 success; 1 error from tetherd or the MCU (a NACK, a\n"
    "failed or reverted flash); 2 bad usage; 3 cannot connect, or no\n"
    "response within the timeout.\n";

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

static void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n);

    if (p == NULL) {
        fprintf(stderr, "tetherctl: out of memory\n");
        abort();
    }
    return p;
}

/* Sets params[key] to item, replacing an earlier value (an option given
 * twice), so that the request never carries a key twice. */
static void put(cJSON *params, const char *key, cJSON *item)
{
    cJSON_DeleteItemFromObjectCaseSensitive(params, key);
    cJSON_AddItemToObject(params, key, item);
}

/* ---- options ---- */

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

enum opt_type {
    OPT_INT,      /* a whole number in [min, max] */
    OPT_DURATION, /* fmt_parse_duration(): microseconds in [min, max] */
    OPT_TIME,     /* fmt_parse_time(): microseconds since the epoch */
    OPT_WORD,     /* one of choices, or any text when choices is NULL */
    OPT_LIST,     /* comma-separated choices: an array of strings */
    OPT_CHANNEL,  /* a channel number appended to params "channels" */
    OPT_FLAG,     /* no value: *num is set to 1 */
};

/* One option of a command: where its value goes and what a bad one is
 * called in the usage error. */
struct opt {
    const char *name; /* "--count", "-n" */
    enum opt_type type;
    const char *what;  /* "bad --count" */
    const char *key;   /* params member that takes the value, or NULL */
    int64_t *num;      /* OPT_INT, OPT_DURATION, OPT_TIME: or NULL */
    const char **word; /* OPT_WORD: or NULL */
    long long min, max;
    const char *const *choices; /* NULL-terminated */
};

/* What parse_args() reads into. */
struct args {
    const struct opt *opts;
    size_t nopts;
    cJSON *params;      /* NULL when no option has a key */
    const char **words; /* positional arguments; NULL: none accepted */
    int words_max, nwords;
    int64_t now_us; /* what OPT_TIME values are relative to */
};

static const char *const series_names[] = {"adc", "heap", NULL};
static const char *const topic_names[] = {"samples", "heap",  "alerts", "link",
                                          "mcu",     "flash", NULL};

static int is_choice(const char *const *choices, const char *s, size_t len)
{
    for (size_t k = 0; choices[k] != NULL; k++)
        if (strlen(choices[k]) == len && strncmp(choices[k], s, len) == 0)
            return 1;
    return 0;
}

/* Adds a channel number to params "channels", creating the array. */
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

static int list_value(const struct opt *o, const char *v, cJSON *params)
{
    cJSON *list = cJSON_CreateArray();
    const char *p = v;

    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char word[32];

        if (len >= sizeof(word) || !is_choice(o->choices, p, len) ||
            cJSON_GetArraySize(list) >= TOPICS_MAX) {
            cJSON_Delete(list);
            return usage_error(o->what, v);
        }
        snprintf(word, sizeof(word), "%.*s", (int)len, p);
        cJSON_AddItemToArray(list, cJSON_CreateString(word));
        p += len + (p[len] == ',');
    }
    if (cJSON_GetArraySize(list) == 0) {
        cJSON_Delete(list);
        return usage_error(o->what, v);
    }
    put(params, o->key, list);
    return EXIT_OK;
}

/* Reads the value v of option o into its destinations. */
static int set_opt(const struct opt *o, const char *v, struct args *a)
{
    long long n;
    int64_t t;

    switch (o->type) {
    case OPT_INT:
        if (fmt_parse_int(v, 0, o->min, o->max, &n) != 0)
            return usage_error(o->what, v);
        t = (int64_t)n;
        break;
    case OPT_DURATION:
        if (fmt_parse_duration(v, &t) != 0 || t < o->min || t > o->max)
            return usage_error(o->what, v);
        break;
    case OPT_TIME:
        if (fmt_parse_time(v, a->now_us, &t) != 0)
            return usage_error(o->what, v);
        break;
    case OPT_WORD:
        if (o->choices != NULL && !is_choice(o->choices, v, strlen(v)))
            return usage_error(o->what, v);
        if (o->word != NULL)
            *o->word = v;
        if (o->key != NULL)
            put(a->params, o->key, cJSON_CreateString(v));
        return EXIT_OK;
    case OPT_LIST:
        return list_value(o, v, a->params);
    default:
        return add_channel(a->params, v);
    }
    if (o->num != NULL)
        *o->num = t;
    if (o->key != NULL)
        put(a->params, o->key, cJSON_CreateNumber((double)t));
    return EXIT_OK;
}

/* Parses a command's arguments: global options, the options in a->opts
 * and up to a->words_max positional words.  Returns EXIT_OK or, after
 * printing the usage error, EXIT_USAGE. */
static int parse_args(struct ctl *c, int argc, char **argv, struct args *a)
{
    a->nwords = 0;
    for (int i = 0; i < argc;) {
        const char *arg = argv[i];
        int g = global_option(c, argc, argv, &i), matched = 0;

        if (g < 0)
            return -g;
        if (g > 0)
            continue;
        for (size_t k = 0; k < a->nopts && !matched; k++) {
            const char *v;
            int m;
            char need[64];
            int rc;

            if (a->opts[k].type == OPT_FLAG) {
                if (strcmp(argv[i], a->opts[k].name) != 0)
                    continue;
                *a->opts[k].num = 1;
                i++;
                matched = 1;
                continue;
            }
            m = opt_value(argc, argv, &i, a->opts[k].name, &v);
            if (m == 0)
                continue;
            if (m < 0) {
                snprintf(need, sizeof(need), "%s needs a value",
                         a->opts[k].name);
                return usage_error(need, NULL);
            }
            rc = set_opt(&a->opts[k], v, a);
            if (rc != EXIT_OK)
                return rc;
            matched = 1;
        }
        if (matched)
            continue;
        /* Anything else that looks like an option is not a word. */
        if (a->words == NULL || a->nwords == a->words_max ||
            (arg[0] == '-' && arg[1] != '\0' && (arg[1] < '0' || arg[1] > '9')))
            return usage_error("unexpected argument", arg);
        a->words[a->nwords++] = arg;
        i++;
    }
    return EXIT_OK;
}

/* ---- calls ---- */

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
    char msg[MESSAGE_MAX];

    switch (rc) {
    case RPC_EREMOTE:
        /* The message comes from the daemon: no terminal controls. */
        snprintf(msg, sizeof(msg), "%s", e->message);
        for (char *p = msg; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        fprintf(stderr, "tetherctl: %s (code %ld)\n", msg, e->code);
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

/* Turns every whole number of j that a double holds exactly into raw
 * text.  cJSON prints a number like 1764045600000000 as 1.7640456e+15,
 * which scripts would read back as a float; tetherd sends times in
 * microseconds as plain integers and they stay so. */
static void exact_integers(cJSON *j)
{
    cJSON *c;

    cJSON_ArrayForEach(c, j)
    {
        double v = c->valuedouble;

        if (cJSON_IsNumber(c) && v >= -9007199254740992.0 &&
            v <= 9007199254740992.0 && v == (double)(int64_t)v) {
            char text[32];

            snprintf(text, sizeof(text), "%" PRId64, (int64_t)v);
            c->type = cJSON_Raw;
            c->valuestring = cJSON_malloc(strlen(text) + 1);
            memcpy(c->valuestring, text, strlen(text) + 1);
        } else if (cJSON_IsArray(c) || cJSON_IsObject(c)) {
            exact_integers(c);
        }
    }
}

/* Prints j (changed by exact_integers()) as pretty or one-line JSON. */
static void write_json(FILE *out, cJSON *j, int one_line)
{
    char *text;

    exact_integers(j);
    text = one_line ? cJSON_PrintUnformatted(j) : cJSON_Print(j);
    fprintf(out, "%s\n", text != NULL ? text : "null");
    cJSON_free(text);
}

static void print_json(cJSON *j)
{
    write_json(stdout, j, 0);
}

/* Parses the options in args (params included), makes the call and
 * prints its result with show, or as JSON.  Takes ownership of
 * args->params. */
static int simple(struct ctl *c, int argc, char **argv, struct args *args,
                  const char *method, void (*show)(FILE *, const cJSON *))
{
    cJSON *res;
    int rc = parse_args(c, argc, argv, args);

    if (rc != EXIT_OK) {
        cJSON_Delete(args->params);
        return rc;
    }
    rc = call(c, method, args->params, &res);
    if (rc != EXIT_OK)
        return rc;
    if (c->json)
        print_json(res);
    else
        show(stdout, res);
    cJSON_Delete(res);
    return EXIT_OK;
}

static int cmd_status(struct ctl *c, int argc, char **argv)
{
    struct args a = {0};

    return simple(c, argc, argv, &a, "status", show_status);
}

static int cmd_version(struct ctl *c, int argc, char **argv)
{
    struct args a = {0};

    return simple(c, argc, argv, &a, "version", show_version);
}

static int cmd_latest(struct ctl *c, int argc, char **argv)
{
    const struct opt opts[] = {
        {.name = "-n",
         .type = OPT_INT,
         .what = "bad -n (samples per channel)",
         .key = "n",
         .min = 1,
         .max = LATEST_N_MAX},
        {.name = "--channel", .type = OPT_CHANNEL},
    };
    struct args a = {.opts = opts,
                     .nopts = sizeof(opts) / sizeof(opts[0]),
                     .params = cJSON_CreateObject()};

    return simple(c, argc, argv, &a, "latest", show_latest);
}

static void show_alerts_now(FILE *out, const cJSON *alerts)
{
    show_alerts(out, alerts, fmt_now_us());
}

static int cmd_alerts(struct ctl *c, int argc, char **argv)
{
    const struct opt opts[] = {
        {.name = "--history",
         .type = OPT_INT,
         .what = "bad --history (rows)",
         .key = "history",
         .min = 0,
         .max = ALERT_HISTORY_MAX},
    };
    struct args a = {.opts = opts,
                     .nopts = sizeof(opts) / sizeof(opts[0]),
                     .params = cJSON_CreateObject()};

    return simple(c, argc, argv, &a, "alerts", show_alerts_now);
}

/* ---- history, heap, plot ---- */

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

        put(params, "limit",
            cJSON_CreateNumber(
                (double)(left < HISTORY_PAGE_MAX ? left : HISTORY_PAGE_MAX)));
        if (have_cursor)
            put(params, "after_us", cJSON_CreateNumber(cursor));
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

static void note_truncated(const struct pager *pg)
{
    if (pg->truncated)
        fprintf(stderr,
                "tetherctl: note: stopped after %d points; narrow the range "
                "or use --bucket\n",
                HISTORY_TOTAL_MAX);
}

/* A time range from the options of history, heap and plot.  Absent
 * bounds stay INT64_MIN. */
struct range {
    int64_t since, until; /* --since, --until */
    int64_t from_s, to_s; /* --from, --to: epoch seconds, or -1 */
};

/* Sets from_us and to_us in params from r; --since alone ends now, as
 * it reads.  Returns EXIT_OK or a usage error. */
static int range_params(const struct range *r, int64_t now_us, cJSON *params)
{
    int64_t from = INT64_MIN, to = INT64_MIN;

    if (r->since != INT64_MIN && r->from_s >= 0)
        return usage_error("--since excludes --from", NULL);
    if (r->until != INT64_MIN && r->to_s >= 0)
        return usage_error("--until excludes --to", NULL);
    if (r->since != INT64_MIN)
        from = r->since;
    if (r->from_s >= 0)
        from = r->from_s * 1000000;
    if (r->until != INT64_MIN)
        to = r->until;
    if (r->to_s >= 0)
        to = r->to_s * 1000000;
    if (r->since != INT64_MIN && to == INT64_MIN)
        to = now_us;
    if (from != INT64_MIN && to != INT64_MIN && to < from)
        return usage_error("the range ends before it starts", NULL);
    if (from != INT64_MIN)
        put(params, "from_us", cJSON_CreateNumber((double)from));
    if (to != INT64_MIN)
        put(params, "to_us", cJSON_CreateNumber((double)to));
    return EXIT_OK;
}

struct history_out {
    int json;
    int header_done;
    cJSON *all; /* JSON mode: every point, in order */
};

static void history_page(cJSON *res, void *arg)
{
    struct history_out *h = arg;
    cJSON *points = cJSON_GetObjectItemCaseSensitive(res, "points");

    if (!h->json) {
        show_history(stdout, res, &h->header_done);
        return;
    }
    while (cJSON_GetArraySize(points) > 0)
        cJSON_AddItemToArray(h->all, cJSON_DetachItemFromArray(points, 0));
}

static int cmd_history(struct ctl *c, int argc, char **argv)
{
    struct range r = {INT64_MIN, INT64_MIN, -1, -1};
    const char *series = "adc";
    const struct opt opts[] = {
        {.name = "--series",
         .type = OPT_WORD,
         .what = "--series is adc or heap",
         .word = &series,
         .choices = series_names},
        {.name = "--since",
         .type = OPT_TIME,
         .what = "bad --since (e.g. 10m, 2h, 2026-11-25T07:00)",
         .num = &r.since},
        {.name = "--until",
         .type = OPT_TIME,
         .what = "bad --until (e.g. 10m, now, 2026-11-25T07:00)",
         .num = &r.until},
        {.name = "--from",
         .type = OPT_INT,
         .what = "bad --from (epoch seconds)",
         .num = &r.from_s,
         .min = 0,
         .max = INT64_MAX / 1000000},
        {.name = "--to",
         .type = OPT_INT,
         .what = "bad --to (epoch seconds)",
         .num = &r.to_s,
         .min = 0,
         .max = INT64_MAX / 1000000},
        {.name = "--bucket",
         .type = OPT_DURATION,
         .what = "bad --bucket (e.g. 1s, 1m, 1h)",
         .key = "bucket_us",
         .min = 0,
         .max = INT64_MAX},
        {.name = "--channel", .type = OPT_CHANNEL},
    };
    struct args a = {.opts = opts,
                     .nopts = sizeof(opts) / sizeof(opts[0]),
                     .params = cJSON_CreateObject(),
                     .now_us = fmt_now_us()};
    struct history_out h = {.json = 0};
    struct pager pg = {.page = history_page, .arg = &h};
    cJSON *bucket;
    int rc = parse_args(c, argc, argv, &a);

    if (rc == EXIT_OK)
        rc = range_params(&r, a.now_us, a.params);
    if (rc != EXIT_OK)
        goto out_params;
    /* --json may come after the command: known only now. */
    h.json = c->json;
    put(a.params, "series", cJSON_CreateString(series));
    /* A bucket of 0 asks for raw rows: the daemon's default anyway. */
    bucket = cJSON_GetObjectItemCaseSensitive(a.params, "bucket_us");
    if (bucket != NULL && bucket->valuedouble == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(a.params, "bucket_us");
    if (h.json)
        h.all = cJSON_CreateArray();
    rc = history_pages(c, a.params, &pg);
    if (rc != EXIT_OK)
        goto out_all;
    if (h.json) {
        cJSON *out = cJSON_CreateObject();

        cJSON_AddStringToObject(out, "series", series);
        cJSON_AddItemToObject(out, "points", h.all);
        h.all = NULL;
        cJSON_AddBoolToObject(out, "truncated", pg.truncated);
        print_json(out);
        cJSON_Delete(out);
    } else if (pg.total == 0) {
        printf("no points\n");
    }
    note_truncated(&pg);

out_all:
    cJSON_Delete(h.all);
out_params:
    cJSON_Delete(a.params);
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
    int64_t since = INT64_MIN, until = INT64_MIN;
    const struct opt opts[] = {
        {.name = "--since",
         .type = OPT_TIME,
         .what = "bad --since (e.g. 10m, 2h, 2026-11-25T07:00)",
         .num = &since},
        {.name = "--until",
         .type = OPT_TIME,
         .what = "bad --until (e.g. 10m, now, 2026-11-25T07:00)",
         .num = &until},
    };
    struct args a = {.opts = opts,
                     .nopts = sizeof(opts) / sizeof(opts[0]),
                     .now_us = fmt_now_us()};
    cJSON *recent = cJSON_CreateArray();
    struct pager pg = {.page = keep_recent, .arg = recent};
    cJSON *status = NULL, *params, *heap;
    int rc = parse_args(c, argc, argv, &a);

    if (rc != EXIT_OK)
        goto out_recent;
    if (until == INT64_MIN)
        until = a.now_us;
    if (since == INT64_MIN)
        since = until - HEAP_RECENT_US;
    if (until < since) {
        rc = usage_error("the range ends before it starts", NULL);
        goto out_recent;
    }
    rc = call(c, "status", NULL, &status);
    if (rc != EXIT_OK)
        goto out_recent;
    heap = cJSON_GetObjectItemCaseSensitive(status, "heap");
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "series", "heap");
    cJSON_AddNumberToObject(params, "from_us", (double)since);
    cJSON_AddNumberToObject(params, "to_us", (double)until);
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
    } else {
        show_heap_report(stdout, heap, recent, since, until);
    }
    note_truncated(&pg);

out_status:
    cJSON_Delete(status);
out_recent:
    cJSON_Delete(recent);
    return rc;
}

/* Collects the points of a plot from history pages. */
struct plot_in {
    struct plot_series series;
    struct plot_point *pts;
    size_t n, cap;
    int64_t bucket_us;
    int have_bucket;
};

static void plot_page(cJSON *res, void *arg)
{
    struct plot_in *in = arg;
    const cJSON *points = cJSON_GetObjectItemCaseSensitive(res, "points");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(res, "bucket_us");
    size_t want = in->n + (size_t)cJSON_GetArraySize(points);

    /* The width of the buckets is the daemon's choice; take the first
     * page's word for it, and treat anything unusable as raw samples. */
    if (!in->have_bucket) {
        in->have_bucket = 1;
        in->bucket_us = cJSON_IsNumber(b) && b->valuedouble > 0 &&
                                b->valuedouble <= PLOT_SPAN_MAX_US
                            ? (int64_t)b->valuedouble
                            : 0;
    }
    if (want > HISTORY_TOTAL_MAX)
        want = HISTORY_TOTAL_MAX;
    if (want > in->cap) {
        in->pts = xrealloc(in->pts, want * sizeof(*in->pts));
        in->cap = want;
    }
    in->n += plot_points_from_history(&in->series, points, in->pts + in->n,
                                      in->cap - in->n);
}

static void plot_json(const struct plot_in *in, const struct plot_options *o)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *arr;

    cJSON_AddStringToObject(out, "series", in->series.name);
    cJSON_AddNumberToObject(out, "from_us", (double)o->from_us);
    cJSON_AddNumberToObject(out, "to_us", (double)o->to_us);
    cJSON_AddNumberToObject(out, "bucket_us", (double)o->bucket_us);
    if (o->threshold_shown)
        cJSON_AddNumberToObject(out, "threshold", o->threshold);
    else
        cJSON_AddNullToObject(out, "threshold");
    arr = cJSON_AddArrayToObject(out, "points");
    for (size_t i = 0; i < in->n; i++) {
        cJSON *p = cJSON_CreateObject();

        cJSON_AddNumberToObject(p, "t_us", (double)in->pts[i].t_us);
        cJSON_AddNumberToObject(p, "min", in->pts[i].min);
        cJSON_AddNumberToObject(p, "avg", in->pts[i].avg);
        cJSON_AddNumberToObject(p, "max", in->pts[i].max);
        cJSON_AddNumberToObject(p, "count", in->pts[i].weight);
        cJSON_AddItemToArray(arr, p);
    }
    print_json(out);
    cJSON_Delete(out);
}

/* Where the threshold line comes from: --threshold, else for heap.free
 * the daemon's heap_low threshold. */
static int plot_threshold(struct ctl *c, const char *arg,
                          struct plot_options *o)
{
    cJSON *status;
    int rc;

    if (arg != NULL && strcmp(arg, "none") == 0)
        return EXIT_OK;
    if (arg != NULL) {
        o->threshold_shown = 1;
        o->threshold_name = "threshold";
        return EXIT_OK;
    }
    if (o->series.kind != PLOT_HEAP_FREE)
        return EXIT_OK;
    rc = call(c, "status", NULL, &status);
    if (rc != EXIT_OK)
        return rc;
    o->threshold_shown = plot_threshold_from_status(status, &o->threshold);
    o->threshold_name = "heap_low threshold";
    cJSON_Delete(status);
    return EXIT_OK;
}

static int cmd_plot(struct ctl *c, int argc, char **argv)
{
    int64_t since = INT64_MIN, until = INT64_MIN;
    int64_t width = PLOT_WIDTH_DEFAULT, height = PLOT_HEIGHT_DEFAULT;
    const char *threshold = NULL, *words[1] = {NULL};
    const struct opt opts[] = {
        {.name = "--since",
         .type = OPT_TIME,
         .what = "bad --since (e.g. 10m, 2h, 2026-11-25T07:00)",
         .num = &since},
        {.name = "--until",
         .type = OPT_TIME,
         .what = "bad --until (e.g. 10m, now, 2026-11-25T07:00)",
         .num = &until},
        {.name = "--width",
         .type = OPT_INT,
         .what = "bad --width (columns, 10 to 1000)",
         .num = &width,
         .min = PLOT_WIDTH_MIN,
         .max = PLOT_WIDTH_MAX},
        {.name = "--height",
         .type = OPT_INT,
         .what = "bad --height (rows, 3 to 200)",
         .num = &height,
         .min = PLOT_HEIGHT_MIN,
         .max = PLOT_HEIGHT_MAX},
        {.name = "--threshold",
         .type = OPT_WORD,
         .what = "bad --threshold (a number, or none)",
         .word = &threshold},
    };
    struct args a = {.opts = opts,
                     .nopts = sizeof(opts) / sizeof(opts[0]),
                     .words = words,
                     .words_max = 1,
                     .now_us = fmt_now_us()};
    struct plot_options o = {0};
    struct plot_in in = {.pts = NULL};
    struct pager pg = {.page = plot_page, .arg = &in};
    cJSON *params;
    int rc = parse_args(c, argc, argv, &a);

    if (rc != EXIT_OK)
        return rc;
    if (a.nwords == 0)
        return usage_error("plot needs a series (heap.free, heap.largest, "
                           "adc.N)",
                           NULL);
    if (plot_parse_series(words[0], &o.series) != 0)
        return usage_error("bad series (heap.free, heap.largest, adc.N)",
                           words[0]);
    if (threshold != NULL && strcmp(threshold, "none") != 0 &&
        fmt_parse_number(threshold, &o.threshold) != 0)
        return usage_error("bad --threshold (a number, or none)", threshold);
    o.to_us = until != INT64_MIN ? until : a.now_us;
    o.from_us = since != INT64_MIN ? since : o.to_us - PLOT_SINCE_US;
    if (o.from_us < 0 || o.to_us <= o.from_us)
        return usage_error("the range is empty or ends before it starts", NULL);
    if (o.to_us - o.from_us > PLOT_SPAN_MAX_US)
        return usage_error("the range is longer than a century", NULL);
    o.width = (int)width;
    o.height = (int)height;
    rc = plot_threshold(c, threshold, &o);
    if (rc != EXIT_OK)
        return rc;

    in.series = o.series;
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "series", plot_history_series(&o.series));
    cJSON_AddNumberToObject(params, "from_us", (double)o.from_us);
    cJSON_AddNumberToObject(params, "to_us", (double)o.to_us);
    /* About a bucket a column, their width the daemon's choice
     * (docs/QUERY.md).  It divides the range by one bucket fewer than
     * asked, since buckets aligned to their width may touch one more;
     * asking for one more than the columns gives an hour on 60 columns
     * buckets of a minute rather than two. */
    cJSON_AddNumberToObject(params, "buckets", (double)o.width + 1);
    if (o.series.kind == PLOT_ADC) {
        cJSON *ch = cJSON_AddArrayToObject(params, "channels");

        cJSON_AddItemToArray(ch, cJSON_CreateNumber(o.series.channel));
    }
    rc = history_pages(c, params, &pg);
    cJSON_Delete(params);
    if (rc != EXIT_OK)
        goto out_points;
    o.bucket_us = in.bucket_us;
    if (c->json) {
        plot_json(&in, &o);
    } else if (plot_render(stdout, in.pts, in.n, &o) != 0) {
        fprintf(stderr, "tetherctl: cannot draw the chart\n");
        rc = EXIT_FAIL;
    }
    note_truncated(&pg);

out_points:
    free(in.pts);
    return rc;
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
    int64_t count; /* stop after this many; 0: never */
    int64_t seen;
};

static void print_note(const cJSON *note, void *arg)
{
    struct watch *w = arg;

    if (w->count > 0 && w->seen >= w->count)
        return;
    if (w->json) {
        cJSON *copy = cJSON_Duplicate(note, 1);

        write_json(stdout, copy, 1);
        cJSON_Delete(copy);
    } else {
        show_note(stdout, note, fmt_now_us());
    }
    fflush(stdout);
    w->seen++;
}

static int cmd_watch(struct ctl *c, int argc, char **argv)
{
    struct watch w = {.json = 0};
    const struct opt opts[] = {
        {.name = "--topics",
         .type = OPT_LIST,
         .what = "bad --topics (samples, heap, alerts, link, mcu, flash)",
         .key = "topics",
         .choices = topic_names},
        {.name = "--decimate",
         .type = OPT_INT,
         .what = "bad --decimate",
         .key = "decimate",
         .min = 1,
         .max = 1000000},
        {.name = "--count",
         .type = OPT_INT,
         .what = "bad --count",
         .num = &w.count,
         .min = 1,
         .max = INT64_MAX},
    };
    struct args a = {.opts = opts,
                     .nopts = sizeof(opts) / sizeof(opts[0]),
                     .params = cJSON_CreateObject()};
    struct sigaction sa;
    cJSON *res;
    int rc = parse_args(c, argc, argv, &a);

    if (rc != EXIT_OK) {
        cJSON_Delete(a.params);
        return rc;
    }
    w.json = c->json;
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
        cJSON_Delete(a.params);
        return rc;
    }
    /* Notifications may overtake the watch result; print them in order. */
    rpc_set_note_fn(c->rpc, print_note, &w);
    rc = call(c, "watch", a.params, &res);
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
    const char *words[WORDS_MAX] = {NULL, NULL, NULL};
    struct args a = {.words = words, .words_max = WORDS_MAX};
    long long n;
    int rc = parse_args(c, argc, argv, &a);

    if (rc != EXIT_OK)
        return rc;
    if (a.nwords == 0)
        return usage_error("send needs a command", NULL);
    if (strcmp(words[0], "set-rate") == 0 && a.nwords <= 2)
        return send_value(params, "set_rate", "value", words[1], 0,
                          "set-rate needs scans per second");
    if (strcmp(words[0], "set-channels") == 0 && a.nwords <= 2)
        return send_value(params, "set_channels", "value", words[1], 1,
                          "set-channels needs a channel mask");
    if (strcmp(words[0], "heap-period") == 0 && a.nwords <= 2)
        return send_value(params, "set_heap_period", "value", words[1], 0,
                          "heap-period needs milliseconds");
    if (strcmp(words[0], "scenario") == 0 && a.nwords >= 2) {
        cJSON_AddStringToObject(params, "command", "scenario");
        cJSON_AddStringToObject(params, "name", words[1]);
        if (a.nwords == 3) {
            if (fmt_parse_int(words[2], 0, 0, UINT32_MAX, &n) != 0)
                return usage_error("bad scenario parameter", words[2]);
            cJSON_AddNumberToObject(params, "param", (double)n);
        }
        return EXIT_OK;
    }
    if ((strcmp(words[0], "reboot") == 0 || strcmp(words[0], "ping") == 0 ||
         strcmp(words[0], "hello") == 0) &&
        a.nwords == 1) {
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
        ack = show_ack(stdout, res);
    }
    cJSON_Delete(res);
    return ack ? EXIT_OK : EXIT_FAIL;
}

/* ---- flash, image ---- */

/* Follows one flash: its notifications until the outcome. */
struct flash_watch {
    struct show_flash sf;
    int json;
    double id;      /* the flash's id, from the answer */
    cJSON *outcome; /* the params of the "done" notification */
};

static void flash_note(struct flash_watch *w, const cJSON *note)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(note, "method");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(note, "params");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "id");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(p, "state");
    int done;

    if (!cJSON_IsString(m) || strcmp(m->valuestring, "flash") != 0 ||
        !cJSON_IsNumber(id) || id->valuedouble != w->id)
        return;
    if (w->json) {
        cJSON *copy = cJSON_Duplicate(note, 1);

        write_json(stdout, copy, 1);
        cJSON_Delete(copy);
        fflush(stdout);
        done = cJSON_IsString(state) && strcmp(state->valuestring, "done") == 0;
    } else {
        done = show_flash_progress(stderr, &w->sf, p);
    }
    if (done)
        w->outcome = cJSON_Duplicate(p, 1);
}

static int flash_follow(struct ctl *c, struct flash_watch *w)
{
    struct sigaction sa;

    /* Ctrl-C stops watching, not the update: tetherd carries on. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (w->outcome == NULL) {
        cJSON *note;
        /* Every phase of an update is bounded in tetherd, which always
         * ends with an outcome: no timeout here. */
        int r = rpc_next_note(c->rpc, -1, &note);

        if (r == -EINTR && stop_requested) {
            if (w->sf.bar_open)
                fputc('\n', stderr);
            fprintf(stderr, "tetherctl: stopped watching; the update goes on "
                            "in tetherd (tetherctl watch --topics flash)\n");
            return EXIT_FAIL;
        }
        if (r != 0)
            return report(c, r, NULL);
        flash_note(w, note);
        cJSON_Delete(note);
    }
    return EXIT_OK;
}

static int cmd_flash(struct ctl *c, int argc, char **argv)
{
    int64_t no_confirm = 0, force = 0;
    const char *words[1] = {NULL};
    const struct opt opts[] = {
        {.name = "--no-confirm", .type = OPT_FLAG, .num = &no_confirm},
        {.name = "--force", .type = OPT_FLAG, .num = &force},
    };
    struct args a = {.opts = opts,
                     .nopts = sizeof(opts) / sizeof(opts[0]),
                     .words = words,
                     .words_max = 1};
    struct flash_watch w = {.json = 0};
    char path[PATH_MAX];
    const cJSON *id;
    cJSON *params, *res;
    int rc = parse_args(c, argc, argv, &a), ok;

    if (rc != EXIT_OK)
        return rc;
    if (a.nwords == 0)
        return usage_error("flash needs an image file", NULL);
    /* tetherd reads the file itself, from its own working directory. */
    if (realpath(words[0], path) == NULL) {
        fprintf(stderr, "tetherctl: cannot read %s: %s\n", words[0],
                strerror(errno));
        return EXIT_FAIL;
    }
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "image", path);
    cJSON_AddBoolToObject(params, "confirm", !no_confirm);
    cJSON_AddBoolToObject(params, "force", force != 0);
    rc = call(c, "flash", params, &res);
    if (rc != EXIT_OK)
        return rc;
    id = cJSON_GetObjectItemCaseSensitive(res, "id");
    if (!cJSON_IsNumber(id)) {
        cJSON_Delete(res);
        return report(c, -EPROTO, NULL);
    }
    w.id = id->valuedouble;
    w.json = c->json;
    show_flash_init(&w.sf, isatty(STDERR_FILENO));
    if (c->json) {
        write_json(stdout, res, 1);
        fflush(stdout);
    } else {
        show_flash_started(stderr, res);
    }
    cJSON_Delete(res);
    rc = flash_follow(c, &w);
    if (rc != EXIT_OK)
        return rc;
    if (c->json) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(w.outcome, "outcome");

        ok = cJSON_IsString(o) && (strcmp(o->valuestring, "confirmed") == 0 ||
                                   strcmp(o->valuestring, "testing") == 0);
    } else {
        ok = show_flash_outcome(stdout, w.outcome);
    }
    cJSON_Delete(w.outcome);
    return ok ? EXIT_OK : EXIT_FAIL;
}

static int parse_u32_arg(const char *v, const char *what, uint32_t *out)
{
    long long n;

    if (fmt_parse_int(v, 1, 0, UINT32_MAX, &n) != 0)
        return usage_error(what, v);
    *out = (uint32_t)n;
    return EXIT_OK;
}

static int cmd_image(struct ctl *c, int argc, char **argv)
{
    const char *board = NULL, *version = NULL, *build = NULL, *load = NULL;
    const char *entry = NULL, *output = NULL, *words[1] = {NULL};
    const struct opt opts[] = {
        {.name = "--board",
         .type = OPT_WORD,
         .what = "bad --board (tether-sim, mps2-an505, stm32u585)",
         .word = &board},
        {.name = "--version",
         .type = OPT_WORD,
         .what = "bad --version (X.Y.Z)",
         .word = &version},
        {.name = "--build-id",
         .type = OPT_WORD,
         .what = "bad --build-id",
         .word = &build},
        {.name = "--load-addr",
         .type = OPT_WORD,
         .what = "bad --load-addr",
         .word = &load},
        {.name = "--entry",
         .type = OPT_WORD,
         .what = "bad --entry",
         .word = &entry},
        {.name = "-o", .type = OPT_WORD, .what = "bad -o", .word = &output},
        {.name = "--output",
         .type = OPT_WORD,
         .what = "bad --output",
         .word = &output},
    };
    struct args a = {.opts = opts,
                     .nopts = sizeof(opts) / sizeof(opts[0]),
                     .words = words,
                     .words_max = 1};
    struct mkimage_opts o = {0};
    struct image_hdr h;
    char err[2 * PATH_MAX], total[FMT_BUF_MAX], hash[2 * IMAGE_HASH_LEN + 1];
    int rc = parse_args(c, argc, argv, &a);

    if (rc != EXIT_OK)
        return rc;
    if (a.nwords == 0 || output == NULL || board == NULL || version == NULL)
        return usage_error("image needs --board, --version, INPUT and -o "
                           "OUTPUT",
                           NULL);
    if (mkimage_board(board, &o.board) != 0)
        return strcmp(board, "atmega328p") == 0
                   ? usage_error("atmega328p takes no updates (flash it "
                                 "with avrdude)",
                                 NULL)
                   : usage_error("bad --board (tether-sim, mps2-an505, "
                                 "stm32u585)",
                                 board);
    if (mkimage_version(version, &o.version) != 0)
        return usage_error("bad --version (X.Y.Z, each 0 to 255)", version);
    if ((build != NULL &&
         (rc = parse_u32_arg(build, "bad --build-id", &o.build_id)) != 0) ||
        (load != NULL &&
         (rc = parse_u32_arg(load, "bad --load-addr", &o.load_addr)) != 0) ||
        (entry != NULL &&
         (rc = parse_u32_arg(entry, "bad --entry", &o.entry)) != 0))
        return rc;
    o.ram = load != NULL;
    if (mkimage_file(words[0], output, &o, &h, err, sizeof(err)) != 0) {
        fprintf(stderr, "tetherctl: %s\n", err);
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < IMAGE_HASH_LEN; i++)
        snprintf(hash + 2 * i, 3, "%02x", h.hash[i]);
    fmt_bytes(total, sizeof(total), h.body_len);
    if (c->json) {
        cJSON *j = cJSON_CreateObject();

        cJSON_AddStringToObject(j, "output", output);
        cJSON_AddStringToObject(j, "board", board);
        cJSON_AddStringToObject(j, "version", version);
        cJSON_AddNumberToObject(j, "build_id", h.build_id);
        cJSON_AddNumberToObject(j, "body_len", h.body_len);
        cJSON_AddStringToObject(j, "sha256", hash);
        print_json(j);
        cJSON_Delete(j);
    } else {
        printf("wrote %s: %s %s, build %08" PRIx32 ", %s body, SHA-256 %s\n",
               output, board, version, h.build_id, total, hash);
    }
    return EXIT_OK;
}

static const struct {
    const char *name;
    int (*run)(struct ctl *c, int argc, char **argv);
} commands[] = {
    {"status", cmd_status}, {"latest", cmd_latest},   {"history", cmd_history},
    {"heap", cmd_heap},     {"plot", cmd_plot},       {"alerts", cmd_alerts},
    {"watch", cmd_watch},   {"send", cmd_send},       {"flash", cmd_flash},
    {"image", cmd_image},   {"version", cmd_version},
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
