/* The firmware core: link, commands, reports and the ties between the
 * sampler, the heap and its workloads.  See fw.h. */
#include "fw.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "fifo.h"
#include "frame.h"
#include "fwupdate.h"
#include "heap.h"
#include "msg.h"
#include "port.h"
#include "sampler.h"
#include "scenario.h"

#define CTRL_PAYLOAD_MAX (MSG_LOG_HDR_LEN + MSG_LOG_TEXT_MAX)
#define ADC_PAYLOAD_MAX  MSG_ADC_LEN(PORT_ADC_VALUES_MAX)
#define TX_PAYLOAD_MAX                                                         \
    (ADC_PAYLOAD_MAX > CTRL_PAYLOAD_MAX ? ADC_PAYLOAD_MAX : CTRL_PAYLOAD_MAX)
#define POLL_SLEEP_MAX_US  100000u
#define HEAP_PERIOD_MIN_MS 10u

/* FW_TEST_MUTE=1 builds a test image that boots, says HELLO, answers
 * every command, and never sends telemetry (ADC, HEAP, STATS): the image
 * that fails the daemon's health gate after an update (docs/UPDATE.md),
 * so that the revert can be tested.  This is its only effect. */
#ifndef FW_TEST_MUTE
#define FW_TEST_MUTE 0
#endif

_Static_assert(PORT_ADC_VALUES_MAX <= MSG_ADC_VALUES_MAX,
               "an ADC batch must fit one frame");
#define REPORT_HEAP    1u
#define REPORT_STATS   2u
#define REPORT_WAIT_US 1000u /* poll again this soon while reports wait */
_Static_assert(PORT_TXQ_SIZE >
                   FRAME_WIRE_LEN(TX_PAYLOAD_MAX) + FW_REPLY_RESERVE,
               "the TX FIFO must hold a full batch and the replies' room");

static _Alignas(HEAP_UNIT) uint8_t arena[PORT_HEAP_ARENA];
static uint8_t txq_buf[PORT_TXQ_SIZE];
static uint8_t rxq_buf[PORT_RXQ_SIZE];
static uint8_t rx_buf[FRAME_RX_BUF_LEN(PORT_RX_PAYLOAD_MAX)];
static uint8_t payload[CTRL_PAYLOAD_MAX];
static uint8_t wire[FRAME_WIRE_LEN(TX_PAYLOAD_MAX)];

static struct {
    struct fw_options opt;
    struct heap heap;
    struct scenario scen;
    struct sampler samp;
    struct fifo txq;
    struct fifo rxq;
    struct frame_rx rx;
    uint32_t last_us; /* clock at the previous poll */
    uint32_t uptime_ms;
    uint32_t uptime_frac_us; /* microseconds not yet in uptime_ms */
    uint32_t next_tick_us;   /* next scenario tick */
    uint32_t next_report_us; /* next HEAP + STATS */
    uint8_t reports_due;     /* REPORT_* waiting for room in the TX FIFO */
    uint32_t reboot_by_us;   /* reboot deadline, when reboot is set */
    uint32_t tx_frames;
    uint32_t tx_dropped;
    volatile uint32_t rx_overruns; /* written in interrupt context */
    uint32_t last_fail_log_ms;
    uint32_t logged_failures;
    uint16_t tx_seq;
    uint8_t reset_cause;
    bool reboot;
    bool quiet; /* telemetry paused: an update holds the line */
} fw;

/* ---- Transmission ---- */

/* How much room each kind of frame leaves behind in the TX FIFO, so that
 * replies to commands always find some.  Reports that do not fit wait
 * (reports_due) and ADC batches are dropped while they wait: when the line
 * is saturated, data goes first, reports are late but whole, and replies
 * go out. */
enum room { ROOM_REPLY = 0, ROOM_REPORT = FW_REPLY_RESERVE };

/* Frames and queues one message, leaving `keep` bytes free.  Returns
 * false when it does not fit; the caller drops it (and counts it) or
 * tries again later. */
static bool try_send(uint8_t type, const uint8_t *p, size_t n, enum room keep)
{
    int len = frame_encode(wire, sizeof(wire), type, fw.tx_seq, p, n);
    uint16_t need;

    if (len < 0)
        return false;
    need = (uint16_t)len;
    if (fifo_space(&fw.txq) < need + (uint16_t)keep ||
        !fifo_put_all(&fw.txq, wire, need))
        return false;
    fw.tx_seq++;
    fw.tx_frames++;
    port_uart_kick();
    return true;
}

/* As try_send(), but a frame that does not fit is dropped and counted. */
static void send(uint8_t type, const uint8_t *p, size_t n, enum room keep)
{
    if (!try_send(type, p, n, keep))
        fw.tx_dropped++;
}

static void send_delimiter(void)
{
    const uint8_t zero = 0;

    if (fifo_put_all(&fw.txq, &zero, 1))
        port_uart_kick();
}

static size_t put_str(char *b, size_t at, size_t cap, const char *s)
{
    while (*s != '\0' && at < cap)
        b[at++] = *s++;
    return at;
}

static size_t put_u32(char *b, size_t at, size_t cap, uint32_t v)
{
    char tmp[10];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0 && at < cap)
        b[at++] = tmp[--n];
    return at;
}

static void send_log(uint8_t level, const char *text, size_t len)
{
    struct msg_log m = {port_time_us(), level, text, len};
    int n = msg_encode_log(payload, sizeof(payload), &m);

    if (n > 0)
        send(MSG_LOG, payload, (size_t)n, ROOM_REPORT);
}

static void send_hello(void)
{
    struct msg_hello m = {
        .proto_version = FRAME_VERSION,
        .board = PORT_BOARD_ID,
        .reset_cause = fw.reset_cause,
        .adc_bits = PORT_ADC_BITS,
        .adc_channels = fw.opt.channels,
        .caps = (uint16_t)(MSG_CAP_ADC | MSG_CAP_HEAP | MSG_CAP_SCENARIO |
                           MSG_CAP_LOG | fwupdate_caps()),
        .fw_version = FW_VERSION,
        .build_id = FW_BUILD_ID,
        .heap_total = fw.heap.st.total,
        .uptime_ms = fw.uptime_ms,
        .time_us = port_time_us(),
        .rx_max = PORT_RX_PAYLOAD_MAX,
    };
    int n = msg_encode_hello(payload, sizeof(payload), &m);

    if (n > 0)
        send(MSG_HELLO, payload, (size_t)n, ROOM_REPLY);
}

/* Sends the reports that are due, HEAP before STATS, each when it fits;
 * what does not fit stays due and is tried at the next poll, with the
 * values of that moment. */
static void send_reports(uint32_t now)
{
    struct heap_stats hs;
    struct msg_heap h;
    struct msg_stats s;
    uint32_t irq;
    int n;

    if (fw.reports_due & REPORT_HEAP) {
        heap_stats(&fw.heap, &hs);
        h = (struct msg_heap){now,         hs.total,    hs.free,   hs.used,
                              hs.largest,  hs.min_free, hs.allocs, hs.frees,
                              hs.failures, hs.blocks,   fw.scen.id};
        n = msg_encode_heap(payload, sizeof(payload), &h);
        if (n > 0 && !try_send(MSG_HEAP, payload, (size_t)n, ROOM_REPORT))
            return;
        fw.reports_due &= (uint8_t)~REPORT_HEAP;
    }
    if ((fw.reports_due & REPORT_STATS) == 0)
        return;
    irq = port_irq_save();
    s.rx_overruns = fw.rx_overruns;
    port_irq_restore(irq);
    s.t_us = now;
    s.tx_frames = fw.tx_frames;
    s.tx_dropped = fw.tx_dropped;
    s.rx_frames_ok = fw.rx.stats.frames_ok;
    s.rx_crc_errors = fw.rx.stats.crc_errors;
    s.rx_cobs_errors = fw.rx.stats.cobs_errors;
    s.rx_oversize = fw.rx.stats.oversize;
    s.rx_version_errors = fw.rx.stats.version_errors;
    s.scans_missed = fw.samp.missed;
    n = msg_encode_stats(payload, sizeof(payload), &s);
    if (n > 0 && !try_send(MSG_STATS, payload, (size_t)n, ROOM_REPORT))
        return;
    fw.reports_due &= (uint8_t)~REPORT_STATS;
}

/* An ADC batch, unless reports are waiting for room: then it is dropped
 * (and counted) so that the line drains for them. */
static void send_batch(size_t n)
{
    if (n == 0)
        return;
    if (fw.reports_due != 0)
        fw.tx_dropped++;
    else
        send(MSG_ADC, fw.samp.buf, n, ROOM_REPORT);
}

/* ---- Commands ---- */

static void reply(const struct frame *f, uint8_t error)
{
    struct msg_ack a = {f->seq, f->type, error};
    int n = error ? msg_encode_nack(payload, sizeof(payload), &a)
                  : msg_encode_ack(payload, sizeof(payload), &a);

    if (n > 0)
        send(error ? MSG_NACK : MSG_ACK, payload, (size_t)n, ROOM_REPLY);
}

/* Maps a decoder result to a NACK code (0 when the payload was good). */
static uint8_t decode_error(int ret)
{
    if (ret == MSG_ELEN)
        return MSG_NACK_BAD_LENGTH;
    if (ret < 0)
        return MSG_NACK_BAD_VALUE;
    return 0;
}

static void log_scenario(void)
{
    char text[MSG_LOG_TEXT_MAX];
    size_t n = put_str(text, 0, sizeof(text), "scenario ");

    n = put_str(text, n, sizeof(text), msg_scenario_name(fw.scen.id));
    if (fw.scen.id == MSG_SCEN_LEAK) {
        n = put_str(text, n, sizeof(text), " ");
        n = put_u32(text, n, sizeof(text),
                    fw.scen.param ? fw.scen.param : SCENARIO_LEAK_DEFAULT);
        n = put_str(text, n, sizeof(text), " B/s");
    }
    send_log(6, text, n);
}

static uint8_t set_rate(const struct frame *f, uint32_t now)
{
    uint16_t hz;
    uint8_t err = decode_error(msg_decode_u16(f->payload, f->len, &hz));

    if (err)
        return err;
    if (hz == 0 || hz > PORT_RATE_MAX_HZ)
        return MSG_NACK_BAD_VALUE;
    send_batch(sampler_flush(&fw.samp));
    sampler_set_rate(&fw.samp, hz, now);
    fw.opt.rate_hz = hz;
    return 0;
}

static uint8_t set_channels(const struct frame *f, uint32_t now)
{
    uint16_t mask;
    uint16_t valid = (uint16_t)((1ul << fw.opt.channels) - 1u);
    uint8_t err = decode_error(msg_decode_u16(f->payload, f->len, &mask));

    if (err)
        return err;
    if (mask & (uint16_t)~valid)
        return MSG_NACK_BAD_VALUE;
    send_batch(sampler_flush(&fw.samp));
    sampler_set_mask(&fw.samp, mask, now);
    fw.opt.mask = mask;
    return 0;
}

static uint8_t set_heap_period(const struct frame *f, uint32_t now)
{
    uint16_t ms;
    uint8_t err = decode_error(msg_decode_u16(f->payload, f->len, &ms));

    if (err)
        return err;
    if (ms != 0 && ms < HEAP_PERIOD_MIN_MS)
        return MSG_NACK_BAD_VALUE;
    fw.opt.heap_period_ms = ms;
    fw.next_report_us = now + (uint32_t)ms * 1000u;
    if (ms == 0)
        fw.reports_due = 0;
    return 0;
}

static uint8_t set_scenario(const struct frame *f)
{
    struct msg_scenario_cmd c;
    uint8_t err = decode_error(msg_decode_scenario(f->payload, f->len, &c));

    if (err)
        return err;
    if (scenario_select(&fw.scen, c.id, c.param) != 0)
        return MSG_NACK_BAD_VALUE;
    fw.opt.scenario = c.id;
    fw.opt.scenario_param = c.param;
    return 0;
}

static void handle(const struct frame *f, uint32_t now)
{
    uint32_t token;
    uint8_t err;

    switch (f->type) {
    case MSG_PING:
        err = decode_error(msg_decode_u32(f->payload, f->len, &token));
        reply(f, err);
        if (!err) {
            struct msg_pong p = {token, port_time_us()};
            int n = msg_encode_pong(payload, sizeof(payload), &p);

            if (n > 0)
                send(MSG_PONG, payload, (size_t)n, ROOM_REPLY);
        }
        return;
    case MSG_SET_RATE:
        reply(f, set_rate(f, now));
        return;
    case MSG_SET_CHANNELS:
        reply(f, set_channels(f, now));
        return;
    case MSG_SET_HEAP_PERIOD:
        reply(f, set_heap_period(f, now));
        return;
    case MSG_GET_HELLO:
        reply(f, 0);
        send_hello();
        return;
    case MSG_REBOOT:
        reply(f, 0);
        fw_reboot();
        return;
    case MSG_SET_SCENARIO:
        err = set_scenario(f);
        reply(f, err);
        if (!err)
            log_scenario();
        return;
    default:
        if (f->type >= MSG_UPDATE_FIRST && f->type <= MSG_UPDATE_LAST)
            fwupdate_handle(f);
        else
            reply(f, MSG_NACK_UNKNOWN_TYPE);
        return;
    }
}

/* ---- Entry points ---- */

bool fw_send_reply(uint8_t type, const uint8_t *p, size_t len)
{
    if (try_send(type, p, len, ROOM_REPLY))
        return true;
    fw.tx_dropped++;
    return false;
}

void fw_reboot(void)
{
    fw.reboot = true;
    fw.reboot_by_us = port_time_us() + FW_REBOOT_DRAIN_US;
}

void fw_defaults(struct fw_options *o)
{
    o->seed = 1;
    o->scenario_param = 0;
    o->rate_hz = 100;
    o->channels = 4;
    o->mask = 0x000f;
    o->heap_period_ms = 1000;
    o->scenario = MSG_SCEN_STEADY;
}

void fw_init(const struct fw_options *o)
{
    uint32_t now = port_time_us();

    memset(&fw, 0, sizeof(fw));
    fw.opt = *o;
    fw.reset_cause = port_reset_cause();
    fifo_init(&fw.txq, txq_buf, sizeof(txq_buf));
    fifo_init(&fw.rxq, rxq_buf, sizeof(rxq_buf));
    frame_rx_init(&fw.rx, rx_buf, sizeof(rx_buf));
    heap_init(&fw.heap, arena, sizeof(arena));
    scenario_init(&fw.scen, &fw.heap, o->seed);
    (void)scenario_select(&fw.scen, o->scenario, o->scenario_param);
    sampler_init(&fw.samp, o->rate_hz, o->mask, now);
    fw.last_us = now;
    fw.next_tick_us = now + SCENARIO_TICK_US;
    fw.next_report_us = now + (uint32_t)o->heap_period_ms * 1000u;
    fw.reports_due = 0;
    fwupdate_init(); /* before HELLO, whose caps say what it found */

    /* A delimiter first: whatever the line carried before the reset ends
     * there, and HELLO starts clean. */
    send_delimiter();
    send_hello();
    {
        char text[MSG_LOG_TEXT_MAX];
        size_t n = put_str(text, 0, sizeof(text), "boot tether-fw ");

        n = put_u32(text, n, sizeof(text), FW_VERSION_MAJOR);
        n = put_str(text, n, sizeof(text), ".");
        n = put_u32(text, n, sizeof(text), FW_VERSION_MINOR);
        n = put_str(text, n, sizeof(text), ".");
        n = put_u32(text, n, sizeof(text), FW_VERSION_PATCH);
        send_log(6, text, n);
    }
    log_scenario();
}

static void note_heap_failures(void)
{
    char text[MSG_LOG_TEXT_MAX];
    size_t n;

    /* At most one line a second, so a leak cannot flood the link. */
    if (fw.heap.st.failures == fw.logged_failures ||
        fw.uptime_ms - fw.last_fail_log_ms < 1000u)
        return;
    n = put_str(text, 0, sizeof(text), "heap: ");
    n = put_u32(text, n, sizeof(text),
                fw.heap.st.failures - fw.logged_failures);
    n = put_str(text, n, sizeof(text), " allocation(s) failed");
    fw.logged_failures = fw.heap.st.failures;
    fw.last_fail_log_ms = fw.uptime_ms;
    send_log(4, text, n);
}

/* Telemetry stops while an update holds the line (and always in a mute
 * test build).  When it resumes, sampling and reports restart on a fresh
 * grid at the present: the pause is a gap, not a backlog of late scans. */
static bool quiet(uint32_t now)
{
    bool q = FW_TEST_MUTE || fwupdate_busy();

    if (q == fw.quiet)
        return q;
    fw.quiet = q;
    fw.reports_due = 0;
    if (!q) {
        sampler_set_rate(&fw.samp, fw.opt.rate_hz, now);
        fw.next_report_us = now + (uint32_t)fw.opt.heap_period_ms * 1000u;
    }
    return q;
}

static uint32_t until(uint32_t when, uint32_t now)
{
    int32_t d = (int32_t)(when - now);

    return d > 0 ? (uint32_t)d : 0;
}

uint32_t fw_poll(void)
{
    uint32_t now = port_time_us();
    uint32_t sleep;
    struct frame f;
    uint8_t byte;
    size_t n;
    bool q;

    fw.uptime_frac_us += now - fw.last_us;
    fw.last_us = now;
    fw.uptime_ms += fw.uptime_frac_us / 1000u;
    fw.uptime_frac_us %= 1000u;

    while (fifo_get(&fw.rxq, &byte))
        if (frame_rx_push(&fw.rx, byte, &f) == FRAME_RX_OK)
            handle(&f, now);
    q = quiet(now);

    while (!q && (n = sampler_poll(&fw.samp, now)) > 0)
        send_batch(n);

    while ((int32_t)(now - fw.next_tick_us) >= 0) {
        scenario_tick(&fw.scen);
        fw.next_tick_us += SCENARIO_TICK_US;
    }
    if (!q)
        note_heap_failures();

    if (!q && fw.opt.heap_period_ms != 0 &&
        (int32_t)(now - fw.next_report_us) >= 0) {
        uint32_t period = (uint32_t)fw.opt.heap_period_ms * 1000u;

        /* On a fixed grid, so reports do not drift by the loop's delay;
         * after a long stall the grid restarts at the present. */
        fw.next_report_us += period;
        if ((int32_t)(now - fw.next_report_us) >= 0)
            fw.next_report_us = now + period;
        fw.reports_due = REPORT_HEAP | REPORT_STATS;
    }
    if (fw.reports_due != 0)
        send_reports(now);

    if (fw.reboot &&
        (fifo_used(&fw.txq) == 0 || (int32_t)(now - fw.reboot_by_us) >= 0))
        port_reset();

    port_watchdog_kick();

    sleep = q ? UINT32_MAX : sampler_wait_us(&fw.samp, now);
    if (until(fw.next_tick_us, now) < sleep)
        sleep = until(fw.next_tick_us, now);
    if (!q && fw.opt.heap_period_ms != 0 &&
        until(fw.next_report_us, now) < sleep)
        sleep = until(fw.next_report_us, now);
    if ((fw.reboot || fw.reports_due != 0) && sleep > REPORT_WAIT_US)
        sleep = REPORT_WAIT_US;
    return sleep < POLL_SLEEP_MAX_US ? sleep : POLL_SLEEP_MAX_US;
}

void fw_uart_rx(uint8_t byte)
{
    if (!fifo_put_isr(&fw.rxq, byte))
        fw.rx_overruns++;
}

int fw_uart_tx_next(void)
{
    uint8_t byte;

    return fifo_get_isr(&fw.txq, &byte) ? byte : -1;
}
