/* Human-readable output of tetherd's query results (docs/QUERY.md) on
 * stdout: aligned key/value sections and fixed-width tables.  The results
 * come from the daemon and are treated as untrusted: a missing or
 * mistyped field prints as "-", never crashes.  All arguments are
 * borrowed. */
#ifndef TETHERCTL_SHOW_H
#define TETHERCTL_SHOW_H

#include <cjson/cJSON.h>

/* The "status" result: link, MCU, heap, store and alert sections. */
void show_status(const cJSON *status);

/* The "heap" object of status (or null before the first report). */
void show_heap(const cJSON *heap);

/* The "latest" result: one table per channel, newest first. */
void show_latest(const cJSON *latest);

/* History tables: the header once, then each page's points.  bucketed
 * selects aggregate columns for ADC points. */
void show_history_header(int heap_series, int bucketed);
void show_history_points(const cJSON *points, int heap_series, int bucketed);

/* The "alerts" result: active alerts, then the history rows. */
void show_alerts(const cJSON *alerts);

/* One watch notification as one line. */
void show_note(const cJSON *note);

/* The "send" result: "ACK" or "NACK: reason".  Returns 1 for ACK. */
int show_ack(const cJSON *result);

#endif
