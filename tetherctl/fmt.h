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

/* Parses a point in time as people type it, relative to now_us: "now"; a
 * duration ago ("10m" is ten minutes before now_us, see
 * fmt_parse_duration()); or an ISO 8601 date and time, local
 * ("2026-11-25T07:00", "2026-11-25T07:00:00.250", "2026-11-25 07:00:00",
 * "2026-11-25" for midnight) or with a zone ("...Z", "...+01:00",
 * "...-0500").  Returns 0, or -1 when the text is none of these, names a
 * day that does not exist, or lies before the Unix epoch. */
int fmt_parse_time(const char *s, int64_t now_us, int64_t *us);

/* Parses a finite decimal number such as "2048", "-3.5" or "1e4".
 * Returns 0, or -1 on empty text, trailing garbage, hex, inf or nan. */
int fmt_parse_number(const char *s, double *out);

/* Parses a whole decimal (or 0x-prefixed hex when hex is nonzero) number
 * in [min, max].  Returns 0, or -1 when s is not exactly such a number. */
int fmt_parse_int(const char *s, int hex, long long min, long long max,
                  long long *out);

/* A duration the way fmt_parse_duration() reads it, in the largest unit
 * that divides it exactly: "1m", "30s", "2h", "1d", "500ms", "250us";
 * "-" when negative. */
void fmt_duration(char *buf, size_t n, int64_t us);

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
