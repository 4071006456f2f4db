/* The link to the MCU: the serial device in the event loop, frames in and
 * out, and the link's state.
 *
 *   disconnected -> connected   the device opened and a valid frame came
 *   connected    -> stale       no valid frame for stale_after_ms
 *   stale        -> connected   a valid frame came
 *   any          -> disconnected  the device is gone or unreadable
 *
 * While disconnected the link retries opening the device, every 100 ms at
 * first and backing off to 1 s, so it reattaches within a second of the
 * device coming back and never spins.  On connecting it expects HELLO and
 * asks for one (GET_HELLO) if none came within LINK_HELLO_WAIT_MS.  An MCU
 * reset is recognised by a HELLO with a new uptime, by seq going back to 0
 * or by uptime going backwards, and reported once with the reset cause.
 * Reads are batched: each wake-up reads up to LINK_READ_MAX bytes.  The
 * device may be released to another program and taken back
 * (link_release(), link_reacquire()).
 * Loop thread only. */
#ifndef TETHER_LINK_H
#define TETHER_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "frame.h"
#include "msg.h"
#include "update.h"

#define LINK_READ_MAX      4096u
#define LINK_HELLO_WAIT_MS 500u
#define LINK_RETRY_MIN_MS  100u
#define LINK_RETRY_MAX_MS  1000u

#define LINK_ENOTCONN -107 /* link_send: no device open (-ENOTCONN) */

enum link_state {
    LINK_DISCONNECTED,
    LINK_CONNECTED,
    LINK_STALE,
};

struct link_config {
    const char *device; /* borrowed for the link's lifetime */
    uint32_t baud;
    bool rtscts;
    uint32_t stale_after_ms;
};

struct link_stats {
    uint64_t bytes_in;
    uint64_t frames_ok;
    uint64_t crc_errors;
    uint64_t cobs_errors;
    uint64_t oversize;
    uint64_t version_errors;
    uint64_t discarded;
    uint64_t seq_gaps;       /* frames missing by sequence number */
    uint64_t bad_payloads;   /* good frames whose payload did not decode */
    uint64_t mcu_tx_dropped; /* as the MCU reports in STATS */
    uint64_t mcu_resets;
    uint64_t reconnects;
    int64_t last_frame_age_ms; /* since the newest good frame; -1: none */
};

/* What the link tells its owner.  Timestamps are wall-clock microseconds,
 * already mapped from MCU time.  Pointers are borrowed for the call. */
struct link_events {
    void (*state)(void *ctx, enum link_state st, const char *why);
    void (*hello)(void *ctx, int64_t t_us, const struct msg_hello *h);
    void (*reset)(void *ctx, int64_t t_us, uint8_t cause);
    /* t0_us is the wall time of scan 0; scan k is t0_us + k * period. */
    void (*adc)(void *ctx, int64_t t0_us, uint16_t seq,
                const struct msg_adc *a);
    void (*heap)(void *ctx, int64_t t_us, uint16_t seq,
                 const struct msg_heap *h);
    void (*log)(void *ctx, int64_t t_us, const struct msg_log *l);
    void (*stats)(void *ctx, int64_t t_us, const struct msg_stats *s);
    /* ACK (error 0) or NACK for a command sent with link_send(). */
    void (*answer)(void *ctx, const struct msg_ack *a);
    /* UPD_STATUS, the answer to a firmware-update request (update.h). */
    void (*upd_status)(void *ctx, const struct msg_upd_status *s);
};

struct link;

/* Caller owns the result; close with link_close().  Starts trying to open
 * the device at once.  Returns 0 or -ENOMEM. */
int link_new(struct link **out, uv_loop_t *loop, const struct link_config *cfg,
             const struct link_events *ev, void *ctx);

/* Stops reading, closes the device and its handles; calls done(arg) when
 * the last handle is closed, after which the link is freed. */
void link_close(struct link *l, void (*done)(void *arg), void *arg);

/* Sends one command frame; *seq gets its sequence number.  Returns 0,
 * LINK_ENOTCONN, or a negative errno. */
int link_send(struct link *l, uint8_t type, const uint8_t *payload, size_t len,
              uint16_t *seq);

/* Lends the device to another program (OpenOCD flashing the MCU): closes
 * it, goes disconnected with why, and stops reopening it until
 * link_reacquire().  No-op when released already. */
void link_release(struct link *l, const char *why);
/* Starts reopening the device at once. */
void link_reacquire(struct link *l);

enum link_state link_state(const struct link *l);
const char *link_state_name(enum link_state st);
void link_get_stats(const struct link *l, struct link_stats *out);
/* The last HELLO, or NULL before the first. */
const struct msg_hello *link_hello(const struct link *l);

#endif
