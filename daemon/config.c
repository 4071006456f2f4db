/* tetherd's configuration: compiled-in defaults, then the INI file, then
 * the command-line flags.  See config.h and docs/CONFIG.md.
 *
 * One table (options[] below) describes every setting once: its section,
 * key, flag, type and range.  The file parser, the flag parser, --help and
 * config_print() all walk that table, so a key cannot exist in one place
 * and be missing in another.
 *
 * The file is untrusted text.  libinih splits it into sections and
 * key = value pairs, but it has quirks we guard against in our own line
 * reader (read_line) before inih sees a line:
 *   - a line longer than inih's buffer (INI_MAX_LINE, 200 bytes on
 *     Debian) would be split silently and its tail parsed as a new line;
 *     we refuse it instead;
 *   - an indented line after a key is taken as a continuation of that
 *     key's value; we strip leading blanks so indentation means nothing;
 *   - Debian's inih is built without line numbers in the handler, so the
 *     reader counts lines itself and the handler reads the count;
 *   - a line that is neither a section, a key nor a comment gets a message
 *     saying what was expected rather than inih's bare line number.
 * Only the first error is reported; parsing goes on (inih does not stop)
 * but nothing after the first error is taken.
 *
 * Flags are read with getopt_long twice: once for --config, --help,
 * --version and --check-config, and again, after the file, to apply the
 * settings, so that flags win wherever they appear on the command line.
 * A reload repeats the file and the second flag pass.
 *
 * String values are limited to VALUE_MAX characters, also when they come
 * from a flag, so that what config_print() writes always fits inih's line
 * and reads back the same. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "log.h"
#include "qsrv.h"

#define VALUE_MAX          180 /* longest string value: fits inih's 200 bytes */
#define SOCKET_PATH_MAX    107 /* sun_path holds 108 bytes with the NUL */
#define GROUP_NAME_MAX     64  /* longer than any group name useradd allows */
#define SHOWN_MAX          64  /* how much of a bad value an error quotes */
#define WHY_MAX            256 /* "expected ..., got '...'" */
#define FILE_SHOWN_MAX     120 /* file name in config_print()'s first line */
#define RING_MAX           1048576u  /* records per ring */
#define QUEUE_MAX          16777216u /* rows in the store's writer queue */
#define SIZE_MB_MAX        1048576u  /* [store] max_size_mb: 1 TiB */
#define FLASH_WINDOW_LIMIT 8u        /* flash.h FLASH_WINDOW_MAX */

enum kind {
    KIND_STRING, /* min..max is the length */
    KIND_U32,
    KIND_BAUD,
    KIND_FLOW,
    KIND_AMOUNT,
    KIND_LEVEL,
    KIND_METHOD, /* [flash] method: uart or openocd */
    KIND_ADDR,   /* a 32-bit address: 0x hexadecimal or decimal */
    KIND_RANGE,  /* "ADDR LEN", two such numbers, or empty for none */
};

struct option_def {
    const char *section;
    const char *key;
    const char *flag; /* long option, without "--" */
    const char *arg;  /* placeholder for --help */
    enum kind kind;
    size_t offset; /* of the field in struct config */
    size_t size;   /* of the field */
    uint32_t min, max;
    const char *help; /* one line for --help */
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct option_def options[] = {
    {"link", "device", "device", "PATH", KIND_STRING, FIELD(device), 1,
     VALUE_MAX, "serial device of the MCU"},
    {"link", "baud", "baud", "N", KIND_BAUD, FIELD(baud), 1200, 4000000,
     "serial speed"},
    {"link", "flow", "flow", "none|rtscts", KIND_FLOW, FIELD(rtscts), 0, 0,
     "flow control"},
    {"link", "stale_after_ms", "stale-after-ms", "MS", KIND_U32,
     FIELD(stale_after_ms), 100, 3600000,
     "link is stale after this long without a valid frame"},
    {"store", "db", "db", "PATH", KIND_STRING, FIELD(db), 1, VALUE_MAX,
     "history database (SQLite)"},
    {"store", "commit_ms", "commit-ms", "MS", KIND_U32, FIELD(commit_ms), 1,
     10000, "commit at least this often"},
    {"store", "commit_rows", "commit-rows", "N", KIND_U32, FIELD(commit_rows),
     1, QUEUE_MAX, "or after this many rows"},
    {"store", "queue_rows", "queue-rows", "N", KIND_U32, FIELD(queue_rows), 1,
     QUEUE_MAX, "rows waiting for the disk; more are dropped"},
    {"store", "raw_max_age_s", "raw-max-age-s", "S", KIND_U32,
     FIELD(raw_max_age_s), 0, UINT32_MAX,
     "raw samples kept this long (0: no limit)"},
    {"store", "raw_max_rows", "raw-max-rows", "N", KIND_U32,
     FIELD(raw_max_rows), 0, UINT32_MAX,
     "and at most this many raw rows (0: no limit)"},
    {"store", "rollup_1s_age_s", "rollup-1s-age-s", "S", KIND_U32,
     FIELD(rollup_1s_age_s), 1, UINT32_MAX, "1-second rollups kept this long"},
    {"store", "rollup_1m_age_s", "rollup-1m-age-s", "S", KIND_U32,
     FIELD(rollup_1m_age_s), 1, UINT32_MAX, "1-minute rollups kept this long"},
    {"store", "max_size_mb", "max-size-mb", "MB", KIND_U32, FIELD(max_size_mb),
     0, SIZE_MB_MAX,
     "database file at most this many MiB; then rows wait (0: no limit)"},
    {"ring", "samples", "ring-samples", "N", KIND_U32, FIELD(ring_samples), 1,
     RING_MAX, "recent samples kept in memory per ADC channel"},
    {"ring", "heap", "ring-heap", "N", KIND_U32, FIELD(ring_heap), 1, RING_MAX,
     "recent heap reports kept in memory"},
    {"alert", "heap_low", "heap-low", "BYTES|N%", KIND_AMOUNT, FIELD(heap_low),
     1, UINT32_MAX, "alert when free heap stays under this"},
    {"alert", "heap_hysteresis", "heap-hysteresis", "BYTES|N%", KIND_AMOUNT,
     FIELD(heap_hysteresis), 1, UINT32_MAX,
     "clear only above heap_low plus this"},
    {"alert", "hold_off_s", "hold-off-s", "S", KIND_U32, FIELD(hold_off_s), 0,
     86400, "a condition must last this long"},
    {"alert", "hold_off_reports", "hold-off-reports", "N", KIND_U32,
     FIELD(hold_off_reports), 1, 100000, "and over this many heap reports"},
    {"alert", "leak_window_s", "leak-window-s", "S", KIND_U32,
     FIELD(leak_window_s), 1, 86400, "heap trend over this window"},
    {"alert", "leak_horizon_s", "leak-horizon-s", "S", KIND_U32,
     FIELD(leak_horizon_s), 1, 2592000,
     "leak alert if the heap runs out sooner than this"},
    {"alert", "leak_min_reports", "leak-min-reports", "N", KIND_U32,
     FIELD(leak_min_reports), 2, ALERT_TREND_MAX,
     "reports needed in the window for a trend"},
    {"alert", "command", "alert-command", "CMD", KIND_STRING,
     FIELD(alert_command), 0, VALUE_MAX, "run for every alert (no shell)"},
    {"alert", "command_timeout_ms", "command-timeout-ms", "MS", KIND_U32,
     FIELD(alert_timeout_ms), 10, 3600000, "kill the command after this long"},
    {"socket", "path", "socket", "PATH", KIND_STRING, FIELD(socket), 1,
     SOCKET_PATH_MAX, "query socket (Unix domain)"},
    {"socket", "group", "socket-group", "GROUP", KIND_STRING,
     FIELD(socket_group), 0, GROUP_NAME_MAX,
     "group that may read the socket (empty: tetherd's own)"},
    {"socket", "admin_group", "admin-group", "GROUP", KIND_STRING,
     FIELD(admin_group), 0, GROUP_NAME_MAX,
     "group whose members may send commands (empty: root only)"},
    {"socket", "request_timeout_ms", "request-timeout-ms", "MS", KIND_U32,
     FIELD(request_timeout_ms), 100, 3600000,
     "drop a client that leaves a request line unfinished this long"},
    {"flash", "method", "flash-method", "uart|openocd", KIND_METHOD,
     FIELD(flash_method), 0, 0, "how firmware reaches the MCU"},
    {"flash", "window", "flash-window", "N", KIND_U32, FIELD(flash_window), 1,
     FLASH_WINDOW_LIMIT, "upload chunks in flight"},
    {"flash", "timeout_ms", "flash-timeout-ms", "MS", KIND_U32,
     FIELD(flash_timeout_ms), 50, 60000,
     "wait this long for the MCU's answer to an update request"},
    {"flash", "retries", "flash-retries", "N", KIND_U32, FIELD(flash_retries),
     0, 100, "timeouts in a row before an update fails"},
    {"flash", "wait_ms", "flash-wait-ms", "MS", KIND_U32, FIELD(flash_wait_ms),
     1000, 600000,
     "longest wait for an erase, a hash, a reboot or a lost link"},
    {"flash", "health_s", "health-s", "S", KIND_U32, FIELD(flash_health_s), 0,
     3600, "health gate of a new image (0: none)"},
    {"flash", "openocd_command", "openocd-command", "CMD", KIND_STRING,
     FIELD(openocd_command), 1, VALUE_MAX,
     "OpenOCD and its options (no shell)"},
    {"flash", "openocd_config", "openocd-config", "FILES", KIND_STRING,
     FIELD(openocd_config), 0, VALUE_MAX,
     "OpenOCD configuration files, each passed as -f FILE"},
    {"flash", "openocd_address", "openocd-address", "ADDR", KIND_ADDR,
     FIELD(openocd_address), 0, UINT32_MAX,
     "where OpenOCD writes the image's body"},
    {"flash", "openocd_timeout_ms", "openocd-timeout-ms", "MS", KIND_U32,
     FIELD(openocd_timeout_ms), 1000, 3600000, "kill OpenOCD after this long"},
    {"flash", "openocd_erase", "openocd-erase", "'ADDR LEN'", KIND_RANGE,
     FIELD(openocd_erase), 0, 0,
     "OpenOCD erases these bytes first (empty: nothing)"},
    {"log", "level", "log-level", "LEVEL", KIND_LEVEL, FIELD(log_level), 0, 0,
     "error, warning, info or debug"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* set_string() relies on every string value fitting its field. */
_Static_assert(VALUE_MAX < CONFIG_COMMAND_MAX && VALUE_MAX < PATH_MAX,
               "string values must fit struct config");
_Static_assert(GROUP_NAME_MAX < CONFIG_GROUP_MAX,
               "group names must fit struct config");

static const char *const sections[] = {"link",   "store", "ring", "alert",
                                       "socket", "flash", "log"};

#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

static const uint32_t bauds[] = {
    1200,    2400,    4800,    9600,    19200,   38400,   57600,
    115200,  230400,  460800,  500000,  576000,  921600,  1000000,
    1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
};

/* getopt_long codes besides 'h' and 'v'; table options are OPT_BASE + i. */
enum {
    CODE_CONFIG = 1,
    CODE_CHECK,
    CODE_VERSION,
    OPT_BASE = 256,
};

#define N_EXTRA 5 /* config, check-config, verbose, help, version */

/* Where a setting's value came from, for errors about two settings. */
enum source {
    FROM_DEFAULT,
    FROM_FILE,
    FROM_FLAG,
};

struct origin {
    enum source src;
    int line;     /* FROM_FILE */
    unsigned seq; /* order of setting: later sources win */
};

/* One load or reload in progress.  Nothing reaches the caller's config
 * until everything has been read and checked. */
struct load {
    struct config c;
    struct origin from[N_OPTIONS];
    unsigned seq;
    /* the file being read */
    FILE *f;
    int line;
    int read_errno; /* a read failed: errno */
    bool failed;    /* err holds the first error */
    char *err;
    size_t errlen;
};

/* ---- Small helpers ---- */

static void *field(struct config *c, const struct option_def *o)
{
    return (char *)c + o->offset;
}

static const void *cfield(const struct config *c, const struct option_def *o)
{
    return (const char *)c + o->offset;
}

static void set_string(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    memset(dst + n, 0, cap - n);
}

/* Copies text for an error message: cut at SHOWN_MAX, control characters
 * shown as '?' so the message stays one printable line. */
static void shown(char *dst, size_t cap, const char *text)
{
    size_t n = 0;

    for (; text[n] != '\0' && n < SHOWN_MAX && n + 4 < cap; n++) {
        unsigned char ch = (unsigned char)text[n];

        dst[n] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (text[n] != '\0' && n + 4 <= cap) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

static void why_got(char *why, size_t whylen, const char *expected,
                    const char *text)
{
    char v[SHOWN_MAX + 4];

    shown(v, sizeof(v), text);
    snprintf(why, whylen, "expected %s, got '%s'", expected, v);
}

/* Parses len characters of decimal digits, nothing else, into a uint32_t;
 * false if anything is wrong. */
static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Parses "0x" and 1 to 8 hexadecimal digits, or a decimal number, into
 * a uint32_t; false if anything is wrong. */
static bool parse_addr(const char *s, uint32_t *out)
{
    size_t len = strlen(s);
    uint32_t v = 0;

    if (len < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return parse_u32(s, len, out);
    if (len > 10)
        return false;
    for (size_t i = 2; i < len; i++) {
        char ch = s[i];
        uint32_t d;

        if (ch >= '0' && ch <= '9')
            d = (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (uint32_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (uint32_t)(ch - 'A' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Parses "ADDR LEN" (each as parse_addr(), blank separated) or nothing
 * (no range) into *out; -1 with "expected ..., got '...'" in why. */
static int parse_range(const char *text, struct config_range *out, char *why,
                       size_t whylen)
{
    char word[2][SHOWN_MAX];
    struct config_range r = {0, 0};
    const char *p = text + strspn(text, " \t");
    size_t n = 0;

    while (*p != '\0') {
        size_t len = strcspn(p, " \t");

        if (n == 2 || len >= sizeof(word[0]))
            goto syntax;
        memcpy(word[n], p, len);
        word[n++][len] = '\0';
        p += len;
        p += strspn(p, " \t");
    }
    if (n == 0) {
        *out = r;
        return 0;
    }
    if (n != 2 || !parse_addr(word[0], &r.addr) || !parse_addr(word[1], &r.len))
        goto syntax;
    if (r.len == 0) {
        why_got(why, whylen, "a length of at least 1 byte", text);
        return -1;
    }
    if (r.len - 1 > UINT32_MAX - r.addr) {
        why_got(why, whylen, "a range that ends below 4 GiB (ADDR + LEN)",
                text);
        return -1;
    }
    *out = r;
    return 0;

syntax:
    why_got(why, whylen,
            "an address and a length such as 0x08120000 0x2000, or nothing",
            text);
    return -1;
}

static const struct option_def *find_key(const char *section, const char *key)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].section, section) == 0 &&
            strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

static bool known_section(const char *section)
{
    for (size_t i = 0; i < N_SECTIONS; i++)
        if (strcmp(sections[i], section) == 0)
            return true;
    return false;
}

/* "device, baud, flow or stale_after_ms" */
static void list_keys(const char *section, char *buf, size_t cap)
{
    size_t n = 0, count = 0, seen = 0;

    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].section, section) == 0)
            count++;
    buf[0] = '\0';
    for (size_t i = 0; i < N_OPTIONS && n < cap; i++) {
        const char *sep;

        if (strcmp(options[i].section, section) != 0)
            continue;
        seen++;
        sep = seen == 1 ? "" : seen == count ? " or " : ", ";
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep, options[i].key);
    }
}

/* ---- Values ---- */

static int parse_string(const struct option_def *o, const char *text, char *why,
                        size_t whylen)
{
    size_t len = strlen(text);

    if (len < o->min) {
        snprintf(why, whylen, "expected a value, got nothing");
        return -1;
    }
    if (len > o->max) {
        snprintf(why, whylen, "expected at most %u characters, got %zu",
                 (unsigned)o->max, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            why_got(why, whylen, "no control characters", text);
            return -1;
        }
        /* The file format reads " ;" as the start of a comment. */
        if (ch == ';' &&
            (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
            why_got(why, whylen,
                    "no ';' at the start or after a blank (the file "
                    "format reads it as a comment)",
                    text);
            return -1;
        }
    }
    if (len > 0 && (text[0] == ' ' || text[0] == '\t' || text[len - 1] == ' ' ||
                    text[len - 1] == '\t')) {
        why_got(why, whylen, "no leading or trailing blanks", text);
        return -1;
    }
    return 0;
}

static int parse_amount(const char *text, struct config_amount *a, char *why,
                        size_t whylen)
{
    size_t len = strlen(text);
    uint32_t v;

    if (len > 0 && text[len - 1] == '%') {
        if (!parse_u32(text, len - 1, &v)) {
            why_got(why, whylen, "bytes or a percentage like 10%", text);
            return -1;
        }
        if (v < 1 || v > 99) {
            why_got(why, whylen, "a percentage from 1% to 99%", text);
            return -1;
        }
        a->value = v;
        a->percent = true;
        return 0;
    }
    if (len > 0 && text[0] >= '0' && text[0] <= '9' &&
        strspn(text, "0123456789") == len) {
        if (!parse_u32(text, len, &v) || v < 1) {
            why_got(why, whylen,
                    "bytes from 1 to 4294967295 or a percentage like 10%",
                    text);
            return -1;
        }
        a->value = v;
        a->percent = false;
        return 0;
    }
    why_got(why, whylen, "bytes or a percentage like 10%", text);
    return -1;
}

/* Parses text into o's field of c.  Returns 0, or -1 with "expected ...,
 * got '...'" in why. */
static int parse_value(const struct option_def *o, const char *text,
                       struct config *c, char *why, size_t whylen)
{
    char expected[96];
    uint32_t v;
    int level;

    switch (o->kind) {
    case KIND_STRING:
        if (parse_string(o, text, why, whylen) != 0)
            return -1;
        set_string(field(c, o), o->size, text);
        return 0;
    case KIND_U32:
        if (!parse_u32(text, strlen(text), &v) || v < o->min || v > o->max) {
            snprintf(expected, sizeof(expected), "a number from %u to %u",
                     (unsigned)o->min, (unsigned)o->max);
            why_got(why, whylen, expected, text);
            return -1;
        }
        *(uint32_t *)field(c, o) = v;
        return 0;
    case KIND_BAUD:
        if (parse_u32(text, strlen(text), &v))
            for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++)
                if (bauds[i] == v) {
                    *(uint32_t *)field(c, o) = v;
                    return 0;
                }
        why_got(why, whylen,
                "a standard rate from 1200 to 4000000 such as 9600, 115200 "
                "or 921600",
                text);
        return -1;
    case KIND_FLOW:
        if (strcmp(text, "none") == 0 || strcmp(text, "rtscts") == 0) {
            *(bool *)field(c, o) = strcmp(text, "rtscts") == 0;
            return 0;
        }
        why_got(why, whylen, "none or rtscts", text);
        return -1;
    case KIND_AMOUNT:
        return parse_amount(text, field(c, o), why, whylen);
    case KIND_METHOD:
        if (strcmp(text, "uart") == 0 || strcmp(text, "openocd") == 0) {
            *(int *)field(c, o) =
                text[0] == 'u' ? CONFIG_FLASH_UART : CONFIG_FLASH_OPENOCD;
            return 0;
        }
        why_got(why, whylen, "uart or openocd", text);
        return -1;
    case KIND_ADDR:
        if (!parse_addr(text, &v)) {
            why_got(why, whylen,
                    "an address such as 0x08000000 (at most 32 bits)", text);
            return -1;
        }
        *(uint32_t *)field(c, o) = v;
        return 0;
    case KIND_RANGE:
        return parse_range(text, field(c, o), why, whylen);
    case KIND_LEVEL:
        level = log_level_parse(text);
        if (level < 0) {
            why_got(why, whylen, "error, warning, info or debug", text);
            return -1;
        }
        *(int *)field(c, o) = level;
        return 0;
    }
    assert(!"unknown kind of value");
    return -1;
}

/* The value of o in c as the file format writes it. */
static void value_text(const struct option_def *o, const struct config *c,
                       char *buf, size_t cap)
{
    const struct config_amount *a;

    switch (o->kind) {
    case KIND_STRING:
        snprintf(buf, cap, "%s", (const char *)cfield(c, o));
        return;
    case KIND_U32:
    case KIND_BAUD:
        snprintf(buf, cap, "%u", (unsigned)*(const uint32_t *)cfield(c, o));
        return;
    case KIND_FLOW:
        snprintf(buf, cap, "%s",
                 *(const bool *)cfield(c, o) ? "rtscts" : "none");
        return;
    case KIND_AMOUNT:
        a = cfield(c, o);
        snprintf(buf, cap, "%u%s", (unsigned)a->value, a->percent ? "%" : "");
        return;
    case KIND_METHOD:
        snprintf(buf, cap, "%s",
                 *(const int *)cfield(c, o) == CONFIG_FLASH_OPENOCD ? "openocd"
                                                                    : "uart");
        return;
    case KIND_ADDR:
        snprintf(buf, cap, "0x%08x", (unsigned)*(const uint32_t *)cfield(c, o));
        return;
    case KIND_RANGE: {
        const struct config_range *r = cfield(c, o);

        if (r->len == 0)
            buf[0] = '\0';
        else
            snprintf(buf, cap, "0x%08x 0x%x", (unsigned)r->addr,
                     (unsigned)r->len);
        return;
    }
    case KIND_LEVEL:
        snprintf(buf, cap, "%s", log_level_name(*(const int *)cfield(c, o)));
        return;
    }
    buf[0] = '\0';
}

/* ---- Errors ---- */

static void fail(struct load *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps the first error only: later ones are often its consequences. */
static void fail(struct load *l, const char *fmt, ...)
{
    va_list ap;

    if (l->failed)
        return;
    l->failed = true;
    if (l->errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(l->err, l->errlen, fmt, ap);
    va_end(ap);
}

/* An error about the current line of the file. */
static void fail_line(struct load *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail_line(struct load *l, const char *fmt, ...)
{
    char msg[CONFIG_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fail(l, "%s:%d: %s", l->c.file, l->line, msg);
}

/* An error about setting i, named where its value came from. */
static void fail_setting(struct load *l, size_t i, const char *why)
{
    const struct option_def *o = &options[i];

    switch (l->from[i].src) {
    case FROM_FILE:
        fail(l, "%s:%d: [%s] %s: %s", l->c.file, l->from[i].line, o->section,
             o->key, why);
        break;
    case FROM_FLAG:
        fail(l, "--%s: %s", o->flag, why);
        break;
    case FROM_DEFAULT:
        fail(l, "[%s] %s (default): %s", o->section, o->key, why);
        break;
    }
}

static void set_origin(struct load *l, size_t i, enum source src, int line)
{
    l->from[i].src = src;
    l->from[i].line = line;
    l->from[i].seq = ++l->seq;
}

/* ---- The file ---- */

/* inih's reader: one line into str (num bytes), like fgets.  See the top
 * of the file for why this is not plain fgets.  A line we refuse is
 * reported and handed to inih as an empty one. */
static char *read_line(char *str, int num, void *stream)
{
    struct load *l = stream;
    size_t room = (size_t)num - 1; /* bytes before the NUL */
    size_t n = 0, skip = 0, end;
    int ch;

    assert(num > 2);
    ch = getc(l->f);
    if (ch == EOF) {
        if (ferror(l->f))
            l->read_errno = errno ? errno : EIO;
        return NULL;
    }
    l->line++;
    while (ch != EOF && ch != '\n') {
        if (n < room)
            str[n] = (char)ch;
        n++;
        ch = getc(l->f);
    }
    if (ferror(l->f)) {
        l->read_errno = errno ? errno : EIO;
        return NULL;
    }
    if (n > 0 && n <= room && str[n - 1] == '\r')
        n--;
    /* The line and its '\n' must fit before the NUL. */
    if (n + 1 > room) {
        fail_line(l, "line is longer than %d characters", num - 2);
        goto refuse;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            fail_line(l, "control character 0x%02x in the line", c);
            goto refuse;
        }
    }
    if (l->line == 1 && n >= 3 && memcmp(str, "\xef\xbb\xbf", 3) == 0)
        skip = 3;
    while (skip < n && (str[skip] == ' ' || str[skip] == '\t'))
        skip++;
    memmove(str, str + skip, n - skip);
    n -= skip;
    str[n] = '\0';
    end = n;
    while (end > 0 && (str[end - 1] == ' ' || str[end - 1] == '\t'))
        end--;

    if (end == 0 || str[0] == ';' || str[0] == '#') {
        /* blank or a comment */
    } else if (str[0] == '[') {
        char *close = memchr(str, ']', end);
        const char *rest;

        if (close == NULL) {
            fail_line(l, "expected ']' to close the section name");
            goto refuse;
        }
        *close = '\0';
        if (!known_section(str + 1)) {
            char v[SHOWN_MAX + 4];

            shown(v, sizeof(v), str + 1);
            fail_line(l,
                      "unknown section [%s] (expected [link], [store], "
                      "[ring], [alert], [socket], [flash] or [log])",
                      v);
            goto refuse;
        }
        *close = ']';
        rest = close + 1 + strspn(close + 1, " \t");
        if (*rest != '\0' && *rest != ';' && *rest != '#') {
            fail_line(l, "unexpected text after the section name");
            goto refuse;
        }
    } else {
        /* inih wants '=' or ':' before any inline comment (" ;"). */
        size_t i = 0;

        while (i < end && str[i] != '=' && str[i] != ':' &&
               !(str[i] == ';' && i > 0 &&
                 (str[i - 1] == ' ' || str[i - 1] == '\t')))
            i++;
        if (i == end || str[i] == ';') {
            char v[SHOWN_MAX + 4];

            str[end] = '\0';
            shown(v, sizeof(v), str);
            fail_line(l,
                      "expected 'key = value', '[section]' or a comment, "
                      "got '%s'",
                      v);
            goto refuse;
        }
    }
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;

refuse:
    str[0] = '\n';
    str[1] = '\0';
    return str;
}

/* inih's handler: one key = value.  Returns 1 to go on, 0 for an error
 * (inih then remembers the line, but our message is already written). */
static int on_key(void *user, const char *section, const char *name,
                  const char *value)
{
    struct load *l = user;
    const struct option_def *o;
    char why[WHY_MAX], v[SHOWN_MAX + 4];
    size_t i;

    shown(v, sizeof(v), name);
    if (section[0] == '\0') {
        fail_line(l,
                  "'%s' comes before any section; put it under [link], "
                  "[store], [ring], [alert], [socket], [flash] or [log]",
                  v);
        return 0;
    }
    if (!known_section(section))
        return 0; /* reported at the section's line */
    o = find_key(section, name);
    if (o == NULL) {
        list_keys(section, why, sizeof(why));
        fail_line(l, "[%s] %s: unknown key (expected %s)", section, v, why);
        return 0;
    }
    i = (size_t)(o - options);
    if (l->from[i].src == FROM_FILE) {
        fail_line(l, "[%s] %s: given twice (first on line %d)", o->section,
                  o->key, l->from[i].line);
        return 0;
    }
    if (parse_value(o, value, &l->c, why, sizeof(why)) != 0) {
        fail_line(l, "[%s] %s: %s", o->section, o->key, why);
        return 0;
    }
    set_origin(l, i, FROM_FILE, l->line);
    return 1;
}

/* Reads path over l->c.  A missing file is an error only if required. */
static int read_file(struct load *l, const char *path, bool required)
{
    char v[SHOWN_MAX + 4];
    int r;

    shown(v, sizeof(v), path);
    if (path[0] == '\0') {
        fail(l, "--config: expected a file name, got nothing");
        return -1;
    }
    if (strlen(path) >= sizeof(l->c.file)) {
        fail(l, "--config: expected a file name shorter than %d characters",
             PATH_MAX);
        return -1;
    }
    l->f = fopen(path, "re");
    if (l->f == NULL) {
        if (!required && errno == ENOENT) {
            l->c.file[0] = '\0';
            return 0;
        }
        fail(l, "cannot read %s: %s", v, strerror(errno));
        return -1;
    }
    set_string(l->c.file, sizeof(l->c.file), path);
    l->line = 0;
    l->read_errno = 0;
    r = ini_parse_stream(read_line, l, on_key, l);
    if (l->read_errno != 0)
        fail(l, "cannot read %s: %s", v, strerror(l->read_errno));
    else if (r == -2)
        fail(l, "%s: out of memory", v);
    else if (r != 0)
        fail(l, "%s:%d: cannot parse this line", v, r);
    fclose(l->f);
    l->f = NULL;
    return l->failed ? -1 : 0;
}

/* ---- The command line ---- */

struct scan {
    const char *config; /* --config, or NULL */
    bool check;         /* --check-config */
};

static void build_longopts(struct option *lo)
{
    size_t n = 0;

    for (size_t i = 0; i < N_OPTIONS; i++)
        lo[n++] = (struct option){options[i].flag, required_argument, NULL,
                                  OPT_BASE + (int)i};
    lo[n++] = (struct option){"config", required_argument, NULL, CODE_CONFIG};
    lo[n++] = (struct option){"check-config", no_argument, NULL, CODE_CHECK};
    lo[n++] = (struct option){"verbose", no_argument, NULL, 'v'};
    lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n++] = (struct option){"version", no_argument, NULL, CODE_VERSION};
    lo[n] = (struct option){NULL, 0, NULL, 0};
}

static void print_help(FILE *out)
{
    struct config d;
    char value[VALUE_MAX + 1];

    config_defaults(&d);
    fprintf(out,
            "Usage: tetherd [OPTION]...\n"
            "Bridges the MCU on a serial link to a history database, "
            "ring buffers\nand alerts.  Settings come from defaults, "
            "then the file, then flags.\n\n"
            "  --config FILE     read FILE (default %s, if it exists)\n"
            "  --check-config    check the configuration, print it and "
            "exit\n"
            "  -v, --verbose     log debug messages (--log-level debug)\n"
            "  -h, --help        print this help and exit\n"
            "  --version         print the version and exit\n\n"
            "Settings, each also a key of the file (see "
            "docs/CONFIG.md):\n",
            CONFIG_DEFAULT_FILE);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];

        char flag[64];

        value_text(o, &d, value, sizeof(value));
        snprintf(flag, sizeof(flag), "--%s %s", o->flag, o->arg);
        fprintf(out, "  %-28s [%s] %s = %s\n        %s\n", flag, o->section,
                o->key, value, o->help);
    }
}

/* getopt_long returned '?': an unknown option, or a value given to one
 * that takes none (--verbose=yes). */
static void bad_option(struct load *l, char **argv, const struct option *lo)
{
    const char *arg = argv[optind - 1];
    char v[SHOWN_MAX + 4];

    if (optopt == 'h' || optopt == 'v' || optopt == CODE_CHECK ||
        optopt == CODE_VERSION) {
        size_t n = strcspn(arg, "=");

        shown(v, sizeof(v), arg);
        if (n < sizeof(v))
            v[n] = '\0';
        fail(l, "option '%s' takes no value", v);
    } else if (optopt != 0) {
        fail(l, "unknown option '-%c'", optopt);
    } else {
        size_t n = strncmp(arg, "--", 2) == 0 ? strcspn(arg + 2, "=") : 0;
        int matches = 0;

        /* getopt_long takes unambiguous prefixes; say when one was not. */
        for (const struct option *o = lo; n > 0 && o->name != NULL; o++)
            if (strncmp(o->name, arg + 2, n) == 0)
                matches++;
        shown(v, sizeof(v), arg);
        fail(l, "%s option '%s' (see --help)",
             matches > 1 ? "ambiguous" : "unknown", v);
    }
}

/* Walks argv.  The first pass (apply false) takes --config,
 * --check-config, --help and --version into sc and checks the syntax; the
 * second (apply true) applies the settings over l->c.  Returns 0,
 * CONFIG_EXIT or CONFIG_EINVAL. */
static int walk_argv(struct load *l, int argc, char **argv, bool apply,
                     struct scan *sc)
{
    struct option lo[N_OPTIONS + N_EXTRA + 1];
    char why[WHY_MAX], v[SHOWN_MAX + 4];
    size_t level = (size_t)(find_key("log", "level") - options);

    if (argc < 2 || argv == NULL)
        return 0;
    build_longopts(lo);
    optind = 0; /* glibc: start over, whatever an earlier walk left */
    opterr = 0;
    for (;;) {
        /* '+': stop at the first non-option instead of permuting argv;
         * ':': report a missing value as ':'. */
        int ch = getopt_long(argc, argv, "+:hv", lo, NULL);
        const struct option_def *o;

        if (ch == -1)
            break;
        switch (ch) {
        case '?':
            bad_option(l, argv, lo);
            return CONFIG_EINVAL;
        case ':':
            shown(v, sizeof(v), argv[optind - 1]);
            fail(l, "option '%s' needs a value", v);
            return CONFIG_EINVAL;
        case CODE_CONFIG:
            if (!apply)
                sc->config = optarg;
            break;
        case CODE_CHECK:
            if (!apply)
                sc->check = true;
            break;
        case 'h':
            if (!apply) {
                print_help(stdout);
                return CONFIG_EXIT;
            }
            break;
        case CODE_VERSION:
            if (!apply) {
                printf("tetherd %s\n", TETHER_VERSION);
                return CONFIG_EXIT;
            }
            break;
        case 'v':
            if (apply) {
                l->c.log_level = LOG_PRIO_DEBUG;
                set_origin(l, level, FROM_FLAG, 0);
            }
            break;
        default:
            assert(ch >= OPT_BASE && ch < OPT_BASE + (int)N_OPTIONS);
            if (!apply)
                break;
            o = &options[ch - OPT_BASE];
            if (parse_value(o, optarg, &l->c, why, sizeof(why)) != 0) {
                fail(l, "--%s: %s", o->flag, why);
                return CONFIG_EINVAL;
            }
            set_origin(l, (size_t)(ch - OPT_BASE), FROM_FLAG, 0);
            break;
        }
    }
    if (optind < argc) {
        shown(v, sizeof(v), argv[optind]);
        fail(l, "unexpected argument '%s' (see --help)", v);
        return CONFIG_EINVAL;
    }
    return 0;
}

/* ---- Settings that depend on each other ---- */

static size_t index_of(const char *section, const char *key)
{
    const struct option_def *o = find_key(section, key);

    assert(o != NULL);
    return (size_t)(o - options);
}

/* Requires a <= b (two uint32_t settings); blames whichever was set
 * last, since that is the one the user just changed. */
static int check_order(struct load *l, size_t a, size_t b)
{
    uint32_t va = *(const uint32_t *)cfield(&l->c, &options[a]);
    uint32_t vb = *(const uint32_t *)cfield(&l->c, &options[b]);
    char why[WHY_MAX];

    if (va <= vb)
        return 0;
    if (l->from[b].seq > l->from[a].seq) {
        snprintf(why, sizeof(why), "expected at least %s (%u), got '%u'",
                 options[a].key, (unsigned)va, (unsigned)vb);
        fail_setting(l, b, why);
    } else {
        snprintf(why, sizeof(why), "expected at most %s (%u), got '%u'",
                 options[b].key, (unsigned)vb, (unsigned)va);
        fail_setting(l, a, why);
    }
    return -1;
}

/* The alert clears above heap_low + heap_hysteresis, which must be a
 * level the heap can reach.  Bytes and a percentage cannot be compared
 * without the heap's size, which only the MCU knows. */
static int check_heap(struct load *l)
{
    size_t low = index_of("alert", "heap_low");
    size_t hyst = index_of("alert", "heap_hysteresis");
    const struct config_amount *a = &l->c.heap_low;
    const struct config_amount *h = &l->c.heap_hysteresis;
    char why[WHY_MAX];
    size_t blame = l->from[hyst].seq >= l->from[low].seq ? hyst : low;
    const struct config_amount *other = blame == hyst ? a : h;
    const struct config_amount *mine = blame == hyst ? h : a;

    if (a->percent != h->percent)
        return 0;
    if (a->percent && a->value + h->value > 99) {
        snprintf(why, sizeof(why),
                 "expected at most %u%% with %s at %u%% (their sum, where "
                 "the alert clears, must stay under 100%%), got '%u%%'",
                 (unsigned)(100 - other->value - 1),
                 options[blame == hyst ? low : hyst].key,
                 (unsigned)other->value, (unsigned)mine->value);
        fail_setting(l, blame, why);
        return -1;
    }
    if (!a->percent && (uint64_t)a->value + h->value > UINT32_MAX) {
        snprintf(why, sizeof(why),
                 "expected at most %u with %s at %u (their sum must fit in "
                 "32 bits), got '%u'",
                 (unsigned)(UINT32_MAX - other->value),
                 options[blame == hyst ? low : hyst].key,
                 (unsigned)other->value, (unsigned)mine->value);
        fail_setting(l, blame, why);
        return -1;
    }
    return 0;
}

static int check_relations(struct load *l)
{
    if (check_order(l, index_of("store", "commit_rows"),
                    index_of("store", "queue_rows")) != 0 ||
        check_order(l, index_of("store", "rollup_1s_age_s"),
                    index_of("store", "rollup_1m_age_s")) != 0 ||
        check_heap(l) != 0)
        return CONFIG_EINVAL;
    return 0;
}

/* ---- The API ---- */

static void load_init(struct load *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof(*l));
    config_defaults(&l->c);
    l->err = err;
    l->errlen = errlen;
    if (errlen > 0)
        err[0] = '\0';
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    set_string(c->device, sizeof(c->device), "/dev/ttyHS1");
    c->baud = 115200;
    c->rtscts = false;
    c->stale_after_ms = 3000;
    set_string(c->db, sizeof(c->db), "/var/lib/tether/tether.db");
    c->commit_ms = 100;
    c->commit_rows = 1000;
    c->queue_rows = 65536;
    c->raw_max_age_s = 86400;
    c->raw_max_rows = 20000000;
    c->rollup_1s_age_s = 30u * 86400;
    c->rollup_1m_age_s = 365u * 86400;
    c->max_size_mb = 0;
    c->ring_samples = 4096;
    c->ring_heap = 1024;
    c->heap_low = (struct config_amount){10, true};
    c->heap_hysteresis = (struct config_amount){5, true};
    c->hold_off_s = 5;
    c->hold_off_reports = 3;
    c->leak_window_s = 60;
    c->leak_horizon_s = 600;
    c->leak_min_reports = 10;
    c->alert_timeout_ms = 10000;
    set_string(c->socket, sizeof(c->socket), "/run/tether/tetherd.sock");
    c->request_timeout_ms = QSRV_PARTIAL_MS;
    c->flash_method = CONFIG_FLASH_UART;
    c->flash_window = 4;
    c->flash_timeout_ms = 1000;
    c->flash_retries = 5;
    c->flash_wait_ms = 30000;
    c->flash_health_s = 5;
    set_string(c->openocd_command, sizeof(c->openocd_command), "openocd");
    c->openocd_address = 0x08000000u;
    c->openocd_timeout_ms = 120000;
    c->log_level = LOG_PRIO_INFO;
}

int config_load(struct config *c, struct config_cli *cli, int argc, char **argv,
                char *err, size_t errlen)
{
    struct scan sc = {NULL, false};
    struct load *l;
    int r;

    l = malloc(sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return CONFIG_EINVAL;
    }
    load_init(l, err, errlen);
    r = walk_argv(l, argc, argv, false, &sc);
    if (r != 0)
        goto done;
    r = CONFIG_EINVAL;
    if (sc.config != NULL) {
        if (read_file(l, sc.config, true) != 0)
            goto done;
    } else if (read_file(l, CONFIG_DEFAULT_FILE, false) != 0) {
        goto done;
    }
    if (walk_argv(l, argc, argv, true, NULL) != 0 || check_relations(l) != 0)
        goto done;
    *c = l->c;
    if (cli != NULL)
        cli->check_only = sc.check;
    r = 0;
done:
    free(l);
    return r;
}

int config_reload(struct config *c, int argc, char **argv, char *err,
                  size_t errlen)
{
    struct load *l;
    int r = CONFIG_EINVAL;

    l = malloc(sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return CONFIG_EINVAL;
    }
    load_init(l, err, errlen);
    if (c->file[0] != '\0') {
        if (read_file(l, c->file, true) != 0)
            goto done;
    } else if (read_file(l, CONFIG_DEFAULT_FILE, false) != 0) {
        goto done;
    }
    if (walk_argv(l, argc, argv, true, NULL) != 0 || check_relations(l) != 0)
        goto done;
    *c = l->c;
    r = 0;
done:
    free(l);
    return r;
}

void config_print(const struct config *c, FILE *out)
{
    char value[VALUE_MAX + 1];
    const char *section = "";

    fprintf(out, "# tetherd %s: the effective configuration", TETHER_VERSION);
    /* Every line must fit when the output is read back as a file. */
    if (c->file[0] != '\0' && strlen(c->file) > FILE_SHOWN_MAX) {
        fputs(" (defaults, the file, flags)", out);
    } else if (c->file[0] != '\0') {
        fputs(" (defaults, ", out);
        for (const char *p = c->file; *p != '\0'; p++)
            fputc((unsigned char)*p < 0x20 ? '?' : *p, out);
        fputs(", flags)", out);
    }
    fputs(".\n", out);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];

        if (strcmp(o->section, section) != 0) {
            section = o->section;
            fprintf(out, "\n[%s]\n", section);
        }
        value_text(o, c, value, sizeof(value));
        fprintf(out, "%s =%s%s\n", o->key, value[0] != '\0' ? " " : "", value);
    }
}

uint32_t config_amount_bytes(const struct config_amount *a, uint32_t total)
{
    assert(a != NULL);
    if (!a->percent)
        return a->value;
    return (uint32_t)((uint64_t)total * a->value / 100);
}
