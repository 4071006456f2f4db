/* Heap and link alerts: a state machine fed with fresh data and a clock,
 * with no I/O of its own (the caller logs, stores and runs the command).
 *
 *   heap_low / heap_ok        free heap under the threshold (bytes or % of
 *                             total) for hold_off_s and hold_off_reports;
 *                             clears only above threshold + hysteresis,
 *                             with the same hold-off.
 *   heap_leak / heap_leak_ok  a least-squares line through free heap over
 *                             leak_window_s predicts exhaustion within
 *                             leak_horizon_s; see alert.c for the tests
 *                             that keep noise from raising it.
 *   heap_watermark            one-shot: the MCU's own low watermark fell
 *                             under the threshold, even if no report saw
 *                             free heap that low.  Once per MCU boot.
 *   mcu_reset                 one-shot, with the reset cause.
 *   link_lost / link_restored the link went disconnected or stale, and
 *                             came back.
 *
 * Stale data never raises or clears an alert: while the link is not
 * connected, heap reports are ignored and pending hold-offs restart.
 * Loop thread only. */
#ifndef TETHER_ALERT_H
#define TETHER_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "msg.h"

#define ALERT_MSG_MAX   192
#define ALERT_TREND_MAX 512 /* points kept for the leak trend */

enum alert_kind {
    ALERT_HEAP_LOW,
    ALERT_HEAP_OK,
    ALERT_HEAP_LEAK,
    ALERT_HEAP_LEAK_OK,
    ALERT_HEAP_WATERMARK,
    ALERT_MCU_RESET,
    ALERT_LINK_LOST,
    ALERT_LINK_RESTORED,
};

struct alert_event {
    enum alert_kind kind;
    const char *name;  /* "heap_low", ...: static */
    const char *state; /* "raised", "cleared" or "event": static */
    int64_t t_us;      /* wall clock */
    double value;      /* free bytes, or the reset cause */
    double threshold;  /* bytes, 0 if none */
    double estimate_s; /* heap_leak: seconds to exhaustion, else -1 */
    char message[ALERT_MSG_MAX];
};

struct alert_config {
    struct config_amount heap_low;
    struct config_amount heap_hysteresis;
    uint32_t hold_off_s;
    uint32_t hold_off_reports;
    uint32_t leak_window_s;
    uint32_t leak_horizon_s;
    uint32_t leak_min_reports;
};

/* Called for every event; ev is borrowed for the call. */
typedef void (*alert_fn)(void *ctx, const struct alert_event *ev);

struct alert;

/* Caller owns the result; free with alert_free().  Returns 0 or
 * -ENOMEM. */
int alert_new(struct alert **out, const struct alert_config *cfg, alert_fn fn,
              void *ctx);
void alert_free(struct alert *a); /* NULL is a no-op */

/* New thresholds (SIGHUP); the current state is kept and re-evaluated at
 * the next report. */
void alert_configure(struct alert *a, const struct alert_config *cfg);

/* A fresh heap report, received at wall time t_us. */
void alert_heap(struct alert *a, int64_t t_us, const struct msg_heap *h);
/* The MCU restarted. */
void alert_mcu_reset(struct alert *a, int64_t t_us, uint8_t cause);
/* The link's state changed: up is true only for "connected". */
void alert_link(struct alert *a, int64_t t_us, bool up);

/* The heap_low threshold in bytes for a heap of total bytes, as the
 * current configuration sets it (a percentage is of total). */
uint32_t alert_heap_low_bytes(const struct alert *a, uint32_t total);

/* Copies up to n currently raised alerts (heap_low, heap_leak, link_lost)
 * into out; returns the count. */
size_t alert_active(const struct alert *a, struct alert_event *out, size_t n);

#endif
