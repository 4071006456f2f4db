/* The link to the MCU.  See link.h.
 *
 * The device comes and goes: a USB adapter is unplugged, the MCU is
 * reflashed, tether-sim is restarted with its --link symlink pointing at a
 * new pty.  While there is no device the link retries opening it on a
 * timer that backs off from LINK_RETRY_MIN_MS to LINK_RETRY_MAX_MS; once
 * it is open the descriptor is watched with uv_poll.  Wake-ups may be
 * spurious and reads may return nothing (EAGAIN); a read error or hangup
 * (a pty whose other side closed reads EIO) closes the device and starts
 * the retries again.  The poll is always stopped before its descriptor is
 * closed, and since a uv_poll_t cannot be reused before its close
 * callback, a reopen waits until that callback has run.
 *
 * Bytes go one at a time through the frame receiver (proto/frame.h), which
 * drops and counts damaged frames.  A good frame is judged in order:
 *
 *   - its sequence number against the previous one: the numbers missing
 *     between them are counted in seq_gaps, except when seq goes back to
 *     a low number (below LINK_SEQ_BOOT_MAX, from a distance of at least
 *     LINK_SEQ_RESTART_GAP), which is an MCU restart and counts nothing;
 *   - its payload: a payload that does not decode is counted in
 *     bad_payloads and logged at debug level, and nothing else is done;
 *   - its MCU timestamp, an observation for the MCU clock (mcutime.h),
 *     with the wall-clock time the batch of bytes holding it was read.
 *
 * Resets.  The firmware sends HELLO (seq 0, uptime near 0) as its first
 * frame after any reset.  A reset is reported, once, when
 *
 *   - seq went back (above) and the frame is that HELLO; if it is another
 *     frame (the HELLO was lost), the link asks with GET_HELLO and reports
 *     the reset when the answer gives its cause, or with cause "unknown"
 *     if none comes within LINK_HELLO_WAIT_MS;
 *   - a HELLO is a boot HELLO (seq 0, uptime under LINK_BOOT_UPTIME_MS),
 *     which also catches a reset while the device was closed;
 *   - a HELLO's uptime went backwards from the previous HELLO's, or is
 *     shorter by LINK_UPTIME_SLACK_MS than the time since that HELLO came.
 *
 * The first frames ever seen only introduce the MCU: there is no earlier
 * boot to compare with, so they report nothing.  On a reset the MCU clock
 * mapping starts again, and so do the MCU's own counters (STATS
 * tx_dropped), which are summed here as deltas.
 *
 * Wall time is CLOCK_REALTIME.  When it steps (NTP at boot, an operator)
 * the MCU mapping would lag or lead by the step, so a step larger than
 * LINK_CLOCK_SLEW_US plus 1000 ppm of the time between reads, measured
 * against CLOCK_MONOTONIC, starts the mapping again.
 *
 * Commands are framed with the link's own sequence counter and written at
 * once; what the device does not take is kept in a LINK_TXQ_MAX-byte
 * queue and written when the descriptor is writable.  A command that does
 * not fit is refused with -ENOBUFS rather than dropped half-sent.
 *
 * The owner may lend the device to another program (OpenOCD, which
 * rewrites and resets the MCU): link_release() closes it and stops the
 * retries, so nothing reads the line while the MCU is being reprogrammed,
 * and link_reacquire() starts them again at the shortest interval. */
#include "link.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mcutime.h"
#include "serial.h"

#define LINK_TXQ_MAX         4096u    /* bytes of commands not yet written */
#define LINK_SEQ_BOOT_MAX    64u      /* a restarted MCU's first seq numbers */
#define LINK_SEQ_RESTART_GAP 1024u    /* a jump back to them from this far */
#define LINK_SEQ_BACKWARDS   32768u   /* a larger "gap" is seq going back */
#define LINK_BOOT_UPTIME_MS  5000u    /* a boot HELLO is sent before this */
#define LINK_UPTIME_SLACK_MS 2000u    /* late HELLOs are not resets */
#define LINK_ADC_SPAN_MAX_US 1000000u /* trusted span of one ADC batch */
#define LINK_CLOCK_SLEW_US   10000    /* wall clock moves this much: a step */
#define LINK_VERSION_LOG_MS  10000u   /* version errors: one line per this */
#define LINK_WHY_MAX         128u     /* state change reasons */

enum poll_state {
    POLL_IDLE,    /* no device: the handle may be initialised */
    POLL_ACTIVE,  /* watching the open device */
    POLL_CLOSING, /* uv_close() called, its callback not yet run */
};

/* A reset seen by seq waits for its cause from a HELLO. */
enum reset_wait {
    RESET_NONE,
    RESET_AWAIT_CAUSE, /* seen; reported when the HELLO comes */
    RESET_AWAIT_HELLO, /* reported with cause unknown; next HELLO is
                          this boot's */
};

struct link {
    uv_loop_t *loop;
    struct link_config cfg;
    struct link_events ev;
    void *ctx;

    /* The device and its handles. */
    struct serial *ser; /* NULL while no device is open */
    uv_poll_t poll;
    enum poll_state poll_state;
    int poll_events; /* what the poll was last started with */
    uv_timer_t retry;
    uv_timer_t stale;
    uv_timer_t hello_wait;
    uint32_t retry_ms;
    bool released; /* lent to another program: no reopening */
    bool open_failure_logged;
    bool ever_opened;

    enum link_state state;
    uint64_t last_frame_ms; /* uv_now() of the newest good frame */

    /* Receiving. */
    struct frame_rx rx;
    struct frame_stats rx_folded; /* rx.stats already in stats */
    uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    uint8_t inbuf[LINK_READ_MAX];

    /* Sending. */
    uint8_t txq[LINK_TXQ_MAX];
    size_t txq_len;
    uint16_t tx_seq;
    bool own_pending; /* the link's own GET_HELLO awaits its answer */
    uint16_t own_seq;

    /* Time. */
    struct mcutime clock;
    bool clock_base_set;
    int64_t clock_base_us;   /* CLOCK_REALTIME - CLOCK_MONOTONIC */
    int64_t clock_base_mono; /* CLOCK_MONOTONIC when it was taken */

    /* Sequence numbers on this connection. */
    bool have_seq;
    uint16_t last_seq;

    /* The MCU's boots, across connections. */
    bool seen_mcu; /* a good frame came at some time */
    bool have_hello;
    struct msg_hello hello; /* the newest HELLO */
    uint64_t hello_ms;      /* uv_now() when it came */
    bool boot_hello;        /* a HELLO of this boot came on this connection */
    bool get_hello_sent;    /* this connection's GET_HELLO */
    enum reset_wait reset_wait;
    bool have_mcu_stats;
    uint32_t mcu_tx_dropped; /* the MCU's last reported count */

    /* Version errors are loud but rate limited. */
    uint64_t version_logged_ms;
    bool version_logged;
    uint64_t version_unlogged;

    struct link_stats stats;

    /* Closing. */
    bool closing;
    unsigned closes_pending;
    void (*done)(void *arg);
    void *done_arg;
};

static void on_poll(uv_poll_t *h, int status, int events);
static void on_stale(uv_timer_t *t);
static void on_retry(uv_timer_t *t);
static void on_hello_wait(uv_timer_t *t);

const char *link_state_name(enum link_state st)
{
    switch (st) {
    case LINK_CONNECTED:
        return "connected";
    case LINK_STALE:
        return "stale";
    default:
        return "disconnected";
    }
}

static int64_t timespec_us(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000 + ts->tv_nsec / 1000;
}

/* Wall-clock microseconds now; starts the MCU mapping again when the wall
 * clock has stepped since the previous call. */
static int64_t wall_now(struct link *l)
{
    struct timespec rt, mt;
    int64_t real, mono, base, step, allowed;

    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mt);
    real = timespec_us(&rt);
    mono = timespec_us(&mt);
    base = real - mono;
    if (l->clock_base_set) {
        step = base - l->clock_base_us;
        allowed = LINK_CLOCK_SLEW_US + (mono - l->clock_base_mono) / 1000;
        if (step > allowed || step < -allowed) {
            log_info("wall clock stepped by %+" PRId64
                     " ms: MCU time mapping restarted",
                     step / 1000);
            mcutime_reset(&l->clock);
        }
    }
    l->clock_base_set = true;
    l->clock_base_us = base;
    l->clock_base_mono = mono;
    return real;
}

/* Adds what the frame receiver counted since the last call. */
static void fold_rx_stats(struct link *l)
{
    const struct frame_stats *n = &l->rx.stats;
    struct frame_stats *o = &l->rx_folded;

    l->stats.frames_ok += (uint32_t)(n->frames_ok - o->frames_ok);
    l->stats.crc_errors += (uint32_t)(n->crc_errors - o->crc_errors);
    l->stats.cobs_errors += (uint32_t)(n->cobs_errors - o->cobs_errors);
    l->stats.oversize += (uint32_t)(n->oversize - o->oversize);
    l->stats.version_errors +=
        (uint32_t)(n->version_errors - o->version_errors);
    l->stats.discarded += (uint32_t)(n->discarded - o->discarded);
    *o = *n;
}

/* ---- Handles ---- */

static void on_closed(uv_handle_t *h)
{
    struct link *l = h->data;
    void (*done)(void *arg);
    void *arg;

    if (h == (uv_handle_t *)&l->poll)
        l->poll_state = POLL_IDLE;
    if (!l->closing || --l->closes_pending > 0)
        return;
    done = l->done;
    arg = l->done_arg;
    free(l);
    if (done != NULL)
        done(arg);
}

/* Stops watching and closes the device; the poll handle may be used again
 * once its close callback has run. */
static void close_device(struct link *l)
{
    if (l->ser == NULL)
        return;
    uv_poll_stop(&l->poll);
    serial_close(l->ser);
    l->ser = NULL;
    l->poll_state = POLL_CLOSING;
    uv_close((uv_handle_t *)&l->poll, on_closed);
    l->txq_len = 0;
    uv_timer_stop(&l->hello_wait);
}

/* Watches for writability only while commands wait in the queue. */
static void watch(struct link *l)
{
    int events = UV_READABLE | (l->txq_len > 0 ? UV_WRITABLE : 0);

    if (l->poll_state != POLL_ACTIVE || events == l->poll_events)
        return;
    l->poll_events = events;
    uv_poll_start(&l->poll, events, on_poll);
}

/* Arms the next attempt and backs off for the one after it. */
static void schedule_retry(struct link *l)
{
    if (l->released)
        return;
    uv_timer_start(&l->retry, on_retry, l->retry_ms, 0);
    l->retry_ms = l->retry_ms * 2u < LINK_RETRY_MAX_MS ? l->retry_ms * 2u
                                                       : LINK_RETRY_MAX_MS;
}

/* ---- State ---- */

/* Changes state and tells the owner.  The callback comes last: it may
 * close the link. */
static void set_state(struct link *l, enum link_state st, const char *why)
{
    uint64_t every = l->cfg.stale_after_ms / 4u;

    if (l->state == st)
        return;
    l->state = st;
    if (every == 0)
        every = 1;
    if (st == LINK_CONNECTED)
        uv_timer_start(&l->stale, on_stale, every, every);
    else
        uv_timer_stop(&l->stale);
    log_info("link %s: %s", link_state_name(st), why);
    if (l->ev.state != NULL)
        l->ev.state(l->ctx, st, why);
}

/* The device is gone or unreadable: close it, say so, retry soon. */
static void drop_device(struct link *l, const char *what, int err)
{
    char why[LINK_WHY_MAX];

    snprintf(why, sizeof(why), "%s: %s: %s", l->cfg.device, what,
             strerror(err));
    close_device(l);
    fold_rx_stats(l);
    l->retry_ms = LINK_RETRY_MIN_MS;
    schedule_retry(l);
    if (l->state == LINK_DISCONNECTED)
        log_info("closed %s", why);
    set_state(l, LINK_DISCONNECTED, why);
}

static void on_stale(uv_timer_t *t)
{
    struct link *l = t->data;
    char why[LINK_WHY_MAX];

    if (l->state != LINK_CONNECTED ||
        uv_now(l->loop) - l->last_frame_ms < l->cfg.stale_after_ms)
        return;
    snprintf(why, sizeof(why), "no valid frame for %" PRIu32 " ms",
             l->cfg.stale_after_ms);
    set_state(l, LINK_STALE, why);
}

/* ---- Opening ---- */

static void try_open(struct link *l)
{
    struct serial *s;
    int r;

    if (l->released)
        return;
    if (l->poll_state != POLL_IDLE) {
        schedule_retry(l); /* the old poll handle is still closing */
        return;
    }
    r = serial_open(&s, l->cfg.device, l->cfg.baud, l->cfg.rtscts);
    if (r == 0) {
        r = uv_poll_init(l->loop, &l->poll, serial_fd(s));
        if (r != 0) {
            serial_close(s);
            r = -EIO;
        }
    }
    if (r != 0) {
        if (!l->open_failure_logged)
            log_warn("cannot open %s: %s (retrying)", l->cfg.device,
                     strerror(-r));
        else
            log_debug("cannot open %s: %s", l->cfg.device, strerror(-r));
        l->open_failure_logged = true;
        schedule_retry(l);
        return;
    }

    l->ser = s;
    l->poll.data = l;
    l->poll_state = POLL_ACTIVE;
    l->poll_events = 0;
    watch(l);
    log_debug("opened %s (%s)", l->cfg.device,
              serial_is_pty(s) ? "pseudo-terminal" : "serial port");
    if (l->ever_opened)
        l->stats.reconnects++;
    l->ever_opened = true;
    l->open_failure_logged = false;
    l->retry_ms = LINK_RETRY_MIN_MS;

    /* A new connection: a frame half received belongs to the old one,
     * seq numbers do not continue across the gap, and whatever happened
     * to the MCU clock meanwhile is unknown. */
    fold_rx_stats(l);
    frame_rx_init(&l->rx, l->rxbuf, sizeof(l->rxbuf));
    l->rx_folded = l->rx.stats;
    l->have_seq = false;
    l->boot_hello = false;
    l->get_hello_sent = false;
    mcutime_reset(&l->clock);
    uv_timer_start(&l->hello_wait, on_hello_wait, LINK_HELLO_WAIT_MS, 0);
}

static void on_retry(uv_timer_t *t)
{
    try_open(t->data);
}

/* ---- Sending ---- */

/* Writes queued bytes; returns 0 or a negative errno. */
static int flush_tx(struct link *l)
{
    while (l->txq_len > 0) {
        ssize_t n = serial_write(l->ser, l->txq, l->txq_len);

        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        memmove(l->txq, l->txq + n, l->txq_len - (size_t)n);
        l->txq_len -= (size_t)n;
    }
    watch(l);
    return 0;
}

int link_send(struct link *l, uint8_t type, const uint8_t *payload, size_t len,
              uint16_t *seq)
{
    uint8_t wire[FRAME_WIRE_MAX];
    ssize_t sent = 0;
    int n;

    assert(payload != NULL || len == 0);
    if (len > FRAME_PAYLOAD_MAX)
        return -EMSGSIZE;
    if (l->ser == NULL || l->closing)
        return LINK_ENOTCONN;
    n = frame_encode(wire, sizeof(wire), type, l->tx_seq, payload, len);
    assert(n > 0);
    if (l->txq_len + (size_t)n > sizeof(l->txq))
        return -ENOBUFS;
    /* Behind queued bytes, a frame must wait its turn. */
    if (l->txq_len == 0) {
        sent = serial_write(l->ser, wire, (size_t)n);
        if (sent < 0)
            return (int)sent;
    }
    memcpy(l->txq + l->txq_len, wire + sent, (size_t)(n - sent));
    l->txq_len += (size_t)(n - sent);
    watch(l);
    if (seq != NULL)
        *seq = l->tx_seq;
    l->tx_seq++;
    return 0;
}

/* Asks for a HELLO.  The answer to this command is the link's own
 * business, not passed on to the owner. */
static void send_get_hello(struct link *l)
{
    uint16_t seq;
    int r = link_send(l, MSG_GET_HELLO, NULL, 0, &seq);

    l->get_hello_sent = true;
    if (r != 0) {
        log_debug("GET_HELLO not sent: %s", strerror(-r));
        return;
    }
    l->own_pending = true;
    l->own_seq = seq;
}

/* ---- Resets ---- */

static const char *reset_name(uint8_t cause)
{
    static const char *const names[] = {
        [MSG_RESET_UNKNOWN] = "unknown",   [MSG_RESET_POWER_ON] = "power-on",
        [MSG_RESET_PIN] = "reset pin",     [MSG_RESET_SOFTWARE] = "software",
        [MSG_RESET_WATCHDOG] = "watchdog", [MSG_RESET_BROWN_OUT] = "brown-out",
        [MSG_RESET_FAULT] = "fault",
    };

    return cause < sizeof(names) / sizeof(names[0]) ? names[cause] : "other";
}

static void report_reset(struct link *l, int64_t t_us, uint8_t cause)
{
    l->stats.mcu_resets++;
    log_info("mcu reset: %s (cause %u)", reset_name(cause), cause);
    if (l->ev.reset != NULL)
        l->ev.reset(l->ctx, t_us, cause);
}

/* The MCU restarted: its clock and its counters begin again.  Called
 * when the restart is seen, which may be before it is reported. */
static void restart_boot(struct link *l)
{
    mcutime_reset(&l->clock);
    l->have_mcu_stats = false;
}

/* A reset seen by seq before its HELLO: ask for the HELLO, and give it
 * LINK_HELLO_WAIT_MS to come. */
static void await_reset_cause(struct link *l)
{
    l->reset_wait = RESET_AWAIT_CAUSE;
    l->boot_hello = false;
    send_get_hello(l);
    uv_timer_start(&l->hello_wait, on_hello_wait, LINK_HELLO_WAIT_MS, 0);
}

static void on_hello_wait(uv_timer_t *t)
{
    struct link *l = t->data;

    if (l->ser == NULL)
        return;
    if (!l->boot_hello && !l->get_hello_sent) {
        send_get_hello(l);
        if (l->reset_wait == RESET_AWAIT_CAUSE)
            uv_timer_start(&l->hello_wait, on_hello_wait, LINK_HELLO_WAIT_MS,
                           0);
        return;
    }
    if (l->reset_wait == RESET_AWAIT_CAUSE) {
        l->reset_wait = RESET_AWAIT_HELLO;
        report_reset(l, wall_now(l), MSG_RESET_UNKNOWN);
    }
}

/* Whether a HELLO, not explained by seq, shows that the MCU restarted
 * since the previous HELLO. */
static bool hello_shows_reset(const struct link *l, uint16_t seq,
                              const struct msg_hello *h)
{
    uint64_t elapsed;

    if (seq == 0 && h->uptime_ms < LINK_BOOT_UPTIME_MS)
        return true;
    if (!l->have_hello)
        return false;
    if ((int32_t)(h->uptime_ms - l->hello.uptime_ms) < 0)
        return true;
    elapsed = uv_now(l->loop) - l->hello_ms;
    return (uint64_t)h->uptime_ms + LINK_UPTIME_SLACK_MS < elapsed;
}

/* ---- Receiving ---- */

static void bad_payload(struct link *l, const struct frame *f, int err)
{
    const char *name = msg_type_name(f->type);

    l->stats.bad_payloads++;
    log_debug("bad %s payload (seq %u, %zu bytes): %s",
              name != NULL ? name : "?", f->seq, f->len,
              err == MSG_ELEN ? "wrong length" : "field out of range");
}

static void note_version_error(struct link *l, uint8_t version)
{
    uint64_t now = uv_now(l->loop);

    if (l->version_logged && now - l->version_logged_ms < LINK_VERSION_LOG_MS) {
        l->version_unlogged++;
        return;
    }
    if (l->version_unlogged > 0)
        log_err("frame of protocol version %u: this tetherd speaks version "
                "%u (and %" PRIu64 " more such frames since the last "
                "report)",
                version, FRAME_VERSION, l->version_unlogged);
    else
        log_err("frame of protocol version %u: this tetherd speaks version "
                "%u",
                version, FRAME_VERSION);
    l->version_logged = true;
    l->version_logged_ms = now;
    l->version_unlogged = 0;
}

/* Counts missing seq numbers; returns true when seq went back to the
 * start, an MCU restart. */
static bool track_seq(struct link *l, uint16_t seq)
{
    bool restarted = false;

    if (l->have_seq) {
        uint16_t gap = (uint16_t)(seq - l->last_seq - 1u);

        if (seq < LINK_SEQ_BOOT_MAX && gap >= LINK_SEQ_RESTART_GAP)
            restarted = true;
        else if (gap < LINK_SEQ_BACKWARDS)
            l->stats.seq_gaps += gap;
        else
            log_debug("seq went back from %u to %u", l->last_seq, seq);
    }
    l->have_seq = true;
    l->last_seq = seq;
    return restarted;
}

static void on_hello_frame(struct link *l, const struct frame *f, int64_t wall,
                           bool restarted, bool seen_before)
{
    struct msg_hello h;
    bool reset;
    int64_t t;
    int r;

    r = msg_decode_hello(f->payload, f->len, &h);
    if (r != 0) {
        bad_payload(l, f, r);
        return;
    }
    if (l->reset_wait == RESET_AWAIT_CAUSE || restarted) {
        reset = true; /* restart_boot() ran when seq went back */
    } else if (l->reset_wait == RESET_AWAIT_HELLO || !seen_before) {
        reset = false;
    } else {
        reset = hello_shows_reset(l, f->seq, &h);
        if (reset)
            restart_boot(l);
    }
    mcutime_observe(&l->clock, h.time_us, wall);
    t = mcutime_to_wall(&l->clock, h.time_us);
    l->reset_wait = RESET_NONE;
    l->have_hello = true;
    l->hello = h;
    l->hello_ms = uv_now(l->loop);
    l->boot_hello = true;
    uv_timer_stop(&l->hello_wait);
    if (reset) {
        report_reset(l, t, h.reset_cause);
        if (l->closing)
            return;
    }
    if (l->ev.hello != NULL)
        l->ev.hello(l->ctx, t, &h);
}

static void on_adc_frame(struct link *l, const struct frame *f, int64_t wall)
{
    struct msg_adc a;
    uint32_t span;
    int r;

    r = msg_decode_adc(f->payload, f->len, &a);
    if (r != 0) {
        bad_payload(l, f, r);
        return;
    }
    /* The batch was sent after its last scan, a tighter bound on the
     * clock than its first; a span beyond any real batch is not trusted
     * with the clock. */
    span = (uint32_t)(a.scans - 1u) * a.period_us;
    if (a.period_us <= LINK_ADC_SPAN_MAX_US && span <= LINK_ADC_SPAN_MAX_US)
        mcutime_observe(&l->clock, a.t0_us + span, wall);
    else
        mcutime_observe(&l->clock, a.t0_us, wall);
    if (l->ev.adc != NULL)
        l->ev.adc(l->ctx, mcutime_to_wall(&l->clock, a.t0_us), f->seq, &a);
}

static void on_stats_frame(struct link *l, const struct frame *f, int64_t wall)
{
    struct msg_stats s;
    int r;

    r = msg_decode_stats(f->payload, f->len, &s);
    if (r != 0) {
        bad_payload(l, f, r);
        return;
    }
    /* The MCU's count is cumulative since its reset: add what is new.  A
     * count lower than the last one means the MCU restarted unseen. */
    if (!l->have_mcu_stats || s.tx_dropped < l->mcu_tx_dropped)
        l->stats.mcu_tx_dropped += s.tx_dropped;
    else
        l->stats.mcu_tx_dropped += s.tx_dropped - l->mcu_tx_dropped;
    l->have_mcu_stats = true;
    l->mcu_tx_dropped = s.tx_dropped;
    mcutime_observe(&l->clock, s.t_us, wall);
    if (l->ev.stats != NULL)
        l->ev.stats(l->ctx, mcutime_to_wall(&l->clock, s.t_us), &s);
}

/* The messages with nothing to judge beyond their payload. */
static void on_other_frame(struct link *l, const struct frame *f, int64_t wall)
{
    struct msg_heap heap;
    struct msg_log lg;
    struct msg_pong pong;
    struct msg_ack ack;
    struct msg_upd_status us;
    int r;

    switch (f->type) {
    case MSG_HEAP:
        r = msg_decode_heap(f->payload, f->len, &heap);
        if (r != 0)
            break;
        mcutime_observe(&l->clock, heap.t_us, wall);
        if (l->ev.heap != NULL)
            l->ev.heap(l->ctx, mcutime_to_wall(&l->clock, heap.t_us), f->seq,
                       &heap);
        return;
    case MSG_LOG:
        r = msg_decode_log(f->payload, f->len, &lg);
        if (r != 0)
            break;
        mcutime_observe(&l->clock, lg.t_us, wall);
        if (l->ev.log != NULL)
            l->ev.log(l->ctx, mcutime_to_wall(&l->clock, lg.t_us), &lg);
        return;
    case MSG_PONG:
        r = msg_decode_pong(f->payload, f->len, &pong);
        if (r != 0)
            break;
        mcutime_observe(&l->clock, pong.t_us, wall);
        return;
    case MSG_ACK:
    case MSG_NACK:
        r = f->type == MSG_ACK ? msg_decode_ack(f->payload, f->len, &ack)
                               : msg_decode_nack(f->payload, f->len, &ack);
        if (r != 0)
            break;
        if (l->own_pending && ack.seq == l->own_seq &&
            ack.type == MSG_GET_HELLO) {
            l->own_pending = false;
            return;
        }
        if (l->ev.answer != NULL)
            l->ev.answer(l->ctx, &ack);
        return;
    case MSG_UPD_STATUS:
        r = msg_decode_upd_status(f->payload, f->len, &us);
        if (r != 0)
            break;
        if (l->ev.upd_status != NULL)
            l->ev.upd_status(l->ctx, &us);
        return;
    default:
        /* A newer firmware may send types this tetherd does not know. */
        log_debug("frame of unknown type 0x%02x ignored", f->type);
        return;
    }
    bad_payload(l, f, r);
}

static void on_frame(struct link *l, const struct frame *f, int64_t wall)
{
    bool seen_before = l->seen_mcu;
    bool restarted;
    char why[LINK_WHY_MAX];

    l->seen_mcu = true;
    l->last_frame_ms = uv_now(l->loop);
    restarted = track_seq(l, f->seq);
    if (restarted) {
        restart_boot(l);
        if (f->type != MSG_HELLO)
            await_reset_cause(l);
    }
    if (l->state != LINK_CONNECTED) {
        snprintf(why, sizeof(why), "%s from %s",
                 l->state == LINK_STALE ? "frames again" : "frames",
                 l->cfg.device);
        set_state(l, LINK_CONNECTED, why);
        if (l->closing)
            return;
    }
    switch (f->type) {
    case MSG_HELLO:
        on_hello_frame(l, f, wall, restarted, seen_before);
        break;
    case MSG_ADC:
        on_adc_frame(l, f, wall);
        break;
    case MSG_STATS:
        on_stats_frame(l, f, wall);
        break;
    default:
        on_other_frame(l, f, wall);
        break;
    }
}

/* Reads one batch of up to LINK_READ_MAX bytes. */
static void read_batch(struct link *l)
{
    ssize_t n = serial_read(l->ser, l->inbuf, sizeof(l->inbuf));
    int64_t wall;

    if (n == 0)
        return; /* a spurious wake-up */
    if (n < 0) {
        drop_device(l, "read", (int)-n);
        return;
    }
    l->stats.bytes_in += (uint64_t)n;
    wall = wall_now(l);
    /* A callback may close the link (or the device): stop at once. */
    for (size_t i = 0, used; i < (size_t)n && l->ser != NULL; i += used) {
        struct frame f;
        int r = frame_rx_feed(&l->rx, l->inbuf + i, (size_t)n - i, &used, &f);

        if (r == FRAME_RX_OK)
            on_frame(l, &f, wall);
        else if (r == FRAME_EVERSION)
            note_version_error(l, l->rxbuf[0]);
        else if (r < 0)
            log_debug("frame dropped: %s", frame_strerror(r));
    }
    fold_rx_stats(l);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct link *l = h->data;
    int r;

    if (l->ser == NULL)
        return;
    if (status < 0) {
        /* libuv says EBADF for any POLLERR; a read tells the real story
         * (a hung-up pty reads EIO) and takes what is still queued. */
        read_batch(l);
        if (l->ser != NULL && !l->closing)
            drop_device(l, "poll", -status);
        return;
    }
    if (events & UV_WRITABLE) {
        r = flush_tx(l);
        if (r != 0) {
            drop_device(l, "write", -r);
            return;
        }
    }
    if (events & (UV_READABLE | UV_DISCONNECT))
        read_batch(l);
}

/* ---- Life cycle ---- */

int link_new(struct link **out, uv_loop_t *loop, const struct link_config *cfg,
             const struct link_events *ev, void *ctx)
{
    struct link *l;

    assert(loop != NULL && cfg != NULL && cfg->device != NULL && ev != NULL);
    *out = NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    l->loop = loop;
    l->cfg = *cfg;
    l->ev = *ev;
    l->ctx = ctx;
    l->state = LINK_DISCONNECTED;
    l->retry_ms = LINK_RETRY_MIN_MS;
    frame_rx_init(&l->rx, l->rxbuf, sizeof(l->rxbuf));
    mcutime_init(&l->clock);
    uv_timer_init(loop, &l->retry);
    uv_timer_init(loop, &l->stale);
    uv_timer_init(loop, &l->hello_wait);
    l->retry.data = l;
    l->stale.data = l;
    l->hello_wait.data = l;
    /* The first attempt runs from the loop, so no callback can come
     * before the caller has its handle. */
    uv_timer_start(&l->retry, on_retry, 0, 0);
    *out = l;
    return 0;
}

void link_close(struct link *l, void (*done)(void *arg), void *arg)
{
    assert(!l->closing);
    l->closing = true;
    l->done = done;
    l->done_arg = arg;
    l->closes_pending = 3;
    if (l->ser != NULL)
        close_device(l);
    if (l->poll_state == POLL_CLOSING)
        l->closes_pending++;
    uv_close((uv_handle_t *)&l->retry, on_closed);
    uv_close((uv_handle_t *)&l->stale, on_closed);
    uv_close((uv_handle_t *)&l->hello_wait, on_closed);
}

void link_release(struct link *l, const char *why)
{
    if (l->released || l->closing)
        return;
    l->released = true;
    uv_timer_stop(&l->retry);
    uv_timer_stop(&l->hello_wait);
    if (l->ser != NULL) {
        close_device(l);
        fold_rx_stats(l);
    }
    log_info("released %s: %s", l->cfg.device, why);
    set_state(l, LINK_DISCONNECTED, why);
}

void link_reacquire(struct link *l)
{
    if (!l->released || l->closing)
        return;
    l->released = false;
    l->retry_ms = LINK_RETRY_MIN_MS;
    l->open_failure_logged = false;
    uv_timer_start(&l->retry, on_retry, 0, 0);
}

enum link_state link_state(const struct link *l)
{
    return l->state;
}

void link_get_stats(const struct link *l, struct link_stats *out)
{
    *out = l->stats;
    out->last_frame_age_ms =
        l->seen_mcu ? (int64_t)(uv_now(l->loop) - l->last_frame_ms) : -1;
}

const struct msg_hello *link_hello(const struct link *l)
{
    return l->have_hello ? &l->hello : NULL;
}
