/* tetherd's wiring: creation in dependency order, the callbacks that carry
 * data from the link to the rings, the store and the alerts, signals, and
 * teardown in reverse.  See app.h.
 *
 * Shutdown is asynchronous because libuv handles close through callbacks:
 * the query server, the firmware update, the link and the alert command
 * runner are closed first (no more input, no more children), and when
 * their last handle has closed the store is flushed and closed and the
 * loop runs out of handles.  A timer bounds the whole stop at APP_STOP_MS.
 *
 * A firmware update (flash.h) leans on the rest through hooks here: it
 * pauses storing telemetry (rings, alerts and watchers still get it), and
 * while it reboots the MCU or lends the port to OpenOCD the resets and
 * link losses it causes are expected: they are written to the events
 * table as such instead of raising mcu_reset or link_lost alerts.  A
 * link_lost held back that way is raised after all if the link is still
 * down when the update ends. */
#include "app.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include "alert.h"
#include "config.h"
#include "flash.h"
#include "link.h"
#include "log.h"
#include "msg.h"
#include "notify.h"
#include "qsrv.h"
#include "query.h"
#include "ring.h"
#include "sdnotify.h"
#include "store.h"

#define APP_STOP_MS        1500u  /* longest wait for children and handles */
#define APP_STATS_EVERY_MS 60000u /* link counters into the events table */
#define EVENT_TEXT_MAX     STORE_TEXT_MAX
/* Descriptors beyond the query clients: the link, the database and its
 * WAL files, the readers history opens, the listener, an alert command's
 * pipes, the journal and the notify socket. */
#define APP_FDS_RESERVE 64u

struct app {
    uv_loop_t loop;
    struct config cfg;
    int argc;
    char **argv;
    struct store *store;
    struct ring *adc_ring[MSG_ADC_CHANNELS_MAX];
    struct ring *heap_ring;
    /* Newest timestamp pushed per ring: rings need time order, and the
     * time mapping may step back a little when it finds a smaller offset
     * (mcutime.h), so ring records are held at or after the previous. */
    int64_t adc_last_us[MSG_ADC_CHANNELS_MAX];
    int64_t heap_last_us;
    struct alert *alert;
    struct notify *notify;
    struct link *link;
    struct flash *flash;
    struct query *query;
    /* The firmware update's effects (see the top of the file). */
    bool store_paused;
    uint64_t unstored; /* ADC batches and heap reports not stored */
    bool expect_reset;
    bool held_lost; /* a link_lost alert held back while expected */
    struct alert_event held_lost_ev;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t watchdog;
    uv_timer_t stats_timer;
    uv_timer_t stop_timer;
    int closing; /* asynchronous closes still outstanding */
    bool signals_on;
    bool timers_on;
    bool stopping;
    int exit_code;
};

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void put_event(struct app *a, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put_event(struct app *a, const char *kind, const char *fmt, ...)
{
    char text[EVENT_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (store_put_event(a->store, wall_us(), kind, text) != 0)
        log_debug("store queue full: event %s dropped", kind);
}

static void put_link_stats(struct app *a)
{
    struct link_stats s;

    link_get_stats(a->link, &s);
    put_event(a, "stats",
              "frames_ok=%" PRIu64 " crc_errors=%" PRIu64
              " cobs_errors=%" PRIu64 " oversize=%" PRIu64
              " version_errors=%" PRIu64 " discarded=%" PRIu64
              " seq_gaps=%" PRIu64 " bad_payloads=%" PRIu64
              " mcu_tx_dropped=%" PRIu64 " mcu_resets=%" PRIu64,
              s.frames_ok, s.crc_errors, s.cobs_errors, s.oversize,
              s.version_errors, s.discarded, s.seq_gaps, s.bad_payloads,
              s.mcu_tx_dropped, s.mcu_resets);
}

/* ---- Alerts ---- */

static void raise_alert(struct app *a, const struct alert_event *ev)
{
    if (strcmp(ev->state, "cleared") == 0)
        log_info("alert %s cleared: %s", ev->name, ev->message);
    else
        log_warn("alert %s: %s", ev->name, ev->message);
    if (store_put_alert(a->store, ev->t_us, ev->name, ev->state, ev->value,
                        ev->threshold, ev->message) != 0)
        log_warn("store queue full: alert %s not stored", ev->name);
    (void)notify_run(a->notify, ev);
    if (a->query != NULL)
        query_on_alert(a->query, ev);
}

static void on_alert(void *ctx, const struct alert_event *ev)
{
    struct app *a = ctx;
    bool planned = ev->kind == ALERT_MCU_RESET || ev->kind == ALERT_LINK_LOST ||
                   ev->kind == ALERT_LINK_RESTORED;

    if (!a->expect_reset || !planned) {
        raise_alert(a, ev);
        return;
    }
    if (ev->kind == ALERT_LINK_LOST) {
        a->held_lost = true;
        a->held_lost_ev = *ev;
    } else if (ev->kind == ALERT_LINK_RESTORED && a->held_lost) {
        a->held_lost = false;
    } else if (ev->kind == ALERT_LINK_RESTORED) {
        raise_alert(a, ev); /* its link_lost came before the update */
        return;
    }
    log_info("expected during the firmware update: %s %s: %s", ev->name,
             ev->state, ev->message);
    put_event(a, "flash", "expected %s: %s", ev->name, ev->message);
}

static void alert_config_from(const struct config *c, struct alert_config *ac)
{
    ac->heap_low = c->heap_low;
    ac->heap_hysteresis = c->heap_hysteresis;
    ac->hold_off_s = c->hold_off_s;
    ac->hold_off_reports = c->hold_off_reports;
    ac->leak_window_s = c->leak_window_s;
    ac->leak_horizon_s = c->leak_horizon_s;
    ac->leak_min_reports = c->leak_min_reports;
}

/* ---- Link events ---- */

static void on_state(void *ctx, enum link_state st, const char *why)
{
    struct app *a = ctx;

    put_event(a, "link", "%s: %s", link_state_name(st), why);
    alert_link(a->alert, wall_us(), st == LINK_CONNECTED);
    sdnotify_status("link %s (%s)", link_state_name(st), a->cfg.device);
    if (a->query != NULL)
        query_on_link(a->query, st, why);
    if (a->flash != NULL)
        flash_on_link(a->flash, st);
}

static void on_hello(void *ctx, int64_t t_us, const struct msg_hello *h)
{
    struct app *a = ctx;
    char text[EVENT_TEXT_MAX];

    snprintf(text, sizeof(text),
             "board=%u fw=%u.%u.%u build=%08" PRIx32
             " reset_cause=%u adc=%ux%u heap=%" PRIu32 " uptime_ms=%" PRIu32,
             h->board, (unsigned)(h->fw_version >> 16),
             (unsigned)((h->fw_version >> 8) & 0xff),
             (unsigned)(h->fw_version & 0xff), h->build_id, h->reset_cause,
             h->adc_channels, h->adc_bits, h->heap_total, h->uptime_ms);
    log_info("mcu hello: %s", text);
    if (store_put_event(a->store, t_us, "hello", text) != 0)
        log_debug("store queue full: hello event dropped");
    if (a->query != NULL)
        query_on_mcu_event(a->query, "hello", h, 0, NULL);
    if (a->flash != NULL)
        flash_on_hello(a->flash, h);
}

static void on_reset(void *ctx, int64_t t_us, uint8_t cause)
{
    struct app *a = ctx;

    alert_mcu_reset(a->alert, t_us, cause);
    if (a->query != NULL)
        query_on_mcu_event(a->query, "reset", NULL, cause, NULL);
    if (a->flash != NULL)
        flash_on_reset(a->flash, cause);
}

static void on_adc(void *ctx, int64_t t0_us, uint16_t seq,
                   const struct msg_adc *m)
{
    struct app *a = ctx;

    for (unsigned scan = 0; scan < m->scans; scan++) {
        unsigned k = 0;

        for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++) {
            struct adc_record r;

            if (!(m->mask & (1u << ch)))
                continue;
            r.t_us = t0_us + (int64_t)scan * m->period_us;
            if (r.t_us < a->adc_last_us[ch])
                r.t_us = a->adc_last_us[ch];
            a->adc_last_us[ch] = r.t_us;
            r.value = msg_adc_value(m, scan, k++);
            ring_push(a->adc_ring[ch], &r);
        }
    }
    if (a->store_paused)
        a->unstored++;
    else if (store_put_adc(a->store, t0_us, seq, m) != 0)
        log_debug("store queue full: ADC batch seq %u dropped", seq);
    if (a->query != NULL)
        query_on_adc(a->query, t0_us, m);
}

static void on_heap(void *ctx, int64_t t_us, uint16_t seq,
                    const struct msg_heap *h)
{
    struct app *a = ctx;
    struct heap_record r = {t_us, *h};

    if (r.t_us < a->heap_last_us)
        r.t_us = a->heap_last_us;
    a->heap_last_us = r.t_us;
    ring_push(a->heap_ring, &r);
    if (a->store_paused)
        a->unstored++;
    else if (store_put_heap(a->store, t_us, seq, h) != 0)
        log_debug("store queue full: heap report seq %u dropped", seq);
    alert_heap(a->alert, t_us, h);
    if (a->query != NULL)
        query_on_heap(a->query, r.t_us, h);
    if (a->flash != NULL)
        flash_on_heap(a->flash, h);
}

static void on_log(void *ctx, int64_t t_us, const struct msg_log *l)
{
    struct app *a = ctx;
    int prio = l->level <= LOG_PRIO_ERR       ? LOG_PRIO_ERR
               : l->level == LOG_PRIO_WARNING ? LOG_PRIO_WARNING
               : l->level == LOG_PRIO_DEBUG   ? LOG_PRIO_DEBUG
                                              : LOG_PRIO_INFO;
    char text[MSG_LOG_TEXT_MAX + 1];

    memcpy(text, l->text, l->text_len);
    text[l->text_len] = '\0';
    log_msg(prio, "mcu: %s", text);
    if (store_put_event(a->store, t_us, "log", text) != 0)
        log_debug("store queue full: mcu log dropped");
    if (a->query != NULL)
        query_on_mcu_event(a->query, "log", NULL, 0, l);
}

static void on_stats(void *ctx, int64_t t_us, const struct msg_stats *s)
{
    (void)ctx;
    (void)t_us;
    log_debug("mcu stats: tx=%" PRIu32 " dropped=%" PRIu32 " rx_ok=%" PRIu32,
              s->tx_frames, s->tx_dropped, s->rx_frames_ok);
}

static void on_answer(void *ctx, const struct msg_ack *ack)
{
    struct app *a = ctx;

    log_debug("mcu %s for seq %u type 0x%02x", ack->error ? "NACK" : "ACK",
              ack->seq, ack->type);
    if (a->query != NULL)
        query_on_answer(a->query, ack);
    if (a->flash != NULL)
        flash_on_answer(a->flash, ack);
}

static void on_upd_status(void *ctx, const struct msg_upd_status *s)
{
    struct app *a = ctx;

    log_debug("mcu UPD_STATUS for seq %u type 0x%02x: state %u error %u "
              "stored %" PRIu32,
              s->req_seq, s->req_type, s->state, s->error, s->stored);
    if (a->flash != NULL)
        flash_on_status(a->flash, s);
}

/* ---- Firmware update hooks ---- */

static int fl_send(void *ctx, uint8_t type, const uint8_t *payload, size_t len,
                   uint16_t *seq)
{
    struct app *a = ctx;

    return link_send(a->link, type, payload, len, seq);
}

static const struct msg_hello *fl_hello(void *ctx)
{
    struct app *a = ctx;

    return link_hello(a->link);
}

static enum link_state fl_link_state(void *ctx)
{
    struct app *a = ctx;

    return link_state(a->link);
}

static void fl_release(void *ctx, bool released)
{
    struct app *a = ctx;

    if (released)
        link_release(a->link, "lent to OpenOCD for a firmware update");
    else
        link_reacquire(a->link);
}

static void fl_pause(void *ctx, bool paused)
{
    struct app *a = ctx;

    a->store_paused = paused;
    if (paused) {
        a->unstored = 0;
        log_info("storing telemetry paused for the firmware update");
    } else {
        log_info("storing telemetry resumed (%" PRIu64
                 " reports arrived meanwhile, not stored)",
                 a->unstored);
    }
}

static void fl_expect_reset(void *ctx, bool expected)
{
    struct app *a = ctx;

    a->expect_reset = expected;
    if (expected || !a->held_lost)
        return;
    a->held_lost = false;
    if (link_state(a->link) != LINK_CONNECTED)
        raise_alert(a, &a->held_lost_ev);
}

static uint32_t fl_heap_low(void *ctx, uint32_t total)
{
    struct app *a = ctx;

    return alert_heap_low_bytes(a->alert, total);
}

static void fl_progress(void *ctx, const struct flash_progress *p)
{
    struct app *a = ctx;
    char from[16], to[16];

    flash_version_text(from, sizeof(from), p->from_version);
    flash_version_text(to, sizeof(to), p->version);
    if (p->first)
        put_event(a, "flash",
                  "start %u: %s %s -> %s, %" PRIu32 " bytes by %s%s", p->id,
                  p->image, from, to, p->total, p->method,
                  p->confirm ? "" : ", left on test");
    else if (p->done && p->why[0] != '\0')
        put_event(a, "flash", "%s %u: %s", p->outcome, p->id, p->why);
    else if (p->done)
        put_event(a, "flash",
                  "%s %u: %s in %.1f s (upload %.1f s, %" PRIu32
                  " chunks sent again, %" PRIu32 " resumes)",
                  p->outcome, p->id, to, (double)p->elapsed_ms / 1000,
                  (double)p->upload_ms / 1000, p->resends, p->resumes);
    if (a->query != NULL)
        query_on_flash(a->query, p);
}

/* ---- Timers and signals ---- */

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    sdnotify_watchdog();
}

static void on_stats_timer(uv_timer_t *t)
{
    put_link_stats(t->data);
}

static void reload(struct app *a)
{
    char err[CONFIG_ERR_MAX];
    struct config c = a->cfg;
    struct alert_config ac;

    sdnotify_reloading();
    if (config_reload(&c, a->argc, a->argv, err, sizeof(err)) != 0) {
        log_err("reload failed, keeping the old settings: %s", err);
        sdnotify_ready();
        return;
    }
    /* Only what can change at run time is taken over; the device, the
     * database and the ring sizes need a restart.  A new size limit also
     * retries a commit that failed for lack of space at once. */
    if (c.max_size_mb != a->cfg.max_size_mb) {
        a->cfg.max_size_mb = c.max_size_mb;
        store_set_max_bytes(a->store, (uint64_t)c.max_size_mb << 20);
        log_info("database size limit now %" PRIu32 " MiB (0: none)",
                 c.max_size_mb);
    }
    a->cfg.heap_low = c.heap_low;
    a->cfg.heap_hysteresis = c.heap_hysteresis;
    a->cfg.hold_off_s = c.hold_off_s;
    a->cfg.hold_off_reports = c.hold_off_reports;
    a->cfg.leak_window_s = c.leak_window_s;
    a->cfg.leak_horizon_s = c.leak_horizon_s;
    a->cfg.leak_min_reports = c.leak_min_reports;
    memcpy(a->cfg.alert_command, c.alert_command, sizeof(c.alert_command));
    a->cfg.alert_timeout_ms = c.alert_timeout_ms;
    a->cfg.log_level = c.log_level;
    log_set_level(c.log_level);
    alert_config_from(&a->cfg, &ac);
    alert_configure(a->alert, &ac);
    (void)notify_set_command(a->notify, a->cfg.alert_command,
                             a->cfg.alert_timeout_ms);
    log_info("configuration reloaded (log level %s)",
             log_level_name(c.log_level));
    sdnotify_ready();
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

/* The link and the command runner have closed: flush and close the store.
 * The loop then has no active handles left and uv_run() returns. */
static void finish_stop(struct app *a)
{
    if (a->timers_on) {
        uv_timer_stop(&a->stop_timer);
        uv_close((uv_handle_t *)&a->stop_timer, close_cb);
    }
    store_close(a->store);
    a->store = NULL;
    log_info("stopped");
}

static void closed_one(void *arg)
{
    struct app *a = arg;

    if (--a->closing == 0)
        finish_stop(a);
}

static void on_stop_timeout(uv_timer_t *t)
{
    (void)t;
    log_warn("stop is taking longer than %u ms", APP_STOP_MS);
}

/* Starts an orderly stop from whatever start() got to. */
static void stop(struct app *a, const char *why)
{
    if (a->stopping)
        return;
    a->stopping = true;
    log_info("stopping (%s)", why);
    sdnotify_stopping();
    if (a->link != NULL && a->store != NULL)
        put_link_stats(a);
    if (a->signals_on) {
        uv_close((uv_handle_t *)&a->sigterm, close_cb);
        uv_close((uv_handle_t *)&a->sigint, close_cb);
        uv_close((uv_handle_t *)&a->sighup, close_cb);
    }
    if (a->timers_on) {
        uv_close((uv_handle_t *)&a->watchdog, close_cb);
        uv_close((uv_handle_t *)&a->stats_timer, close_cb);
        uv_timer_start(&a->stop_timer, on_stop_timeout, APP_STOP_MS, 0);
    }
    a->closing = 1; /* held until the closes below are under way */
    /* The query server goes first: its pending sends are answered while
     * the link they wait on still exists. */
    if (a->query != NULL) {
        a->closing++;
        query_close(a->query, closed_one, a);
        a->query = NULL;
    }
    /* The update next: it may still send UPD_ABORT on the link. */
    if (a->flash != NULL) {
        a->closing++;
        flash_close(a->flash, closed_one, a);
        a->flash = NULL;
    }
    if (a->link != NULL) {
        a->closing++;
        link_close(a->link, closed_one, a);
        a->link = NULL;
    }
    if (a->notify != NULL) {
        a->closing++;
        notify_close(a->notify, closed_one, a);
        a->notify = NULL;
    }
    closed_one(a);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct app *a = s->data;

    if (signum == SIGHUP)
        reload(a);
    else
        stop(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- Creation and teardown ---- */

static int make_rings(struct app *a)
{
    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++)
        if (ring_new(&a->adc_ring[ch], a->cfg.ring_samples,
                     sizeof(struct adc_record)) != 0)
            return -ENOMEM;
    if (ring_new(&a->heap_ring, a->cfg.ring_heap, sizeof(struct heap_record)) !=
        0)
        return -ENOMEM;
    return 0;
}

static void free_rings(struct app *a)
{
    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++)
        ring_free(a->adc_ring[ch]);
    ring_free(a->heap_ring);
}

static int start_signals(struct app *a)
{
    uv_signal_t *sigs[] = {&a->sigterm, &a->sigint, &a->sighup};
    const int nums[] = {SIGTERM, SIGINT, SIGHUP};

    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(&a->loop, sigs[i]);
        sigs[i]->data = a;
        if (uv_signal_start(sigs[i], on_signal, nums[i]) != 0)
            return -EINVAL;
    }
    a->signals_on = true;
    return 0;
}

static void start_timers(struct app *a)
{
    uint64_t wd = sdnotify_watchdog_usec();

    uv_timer_init(&a->loop, &a->watchdog);
    uv_timer_init(&a->loop, &a->stats_timer);
    uv_timer_init(&a->loop, &a->stop_timer);
    a->stats_timer.data = a;
    a->stop_timer.data = a;
    uv_unref((uv_handle_t *)&a->stop_timer);
    a->timers_on = true;
    if (wd != 0)
        uv_timer_start(&a->watchdog, on_watchdog, wd / 2000, wd / 2000);
    uv_timer_start(&a->stats_timer, on_stats_timer, APP_STATS_EVERY_MS,
                   APP_STATS_EVERY_MS);
}

static int start(struct app *a)
{
    static const struct link_events events = {
        .state = on_state,
        .hello = on_hello,
        .reset = on_reset,
        .adc = on_adc,
        .heap = on_heap,
        .log = on_log,
        .stats = on_stats,
        .answer = on_answer,
        .upd_status = on_upd_status,
    };
    static const struct flash_hooks hooks = {
        .send = fl_send,
        .hello = fl_hello,
        .link_state = fl_link_state,
        .release = fl_release,
        .pause = fl_pause,
        .expect_reset = fl_expect_reset,
        .heap_low = fl_heap_low,
        .progress = fl_progress,
    };
    struct flash_config fc = {
        .method = a->cfg.flash_method == CONFIG_FLASH_OPENOCD
                      ? FLASH_METHOD_OPENOCD
                      : FLASH_METHOD_UART,
        .window = a->cfg.flash_window,
        .timeout_ms = a->cfg.flash_timeout_ms,
        .retries = a->cfg.flash_retries,
        .wait_ms = a->cfg.flash_wait_ms,
        .health_s = a->cfg.flash_health_s,
        .openocd_timeout_ms = a->cfg.openocd_timeout_ms,
        .openocd_address = a->cfg.openocd_address,
        .openocd_command = a->cfg.openocd_command,
        .openocd_config = a->cfg.openocd_config,
        .openocd_erase_addr = a->cfg.openocd_erase.addr,
        .openocd_erase_len = a->cfg.openocd_erase.len,
    };
    struct store_config sc = {
        .path = a->cfg.db,
        .commit_ms = a->cfg.commit_ms,
        .commit_rows = a->cfg.commit_rows,
        .queue_rows = a->cfg.queue_rows,
        .raw_max_age_s = a->cfg.raw_max_age_s,
        .raw_max_rows = a->cfg.raw_max_rows,
        .rollup_1s_age_s = a->cfg.rollup_1s_age_s,
        .rollup_1m_age_s = a->cfg.rollup_1m_age_s,
        .max_bytes = (uint64_t)a->cfg.max_size_mb << 20,
    };
    struct link_config lc = {
        .device = a->cfg.device,
        .baud = a->cfg.baud,
        .rtscts = a->cfg.rtscts,
        .stale_after_ms = a->cfg.stale_after_ms,
    };
    struct qsrv_config qc = {
        .path = a->cfg.socket,
        .group = a->cfg.socket_group,
        .admin_group = a->cfg.admin_group,
        .partial_ms = a->cfg.request_timeout_ms,
    };
    struct query_deps qd;
    struct alert_config ac;
    char err[STORE_ERR_MAX];
    int r;

    r = store_open(&a->store, &sc, err, sizeof(err));
    if (r != 0) {
        log_err("cannot open the database %s: %s", a->cfg.db, err);
        return r;
    }
    if ((r = make_rings(a)) != 0) {
        log_err("cannot allocate the ring buffers");
        return r;
    }
    alert_config_from(&a->cfg, &ac);
    if ((r = alert_new(&a->alert, &ac, on_alert, a)) != 0 ||
        (r = notify_new(&a->notify, &a->loop, a->cfg.alert_command,
                        a->cfg.alert_timeout_ms)) != 0)
        return r;
    start_timers(a);
    if ((r = start_signals(a)) != 0)
        return r;
    if ((r = link_new(&a->link, &a->loop, &lc, &events, a)) != 0 ||
        (r = flash_new(&a->flash, &a->loop, &fc, &hooks, a)) != 0)
        return r;
    qd = (struct query_deps){
        .link = a->link,
        .store = a->store,
        .db_path = a->cfg.db,
        .adc_ring = a->adc_ring,
        .heap_ring = a->heap_ring,
        .alert = a->alert,
        .device = a->cfg.device,
        .flash = a->flash,
    };
    /* Without its socket tetherd still records history and raises
     * alerts, which matter more than answering questions: it goes on. */
    r = query_open(&a->query, &a->loop, &qc, sdnotify_listen_fd(), &qd);
    if (r != 0)
        log_err("cannot open the query socket %s: %s; running without it",
                a->cfg.socket, strerror(-r));
    log_info("tetherd %s: device %s at %u baud, database %s", TETHER_VERSION,
             a->cfg.device, a->cfg.baud, a->cfg.db);
    put_event(a, "start", "tetherd %s device=%s", TETHER_VERSION,
              a->cfg.device);
    sdnotify_status("link connecting (%s)", a->cfg.device);
    sdnotify_ready();
    return 0;
}

/* QSRV_CLIENTS_MAX clients need more descriptors than the soft limit of
 * 1024 that systemd and most shells give; the hard limit is usually far
 * higher, and raising the soft limit up to it needs no privilege. */
static void raise_fd_limit(void)
{
    const rlim_t want = QSRV_CLIENTS_MAX + APP_FDS_RESERVE;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        log_warn("only %lu file descriptors: fewer than %u query clients "
                 "can connect at once",
                 (unsigned long)rl.rlim_cur, QSRV_CLIENTS_MAX);
}

int app_main(int argc, char **argv)
{
    struct config_cli cli = {0};
    char err[CONFIG_ERR_MAX];
    struct app *a;
    int r, code;

    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        fprintf(stderr, "tetherd: out of memory\n");
        return 1;
    }
    a->argc = argc;
    a->argv = argv;
    r = config_load(&a->cfg, &cli, argc, argv, err, sizeof(err));
    if (r == CONFIG_EXIT) {
        free(a);
        return 0;
    }
    if (r != 0) {
        fprintf(stderr, "tetherd: %s\n", err);
        free(a);
        return 2;
    }
    if (cli.check_only) {
        config_print(&a->cfg, stdout);
        free(a);
        return 0;
    }
    log_set_level(a->cfg.log_level);
    /* A query client that hangs up before its answer is written must cost
     * that client an EPIPE, not tetherd its life: a write to its socket
     * raises SIGPIPE otherwise.  systemd ignores SIGPIPE for services by
     * default; other launchers (make run, a shell, a container) do not. */
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    uv_loop_init(&a->loop);

    code = start(a) == 0 ? 0 : 1;
    if (code != 0)
        stop(a, "start-up failed");
    uv_run(&a->loop, UV_RUN_DEFAULT);
    free_rings(a);
    alert_free(a->alert);
    r = uv_loop_close(&a->loop);
    if (r != 0) {
        log_err("event loop still has handles at exit: %s", uv_strerror(r));
        code = 1;
    }
    free(a);
    return code;
}
