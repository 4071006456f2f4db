/* The methods of the query socket (docs/QUERY.md) on top of qsrv: what
 * the daemon knows, read from the link, the rings, the alerts and the
 * store, and commands passed to the MCU with their ACK or NACK.
 *
 * Conditions it lives with:
 * - The event loop must never wait for the disk: history reads run on the
 *   libuv thread pool (uv_queue_work) and answer later.
 * - A command's answer comes back as an ACK or NACK carrying the command's
 *   sequence number, or never.  At most QUERY_SENDS_MAX commands wait at
 *   once (more answer -32006 busy); each waits at most its timeout.
 * - A firmware update ("flash") runs for minutes: the call is answered
 *   once the image has passed its checks, and its progress and outcome
 *   follow as notifications on the flash topic, to which the caller is
 *   subscribed.  While it runs, "send" answers -32006 busy.
 * - Decimation of the samples stream ("decimate") is per server, not per
 *   client: the newest watch call sets it for everyone (qsrv keeps no
 *   per-client state for its owner).
 * Loop thread only. */
#ifndef TETHER_QUERY_H
#define TETHER_QUERY_H

/* The most points one answer carries, so that the largest answer (about
 * 110 bytes a history point, 45 a latest sample) fits QSRV_OUTPUT_MAX. */
#define QUERY_POINTS_MAX 5000  /* history points per call; then paging */
#define QUERY_LATEST_MAX 16384 /* latest samples, all channels together */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "alert.h"
#include "flash.h"
#include "link.h"
#include "msg.h"
#include "qsrv.h"
#include "ring.h"
#include "store.h"

#define QUERY_PROTOCOL      1     /* "query_protocol" of version */
#define QUERY_WIRE_PROTOCOL 1     /* "wire_protocol" of version */
#define QUERY_SENDS_MAX     16    /* commands waiting for an answer */
#define QUERY_TIMEOUT_MAX   60000 /* ms: longest send timeout_ms */
#define QUERY_HISTORY_MAX   1000  /* past alert rows in one answer */
#define QUERY_JOBS_MAX      8     /* history reads in flight */

/* What the rings hold: one series per ADC channel, one of heap reports. */
struct adc_record {
    int64_t t_us;
    uint16_t value;
};

struct heap_record {
    int64_t t_us;
    struct msg_heap heap;
};

/* The daemon's state the methods read.  All borrowed: valid until
 * query_close() has finished. */
struct query_deps {
    struct link *link;
    struct store *store;
    const char *db_path;
    struct ring *const *adc_ring; /* MSG_ADC_CHANNELS_MAX rings */
    struct ring *heap_ring;
    const struct alert *alert;
    const char *device;
    struct flash *flash; /* NULL: no firmware update (-32601) */
};

struct query;

/* Opens the query server (qsrv_open() with cfg and listen_fd) and
 * registers every method.  Returns 0 or the code of qsrv_open() (see
 * qsrv.h, including the closed handle it may leave on the loop), or
 * -ENOMEM.  Caller owns the result; end it with query_close(). */
int query_open(struct query **out, uv_loop_t *loop,
               const struct qsrv_config *cfg, int listen_fd,
               const struct query_deps *deps);

/* Answers waiting sends with -32003, closes the server and waits for
 * history reads in flight; done(arg) runs (may be NULL) when everything
 * is closed, after which q is freed. */
void query_close(struct query *q, void (*done)(void *arg), void *arg);

/* Notifications for watchers; each is a no-op when nobody listens.
 * Pointers are borrowed for the call. */
void query_on_adc(struct query *q, int64_t t0_us, const struct msg_adc *m);
void query_on_heap(struct query *q, int64_t t_us, const struct msg_heap *h);
void query_on_alert(struct query *q, const struct alert_event *ev);
void query_on_link(struct query *q, enum link_state st, const char *why);
/* event: "hello" (h set), "reset" (cause) or "log" (l set). */
void query_on_mcu_event(struct query *q, const char *event,
                        const struct msg_hello *h, uint8_t cause,
                        const struct msg_log *l);
/* An ACK or NACK from the MCU: completes the send waiting for its seq. */
void query_on_answer(struct query *q, const struct msg_ack *ack);
/* A firmware update's progress or outcome: a "flash" notification. */
void query_on_flash(struct query *q, const struct flash_progress *p);

#endif
