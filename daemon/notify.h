/* Runs the configured alert command for each alert, like Network UPS
 * Tools' NOTIFYCMD: without a shell (the command line is split on
 * whitespace; no quoting, globbing or variables), with the event in the
 * environment:
 *
 *   TETHER_EVENT      heap_low, heap_ok, heap_leak, ...
 *   TETHER_STATE      raised, cleared or event
 *   TETHER_VALUE      free heap bytes (or the reset cause)
 *   TETHER_THRESHOLD  bytes, or empty
 *   TETHER_ESTIMATE   heap_leak: seconds to exhaustion, or empty
 *   TETHER_TIME       ISO 8601 UTC, TETHER_TIME_US microseconds since epoch
 *   TETHER_MESSAGE    the human-readable line that was logged
 *
 * Commands run through libuv's process API, never blocking the loop; each
 * is killed (SIGKILL) after timeout_ms (0: no limit).  At most
 * NOTIFY_RUNNING_MAX run at once; further events are dropped and counted.
 * A command that cannot be started, exits non-zero or times out is logged.
 * Loop thread only. */
#ifndef TETHER_NOTIFY_H
#define TETHER_NOTIFY_H

#include <stdint.h>
#include <uv.h>

#include "alert.h"

#define NOTIFY_RUNNING_MAX 4
#define NOTIFY_ARGS_MAX    16

struct notify_stats {
    uint64_t started;
    uint64_t failed; /* could not start, or exited non-zero */
    uint64_t timeouts;
    uint64_t dropped; /* NOTIFY_RUNNING_MAX were running */
};

struct notify;

/* Caller owns the result; close with notify_close().  command may be NULL
 * or "" for none.  Returns 0, -ENOMEM, or -E2BIG (logged) when command is
 * CONFIG_COMMAND_MAX bytes or longer or has more than NOTIFY_ARGS_MAX
 * words. */
int notify_new(struct notify **out, uv_loop_t *loop, const char *command,
               uint32_t timeout_ms);

/* Replaces the command (SIGHUP); running ones finish.  Returns 0, or
 * -E2BIG as notify_new() and then keeps the old command. */
int notify_set_command(struct notify *n, const char *command,
                       uint32_t timeout_ms);

/* Starts the command for ev (nothing when there is none).  Returns 0, a
 * negative errno (also logged and counted: -EBUSY when dropped, -ENOMEM,
 * or why the command could not start), or -ESHUTDOWN when n is NULL or
 * closing. */
int notify_run(struct notify *n, const struct alert_event *ev);

void notify_get_stats(const struct notify *n, struct notify_stats *out);

/* Kills what still runs and closes every handle; done(arg) is called when
 * the last is closed and n is freed (at once when nothing runs, or when n
 * is NULL). */
void notify_close(struct notify *n, void (*done)(void *arg), void *arg);

#endif
