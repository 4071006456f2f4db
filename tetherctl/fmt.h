/* Pure text helpers for tetherctl: parsing durations and numbers typed on
 * the command line, and rendering bytes, ages and times for people.  No
 * I/O except fmt_selftest(), so every function can be checked by
 * `tetherctl --selftest` without a daemon. */
#ifndef TETHERCTL_FMT_H
#define TETHERCTL_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Big enough for every fmt_* output below. */
#define FMT_BUF_MAX 64

/* Parses a duration such as "500ms", "30s", "10m", "2h", "1d" or a bare
 * number of seconds into microseconds.  Returns 0, or -1 when the text is
 * empty, negative, has an unknown unit or trailing garbage, or overflows. */
int fmt_parse_duration(const char *s, int64_t *us);

/* Parses a whole decimal (or 0x-prefixed hex when hex is nonzero) number
 * in [min, max].  Returns 0, or -1 when s is not exactly such a number. */
int fmt_parse_int(const char *s, int hex, long long min, long long max,
                  long long *out);

/* "512 B", "14.5 KiB", "3.2 MiB", "1.0 GiB". */
void fmt_bytes(char *buf, size_t n, double bytes);

/* How long ago something happened: "812 ms ago", "3 s ago", "5 min ago",
 * "2 h ago", "3 d ago"; "in the future" for negative ages. */
void fmt_age_ms(char *buf, size_t n, int64_t age_ms);

/* An elapsed time such as an uptime: "812 ms", "59 s", "4 min 3 s",
 * "2 h 5 min", "3 d 4 h". */
void fmt_span_ms(char *buf, size_t n, int64_t ms);

/* Local ISO 8601 time with milliseconds and the UTC offset:
 * "2026-11-25T07:40:00.123+0100". */
void fmt_time_local(char *buf, size_t n, int64_t t_us);

/* The wall clock now, in microseconds since the Unix epoch. */
int64_t fmt_now_us(void);

/* Runs the built-in checks of the functions above, printing each failure
 * to stderr and a summary to stdout.  Returns the number of failures. */
int fmt_selftest(void);

#endif
