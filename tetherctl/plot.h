/* Terminal charts of tetherd's history for `tetherctl plot`: a series
 * (heap.free, heap.largest, adc.N) over a time range, drawn in plain
 * ASCII at a fixed size with labelled axes, the average as a line, the
 * min..max spread of each column as an envelope, a horizontal threshold
 * line, and blank columns where there is no data.  Rendering is a pure
 * function of its points and options (no clock, no socket), so tests can
 * compare the text it writes with what is expected.  The history points
 * come from the daemon and are untrusted: unusable ones are skipped. */
#ifndef TETHERCTL_PLOT_H
#define TETHERCTL_PLOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define PLOT_WIDTH_MIN      10 /* columns of data */
#define PLOT_WIDTH_MAX      1000
#define PLOT_WIDTH_DEFAULT  60
#define PLOT_HEIGHT_MIN     3 /* rows of data */
#define PLOT_HEIGHT_MAX     200
#define PLOT_HEIGHT_DEFAULT 15
#define PLOT_CHANNEL_MAX    63 /* highest adc.N accepted, as --channel */
/* Longest range drawn: a century, which keeps the column arithmetic
 * within int64_t. */
#define PLOT_SPAN_MAX_US    (100LL * 365 * 86400 * 1000000)
#define PLOT_NAME_MAX       16

enum plot_kind {
    PLOT_HEAP_FREE,    /* free_min, free_avg, free_max of heap history */
    PLOT_HEAP_LARGEST, /* largest_min: the largest free block */
    PLOT_ADC,          /* min, avg, max (or value) of one ADC channel */
};

struct plot_series {
    enum plot_kind kind;
    int channel;              /* PLOT_ADC only */
    char name[PLOT_NAME_MAX]; /* "heap.free", "heap.largest", "adc.3" */
};

/* Reads a series name.  Returns 0, or -1 for anything but heap.free,
 * heap.largest or adc.N with N in 0..PLOT_CHANNEL_MAX. */
int plot_parse_series(const char *name, struct plot_series *s);

/* The "series" parameter of the history call that feeds s: "heap" or
 * "adc".  Static storage. */
const char *plot_history_series(const struct plot_series *s);

/* One bucket (or one raw sample) of the series. */
struct plot_point {
    int64_t t_us;         /* start of the bucket, or the sample's time */
    double min, avg, max; /* finite */
    double weight;        /* samples behind it (count), > 0 */
};

/* Appends to dst (capacity cap) the points of a history result's
 * "points" array that belong to s and carry usable numbers; points of
 * other channels, and points with a missing, mistyped or non-finite
 * figure, are skipped.  Returns how many were appended. */
size_t plot_points_from_history(const struct plot_series *s,
                                const cJSON *points, struct plot_point *dst,
                                size_t cap);

/* The heap_low threshold in bytes from a status result
 * (alerts.heap_low_threshold).  Returns 1 and sets *bytes, or 0 when the
 * daemon does not know or say it. */
int plot_threshold_from_status(const cJSON *status, double *bytes);

struct plot_options {
    struct plot_series series;
    int64_t from_us, to_us; /* the range drawn: from_us < to_us */
    int64_t bucket_us;      /* width of each point, 0: instants (raw) */
    int width, height;      /* columns and rows of data, within bounds */
    int threshold_shown;    /* draw a line at threshold */
    double threshold;
    const char *threshold_name; /* in the legend, e.g. "heap_low threshold" */
};

/* Writes the chart of the n points pts (any order) with options o to
 * out; with no point inside the range, one line saying so.  Returns 0,
 * or -EINVAL when o is out of bounds (nothing is written), or -ENOMEM. */
int plot_render(FILE *out, const struct plot_point *pts, size_t n,
                const struct plot_options *o);

#endif
