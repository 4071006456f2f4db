/* Human-readable tables for tetherctl.  See show.h.
 *
 * The daemon may add keys to its results at any time (docs/QUERY.md keeps
 * only some keys stable), so the link and store sections print every
 * numeric counter they find rather than a fixed list, and every lookup
 * tolerates absence: a field that is missing or of the wrong type shows
 * as "-".  Labels are padded to one column width so sections line up. */
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

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int num(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = get(o, key);

    if (!cJSON_IsNumber(v))
        return 0;
    *out = v->valuedouble;
    return 1;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);

    return cJSON_IsString(v) ? v->valuestring : "-";
}

static void row(const char *label, const char *value)
{
    printf("  %-*s %s\n", LABEL_WIDTH, label, value);
}

/* Starts a row whose value the caller prints, ending it with "\n". */
static void row_label(const char *label)
{
    printf("  %-*s ", LABEL_WIDTH, label);
}

/* An integer field, or "-". */
static void cell_int(char *buf, size_t n, const cJSON *o, const char *key)
{
    double v;

    if (num(o, key, &v))
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "-");
}

/* A number with up to one decimal, or "-". */
static void cell_num(char *buf, size_t n, const cJSON *o, const char *key)
{
    double v;

    if (!num(o, key, &v))
        snprintf(buf, n, "-");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "%.1f", v);
}

static void cell_time(char *buf, size_t n, const cJSON *o, const char *key)
{
    double t;

    if (num(o, key, &t))
        fmt_time_local(buf, n, (int64_t)t);
    else
        snprintf(buf, n, "-");
}

static void cell_age(char *buf, size_t n, const cJSON *o, const char *key)
{
    double ms;

    if (num(o, key, &ms))
        fmt_age_ms(buf, n, (int64_t)ms);
    else
        snprintf(buf, n, "-");
}

/* Prints every number and boolean of o except those named in skip, with
 * the key's underscores shown as spaces. */
static void counters(const cJSON *o, const char *const *skip)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, o)
    {
        char label[LABEL_MAX], value[FMT_BUF_MAX];
        int skipped = 0;

        if (c->string == NULL || (!cJSON_IsNumber(c) && !cJSON_IsBool(c)))
            continue;
        for (size_t i = 0; skip[i] != NULL; i++)
            skipped |= strcmp(skip[i], c->string) == 0;
        if (skipped)
            continue;
        snprintf(label, sizeof(label), "%s", c->string);
        for (char *p = label; *p != '\0'; p++)
            if (*p == '_')
                *p = ' ';
        if (cJSON_IsBool(c))
            snprintf(value, sizeof(value), "%s",
                     cJSON_IsTrue(c) ? "yes" : "no");
        else
            snprintf(value, sizeof(value), "%.0f", c->valuedouble);
        row(label, value);
    }
}

/* Joins the strings of an array (or the "name" of its objects) with ", ",
 * truncating at LIST_MAX. */
static void join_names(char *buf, size_t n, const cJSON *arr)
{
    const cJSON *c;
    size_t off = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(c, arr)
    {
        const char *s = cJSON_IsString(c) ? c->valuestring : str(c, "name");
        int w = snprintf(buf + off, n - off, "%s%s", off ? ", " : "", s);

        if (w < 0 || (size_t)w >= n - off)
            break;
        off += (size_t)w;
    }
    if (off == 0)
        snprintf(buf, n, "none");
}

static void show_link(const cJSON *link)
{
    static const char *const skip[] = {"last_frame_age_ms", NULL};
    char b[FMT_BUF_MAX];

    printf("Link\n");
    row("state", str(link, "state"));
    row("device", str(link, "device"));
    cell_age(b, sizeof(b), link, "last_frame_age_ms");
    row("last frame", b);
    counters(link, skip);
}

static void show_mcu(const cJSON *mcu)
{
    char b[FMT_BUF_MAX];
    double ch, bits, up;

    printf("MCU\n");
    if (!cJSON_IsObject(mcu)) {
        row("identity", "unknown (no HELLO yet)");
        return;
    }
    row("firmware", str(mcu, "firmware_version"));
    row("board", str(mcu, "board"));
    row("build id", str(mcu, "build_id"));
    if (num(mcu, "uptime_ms", &up))
        fmt_span_ms(b, sizeof(b), (int64_t)up);
    else
        snprintf(b, sizeof(b), "-");
    row("uptime", b);
    row("last reset", str(mcu, "last_reset_cause"));
    if (num(mcu, "adc_channels", &ch) && num(mcu, "adc_bits", &bits)) {
        snprintf(b, sizeof(b), "%.0f channels, %.0f bits", ch, bits);
        row("ADC", b);
    }
}

/* A byte figure with its share of total, when total is known. */
static void bytes_row(const cJSON *heap, const char *key, const char *label,
                      double total)
{
    char v[FMT_BUF_MAX];
    double x;

    if (!num(heap, key, &x)) {
        row(label, "-");
        return;
    }
    fmt_bytes(v, sizeof(v), x);
    row_label(label);
    if (total > 0)
        printf("%-10s (%.1f %%)\n", v, 100.0 * x / total);
    else
        printf("%s\n", v);
}

void show_heap(const cJSON *heap)
{
    char b[FMT_BUF_MAX], age[FMT_BUF_MAX], a[FMT_BUF_MAX], f[FMT_BUF_MAX];
    double total = 0;

    printf("Heap\n");
    if (!cJSON_IsObject(heap)) {
        row("report", "none yet");
        return;
    }
    cell_age(age, sizeof(age), heap, "age_ms");
    row("reported", age);
    row("scenario", str(heap, "scenario"));
    if (num(heap, "total", &total))
        fmt_bytes(b, sizeof(b), total);
    else
        snprintf(b, sizeof(b), "-");
    row("total", b);
    bytes_row(heap, "free", "free", total);
    bytes_row(heap, "used", "used", total);
    bytes_row(heap, "largest", "largest block", total);
    bytes_row(heap, "min_free", "min free (ever)", total);
    cell_int(a, sizeof(a), heap, "allocs");
    cell_int(f, sizeof(f), heap, "frees");
    row_label("allocs / frees");
    printf("%s / %s\n", a, f);
    cell_int(b, sizeof(b), heap, "blocks");
    row("blocks", b);
    cell_int(b, sizeof(b), heap, "failures");
    row("failures", b);
}

static void show_store(const cJSON *store)
{
    static const char *const skip[] = {NULL};
    const char *last;

    printf("Store\n");
    if (!cJSON_IsObject(store)) {
        row("state", "unknown");
        return;
    }
    counters(store, skip);
    last = str(store, "last_error");
    if (strcmp(last, "-") != 0 && last[0] != '\0')
        row("last error", last);
}

void show_status(const cJSON *status)
{
    char b[LIST_MAX];

    show_link(get(status, "link"));
    show_mcu(get(status, "mcu"));
    show_heap(get(status, "heap"));
    show_store(get(status, "store"));
    printf("Alerts\n");
    join_names(b, sizeof(b), get(get(status, "alerts"), "active"));
    row("active", b);
}

void show_latest(const cJSON *latest)
{
    const cJSON *ch;
    double age_ms = 0;

    num(latest, "age_ms", &age_ms);
    if (cJSON_IsTrue(get(latest, "stale")))
        printf("warning: data is stale (newest %.0f ms old)\n", age_ms);
    if (cJSON_GetArraySize(get(latest, "channels")) == 0)
        printf("no samples\n");
    cJSON_ArrayForEach(ch, get(latest, "channels"))
    {
        const cJSON *s, *samples = get(ch, "samples");
        double newest = 0, c = -1;
        int have_newest = 0;

        num(ch, "channel", &c);
        printf("channel %.0f\n", c);
        printf("  %-30s %-14s %s\n", "time", "age", "value");
        cJSON_ArrayForEach(s, samples)
        {
            char t[FMT_BUF_MAX], age[FMT_BUF_MAX], v[FMT_BUF_MAX];
            double ts;

            cell_time(t, sizeof(t), s, "t_us");
            /* Ages come from the daemon's age_ms of the newest sample plus
             * the spacing of MCU timestamps, so a skewed local clock does
             * not distort them. */
            if (num(s, "t_us", &ts)) {
                if (!have_newest) {
                    newest = ts;
                    have_newest = 1;
                }
                fmt_age_ms(age, sizeof(age),
                           (int64_t)(age_ms + (newest - ts) / 1000.0));
            } else {
                snprintf(age, sizeof(age), "-");
            }
            cell_num(v, sizeof(v), s, "value");
            printf("  %-30s %-14s %s\n", t, age, v);
        }
    }
}

void show_history_header(int heap_series, int bucketed)
{
    if (heap_series)
        printf("%-30s %6s %10s %10s %10s %10s %8s\n", "time", "count",
               "free_min", "free_avg", "free_max", "largest_min", "failures");
    else if (bucketed)
        printf("%-30s %4s %8s %10s %8s %8s\n", "time", "ch", "min", "avg",
               "max", "count");
    else
        printf("%-30s %4s %8s\n", "time", "ch", "value");
}

void show_history_points(const cJSON *points, int heap_series, int bucketed)
{
    const cJSON *p;

    cJSON_ArrayForEach(p, points)
    {
        char t[FMT_BUF_MAX], c[FMT_BUF_MAX], a[FMT_BUF_MAX], b[FMT_BUF_MAX],
            d[FMT_BUF_MAX], e[FMT_BUF_MAX], f[FMT_BUF_MAX];

        cell_time(t, sizeof(t), p, "t_us");
        if (heap_series) {
            cell_int(c, sizeof(c), p, "count");
            cell_num(a, sizeof(a), p, "free_min");
            cell_num(b, sizeof(b), p, "free_avg");
            cell_num(d, sizeof(d), p, "free_max");
            cell_num(e, sizeof(e), p, "largest_min");
            cell_int(f, sizeof(f), p, "failures_max");
            printf("%-30s %6s %10s %10s %10s %10s %8s\n", t, c, a, b, d, e, f);
        } else if (bucketed) {
            cell_int(c, sizeof(c), p, "channel");
            cell_num(a, sizeof(a), p, "min");
            cell_num(b, sizeof(b), p, "avg");
            cell_num(d, sizeof(d), p, "max");
            cell_int(e, sizeof(e), p, "count");
            printf("%-30s %4s %8s %10s %8s %8s\n", t, c, a, b, d, e);
        } else {
            cell_int(c, sizeof(c), p, "channel");
            cell_num(a, sizeof(a), p, "value");
            printf("%-30s %4s %8s\n", t, c, a);
        }
    }
}

void show_alerts(const cJSON *alerts)
{
    const cJSON *a;
    int64_t now = fmt_now_us();

    printf("Active alerts\n");
    if (cJSON_GetArraySize(get(alerts, "active")) == 0)
        printf("  none\n");
    cJSON_ArrayForEach(a, get(alerts, "active"))
    {
        char since[FMT_BUF_MAX], v[FMT_BUF_MAX], th[FMT_BUF_MAX];
        double t;

        if (num(a, "t_us", &t))
            fmt_age_ms(since, sizeof(since), (now - (int64_t)t) / 1000);
        else
            snprintf(since, sizeof(since), "-");
        cell_num(v, sizeof(v), a, "value");
        cell_num(th, sizeof(th), a, "threshold");
        printf("  %-16s raised %-12s value %s threshold %s\n", str(a, "name"),
               since, v, th);
        printf("  %-16s %s\n", "", str(a, "message"));
    }
    printf("History\n");
    if (cJSON_GetArraySize(get(alerts, "history")) == 0)
        printf("  none\n");
    else
        printf("  %-30s %-16s %-8s %10s %10s  %s\n", "time", "name", "state",
               "value", "threshold", "message");
    cJSON_ArrayForEach(a, get(alerts, "history"))
    {
        char t[FMT_BUF_MAX], v[FMT_BUF_MAX], th[FMT_BUF_MAX];

        cell_time(t, sizeof(t), a, "t_us");
        cell_num(v, sizeof(v), a, "value");
        cell_num(th, sizeof(th), a, "threshold");
        printf("  %-30s %-16s %-8s %10s %10s  %s\n", t, str(a, "name"),
               str(a, "state"), v, th, str(a, "message"));
    }
}

static void note_samples(const cJSON *p)
{
    char chans[LIST_MAX], last[LIST_MAX], b[FMT_BUF_MAX];
    const cJSON *values = get(p, "values");
    const cJSON *scan =
        cJSON_GetArrayItem(values, cJSON_GetArraySize(values) - 1);
    const cJSON *v;
    size_t off = 0;
    double scans = 0, period = 0;

    chans[0] = '\0';
    cJSON_ArrayForEach(v, get(p, "channels"))
    {
        int w = snprintf(chans + off, sizeof(chans) - off, "%s%.0f",
                         off ? "," : "", v->valuedouble);

        if (w < 0 || (size_t)w >= sizeof(chans) - off)
            break;
        off += (size_t)w;
    }
    off = 0;
    last[0] = '\0';
    cJSON_ArrayForEach(v, scan)
    {
        int w = snprintf(last + off, sizeof(last) - off, "%s%.0f",
                         off ? " " : "", v->valuedouble);

        if (w < 0 || (size_t)w >= sizeof(last) - off)
            break;
        off += (size_t)w;
    }
    num(p, "scans", &scans);
    num(p, "period_us", &period);
    cell_time(b, sizeof(b), p, "t0_us");
    printf("%s samples ch [%s] %.0f scans, period %.0f us, last [%s]\n", b,
           chans, scans, period, last);
}

static void note_heap(const cJSON *p)
{
    char t[FMT_BUF_MAX], fr[FMT_BUF_MAX], lg[FMT_BUF_MAX], mf[FMT_BUF_MAX];
    double free_b = 0, total = 0, largest = 0, min_free = 0, failures = 0;

    cell_time(t, sizeof(t), p, "t_us");
    num(p, "free", &free_b);
    num(p, "total", &total);
    num(p, "largest", &largest);
    num(p, "min_free", &min_free);
    num(p, "failures", &failures);
    fmt_bytes(fr, sizeof(fr), free_b);
    fmt_bytes(lg, sizeof(lg), largest);
    fmt_bytes(mf, sizeof(mf), min_free);
    printf("%s heap free %s (%.1f %%) largest %s min %s failures %.0f\n", t, fr,
           total > 0 ? 100.0 * free_b / total : 0.0, lg, mf, failures);
}

static void note_alert(const cJSON *p)
{
    char t[FMT_BUF_MAX], v[FMT_BUF_MAX], th[FMT_BUF_MAX];

    cell_time(t, sizeof(t), p, "t_us");
    cell_num(v, sizeof(v), p, "value");
    cell_num(th, sizeof(th), p, "threshold");
    printf("%s alert %s %s value %s threshold %s: %s\n", t, str(p, "name"),
           str(p, "state"), v, th, str(p, "message"));
}

static void note_mcu(const char *now, const cJSON *p)
{
    const char *event = str(p, "event");

    if (strcmp(event, "log") == 0)
        printf("%s mcu log %s: %s\n", now, str(p, "level"), str(p, "text"));
    else if (strcmp(event, "reset") == 0)
        printf("%s mcu reset %s\n", now, str(p, "cause"));
    else if (strcmp(event, "hello") == 0)
        printf("%s mcu hello firmware %s board %s build %s\n", now,
               str(p, "firmware_version"), str(p, "board"), str(p, "build_id"));
    else {
        char *text = cJSON_PrintUnformatted(p);

        printf("%s mcu %s %s\n", now, event, text != NULL ? text : "");
        cJSON_free(text);
    }
}

void show_note(const cJSON *note)
{
    const char *method = str(note, "method");
    const cJSON *p = get(note, "params");
    char now[FMT_BUF_MAX];

    fmt_time_local(now, sizeof(now), fmt_now_us());
    if (strcmp(method, "samples") == 0)
        note_samples(p);
    else if (strcmp(method, "heap") == 0)
        note_heap(p);
    else if (strcmp(method, "alert") == 0)
        note_alert(p);
    else if (strcmp(method, "link") == 0)
        printf("%s link %s (%s)\n", now, str(p, "state"), str(p, "why"));
    else if (strcmp(method, "mcu") == 0)
        note_mcu(now, p);
    else {
        char *text = cJSON_PrintUnformatted(p);

        printf("%s %s %s\n", now, method, text != NULL ? text : "");
        cJSON_free(text);
    }
}

int show_ack(const cJSON *result)
{
    if (cJSON_IsTrue(get(result, "ack"))) {
        printf("ACK\n");
        return 1;
    }
    printf("NACK: %s\n", str(result, "nack"));
    return 0;
}
