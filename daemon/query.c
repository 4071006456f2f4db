/* The query socket's methods.  See query.h and docs/QUERY.md.
 *
 * Answers that need the disk (history, past alerts) run as jobs on the
 * libuv thread pool; a job owns its own copy of everything it reads, so
 * the loop may go on.  A history job also writes its answer's text in
 * the pool (thousands of points take milliseconds to print), so the loop
 * only sends it.  Sends wait in a fixed table keyed by the command's
 * sequence number, each with its own timer. */
#include "query.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"

#define ALERTS_ACTIVE_MAX 8
#define TOPIC_NAMES       6
#define ERR_MAX           STORE_ERR_MAX
#define HOUR_US           3600000000LL
#define MINUTE_US         60000000ULL
#define SECOND_US         1000000ULL
#define DECIMATE_MAX      1000000
#define TIMEOUT_DEFAULT   1000

struct send_slot {
    uv_timer_t timer;
    struct query *q;
    struct qsrv_call *call; /* NULL: slot free */
    uint16_t seq;
};

struct query {
    uv_loop_t *loop;
    struct qsrv *srv;
    struct query_deps d;
    struct send_slot sends[QUERY_SENDS_MAX];
    int64_t hello_mono_ms; /* when the last HELLO came, monotonic */
    unsigned jobs;         /* pool jobs in flight */
    int closing;           /* closes outstanding */
    bool stopping;
    uint32_t decimate;
    uint64_t adc_batches;
    void (*done)(void *arg);
    void *done_arg;
};

enum job_kind { JOB_ADC, JOB_HEAP, JOB_ALERTS };

struct job {
    uv_work_t work;
    struct query *q;
    struct qsrv_call *call;
    enum job_kind kind;
    char *db_path;
    struct store_query sq;
    void *points;
    size_t cap, n;
    int64_t next;
    int rc;
    struct qsrv_json *result; /* history: built by the job, or NULL */
    char err[ERR_MAX];
};

static const char *const topic_names[TOPIC_NAMES] = {
    "samples", "heap", "alerts", "link", "mcu", "flash"};

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        log_err("out of memory");
        abort();
    }
    return p;
}

static const char *board_name(uint8_t b)
{
    switch (b) {
    case MSG_BOARD_SIM:
        return "tether-sim";
    case MSG_BOARD_MPS2_AN505:
        return "mps2-an505";
    case MSG_BOARD_STM32U585:
        return "stm32u585";
    case MSG_BOARD_ATMEGA328P:
        return "atmega328p";
    default:
        return "unknown";
    }
}

static const char *reset_name(uint8_t c)
{
    static const char *const names[] = {"unknown",  "power-on", "pin",
                                        "software", "watchdog", "brown-out",
                                        "fault"};

    return c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

/* ---- Shared pieces of results ---- */

static void put_heap(struct qsrv_json *j, const struct heap_record *r)
{
    const struct msg_heap *h = &r->heap;

    qsrv_add_int(j, "t_us", r->t_us);
    qsrv_add_int(j, "age_ms", (wall_us() - r->t_us) / 1000);
    qsrv_add_int(j, "total", h->total);
    qsrv_add_int(j, "free", h->free);
    qsrv_add_int(j, "used", h->used);
    qsrv_add_int(j, "largest", h->largest);
    qsrv_add_int(j, "min_free", h->min_free);
    qsrv_add_int(j, "allocs", h->allocs);
    qsrv_add_int(j, "frees", h->frees);
    qsrv_add_int(j, "failures", h->failures);
    qsrv_add_int(j, "blocks", h->blocks);
    qsrv_add_str(j, "scenario", msg_scenario_name(h->scenario));
}

static void put_hello(struct query *q, struct qsrv_json *j,
                      const struct msg_hello *h)
{
    char text[32];

    snprintf(text, sizeof(text), "%u.%u.%u", (unsigned)(h->fw_version >> 16),
             (unsigned)((h->fw_version >> 8) & 0xff),
             (unsigned)(h->fw_version & 0xff));
    qsrv_add_str(j, "firmware_version", text);
    qsrv_add_str(j, "board", board_name(h->board));
    snprintf(text, sizeof(text), "%08" PRIx32, h->build_id);
    qsrv_add_str(j, "build_id", text);
    /* The HELLO's uptime, moved on by the time since it came. */
    qsrv_add_int(j, "uptime_ms",
                 (int64_t)h->uptime_ms +
                     (q->hello_mono_ms ? mono_ms() - q->hello_mono_ms : 0));
    qsrv_add_str(j, "last_reset_cause", reset_name(h->reset_cause));
    qsrv_add_int(j, "adc_channels", h->adc_channels);
    qsrv_add_int(j, "adc_bits", h->adc_bits);
    qsrv_add_int(j, "heap_total", h->heap_total);
}

static void put_alert(struct qsrv_json *j, const struct alert_event *ev)
{
    qsrv_add_str(j, "name", ev->name);
    qsrv_add_str(j, "state", ev->state);
    qsrv_add_int(j, "t_us", ev->t_us);
    qsrv_add_double(j, "value", ev->value);
    qsrv_add_double(j, "threshold", ev->threshold);
    if (ev->estimate_s >= 0)
        qsrv_add_double(j, "estimate_s", ev->estimate_s);
    else
        qsrv_add_null(j, "estimate_s");
    qsrv_add_str(j, "message", ev->message);
}

static void put_real(struct qsrv_json *j, const char *key, double v)
{
    if (isnan(v))
        qsrv_add_null(j, key);
    else
        qsrv_add_double(j, key, v);
}

/* ---- version, status, latest ---- */

static int m_version(void *ctx, struct qsrv_call *call,
                     const struct qsrv_params *p)
{
    struct qsrv_json *j = qsrv_call_result(call);

    (void)ctx;
    (void)p;
    qsrv_json_object(j);
    qsrv_add_str(j, "daemon", TETHER_VERSION);
    qsrv_add_int(j, "query_protocol", QUERY_PROTOCOL);
    qsrv_add_int(j, "wire_protocol", QUERY_WIRE_PROTOCOL);
    return 0;
}

static int m_status(void *ctx, struct qsrv_call *call,
                    const struct qsrv_params *p)
{
    struct query *q = ctx;
    struct qsrv_json *j = qsrv_call_result(call);
    struct alert_event act[ALERTS_ACTIVE_MAX];
    const struct msg_hello *h = link_hello(q->d.link);
    struct heap_record hr;
    struct link_stats ls;
    struct store_stats ss;
    struct qsrv_stats qs;
    bool have_heap;
    size_t na;

    (void)p;
    link_get_stats(q->d.link, &ls);
    qsrv_json_object(j);
    qsrv_begin_object(j, "link");
    qsrv_add_str(j, "state", link_state_name(link_state(q->d.link)));
    qsrv_add_str(j, "device", q->d.device);
    qsrv_add_int(j, "frames_ok", (int64_t)ls.frames_ok);
    qsrv_add_int(j, "crc_errors", (int64_t)ls.crc_errors);
    qsrv_add_int(j, "cobs_errors", (int64_t)ls.cobs_errors);
    qsrv_add_int(j, "oversize", (int64_t)ls.oversize);
    qsrv_add_int(j, "version_errors", (int64_t)ls.version_errors);
    qsrv_add_int(j, "discarded", (int64_t)ls.discarded);
    qsrv_add_int(j, "seq_gaps", (int64_t)ls.seq_gaps);
    qsrv_add_int(j, "bad_payloads", (int64_t)ls.bad_payloads);
    qsrv_add_int(j, "mcu_tx_dropped", (int64_t)ls.mcu_tx_dropped);
    qsrv_add_int(j, "mcu_resets", (int64_t)ls.mcu_resets);
    qsrv_add_int(j, "reconnects", (int64_t)ls.reconnects);
    if (ls.last_frame_age_ms >= 0)
        qsrv_add_int(j, "last_frame_age_ms", ls.last_frame_age_ms);
    else
        qsrv_add_null(j, "last_frame_age_ms");
    qsrv_end(j);
    if (h != NULL) {
        qsrv_begin_object(j, "mcu");
        put_hello(q, j, h);
        qsrv_end(j);
    } else {
        qsrv_add_null(j, "mcu");
    }
    have_heap = ring_latest(q->d.heap_ring, &hr, 1) == 1;
    if (have_heap) {
        qsrv_begin_object(j, "heap");
        put_heap(j, &hr);
        qsrv_end(j);
    } else {
        qsrv_add_null(j, "heap");
    }
    store_get_stats(q->d.store, &ss);
    qsrv_begin_object(j, "store");
    qsrv_add_bool(j, "healthy", ss.healthy);
    qsrv_add_int(j, "queued", (int64_t)ss.queued);
    qsrv_add_int(j, "written", (int64_t)ss.written);
    qsrv_add_int(j, "dropped", (int64_t)ss.dropped);
    qsrv_add_int(j, "pending", ss.pending);
    qsrv_add_int(j, "failures", (int64_t)ss.failures);
    /* error is the failure under way ("" once a commit works again);
     * last_error keeps the newest failure's text for the record. */
    qsrv_add_str(j, "error", ss.healthy ? "" : store_code_name(ss.last_error));
    qsrv_add_str(j, "last_error", ss.last_error_text);
    qsrv_add_int(j, "db_bytes", (int64_t)ss.db_bytes);
    qsrv_add_int(j, "free_bytes", (int64_t)ss.free_bytes);
    qsrv_add_int(j, "max_bytes", (int64_t)ss.max_bytes);
    qsrv_end(j);
    qsrv_get_stats(q->srv, &qs);
    qsrv_begin_object(j, "socket");
    qsrv_add_int(j, "clients", (int64_t)qs.clients_now);
    qsrv_add_int(j, "accepted", (int64_t)qs.accepted);
    qsrv_add_int(j, "rejected", (int64_t)qs.rejected);
    qsrv_add_int(j, "dropped_slow", (int64_t)qs.dropped_slow);
    qsrv_add_int(j, "too_long", (int64_t)qs.too_long);
    qsrv_add_int(j, "dropped_budget", (int64_t)qs.dropped_budget);
    qsrv_add_int(j, "dropped_stalled", (int64_t)qs.dropped_stalled);
    qsrv_add_int(j, "queued_bytes", (int64_t)qs.queued);
    qsrv_end(j);
    na = alert_active(q->d.alert, act, ALERTS_ACTIVE_MAX);
    qsrv_begin_object(j, "alerts");
    qsrv_begin_array(j, "active");
    for (size_t i = 0; i < na; i++)
        qsrv_add_str(j, NULL, act[i].name);
    qsrv_end(j);
    if (have_heap)
        qsrv_add_int(j, "heap_low_threshold",
                     alert_heap_low_bytes(q->d.alert, hr.heap.total));
    else
        qsrv_add_null(j, "heap_low_threshold");
    qsrv_end(j);
    return 0;
}

/* Answers the call with -32602 and a message naming the parameter;
 * returns QSRV_LATER for the handler to return. */
static int bad(struct qsrv_call *call, const char *msg)
{
    qsrv_reply_error(call, QSRV_EPARAMS, msg);
    return QSRV_LATER;
}

/* Reads "channels" into a mask; absent: def.  Returns 0, or what the
 * handler returns. */
static int read_channels(struct qsrv_call *call, const struct qsrv_params *p,
                         uint16_t def, uint16_t *mask)
{
    int64_t ch[MSG_ADC_CHANNELS_MAX];
    size_t n;
    bool present;
    int r = qsrv_param_int_array(p, "channels", ch, MSG_ADC_CHANNELS_MAX, &n,
                                 &present);

    if (r != 0)
        return r;
    if (!present) {
        *mask = def;
        return 0;
    }
    *mask = 0;
    for (size_t i = 0; i < n; i++) {
        if (ch[i] < 0 || ch[i] >= MSG_ADC_CHANNELS_MAX)
            return bad(call, "invalid params: channels must be 0..15");
        *mask |= (uint16_t)(1u << ch[i]);
    }
    return 0;
}

static int m_latest(void *ctx, struct qsrv_call *call,
                    const struct qsrv_params *p)
{
    struct query *q = ctx;
    struct qsrv_json *j = qsrv_call_result(call);
    size_t cap = ring_capacity(q->d.adc_ring[0]);
    uint16_t have = 0, mask;
    struct adc_record *buf, newest;
    int64_t n, t_max = INT64_MIN;
    int r;

    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++)
        if (ring_count(q->d.adc_ring[ch]) > 0)
            have |= (uint16_t)(1u << ch);
    if ((r = qsrv_param_int(p, "n", 1, &n)) != 0)
        return r;
    if (n < 1)
        return bad(call, "invalid params: n must be at least 1");
    if ((uint64_t)n > cap)
        n = (int64_t)cap;
    if ((r = read_channels(call, p, have, &mask)) != 0)
        return r;
    /* Keep the whole answer within a client's output bound. */
    if (mask != 0 && (uint64_t)n * msg_popcount16(mask) > QUERY_LATEST_MAX)
        n = QUERY_LATEST_MAX / msg_popcount16(mask);
    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++)
        if ((have & (1u << ch)) &&
            ring_latest(q->d.adc_ring[ch], &newest, 1) == 1 &&
            newest.t_us > t_max)
            t_max = newest.t_us;
    buf = xcalloc((size_t)n, sizeof(*buf));
    qsrv_json_object(j);
    qsrv_add_bool(j, "stale", link_state(q->d.link) != LINK_CONNECTED);
    if (t_max == INT64_MIN)
        qsrv_add_null(j, "age_ms");
    else
        qsrv_add_int(j, "age_ms", (wall_us() - t_max) / 1000);
    qsrv_begin_array(j, "channels");
    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++) {
        size_t got;

        if (!(mask & (1u << ch)))
            continue;
        got = ring_latest(q->d.adc_ring[ch], buf, (size_t)n);
        qsrv_begin_object(j, NULL);
        qsrv_add_int(j, "channel", ch);
        qsrv_begin_array(j, "samples");
        for (size_t i = 0; i < got; i++) {
            qsrv_begin_object(j, NULL);
            qsrv_add_int(j, "t_us", buf[i].t_us);
            qsrv_add_int(j, "value", buf[i].value);
            qsrv_end(j);
        }
        qsrv_end(j);
        qsrv_end(j);
    }
    qsrv_end(j);
    free(buf);
    return 0;
}

/* ---- Jobs on the thread pool: history and past alerts ---- */

static void maybe_done(struct query *q)
{
    if (q->stopping && q->closing == 0 && q->jobs == 0) {
        void (*done)(void *) = q->done;
        void *arg = q->done_arg;

        free(q);
        if (done != NULL)
            done(arg);
    }
}

static void job_free(struct job *jb)
{
    qsrv_json_free(jb->result);
    free(jb->db_path);
    free(jb->points);
    free(jb);
}

static void put_history(struct job *jb, struct qsrv_json *j)
{
    bool raw = jb->sq.bucket_us == 0;

    qsrv_json_object(j);
    qsrv_add_str(j, "series", jb->kind == JOB_ADC ? "adc" : "heap");
    qsrv_add_int(j, "bucket_us", (int64_t)jb->sq.bucket_us);
    qsrv_begin_array(j, "points");
    for (size_t i = 0; i < jb->n; i++) {
        qsrv_begin_object(j, NULL);
        if (jb->kind == JOB_ADC) {
            const struct store_point *pt = (struct store_point *)jb->points + i;

            qsrv_add_int(j, "t_us", pt->t_us);
            qsrv_add_int(j, "channel", pt->channel);
            if (raw) {
                qsrv_add_int(j, "value", (int64_t)pt->min);
            } else {
                qsrv_add_double(j, "min", pt->min);
                qsrv_add_double(j, "max", pt->max);
                qsrv_add_double(j, "avg", pt->avg);
                qsrv_add_int(j, "count", (int64_t)pt->count);
            }
        } else {
            const struct store_heap_point *pt =
                (struct store_heap_point *)jb->points + i;

            qsrv_add_int(j, "t_us", pt->t_us);
            qsrv_add_int(j, "count", (int64_t)pt->count);
            qsrv_add_int(j, "free_min", pt->free_min);
            qsrv_add_int(j, "free_max", pt->free_max);
            qsrv_add_double(j, "free_avg", pt->free_avg);
            qsrv_add_int(j, "largest_min", pt->largest_min);
            qsrv_add_int(j, "failures_max", pt->failures_max);
            if (raw) {
                qsrv_add_int(j, "total", pt->total);
                qsrv_add_int(j, "used", pt->used);
                qsrv_add_int(j, "min_free", pt->min_free);
            }
        }
        qsrv_end(j);
    }
    qsrv_end(j);
    if (jb->next == STORE_QUERY_NONE)
        qsrv_add_null(j, "next_after_us");
    else
        qsrv_add_int(j, "next_after_us", jb->next);
}

/* Runs in the thread pool: reads the store and, for history, writes the
 * answer.  Touches only the job. */
static void job_work(uv_work_t *w)
{
    struct job *jb = w->data;

    switch (jb->kind) {
    case JOB_ADC:
        jb->rc = store_query_adc(jb->db_path, &jb->sq, jb->points, jb->cap,
                                 &jb->n, &jb->next, jb->err, sizeof(jb->err));
        break;
    case JOB_HEAP:
        jb->rc = store_query_heap(jb->db_path, &jb->sq, jb->points, jb->cap,
                                  &jb->n, &jb->next, jb->err, sizeof(jb->err));
        break;
    case JOB_ALERTS:
        jb->rc = store_query_alerts(jb->db_path, jb->points, jb->cap, &jb->n,
                                    jb->err, sizeof(jb->err));
        break;
    }
    /* A builder of the job's own touches nothing of the loop's. */
    if (jb->rc == 0 && jb->kind != JOB_ALERTS) {
        jb->result = qsrv_json_new();
        put_history(jb, jb->result);
    }
}

static void put_alerts_result(struct query *q, struct job *jb,
                              struct qsrv_json *j)
{
    struct alert_event act[ALERTS_ACTIVE_MAX];
    size_t na = alert_active(q->d.alert, act, ALERTS_ACTIVE_MAX);

    qsrv_json_object(j);
    qsrv_begin_array(j, "active");
    for (size_t i = 0; i < na; i++) {
        qsrv_begin_object(j, NULL);
        put_alert(j, &act[i]);
        qsrv_end(j);
    }
    qsrv_end(j);
    qsrv_begin_array(j, "history");
    for (size_t i = 0; jb != NULL && i < jb->n; i++) {
        const struct store_alert_row *a =
            (struct store_alert_row *)jb->points + i;

        qsrv_begin_object(j, NULL);
        qsrv_add_int(j, "t_us", a->t_us);
        qsrv_add_str(j, "name", a->name);
        qsrv_add_str(j, "state", a->state);
        put_real(j, "value", a->value);
        put_real(j, "threshold", a->threshold);
        qsrv_add_str(j, "message", a->message);
        qsrv_end(j);
    }
    qsrv_end(j);
}

static void job_after(uv_work_t *w, int status)
{
    struct job *jb = w->data;
    struct query *q = jb->q;

    q->jobs--;
    if (status != 0 || q->stopping) {
        qsrv_reply_error(jb->call, QSRV_EINTERNAL, NULL);
    } else if (jb->rc == -EINVAL || jb->rc == -EOVERFLOW) {
        qsrv_reply_error(jb->call, QSRV_EPARAMS, jb->err);
    } else if (jb->rc != 0) {
        log_warn("query: history read failed: %s", jb->err);
        qsrv_reply_error(jb->call, QSRV_ESTORE, jb->err);
    } else {
        if (jb->kind == JOB_ALERTS) {
            put_alerts_result(q, jb, qsrv_call_result(jb->call));
            qsrv_reply(jb->call);
        } else {
            qsrv_reply_json(jb->call, jb->result);
            jb->result = NULL;
        }
    }
    job_free(jb);
    maybe_done(q);
}

/* Queues jb; on failure answers and frees it.  Returns QSRV_LATER. */
static int job_start(struct query *q, struct job *jb)
{
    int r;

    jb->q = q;
    jb->work.data = jb;
    jb->db_path = strdup(q->d.db_path);
    if (jb->db_path == NULL) {
        log_err("out of memory");
        abort();
    }
    r = uv_queue_work(q->loop, &jb->work, job_work, job_after);
    if (r != 0) {
        qsrv_reply_error(jb->call, QSRV_EINTERNAL, NULL);
        job_free(jb);
        return QSRV_LATER;
    }
    q->jobs++;
    return QSRV_LATER;
}

/* A bucket width that gives at most n buckets over [from, to), rounded up
 * to whole seconds from a second and whole minutes from a minute so that
 * the rollups can serve it (store.h).  Buckets are aligned to multiples of
 * their width, so a range of n - 1 widths may touch n of them: hence the
 * n - 1.  Too wide a result is left for the store to refuse with its own
 * message. */
static int64_t bucket_for(int64_t from, int64_t to, int64_t n)
{
    uint64_t span = (uint64_t)to - (uint64_t)from, parts = (uint64_t)n - 1, w;

    if (to <= from)
        return (int64_t)STORE_QUERY_BUCKET_MIN;
    w = span / parts + (span % parts != 0);
    if (w > STORE_QUERY_BUCKET_MAX)
        return (int64_t)STORE_QUERY_BUCKET_MAX + 1;
    if (w >= MINUTE_US)
        return (int64_t)((w + MINUTE_US - 1) / MINUTE_US * MINUTE_US);
    if (w >= SECOND_US)
        return (int64_t)((w + SECOND_US - 1) / SECOND_US * SECOND_US);
    return w < STORE_QUERY_BUCKET_MIN ? (int64_t)STORE_QUERY_BUCKET_MIN
                                      : (int64_t)w;
}

static int m_history(void *ctx, struct qsrv_call *call,
                     const struct qsrv_params *p)
{
    struct query *q = ctx;
    const char *series;
    int64_t now = wall_us(), from, to, bucket, buckets, limit, after;
    uint16_t mask, have = 0;
    struct job *jb;
    int r;

    /* By default the channels that have data now, so that the default
     * page need not hold all sixteen. */
    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++)
        if (ring_count(q->d.adc_ring[ch]) > 0)
            have |= (uint16_t)(1u << ch);
    if ((r = qsrv_param_str(p, "series", "adc", &series)) != 0 ||
        (r = qsrv_param_int(p, "to_us", now, &to)) != 0 ||
        (r = qsrv_param_int(p, "from_us", to - HOUR_US, &from)) != 0 ||
        (r = qsrv_param_int(p, "bucket_us", 0, &bucket)) != 0 ||
        (r = qsrv_param_int(p, "buckets", 0, &buckets)) != 0 ||
        (r = qsrv_param_int(p, "limit", QUERY_POINTS_MAX, &limit)) != 0 ||
        (r = qsrv_param_int(p, "after_us", STORE_QUERY_NONE, &after)) != 0 ||
        (r = read_channels(call, p, have ? have : 0xffff, &mask)) != 0)
        return r;
    if (strcmp(series, "adc") != 0 && strcmp(series, "heap") != 0)
        return bad(call, "invalid params: series must be adc or heap");
    if (bucket < 0)
        return bad(call, "invalid params: bucket_us must not be negative");
    if (buckets != 0 && bucket != 0)
        return bad(call, "invalid params: give bucket_us or buckets, not both");
    if (buckets < 0 || buckets == 1 || buckets > QUERY_POINTS_MAX)
        return bad(call, "invalid params: buckets must be 2..5000");
    if (buckets != 0)
        bucket = bucket_for(from, to, buckets);
    if (limit < 1)
        return bad(call, "invalid params: limit must be at least 1");
    if (mask == 0)
        return bad(call, "invalid params: channels must not be empty");
    if (limit > QUERY_POINTS_MAX)
        limit = QUERY_POINTS_MAX;
    if (q->jobs >= QUERY_JOBS_MAX)
        return QSRV_EBUSY;
    jb = xcalloc(1, sizeof(*jb));
    jb->call = call;
    jb->kind = series[0] == 'a' ? JOB_ADC : JOB_HEAP;
    jb->sq.from_us = from;
    jb->sq.to_us = to;
    jb->sq.bucket_us = (uint64_t)bucket;
    jb->sq.limit = (uint32_t)limit;
    jb->sq.after_us = after;
    jb->sq.channels = mask;
    jb->cap = (size_t)limit;
    jb->points =
        xcalloc(jb->cap, jb->kind == JOB_ADC ? sizeof(struct store_point)
                                             : sizeof(struct store_heap_point));
    return job_start(q, jb);
}

static int m_alerts(void *ctx, struct qsrv_call *call,
                    const struct qsrv_params *p)
{
    struct query *q = ctx;
    struct job *jb;
    int64_t hist;
    int r;

    if ((r = qsrv_param_int(p, "history", 50, &hist)) != 0)
        return r;
    if (hist < 0 || hist > QUERY_HISTORY_MAX)
        return bad(call, "invalid params: history must be 0..1000");
    if (hist == 0) {
        put_alerts_result(q, NULL, qsrv_call_result(call));
        return 0;
    }
    if (q->jobs >= QUERY_JOBS_MAX)
        return QSRV_EBUSY;
    jb = xcalloc(1, sizeof(*jb));
    jb->call = call;
    jb->kind = JOB_ALERTS;
    jb->cap = (size_t)hist;
    jb->points = xcalloc(jb->cap, sizeof(struct store_alert_row));
    return job_start(q, jb);
}

/* ---- watch, unwatch ---- */

static int read_topics(struct qsrv_call *call, const struct qsrv_params *p,
                       unsigned *topics)
{
    const char *names[TOPIC_NAMES * 2];
    size_t n;
    bool present;
    int r =
        qsrv_param_str_array(p, "topics", names, TOPIC_NAMES * 2, &n, &present);

    if (r != 0)
        return r;
    if (!present) {
        *topics = (1u << TOPIC_NAMES) - 1;
        return 0;
    }
    *topics = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;

        while (k < TOPIC_NAMES && strcmp(names[i], topic_names[k]) != 0)
            k++;
        if (k == TOPIC_NAMES)
            return bad(call, "invalid params: topics must name samples, "
                             "heap, alerts, link, mcu or flash");
        *topics |= 1u << k;
    }
    return 0;
}

static void put_topics(struct qsrv_json *j, unsigned topics)
{
    qsrv_json_object(j);
    qsrv_begin_array(j, "topics");
    for (unsigned k = 0; k < TOPIC_NAMES; k++)
        if (topics & (1u << k))
            qsrv_add_str(j, NULL, topic_names[k]);
    qsrv_end(j);
}

static int m_watch(void *ctx, struct qsrv_call *call,
                   const struct qsrv_params *p)
{
    struct query *q = ctx;
    unsigned topics;
    int64_t dec;
    int r;

    if ((r = read_topics(call, p, &topics)) != 0 ||
        (r = qsrv_param_int(p, "decimate", 1, &dec)) != 0)
        return r;
    if (dec < 1 || dec > DECIMATE_MAX)
        return bad(call, "invalid params: decimate must be 1..1000000");
    if (topics & QSRV_TOPIC_SAMPLES)
        q->decimate = (uint32_t)dec;
    qsrv_subscribe(call, topics);
    put_topics(qsrv_call_result(call), topics);
    return 0;
}

static int m_unwatch(void *ctx, struct qsrv_call *call,
                     const struct qsrv_params *p)
{
    unsigned topics;
    int r;

    (void)ctx;
    if ((r = read_topics(call, p, &topics)) != 0)
        return r;
    qsrv_unsubscribe(call, topics);
    put_topics(qsrv_call_result(call), topics);
    return 0;
}

/* ---- send ---- */

/* Encodes the command into *type and buf, its length into *len.  Returns
 * 0, or what the handler returns: a code < 0, or QSRV_LATER when the
 * call was answered already. */
static int encode_command(struct qsrv_call *call, const struct qsrv_params *p,
                          uint8_t *type, uint8_t *buf, size_t cap, size_t *len)
{
    const char *cmd, *name;
    int64_t v, param;
    int r, n;

    if ((r = qsrv_param_str(p, "command", NULL, &cmd)) != 0)
        return r;
    if (cmd == NULL)
        return bad(call, "invalid params: command is missing");
    if (strcmp(cmd, "set_rate") == 0 || strcmp(cmd, "set_channels") == 0 ||
        strcmp(cmd, "set_heap_period") == 0) {
        if ((r = qsrv_param_int(p, "value", -1, &v)) != 0)
            return r;
        if (v < 0 || v > UINT16_MAX)
            return bad(call, "invalid params: value must be 0..65535");
        *type = cmd[4] == 'r'   ? MSG_SET_RATE
                : cmd[4] == 'c' ? MSG_SET_CHANNELS
                                : MSG_SET_HEAP_PERIOD;
        n = msg_encode_u16(buf, cap, (uint16_t)v);
    } else if (strcmp(cmd, "scenario") == 0) {
        struct msg_scenario_cmd sc = {0};
        unsigned id = 0;

        if ((r = qsrv_param_str(p, "name", "", &name)) != 0 ||
            (r = qsrv_param_int(p, "param", 0, &param)) != 0)
            return r;
        if (param < 0 || param > UINT32_MAX)
            return bad(call, "invalid params: param must be 0..4294967295");
        while (id < MSG_SCEN_COUNT &&
               strcmp(msg_scenario_name((uint8_t)id), name) != 0)
            id++;
        if (id == MSG_SCEN_COUNT)
            return bad(call, "invalid params: name must be none, steady, "
                             "leak, fragment or spike");
        sc.id = (uint8_t)id;
        sc.param = (uint32_t)param;
        *type = MSG_SET_SCENARIO;
        n = msg_encode_scenario(buf, cap, &sc);
    } else if (strcmp(cmd, "ping") == 0) {
        *type = MSG_PING;
        n = msg_encode_u32(buf, cap, (uint32_t)mono_ms());
    } else if (strcmp(cmd, "reboot") == 0 || strcmp(cmd, "hello") == 0) {
        *type = cmd[0] == 'r' ? MSG_REBOOT : MSG_GET_HELLO;
        n = 0;
    } else {
        return bad(call, "invalid params: command must be set_rate, "
                         "set_channels, set_heap_period, scenario, reboot, "
                         "ping or hello");
    }
    if (n < 0)
        return QSRV_EINTERNAL; /* buf is FRAME_PAYLOAD_MAX: cannot happen */
    *len = (size_t)n;
    return 0;
}

static void on_send_timeout(uv_timer_t *t)
{
    struct send_slot *s = t->data;
    struct qsrv_call *call = s->call;

    s->call = NULL;
    qsrv_reply_error(call, QSRV_ETIMEOUT, "the MCU did not answer in time");
}

static int m_send(void *ctx, struct qsrv_call *call,
                  const struct qsrv_params *p)
{
    struct query *q = ctx;
    uint8_t buf[FRAME_PAYLOAD_MAX], type = 0;
    struct send_slot *slot = NULL;
    int64_t timeout;
    uint16_t seq;
    size_t len;
    int r;

    if ((r = encode_command(call, p, &type, buf, sizeof(buf), &len)) != 0)
        return r;
    if ((r = qsrv_param_int(p, "timeout_ms", TIMEOUT_DEFAULT, &timeout)) != 0)
        return r;
    if (timeout < 1 || timeout > QUERY_TIMEOUT_MAX)
        return bad(call, "invalid params: timeout_ms must be 1..60000");
    if (q->d.flash != NULL && flash_busy(q->d.flash)) {
        qsrv_reply_error(call, QSRV_EBUSY,
                         "busy: a firmware update is under way");
        return QSRV_LATER;
    }
    if (link_state(q->d.link) == LINK_DISCONNECTED)
        return QSRV_ELINK_DOWN;
    for (size_t i = 0; i < QUERY_SENDS_MAX && slot == NULL; i++)
        if (q->sends[i].call == NULL)
            slot = &q->sends[i];
    if (slot == NULL)
        return QSRV_EBUSY;
    r = link_send(q->d.link, type, buf, len, &seq);
    if (r == LINK_ENOTCONN)
        return QSRV_ELINK_DOWN;
    if (r != 0)
        return QSRV_EINTERNAL;
    slot->call = call;
    slot->seq = seq;
    uv_timer_start(&slot->timer, on_send_timeout, (uint64_t)timeout, 0);
    return QSRV_LATER;
}

void query_on_answer(struct query *q, const struct msg_ack *ack)
{
    static const char *const nacks[] = {"error",      "unknown_type",
                                        "bad_length", "bad_value",
                                        "busy",       "unsupported"};

    for (size_t i = 0; i < QUERY_SENDS_MAX; i++) {
        struct send_slot *s = &q->sends[i];
        struct qsrv_json *j;
        struct qsrv_call *call = s->call;

        if (call == NULL || s->seq != ack->seq)
            continue;
        s->call = NULL;
        uv_timer_stop(&s->timer);
        j = qsrv_call_result(call);
        qsrv_json_object(j);
        qsrv_add_bool(j, "ack", ack->error == 0);
        if (ack->error != 0)
            qsrv_add_str(j, "nack",
                         ack->error < sizeof(nacks) / sizeof(nacks[0])
                             ? nacks[ack->error]
                             : "error");
        qsrv_reply(call);
        return;
    }
}

/* ---- flash ---- */

static void put_version(struct qsrv_json *j, const char *key, uint32_t v)
{
    char text[16];

    flash_version_text(text, sizeof(text), v);
    qsrv_add_str(j, key, text);
}

/* The image passed its checks (err 0) or was refused.  Only the call is
 * touched: it outlives the query server when that closes first. */
static void flash_started(void *arg, int err, const char *why,
                          const struct flash_progress *p)
{
    struct qsrv_call *call = arg;
    struct qsrv_json *j;

    if (err == -ESHUTDOWN) {
        qsrv_reply_error(call, QSRV_EINTERNAL, "tetherd is stopping");
        return;
    }
    if (err == FLASH_ENOHELLO) {
        qsrv_reply_error(call, QSRV_ELINK_DOWN, why);
        return;
    }
    if (err != 0) {
        qsrv_reply_error(call, QSRV_EIMAGE, why);
        return;
    }
    /* Subscribed before the answer goes, so no notification is missed. */
    qsrv_subscribe(call, QSRV_TOPIC_FLASH);
    j = qsrv_call_result(call);
    qsrv_json_object(j);
    qsrv_add_int(j, "id", p->id);
    qsrv_add_str(j, "image", p->image);
    qsrv_add_str(j, "method", p->method);
    put_version(j, "version", p->version);
    put_version(j, "from_version", p->from_version);
    qsrv_add_int(j, "total", p->total);
    qsrv_add_bool(j, "confirm", p->confirm);
    qsrv_reply(call);
}

static int m_flash(void *ctx, struct qsrv_call *call,
                   const struct qsrv_params *p)
{
    struct query *q = ctx;
    struct flash_request req;
    const char *image;
    bool confirm, force;
    int r;

    if (q->d.flash == NULL)
        return QSRV_ENOMETHOD;
    if ((r = qsrv_param_str(p, "image", NULL, &image)) != 0 ||
        (r = qsrv_param_bool(p, "confirm", true, &confirm)) != 0 ||
        (r = qsrv_param_bool(p, "force", false, &force)) != 0)
        return r;
    if (image == NULL)
        return bad(call, "invalid params: image is missing");
    if (image[0] != '/')
        return bad(call, "invalid params: image must be an absolute path "
                         "(tetherd reads the file itself)");
    req = (struct flash_request){image, confirm, force};
    r = flash_start(q->d.flash, &req, flash_started, call);
    switch (r) {
    case 0:
        return QSRV_LATER;
    case -EBUSY:
        qsrv_reply_error(call, QSRV_EBUSY,
                         "busy: a firmware update is under way");
        return QSRV_LATER;
    case -EINVAL:
        return bad(call, "invalid params: confirm false needs method uart "
                         "(OpenOCD has no test boot)");
    case -ENAMETOOLONG:
        return bad(call, "invalid params: image path is too long");
    default:
        return QSRV_EINTERNAL;
    }
}

void query_on_flash(struct query *q, const struct flash_progress *p)
{
    struct qsrv_json *j = qsrv_notify_params(q->srv);

    qsrv_json_object(j);
    qsrv_add_int(j, "id", p->id);
    qsrv_add_str(j, "state", p->state);
    qsrv_add_str(j, "image", p->image);
    qsrv_add_str(j, "method", p->method);
    put_version(j, "version", p->version);
    put_version(j, "from_version", p->from_version);
    qsrv_add_int(j, "bytes", p->bytes);
    qsrv_add_int(j, "total", p->total);
    qsrv_add_int(j, "upload_ms", (int64_t)p->upload_ms);
    qsrv_add_int(j, "elapsed_ms", (int64_t)p->elapsed_ms);
    qsrv_add_int(j, "resends", p->resends);
    qsrv_add_int(j, "resumes", p->resumes);
    if (p->done) {
        qsrv_add_str(j, "outcome", p->outcome);
        qsrv_add_str(j, "why", p->why);
    }
    qsrv_notify(q->srv, QSRV_TOPIC_FLASH, "flash");
}

/* ---- Notifications ---- */

void query_on_adc(struct query *q, int64_t t0_us, const struct msg_adc *m)
{
    struct qsrv_json *j;
    unsigned nch = 0;

    if (q->adc_batches++ % q->decimate != 0)
        return;
    j = qsrv_notify_params(q->srv);
    qsrv_json_object(j);
    qsrv_add_int(j, "t0_us", t0_us);
    qsrv_add_int(j, "period_us", m->period_us);
    qsrv_begin_array(j, "channels");
    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++)
        if (m->mask & (1u << ch)) {
            qsrv_add_int(j, NULL, ch);
            nch++;
        }
    qsrv_end(j);
    qsrv_add_int(j, "scans", m->scans);
    qsrv_begin_array(j, "values");
    for (unsigned s = 0; s < m->scans; s++) {
        qsrv_begin_array(j, NULL);
        for (unsigned k = 0; k < nch; k++)
            qsrv_add_int(j, NULL, msg_adc_value(m, s, k));
        qsrv_end(j);
    }
    qsrv_end(j);
    qsrv_notify(q->srv, QSRV_TOPIC_SAMPLES, "samples");
}

void query_on_heap(struct query *q, int64_t t_us, const struct msg_heap *h)
{
    struct qsrv_json *j = qsrv_notify_params(q->srv);
    struct heap_record r = {t_us, *h};

    qsrv_json_object(j);
    put_heap(j, &r);
    qsrv_notify(q->srv, QSRV_TOPIC_HEAP, "heap");
}

void query_on_alert(struct query *q, const struct alert_event *ev)
{
    struct qsrv_json *j = qsrv_notify_params(q->srv);

    qsrv_json_object(j);
    put_alert(j, ev);
    qsrv_notify(q->srv, QSRV_TOPIC_ALERTS, "alert");
}

void query_on_link(struct query *q, enum link_state st, const char *why)
{
    struct qsrv_json *j = qsrv_notify_params(q->srv);

    qsrv_json_object(j);
    qsrv_add_str(j, "state", link_state_name(st));
    qsrv_add_str(j, "why", why);
    qsrv_notify(q->srv, QSRV_TOPIC_LINK, "link");
}

void query_on_mcu_event(struct query *q, const char *event,
                        const struct msg_hello *h, uint8_t cause,
                        const struct msg_log *l)
{
    struct qsrv_json *j;
    char text[MSG_LOG_TEXT_MAX + 1];

    if (h != NULL)
        q->hello_mono_ms = mono_ms();
    j = qsrv_notify_params(q->srv);
    qsrv_json_object(j);
    qsrv_add_str(j, "event", event);
    if (h != NULL) {
        put_hello(q, j, h);
    } else if (l != NULL) {
        memcpy(text, l->text, l->text_len);
        text[l->text_len] = '\0';
        qsrv_add_int(j, "level", l->level);
        qsrv_add_str(j, "text", text);
    } else {
        qsrv_add_str(j, "cause", reset_name(cause));
    }
    qsrv_notify(q->srv, QSRV_TOPIC_MCU, "mcu");
}

/* ---- Lifetime ---- */

static void closed_one(struct query *q)
{
    q->closing--;
    maybe_done(q);
}

static void srv_closed(void *arg)
{
    closed_one(arg);
}

static void timer_closed(uv_handle_t *h)
{
    struct send_slot *s = h->data;

    closed_one(s->q);
}

int query_open(struct query **out, uv_loop_t *loop,
               const struct qsrv_config *cfg, int listen_fd,
               const struct query_deps *deps)
{
    static const struct {
        const char *name;
        int (*fn)(void *, struct qsrv_call *, const struct qsrv_params *);
        bool admin;
    } methods[] = {
        {"version", m_version, false}, {"status", m_status, false},
        {"latest", m_latest, false},   {"history", m_history, false},
        {"alerts", m_alerts, false},   {"watch", m_watch, false},
        {"unwatch", m_unwatch, false}, {"send", m_send, true},
        {"flash", m_flash, true},
    };
    struct query *q;
    int r;

    q = xcalloc(1, sizeof(*q));
    q->loop = loop;
    q->d = *deps;
    q->decimate = 1;
    r = qsrv_open(&q->srv, loop, cfg, listen_fd);
    if (r != 0) {
        free(q);
        return r;
    }
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        r = qsrv_add_method(q->srv, methods[i].name, methods[i].fn, q,
                            methods[i].admin);
        if (r != 0) {
            log_err("query: cannot register %s: %d", methods[i].name, r);
            abort();
        }
    }
    for (size_t i = 0; i < QUERY_SENDS_MAX; i++) {
        uv_timer_init(loop, &q->sends[i].timer);
        q->sends[i].timer.data = &q->sends[i];
        q->sends[i].q = q;
    }
    *out = q;
    return 0;
}

void query_close(struct query *q, void (*done)(void *arg), void *arg)
{
    if (q == NULL)
        return;
    q->stopping = true;
    q->done = done;
    q->done_arg = arg;
    q->closing = 1 + QUERY_SENDS_MAX;
    for (size_t i = 0; i < QUERY_SENDS_MAX; i++) {
        struct send_slot *s = &q->sends[i];

        if (s->call != NULL) {
            qsrv_reply_error(s->call, QSRV_ETIMEOUT, "tetherd is stopping");
            s->call = NULL;
        }
        uv_close((uv_handle_t *)&s->timer, timer_closed);
    }
    qsrv_close(q->srv, srv_closed, q);
}
