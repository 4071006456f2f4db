/* Human-readable output of tetherd's query results (docs/QUERY.md):
 * aligned key/value sections and fixed-width tables, written to a stream
 * the caller names so that tests can compare the text with what is
 * expected.  The results come from the daemon and are treated as
 * untrusted: a field that is missing, of the wrong type, not finite or
 * too large to be a real figure prints as "-", and control characters in
 * strings print as "?"; nothing crashes.  Functions that print ages take
 * the wall clock (now_us, microseconds since the Unix epoch) as an
 * argument instead of reading it.  All arguments are borrowed. */
#ifndef TETHERCTL_SHOW_H
#define TETHERCTL_SHOW_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* Numbers whose magnitude passes this (2^53, the largest integer a double
 * holds exactly) are not figures tetherd sends; they print as "-". */
#define SHOW_NUM_MAX 9007199254740992.0

/* The "status" result: link, MCU, heap, store and alert sections. */
void show_status(FILE *out, const cJSON *status);

/* The "heap" object of status (or null before the first report). */
void show_heap(FILE *out, const cJSON *heap);

/* What `tetherctl heap` prints: the heap object of status, then the
 * heap history points (newest last) that were read for the window from_us
 * to to_us. */
void show_heap_report(FILE *out, const cJSON *heap, const cJSON *points,
                      int64_t from_us, int64_t to_us);

/* The "latest" result: one table per channel, newest first. */
void show_latest(FILE *out, const cJSON *latest);

/* One page of a "history" result.  The columns follow the result's
 * "series" and "bucket_us"; the header is printed before the first page
 * that has points, which *header_done (0 before the first page) tracks. */
void show_history(FILE *out, const cJSON *result, int *header_done);

/* The "alerts" result: active alerts, then the history rows. */
void show_alerts(FILE *out, const cJSON *alerts, int64_t now_us);

/* One watch notification as one line; notifications without a time of
 * their own (link, mcu) are stamped with now_us. */
void show_note(FILE *out, const cJSON *note, int64_t now_us);

/* The "send" result: "ACK" or "NACK: reason".  Returns 1 for ACK. */
int show_ack(FILE *out, const cJSON *result);

/* The "version" result on one line. */
void show_version(FILE *out, const cJSON *version);

/* ---- Firmware update (tetherctl flash, docs/UPDATE.md) ---- */

/* What the progress printer remembers between notifications. */
struct show_flash {
    int tty;        /* redraw one bar line with carriage returns */
    char state[24]; /* the last state announced */
    int tenth;      /* lines: the last tenth of the upload printed */
    int bar_open;   /* tty: the bar line has no newline yet */
};

#define SHOW_BAR_WIDTH 30 /* characters of the progress bar */

/* Starts a printer: tty for a terminal (a bar), else lines. */
void show_flash_init(struct show_flash *sf, int tty);
/* The answer to "flash": what is being flashed.  One line. */
void show_flash_started(FILE *out, const cJSON *result);
/* One "flash" notification's params as progress: a line at each state
 * change and, while uploading, a line each tenth of the way (or, on a
 * terminal, a bar redrawn in place) with speed and time left.  Speed is
 * bytes over upload_ms, so the text depends on the notification only.
 * Returns 1 when the notification carries the outcome ("done"), after
 * ending an open bar line. */
int show_flash_progress(FILE *out, struct show_flash *sf, const cJSON *params);
/* The outcome line.  Returns 1 for "confirmed" and "testing", else 0. */
int show_flash_outcome(FILE *out, const cJSON *params);

#endif
