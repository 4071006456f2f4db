/* Terminal charts for tetherctl.  See plot.h.
 *
 * The range is cut into width columns of equal time.  tetherd picks the
 * bucket width from the number of buckets asked for, rounded up to whole
 * seconds or minutes so that its rollups serve it, so buckets are rarely
 * as wide as columns: wider ones would leave columns without a bucket
 * start, narrower ones put several in one column.  A column therefore
 * takes every point that starts inside it and the point whose bucket
 * covers its middle.  That way a wide bucket fills each column it spans
 * without smearing into its neighbours' columns, and a column is blank
 * exactly when no data falls in it.  Values map to rows linearly, the
 * top row is the highest value drawn and the bottom row the lowest, and
 * the threshold, when shown, is always inside that range. */
#include "plot.h"

#include "fmt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define Y_TICKS      4  /* labelled intervals on the y axis */
#define X_TICK_EVERY 15 /* columns per labelled x interval, about */
#define X_TICKS_MAX  8
#define LABEL_MAX    32 /* one axis label */
#define DECIMALS_MAX 3  /* for counts whose rows are closer than 1 */
/* A row of output: the y labels, the axis and the widest chart, plus the
 * x label that may stick out past the right edge. */
#define ROW_MAX      (LABEL_MAX + 3 + PLOT_WIDTH_MAX + LABEL_MAX + 2)
/* Figures beyond 2^53, the largest integer a double holds exactly, are
 * not what tetherd sends. */
#define VALUE_MAX    9007199254740992.0

struct column {
    double lo, hi;    /* lowest min and highest max */
    double sum, wsum; /* weighted sum of averages, sum of weights */
    int have;
    int r_avg, r_hi, r_lo; /* rows, once the y range is known */
};

int plot_parse_series(const char *name, struct plot_series *s)
{
    long long ch;

    if (name == NULL || strlen(name) >= PLOT_NAME_MAX)
        return -1;
    memset(s, 0, sizeof(*s));
    if (strcmp(name, "heap.free") == 0) {
        s->kind = PLOT_HEAP_FREE;
    } else if (strcmp(name, "heap.largest") == 0) {
        s->kind = PLOT_HEAP_LARGEST;
    } else if (strncmp(name, "adc.", 4) == 0 &&
               fmt_parse_int(name + 4, 0, 0, PLOT_CHANNEL_MAX, &ch) == 0 &&
               name[4] != '-') {
        s->kind = PLOT_ADC;
        s->channel = (int)ch;
    } else {
        return -1;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    return 0;
}

const char *plot_history_series(const struct plot_series *s)
{
    return s->kind == PLOT_ADC ? "adc" : "heap";
}

static int value(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        fabs(v->valuedouble) > VALUE_MAX)
        return 0;
    *out = v->valuedouble;
    return 1;
}

size_t plot_points_from_history(const struct plot_series *s,
                                const cJSON *points, struct plot_point *dst,
                                size_t cap)
{
    const cJSON *p;
    size_t n = 0;

    if (!cJSON_IsArray(points))
        return 0;
    cJSON_ArrayForEach(p, points)
    {
        struct plot_point pt = {0};
        double t, ch, count;
        int ok;

        if (n == cap)
            break;
        if (!value(p, "t_us", &t))
            continue;
        switch (s->kind) {
        case PLOT_HEAP_FREE:
            ok = value(p, "free_min", &pt.min) &&
                 value(p, "free_avg", &pt.avg) && value(p, "free_max", &pt.max);
            break;
        case PLOT_HEAP_LARGEST:
            /* The history keeps only the smallest largest block of each
             * bucket: the figure that matters for the next allocation. */
            ok = value(p, "largest_min", &pt.avg);
            pt.min = pt.max = pt.avg;
            break;
        default:
            if (!value(p, "channel", &ch) || ch != s->channel)
                continue;
            /* A bucket has min, avg and max; a raw row only a value. */
            if (value(p, "avg", &pt.avg)) {
                ok = value(p, "min", &pt.min) && value(p, "max", &pt.max);
            } else {
                ok = value(p, "value", &pt.avg);
                pt.min = pt.max = pt.avg;
            }
            break;
        }
        if (!ok)
            continue;
        pt.t_us = (int64_t)t;
        pt.weight = value(p, "count", &count) && count > 0 ? count : 1;
        dst[n++] = pt;
    }
    return n;
}

int plot_threshold_from_status(const cJSON *status, double *bytes)
{
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(status, "alerts");
    double v;

    if (!value(alerts, "heap_low_threshold", &v) || v < 0)
        return 0;
    *bytes = v;
    return 1;
}

/* ---- rendering ---- */

/* Rounds half away from zero; x is small (a row or column number), and
 * tetherctl links without libm. */
static int nearest(double x)
{
    return x < 0 ? -(int)(-x + 0.5) : (int)(x + 0.5);
}

static double lesser(double a, double b)
{
    return a < b ? a : b;
}

static double greater(double a, double b)
{
    return a > b ? a : b;
}

static int valid(const struct plot_options *o)
{
    return o->width >= PLOT_WIDTH_MIN && o->width <= PLOT_WIDTH_MAX &&
           o->height >= PLOT_HEIGHT_MIN && o->height <= PLOT_HEIGHT_MAX &&
           o->from_us >= 0 && o->to_us > o->from_us &&
           o->to_us <= INT64_MAX / 2 &&
           o->to_us - o->from_us <= PLOT_SPAN_MAX_US && o->bucket_us >= 0 &&
           o->bucket_us <= PLOT_SPAN_MAX_US &&
           (!o->threshold_shown ||
            (isfinite(o->threshold) && fabs(o->threshold) <= VALUE_MAX));
}

static void merge(struct column *c, const struct plot_point *p)
{
    double lo = lesser(p->min, lesser(p->avg, p->max));
    double hi = greater(p->max, greater(p->avg, p->min));
    double w = isfinite(p->weight) && p->weight > 0 ? p->weight : 1;

    if (!c->have || lo < c->lo)
        c->lo = lo;
    if (!c->have || hi > c->hi)
        c->hi = hi;
    c->sum += p->avg * w;
    c->wsum += w;
    c->have = 1;
}

/* Puts each point into the columns it belongs to (see the top of the
 * file). */
static void fill(struct column *cols, const struct plot_point *pts, size_t n,
                 const struct plot_options *o)
{
    int64_t span = o->to_us - o->from_us, w = o->width;

    for (size_t i = 0; i < n; i++) {
        const struct plot_point *p = &pts[i];
        int64_t t0 = p->t_us, t1, first, last, start = -1;

        if (!isfinite(p->min) || !isfinite(p->avg) || !isfinite(p->max) ||
            t0 < -PLOT_SPAN_MAX_US || t0 > o->to_us)
            continue;
        t1 = t0 + (o->bucket_us > 0 ? o->bucket_us : 1);
        if (t1 <= o->from_us || t0 >= o->to_us)
            continue;
        if (t0 >= o->from_us) {
            start = (t0 - o->from_us) * w / span;
            merge(&cols[start], p);
        }
        first = t0 > o->from_us ? (t0 - o->from_us) * w / span : 0;
        last = t1 < o->to_us ? (t1 - 1 - o->from_us) * w / span : w - 1;
        for (int64_t c = first; c <= last; c++) {
            int64_t mid = o->from_us + (2 * c + 1) * span / (2 * w);

            if (c != start && mid >= t0 && mid < t1)
                merge(&cols[c], p);
        }
    }
}

static int row_of(double v, double lo, double hi, int height)
{
    int r = nearest((hi - v) / (hi - lo) * (height - 1));

    return r < 0 ? 0 : r > height - 1 ? height - 1 : r;
}

static int is_bytes(const struct plot_options *o)
{
    return o->series.kind != PLOT_ADC;
}

/* A y label in the given style: for bytes, 0 scales to KiB and MiB with
 * fmt_bytes() and 1 prints plain bytes (for ranges too narrow for KiB to
 * tell the rows apart); for counts, the number of decimals. */
static void y_label(char *buf, size_t n, const struct plot_options *o, double v,
                    int style)
{
    if (is_bytes(o) && style > 0)
        snprintf(buf, n, "%.0f B", v);
    else if (is_bytes(o))
        fmt_bytes(buf, n, v);
    else
        snprintf(buf, n, "%.*f", style, v);
    /* Rounding may leave a minus sign on zero. */
    if (buf[0] == '-' && strspn(buf + 1, "0.") == strcspn(buf + 1, " "))
        memmove(buf, buf + 1, strlen(buf));
}

/* Labels for the y axis: labels[r] is "" for unlabelled rows.  The
 * labelled rows are spread evenly, in the least precise style that tells
 * them apart; the threshold's row shows the threshold.  Returns the
 * widest label's length. */
static size_t y_labels(char (*labels)[LABEL_MAX], const struct plot_options *o,
                       double lo, double hi, int th_row)
{
    int h = o->height, rows[Y_TICKS + 1];
    int styles = is_bytes(o) ? 2 : DECIMALS_MAX + 1;
    int style = 0;
    size_t wmax = 0;

    for (int k = 0; k <= Y_TICKS; k++)
        rows[k] = nearest((double)k * (h - 1) / Y_TICKS);
    for (style = 0; style < styles; style++) {
        int distinct = 1;

        for (int r = 0; r < h; r++)
            labels[r][0] = '\0';
        for (int k = 0; k <= Y_TICKS; k++) {
            double v = hi - (hi - lo) * rows[k] / (h - 1);

            y_label(labels[rows[k]], LABEL_MAX, o, v, style);
            if (k > 0 && rows[k] != rows[k - 1] &&
                strcmp(labels[rows[k]], labels[rows[k - 1]]) == 0)
                distinct = 0;
        }
        if (distinct || style == styles - 1)
            break;
    }
    if (th_row >= 0)
        y_label(labels[th_row], LABEL_MAX, o, o->threshold, style);
    for (int r = 0; r < h; r++)
        if (strlen(labels[r]) > wmax)
            wmax = strlen(labels[r]);
    return wmax;
}

/* Writes line without its trailing blanks, and a newline. */
static void put_line(FILE *out, char *line, size_t len)
{
    while (len > 0 && line[len - 1] == ' ')
        len--;
    line[len] = '\0';
    fprintf(out, "%s\n", line);
}

/* Local time of a tick, as precise as the spacing of ticks needs:
 * seconds when they are minutes apart, the date when days apart. */
static void x_label(char *buf, size_t n, int64_t t_us, int64_t spacing_us)
{
    const char *f = spacing_us < 300LL * 1000000          ? "%H:%M:%S"
                    : spacing_us < 12 * 3600LL * 1000000  ? "%H:%M"
                    : spacing_us < 30 * 86400LL * 1000000 ? "%m-%d %H:%M"
                                                          : "%Y-%m-%d";
    time_t tt = (time_t)(t_us / 1000000);
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL || strftime(buf, n, f, &tm) == 0)
        snprintf(buf, n, "?");
}

/* The x axis and its time labels under the chart, starting at column
 * left.  Ticks fall on column starts and the right edge; the first label
 * is left-aligned, the last right-aligned, the others centred, and a
 * label that would touch another is left out. */
static void x_axis(FILE *out, const struct plot_options *o, size_t left)
{
    int64_t span = o->to_us - o->from_us, spacing;
    int w = o->width;
    int ticks = w / X_TICK_EVERY;
    char line[ROW_MAX], label[LABEL_MAX];
    size_t first_end, last_start, prev_end;

    if (ticks < 1)
        ticks = 1;
    if (ticks > X_TICKS_MAX)
        ticks = X_TICKS_MAX;
    spacing = span / ticks;
    memset(line, ' ', sizeof(line));
    for (int c = 0; c <= w; c++)
        line[left + 1 + (size_t)c] = '-';
    for (int k = 0; k <= ticks; k++)
        line[left + 1 + (size_t)(k * w / ticks)] = '+';
    put_line(out, line, left + 2 + (size_t)w);

    memset(line, ' ', sizeof(line));
    x_label(label, sizeof(label), o->from_us, spacing);
    memcpy(line + left + 1, label, strlen(label));
    first_end = left + 1 + strlen(label);
    x_label(label, sizeof(label), o->to_us, spacing);
    last_start = left + 2 + (size_t)w - strlen(label);
    if (last_start > first_end)
        memcpy(line + last_start, label, strlen(label));
    else
        last_start = left + 2 + (size_t)w + 1;
    prev_end = first_end;
    for (int k = 1; k < ticks; k++) {
        size_t pos = left + 1 + (size_t)(k * w / ticks), len, at;

        x_label(label, sizeof(label), o->from_us + k * span / ticks, spacing);
        len = strlen(label);
        at = pos - len / 2;
        if (at > prev_end && at + len < last_start) {
            memcpy(line + at, label, len);
            prev_end = at + len;
        }
    }
    put_line(out, line, left + 3 + (size_t)w + LABEL_MAX);
}

static void header(FILE *out, const struct plot_options *o)
{
    char from[FMT_BUF_MAX], to[FMT_BUF_MAX], bucket[FMT_BUF_MAX];

    fmt_time_local(from, sizeof(from), o->from_us);
    fmt_time_local(to, sizeof(to), o->to_us);
    fmt_duration(bucket, sizeof(bucket), o->bucket_us);
    switch (o->series.kind) {
    case PLOT_HEAP_FREE:
        fprintf(out, "%s: free heap, bytes", o->series.name);
        break;
    case PLOT_HEAP_LARGEST:
        fprintf(out, "%s: largest free block (lowest per bucket), bytes",
                o->series.name);
        break;
    default:
        fprintf(out, "%s: ADC channel %d, counts", o->series.name,
                o->series.channel);
        break;
    }
    if (o->bucket_us > 0)
        fprintf(out, ", buckets of %s\n", bucket);
    else
        fprintf(out, ", raw samples\n");
    fprintf(out, "%s to %s\n", from, to);
}

static void legend(FILE *out, const struct plot_options *o, size_t left,
                   int envelope, int gaps)
{
    char th[LABEL_MAX];

    fprintf(out, "%*s* average", (int)(left + 2), "");
    if (envelope)
        fprintf(out, "  : min to max");
    if (o->threshold_shown) {
        if (is_bytes(o))
            fmt_bytes(th, sizeof(th), o->threshold);
        else
            snprintf(th, sizeof(th), "%.10g", o->threshold);
        fprintf(out, "  - %s %s",
                o->threshold_name != NULL ? o->threshold_name : "threshold",
                th);
    }
    if (gaps)
        fprintf(out, "  blank: no data");
    fprintf(out, "\n");
}

int plot_render(FILE *out, const struct plot_point *pts, size_t n,
                const struct plot_options *o)
{
    char(*labels)[LABEL_MAX] = NULL;
    struct column *cols;
    char line[ROW_MAX];
    double lo = 0, hi = 0;
    int have = 0, envelope = 0, gaps = 0, th_row = -1;
    size_t left;

    if (!valid(o))
        return -EINVAL;
    cols = calloc((size_t)o->width, sizeof(*cols));
    if (cols == NULL)
        return -ENOMEM;
    labels = calloc((size_t)o->height, sizeof(*labels));
    if (labels == NULL)
        goto err_cols;

    fill(cols, pts, n, o);
    for (int c = 0; c < o->width; c++) {
        if (!cols[c].have) {
            gaps = 1;
            continue;
        }
        if (!have || cols[c].lo < lo)
            lo = cols[c].lo;
        if (!have || cols[c].hi > hi)
            hi = cols[c].hi;
        have = 1;
    }
    if (!have) {
        char from[FMT_BUF_MAX], to[FMT_BUF_MAX];

        fmt_time_local(from, sizeof(from), o->from_us);
        fmt_time_local(to, sizeof(to), o->to_us);
        fprintf(out, "%s: no data from %s to %s\n", o->series.name, from, to);
        goto out;
    }
    if (o->threshold_shown) {
        lo = lesser(lo, o->threshold);
        hi = greater(hi, o->threshold);
    }
    if (hi == lo) {
        /* A flat line sits in the middle of a range of one unit. */
        lo -= 1;
        hi += 1;
    }
    if (o->threshold_shown)
        th_row = row_of(o->threshold, lo, hi, o->height);
    for (int c = 0; c < o->width; c++) {
        struct column *col = &cols[c];

        if (!col->have)
            continue;
        col->r_avg = row_of(col->sum / col->wsum, lo, hi, o->height);
        col->r_hi = row_of(col->hi, lo, hi, o->height);
        col->r_lo = row_of(col->lo, lo, hi, o->height);
        envelope |= col->r_hi != col->r_lo;
    }
    left = y_labels(labels, o, lo, hi, th_row);

    header(out, o);
    for (int r = 0; r < o->height; r++) {
        size_t len =
            (size_t)snprintf(line, sizeof(line), "%*s |", (int)left, labels[r]);

        for (int c = 0; c < o->width; c++) {
            const struct column *col = &cols[c];
            char ch = ' ';

            if (col->have && r == col->r_avg)
                ch = '*';
            else if (col->have && r >= col->r_hi && r <= col->r_lo)
                ch = ':';
            else if (r == th_row)
                ch = '-';
            line[len++] = ch;
        }
        put_line(out, line, len);
    }
    x_axis(out, o, left);
    legend(out, o, left, envelope, gaps);

out:
    free(labels);
    free(cols);
    return 0;

err_cols:
    free(cols);
    return -ENOMEM;
}
