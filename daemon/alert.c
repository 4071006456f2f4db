/* Heap and link alerts.  See alert.h.
 *
 * The inputs are heap reports as the MCU sends them (about one a second,
 * but the period is configurable and reports can be lost), link state
 * changes and MCU resets, each with the wall time it was received.  The
 * module has no clock of its own: every decision uses the t_us it is given,
 * so tests drive it with a fake clock.  It performs no I/O and logs
 * nothing; every outcome is an event passed to the callback.
 *
 * heap_low / heap_ok.  The threshold T and the hysteresis H are bytes, or
 * a percentage of the heap total of the report being judged.  A report is
 * "low" when free < T and "recovered" when free >= T + H; between the two
 * neither state changes, which keeps a value hovering around T from
 * flapping.  A change needs its condition in consecutive fresh reports
 * spanning at least hold_off_s seconds and numbering at least
 * hold_off_reports; any report without the condition restarts the count.
 * heap_ok follows only a heap_low.
 *
 * heap_leak / heap_leak_ok.  Fresh reports are kept as (time, free) points,
 * at most ALERT_TREND_MAX and none older than leak_window_s, and a
 * least-squares line is fitted through them after each report.  From the
 * slope b (bytes per second, negative when the heap shrinks), the
 * coefficient of determination r2 and the standard error of the slope se,
 * with F the line's value at the newest point and W = leak_window_s:
 *
 *   judged   at least max(leak_min_reports, 8) points spanning at least
 *            W / 2 seconds; with fewer nothing changes.
 *   leaking  b < 0, r2 >= 0.8, |b| > 3 se and F / -b < leak_horizon_s.
 *   raised   "leaking" in every judged report for W / 2 seconds.
 *   cleared  b >= 0, or F / -b > 2 * leak_horizon_s; or an MCU reset.
 *
 * Each test keeps a different impostor out.  A step (a buffer allocated
 * for good) fits a line with r2 at most 0.75 wherever it falls in the
 * window, while a steady leak fits with r2 near 1.  Noise can still,
 * rarely, line up a window's points by chance; such a line does not
 * survive half the window being replaced by new points, which a real leak
 * does, hence the W / 2 of persistence.  The floor of 8 points is there
 * because fewer, even persistently, cannot be told from noise (simulated
 * with uniform noise of up to a third of free heap: 8 points a window gave
 * no false alarm in 60 days, 3 to 5 gave one every few hours).  The
 * standard-error test states the significance of the slope directly; with
 * 8 points or more, r2 >= 0.8 already implies |b| > 4.9 se, so it only
 * binds if the r2 bound is ever lowered.  F rather than the last report
 * is used for the estimate so that one noisy report does not move it.
 * The factor of two between raising and clearing is the leak's
 * hysteresis.  The threshold time reported alongside is (F - T) / -b.  A
 * window or horizon of 0 turns leak detection off.
 *
 * heap_watermark is raised once per MCU boot, the first time a report's
 * min_free (the MCU's own low watermark) is under T.
 *
 * Stale data.  While the link is not up, reports are ignored, and any
 * pending hold-off starts again from the first fresh report.  The trend is
 * restarted as well, so the fit never joins points across a gap it knows
 * nothing about; a raised heap_leak stays raised until enough fresh points
 * judge it.  A clock that goes backwards restarts the hold-off and the
 * trend in the same way.  An MCU reset restarts the hold-off, the trend
 * and the watermark latch, and clears heap_leak: the reset freed what had
 * leaked.
 *
 * The link is assumed up until alert_link() says otherwise; link_lost is
 * raised on the first "not up" and link_restored follows it on "up". */
#include "alert.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_S          1000000.0
#define LEAK_R2_MIN       0.8 /* fit quality needed to call it a leak */
#define LEAK_SE_FACTOR    3.0 /* slope must be this many standard errors */
#define LEAK_CLEAR_FACTOR 2   /* clear when exhaustion is this many horizons */
#define LEAK_POINTS_MIN   8   /* fewer cannot be told from noise */

struct point {
    int64_t t_us;
    double free;
};

/* A condition waiting out its hold-off. */
struct hold {
    bool pending;
    int64_t since_us;
    uint32_t reports;
};

/* The least-squares line through the trend window. */
struct fit {
    bool judged;  /* enough points over enough time */
    double slope; /* bytes per second */
    double r2;
    double se2; /* squared standard error of the slope */
    double now; /* the line's value at the newest point */
};

struct alert {
    struct alert_config cfg;
    alert_fn fn;
    void *ctx;
    bool link_down;
    bool low;       /* heap_low raised */
    bool leak;      /* heap_leak raised */
    bool lost;      /* link_lost raised */
    bool watermark; /* heap_watermark sent this boot */
    bool have_last;
    int64_t last_us; /* time of the newest fresh report */
    int64_t lost_us; /* when link_lost was raised */
    struct hold hold;
    bool leak_seen;        /* the raise condition holds... */
    int64_t leak_since_us; /* ...since then */
    struct point trend[ALERT_TREND_MAX];
    size_t head; /* index of the oldest point */
    size_t count;
    /* The events that raised what is raised, for alert_active(). */
    struct alert_event low_ev;
    struct alert_event leak_ev;
    struct alert_event lost_ev;
};

static const char *const kind_name[] = {
    [ALERT_HEAP_LOW] = "heap_low",
    [ALERT_HEAP_OK] = "heap_ok",
    [ALERT_HEAP_LEAK] = "heap_leak",
    [ALERT_HEAP_LEAK_OK] = "heap_leak_ok",
    [ALERT_HEAP_WATERMARK] = "heap_watermark",
    [ALERT_MCU_RESET] = "mcu_reset",
    [ALERT_LINK_LOST] = "link_lost",
    [ALERT_LINK_RESTORED] = "link_restored",
};

static const char *const kind_state[] = {
    [ALERT_HEAP_LOW] = "raised",      [ALERT_HEAP_OK] = "cleared",
    [ALERT_HEAP_LEAK] = "raised",     [ALERT_HEAP_LEAK_OK] = "cleared",
    [ALERT_HEAP_WATERMARK] = "event", [ALERT_MCU_RESET] = "event",
    [ALERT_LINK_LOST] = "raised",     [ALERT_LINK_RESTORED] = "cleared",
};

static const char *reset_name(uint8_t cause)
{
    switch (cause) {
    case MSG_RESET_POWER_ON:
        return "power-on";
    case MSG_RESET_PIN:
        return "pin";
    case MSG_RESET_SOFTWARE:
        return "software";
    case MSG_RESET_WATCHDOG:
        return "watchdog";
    case MSG_RESET_BROWN_OUT:
        return "brown-out";
    case MSG_RESET_FAULT:
        return "fault";
    default:
        return "unknown";
    }
}

/* Bytes of an amount for a heap of `total` bytes; a percentage over 100
 * is capped at the total. */
static uint32_t amount_bytes(const struct config_amount *am, uint32_t total)
{
    uint64_t b;

    if (!am->percent)
        return am->value;
    b = (uint64_t)total * am->value / 100;
    return b > total ? total : (uint32_t)b;
}

static double absd(double x)
{
    return x < 0 ? -x : x;
}

/* Writes a duration for people: seconds, then minutes, then hours. */
static void fmt_duration(char *buf, size_t cap, double s)
{
    if (s < 120)
        snprintf(buf, cap, "~%.0f s", s);
    else if (s < 7200)
        snprintf(buf, cap, "~%.0f min", s / 60);
    else
        snprintf(buf, cap, "~%.0f h", s / 3600);
}

static void fmt_rate(char *buf, size_t cap, double bytes_per_s)
{
    if (absd(bytes_per_s) >= 10)
        snprintf(buf, cap, "%.0f B/s", bytes_per_s);
    else
        snprintf(buf, cap, "%.1f B/s", bytes_per_s);
}

static void emit(struct alert *a, struct alert_event *ev, enum alert_kind kind,
                 int64_t t_us, double value, double threshold,
                 double estimate_s, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Fills ev and passes it to the callback. */
static void emit(struct alert *a, struct alert_event *ev, enum alert_kind kind,
                 int64_t t_us, double value, double threshold,
                 double estimate_s, const char *fmt, ...)
{
    va_list ap;

    ev->kind = kind;
    ev->name = kind_name[kind];
    ev->state = kind_state[kind];
    ev->t_us = t_us;
    ev->value = value;
    ev->threshold = threshold;
    ev->estimate_s = estimate_s;
    va_start(ap, fmt);
    vsnprintf(ev->message, sizeof(ev->message), fmt, ap);
    va_end(ap);
    a->fn(a->ctx, ev);
}

static void restart_trend(struct alert *a)
{
    a->head = 0;
    a->count = 0;
    a->leak_seen = false;
}

static void restart_hold(struct alert *a)
{
    a->hold.pending = false;
    a->hold.reports = 0;
}

static const struct point *trend_at(const struct alert *a, size_t i)
{
    return &a->trend[(a->head + i) % ALERT_TREND_MAX];
}

/* Adds the newest point and drops those outside the window or beyond the
 * array's capacity. */
static void trend_add(struct alert *a, int64_t t_us, uint32_t free_bytes)
{
    int64_t oldest = t_us - (int64_t)a->cfg.leak_window_s * 1000000;

    if (a->count == ALERT_TREND_MAX) {
        a->head = (a->head + 1) % ALERT_TREND_MAX;
        a->count--;
    }
    a->trend[(a->head + a->count) % ALERT_TREND_MAX] =
        (struct point){t_us, (double)free_bytes};
    a->count++;
    while (a->count > 0 && trend_at(a, 0)->t_us < oldest) {
        a->head = (a->head + 1) % ALERT_TREND_MAX;
        a->count--;
    }
}

/* Fits free = intercept + slope * t by least squares.  Times are taken
 * relative to the oldest point, and both passes work on deviations from
 * the means, so microsecond epochs and byte counts lose no precision. */
static struct fit trend_fit(const struct alert *a)
{
    struct fit f = {0};
    size_t need = a->cfg.leak_min_reports;
    double n = (double)a->count;
    double tbar = 0, ybar = 0, sxx = 0, sxy = 0, syy = 0, sse;
    double span_s, tlast;
    int64_t t0;

    if (need < LEAK_POINTS_MIN)
        need = LEAK_POINTS_MIN;
    if (a->count < need)
        return f;
    t0 = trend_at(a, 0)->t_us;
    tlast = (double)(trend_at(a, a->count - 1)->t_us - t0) / US_PER_S;
    span_s = tlast;
    if (span_s * 2 < (double)a->cfg.leak_window_s || span_s <= 0)
        return f;
    for (size_t i = 0; i < a->count; i++) {
        const struct point *p = trend_at(a, i);

        tbar += (double)(p->t_us - t0) / US_PER_S;
        ybar += p->free;
    }
    tbar /= n;
    ybar /= n;
    for (size_t i = 0; i < a->count; i++) {
        const struct point *p = trend_at(a, i);
        double dt = (double)(p->t_us - t0) / US_PER_S - tbar;
        double dy = p->free - ybar;

        sxx += dt * dt;
        sxy += dt * dy;
        syy += dy * dy;
    }
    f.judged = true;
    f.slope = sxy / sxx;
    f.r2 = syy > 0 ? sxy * sxy / (sxx * syy) : 0;
    sse = syy - f.slope * sxy;
    if (sse < 0)
        sse = 0;
    f.se2 = sse / (n - 2) / sxx;
    f.now = ybar + f.slope * (tlast - tbar);
    if (f.now < 0)
        f.now = 0;
    return f;
}

/* Seconds until the line reaches `level`, for a falling line. */
static double seconds_to(const struct fit *f, double level)
{
    double d = f->now - level;

    return d <= 0 ? 0 : d / -f->slope;
}

static void judge_leak(struct alert *a, int64_t t_us, const struct msg_heap *h,
                       uint32_t threshold)
{
    uint32_t horizon = a->cfg.leak_horizon_s;
    struct fit f;
    char rate[32], to_empty[32], to_low[32];
    double tte;
    struct alert_event ev;

    if (a->cfg.leak_window_s == 0 || horizon == 0)
        return;
    f = trend_fit(a);
    if (!f.judged) {
        a->leak_seen = false;
        return;
    }
    tte = f.slope < 0 ? seconds_to(&f, 0) : -1;
    if (!a->leak) {
        if (f.slope >= 0 || f.r2 < LEAK_R2_MIN ||
            f.slope * f.slope <= LEAK_SE_FACTOR * LEAK_SE_FACTOR * f.se2 ||
            tte >= horizon) {
            a->leak_seen = false;
            return;
        }
        if (!a->leak_seen) {
            a->leak_seen = true;
            a->leak_since_us = t_us;
        }
        if ((t_us - a->leak_since_us) * 2 <
            (int64_t)a->cfg.leak_window_s * 1000000)
            return;
        a->leak_seen = false;
        a->leak = true;
        fmt_rate(rate, sizeof(rate), -f.slope);
        fmt_duration(to_empty, sizeof(to_empty), tte);
        if (f.now > threshold) {
            fmt_duration(to_low, sizeof(to_low), seconds_to(&f, threshold));
            emit(a, &a->leak_ev, ALERT_HEAP_LEAK, t_us, h->free, threshold, tte,
                 "free heap falling %s (r2 %.2f): exhausted in %s, "
                 "below threshold in %s",
                 rate, f.r2, to_empty, to_low);
        } else {
            emit(a, &a->leak_ev, ALERT_HEAP_LEAK, t_us, h->free, threshold, tte,
                 "free heap falling %s (r2 %.2f): exhausted in %s, "
                 "already below threshold",
                 rate, f.r2, to_empty);
        }
        return;
    }
    if (f.slope >= 0) {
        a->leak = false;
        fmt_rate(rate, sizeof(rate), f.slope);
        emit(a, &ev, ALERT_HEAP_LEAK_OK, t_us, h->free, threshold, -1,
             "free heap no longer falling (%s over the last %" PRIu32 " s)",
             rate, a->cfg.leak_window_s);
    } else if (tte > (double)horizon * LEAK_CLEAR_FACTOR) {
        a->leak = false;
        fmt_rate(rate, sizeof(rate), -f.slope);
        fmt_duration(to_empty, sizeof(to_empty), tte);
        emit(a, &ev, ALERT_HEAP_LEAK_OK, t_us, h->free, threshold, -1,
             "free heap falling only %s: exhausted in %s, beyond %d x the "
             "%" PRIu32 " s horizon",
             rate, to_empty, LEAK_CLEAR_FACTOR, horizon);
    }
}

/* Counts a report towards the pending change; true when its hold-off has
 * been served. */
static bool hold_served(struct alert *a, int64_t t_us)
{
    uint32_t need = a->cfg.hold_off_reports ? a->cfg.hold_off_reports : 1;

    if (!a->hold.pending) {
        a->hold.pending = true;
        a->hold.since_us = t_us;
        a->hold.reports = 0;
    }
    a->hold.reports++;
    return a->hold.reports >= need &&
           t_us - a->hold.since_us >= (int64_t)a->cfg.hold_off_s * 1000000;
}

static void describe_amount(char *buf, size_t cap,
                            const struct config_amount *am)
{
    if (am->percent)
        snprintf(buf, cap, " (%" PRIu32 "%%)", am->value);
    else
        buf[0] = '\0';
}

static void judge_low(struct alert *a, int64_t t_us, const struct msg_heap *h,
                      uint32_t threshold)
{
    uint64_t clear_at =
        (uint64_t)threshold + amount_bytes(&a->cfg.heap_hysteresis, h->total);
    bool change = a->low ? h->free >= clear_at : h->free < threshold;
    double held_s;
    uint32_t reports;
    char pct[16];
    struct alert_event ev;

    if (!change) {
        restart_hold(a);
        return;
    }
    if (!hold_served(a, t_us))
        return;
    held_s = (double)(t_us - a->hold.since_us) / US_PER_S;
    reports = a->hold.reports;
    restart_hold(a);
    describe_amount(pct, sizeof(pct), &a->cfg.heap_low);
    if (!a->low) {
        a->low = true;
        emit(a, &a->low_ev, ALERT_HEAP_LOW, t_us, h->free, threshold, -1,
             "free heap %" PRIu32 " B of %" PRIu32 " B, under the %" PRIu32
             " B threshold%s for %.0f s over %" PRIu32 " reports",
             h->free, h->total, threshold, pct, held_s, reports);
    } else {
        a->low = false;
        emit(a, &ev, ALERT_HEAP_OK, t_us, h->free, threshold, -1,
             "free heap %" PRIu32 " B of %" PRIu32 " B, back above %" PRIu64
             " B (threshold %" PRIu32 " B%s + hysteresis) for %.0f s over "
             "%" PRIu32 " reports",
             h->free, h->total, clear_at, threshold, pct, held_s, reports);
    }
}

static void judge_watermark(struct alert *a, int64_t t_us,
                            const struct msg_heap *h, uint32_t threshold)
{
    struct alert_event ev;

    if (a->watermark || h->min_free >= threshold)
        return;
    a->watermark = true;
    emit(a, &ev, ALERT_HEAP_WATERMARK, t_us, h->min_free, threshold, -1,
         "MCU low watermark %" PRIu32 " B of %" PRIu32 " B is under the "
         "%" PRIu32 " B threshold (lowest free heap since boot)",
         h->min_free, h->total, threshold);
}

int alert_new(struct alert **out, const struct alert_config *cfg, alert_fn fn,
              void *ctx)
{
    struct alert *a;

    assert(out != NULL && cfg != NULL && fn != NULL);
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    a->cfg = *cfg;
    a->fn = fn;
    a->ctx = ctx;
    *out = a;
    return 0;
}

void alert_free(struct alert *a)
{
    free(a);
}

void alert_configure(struct alert *a, const struct alert_config *cfg)
{
    /* A hold-off counted against the old thresholds proves nothing about
     * the new ones.  The trend's points stay: they are facts, and the
     * next report trims them to the new window. */
    a->cfg = *cfg;
    restart_hold(a);
}

void alert_heap(struct alert *a, int64_t t_us, const struct msg_heap *h)
{
    uint32_t threshold;

    if (a->link_down)
        return;
    if (a->have_last && t_us < a->last_us) {
        restart_hold(a);
        restart_trend(a);
    }
    a->have_last = true;
    a->last_us = t_us;
    threshold = amount_bytes(&a->cfg.heap_low, h->total);
    judge_watermark(a, t_us, h, threshold);
    judge_low(a, t_us, h, threshold);
    trend_add(a, t_us, h->free);
    judge_leak(a, t_us, h, threshold);
}

void alert_mcu_reset(struct alert *a, int64_t t_us, uint8_t cause)
{
    struct alert_event ev;

    emit(a, &ev, ALERT_MCU_RESET, t_us, cause, 0, -1, "MCU reset (%s)",
         reset_name(cause));
    restart_hold(a);
    restart_trend(a);
    a->watermark = false;
    if (a->leak) {
        /* Free heap is unknown until the new boot's first report. */
        a->leak = false;
        emit(a, &ev, ALERT_HEAP_LEAK_OK, t_us, 0, 0, -1,
             "the MCU reset (%s) freed the leaked heap", reset_name(cause));
    }
}

void alert_link(struct alert *a, int64_t t_us, bool up)
{
    struct alert_event ev;

    if (!up) {
        if (!a->link_down) {
            a->link_down = true;
            restart_hold(a);
            restart_trend(a);
        }
        if (!a->lost) {
            a->lost = true;
            a->lost_us = t_us;
            emit(a, &a->lost_ev, ALERT_LINK_LOST, t_us, 0, 0, -1,
                 "no fresh data from the MCU: link disconnected or stale");
        }
        return;
    }
    a->link_down = false;
    if (a->lost) {
        a->lost = false;
        emit(a, &ev, ALERT_LINK_RESTORED, t_us, 0, 0, -1,
             "link to the MCU restored after %.0f s",
             (double)(t_us - a->lost_us) / US_PER_S);
    }
}

uint32_t alert_heap_low_bytes(const struct alert *a, uint32_t total)
{
    return amount_bytes(&a->cfg.heap_low, total);
}

size_t alert_active(const struct alert *a, struct alert_event *out, size_t n)
{
    const struct alert_event *raised[3];
    size_t k = 0, m = 0;

    if (a->low)
        raised[k++] = &a->low_ev;
    if (a->leak)
        raised[k++] = &a->leak_ev;
    if (a->lost)
        raised[k++] = &a->lost_ev;
    for (; m < k && m < n; m++)
        out[m] = *raised[m];
    return m;
}
