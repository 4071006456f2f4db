/* Firmware update on tether-sim, MCU side, over a real pty: the sim with
 * --flash DIR is the factory image (0.1.0); $TETHER_SIM_V2 (0.2.0) and
 * $TETHER_SIM_MUTE (0.3.0, no telemetry) are the images uploaded to it,
 * wrapped in an image header here.  The sender below is a plain
 * go-back-N with the window the MCU announces, as a daemon would be.
 *
 * Covered: v1 -> v2 with a test boot and CONFIRM (HELLO reports 0.2.0,
 * the same pid and pty); a byte damaged on its way to the slot caught by
 * END's hash with v1 still running; an image that fails the health gate
 * (sim-mute) reverted by REBOOT; a test image stopped past the watchdog
 * reverted; an image that cannot start reverted at once; an upload cut
 * by a dropped link resumed and completed; a power
 * cycle (the sim restarted on the same DIR) reverting an unconfirmed image
 * and keeping a confirmed one; and no --flash meaning no updates.
 *
 * `integration-update --throughput BAUD` instead measures an upload
 * through the sim paced at BAUD (input and output) and prints body bytes
 * per second against the line's byte rate; it checks that the upload
 * completes, nothing about speed. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "sha256.h"
#include "simproc.h"
#include "update.h"

/* tether-sim's PORT_WATCHDOG_MS (mcu-firmware/port/host/port_config.h). */
#define SIM_WATCHDOG_MS 3000

#define WAIT_MS     10000
#define BODY_MAX    (8u * 1024u * 1024u) /* a test image, SAN builds too */
#define STATUS_WAIT 3000                 /* ms for an UPD_STATUS */
#define OUTSTANDING 16u                  /* sender's own window cap */
#define RETRIES_MAX 20u                  /* go-backs after a silence */
#define HEAP_PERIOD "200"

struct image {
    uint8_t *body;
    uint32_t len;
    struct image_hdr hdr;
    uint8_t raw[IMAGE_HDR_LEN];
};

static struct simproc sim;
static char dir[64];
static struct image v2, mute;

static void rm_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(path);
}

/* Reads an executable and wraps it in an image header. */
static void load_image(struct image *im, const char *env, uint32_t version)
{
    const char *path = getenv(env);
    FILE *f;

    ck_assert_msg(path != NULL, "%s is not set", env);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    im->body = malloc(BODY_MAX);
    ck_assert_ptr_nonnull(im->body);
    im->len = (uint32_t)fread(im->body, 1, BODY_MAX, f);
    ck_assert(feof(f) && im->len > 0);
    fclose(f);
    memset(&im->hdr, 0, sizeof(im->hdr));
    im->hdr.magic = IMAGE_MAGIC;
    im->hdr.hdr_version = IMAGE_HDR_VERSION;
    im->hdr.board = MSG_BOARD_SIM;
    im->hdr.fw_version = version;
    im->hdr.body_len = im->len;
    sha256_digest(im->body, im->len, im->hdr.hash);
    ck_assert_int_eq(image_encode(im->raw, sizeof(im->raw), &im->hdr),
                     (int)IMAGE_HDR_LEN);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tether-upd-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    load_image(&v2, "TETHER_SIM_V2", 0x000200);
    load_image(&mute, "TETHER_SIM_MUTE", 0x000300);
}

static void teardown(void)
{
    simproc_stop(&sim, 3000);
    rm_dir(dir);
    free(v2.body);
    free(mute.body);
}

static void start(struct simproc *s, const char *extra)
{
    const char *args[] = {"--flash",
                          dir,
                          "--heap-period",
                          HEAP_PERIOD,
                          extra ? "--flip-update-byte" : NULL,
                          extra,
                          NULL};

    ck_assert_int_eq(simproc_start(s, args), 0);
}

/* The next UPD_STATUS answering seq; 0 on timeout. */
static int status_for(struct simproc *s, uint16_t seq,
                      struct msg_upd_status *st, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    struct frame f;
    int left;

    while ((left = (int)(end - simproc_now_ms())) > 0) {
        if (!simproc_next(s, &f, left))
            return 0;
        if (f.type == MSG_UPD_STATUS &&
            msg_decode_upd_status(f.payload, f.len, st) == 0 &&
            st->req_seq == seq)
            return 1;
    }
    return 0;
}

static uint8_t request(struct simproc *s, uint8_t type, const uint8_t *p,
                       size_t n, struct msg_upd_status *st)
{
    uint16_t seq = simproc_send(s, type, p, n);

    ck_assert_msg(status_for(s, seq, st, STATUS_WAIT),
                  "no UPD_STATUS for type 0x%02x", type);
    return st->error;
}

static uint16_t send_data(struct simproc *s, const struct image *im,
                          uint32_t off, uint16_t chunk)
{
    uint8_t p[FRAME_PAYLOAD_MAX];
    uint32_t left = im->len - off;
    struct msg_upd_data d = {off, im->body + off, left < chunk ? left : chunk};
    int n = msg_encode_upd_data(p, sizeof(p), &d);

    ck_assert_int_gt(n, 0);
    return simproc_send(s, MSG_UPD_DATA, p, (size_t)n);
}

/* Go-back-N from the MCU's `stored` until `upto` bytes are held (the
 * whole body when upto is 0).  BEGIN first, which also resumes.  The MCU
 * answers in order, so an answer to the k-th frame in flight settles the
 * ones before it (their answers were lost); bad_offset, or no progress for
 * STATUS_WAIT, sends the rest again from `stored`.  Bounded: RETRIES_MAX
 * go-backs on timeouts fail the test. */
static void upload(struct simproc *s, const struct image *im, uint32_t upto)
{
    struct msg_upd_status st;
    uint16_t seqs[OUTSTANDING];
    size_t head = 0, count = 0;
    uint32_t next, acked;
    unsigned window, retries = 0;
    int64_t deadline;

    if (upto == 0)
        upto = im->len;
    ck_assert_uint_eq(request(s, MSG_UPD_BEGIN, im->raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_OK);
    ck_assert_uint_eq(st.chunk_max, MSG_UPD_CHUNK_MAX);
    window = st.window < OUTSTANDING ? st.window : OUTSTANDING;
    next = acked = st.stored;
    deadline = simproc_now_ms() + STATUS_WAIT;
    while (acked < upto) {
        struct frame f;
        size_t k;

        while (next < upto && count < window) {
            seqs[(head + count++) % OUTSTANDING] =
                send_data(s, im, next, st.chunk_max);
            next +=
                im->len - next < st.chunk_max ? im->len - next : st.chunk_max;
        }
        if (simproc_now_ms() > deadline) {
            ck_assert_msg(++retries <= RETRIES_MAX,
                          "no progress of UPD_DATA at %u", acked);
            next = acked; /* go back */
            count = 0;
            deadline = simproc_now_ms() + STATUS_WAIT;
            continue;
        }
        if (!simproc_next(s, &f, 100) || f.type != MSG_UPD_STATUS ||
            msg_decode_upd_status(f.payload, f.len, &st) != 0 ||
            st.req_type != MSG_UPD_DATA)
            continue;
        for (k = 0; k < count; k++)
            if (seqs[(head + k) % OUTSTANDING] == st.req_seq)
                break;
        if (k == count)
            continue; /* an answer to a frame given up on */
        head += k + 1;
        count -= k + 1;
        deadline = simproc_now_ms() + STATUS_WAIT;
        if (st.stored > acked)
            acked = st.stored;
        if (st.error == MSG_UPD_EOFFSET) {
            next = acked; /* go back */
            count = 0;
        } else {
            ck_assert_uint_eq(st.error, MSG_UPD_OK);
        }
    }
}

static struct msg_hello wait_hello(struct simproc *s)
{
    struct msg_hello h;
    struct frame f;

    ck_assert(simproc_wait_type(s, MSG_HELLO, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, &h), 0);
    return h;
}

/* Upload, END, BOOT; returns the HELLO of whatever runs after the reset. */
static struct msg_hello flash(struct simproc *s, const struct image *im)
{
    struct msg_upd_status st;

    upload(s, im, 0);
    ck_assert_uint_eq(request(s, MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_VERIFIED);
    ck_assert_uint_eq(request(s, MSG_UPD_BOOT, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_BOOTING);
    return wait_hello(s);
}

static void reboot(struct simproc *s)
{
    simproc_send(s, MSG_REBOOT, NULL, 0);
}

START_TEST(test_update_v1_to_v2_boots_on_test_then_confirm_keeps_it)
{
    struct msg_upd_status st;
    struct msg_hello h;
    pid_t pid;

    start(&sim, NULL);
    pid = sim.pid;
    h = wait_hello(&sim);
    ck_assert_uint_eq(h.fw_version, 0x000100);
    ck_assert_uint_eq(h.caps & (MSG_CAP_UPDATE | MSG_CAP_TESTING),
                      MSG_CAP_UPDATE);
    ck_assert_uint_eq(request(&sim, MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY);
    ck_assert_uint_ge(st.window, 1);

    h = flash(&sim, &v2);
    ck_assert_uint_eq(h.fw_version, 0x000200);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(h.caps & MSG_CAP_TESTING, MSG_CAP_TESTING);
    ck_assert_int_eq(sim.pid, pid); /* same process, same pty */
    ck_assert_int_eq(kill(pid, 0), 0);
    ck_assert_uint_eq(request(&sim, MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_TEST);
    ck_assert_uint_eq(st.fw_version, 0x000200);

    ck_assert_uint_eq(request(&sim, MSG_UPD_CONFIRM, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, 0);
    reboot(&sim);
    h = wait_hello(&sim);
    ck_assert_uint_eq(h.fw_version, 0x000200);
    ck_assert_uint_eq(h.caps & MSG_CAP_TESTING, 0);
}
END_TEST

START_TEST(test_update_damaged_byte_fails_the_hash_and_v1_keeps_running)
{
    struct msg_upd_status st;
    struct msg_hello h;

    start(&sim, "1000");
    wait_hello(&sim);
    upload(&sim, &v2, 0);
    ck_assert_uint_eq(request(&sim, MSG_UPD_END, NULL, 0, &st), MSG_UPD_EHASH);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);
    ck_assert_uint_eq(request(&sim, MSG_UPD_BOOT, NULL, 0, &st),
                      MSG_UPD_ESTATE);
    reboot(&sim);
    h = wait_hello(&sim);
    ck_assert_uint_eq(h.fw_version, 0x000100);
    ck_assert_uint_eq(request(&sim, MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY);
}
END_TEST

START_TEST(test_update_image_failing_the_health_gate_is_reverted_by_reboot)
{
    struct msg_upd_status st;
    struct msg_hello h;
    struct frame f;

    start(&sim, NULL);
    wait_hello(&sim);
    h = flash(&sim, &mute);
    ck_assert_uint_eq(h.fw_version, 0x000300);
    ck_assert_uint_eq(h.caps & MSG_CAP_TESTING, MSG_CAP_TESTING);
    /* The gate: HEAP reports every 200 ms; none comes. */
    ck_assert(!simproc_wait_type(&sim, MSG_HEAP, &f, 1500));
    reboot(&sim);
    h = wait_hello(&sim);
    ck_assert_uint_eq(h.fw_version, 0x000100);
    ck_assert_uint_eq(h.caps & MSG_CAP_TESTING, 0);
    ck_assert_uint_eq(request(&sim, MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY | MSG_UPD_BOOT_REVERTED);
    ck_assert(simproc_wait_type(&sim, MSG_HEAP, &f, 1500));
}
END_TEST

START_TEST(test_update_test_image_stopped_past_the_watchdog_is_reverted)
{
    struct msg_hello h;

    start(&sim, NULL);
    wait_hello(&sim);
    h = flash(&sim, &v2);
    ck_assert_uint_eq(h.fw_version, 0x000200);
    /* The image stops (as if it hung) for longer than the watchdog. */
    ck_assert_int_eq(kill(sim.pid, SIGSTOP), 0);
    usleep((SIM_WATCHDOG_MS + 500) * 1000);
    ck_assert_int_eq(kill(sim.pid, SIGCONT), 0);
    h = wait_hello(&sim);
    ck_assert_uint_eq(h.fw_version, 0x000100);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_WATCHDOG);
}
END_TEST

START_TEST(test_update_cut_by_a_dropped_link_resumes_and_completes)
{
    struct msg_upd_status st;
    struct termios tio;
    struct msg_hello h;
    uint32_t half = (v2.len / 2u) & ~0xffu;

    start(&sim, NULL);
    wait_hello(&sim);
    upload(&sim, &v2, half);
    /* The link drops: our end closes; later it is opened again. */
    close(sim.tty);
    usleep(200 * 1000);
    sim.tty = open(sim.pty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    ck_assert_int_ge(sim.tty, 0);
    ck_assert_int_eq(tcgetattr(sim.tty, &tio), 0);
    cfmakeraw(&tio);
    ck_assert_int_eq(tcsetattr(sim.tty, TCSANOW, &tio), 0);
    frame_rx_init(&sim.rx, sim.rxbuf, sizeof(sim.rxbuf));
    /* Closing cut the frame that was on its way: a delimiter ends the
     * remnant, so that BEGIN starts clean (PROTOCOL.md section 3). */
    ck_assert_int_eq(write(sim.tty, "", 1), 1);

    ck_assert_uint_eq(request(&sim, MSG_UPD_BEGIN, v2.raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_OK);
    ck_assert_uint_ge(st.stored, half);
    ck_assert_uint_lt(st.stored, v2.len);
    h = flash(&sim, &v2); /* BEGIN again resumes; then the rest */
    ck_assert_uint_eq(h.fw_version, 0x000200);
}
END_TEST

START_TEST(test_update_power_cycle_reverts_unconfirmed_and_keeps_confirmed)
{
    struct simproc again;
    struct msg_upd_status st;
    struct msg_hello h;

    start(&sim, NULL);
    wait_hello(&sim);
    h = flash(&sim, &v2);
    ck_assert_uint_eq(h.fw_version, 0x000200);
    simproc_stop(&sim, 3000);
    /* Power comes back with the image still unconfirmed: v1. */
    start(&again, NULL);
    h = wait_hello(&again);
    ck_assert_uint_eq(h.fw_version, 0x000100);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_POWER_ON);
    ck_assert_uint_eq(request(&again, MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY | MSG_UPD_BOOT_REVERTED);
    /* Flashed again and confirmed, it survives the next power cycle. */
    h = flash(&again, &v2);
    ck_assert_uint_eq(h.fw_version, 0x000200);
    ck_assert_uint_eq(request(&again, MSG_UPD_CONFIRM, NULL, 0, &st),
                      MSG_UPD_OK);
    simproc_stop(&again, 3000);
    start(&sim, NULL);
    h = wait_hello(&sim);
    ck_assert_uint_eq(h.fw_version, 0x000200);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_POWER_ON);
}
END_TEST

START_TEST(test_update_image_that_cannot_start_is_reverted_at_once)
{
    struct msg_upd_status st;
    struct msg_hello h;
    struct image junk;

    /* A body that hashes right but is no executable: the bootloader's
     * start fails, which counts as a failed boot of the slot. */
    memset(&junk, 0, sizeof(junk));
    junk.len = 4096;
    junk.body = malloc(junk.len);
    ck_assert_ptr_nonnull(junk.body);
    for (uint32_t i = 0; i < junk.len; i++)
        junk.body[i] = (uint8_t)(i * 13u + 5u);
    junk.hdr = v2.hdr;
    junk.hdr.body_len = junk.len;
    sha256_digest(junk.body, junk.len, junk.hdr.hash);
    image_encode(junk.raw, sizeof(junk.raw), &junk.hdr);

    start(&sim, NULL);
    wait_hello(&sim);
    h = flash(&sim, &junk);
    free(junk.body);
    ck_assert_uint_eq(h.fw_version, 0x000100);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(request(&sim, MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY | MSG_UPD_BOOT_REVERTED);
}
END_TEST

START_TEST(test_update_sim_without_flash_takes_no_updates)
{
    const char *args[] = {"--heap-period", HEAP_PERIOD, NULL};
    struct msg_hello h;
    struct frame f;
    struct msg_ack a;
    uint16_t seq;

    ck_assert_int_eq(simproc_start(&sim, args), 0);
    h = wait_hello(&sim);
    ck_assert_uint_eq(h.caps & MSG_CAP_UPDATE, 0);
    seq = simproc_send(&sim, MSG_UPD_BEGIN, v2.raw, IMAGE_HDR_LEN);
    for (;;) {
        ck_assert(simproc_wait_type(&sim, MSG_NACK, &f, WAIT_MS));
        ck_assert_int_eq(msg_decode_nack(f.payload, f.len, &a), 0);
        if (a.seq == seq)
            break;
    }
    ck_assert_uint_eq(a.error, MSG_NACK_UNSUPPORTED);
}
END_TEST

/* ---- Throughput (not a test) ---- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The paced baud rate of a --throughput run. */
static const char *bench_baud;

/* Runs as a Check test of its own, as the helpers assert: the upload must
 * complete and verify; the figure is printed, not judged. */
START_TEST(test_update_throughput_is_measured_at_the_paced_line_rate)
{
    const char *args[] = {"--flash", dir, "--baud", bench_baud, NULL};
    unsigned long baud = strtoul(bench_baud, NULL, 10);
    struct msg_upd_status st;
    struct image im;
    double t0, t1, line;
    uint32_t seed = 7;

    ck_assert_uint_ge(baud, 300);
    line = (double)baud / 10.0;
    /* About four seconds of line, of bytes that are not an executable:
     * uploaded and verified, never booted. */
    memset(&im, 0, sizeof(im));
    im.len = (uint32_t)(line * 4.0);
    im.body = malloc(im.len);
    ck_assert_ptr_nonnull(im.body);
    for (uint32_t i = 0; i < im.len; i++) {
        seed = seed * 1664525u + 1013904223u;
        im.body[i] = (uint8_t)(seed >> 24);
    }
    im.hdr.magic = IMAGE_MAGIC;
    im.hdr.hdr_version = IMAGE_HDR_VERSION;
    im.hdr.board = MSG_BOARD_SIM;
    im.hdr.fw_version = 0x000200;
    im.hdr.body_len = im.len;
    sha256_digest(im.body, im.len, im.hdr.hash);
    image_encode(im.raw, sizeof(im.raw), &im.hdr);

    ck_assert_int_eq(simproc_start(&sim, args), 0);
    wait_hello(&sim);
    t0 = now_s();
    upload(&sim, &im, 0);
    t1 = now_s();
    ck_assert_uint_eq(request(&sim, MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    printf("upload at %lu baud: %u body bytes in %.3f s = %.0f B/s, "
           "%.1f%% of the line's %.0f B/s (chunk %u, window %u)\n",
           baud, im.len, t1 - t0, im.len / (t1 - t0),
           100.0 * im.len / (t1 - t0) / line, line, st.chunk_max, st.window);
    fflush(stdout);
    free(im.body);
}
END_TEST

static void bench_setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tether-upd-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void bench_teardown(void)
{
    simproc_stop(&sim, 3000);
    rm_dir(dir);
}

int main(int argc, char **argv)
{
    Suite *s = suite_create("update-sim");
    TCase *tc = tcase_create("sim");
    SRunner *sr;
    int failed;

    if (argc == 3 && strcmp(argv[1], "--throughput") == 0) {
        bench_baud = argv[2];
        tcase_add_checked_fixture(tc, bench_setup, bench_teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(
            tc, test_update_throughput_is_measured_at_the_paced_line_rate);
    } else {
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(
            tc, test_update_v1_to_v2_boots_on_test_then_confirm_keeps_it);
        tcase_add_test(
            tc, test_update_damaged_byte_fails_the_hash_and_v1_keeps_running);
        tcase_add_test(
            tc,
            test_update_image_failing_the_health_gate_is_reverted_by_reboot);
        tcase_add_test(
            tc, test_update_test_image_stopped_past_the_watchdog_is_reverted);
        tcase_add_test(tc,
                       test_update_cut_by_a_dropped_link_resumes_and_completes);
        tcase_add_test(
            tc,
            test_update_power_cycle_reverts_unconfirmed_and_keeps_confirmed);
        tcase_add_test(tc,
                       test_update_image_that_cannot_start_is_reverted_at_once);
        tcase_add_test(tc, test_update_sim_without_flash_takes_no_updates);
    }
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
