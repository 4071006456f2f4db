/* Text helpers for tetherctl.  See fmt.h.
 *
 * Everything here works on caller-provided buffers and never allocates, so
 * the table printers can call it per cell.  Command-line text is untrusted
 * in the mild sense that a typo must give a usage error rather than a
 * silently wrong number: parsers reject empty strings, signs where none
 * belong, trailing garbage and overflow instead of taking what strtoll()
 * managed to read. */
#include "fmt.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *suffix;
    int64_t us;
} units[] = {
    {"us", 1},           {"ms", 1000},         {"s", 1000000},
    {"", 1000000},       {"m", 60000000},      {"min", 60000000},
    {"h", 3600000000LL}, {"d", 86400000000LL},
};

int fmt_parse_duration(const char *s, int64_t *us)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (v > (unsigned long long)(INT64_MAX / units[i].us))
            return -1;
        *us = (int64_t)v * units[i].us;
        return 0;
    }
    return -1;
}

/* Reads exactly n decimal digits at *p into *v, advancing *p. */
static int digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9')
            return -1;
        *v = *v * 10 + (c - '0');
    }
    *p += n;
    return 0;
}

/* Reads a zone suffix at p: "", "Z", "+hh", "+hhmm", "+hh:mm" (or "-").
 * *utc says whether a zone was given at all; *offset_s is east of UTC. */
static int zone(const char *p, int *utc, long *offset_s)
{
    int sign, hh, mm = 0;

    *utc = 0;
    *offset_s = 0;
    if (*p == '\0')
        return 0;
    *utc = 1;
    if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0)
        return 0;
    if (*p != '+' && *p != '-')
        return -1;
    sign = *p++ == '-' ? -1 : 1;
    if (digits(&p, 2, &hh) != 0)
        return -1;
    if (*p == ':')
        p++;
    if (*p != '\0' && digits(&p, 2, &mm) != 0)
        return -1;
    if (*p != '\0' || hh > 23 || mm > 59)
        return -1;
    *offset_s = sign * (hh * 3600L + mm * 60L);
    return 0;
}

/* An ISO 8601 date and time; see fmt_parse_time(). */
static int parse_iso(const char *s, int64_t *us)
{
    const char *p = s;
    struct tm tm, back;
    int y, mo, d, h = 0, mi = 0, sec = 0, utc;
    long frac_us = 0, offset_s;
    time_t t;

    if (digits(&p, 4, &y) != 0 || *p++ != '-' || digits(&p, 2, &mo) != 0 ||
        *p++ != '-' || digits(&p, 2, &d) != 0)
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) != 0 || *p++ != ':' || digits(&p, 2, &mi) != 0)
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) != 0)
                return -1;
            if (*p == '.' || *p == ',') {
                long scale = 100000;

                p++;
                if (*p < '0' || *p > '9')
                    return -1;
                /* Digits past microseconds are read and dropped. */
                for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
                    frac_us += (*p - '0') * scale;
            }
        }
    } else if (*p != '\0') {
        return -1;
    }
    if (zone(p, &utc, &offset_s) != 0)
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 59)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    back = tm;
    t = utc ? timegm(&back) : mktime(&back);
    /* Both normalise 31 April into 1 May; such a day does not exist.  A
     * local time in a daylight-saving gap moves by the gap and stays. */
    if (back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon ||
        back.tm_mday != tm.tm_mday)
        return -1;
    t -= offset_s;
    if (t < 0)
        return -1;
    *us = (int64_t)t * 1000000 + frac_us;
    return 0;
}

int fmt_parse_time(const char *s, int64_t now_us, int64_t *us)
{
    int64_t ago;

    if (s == NULL)
        return -1;
    if (strcmp(s, "now") == 0) {
        *us = now_us;
        return 0;
    }
    if (fmt_parse_duration(s, &ago) == 0) {
        if (ago > now_us)
            return -1;
        *us = now_us - ago;
        return 0;
    }
    return parse_iso(s, us);
}

int fmt_parse_number(const char *s, double *out)
{
    char *end;
    double v;

    /* strtod() also takes hex, "inf", "nan" and leading blanks: none of
     * those is a threshold anybody means to type. */
    if (s == NULL || *s == '\0' || strspn(s, "0123456789.eE+-") != strlen(s))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int fmt_parse_int(const char *s, int hex, long long min, long long max,
                  long long *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
        return -1;
    errno = 0;
    if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        v = strtoll(s, &end, 16);
    else
        v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void fmt_duration(char *buf, size_t n, int64_t us)
{
    static const struct {
        const char *suffix;
        int64_t us;
    } big[] = {
        {"d", 86400000000LL}, {"h", 3600000000LL}, {"m", 60000000},
        {"s", 1000000},       {"ms", 1000},        {"us", 1},
    };
    size_t i = 0;

    if (us < 0) {
        snprintf(buf, n, "-");
        return;
    }
    if (us == 0) {
        snprintf(buf, n, "0s");
        return;
    }
    while (us % big[i].us != 0)
        i++;
    snprintf(buf, n, "%" PRId64 "%s", us / big[i].us, big[i].suffix);
}

void fmt_bytes(char *buf, size_t n, double bytes)
{
    static const char *const names[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    size_t u = 0;

    if (bytes < 1024.0 && bytes > -1024.0) {
        snprintf(buf, n, "%.0f B", bytes);
        return;
    }
    v /= 1024.0;
    while ((v >= 1024.0 || v <= -1024.0) &&
           u + 1 < sizeof(names) / sizeof(names[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, n, "%.1f %s", v, names[u]);
}

void fmt_age_ms(char *buf, size_t n, int64_t age_ms)
{
    if (age_ms < 0)
        snprintf(buf, n, "in the future");
    else if (age_ms < 1000)
        snprintf(buf, n, "%" PRId64 " ms ago", age_ms);
    else if (age_ms < 60000)
        snprintf(buf, n, "%" PRId64 " s ago", age_ms / 1000);
    else if (age_ms < 3600000)
        snprintf(buf, n, "%" PRId64 " min ago", age_ms / 60000);
    else if (age_ms < 86400000)
        snprintf(buf, n, "%" PRId64 " h ago", age_ms / 3600000);
    else
        snprintf(buf, n, "%" PRId64 " d ago", age_ms / 86400000);
}

void fmt_span_ms(char *buf, size_t n, int64_t ms)
{
    int64_t s = ms / 1000;

    if (ms < 0)
        snprintf(buf, n, "-");
    else if (ms < 1000)
        snprintf(buf, n, "%" PRId64 " ms", ms);
    else if (s < 60)
        snprintf(buf, n, "%" PRId64 " s", s);
    else if (s < 3600)
        snprintf(buf, n, "%" PRId64 " min %" PRId64 " s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, n, "%" PRId64 " h %" PRId64 " min", s / 3600,
                 s % 3600 / 60);
    else
        snprintf(buf, n, "%" PRId64 " d %" PRId64 " h", s / 86400,
                 s % 86400 / 3600);
}

void fmt_time_local(char *buf, size_t n, int64_t t_us)
{
    /* Floor division so times before 1970 still get a sane fraction. */
    int64_t sec = t_us / 1000000;
    int64_t frac = t_us % 1000000;
    time_t tt;
    struct tm tm;
    char date[32], zone[8];

    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    tt = (time_t)sec;
    if (localtime_r(&tt, &tm) == NULL) {
        snprintf(buf, n, "%" PRId64, t_us);
        return;
    }
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof(zone), "%z", &tm);
    snprintf(buf, n, "%s.%03d%s", date, (int)(frac / 1000), zone);
}

int64_t fmt_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- self-test ---- */

static int failures;
static int checks;

static void check_str(const char *what, const char *got, const char *want)
{
    checks++;
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "selftest: %s: got \"%s\", want \"%s\"\n", what, got,
                want);
        failures++;
    }
}

static void check_duration(const char *s, int ok, int64_t want)
{
    int64_t got = -1;
    int rc = fmt_parse_duration(s, &got);

    checks++;
    if ((rc == 0) != ok || (ok && got != want)) {
        fprintf(stderr,
                "selftest: duration \"%s\": rc %d value %" PRId64
                ", want %s %" PRId64 "\n",
                s, rc, got, ok ? "ok" : "error", want);
        failures++;
    }
}

static void check_int(const char *s, int hex, long long min, long long max,
                      int ok, long long want)
{
    long long got = -1;
    int rc = fmt_parse_int(s, hex, min, max, &got);

    checks++;
    if ((rc == 0) != ok || (ok && got != want)) {
        fprintf(stderr, "selftest: int \"%s\": rc %d value %lld, want %s\n", s,
                rc, got, ok ? "ok" : "error");
        failures++;
    }
}

static void check_time(const char *s, int64_t now, int ok, int64_t want)
{
    int64_t got = -1;
    int rc = fmt_parse_time(s, now, &got);

    checks++;
    if ((rc == 0) != ok || (ok && got != want)) {
        fprintf(stderr,
                "selftest: time \"%s\": rc %d value %" PRId64
                ", want %s %" PRId64 "\n",
                s, rc, got, ok ? "ok" : "error", want);
        failures++;
    }
}

static void check_number(const char *s, int ok, double want)
{
    double got = -1;
    int rc = fmt_parse_number(s, &got);

    checks++;
    if ((rc == 0) != ok || (ok && got != want)) {
        fprintf(stderr, "selftest: number \"%s\": rc %d value %g, want %s\n", s,
                rc, got, ok ? "ok" : "error");
        failures++;
    }
}

int fmt_selftest(void)
{
    char b[FMT_BUF_MAX];

    failures = 0;
    checks = 0;

    check_duration("10m", 1, 600000000LL);
    check_duration("2h", 1, 7200000000LL);
    check_duration("1d", 1, 86400000000LL);
    check_duration("30s", 1, 30000000LL);
    check_duration("45", 1, 45000000LL);
    check_duration("500ms", 1, 500000LL);
    check_duration("250us", 1, 250LL);
    check_duration("5min", 1, 300000000LL);
    check_duration("0s", 1, 0);
    check_duration("", 0, 0);
    check_duration("m", 0, 0);
    check_duration("-5m", 0, 0);
    check_duration("+5m", 0, 0);
    check_duration(" 5m", 0, 0);
    check_duration("5x", 0, 0);
    check_duration("5mm", 0, 0);
    check_duration("1.5h", 0, 0);
    check_duration("99999999999999999999d", 0, 0);
    check_duration("200000000d", 0, 0);

    check_int("42", 0, 0, 100, 1, 42);
    check_int("-3", 0, -10, 10, 1, -3);
    check_int("0x0f", 1, 0, 255, 1, 15);
    check_int("0x0f", 0, 0, 255, 0, 0);
    check_int("101", 0, 0, 100, 0, 0);
    check_int("12abc", 0, 0, 100, 0, 0);
    check_int("", 0, 0, 100, 0, 0);
    check_int("+1", 0, 0, 100, 0, 0);
    check_int("99999999999999999999", 0, 0, LLONG_MAX, 0, 0);

    fmt_bytes(b, sizeof(b), 0);
    check_str("bytes 0", b, "0 B");
    fmt_bytes(b, sizeof(b), 1023);
    check_str("bytes 1023", b, "1023 B");
    fmt_bytes(b, sizeof(b), 1024);
    check_str("bytes 1024", b, "1.0 KiB");
    fmt_bytes(b, sizeof(b), 14848);
    check_str("bytes 14848", b, "14.5 KiB");
    fmt_bytes(b, sizeof(b), 3.5 * 1024 * 1024);
    check_str("bytes 3.5 MiB", b, "3.5 MiB");
    fmt_bytes(b, sizeof(b), 2.0 * 1024 * 1024 * 1024);
    check_str("bytes 2 GiB", b, "2.0 GiB");

    fmt_age_ms(b, sizeof(b), 812);
    check_str("age 812", b, "812 ms ago");
    fmt_age_ms(b, sizeof(b), 3400);
    check_str("age 3400", b, "3 s ago");
    fmt_age_ms(b, sizeof(b), 5 * 60000 + 1);
    check_str("age 5 min", b, "5 min ago");
    fmt_age_ms(b, sizeof(b), 2 * 3600000LL);
    check_str("age 2 h", b, "2 h ago");
    fmt_age_ms(b, sizeof(b), 3 * 86400000LL);
    check_str("age 3 d", b, "3 d ago");
    fmt_age_ms(b, sizeof(b), -5);
    check_str("age negative", b, "in the future");

    fmt_span_ms(b, sizeof(b), 61234);
    check_str("span 61234", b, "1 min 1 s");
    fmt_span_ms(b, sizeof(b), 90061000LL);
    check_str("span 1 d", b, "1 d 1 h");
    fmt_span_ms(b, sizeof(b), 7500000);
    check_str("span 2 h", b, "2 h 5 min");

    fmt_duration(b, sizeof(b), 60000000);
    check_str("duration 1m", b, "1m");
    fmt_duration(b, sizeof(b), 90000000);
    check_str("duration 90s", b, "90s");
    fmt_duration(b, sizeof(b), 7200000000LL);
    check_str("duration 2h", b, "2h");
    fmt_duration(b, sizeof(b), 86400000000LL);
    check_str("duration 1d", b, "1d");
    fmt_duration(b, sizeof(b), 500000);
    check_str("duration 500ms", b, "500ms");
    fmt_duration(b, sizeof(b), 1500);
    check_str("duration 1500us", b, "1500us");
    fmt_duration(b, sizeof(b), 0);
    check_str("duration 0", b, "0s");
    fmt_duration(b, sizeof(b), -1);
    check_str("duration negative", b, "-");

    check_number("2048", 1, 2048);
    check_number("-3.5", 1, -3.5);
    check_number("1e4", 1, 10000);
    check_number("", 0, 0);
    check_number(" 5", 0, 0);
    check_number("0x10", 0, 0);
    check_number("inf", 0, 0);
    check_number("nan", 0, 0);
    check_number("1e999", 0, 0);
    check_number("12abc", 0, 0);
    check_number("1.5.5", 0, 0);

    /* Local time depends on TZ; pin it so the expected text is fixed. */
    setenv("TZ", "UTC0", 1);
    tzset();
    check_time("now", 1764045600000000LL, 1, 1764045600000000LL);
    check_time("10m", 1764045600000000LL, 1, 1764045000000000LL);
    check_time("99999d", 1764045600000000LL, 0, 0);
    check_time("2025-11-25T04:40:00", 0, 1, 1764045600000000LL);
    check_time("2025-11-25T04:40:00Z", 0, 1, 1764045600000000LL);
    check_time("2025-11-25 04:40", 0, 1, 1764045600000000LL);
    check_time("2025-11-25T04:40:00.123456Z", 0, 1, 1764045600123456LL);
    check_time("2025-11-25T05:40:00+01:00", 0, 1, 1764045600000000LL);
    check_time("2025-11-25T00:10-0430", 0, 1, 1764045600000000LL);
    check_time("2025-11-25", 0, 1, 1764028800000000LL);
    check_time("2024-02-29T00:00Z", 0, 1, 1709164800000000LL);
    check_time("2025-02-29T00:00Z", 0, 0, 0);
    check_time("2025-04-31", 0, 0, 0);
    check_time("2025-13-01", 0, 0, 0);
    check_time("2025-11-25T24:00", 0, 0, 0);
    check_time("2025-11-25T4:40", 0, 0, 0);
    check_time("2025-11-25T04:40:00X", 0, 0, 0);
    check_time("2025-11-25T04:40:00+", 0, 0, 0);
    check_time("2025-11-25T04:40:00.", 0, 0, 0);
    check_time("1969-12-31T23:00:00Z", 0, 0, 0);
    check_time("", 0, 0, 0);
    fmt_time_local(b, sizeof(b), 1764045600123456LL);
    check_str("time utc", b, "2025-11-25T04:40:00.123+0000");
    fmt_time_local(b, sizeof(b), -1000);
    check_str("time before epoch", b, "1969-12-31T23:59:59.999+0000");
    setenv("TZ", "CET-1", 1);
    tzset();
    fmt_time_local(b, sizeof(b), 1764045600123456LL);
    check_str("time cet", b, "2025-11-25T05:40:00.123+0100");
    check_time("2025-11-25T05:40:00", 0, 1, 1764045600000000LL);
    check_time("2025-11-25T04:40:00Z", 0, 1, 1764045600000000LL);

    printf("selftest: %d checks, %d failed\n", checks, failures);
    return failures;
}
