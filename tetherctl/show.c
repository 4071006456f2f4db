/* Human-readable tables for tetherctl.  See show.h.
 *
 * The daemon may add keys to its results at any time (docs/QUERY.md keeps
 * only some keys stable), so the link and store sections print every
 * numeric counter they find rather than a fixed list, and every lookup
 * tolerates absence: a field that is missing, of the wrong type, or a
 * number no real figure reaches (cJSON reads 1e999 as infinity) shows as
 * "-".  Strings may come from the MCU itself (log lines), so control
 * characters are replaced before they reach a terminal that would obey
 * them.  Labels are padded to one column width so sections line up. */
#include "show.h"

#include "fmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define LABEL_WIDTH 18  /* column of values in key/value sections */
#define LABEL_MAX   64  /* longest label derived from a key */
#define LIST_MAX    512 /* longest joined list printed on one line */
#define TEXT_MAX    512 /* longest string from the daemon printed */

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* The array member key, or NULL when it is missing or not an array (an
 * object would otherwise be walked as if it were one). */
static const cJSON *items(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);

    return cJSON_IsArray(v) ? v : NULL;
}

/* A number that can be a real figure: finite and within SHOW_NUM_MAX, so
 * that converting it to int64_t is defined. */
static int num_item(const cJSON *v, double *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        fabs(v->valuedouble) > SHOW_NUM_MAX)
        return 0;
    *out = v->valuedouble;
    return 1;
}

static int num(const cJSON *o, const char *key, double *out)
{
    return num_item(get(o, key), out);
}

/* Copies s into buf, replacing C0 controls, DEL and the UTF-8 forms of
 * C1 controls with '?', truncating to fit. */
static void clean(char *buf, size_t n, const char *s)
{
    size_t i = 0;

    for (; *s != '\0' && i + 1 < n; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == 0xc2 && (unsigned char)s[1] >= 0x80 &&
            (unsigned char)s[1] <= 0x9f) {
            buf[i++] = '?';
            s++;
        } else {
            buf[i++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
    }
    buf[i] = '\0';
}

/* The string field key, cleaned into buf, or "-".  Returns buf. */
static const char *text(char *buf, size_t n, const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);

    if (cJSON_IsString(v) && v->valuestring != NULL)
        clean(buf, n, v->valuestring);
    else
        snprintf(buf, n, "-");
    return buf;
}

static void row(FILE *out, const char *label, const char *value)
{
    fprintf(out, "  %-*s %s\n", LABEL_WIDTH, label, value);
}

/* An integer field, or "-". */
static const char *cell_int(char *buf, size_t n, const cJSON *o,
                            const char *key)
{
    double v;

    if (num(o, key, &v))
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "-");
    return buf;
}

/* A number with up to one decimal, or "-". */
static const char *cell_num(char *buf, size_t n, const cJSON *o,
                            const char *key)
{
    double v;

    if (!num(o, key, &v))
        snprintf(buf, n, "-");
    else if (v == (double)(int64_t)v)
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "%.1f", v);
    return buf;
}

static const char *cell_bytes(char *buf, size_t n, const cJSON *o,
                              const char *key)
{
    double v;

    if (num(o, key, &v))
        fmt_bytes(buf, n, v);
    else
        snprintf(buf, n, "-");
    return buf;
}

static const char *cell_time(char *buf, size_t n, const cJSON *o,
                             const char *key)
{
    double t;

    if (num(o, key, &t))
        fmt_time_local(buf, n, (int64_t)t);
    else
        snprintf(buf, n, "-");
    return buf;
}

static const char *cell_age(char *buf, size_t n, const cJSON *o,
                            const char *key)
{
    double ms;

    if (num(o, key, &ms))
        fmt_age_ms(buf, n, (int64_t)ms);
    else
        snprintf(buf, n, "-");
    return buf;
}

/* Prints every member of o except those named in skip, with the key's
 * underscores shown as spaces: numbers as integers, booleans as yes or
 * no, anything else as "-". */
static void counters(FILE *out, const cJSON *o, const char *const *skip)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, o)
    {
        char label[LABEL_MAX], value[FMT_BUF_MAX];
        double v;
        int skipped = 0;

        if (c->string == NULL)
            continue;
        for (size_t i = 0; skip[i] != NULL; i++)
            skipped |= strcmp(skip[i], c->string) == 0;
        if (skipped)
            continue;
        clean(label, sizeof(label), c->string);
        for (char *p = label; *p != '\0'; p++)
            if (*p == '_')
                *p = ' ';
        if (cJSON_IsBool(c))
            snprintf(value, sizeof(value), "%s",
                     cJSON_IsTrue(c) ? "yes" : "no");
        else if (num_item(c, &v))
            snprintf(value, sizeof(value), "%.0f", v);
        else
            snprintf(value, sizeof(value), "-");
        row(out, label, value);
    }
}

/* Joins the strings of an array (or the "name" of its objects) with ", ",
 * truncating at n. */
static void join_names(char *buf, size_t n, const cJSON *arr)
{
    const cJSON *c;
    size_t off = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(c, arr)
    {
        char name[TEXT_MAX];
        int w;

        if (cJSON_IsString(c))
            clean(name, sizeof(name), c->valuestring);
        else
            text(name, sizeof(name), c, "name");
        w = snprintf(buf + off, n - off, "%s%s", off ? ", " : "", name);
        if (w < 0 || (size_t)w >= n - off)
            break;
        off += (size_t)w;
    }
    if (off == 0)
        snprintf(buf, n, "none");
}

/* Joins the numbers of an array with sep, "-" for any that is not one. */
static void join_numbers(char *buf, size_t n, const cJSON *arr, const char *sep)
{
    const cJSON *c;
    size_t off = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(c, arr)
    {
        char v[FMT_BUF_MAX];
        double d;
        int w;

        if (num_item(c, &d))
            snprintf(v, sizeof(v), "%.0f", d);
        else
            snprintf(v, sizeof(v), "-");
        w = snprintf(buf + off, n - off, "%s%s", off ? sep : "", v);
        if (w < 0 || (size_t)w >= n - off)
            break;
        off += (size_t)w;
    }
}

static void show_link(FILE *out, const cJSON *link)
{
    static const char *const skip[] = {"state", "device", "last_frame_age_ms",
                                       NULL};
    char b[TEXT_MAX];

    fprintf(out, "Link\n");
    row(out, "state", text(b, sizeof(b), link, "state"));
    row(out, "device", text(b, sizeof(b), link, "device"));
    row(out, "last frame", cell_age(b, sizeof(b), link, "last_frame_age_ms"));
    counters(out, link, skip);
}

static void show_mcu(FILE *out, const cJSON *mcu)
{
    char b[TEXT_MAX];
    double ch, bits, up;

    fprintf(out, "MCU\n");
    if (!cJSON_IsObject(mcu)) {
        row(out, "identity", "unknown (no HELLO yet)");
        return;
    }
    row(out, "firmware", text(b, sizeof(b), mcu, "firmware_version"));
    row(out, "board", text(b, sizeof(b), mcu, "board"));
    row(out, "build id", text(b, sizeof(b), mcu, "build_id"));
    if (num(mcu, "uptime_ms", &up))
        fmt_span_ms(b, sizeof(b), (int64_t)up);
    else
        snprintf(b, sizeof(b), "-");
    row(out, "uptime", b);
    row(out, "last reset", text(b, sizeof(b), mcu, "last_reset_cause"));
    if (num(mcu, "adc_channels", &ch) && num(mcu, "adc_bits", &bits))
        snprintf(b, sizeof(b), "%.0f channels, %.0f bits", ch, bits);
    else
        snprintf(b, sizeof(b), "-");
    row(out, "ADC", b);
}

/* A byte figure with its share of total, when that share makes sense. */
static void bytes_row(FILE *out, const cJSON *heap, const char *key,
                      const char *label, double total)
{
    char v[FMT_BUF_MAX], b[2 * FMT_BUF_MAX];
    double x;

    if (!num(heap, key, &x)) {
        row(out, label, "-");
        return;
    }
    fmt_bytes(v, sizeof(v), x);
    if (total > 0 && x >= 0 && x <= total)
        snprintf(b, sizeof(b), "%-10s (%.1f %%)", v, 100.0 * x / total);
    else
        snprintf(b, sizeof(b), "%s", v);
    row(out, label, b);
}

void show_heap(FILE *out, const cJSON *heap)
{
    char b[TEXT_MAX], a[FMT_BUF_MAX], f[FMT_BUF_MAX];
    double total = 0;

    fprintf(out, "Heap\n");
    if (!cJSON_IsObject(heap)) {
        row(out, "report", "none yet");
        return;
    }
    row(out, "reported", cell_age(b, sizeof(b), heap, "age_ms"));
    row(out, "scenario", text(b, sizeof(b), heap, "scenario"));
    if (!num(heap, "total", &total))
        total = 0;
    row(out, "total", cell_bytes(b, sizeof(b), heap, "total"));
    bytes_row(out, heap, "free", "free", total);
    bytes_row(out, heap, "used", "used", total);
    bytes_row(out, heap, "largest", "largest block", total);
    bytes_row(out, heap, "min_free", "min free (ever)", total);
    snprintf(b, sizeof(b), "%s / %s", cell_int(a, sizeof(a), heap, "allocs"),
             cell_int(f, sizeof(f), heap, "frees"));
    row(out, "allocs / frees", b);
    row(out, "blocks", cell_int(b, sizeof(b), heap, "blocks"));
    row(out, "failures", cell_int(b, sizeof(b), heap, "failures"));
}

static void show_store(FILE *out, const cJSON *store)
{
    static const char *const skip[] = {"last_error", NULL};
    char last[TEXT_MAX];

    fprintf(out, "Store\n");
    if (!cJSON_IsObject(store)) {
        row(out, "state", "unknown");
        return;
    }
    counters(out, store, skip);
    if (cJSON_IsString(get(store, "last_error")) &&
        get(store, "last_error")->valuestring[0] != '\0')
        row(out, "last error", text(last, sizeof(last), store, "last_error"));
}

void show_status(FILE *out, const cJSON *status)
{
    const cJSON *alerts = get(status, "alerts");
    const cJSON *th = get(alerts, "heap_low_threshold");
    char b[LIST_MAX];

    show_link(out, get(status, "link"));
    show_mcu(out, get(status, "mcu"));
    show_heap(out, get(status, "heap"));
    show_store(out, get(status, "store"));
    fprintf(out, "Alerts\n");
    join_names(b, sizeof(b), items(alerts, "active"));
    row(out, "active", b);
    /* Older daemons do not report the threshold; say nothing then. */
    if (th != NULL) {
        if (cJSON_IsNull(th))
            snprintf(b, sizeof(b), "unknown");
        else
            cell_bytes(b, sizeof(b), alerts, "heap_low_threshold");
        row(out, "heap low below", b);
    }
}

void show_latest(FILE *out, const cJSON *latest)
{
    const cJSON *ch;
    double age_ms = 0;
    int have_age = num(latest, "age_ms", &age_ms);

    if (cJSON_IsTrue(get(latest, "stale")) && have_age) {
        char age[FMT_BUF_MAX];

        fprintf(out, "warning: data is stale (newest sample %s)\n",
                cell_age(age, sizeof(age), latest, "age_ms"));
    } else if (cJSON_IsTrue(get(latest, "stale"))) {
        fprintf(out, "warning: data is stale\n");
    }
    if (cJSON_GetArraySize(items(latest, "channels")) == 0)
        fprintf(out, "no samples\n");
    cJSON_ArrayForEach(ch, items(latest, "channels"))
    {
        const cJSON *s;
        char c[FMT_BUF_MAX];
        double newest = 0;
        int have_newest = 0;

        fprintf(out, "channel %s\n", cell_int(c, sizeof(c), ch, "channel"));
        fprintf(out, "  %-30s %-14s %s\n", "time", "age", "value");
        cJSON_ArrayForEach(s, items(ch, "samples"))
        {
            char t[FMT_BUF_MAX], age[FMT_BUF_MAX], v[FMT_BUF_MAX];
            double ts;

            /* Ages come from the daemon's age_ms of the newest sample plus
             * the spacing of MCU timestamps, so a skewed local clock does
             * not distort them. */
            if (num(s, "t_us", &ts) && have_age) {
                if (!have_newest) {
                    newest = ts;
                    have_newest = 1;
                }
                fmt_age_ms(age, sizeof(age),
                           (int64_t)(age_ms + (newest - ts) / 1000.0));
            } else {
                snprintf(age, sizeof(age), "-");
            }
            fprintf(out, "  %-30s %-14s %s\n",
                    cell_time(t, sizeof(t), s, "t_us"), age,
                    cell_num(v, sizeof(v), s, "value"));
        }
    }
}

static void history_header(FILE *out, int heap, int bucketed)
{
    if (heap)
        fprintf(out, "%-30s %6s %10s %10s %10s %11s %8s\n", "time", "count",
                "free_min", "free_avg", "free_max", "largest_min", "failures");
    else if (bucketed)
        fprintf(out, "%-30s %4s %8s %10s %8s %8s\n", "time", "ch", "min", "avg",
                "max", "count");
    else
        fprintf(out, "%-30s %4s %8s\n", "time", "ch", "value");
}

static void history_points(FILE *out, const cJSON *points, int heap,
                           int bucketed)
{
    const cJSON *p;

    cJSON_ArrayForEach(p, points)
    {
        char t[FMT_BUF_MAX], c[FMT_BUF_MAX], a[FMT_BUF_MAX], b[FMT_BUF_MAX],
            d[FMT_BUF_MAX], e[FMT_BUF_MAX], f[FMT_BUF_MAX];

        cell_time(t, sizeof(t), p, "t_us");
        if (heap) {
            fprintf(out, "%-30s %6s %10s %10s %10s %11s %8s\n", t,
                    cell_int(c, sizeof(c), p, "count"),
                    cell_num(a, sizeof(a), p, "free_min"),
                    cell_num(b, sizeof(b), p, "free_avg"),
                    cell_num(d, sizeof(d), p, "free_max"),
                    cell_num(e, sizeof(e), p, "largest_min"),
                    cell_int(f, sizeof(f), p, "failures_max"));
        } else if (bucketed) {
            fprintf(out, "%-30s %4s %8s %10s %8s %8s\n", t,
                    cell_int(c, sizeof(c), p, "channel"),
                    cell_num(a, sizeof(a), p, "min"),
                    cell_num(b, sizeof(b), p, "avg"),
                    cell_num(d, sizeof(d), p, "max"),
                    cell_int(e, sizeof(e), p, "count"));
        } else {
            fprintf(out, "%-30s %4s %8s\n", t,
                    cell_int(c, sizeof(c), p, "channel"),
                    cell_num(a, sizeof(a), p, "value"));
        }
    }
}

void show_history(FILE *out, const cJSON *result, int *header_done)
{
    const cJSON *series = get(result, "series");
    const cJSON *points = items(result, "points");
    int heap =
        cJSON_IsString(series) && strcmp(series->valuestring, "heap") == 0;
    double bucket = 0;
    int bucketed = num(result, "bucket_us", &bucket) && bucket > 0;

    if (!*header_done && cJSON_GetArraySize(points) > 0) {
        history_header(out, heap, bucketed);
        *header_done = 1;
    }
    history_points(out, points, heap, bucketed);
}

void show_heap_report(FILE *out, const cJSON *heap, const cJSON *points,
                      int64_t from_us, int64_t to_us)
{
    char from[FMT_BUF_MAX], to[FMT_BUF_MAX];

    show_heap(out, heap);
    fmt_time_local(from, sizeof(from), from_us);
    fmt_time_local(to, sizeof(to), to_us);
    fprintf(out, "Recent history, %s to %s\n", from, to);
    if (!cJSON_IsArray(points) || cJSON_GetArraySize(points) == 0) {
        fprintf(out, "  none\n");
        return;
    }
    history_header(out, 1, 0);
    history_points(out, points, 1, 0);
}

void show_alerts(FILE *out, const cJSON *alerts, int64_t now_us)
{
    const cJSON *a;

    fprintf(out, "Active alerts\n");
    if (cJSON_GetArraySize(items(alerts, "active")) == 0)
        fprintf(out, "  none\n");
    cJSON_ArrayForEach(a, items(alerts, "active"))
    {
        char since[FMT_BUF_MAX], v[FMT_BUF_MAX], th[FMT_BUF_MAX];
        char name[TEXT_MAX], msg[TEXT_MAX];
        double t;

        if (num(a, "t_us", &t))
            fmt_age_ms(since, sizeof(since), (now_us - (int64_t)t) / 1000);
        else
            snprintf(since, sizeof(since), "-");
        fprintf(out, "  %-16s raised %-12s value %s threshold %s\n",
                text(name, sizeof(name), a, "name"), since,
                cell_num(v, sizeof(v), a, "value"),
                cell_num(th, sizeof(th), a, "threshold"));
        fprintf(out, "  %-16s %s\n", "", text(msg, sizeof(msg), a, "message"));
    }
    fprintf(out, "History\n");
    if (cJSON_GetArraySize(items(alerts, "history")) == 0)
        fprintf(out, "  none\n");
    else
        fprintf(out, "  %-30s %-16s %-8s %10s %10s  %s\n", "time", "name",
                "state", "value", "threshold", "message");
    cJSON_ArrayForEach(a, items(alerts, "history"))
    {
        char t[FMT_BUF_MAX], v[FMT_BUF_MAX], th[FMT_BUF_MAX];
        char name[TEXT_MAX], state[TEXT_MAX], msg[TEXT_MAX];

        fprintf(out, "  %-30s %-16s %-8s %10s %10s  %s\n",
                cell_time(t, sizeof(t), a, "t_us"),
                text(name, sizeof(name), a, "name"),
                text(state, sizeof(state), a, "state"),
                cell_num(v, sizeof(v), a, "value"),
                cell_num(th, sizeof(th), a, "threshold"),
                text(msg, sizeof(msg), a, "message"));
    }
}

static void note_flash(FILE *out, const char *now, const cJSON *p)
{
    char id[FMT_BUF_MAX], state[TEXT_MAX], b[FMT_BUF_MAX], t[FMT_BUF_MAX];
    char outcome[TEXT_MAX], why[TEXT_MAX];

    fprintf(out, "%s flash %s %s %s of %s", now,
            cell_int(id, sizeof(id), p, "id"),
            text(state, sizeof(state), p, "state"),
            cell_bytes(b, sizeof(b), p, "bytes"),
            cell_bytes(t, sizeof(t), p, "total"));
    if (get(p, "outcome") != NULL) {
        text(outcome, sizeof(outcome), p, "outcome");
        text(why, sizeof(why), p, "why");
        fprintf(out, " %s%s%s", outcome, why[0] != '\0' ? ": " : "", why);
    }
    fputc('\n', out);
}

static void note_samples(FILE *out, const cJSON *p)
{
    char chans[LIST_MAX], last[LIST_MAX], t[FMT_BUF_MAX], scans[FMT_BUF_MAX],
        period[FMT_BUF_MAX];
    const cJSON *values = items(p, "values");
    const cJSON *scan =
        cJSON_GetArrayItem(values, cJSON_GetArraySize(values) - 1);

    join_numbers(chans, sizeof(chans), items(p, "channels"), ",");
    join_numbers(last, sizeof(last), cJSON_IsArray(scan) ? scan : NULL, " ");
    fprintf(out, "%s samples ch [%s] %s scans, period %s us, last [%s]\n",
            cell_time(t, sizeof(t), p, "t0_us"), chans,
            cell_int(scans, sizeof(scans), p, "scans"),
            cell_int(period, sizeof(period), p, "period_us"), last);
}

static void note_heap(FILE *out, const cJSON *p)
{
    char t[FMT_BUF_MAX], fr[FMT_BUF_MAX], lg[FMT_BUF_MAX], mf[FMT_BUF_MAX],
        fl[FMT_BUF_MAX], pct[FMT_BUF_MAX];
    double free_b, total;

    if (num(p, "free", &free_b) && num(p, "total", &total) && total > 0 &&
        free_b >= 0 && free_b <= total)
        snprintf(pct, sizeof(pct), "%.1f", 100.0 * free_b / total);
    else
        snprintf(pct, sizeof(pct), "-");
    fprintf(out, "%s heap free %s (%s %%) largest %s min %s failures %s\n",
            cell_time(t, sizeof(t), p, "t_us"),
            cell_bytes(fr, sizeof(fr), p, "free"), pct,
            cell_bytes(lg, sizeof(lg), p, "largest"),
            cell_bytes(mf, sizeof(mf), p, "min_free"),
            cell_int(fl, sizeof(fl), p, "failures"));
}

static void note_alert(FILE *out, const cJSON *p)
{
    char t[FMT_BUF_MAX], v[FMT_BUF_MAX], th[FMT_BUF_MAX];
    char name[TEXT_MAX], state[TEXT_MAX], msg[TEXT_MAX];

    fprintf(out, "%s alert %s %s value %s threshold %s: %s\n",
            cell_time(t, sizeof(t), p, "t_us"),
            text(name, sizeof(name), p, "name"),
            text(state, sizeof(state), p, "state"),
            cell_num(v, sizeof(v), p, "value"),
            cell_num(th, sizeof(th), p, "threshold"),
            text(msg, sizeof(msg), p, "message"));
}

/* An object printed as compact JSON, cut at TEXT_MAX.  cJSON escapes
 * control characters inside strings, so the text is safe to print. */
static void compact(char *buf, size_t n, const cJSON *o)
{
    char *j = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

    clean(buf, n, j != NULL ? j : "");
    cJSON_free(j);
}

/* A syslog priority (what the MCU's LOG carries) by name. */
static const char *level(char *buf, size_t n, const cJSON *p)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                        "warning", "notice", "info", "debug"};
    double v;

    if (num(p, "level", &v) && v >= 0 && v < 8 && v == (int)v)
        snprintf(buf, n, "%s", names[(int)v]);
    else if (num(p, "level", &v))
        snprintf(buf, n, "%.0f", v);
    else
        text(buf, n, p, "level");
    return buf;
}

static void note_mcu(FILE *out, const char *now, const cJSON *p)
{
    char event[TEXT_MAX], a[TEXT_MAX], b[TEXT_MAX], c[TEXT_MAX];

    text(event, sizeof(event), p, "event");
    if (strcmp(event, "log") == 0)
        fprintf(out, "%s mcu log %s: %s\n", now, level(a, sizeof(a), p),
                text(b, sizeof(b), p, "text"));
    else if (strcmp(event, "reset") == 0)
        fprintf(out, "%s mcu reset %s\n", now, text(a, sizeof(a), p, "cause"));
    else if (strcmp(event, "hello") == 0)
        fprintf(out, "%s mcu hello firmware %s board %s build %s\n", now,
                text(a, sizeof(a), p, "firmware_version"),
                text(b, sizeof(b), p, "board"),
                text(c, sizeof(c), p, "build_id"));
    else {
        compact(a, sizeof(a), p);
        fprintf(out, "%s mcu %s%s%s\n", now, event, a[0] ? " " : "", a);
    }
}

void show_note(FILE *out, const cJSON *note, int64_t now_us)
{
    const cJSON *p = get(note, "params");
    char method[TEXT_MAX], now[FMT_BUF_MAX], a[TEXT_MAX], b[TEXT_MAX];

    text(method, sizeof(method), note, "method");
    fmt_time_local(now, sizeof(now), now_us);
    if (strcmp(method, "samples") == 0)
        note_samples(out, p);
    else if (strcmp(method, "heap") == 0)
        note_heap(out, p);
    else if (strcmp(method, "alert") == 0)
        note_alert(out, p);
    else if (strcmp(method, "link") == 0)
        fprintf(out, "%s link %s (%s)\n", now, text(a, sizeof(a), p, "state"),
                text(b, sizeof(b), p, "why"));
    else if (strcmp(method, "mcu") == 0)
        note_mcu(out, now, p);
    else if (strcmp(method, "flash") == 0)
        note_flash(out, now, p);
    else {
        compact(a, sizeof(a), p);
        fprintf(out, "%s %s%s%s\n", now, method, a[0] ? " " : "", a);
    }
}

int show_ack(FILE *out, const cJSON *result)
{
    char reason[TEXT_MAX];

    if (cJSON_IsTrue(get(result, "ack"))) {
        fprintf(out, "ACK\n");
        return 1;
    }
    fprintf(out, "NACK: %s\n", text(reason, sizeof(reason), result, "nack"));
    return 0;
}

void show_version(FILE *out, const cJSON *version)
{
    char d[TEXT_MAX], q[FMT_BUF_MAX], w[FMT_BUF_MAX];

    fprintf(out, "tetherd %s, query protocol %s, wire protocol %s\n",
            text(d, sizeof(d), version, "daemon"),
            cell_int(q, sizeof(q), version, "query_protocol"),
            cell_int(w, sizeof(w), version, "wire_protocol"));
}

/* ---- Firmware update ---- */

/* "12.3 s" under a minute, else as fmt_span_ms(); "-" when unknown. */
static void seconds(char *buf, size_t n, double ms)
{
    if (!(ms >= 0))
        snprintf(buf, n, "-");
    else if (ms < 60000)
        snprintf(buf, n, "%.1f s", ms / 1000);
    else
        fmt_span_ms(buf, n, (int64_t)ms);
}

/* The upload figures of a notification; false when they make no sense
 * (a total of 0, bytes beyond it). */
struct upload {
    double bytes, total, ms;
    double rate;    /* bytes per second, or -1 */
    double left_ms; /* or -1 */
    int percent;
};

static int upload_figures(const cJSON *p, struct upload *u)
{
    if (!num(p, "bytes", &u->bytes) || !num(p, "total", &u->total) ||
        u->total <= 0 || u->bytes < 0 || u->bytes > u->total)
        return 0;
    if (!num(p, "upload_ms", &u->ms) || u->ms < 0)
        u->ms = -1;
    u->percent = (int)(100 * u->bytes / u->total);
    u->rate = u->ms > 0 && u->bytes > 0 ? u->bytes * 1000 / u->ms : -1;
    u->left_ms = u->rate > 0 ? (u->total - u->bytes) * 1000 / u->rate : -1;
    return 1;
}

/* "54.8 KiB of 137.1 KiB, 11.2 KiB/s, 7 s left" */
static void upload_text(char *buf, size_t n, const struct upload *u)
{
    char b[FMT_BUF_MAX], t[FMT_BUF_MAX], r[FMT_BUF_MAX], l[FMT_BUF_MAX];

    fmt_bytes(b, sizeof(b), u->bytes);
    fmt_bytes(t, sizeof(t), u->total);
    if (u->rate > 0)
        fmt_bytes(r, sizeof(r), u->rate);
    else
        snprintf(r, sizeof(r), "-");
    if (u->bytes >= u->total)
        snprintf(l, sizeof(l), "done");
    else if (u->left_ms >= 0)
        fmt_span_ms(l, sizeof(l), (int64_t)u->left_ms);
    else
        snprintf(l, sizeof(l), "-");
    snprintf(buf, n, "%s of %s, %s/s, %s%s", b, t, r, l,
             u->bytes >= u->total || u->left_ms < 0 ? "" : " left");
}

static const char *state_text(const char *state)
{
    static const struct {
        const char *state, *text;
    } texts[] = {
        {"starting", "starting the upload"},
        {"uploading", "uploading"},
        {"verifying", "verifying: the MCU hashes what it stored"},
        {"booting", "booting the new image on test"},
        {"programming", "OpenOCD is writing the image"},
        {"waiting", "waiting for the new image's HELLO"},
        {"testing", "health gate: watching the new image's heap reports"},
        {"confirming", "confirming the new image"},
        {"reverting", "going back to the previous image"},
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (strcmp(texts[i].state, state) == 0)
            return texts[i].text;
    return NULL;
}

void show_flash_init(struct show_flash *sf, int tty)
{
    memset(sf, 0, sizeof(*sf));
    sf->tty = tty;
    sf->tenth = -1;
}

void show_flash_started(FILE *out, const cJSON *result)
{
    char id[FMT_BUF_MAX], image[TEXT_MAX], from[TEXT_MAX], to[TEXT_MAX];
    char total[FMT_BUF_MAX], method[TEXT_MAX];
    const cJSON *confirm = get(result, "confirm");

    fprintf(out, "flash %s: %s: %s -> %s, %s by %s, %s\n",
            cell_int(id, sizeof(id), result, "id"),
            text(image, sizeof(image), result, "image"),
            text(from, sizeof(from), result, "from_version"),
            text(to, sizeof(to), result, "version"),
            cell_bytes(total, sizeof(total), result, "total"),
            text(method, sizeof(method), result, "method"),
            cJSON_IsFalse(confirm) ? "left on test (no confirm)"
                                   : "confirmed after the health gate");
}

static void end_bar(FILE *out, struct show_flash *sf)
{
    if (sf->bar_open)
        fputc('\n', out);
    sf->bar_open = 0;
}

static void draw_bar(FILE *out, struct show_flash *sf, const struct upload *u)
{
    char bar[SHOW_BAR_WIDTH + 1], figures[TEXT_MAX];
    int fill = (int)(SHOW_BAR_WIDTH * u->bytes / u->total);

    for (int i = 0; i < SHOW_BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[SHOW_BAR_WIDTH] = '\0';
    upload_text(figures, sizeof(figures), u);
    /* Trailing blanks cover what a longer line before left. */
    fprintf(out, "\r[%s] %3d%%  %-48s", bar, u->percent, figures);
    fflush(out);
    sf->bar_open = 1;
}

int show_flash_progress(FILE *out, struct show_flash *sf, const cJSON *params)
{
    char id[FMT_BUF_MAX], state[sizeof(sf->state)], figures[TEXT_MAX];
    const char *what;
    struct upload u;
    int changed;

    cell_int(id, sizeof(id), params, "id");
    text(state, sizeof(state), params, "state");
    changed = strcmp(state, sf->state) != 0;
    memcpy(sf->state, state, sizeof(state));
    if (strcmp(state, "done") == 0) {
        end_bar(out, sf);
        return 1;
    }
    if (strcmp(state, "uploading") == 0 && upload_figures(params, &u)) {
        if (sf->tty) {
            if (changed)
                end_bar(out, sf);
            draw_bar(out, sf, &u);
            return 0;
        }
        if (!changed && u.percent / 10 <= sf->tenth)
            return 0;
        sf->tenth = u.percent / 10;
        upload_text(figures, sizeof(figures), &u);
        fprintf(out, "flash %s: uploading %3d%%  %s\n", id, u.percent, figures);
        return 0;
    }
    if (!changed)
        return 0;
    end_bar(out, sf);
    sf->tenth = -1;
    what = state_text(state);
    fprintf(out, "flash %s: %s\n", id, what != NULL ? what : state);
    return 0;
}

int show_flash_outcome(FILE *out, const cJSON *params)
{
    char id[FMT_BUF_MAX], outcome[TEXT_MAX], why[TEXT_MAX], from[TEXT_MAX];
    char to[TEXT_MAX], method[TEXT_MAX], took[FMT_BUF_MAX], up[TEXT_MAX];
    double elapsed;
    struct upload u;

    cell_int(id, sizeof(id), params, "id");
    text(outcome, sizeof(outcome), params, "outcome");
    text(why, sizeof(why), params, "why");
    text(from, sizeof(from), params, "from_version");
    text(to, sizeof(to), params, "version");
    text(method, sizeof(method), params, "method");
    seconds(took, sizeof(took),
            num(params, "elapsed_ms", &elapsed) ? elapsed : -1);
    if (strcmp(outcome, "confirmed") == 0 || strcmp(outcome, "testing") == 0) {
        if (strcmp(method, "uart") == 0 && upload_figures(params, &u)) {
            char b[FMT_BUF_MAX], r[FMT_BUF_MAX], s[FMT_BUF_MAX];

            fmt_bytes(b, sizeof(b), u.bytes);
            seconds(s, sizeof(s), u.ms);
            if (u.rate > 0)
                fmt_bytes(r, sizeof(r), u.rate);
            else
                snprintf(r, sizeof(r), "-");
            snprintf(up, sizeof(up), "%s uploaded in %s, %s/s; ", b, s, r);
        } else {
            up[0] = '\0';
        }
        if (outcome[0] == 'c')
            fprintf(out,
                    "flash %s: confirmed: %s runs (was %s); %sall done in "
                    "%s\n",
                    id, to, from, up, took);
        else
            fprintf(out,
                    "flash %s: testing: %s runs on test, not confirmed; the "
                    "next MCU reset goes back to %s; %sall done in %s\n",
                    id, to, from, up, took);
        return 1;
    }
    if (strcmp(outcome, "reverted") == 0)
        fprintf(out, "flash %s: reverted: %s; %s runs\n", id, why, from);
    else
        fprintf(out, "flash %s: %s: %s\n", id, outcome, why);
    return 0;
}
