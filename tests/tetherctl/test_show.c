/* tetherctl's output checked against expected text.
 *
 * Each case feeds a canned query result (tests/data/tetherctl/<input>,
 * shaped as daemon/query.c writes it) to the printer a command uses and
 * compares what it writes with tests/data/tetherctl/<name>.txt byte for
 * byte, the way gpsd checks its decoders against .chk files.  A mismatch
 * names the first differing line and leaves the whole output in a
 * temporary file for `diff -u`.  Times print in local time, so TZ is
 * pinned to UTC; ages are relative to a fixed now_us.  Malformed results
 * are checked twice: a few by expected text, and every canned result with
 * each of its values replaced in turn by values of the wrong type, out of
 * range or not finite, which must never crash (the runner also runs under
 * AddressSanitizer and UBSan) nor print nan, inf, huge numbers or control
 * characters. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "mkimage.h"
#include "msg.h"
#include "plot.h"
#include "sha256.h"
#include "show.h"

#define FILE_MAX   (1024 * 1024) /* largest data file read */
#define KEY_MAX    256           /* a file name or a JSON key */
#define LINE_SHOWN 200           /* of a mismatching line, in the message */
#define NOTES_MAX  64            /* notifications in a .jsonl file */
#define POINTS_MAX 4096

/* 2025-11-25T04:40:00Z: the canned results are around this time. */
#define T0_US 1764045600000000LL

/* ---- files ---- */

static const char *data_dir(void)
{
    const char *d = getenv("TETHER_TEST_DATA");

    return d != NULL && d[0] != '\0' ? d : "tests/data";
}

/* Reads tests/data/tetherctl/<name>; caller frees.  A missing file
 * reads as empty when missing_ok (an expected text not written yet). */
static char *read_file(const char *name, size_t *len, int missing_ok)
{
    char path[PATH_MAX];
    char *buf = malloc(FILE_MAX + 1);
    FILE *f;

    ck_assert_ptr_nonnull(buf);
    snprintf(path, sizeof(path), "%s/tetherctl/%s", data_dir(), name);
    f = fopen(path, "rb");
    if (f == NULL && errno == ENOENT && missing_ok) {
        buf[0] = '\0';
        *len = 0;
        return buf;
    }
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    *len = fread(buf, 1, FILE_MAX, f);
    ck_assert_msg(feof(f), "%s is larger than %d bytes", path, FILE_MAX);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

static char *read_data(const char *name, size_t *len)
{
    return read_file(name, len, 0);
}

static cJSON *load(const char *name)
{
    size_t len;
    char *text = read_data(name, &len);
    cJSON *j = cJSON_Parse(text);

    ck_assert_msg(j != NULL, "%s is not JSON", name);
    free(text);
    return j;
}

/* Output of one printer, captured in memory. */
struct capture {
    FILE *f;
    char *buf;
    size_t len;
};

static FILE *capture_start(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    ck_assert_ptr_nonnull(c->f);
    return c->f;
}

static void capture_end(struct capture *c)
{
    ck_assert_int_eq(fclose(c->f), 0);
    c->f = NULL;
}

/* Keeps got where a person can diff it with the expected file. */
static void keep_output(const char *name, const char *got, size_t len,
                        char *path, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX / 2];
    FILE *f;

    snprintf(dir, sizeof(dir), "%s/tetherctl-test.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        snprintf(path, n, "(not kept: %s)", strerror(errno));
        return;
    }
    snprintf(path, n, "%s/%s.txt", dir, name);
    f = fopen(path, "wb");
    if (f == NULL) {
        snprintf(path, n, "(not kept: %s)", strerror(errno));
        return;
    }
    fwrite(got, 1, len, f);
    fclose(f);
}

/* Copies line number lineno (from 1) of text into buf, "<end>" past the
 * last one. */
static void nth_line(const char *text, size_t len, int lineno, char *buf,
                     size_t n)
{
    size_t at = 0;

    for (int k = 1; k < lineno && at < len; k++) {
        const char *nl = memchr(text + at, '\n', len - at);

        at = nl != NULL ? (size_t)(nl - text) + 1 : len;
    }
    if (at >= len) {
        snprintf(buf, n, "<end>");
        return;
    }
    {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t l = nl != NULL ? (size_t)(nl - text) - at : len - at;

        snprintf(buf, n, "\"%.*s\"%s", (int)(l < LINE_SHOWN ? l : LINE_SHOWN),
                 text + at, nl == NULL ? " (no newline)" : "");
    }
}

/* Compares got with tests/data/tetherctl/<name>.txt. */
static void expect_text(const char *name, const char *got, size_t len)
{
    char file[KEY_MAX], want_line[LINE_SHOWN + 32];
    char got_line[LINE_SHOWN + 32];
    char kept[PATH_MAX];
    size_t wlen, at = 0;
    char *want;
    int lineno = 1;

    snprintf(file, sizeof(file), "%s.txt", name);
    want = read_file(file, &wlen, 1);
    if (wlen == len && memcmp(want, got, len) == 0) {
        free(want);
        return;
    }
    while (at < len && at < wlen && got[at] == want[at]) {
        if (got[at] == '\n')
            lineno++;
        at++;
    }
    nth_line(want, wlen, lineno, want_line, sizeof(want_line));
    nth_line(got, len, lineno, got_line, sizeof(got_line));
    keep_output(name, got, len, kept, sizeof(kept));
    free(want);
    ck_abort_msg("%s differs from %s/tetherctl/%s at line %d:\n"
                 "  want: %s\n  got:  %s\n"
                 "  diff -u %s/tetherctl/%s %s",
                 name, data_dir(), file, lineno, want_line, got_line,
                 data_dir(), file, kept);
}

static void expect_capture(const char *name, struct capture *c)
{
    capture_end(c);
    expect_text(name, c->buf, c->len);
    free(c->buf);
}

/* ---- printers of one result ---- */

static void check_printer(const char *name, const char *input,
                          void (*show)(FILE *, const cJSON *))
{
    struct capture c;
    cJSON *j = load(input);

    show(capture_start(&c), j);
    expect_capture(name, &c);
    cJSON_Delete(j);
}

START_TEST(test_status_prints_every_section_and_the_threshold)
{
    check_printer("status", "status.json", show_status);
}
END_TEST

START_TEST(test_status_before_hello_says_no_hello_and_none_yet)
{
    check_printer("status-boot", "status-boot.json", show_status);
}
END_TEST

START_TEST(test_latest_prints_a_table_per_channel_newest_first)
{
    check_printer("latest", "latest.json", show_latest);
}
END_TEST

START_TEST(test_latest_warns_when_the_data_is_stale)
{
    check_printer("latest-stale", "latest-stale.json", show_latest);
}
END_TEST

START_TEST(test_latest_without_samples_says_so)
{
    check_printer("latest-none", "latest-none.json", show_latest);
}
END_TEST

static void show_ack_void(FILE *out, const cJSON *j)
{
    (void)show_ack(out, j);
}

START_TEST(test_send_prints_ack_and_returns_one)
{
    struct capture c;
    cJSON *j = load("send-ack.json");

    ck_assert_int_eq(show_ack(capture_start(&c), j), 1);
    expect_capture("send-ack", &c);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_send_prints_nack_with_its_reason_and_returns_zero)
{
    struct capture c;
    cJSON *j = load("send-nack.json");

    ck_assert_int_eq(show_ack(capture_start(&c), j), 0);
    expect_capture("send-nack", &c);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_version_prints_daemon_and_protocol_versions)
{
    check_printer("version", "version.json", show_version);
}
END_TEST

/* ---- history, heap ---- */

static void check_history(const char *name, const char *input)
{
    struct capture c;
    cJSON *j = load(input);
    int header = 0;

    show_history(capture_start(&c), j, &header);
    expect_capture(name, &c);
    ck_assert_int_eq(header, 1);
    cJSON_Delete(j);
}

START_TEST(test_history_of_raw_adc_prints_time_channel_value)
{
    check_history("history-adc-raw", "history-adc-raw.json");
}
END_TEST

START_TEST(test_history_of_adc_buckets_prints_min_avg_max_count)
{
    check_history("history-adc-1m", "history-adc-1m.json");
}
END_TEST

START_TEST(test_history_of_heap_prints_the_free_columns)
{
    check_history("history-heap", "history-heap.json");
}
END_TEST

START_TEST(test_history_prints_its_header_once_over_pages)
{
    struct capture c;
    cJSON *j = load("history-heap.json");
    cJSON *empty = load("history-empty.json");
    FILE *out = capture_start(&c);
    int header = 0;

    /* An empty first page must not print the header either. */
    show_history(out, empty, &header);
    ck_assert_int_eq(header, 0);
    show_history(out, j, &header);
    show_history(out, j, &header);
    capture_end(&c);
    {
        size_t one;
        char *first = read_data("history-heap.txt", &one);
        const char *nl = strchr(first, '\n');
        size_t head = (size_t)(nl - first) + 1;

        /* header + rows + rows: the expected text, its rows again. */
        ck_assert_uint_eq(c.len, one + one - head);
        ck_assert_int_eq(memcmp(c.buf, first, one), 0);
        ck_assert_int_eq(memcmp(c.buf + one, first + head, one - head), 0);
        free(first);
    }
    free(c.buf);
    cJSON_Delete(j);
    cJSON_Delete(empty);
}
END_TEST

START_TEST(test_heap_prints_the_report_and_recent_rows)
{
    struct capture c;
    cJSON *status = load("status.json");
    cJSON *hist = load("history-heap-raw.json");

    show_heap_report(capture_start(&c),
                     cJSON_GetObjectItemCaseSensitive(status, "heap"),
                     cJSON_GetObjectItemCaseSensitive(hist, "points"),
                     T0_US - 600000000LL, T0_US + 1000000);
    expect_capture("heap", &c);
    cJSON_Delete(status);
    cJSON_Delete(hist);
}
END_TEST

START_TEST(test_heap_before_any_report_says_none)
{
    struct capture c;
    cJSON *status = load("status-boot.json");
    cJSON *hist = load("history-empty.json");

    show_heap_report(capture_start(&c),
                     cJSON_GetObjectItemCaseSensitive(status, "heap"),
                     cJSON_GetObjectItemCaseSensitive(hist, "points"),
                     T0_US - 600000000LL, T0_US);
    expect_capture("heap-none", &c);
    cJSON_Delete(status);
    cJSON_Delete(hist);
}
END_TEST

/* ---- alerts, watch ---- */

START_TEST(test_alerts_prints_active_ones_with_age_then_history)
{
    struct capture c;
    cJSON *j = load("alerts.json");

    show_alerts(capture_start(&c), j, T0_US);
    expect_capture("alerts", &c);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_alerts_without_any_say_none)
{
    struct capture c;
    cJSON *j = load("alerts-none.json");

    show_alerts(capture_start(&c), j, T0_US);
    expect_capture("alerts-none", &c);
    cJSON_Delete(j);
}
END_TEST

/* Parses each line of a .jsonl file into notes; returns how many. */
static int load_lines(const char *name, cJSON **notes, int cap)
{
    size_t len;
    char *text = read_data(name, &len);
    char *save = NULL;
    int n = 0;

    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        ck_assert_int_lt(n, cap);
        notes[n] = cJSON_Parse(line);
        ck_assert_msg(notes[n] != NULL, "%s line %d is not JSON", name, n + 1);
        n++;
    }
    free(text);
    return n;
}

START_TEST(test_watch_prints_one_line_per_notification_of_each_topic)
{
    cJSON *notes[NOTES_MAX];
    int n = load_lines("notes.jsonl", notes, NOTES_MAX);
    struct capture c;
    FILE *out = capture_start(&c);

    ck_assert_int_ge(n, 10);
    for (int i = 0; i < n; i++)
        show_note(out, notes[i], T0_US + 500000);
    expect_capture("watch", &c);
    for (int i = 0; i < n; i++)
        cJSON_Delete(notes[i]);
}
END_TEST

/* ---- flash, image ---- */

static const cJSON *note_params(const cJSON *note)
{
    return cJSON_GetObjectItemCaseSensitive(note, "params");
}

/* What tetherctl flash prints for the canned flash, in lines or with a
 * terminal's bar: the answer, the progress, the outcome. */
static void check_flash_run(const char *name, int tty)
{
    cJSON *notes[NOTES_MAX];
    int n = load_lines("flash-notes.jsonl", notes, NOTES_MAX);
    cJSON *started = load("flash-started.json");
    struct show_flash sf;
    struct capture c;
    FILE *out = capture_start(&c);
    int done = 0;

    show_flash_init(&sf, tty);
    show_flash_started(out, started);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(done, 0);
        done = show_flash_progress(out, &sf, note_params(notes[i]));
        if (done)
            ck_assert_int_eq(show_flash_outcome(out, note_params(notes[i])), 1);
    }
    ck_assert_int_eq(done, 1);
    expect_capture(name, &c);
    for (int i = 0; i < n; i++)
        cJSON_Delete(notes[i]);
    cJSON_Delete(started);
}

START_TEST(test_flash_prints_a_line_per_state_and_tenth_of_the_upload)
{
    check_flash_run("flash-progress", 0);
}
END_TEST

START_TEST(test_flash_on_a_terminal_redraws_one_bar_with_speed_and_time_left)
{
    check_flash_run("flash-progress-tty", 1);
}
END_TEST

START_TEST(test_flash_outcome_says_what_runs_and_why_and_which_succeeded)
{
    static const int success[] = {1, 1, 0, 0, 1, 0};
    cJSON *notes[NOTES_MAX];
    int n = load_lines("flash-outcomes.jsonl", notes, NOTES_MAX);
    struct capture c;
    FILE *out = capture_start(&c);

    ck_assert_int_eq(n, (int)(sizeof(success) / sizeof(success[0])));
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(show_flash_outcome(out, note_params(notes[i])),
                         success[i]);
    expect_capture("flash-outcomes", &c);
    for (int i = 0; i < n; i++)
        cJSON_Delete(notes[i]);
}
END_TEST

START_TEST(test_watch_prints_flash_progress_one_line_each)
{
    cJSON *notes[NOTES_MAX];
    int n = load_lines("flash-notes.jsonl", notes, NOTES_MAX);
    struct capture c;
    FILE *out = capture_start(&c);

    for (int i = 0; i < n; i++)
        show_note(out, notes[i], T0_US);
    expect_capture("flash-watch", &c);
    for (int i = 0; i < n; i++)
        cJSON_Delete(notes[i]);
}
END_TEST

START_TEST(test_image_reads_boards_and_versions)
{
    uint8_t b;
    uint32_t v;

    ck_assert_int_eq(mkimage_board("tether-sim", &b), 0);
    ck_assert_uint_eq(b, MSG_BOARD_SIM);
    ck_assert_int_eq(mkimage_board("sim", &b), 0);
    ck_assert_int_eq(mkimage_board("mps2-an505", &b), 0);
    ck_assert_uint_eq(b, MSG_BOARD_MPS2_AN505);
    ck_assert_int_eq(mkimage_board("stm32u585", &b), 0);
    ck_assert_uint_eq(b, MSG_BOARD_STM32U585);
    ck_assert_int_ne(mkimage_board("atmega328p", &b), 0);
    ck_assert_int_ne(mkimage_board("", &b), 0);
    ck_assert_int_eq(mkimage_version("0.2.0", &v), 0);
    ck_assert_uint_eq(v, 0x000200);
    ck_assert_int_eq(mkimage_version("255.1.17", &v), 0);
    ck_assert_uint_eq(v, 0xff0111);
    ck_assert_int_ne(mkimage_version("256.0.0", &v), 0);
    ck_assert_int_ne(mkimage_version("1.2", &v), 0);
    ck_assert_int_ne(mkimage_version("1.2.3.4", &v), 0);
    ck_assert_int_ne(mkimage_version("1..3", &v), 0);
    ck_assert_int_ne(mkimage_version("v1.2.3", &v), 0);
    ck_assert_int_ne(mkimage_version("1.2.3 ", &v), 0);
    ck_assert_int_ne(mkimage_version("00001.2.3", &v), 0);
}
END_TEST

/* The header, read back with the protocol's own decoder. */
START_TEST(test_image_header_names_board_version_length_and_hash)
{
    static uint8_t body[3000];
    struct mkimage_opts o = {.board = MSG_BOARD_MPS2_AN505,
                             .version = 0x000203,
                             .build_id = 0xabcd0123,
                             .ram = true,
                             .load_addr = 0x20000000,
                             .entry = 0x40};
    uint8_t hdr[IMAGE_HDR_LEN], digest[SHA256_LEN];
    struct image_hdr h;

    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 13);
    ck_assert_int_eq(mkimage_header(body, sizeof(body), &o, hdr), 0);
    ck_assert_int_eq(image_decode(hdr, sizeof(hdr), &h), 0);
    ck_assert_uint_eq(h.board, MSG_BOARD_MPS2_AN505);
    ck_assert_uint_eq(h.fw_version, 0x000203);
    ck_assert_uint_eq(h.build_id, 0xabcd0123);
    ck_assert_uint_eq(h.body_len, sizeof(body));
    ck_assert_uint_eq(h.flags, IMAGE_FLAG_RAM);
    ck_assert_uint_eq(h.load_addr, 0x20000000);
    ck_assert_uint_eq(h.entry, 0x40);
    sha256_digest(body, sizeof(body), digest);
    ck_assert_int_eq(memcmp(h.hash, digest, SHA256_LEN), 0);
    /* Without a load address, no RAM flag and no address. */
    o.ram = false;
    ck_assert_int_eq(mkimage_header(body, sizeof(body), &o, hdr), 0);
    ck_assert_int_eq(image_decode(hdr, sizeof(hdr), &h), 0);
    ck_assert_uint_eq(h.flags, 0);
    ck_assert_uint_eq(h.load_addr, 0);
    /* An entry outside the body, an empty body. */
    o.entry = sizeof(body);
    ck_assert_int_eq(mkimage_header(body, sizeof(body), &o, hdr), -EINVAL);
    o.entry = 0;
    ck_assert_int_eq(mkimage_header(body, 0, &o, hdr), -EINVAL);
}
END_TEST

START_TEST(test_image_file_is_the_header_then_the_body_or_nothing)
{
    char dir[PATH_MAX / 2], in[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    struct mkimage_opts o = {.board = MSG_BOARD_SIM, .version = 0x000200};
    static uint8_t body[1000], got[2000];
    struct image_hdr h;
    FILE *f;
    size_t n;

    snprintf(dir, sizeof(dir), "%s/tetherctl-image.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(in, sizeof(in), "%s/fw.bin", dir);
    snprintf(out, sizeof(out), "%s/fw.img", dir);
    memset(body, 0xa5, sizeof(body));
    f = fopen(in, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(body, 1, sizeof(body), f);
    fclose(f);

    ck_assert_int_eq(mkimage_file(in, out, &o, &h, err, sizeof(err)), 0);
    ck_assert_uint_eq(h.body_len, sizeof(body));
    f = fopen(out, "rb");
    ck_assert_ptr_nonnull(f);
    n = fread(got, 1, sizeof(got), f);
    fclose(f);
    ck_assert_uint_eq(n, IMAGE_HDR_LEN + sizeof(body));
    ck_assert_int_eq(image_decode(got, n, &h), 0);
    ck_assert_int_eq(memcmp(got + IMAGE_HDR_LEN, body, sizeof(body)), 0);
    unlink(out);

    /* Refused inputs leave no output behind. */
    o.entry = sizeof(body);
    ck_assert_int_eq(mkimage_file(in, out, &o, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "the entry is outside"));
    ck_assert_int_ne(access(out, F_OK), 0);
    o.entry = 0;
    ck_assert_int_eq(mkimage_file(dir, out, &o, NULL, err, sizeof(err)),
                     -EISDIR);
    f = fopen(in, "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(mkimage_file(in, out, &o, NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "is empty"));
    ck_assert_int_ne(access(out, F_OK), 0);
    snprintf(err, sizeof(err), "%s/none", dir);
    ck_assert_int_eq(mkimage_file(err, out, &o, NULL, err, sizeof(err)),
                     -ENOENT);
    unlink(in);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ---- plot ---- */

/* Renders a canned history result as a command would have asked for it. */
static void render(struct capture *c, const char *input,
                   const struct plot_options *o, int *rc)
{
    static struct plot_point pts[POINTS_MAX];
    cJSON *j = load(input);
    size_t n = plot_points_from_history(
        &o->series, cJSON_GetObjectItemCaseSensitive(j, "points"), pts,
        POINTS_MAX);

    *rc = plot_render(capture_start(c), pts, n, o);
    cJSON_Delete(j);
}

static struct plot_options options(const char *series, int64_t from_us,
                                   int64_t to_us, int64_t bucket_us)
{
    struct plot_options o = {.from_us = from_us,
                             .to_us = to_us,
                             .bucket_us = bucket_us,
                             .width = PLOT_WIDTH_DEFAULT,
                             .height = PLOT_HEIGHT_DEFAULT};

    ck_assert_int_eq(plot_parse_series(series, &o.series), 0);
    return o;
}

START_TEST(test_plot_of_a_heap_leak_shows_the_curve_and_threshold)
{
    struct plot_options o =
        options("heap.free", T0_US, T0_US + 3600000000LL, 60000000);
    cJSON *status = load("status.json");
    struct capture c;
    int rc;

    /* The default threshold is the daemon's heap_low threshold. */
    o.threshold_shown = plot_threshold_from_status(status, &o.threshold);
    o.threshold_name = "heap_low threshold";
    ck_assert_int_eq(o.threshold_shown, 1);
    ck_assert(o.threshold == 1638);
    render(&c, "plot-heap-leak.json", &o, &rc);
    ck_assert_int_eq(rc, 0);
    expect_capture("plot-heap-free", &c);
    cJSON_Delete(status);
}
END_TEST

START_TEST(test_plot_of_the_largest_block_takes_its_lowest_per_bucket)
{
    struct plot_options o =
        options("heap.largest", T0_US, T0_US + 3600000000LL, 60000000);
    struct capture c;
    int rc;

    o.height = 8;
    render(&c, "plot-heap-leak.json", &o, &rc);
    ck_assert_int_eq(rc, 0);
    expect_capture("plot-heap-largest", &c);
}
END_TEST

START_TEST(test_plot_of_an_adc_channel_shows_only_that_channel)
{
    struct plot_options o =
        options("adc.0", T0_US, T0_US + 600000000LL, 10000000);
    struct capture c;
    int rc;

    o.threshold_shown = 1;
    o.threshold = 12000;
    o.threshold_name = "threshold";
    render(&c, "plot-adc.json", &o, &rc);
    ck_assert_int_eq(rc, 0);
    expect_capture("plot-adc0", &c);
}
END_TEST

START_TEST(test_plot_of_an_empty_series_says_there_is_no_data)
{
    struct plot_options o =
        options("heap.free", T0_US, T0_US + 3600000000LL, 60000000);
    struct capture c;
    int rc;

    o.threshold_shown = 1;
    o.threshold = 1638;
    render(&c, "plot-empty.json", &o, &rc);
    ck_assert_int_eq(rc, 0);
    expect_capture("plot-empty", &c);
}
END_TEST

START_TEST(test_plot_leaves_missing_buckets_blank)
{
    struct plot_options o =
        options("heap.free", T0_US, T0_US + 3600000000LL, 60000000);
    struct capture c;
    int rc;

    render(&c, "plot-gap.json", &o, &rc);
    ck_assert_int_eq(rc, 0);
    expect_capture("plot-gap", &c);
}
END_TEST

/* The chart rows of a rendering: lines that hold " |". */
static int count_in_chart(const char *text, int col, char want)
{
    int count = 0;

    for (const char *line = text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        const char *bar = strstr(line, " |");
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);

        if (bar != NULL && bar < line + len) {
            size_t at = (size_t)(bar - line) + 2 + (size_t)col;

            count += at < len && line[at] == want;
        }
        line = nl != NULL ? nl + 1 : line + len;
    }
    return count;
}

START_TEST(test_plot_fills_every_column_when_buckets_are_wider)
{
    /* 50 columns over an hour ask for 72 s buckets; the daemon rounds
     * them up to 2 min, so there are 30 buckets for 50 columns. */
    static struct plot_point pts[31];
    struct plot_options o =
        options("adc.2", T0_US + 17000000, T0_US + 3617000000LL, 120000000);
    struct capture c;

    o.width = 50;
    for (int k = 0; k < 31; k++)
        pts[k] = (struct plot_point){.t_us = T0_US + k * 120000000LL,
                                     .min = k,
                                     .avg = k,
                                     .max = k,
                                     .weight = 1};
    ck_assert_int_eq(plot_render(capture_start(&c), pts, 31, &o), 0);
    capture_end(&c);
    for (int col = 0; col < o.width; col++)
        ck_assert_msg(count_in_chart(c.buf, col, '*') == 1,
                      "column %d has no point:\n%s", col, c.buf);
    ck_assert_ptr_null(strstr(c.buf, "no data"));
    free(c.buf);
}
END_TEST

START_TEST(test_plot_puts_several_narrow_buckets_in_one_column)
{
    /* Raw samples every second over 10 columns of a minute each. */
    static struct plot_point pts[600];
    struct plot_options o = options("adc.0", T0_US, T0_US + 600000000LL, 0);
    struct capture c;

    o.width = 10;
    o.height = 3;
    for (int k = 0; k < 600; k++)
        pts[k] = (struct plot_point){.t_us = T0_US + k * 1000000LL,
                                     .min = k / 60 % 2 ? 100 : 0,
                                     .avg = k / 60 % 2 ? 100 : 0,
                                     .max = k / 60 % 2 ? 100 : 0,
                                     .weight = 1};
    ck_assert_int_eq(plot_render(capture_start(&c), pts, 600, &o), 0);
    capture_end(&c);
    /* Columns alternate between the bottom (0) and the top (100) row. */
    for (int col = 0; col < 10; col++)
        ck_assert_int_eq(count_in_chart(c.buf, col, '*'), 1);
    ck_assert_ptr_nonnull(strstr(c.buf, "raw samples"));
    ck_assert_ptr_null(strstr(c.buf, "blank"));
    free(c.buf);
}
END_TEST

START_TEST(test_plot_of_a_flat_series_draws_it_at_mid_height)
{
    static struct plot_point pts[10];
    struct plot_options o = options("adc.3", T0_US, T0_US + 10000000, 1000000);
    struct capture c;
    const char *star;

    o.width = 10;
    o.height = 5;
    for (int k = 0; k < 10; k++)
        pts[k] = (struct plot_point){.t_us = T0_US + k * 1000000LL,
                                     .min = 4096,
                                     .avg = 4096,
                                     .max = 4096,
                                     .weight = 100};
    ck_assert_int_eq(plot_render(capture_start(&c), pts, 10, &o), 0);
    capture_end(&c);
    /* A range of one count either side; labels precise enough to differ. */
    star = strstr(c.buf, "4096.0 |**********\n");
    ck_assert_msg(star != NULL, "no flat line at 4096:\n%s", c.buf);
    ck_assert_ptr_nonnull(strstr(c.buf, "4097.0 |\n"));
    ck_assert_ptr_nonnull(strstr(c.buf, "4095.0 |\n"));
    for (int col = 0; col < o.width; col++)
        ck_assert_int_eq(count_in_chart(c.buf, col, ':'), 0);
    free(c.buf);
}
END_TEST

START_TEST(test_plot_refuses_options_out_of_bounds)
{
    struct plot_options good =
        options("heap.free", T0_US, T0_US + 3600000000LL, 60000000);
    struct plot_options o;
    struct plot_point p = {T0_US, 1, 1, 1, 1};
    char buf[16];
    FILE *out = fmemopen(buf, sizeof(buf), "w");

    ck_assert_ptr_nonnull(out);
    o = good;
    o.width = PLOT_WIDTH_MIN - 1;
    ck_assert_int_eq(plot_render(out, &p, 1, &o), -EINVAL);
    o = good;
    o.width = PLOT_WIDTH_MAX + 1;
    ck_assert_int_eq(plot_render(out, &p, 1, &o), -EINVAL);
    o = good;
    o.height = PLOT_HEIGHT_MIN - 1;
    ck_assert_int_eq(plot_render(out, &p, 1, &o), -EINVAL);
    o = good;
    o.to_us = o.from_us;
    ck_assert_int_eq(plot_render(out, &p, 1, &o), -EINVAL);
    o = good;
    o.to_us = o.from_us + PLOT_SPAN_MAX_US + 1;
    ck_assert_int_eq(plot_render(out, &p, 1, &o), -EINVAL);
    o = good;
    o.threshold_shown = 1;
    o.threshold = 1e300 * 1e300;
    ck_assert_int_eq(plot_render(out, &p, 1, &o), -EINVAL);
    ck_assert_int_eq(ftell(out), 0);
    fclose(out);
}
END_TEST

START_TEST(test_plot_reads_series_names)
{
    struct plot_series s;

    ck_assert_int_eq(plot_parse_series("heap.free", &s), 0);
    ck_assert_int_eq(s.kind, PLOT_HEAP_FREE);
    ck_assert_str_eq(plot_history_series(&s), "heap");
    ck_assert_int_eq(plot_parse_series("heap.largest", &s), 0);
    ck_assert_int_eq(s.kind, PLOT_HEAP_LARGEST);
    ck_assert_int_eq(plot_parse_series("adc.12", &s), 0);
    ck_assert_int_eq(s.kind, PLOT_ADC);
    ck_assert_int_eq(s.channel, 12);
    ck_assert_str_eq(plot_history_series(&s), "adc");
    ck_assert_str_eq(s.name, "adc.12");
    ck_assert_int_ne(plot_parse_series("adc.64", &s), 0);
    ck_assert_int_ne(plot_parse_series("adc.-1", &s), 0);
    ck_assert_int_ne(plot_parse_series("adc.", &s), 0);
    ck_assert_int_ne(plot_parse_series("adc.1x", &s), 0);
    ck_assert_int_ne(plot_parse_series("heap", &s), 0);
    ck_assert_int_ne(plot_parse_series("heap.used", &s), 0);
    ck_assert_int_ne(plot_parse_series("", &s), 0);
}
END_TEST

START_TEST(test_plot_threshold_comes_from_status_only_when_a_number)
{
    static const char *const unknown[] = {
        "{\"alerts\":{\"heap_low_threshold\":null}}",
        "{\"alerts\":{\"active\":[]}}",
        "{\"alerts\":{\"heap_low_threshold\":\"1638\"}}",
        "{\"alerts\":{\"heap_low_threshold\":-5}}",
        "{\"alerts\":{\"heap_low_threshold\":1e999}}",
        "{\"alerts\":null}",
        "[]",
    };
    cJSON *j = cJSON_Parse("{\"alerts\":{\"heap_low_threshold\":2048}}");
    double v = -1;

    ck_assert_int_eq(plot_threshold_from_status(j, &v), 1);
    ck_assert(v == 2048);
    cJSON_Delete(j);
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        j = cJSON_Parse(unknown[i]);
        ck_assert_ptr_nonnull(j);
        ck_assert_msg(plot_threshold_from_status(j, &v) == 0, "%s", unknown[i]);
        cJSON_Delete(j);
    }
}
END_TEST

START_TEST(test_plot_skips_points_it_cannot_use)
{
    static const char text[] =
        "[{\"t_us\":1,\"channel\":0,\"min\":1,\"max\":3,\"avg\":2,"
        "\"count\":5},"
        "{\"t_us\":2,\"channel\":1,\"min\":1,\"max\":3,\"avg\":2},"
        "{\"t_us\":3,\"channel\":0,\"value\":7},"
        "{\"t_us\":4,\"channel\":0,\"min\":1,\"max\":3,\"avg\":\"2\"},"
        "{\"t_us\":5,\"channel\":0,\"min\":1,\"max\":1e999,\"avg\":2},"
        "{\"t_us\":\"6\",\"channel\":0,\"value\":7},"
        "{\"t_us\":1e300,\"channel\":0,\"value\":7},"
        "{\"channel\":0,\"value\":7},"
        "7, null, [],"
        "{\"t_us\":9,\"channel\":0,\"value\":-3,\"count\":-1}]";
    struct plot_point pts[16];
    struct plot_series s;
    cJSON *j = cJSON_Parse(text);
    size_t n;

    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(plot_parse_series("adc.0", &s), 0);
    n = plot_points_from_history(&s, j, pts, 16);
    ck_assert_uint_eq(n, 3);
    ck_assert(pts[0].t_us == 1 && pts[0].avg == 2 && pts[0].weight == 5);
    ck_assert(pts[1].t_us == 3 && pts[1].min == 7 && pts[1].max == 7);
    ck_assert(pts[2].t_us == 9 && pts[2].avg == -3 && pts[2].weight == 1);
    /* The capacity is respected. */
    ck_assert_uint_eq(plot_points_from_history(&s, j, pts, 2), 2);
    cJSON_Delete(j);
}
END_TEST

/* ---- untrusted results ---- */

START_TEST(test_malformed_status_prints_dashes)
{
    check_printer("malformed-status", "malformed-status.json", show_status);
}
END_TEST

START_TEST(test_malformed_history_and_notes_print_dashes)
{
    cJSON *notes[NOTES_MAX];
    int n = load_lines("malformed-notes.jsonl", notes, NOTES_MAX);
    cJSON *hist = load("malformed-history.json");
    cJSON *alerts = load("malformed-alerts.json");
    cJSON *latest = load("malformed-latest.json");
    struct capture c;
    FILE *out = capture_start(&c);
    int header = 0;

    for (int i = 0; i < n; i++)
        show_note(out, notes[i], T0_US);
    show_history(out, hist, &header);
    show_alerts(out, alerts, T0_US);
    show_latest(out, latest);
    show_ack_void(out, alerts);
    show_version(out, hist);
    expect_capture("malformed", &c);
    for (int i = 0; i < n; i++)
        cJSON_Delete(notes[i]);
    cJSON_Delete(hist);
    cJSON_Delete(alerts);
    cJSON_Delete(latest);
}
END_TEST

/* Fails when out holds nan or inf as a word, a run of more than 16
 * digits (beyond SHOW_NUM_MAX), or a control character other than a
 * newline.  Check records every assertion with a write(), so the loop
 * only looks and asserts once. */
static void check_sane(const char *what, const char *out, size_t len)
{
    const char *bad = NULL;
    size_t digits = 0;

    for (size_t i = 0; i < len && bad == NULL; i++) {
        unsigned char ch = (unsigned char)out[i];
        size_t w = 0;

        if (ch < 0x20 && ch != '\n')
            bad = "a control character";
        digits = isdigit(ch) ? digits + 1 : 0;
        if (digits > 16)
            bad = "a huge number";
        if (!isalpha(ch) || (i > 0 && isalpha((unsigned char)out[i - 1])))
            continue;
        while (i + w < len && isalpha((unsigned char)out[i + w]))
            w++;
        if ((w == 3 && (strncasecmp(out + i, "nan", 3) == 0 ||
                        strncasecmp(out + i, "inf", 3) == 0)) ||
            (w == 8 && strncasecmp(out + i, "infinity", 8) == 0))
            bad = "not a number";
    }
    if (bad != NULL)
        ck_abort_msg("%s: %s in the output:\n%.*s", what, bad, (int)len, out);
}

/* Runs every printer on j and checks that what they print is sane. */
static void print_everything(const char *what, const cJSON *j)
{
    static struct plot_point pts[POINTS_MAX];
    static const char *const series[] = {"heap.free", "heap.largest", "adc.0"};
    const cJSON *points = cJSON_GetObjectItemCaseSensitive(j, "points");
    struct capture c;
    FILE *out = capture_start(&c);
    int header = 0;

    show_status(out, j);
    show_heap(out, j);
    show_heap_report(out, cJSON_GetObjectItemCaseSensitive(j, "heap"), points,
                     T0_US, T0_US + 1);
    show_latest(out, j);
    show_history(out, j, &header);
    show_alerts(out, j, T0_US);
    show_note(out, j, T0_US);
    show_ack(out, j);
    show_version(out, j);
    {
        struct show_flash sf;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "params");

        show_flash_init(&sf, 0);
        show_flash_started(out, j);
        show_flash_progress(out, &sf, j);
        show_flash_progress(out, &sf, p);
        show_flash_outcome(out, j);
        show_flash_outcome(out, p);
    }
    for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
        struct plot_options o =
            options(series[k], T0_US, T0_US + 3600000000LL, 60000000);
        size_t n = plot_points_from_history(&o.series, points, pts, POINTS_MAX);

        o.threshold_shown = plot_threshold_from_status(j, &o.threshold);
        o.width = 20;
        o.height = 5;
        ck_assert_int_eq(plot_render(out, pts, n, &o), 0);
    }
    capture_end(&c);
    check_sane(what, c.buf, c.len);
    free(c.buf);
}

/* Values that tetherd never sends where numbers, strings or objects
 * belong. */
static cJSON *bad_value(int k)
{
    switch (k) {
    case 0:
        return cJSON_CreateString("x\x1b[31m\r\xc2\x9b"
                                  "2J");
    case 1:
        return cJSON_CreateNull();
    case 2:
        return cJSON_CreateTrue();
    case 3:
        return cJSON_Parse("1e999");
    case 4:
        return cJSON_Parse("-1e999");
    case 5:
        return cJSON_CreateNumber(1e300);
    case 6:
        return cJSON_CreateNumber(-9.3e18);
    case 7:
        return cJSON_CreateNumber(-1);
    case 8:
        return cJSON_CreateNumber(0.5);
    case 9:
        return cJSON_CreateArray();
    default:
        return cJSON_Parse("{\"points\":7,\"values\":[[1e999]]}");
    }
}
#define BAD_VALUES 11

static int mutations;

/* Puts with in the place of node's item i, freeing what was there.
 * Returns 0 on failure (asserted by the caller, once). */
static int replace(cJSON *node, int i, cJSON *with)
{
    if (with == NULL)
        return 0;
    if (cJSON_IsObject(node)) {
        char key[KEY_MAX];

        snprintf(key, sizeof(key), "%s", cJSON_GetArrayItem(node, i)->string);
        return cJSON_ReplaceItemInObjectCaseSensitive(node, key, with);
    }
    return cJSON_ReplaceItemInArray(node, i, with);
}

/* Replaces each value below node in turn with each bad value, printing
 * everything from root each time, and puts the original back. */
static void mutate_all(const char *what, cJSON *root, cJSON *node)
{
    int n = cJSON_GetArraySize(node), ok = 1;

    for (int i = 0; i < n && ok; i++) {
        cJSON *orig = cJSON_Duplicate(cJSON_GetArrayItem(node, i), 1);

        for (int k = 0; k < BAD_VALUES && ok; k++) {
            ok = replace(node, i, bad_value(k));
            print_everything(what, root);
            mutations++;
        }
        ok = ok && replace(node, i, orig);
        if (ok && (cJSON_IsObject(orig) || cJSON_IsArray(orig)))
            mutate_all(what, root, orig);
    }
    ck_assert_msg(ok, "%s: cannot replace a value", what);
}

START_TEST(test_every_result_with_any_value_spoiled_prints_sanely)
{
    static const char *const inputs[] = {
        "status.json",       "status-boot.json",      "latest.json",
        "latest-stale.json", "history-adc-raw.json",  "history-adc-1m.json",
        "history-heap.json", "history-heap-raw.json", "alerts.json",
        "send-nack.json",    "version.json",          "flash-started.json",
    };
    static const char *const note_files[] = {"notes.jsonl", "flash-notes.jsonl",
                                             "flash-outcomes.jsonl"};
    cJSON *notes[NOTES_MAX];

    mutations = 0;
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        cJSON *j = load(inputs[i]);

        print_everything(inputs[i], j);
        mutate_all(inputs[i], j, j);
        cJSON_Delete(j);
    }
    for (size_t k = 0; k < sizeof(note_files) / sizeof(note_files[0]); k++) {
        int n = load_lines(note_files[k], notes, NOTES_MAX);

        for (int i = 0; i < n; i++) {
            mutate_all(note_files[k], notes[i], notes[i]);
            cJSON_Delete(notes[i]);
        }
    }
    /* Every value of every file was spoiled in every way. */
    ck_assert_int_gt(mutations, 2000);
}
END_TEST

static Suite *show_suite(void)
{
    Suite *s = suite_create("tetherctl output");
    TCase *tc = tcase_create("commands");
    TCase *pl = tcase_create("plot");
    TCase *bad = tcase_create("untrusted results");

    tcase_add_test(tc, test_status_prints_every_section_and_the_threshold);
    tcase_add_test(tc, test_status_before_hello_says_no_hello_and_none_yet);
    tcase_add_test(tc, test_latest_prints_a_table_per_channel_newest_first);
    tcase_add_test(tc, test_latest_warns_when_the_data_is_stale);
    tcase_add_test(tc, test_latest_without_samples_says_so);
    tcase_add_test(tc, test_send_prints_ack_and_returns_one);
    tcase_add_test(tc, test_send_prints_nack_with_its_reason_and_returns_zero);
    tcase_add_test(tc, test_version_prints_daemon_and_protocol_versions);
    tcase_add_test(tc, test_history_of_raw_adc_prints_time_channel_value);
    tcase_add_test(tc, test_history_of_adc_buckets_prints_min_avg_max_count);
    tcase_add_test(tc, test_history_of_heap_prints_the_free_columns);
    tcase_add_test(tc, test_history_prints_its_header_once_over_pages);
    tcase_add_test(tc, test_heap_prints_the_report_and_recent_rows);
    tcase_add_test(tc, test_heap_before_any_report_says_none);
    tcase_add_test(tc, test_alerts_prints_active_ones_with_age_then_history);
    tcase_add_test(tc, test_alerts_without_any_say_none);
    tcase_add_test(tc,
                   test_watch_prints_one_line_per_notification_of_each_topic);
    tcase_add_test(tc,
                   test_flash_prints_a_line_per_state_and_tenth_of_the_upload);
    tcase_add_test(
        tc, test_flash_on_a_terminal_redraws_one_bar_with_speed_and_time_left);
    tcase_add_test(
        tc, test_flash_outcome_says_what_runs_and_why_and_which_succeeded);
    tcase_add_test(tc, test_watch_prints_flash_progress_one_line_each);
    tcase_add_test(tc, test_image_reads_boards_and_versions);
    tcase_add_test(tc, test_image_header_names_board_version_length_and_hash);
    tcase_add_test(tc, test_image_file_is_the_header_then_the_body_or_nothing);
    suite_add_tcase(s, tc);

    tcase_add_test(pl, test_plot_of_a_heap_leak_shows_the_curve_and_threshold);
    tcase_add_test(pl,
                   test_plot_of_the_largest_block_takes_its_lowest_per_bucket);
    tcase_add_test(pl, test_plot_of_an_adc_channel_shows_only_that_channel);
    tcase_add_test(pl, test_plot_of_an_empty_series_says_there_is_no_data);
    tcase_add_test(pl, test_plot_leaves_missing_buckets_blank);
    tcase_add_test(pl, test_plot_fills_every_column_when_buckets_are_wider);
    tcase_add_test(pl, test_plot_puts_several_narrow_buckets_in_one_column);
    tcase_add_test(pl, test_plot_of_a_flat_series_draws_it_at_mid_height);
    tcase_add_test(pl, test_plot_refuses_options_out_of_bounds);
    tcase_add_test(pl, test_plot_reads_series_names);
    tcase_add_test(pl,
                   test_plot_threshold_comes_from_status_only_when_a_number);
    tcase_add_test(pl, test_plot_skips_points_it_cannot_use);
    suite_add_tcase(s, pl);

    tcase_add_test(bad, test_malformed_status_prints_dashes);
    tcase_add_test(bad, test_malformed_history_and_notes_print_dashes);
    tcase_add_test(bad, test_every_result_with_any_value_spoiled_prints_sanely);
    /* Thousands of renderings; slow under the sanitizers. */
    tcase_set_timeout(bad, 120);
    suite_add_tcase(s, bad);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(show_suite());
    int failed;

    /* Local times in the expected text are UTC. */
    setenv("TZ", "UTC0", 1);
    tzset();
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
