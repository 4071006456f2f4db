/* The firmware on an emulated Cortex-M33: the mps2-an505 image booted in
 * qemu-system-arm with its UART on a pseudo-terminal, talked to directly and
 * through tetherd, and compared with tether-sim running the same script;
 * and firmware update on it (docs/UPDATE.md): the bootloader, the two
 * slots in RAM and the test boot, over the pty with UPD_* requests and
 * through tetherd with `tetherctl flash` and its socket.  Two updates
 * through tetherd go through a proxy on QEMU's pty (itest.h): one damages
 * a chunk past the frame CRC, one pulls the cable mid-way.
 *
 * Environment: TETHER_FW_MPS2 (the image), TETHER_FW_MPS2_RESETS (the
 * port's reset test image), TETHER_FW_MPS2_V2 and TETHER_FW_MPS2_MUTE (the
 * update images at 0.2.0 and the mute 0.3.0; by default
 * tether-fw-v2.img and tether-fw-mute.img beside TETHER_FW_MPS2),
 * TETHER_QEMU_SH (scripts/qemu.sh), TETHERD, TETHERCTL, TETHER_SIM.  A
 * machine without qemu-system-arm fails every test here, by design: make
 * test installs it.
 *
 * Every process started here dies with the test that started it, whether
 * the test passes, fails or times out: each gets a parent-death signal,
 * which QEMU keeps through the script's exec (qemuproc.h).  The teardown
 * stops them in order after a test that ran to its end.  Every wait is
 * bounded. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cobs.h"
#include "crc32c.h"
#include "frame.h"
#include "itest.h"
#include "msg.h"
#include "qemuproc.h"
#include "sha256.h"
#include "simproc.h"
#include "update.h"
#include "wire.h"

#define WAIT_MS        10000
#define HEARD_MS       5000 /* QEMU notices a new reader within a second */
#define ARGV_MAX       24
#define TEXT_MAX       4096
#define DIR_MAX        80 /* short enough for a Unix socket path inside it */
#define FILE_MAX       (DIR_MAX + 24)
#define TRANSCRIPT_MAX 16384
#define CANON_MAX      160
#define BURST_PINGS    200 /* about 2.8 KB of commands in one write */

/* What the image and the simulator have in common (port_config.h). */
#define HEAP_TOTAL 16384u
#define CONST_CH3  3854u /* channel 3: 4/17 of 14-bit full scale */
#define RX_MAX     246u  /* a full frame, for UPD_DATA */
#define WINDOW     4u    /* UPD_DATA frames its RX FIFO holds */

struct run {
    char dir[DIR_MAX];
    char tty[FILE_MAX]; /* what tetherd opens: QEMU's pty, or the proxy's */
    char mcu[FILE_MAX]; /* QEMU's pty behind a proxy */
    char db[FILE_MAX];
    char conf[FILE_MAX];
    char log[FILE_MAX];
    char qlog[FILE_MAX];
    char sock[FILE_MAX];
    pid_t qemu;         /* QEMU with its pty linked at tty, or at mcu */
    pid_t daemon;       /* tetherd on tty */
    pid_t proxy;        /* the proxy from mcu to tty, if any */
    struct simproc q;   /* QEMU talked to directly */
    struct simproc sim; /* tether-sim talked to directly */
};

static struct run run;

/* ---- Fixtures ---- */

/* Each test's files live in a folder of its own under base.  The test's
 * process ends at once when an assertion fails, without its teardown: the
 * processes it started die with it (parent-death signal), and the folders
 * go with base, which the runner's process removes after each test case. */
static char base[DIR_MAX - 16];

static void make_base(void)
{
    snprintf(base, sizeof(base), "%.40s/tether-qemu-XXXXXX",
             itest_env_or("TMPDIR", "/tmp"));
    if (mkdtemp(base) == NULL) {
        perror("test_qemu: mkdtemp");
        exit(EXIT_FAILURE);
    }
}

static void remove_base(void)
{
    itest_remove_tree(base);
}

static void setup(void)
{
    char why[256];

    memset(&run, 0, sizeof(run));
    run.q.tty = run.sim.tty = run.q.out = run.sim.out = -1;
    snprintf(run.dir, sizeof(run.dir), "%s/t-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(run.dir));
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.mcu, sizeof(run.mcu), "%s/mcu", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.conf, sizeof(run.conf), "%s/tetherd.conf", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
    snprintf(run.qlog, sizeof(run.qlog), "%s/qemu.log", run.dir);
    snprintf(run.sock, sizeof(run.sock), "%s/tetherd.sock", run.dir);
    ck_assert_msg(qemuproc_check(qemuproc_image(), why, sizeof(why)) == 0, "%s",
                  why);
}

static void teardown(void)
{
    itest_kill(&run.daemon);
    if (run.proxy > 0)
        itest_proxy_stop(run.tty, &run.proxy);
    itest_kill(&run.qemu);
    if (run.q.pid > 0)
        simproc_stop(&run.q, 2000);
    if (run.sim.pid > 0)
        simproc_stop(&run.sim, 2000);
    itest_remove_tree(run.dir);
}

/* ---- Files and the daemon ---- */

/* Starts QEMU with its pty linked at link. */
static void start_qemu_linked(const char *link)
{
    int log = itest_open_log(run.qlog);
    char text[TEXT_MAX];

    run.qemu = qemuproc_start_linked(link, log);
    close(log);
    itest_read_file(run.qlog, text, sizeof(text));
    ck_assert_msg(run.qemu > 0, "QEMU made no pty link at %s: %s", link, text);
}

/* Starts tetherd on run.tty with run.conf, its socket at run.sock, logging
 * to run.log.  A user other than root may send commands through the
 * socket when the admin group is one of its own. */
static void start_daemon(void)
{
    const char *args[ARGV_MAX] = {"--config", run.conf, "--device",
                                  run.tty,    "--db",   run.db,
                                  "--socket", run.sock, "-v"};
    size_t n = 9;
    struct group *g = getgrgid(getegid());
    int log = itest_open_log(run.log);

    if (geteuid() != 0 && g != NULL) {
        args[n++] = "--admin-group";
        args[n++] = g->gr_name;
    }
    args[n] = NULL;
    if (access(run.conf, F_OK) != 0)
        itest_write_file(run.conf, "", 0644);
    run.daemon = simproc_spawn(itest_env_or("TETHERD", "build/tetherd"), args,
                               NULL, log, log);
    close(log);
}

/* Waits until run.log contains needle; returns 1 if it did in time. */
static int wait_log(const char *needle, int timeout_ms)
{
    return itest_wait_log(run.log, needle, timeout_ms);
}

/* Runs tetherctl with args against run.sock; returns its exit status and
 * puts what it printed in out. */
static int tetherctl(const char *const *args, char *out, size_t cap)
{
    char file[FILE_MAX];

    snprintf(file, sizeof(file), "%s/ctl.out", run.dir);
    return itest_tetherctl(run.sock, file, args, out, cap, 10000);
}

/* Runs tetherctl with args; fails the test unless it exits with status and
 * prints want. */
static void ctl_expect(const char *const *args, int status, const char *want)
{
    char out[TEXT_MAX];
    int got = tetherctl(args, out, sizeof(out));

    ck_assert_msg(got == status && strstr(out, want) != NULL,
                  "tetherctl %s %s: exit %d: %s", args[0], args[1], got, out);
}

/* Polls the database while tetherd writes it until sql, a query for one
 * number, gives at least min, or timeout_ms has passed; returns the last
 * value.  A slow machine takes longer instead of failing. */
static long long wait_db(const char *sql, long long min, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    long long v = -1;

    do {
        sqlite3 *db;

        if (sqlite3_open_v2(run.db, &db, SQLITE_OPEN_READONLY, NULL) ==
            SQLITE_OK) {
            sqlite3_busy_timeout(db, 1000);
            v = itest_query_int(db, sql);
        }
        sqlite3_close(db);
        if (v >= min)
            break;
        usleep(200000);
    } while (simproc_now_ms() < end);
    return v;
}

/* Starts QEMU and tetherd on it, with the daemon's configuration conf;
 * waits for the daemon to have the MCU's HELLO. */
static void start_qemu_and_daemon(const char *conf)
{
    itest_write_file(run.conf, conf, 0644);
    start_qemu_linked(run.tty);
    start_daemon();
    ck_assert_msg(wait_log("mcu hello: board=2 ", WAIT_MS),
                  "tetherd got no HELLO from the image");
}

/* ---- Talking to a firmware directly ---- */

static void write_all(struct simproc *s, const uint8_t *p, size_t n)
{
    int64_t end = simproc_now_ms() + WAIT_MS;

    while (n > 0) {
        struct pollfd pfd = {s->tty, POLLOUT, 0};
        ssize_t k = write(s->tty, p, n);

        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        ck_assert_msg(k < 0 && (errno == EAGAIN || errno == EINTR),
                      "write to %s: %s", s->pty, strerror(errno));
        ck_assert_msg(simproc_now_ms() < end, "%s takes no input", s->pty);
        poll(&pfd, 1, 100);
    }
}

/* Encodes a command frame with the next sequence number. */
static size_t encode(struct simproc *s, uint8_t *out, size_t cap, uint8_t type,
                     const uint8_t *p, size_t n)
{
    int len = frame_encode(out, cap, type, s->tx_seq++, p, n);

    ck_assert_int_gt(len, 0);
    return (size_t)len;
}

static uint16_t send_cmd(struct simproc *s, uint8_t type, const uint8_t *p,
                         size_t n)
{
    uint8_t w[FRAME_WIRE_MAX];
    uint16_t seq = s->tx_seq;

    write_all(s, w, encode(s, w, sizeof(w), type, p, n));
    return seq;
}

/* Waits for the ACK or NACK of command seq; returns its error code (0 for
 * an ACK). */
static uint8_t wait_answer(struct simproc *s, uint16_t seq)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    struct frame f;
    int left;

    while ((left = (int)(end - simproc_now_ms())) > 0) {
        struct msg_ack a;

        if (!simproc_next(s, &f, left))
            break;
        if (f.type == MSG_ACK && msg_decode_ack(f.payload, f.len, &a) == 0 &&
            a.seq == seq)
            return 0;
        if (f.type == MSG_NACK && msg_decode_nack(f.payload, f.len, &a) == 0 &&
            a.seq == seq)
            return a.error;
    }
    ck_abort_msg("no answer from %s to command seq %u", s->pty, seq);
    return 0xff;
}

static void start_image_direct(const char *image)
{
    int log = itest_open_log(run.qlog);
    int ret;
    char text[TEXT_MAX];

    ret = qemuproc_start(&run.q, image, log);
    close(log);
    itest_read_file(run.qlog, text, sizeof(text));
    ck_assert_msg(ret == 0, "QEMU did not start: %s", text);
    ck_assert_msg(qemuproc_wait_heard(&run.q, HEARD_MS),
                  "the image sent nothing on %s", run.q.pty);
}

static void start_qemu_direct(void)
{
    start_image_direct(qemuproc_image());
}

/* ---- Direct tests ---- */

START_TEST(test_qemu_image_boots_says_hello_and_streams_adc_and_heap)
{
    struct msg_hello h;
    struct msg_heap hp;
    struct msg_adc a, prev = {0};
    struct frame f;
    uint16_t seq;
    int batches = 0;

    start_qemu_direct();
    seq = send_cmd(&run.q, MSG_GET_HELLO, NULL, 0);
    ck_assert_int_eq(wait_answer(&run.q, seq), 0);
    ck_assert(simproc_wait_type(&run.q, MSG_HELLO, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, &h), 0);
    ck_assert_uint_eq(h.proto_version, FRAME_VERSION);
    ck_assert_uint_eq(h.board, MSG_BOARD_MPS2_AN505);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_POWER_ON);
    ck_assert_uint_eq(h.adc_bits, 14);
    ck_assert_uint_eq(h.adc_channels, 4);
    ck_assert_uint_eq(h.heap_total, HEAP_TOTAL);
    ck_assert_uint_eq(h.rx_max, RX_MAX);
    ck_assert_uint_eq(h.fw_version, 0x000100u);
    ck_assert_uint_eq(h.caps, MSG_CAP_ADC | MSG_CAP_HEAP | MSG_CAP_SCENARIO |
                                  MSG_CAP_LOG | MSG_CAP_UPDATE);

    /* Ten batches at the default 100 scans a second, back to back on the
     * MCU's clock: no scan missed, the constant channel constant. */
    while (batches < 10) {
        ck_assert(simproc_wait_type(&run.q, MSG_ADC, &f, WAIT_MS));
        ck_assert_int_eq(msg_decode_adc(f.payload, f.len, &a), 0);
        ck_assert_uint_eq(a.period_us, 10000u);
        ck_assert_uint_eq(a.mask, 0x000fu);
        for (unsigned k = 0; k < a.scans; k++)
            ck_assert_uint_eq(msg_adc_value(&a, k, 3), CONST_CH3);
        if (batches > 0)
            ck_assert_uint_eq(a.t0_us,
                              prev.t0_us + prev.scans * prev.period_us);
        prev = a;
        batches++;
    }
    ck_assert(simproc_wait_type(&run.q, MSG_HEAP, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_heap(f.payload, f.len, &hp), 0);
    ck_assert_uint_eq(hp.total, HEAP_TOTAL);
    ck_assert_uint_eq(hp.free + hp.used, hp.total);
    ck_assert_uint_eq(hp.scenario, MSG_SCEN_STEADY);
    ck_assert_uint_gt(hp.allocs, 0);
    ck_assert_uint_eq(hp.failures, 0);
}
END_TEST

START_TEST(test_qemu_image_answers_every_command_of_a_burst)
{
    static uint8_t burst[BURST_PINGS * FRAME_WIRE_LEN(MSG_PING_LEN)];
    uint16_t first;
    size_t n = 0, sent = 0;
    unsigned acks = 0, pongs = 0;
    int64_t end;
    struct msg_stats st;
    struct frame f;

    start_qemu_direct();
    first = run.q.tx_seq;
    for (unsigned i = 0; i < BURST_PINGS; i++) {
        uint8_t p[MSG_PING_LEN];

        ck_assert_int_eq(msg_encode_u32(p, sizeof(p), 0x10000u + i),
                         (int)MSG_PING_LEN);
        n += encode(&run.q, burst + n, sizeof(burst) - n, MSG_PING, p,
                    sizeof(p));
    }
    /* The commands go out as fast as the pty takes them, far faster than
     * a UART would carry them: QEMU's UART takes a byte per interrupt while
     * the loop answers.  The answers are read as they come, as tetherd
     * reads, so that none is dropped for want of a reader. */
    end = simproc_now_ms() + 2 * WAIT_MS;
    while (acks < BURST_PINGS || pongs < BURST_PINGS) {
        struct pollfd pfd = {run.q.tty, POLLIN, 0};
        struct msg_ack a;
        struct msg_pong p;

        ck_assert_msg(simproc_now_ms() < end,
                      "%u ACKs and %u PONGs of %u in time", acks, pongs,
                      BURST_PINGS);
        if (sent < n) {
            ssize_t k = write(run.q.tty, burst + sent, n - sent);

            sent += k > 0 ? (size_t)k : 0;
            pfd.events |= POLLOUT;
        }
        if (!simproc_next(&run.q, &f, 0)) {
            poll(&pfd, 1, 100);
            continue;
        }
        if (f.type == MSG_ACK && msg_decode_ack(f.payload, f.len, &a) == 0) {
            ck_assert_msg(a.seq == (uint16_t)(first + acks),
                          "ACK for %u, expected %u", a.seq,
                          (uint16_t)(first + acks));
            acks++;
        } else if (f.type == MSG_PONG &&
                   msg_decode_pong(f.payload, f.len, &p) == 0) {
            ck_assert_uint_eq(p.token, 0x10000u + pongs);
            pongs++;
        }
        ck_assert(f.type != MSG_NACK);
    }
    /* The firmware's own account: every frame good, no byte lost. */
    ck_assert(simproc_wait_type(&run.q, MSG_STATS, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_stats(f.payload, f.len, &st), 0);
    ck_assert_uint_eq(st.rx_frames_ok, BURST_PINGS);
    ck_assert_uint_eq(st.rx_overruns, 0);
    ck_assert_uint_eq(st.rx_crc_errors + st.rx_cobs_errors, 0);
}
END_TEST

/* Waits for the next boot's HELLO (seq 0) and returns it. */
static struct msg_hello boot_hello(struct simproc *s)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    struct msg_hello h;
    struct frame f;

    do {
        ck_assert_msg(
            simproc_wait_type(s, MSG_HELLO, &f, (int)(end - simproc_now_ms())),
            "no HELLO of a new boot");
    } while (f.seq != 0);
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, &h), 0);
    ck_assert_uint_lt(h.uptime_ms, 1000);
    return h;
}

/* Waits for the next boot's HELLO and returns its reset cause. */
static uint8_t next_boot(struct simproc *s)
{
    return boot_hello(s).reset_cause;
}

START_TEST(test_qemu_watchdog_and_fault_resets_are_reported_with_their_causes)
{
    char why[256];
    struct frame f;

    /* The test image hangs two seconds after a power-on, and faults two
     * seconds after the watchdog reset that follows
     * (mcu-firmware/port/mps2-an505/reset_test.c). */
    ck_assert_msg(qemuproc_check(qemuproc_resets_image(), why, sizeof(why)) ==
                      0,
                  "%s", why);
    start_image_direct(qemuproc_resets_image());
    ck_assert_uint_eq(next_boot(&run.q), MSG_RESET_WATCHDOG);
    ck_assert_uint_eq(next_boot(&run.q), MSG_RESET_FAULT);
    /* Then it runs on: three reports, and no new boot among them. */
    for (int stats = 0; stats < 3;) {
        ck_assert(simproc_next(&run.q, &f, WAIT_MS));
        ck_assert_msg(f.type != MSG_HELLO || f.seq != 0,
                      "the image reset again");
        stats += f.type == MSG_STATS;
    }
    ck_assert_int_eq(kill(run.q.pid, 0), 0);
}
END_TEST

/* ---- Through tetherd ---- */

START_TEST(test_qemu_tetherd_stores_hello_adc_and_heap_from_the_image)
{
    char text[TEXT_MAX];
    sqlite3 *db;

    start_qemu_and_daemon("");
    ck_assert_int_ge(
        wait_db("SELECT count(DISTINCT seq) FROM adc", 20, 3 * WAIT_MS), 20);
    ck_assert_int_ge(wait_db("SELECT count(*) FROM heap", 2, WAIT_MS), 2);
    itest_stop_cleanly(&run.daemon, 3000);

    db = itest_db_open(run.db);
    itest_query_text(db, "SELECT detail FROM events WHERE kind = 'hello'", text,
                     sizeof(text));
    ck_assert_msg(strstr(text, "board=2 fw=0.1.0 ") != NULL, "%s", text);
    ck_assert_ptr_nonnull(strstr(text, " reset_cause=1 adc=4x14 heap=16384 "));
    itest_assert_stored_telemetry(db, 2);
    ck_assert_int_eq(
        itest_query_int(db, "SELECT count(*) FROM heap WHERE total != 16384"),
        0);
    itest_query_text(db,
                     "SELECT detail FROM events WHERE kind = 'stats' "
                     "ORDER BY t_us DESC LIMIT 1",
                     text, sizeof(text));
    ck_assert_msg(strstr(text, " seq_gaps=0 ") != NULL, "%s", text);
    ck_assert_ptr_nonnull(strstr(text, " mcu_tx_dropped=0 "));
    sqlite3_close(db);
}
END_TEST

START_TEST(test_qemu_rate_command_through_tetherd_is_acknowledged_and_applied)
{
    const char *rate[] = {"send", "set-rate", "250", NULL};
    const char *zero[] = {"send", "set-rate", "0", NULL};
    const char *fast[] = {"send", "set-rate", "20000", NULL};
    sqlite3 *db;
    long long most;

    start_qemu_and_daemon("");
    ctl_expect(rate, 0, "ACK");
    /* Refused: zero, and more than this board's 10,000 a second. */
    ctl_expect(zero, 1, "NACK: bad_value");
    ctl_expect(fast, 1, "NACK: bad_value");
    /* A whole second at the new rate, once one has passed: 250 samples of
     * channel 0, give or take the scans that straddle its edges. */
    most = wait_db("SELECT max(count) FROM adc_1s WHERE channel = 0", 248,
                   3 * WAIT_MS);
    itest_stop_cleanly(&run.daemon, 3000);
    ck_assert_msg(most >= 248, "no second at 250 Hz: at most %lld samples",
                  most);

    db = itest_db_open(run.db);
    most =
        itest_query_int(db, "SELECT max(count) FROM adc_1s WHERE channel = 0");
    ck_assert_msg(most <= 252, "a second held %lld samples at 250 Hz", most);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_qemu_leak_scenario_raises_the_daemons_heap_alerts)
{
    const char *period[] = {"send", "heap-period", "100", NULL};
    const char *leak[] = {"send", "scenario", "leak", "1500", NULL};
    char out[TEXT_MAX];
    sqlite3 *db;

    start_qemu_and_daemon(
        "[alert]\nheap_low = 25%\nheap_hysteresis = 5%\nhold_off_s = 1\n"
        "hold_off_reports = 3\nleak_window_s = 4\nleak_horizon_s = 60\n"
        "leak_min_reports = 10\n");
    ctl_expect(period, 0, "ACK");
    ctl_expect(leak, 0, "ACK");
    /* 16 KiB at 1.5 KB/s: the trend within seconds, the threshold (4 KiB
     * free) within about ten. */
    ck_assert_msg(wait_log("alert heap_leak", 15000), "no heap_leak alert");
    ck_assert_msg(wait_log("alert heap_low", 15000), "no heap_low alert");
    ck_assert(wait_log("mcu: scenario leak 1500 B/s", 1000));
    itest_stop_cleanly(&run.daemon, 3000);

    db = itest_db_open(run.db);
    itest_query_text(
        db, "SELECT name FROM alerts WHERE state = 'raised' ORDER BY t_us", out,
        sizeof(out));
    ck_assert_msg(strstr(out, "heap_leak\n") != NULL, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "heap_low\n"));
    ck_assert_int_gt(itest_query_int(db, "SELECT count(*) FROM heap WHERE "
                                         "scenario = 2"),
                     10);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_qemu_reboot_is_detected_as_a_software_reset_and_link_recovers)
{
    const char *reboot[] = {"send", "reboot", NULL};
    char out[TEXT_MAX];
    sqlite3 *db;

    start_qemu_and_daemon("");
    ctl_expect(reboot, 0, "ACK");
    ck_assert_msg(wait_log("mcu reset: software (cause 3)", WAIT_MS),
                  "no reset detected");
    ck_assert(wait_log(" reset_cause=3 ", WAIT_MS));
    sleep(2);                               /* a heap report of the new boot */
    ck_assert_int_eq(kill(run.qemu, 0), 0); /* QEMU reset, not exited */
    itest_stop_cleanly(&run.daemon, 3000);

    db = itest_db_open(run.db);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(*) FROM alerts WHERE "
                                         "name = 'mcu_reset' AND value = 3"),
                     1);
    /* After the reset: data again, on the new boot's clock. */
    ck_assert_int_gt(itest_query_int(db,
                                     "SELECT count(*) FROM heap WHERE t_us > "
                                     "(SELECT t_us FROM alerts WHERE name = "
                                     "'mcu_reset') AND mcu_t_us < 5000000"),
                     0);
    ck_assert_int_gt(itest_query_int(db,
                                     "SELECT count(*) FROM adc WHERE t_us > "
                                     "(SELECT t_us FROM alerts WHERE name = "
                                     "'mcu_reset')"),
                     0);
    itest_query_text(
        db, "SELECT detail FROM events WHERE kind = 'link' ORDER BY t_us", out,
        sizeof(out));
    ck_assert_msg(strstr(out, "disconnected") == NULL,
                  "the link dropped over a reset: %s", out);
    sqlite3_close(db);
}
END_TEST

/* ---- Firmware update (docs/UPDATE.md) ---- */

#define STATUS_MS   3000   /* an UPD_STATUS; the slots are RAM, so END too */
#define OUTSTANDING 8u     /* the sender's own cap on chunks in flight */
#define BODY_MAX    65536u /* PORT_SLOT_SIZE */
#define GATE_CONF   "[flash]\nhealth_s = 2\nwait_ms = 10000\ntimeout_ms = 500\n"

/* An update image as the MCU gets it: the header verbatim, then the
 * body. */
struct image {
    struct image_hdr hdr;
    uint8_t raw[IMAGE_HDR_LEN];
    uint8_t body[BODY_MAX];
    uint32_t len;
};

static struct image v2, mute, other;

/* The update image $env, by default name beside the firmware image (the
 * port builds them together). */
static void image_path(char *out, size_t cap, const char *env, const char *name)
{
    const char *fw = qemuproc_image();
    const char *slash = strrchr(fw, '/');

    if (getenv(env) != NULL && getenv(env)[0] != '\0')
        snprintf(out, cap, "%s", getenv(env));
    else
        snprintf(out, cap, "%.*s%s", slash != NULL ? (int)(slash - fw + 1) : 0,
                 fw, name);
}

static void load_image(struct image *im, const char *env, const char *name)
{
    char path[PATH_MAX];
    uint8_t *all = malloc(IMAGE_HDR_LEN + BODY_MAX + 1);
    size_t n;
    FILE *f;

    ck_assert_ptr_nonnull(all);
    image_path(path, sizeof(path), env, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "no update image at %s", path);
    n = fread(all, 1, IMAGE_HDR_LEN + BODY_MAX + 1, f);
    fclose(f);
    ck_assert_msg(n > IMAGE_HDR_LEN && n <= IMAGE_HDR_LEN + BODY_MAX,
                  "%s: %zu bytes", path, n);
    memcpy(im->raw, all, IMAGE_HDR_LEN);
    ck_assert_int_eq(image_decode(im->raw, IMAGE_HDR_LEN, &im->hdr), 0);
    im->len = (uint32_t)(n - IMAGE_HDR_LEN);
    ck_assert_uint_eq(im->hdr.body_len, im->len);
    memcpy(im->body, all + IMAGE_HDR_LEN, im->len);
    free(all);
}

/* A made-up image (body of len bytes in im->body) on the model of v2's
 * header: the same board and layout, its own version and hash. */
static void seal_image(struct image *im, uint32_t len, uint32_t version)
{
    im->hdr = v2.hdr;
    im->hdr.fw_version = version;
    im->hdr.body_len = len;
    im->len = len;
    sha256_digest(im->body, len, im->hdr.hash);
    ck_assert_int_eq(image_encode(im->raw, sizeof(im->raw), &im->hdr),
                     (int)IMAGE_HDR_LEN);
}

static void update_setup(void)
{
    setup();
    load_image(&v2, "TETHER_FW_MPS2_V2", "tether-fw-v2.img");
    load_image(&mute, "TETHER_FW_MPS2_MUTE", "tether-fw-mute.img");
    ck_assert_uint_eq(v2.hdr.fw_version, 0x000200u);
    ck_assert_uint_eq(mute.hdr.fw_version, 0x000300u);
}

/* The UPD_STATUS answering seq, within timeout_ms; 0 if none came.  A
 * reset meanwhile (the HELLO of a new boot) fails the test at once, with
 * its cause: the MCU forgot the upload, and no answer will come. */
static int status_for(struct simproc *s, uint16_t seq,
                      struct msg_upd_status *st, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    struct msg_hello h;
    struct frame f;
    int left;

    while ((left = (int)(end - simproc_now_ms())) > 0) {
        if (!simproc_next(s, &f, left))
            return 0;
        if (f.type == MSG_HELLO && f.seq == 0 &&
            msg_decode_hello(f.payload, f.len, &h) == 0)
            ck_abort_msg("the MCU reset (cause %u) while request seq %u "
                         "waited for its answer",
                         h.reset_cause, seq);
        if (f.type == MSG_UPD_STATUS &&
            msg_decode_upd_status(f.payload, f.len, st) == 0 &&
            st->req_seq == seq)
            return 1;
    }
    return 0;
}

/* Sends an update request; returns the error of its answer. */
static uint8_t request(struct simproc *s, uint8_t type, const uint8_t *p,
                       size_t n, struct msg_upd_status *st)
{
    uint16_t seq = send_cmd(s, type, p, n);

    ck_assert_msg(status_for(s, seq, st, STATUS_MS),
                  "no UPD_STATUS for type 0x%02x", type);
    return st->error;
}

static uint16_t send_chunk(struct simproc *s, const struct image *im,
                           uint32_t off, uint16_t chunk)
{
    uint8_t p[FRAME_PAYLOAD_MAX];
    uint32_t left = im->len - off;
    struct msg_upd_data d = {off, im->body + off, left < chunk ? left : chunk};
    int n = msg_encode_upd_data(p, sizeof(p), &d);

    ck_assert_int_gt(n, 0);
    return send_cmd(s, MSG_UPD_DATA, p, (size_t)n);
}

/* BEGIN (which resumes an upload of the same header), then chunks,
 * go-back-N with the window the MCU offers, until it holds upto bytes
 * (the whole body when upto is 0). */
static void upload(struct simproc *s, const struct image *im, uint32_t upto)
{
    struct msg_upd_status st;
    uint16_t seqs[OUTSTANDING];
    size_t head = 0, count = 0;
    uint32_t next, acked;
    unsigned window;

    if (upto == 0)
        upto = im->len;
    ck_assert_uint_eq(request(s, MSG_UPD_BEGIN, im->raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_OK);
    ck_assert_uint_eq(st.chunk_max, MSG_UPD_CHUNK_MAX);
    ck_assert_uint_eq(st.window, WINDOW);
    window = st.window < OUTSTANDING ? st.window : OUTSTANDING;
    next = acked = st.stored;
    while (acked < upto) {
        while (next < upto && count < window) {
            uint32_t left = im->len - next;

            seqs[(head + count++) % OUTSTANDING] =
                send_chunk(s, im, next, st.chunk_max);
            next += left < st.chunk_max ? left : st.chunk_max;
        }
        ck_assert_msg(status_for(s, seqs[head % OUTSTANDING], &st, STATUS_MS),
                      "no answer to UPD_DATA at %u", acked);
        head++;
        count--;
        acked = st.stored > acked ? st.stored : acked;
        if (st.error == MSG_UPD_EOFFSET) {
            next = acked; /* a chunk was lost: go back */
            count = 0;
        } else {
            ck_assert_uint_eq(st.error, MSG_UPD_OK);
        }
    }
}

/* The whole update up to the test boot: upload, END, BOOT; returns the
 * HELLO of whatever runs after the reset that follows. */
static struct msg_hello flash_direct(struct simproc *s, const struct image *im)
{
    struct msg_upd_status st;

    upload(s, im, 0);
    ck_assert_uint_eq(request(s, MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_VERIFIED);
    ck_assert_uint_eq(st.stored, im->len);
    ck_assert_uint_eq(request(s, MSG_UPD_BOOT, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_BOOTING);
    return boot_hello(s);
}

/* What runs: the answer to QUERY. */
static struct msg_upd_status query(struct simproc *s)
{
    struct msg_upd_status st;

    ck_assert_uint_eq(request(s, MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    return st;
}

static struct msg_hello reboot_direct(struct simproc *s)
{
    uint16_t seq = send_cmd(s, MSG_REBOOT, NULL, 0);

    ck_assert_int_eq(wait_answer(s, seq), 0);
    return boot_hello(s);
}

/* QEMU's first HELLO may be lost (QEMU drops output until it notices the
 * reader), so ask for one. */
static struct msg_hello ask_hello(struct simproc *s)
{
    uint16_t seq = send_cmd(s, MSG_GET_HELLO, NULL, 0);
    struct msg_hello h;
    struct frame f;

    ck_assert_int_eq(wait_answer(s, seq), 0);
    ck_assert(simproc_wait_type(s, MSG_HELLO, &f, WAIT_MS));
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, &h), 0);
    return h;
}

/* Expects the factory image (0.1.0) running, as after a power-on. */
static void expect_factory(struct simproc *s)
{
    struct msg_hello h = ask_hello(s);
    struct msg_upd_status st = query(s);

    ck_assert_uint_eq(h.fw_version, 0x000100u);
    ck_assert_uint_eq(h.caps & (MSG_CAP_UPDATE | MSG_CAP_TESTING),
                      MSG_CAP_UPDATE);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);
    ck_assert_uint_eq(st.fw_version, 0x000100u);
}

START_TEST(test_qemu_update_v1_to_v2_boots_on_test_and_confirm_keeps_it)
{
    struct msg_upd_status st;
    struct msg_hello h;
    pid_t pid;

    start_qemu_direct();
    pid = run.q.pid;
    expect_factory(&run.q);

    h = flash_direct(&run.q, &v2);
    ck_assert_uint_eq(h.fw_version, 0x000200u);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(h.caps & MSG_CAP_TESTING, MSG_CAP_TESTING);
    st = query(&run.q);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_TEST); /* from slot 0 */
    ck_assert_uint_eq(st.fw_version, 0x000200u);

    ck_assert_uint_eq(request(&run.q, MSG_UPD_CONFIRM, NULL, 0, &st),
                      MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, 0);
    /* A repeated CONFIRM finds nothing on test. */
    ck_assert_uint_eq(request(&run.q, MSG_UPD_CONFIRM, NULL, 0, &st),
                      MSG_UPD_ENOTEST);
    h = reboot_direct(&run.q);
    ck_assert_uint_eq(h.fw_version, 0x000200u);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(h.caps & MSG_CAP_TESTING, 0);
    ck_assert_uint_eq(query(&run.q).boot, 0);

    /* The next update goes to the other slot, and a test image that is
     * not confirmed goes back to the confirmed one, not the factory. */
    h = flash_direct(&run.q, &mute);
    ck_assert_uint_eq(h.fw_version, 0x000300u);
    ck_assert_uint_eq(query(&run.q).boot,
                      MSG_UPD_BOOT_TEST | MSG_UPD_BOOT_SLOT1);
    h = reboot_direct(&run.q);
    ck_assert_uint_eq(h.fw_version, 0x000200u);
    st = query(&run.q);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_REVERTED);
    ck_assert_uint_eq(st.fw_version, 0x000200u);
    /* One QEMU process throughout: resets, never a restart. */
    ck_assert_int_eq(run.q.pid, pid);
    ck_assert_int_eq(kill(pid, 0), 0);
}
END_TEST

START_TEST(test_qemu_update_damaged_upload_fails_the_hash_and_v1_keeps_running)
{
    struct msg_upd_status st;
    struct msg_hello h;

    /* v2's header with one bit of its body flipped on the way: what a
     * fault past the frame CRC would do. */
    other = v2;
    other.body[other.len / 2] ^= 0x01;
    start_qemu_direct();
    expect_factory(&run.q);
    upload(&run.q, &other, 0);
    ck_assert_uint_eq(request(&run.q, MSG_UPD_END, NULL, 0, &st),
                      MSG_UPD_EHASH);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);
    ck_assert_uint_eq(request(&run.q, MSG_UPD_BOOT, NULL, 0, &st),
                      MSG_UPD_ESTATE);
    h = reboot_direct(&run.q);
    ck_assert_uint_eq(h.fw_version, 0x000100u);
    ck_assert_uint_eq(query(&run.q).boot, MSG_UPD_BOOT_FACTORY);
}
END_TEST

START_TEST(test_qemu_update_image_failing_the_health_gate_is_reverted_by_reboot)
{
    struct msg_upd_status st;
    struct msg_hello h;
    struct frame f;

    start_qemu_direct();
    expect_factory(&run.q);
    h = flash_direct(&run.q, &mute);
    ck_assert_uint_eq(h.fw_version, 0x000300u);
    ck_assert_uint_eq(h.caps & MSG_CAP_TESTING, MSG_CAP_TESTING);
    /* The gate: a HEAP report every second by default; none comes. */
    ck_assert(!simproc_wait_type(&run.q, MSG_HEAP, &f, 2500));
    h = reboot_direct(&run.q);
    ck_assert_uint_eq(h.fw_version, 0x000100u);
    ck_assert_uint_eq(h.caps & MSG_CAP_TESTING, 0);
    st = query(&run.q);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY | MSG_UPD_BOOT_REVERTED);
    ck_assert(simproc_wait_type(&run.q, MSG_HEAP, &f, 2500));
}
END_TEST

START_TEST(test_qemu_update_cut_by_a_closed_pty_resumes_and_completes)
{
    struct msg_upd_status st;
    struct termios tio;
    struct msg_hello h;
    uint32_t half = v2.len / 2u;
    int answered = 0;

    start_qemu_direct();
    expect_factory(&run.q);
    upload(&run.q, &v2, half);
    /* The link drops: our end closes, and opens again later.  QEMU
     * notices the new reader within a second and drops what the firmware
     * sends until then, so BEGIN is sent again until it is answered, as
     * a sender that lost its link does. */
    close(run.q.tty);
    usleep(300 * 1000);
    run.q.tty = open(run.q.pty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    ck_assert_int_ge(run.q.tty, 0);
    ck_assert_int_eq(tcgetattr(run.q.tty, &tio), 0);
    cfmakeraw(&tio);
    ck_assert_int_eq(tcsetattr(run.q.tty, TCSANOW, &tio), 0);
    frame_rx_init(&run.q.rx, run.q.rxbuf, sizeof(run.q.rxbuf));
    for (int tries = 0; tries < 8 && !answered; tries++) {
        uint16_t seq = send_cmd(&run.q, MSG_UPD_BEGIN, v2.raw, IMAGE_HDR_LEN);

        answered = status_for(&run.q, seq, &st, 1000);
    }
    ck_assert_msg(answered, "no answer to BEGIN after the link came back");
    ck_assert_uint_eq(st.error, MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_RECEIVING);
    ck_assert_uint_ge(st.stored, half);
    ck_assert_uint_lt(st.stored, v2.len);
    h = flash_direct(&run.q, &v2); /* BEGIN resumes; then the rest */
    ck_assert_uint_eq(h.fw_version, 0x000200u);
}
END_TEST

START_TEST(test_qemu_update_image_hanging_at_start_is_reverted_by_the_watchdog)
{
    uint32_t loop = v2.hdr.load_addr + 64u;
    struct msg_hello h;

    /* A vector table whose every handler, reset included, is a branch to
     * itself: the image hangs before it could start a watchdog of its
     * own, so only the one the bootloader started can end it. */
    memset(&other, 0, sizeof(other));
    wire_put_u32(&other.body[0], 0x38001000u); /* a stack pointer in SSRAM2 */
    for (unsigned i = 1; i < 16; i++)
        wire_put_u32(&other.body[4 * i], loop | 1u); /* Thumb */
    other.body[64] = 0xfe;                           /* b . */
    other.body[65] = 0xe7;
    seal_image(&other, 68, 0x000400u);

    start_qemu_direct();
    expect_factory(&run.q);
    h = flash_direct(&run.q, &other);
    ck_assert_uint_eq(h.fw_version, 0x000100u);
    ck_assert_uint_eq(query(&run.q).boot,
                      MSG_UPD_BOOT_FACTORY | MSG_UPD_BOOT_REVERTED);
}
END_TEST

START_TEST(test_qemu_update_image_for_another_layout_is_refused_at_begin)
{
    struct msg_upd_status st;

    start_qemu_direct();
    expect_factory(&run.q);
    /* Linked for another address, or not RAM-loaded: it could not run
     * from the execution region. */
    other = v2;
    other.hdr.load_addr += 0x1000u;
    ck_assert_int_eq(image_encode(other.raw, sizeof(other.raw), &other.hdr),
                     (int)IMAGE_HDR_LEN);
    ck_assert_uint_eq(
        request(&run.q, MSG_UPD_BEGIN, other.raw, IMAGE_HDR_LEN, &st),
        MSG_UPD_ELAYOUT);
    other.hdr = v2.hdr;
    other.hdr.flags = 0;
    other.hdr.load_addr = 0;
    ck_assert_int_eq(image_encode(other.raw, sizeof(other.raw), &other.hdr),
                     (int)IMAGE_HDR_LEN);
    ck_assert_uint_eq(
        request(&run.q, MSG_UPD_BEGIN, other.raw, IMAGE_HDR_LEN, &st),
        MSG_UPD_ELAYOUT);
    /* Larger than a slot. */
    other.hdr = v2.hdr;
    other.hdr.body_len = BODY_MAX + 1u;
    ck_assert_int_eq(image_encode(other.raw, sizeof(other.raw), &other.hdr),
                     (int)IMAGE_HDR_LEN);
    ck_assert_uint_eq(
        request(&run.q, MSG_UPD_BEGIN, other.raw, IMAGE_HDR_LEN, &st),
        MSG_UPD_ESIZE);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);
}
END_TEST

START_TEST(test_qemu_update_restarting_qemu_loses_the_slots_and_runs_factory)
{
    struct msg_upd_status st;
    struct msg_hello h;

    start_qemu_direct();
    expect_factory(&run.q);
    h = flash_direct(&run.q, &v2);
    ck_assert_uint_eq(h.fw_version, 0x000200u);
    ck_assert_uint_eq(request(&run.q, MSG_UPD_CONFIRM, NULL, 0, &st),
                      MSG_UPD_OK);
    /* A power-off: the slots are RAM. */
    simproc_stop(&run.q, 2000);
    start_qemu_direct();
    expect_factory(&run.q);
    ck_assert_uint_eq(ask_hello(&run.q).reset_cause, MSG_RESET_POWER_ON);
}
END_TEST

/* ---- Firmware update through tetherd ---- */

/* Waits until the events table has a HELLO after the flash's outcome
 * whose detail contains want; returns 1 if one came in time. */
static int wait_hello_after_flash(const char *want, int timeout_ms)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM events WHERE kind = 'hello' AND detail "
             "LIKE '%%%s%%' AND t_us > (SELECT max(t_us) FROM events WHERE "
             "kind = 'flash' AND detail NOT LIKE 'expected %%')",
             want);
    return wait_db(sql, 1, timeout_ms) >= 1;
}

START_TEST(test_qemu_tetherctl_flash_v1_to_v2_is_confirmed_and_kept)
{
    char img[PATH_MAX], out[TEXT_MAX];
    const char *flash[] = {"flash", img, NULL};
    const char *reboot[] = {"send", "reboot", NULL};
    int got;

    image_path(img, sizeof(img), "TETHER_FW_MPS2_V2", "tether-fw-v2.img");
    ck_assert_ptr_nonnull(realpath(img, out));
    snprintf(img, sizeof(img), "%s", out);
    start_qemu_and_daemon(GATE_CONF);
    got = tetherctl(flash, out, sizeof(out));
    ck_assert_msg(got == 0 && strstr(out, "flash 1: confirmed: 0.2.0 runs (was "
                                          "0.1.0)") != NULL,
                  "tetherctl flash: exit %d: %s", got, out);
    ck_assert(wait_log("mcu hello: board=2 fw=0.2.0 ", WAIT_MS));
    /* Confirmed: a reset starts 0.2.0 again. */
    ctl_expect(reboot, 0, "ACK");
    ck_assert_msg(wait_hello_after_flash("fw=0.2.0 %reset_cause=3 ", WAIT_MS),
                  "no HELLO of 0.2.0 after the reboot");
    ck_assert_int_eq(
        wait_db("SELECT count(*) FROM events WHERE kind = 'flash' AND "
                "detail LIKE 'confirmed 1:%'",
                1, WAIT_MS),
        1);
    itest_stop_cleanly(&run.daemon, 3000);
}
END_TEST

START_TEST(test_qemu_tetherctl_flash_of_the_mute_image_is_reverted_by_the_gate)
{
    char img[PATH_MAX], out[TEXT_MAX];
    const char *flash[] = {"flash", img, NULL};
    int got;

    image_path(img, sizeof(img), "TETHER_FW_MPS2_MUTE", "tether-fw-mute.img");
    ck_assert_ptr_nonnull(realpath(img, out));
    snprintf(img, sizeof(img), "%s", out);
    start_qemu_and_daemon(GATE_CONF);
    got = tetherctl(flash, out, sizeof(out));
    ck_assert_msg(got == 1 &&
                      strstr(out, "flash 1: reverted: health gate: ") != NULL &&
                      strstr(out, "; 0.1.0 runs") != NULL,
                  "tetherctl flash: exit %d: %s", got, out);
    ck_assert(wait_log("mcu hello: board=2 fw=0.3.0 ", WAIT_MS));
    /* 0.1.0 again, and its telemetry stored again. */
    ck_assert_int_ge(wait_db("SELECT count(*) FROM heap WHERE t_us > (SELECT "
                             "max(t_us) FROM events WHERE kind = 'flash')",
                             2, WAIT_MS),
                     2);
    ck_assert_int_eq(
        wait_db("SELECT count(*) FROM events WHERE kind = 'flash' AND "
                "detail LIKE 'reverted 1: health gate:%'",
                1, WAIT_MS),
        1);
    itest_stop_cleanly(&run.daemon, 3000);
}
END_TEST

/* ---- Firmware update through tetherd, over a proxy ---- */

#define FLASH_MS  45000 /* a whole flash, lost link and health gate included */
#define FRESH_MS  3000  /* a heap report at most this old: telemetry flows */
#define CUT_MS    700   /* how long the cable stays pulled */
#define PARAM_MAX (PATH_MAX + 16)

/* QEMU with its pty at run.mcu, a proxy from there to run.tty doing what
 * fault says, and tetherd on run.tty with the health gate's
 * configuration; waits for the daemon to have the MCU's HELLO. */
static void start_qemu_proxy_and_daemon(const struct itest_fault *fault)
{
    itest_write_file(run.conf, GATE_CONF, 0644);
    start_qemu_linked(run.mcu);
    run.proxy = itest_proxy_start(run.mcu, run.tty, fault, WAIT_MS);
    start_daemon();
    ck_assert_msg(wait_log("mcu hello: board=2 ", WAIT_MS),
                  "tetherd got no HELLO from the image through the proxy");
}

static void wait_running(struct itest_client *c, const char *version)
{
    itest_wait_running(c, version, FRESH_MS, WAIT_MS);
}

/* Opens c, waits for 0.1.0 to run, and starts a flash of v2 through the
 * socket; c then receives the flash's notifications. */
static void start_v2_flash(struct itest_client *c)
{
    char img[PATH_MAX], abs[PATH_MAX], params[PARAM_MAX];
    cJSON *m;

    image_path(img, sizeof(img), "TETHER_FW_MPS2_V2", "tether-fw-v2.img");
    ck_assert_ptr_nonnull(realpath(img, abs));
    snprintf(params, sizeof(params), "{\"image\":\"%s\"}", abs);
    itest_client_open(c, run.sock, WAIT_MS);
    wait_running(c, "0.1.0");
    m = itest_call(c, "flash", params);
    itest_result(m);
    cJSON_Delete(m);
}

static const cJSON *wait_outcome(struct itest_client *c, cJSON **root)
{
    return itest_wait_flash_outcome(c, root, FLASH_MS);
}

START_TEST(
    test_qemu_flash_damaged_past_the_frame_crc_fails_the_hash_and_v1_runs)
{
    const char *hello[] = {"send", "hello", NULL};
    /* A third of the way into the body: a chunk in the middle of the
     * upload, neither its first nor its last. */
    const struct itest_fault flip = {.flip_at = (long)(v2.len / 3u),
                                     .cut_at = -1};
    struct itest_client c;
    const cJSON *o;
    cJSON *root;

    start_qemu_proxy_and_daemon(&flip);
    start_v2_flash(&c);
    o = wait_outcome(&c, &root);
    ck_assert_msg(
        strcmp(itest_member(o, "outcome", NULL)->valuestring, "failed") == 0,
        "%s: %s", itest_member(o, "outcome", NULL)->valuestring,
        itest_member(o, "why", NULL)->valuestring);
    ck_assert_msg(
        strstr(itest_member(o, "why", NULL)->valuestring, "SHA-256") != NULL,
        "%s", itest_member(o, "why", NULL)->valuestring);
    /* Every byte reached the MCU, each chunk with a good CRC: only the
     * hash of the whole body could tell. */
    ck_assert_int_eq(itest_member(o, "bytes", NULL)->valueint,
                     itest_member(o, "total", NULL)->valueint);
    cJSON_Delete(root);

    /* 0.1.0 runs on, never reset: status says so, a HELLO asked for now
     * says so, and its telemetry is stored again. */
    wait_running(&c, "0.1.0");
    itest_client_close(&c);
    ctl_expect(hello, 0, "ACK");
    ck_assert_msg(wait_hello_after_flash("fw=0.1.0 %reset_cause=1 ", WAIT_MS),
                  "no HELLO of 0.1.0 after the failed flash");
    ck_assert_int_ge(wait_db("SELECT count(*) FROM heap WHERE t_us > (SELECT "
                             "max(t_us) FROM events WHERE kind = 'flash')",
                             2, WAIT_MS),
                     2);
    ck_assert_int_eq(
        wait_db("SELECT count(*) FROM events WHERE kind = 'flash' AND "
                "detail LIKE 'failed 1: %SHA-256%'",
                1, WAIT_MS),
        1);
    itest_stop_cleanly(&run.daemon, 3000);
    /* Nothing was booted: no HELLO but power-on ones, no planned reset,
     * no reset alert. */
    ck_assert_int_eq(itest_db_int(run.db,
                                  "SELECT count(*) FROM events WHERE kind = "
                                  "'hello' AND detail NOT LIKE '%fw=0.1.0 "
                                  "%reset_cause=1 %'"),
                     0);
    ck_assert_int_eq(itest_db_int(run.db,
                                  "SELECT count(*) FROM events WHERE kind = "
                                  "'flash' AND detail LIKE 'expected %'"),
                     0);
    ck_assert_int_eq(itest_db_int(run.db, "SELECT count(*) FROM alerts WHERE "
                                          "name = 'mcu_reset'"),
                     0);
}
END_TEST

START_TEST(test_qemu_flash_cut_mid_way_by_a_lost_link_resumes_and_completes)
{
    /* Half way into the body; the proxy pulls the cable itself when the
     * chunk carrying that byte comes, however fast the upload runs. */
    const struct itest_fault cut = {.flip_at = -1,
                                    .cut_at = (long)(v2.len / 2u)};
    struct itest_client c;
    const cJSON *o;
    cJSON *root;

    start_qemu_proxy_and_daemon(&cut);
    start_v2_flash(&c);
    ck_assert_msg(itest_proxy_wait_cut(&run.proxy, FLASH_MS),
                  "the proxy never cut the upload at byte %ld", cut.cut_at);
    ck_assert_msg(wait_log("flash: link lost during the ", WAIT_MS),
                  "tetherd did not see the link go");
    usleep(CUT_MS * 1000);
    /* The cable back, at the same path; QEMU drops what the firmware says
     * until it notices the new reader, which the resume outlasts. */
    run.proxy = itest_proxy_start(run.mcu, run.tty, NULL, WAIT_MS);
    o = wait_outcome(&c, &root);
    ck_assert_msg(
        strcmp(itest_member(o, "outcome", NULL)->valuestring, "confirmed") == 0,
        "%s: %s", itest_member(o, "outcome", NULL)->valuestring,
        itest_member(o, "why", NULL)->valuestring);
    ck_assert_int_ge(itest_member(o, "resumes", NULL)->valueint, 1);
    ck_assert_int_eq(itest_member(o, "bytes", NULL)->valueint,
                     itest_member(o, "total", NULL)->valueint);
    cJSON_Delete(root);
    ck_assert(wait_log("mcu hello: board=2 fw=0.2.0 ", WAIT_MS));
    wait_running(&c, "0.2.0");
    itest_client_close(&c);
    ck_assert_int_eq(
        wait_db("SELECT count(*) FROM events WHERE kind = 'flash' AND "
                "detail LIKE 'confirmed 1:%'",
                1, WAIT_MS),
        1);
    itest_stop_cleanly(&run.daemon, 3000);
}
END_TEST

/* ---- One core, two hosts ---- */

/* A host's side of the script: the frames it answered with, one canonical
 * line each. */
struct host {
    struct simproc *p;
    char text[TRANSCRIPT_MAX];
    size_t len;
    char last_adc[CANON_MAX];
};

static void note(struct host *h, const char *line)
{
    size_t n = strlen(line);

    ck_assert_uint_lt(h->len + n + 1, sizeof(h->text));
    memcpy(h->text + h->len, line, n);
    h->len += n;
    h->text[h->len++] = '\n';
    h->text[h->len] = '\0';
}

/* One line for a frame, leaving out what may differ between two hosts that
 * run the same core: times, uptimes, the board, the build, the board's
 * receive buffer (HELLO rx_max), counters of things that happen at a rate
 * (allocations, frames sent, scans) and the number of scans in an ADC
 * batch.  Everything else must match. */
static void canon(const struct frame *f, char *out, size_t cap)
{
    struct msg_hello h;
    struct msg_log l;
    struct msg_ack a;
    struct msg_pong p;
    struct msg_heap hp;
    struct msg_stats st;
    struct msg_adc ad;
    struct msg_upd_status u;

    switch (f->type) {
    case MSG_HELLO:
        ck_assert_int_eq(msg_decode_hello(f->payload, f->len, &h), 0);
        snprintf(out, cap,
                 "HELLO proto=%u reset=%u adc=%ux%u caps=0x%04x fw=0x%06x "
                 "heap=%u",
                 h.proto_version, h.reset_cause, h.adc_channels, h.adc_bits,
                 h.caps, (unsigned)h.fw_version, (unsigned)h.heap_total);
        return;
    case MSG_LOG:
        ck_assert_int_eq(msg_decode_log(f->payload, f->len, &l), 0);
        snprintf(out, cap, "LOG %u %.*s", l.level, (int)l.text_len, l.text);
        return;
    case MSG_ACK:
        ck_assert_int_eq(msg_decode_ack(f->payload, f->len, &a), 0);
        snprintf(out, cap, "ACK seq=%u type=0x%02x", a.seq, a.type);
        return;
    case MSG_NACK:
        ck_assert_int_eq(msg_decode_nack(f->payload, f->len, &a), 0);
        snprintf(out, cap, "NACK seq=%u type=0x%02x error=%u", a.seq, a.type,
                 a.error);
        return;
    case MSG_PONG:
        ck_assert_int_eq(msg_decode_pong(f->payload, f->len, &p), 0);
        snprintf(out, cap, "PONG token=0x%08x", (unsigned)p.token);
        return;
    case MSG_HEAP:
        ck_assert_int_eq(msg_decode_heap(f->payload, f->len, &hp), 0);
        ck_assert_uint_eq(hp.allocs - hp.frees, hp.blocks);
        snprintf(out, cap,
                 "HEAP total=%u free=%u used=%u largest=%u min_free=%u "
                 "failures=%u blocks=%u scenario=%u",
                 (unsigned)hp.total, (unsigned)hp.free, (unsigned)hp.used,
                 (unsigned)hp.largest, (unsigned)hp.min_free,
                 (unsigned)hp.failures, hp.blocks, hp.scenario);
        return;
    case MSG_STATS:
        ck_assert_int_eq(msg_decode_stats(f->payload, f->len, &st), 0);
        snprintf(out, cap,
                 "STATS rx_ok=%u crc=%u cobs=%u oversize=%u version=%u "
                 "overruns=%u",
                 (unsigned)st.rx_frames_ok, (unsigned)st.rx_crc_errors,
                 (unsigned)st.rx_cobs_errors, (unsigned)st.rx_oversize,
                 (unsigned)st.rx_version_errors, (unsigned)st.rx_overruns);
        return;
    case MSG_UPD_STATUS:
        ck_assert_int_eq(msg_decode_upd_status(f->payload, f->len, &u), 0);
        snprintf(out, cap,
                 "UPD_STATUS type=0x%02x state=%u error=%u boot=0x%02x "
                 "chunk=%u stored=%u len=%u fw=0x%06x window=%u",
                 u.req_type, u.state, u.error, u.boot, u.chunk_max,
                 (unsigned)u.stored, (unsigned)u.body_len,
                 (unsigned)u.fw_version, u.window);
        return;
    case MSG_ADC: {
        unsigned lo = 0xffff, hi = 0;

        ck_assert_int_eq(msg_decode_adc(f->payload, f->len, &ad), 0);
        for (unsigned s = 0; s < ad.scans; s++) {
            for (unsigned k = 0; k < msg_popcount16(ad.mask); k++) {
                unsigned v = msg_adc_value(&ad, s, k);

                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        }
        snprintf(out, cap, "ADC mask=0x%04x period=%u min=%u max=%u", ad.mask,
                 (unsigned)ad.period_us, lo, hi);
        return;
    }
    default:
        snprintf(out, cap, "type 0x%02x len %zu", f->type, f->len);
        return;
    }
}

static int periodic(uint8_t type)
{
    return type == MSG_ADC || type == MSG_HEAP || type == MSG_STATS;
}

/* Reads frames until one of the given type (0: any non-periodic) arrives,
 * noting every non-periodic frame on the way. */
static void expect(struct host *h, uint8_t type)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    char line[CANON_MAX];
    struct frame f;

    for (;;) {
        int left = (int)(end - simproc_now_ms());

        ck_assert_msg(left > 0 && simproc_next(h->p, &f, left),
                      "%s: no frame of type 0x%02x; so far:\n%s", h->p->pty,
                      type, h->text);
        if (periodic(f.type) && f.type != type)
            continue;
        canon(&f, line, sizeof(line));
        note(h, line);
        if (type == 0 || f.type == type)
            return;
    }
}

/* Sends a command and notes everything up to its ACK or NACK, then `more`
 * further non-periodic frames (the PONG, HELLO or LOG it brings). */
static void step(struct host *h, uint8_t type, const uint8_t *p, size_t n,
                 int more)
{
    uint16_t seq = send_cmd(h->p, type, p, n);
    int64_t end = simproc_now_ms() + WAIT_MS;
    char line[CANON_MAX];
    struct frame f;

    for (;;) {
        int left = (int)(end - simproc_now_ms());
        struct msg_ack a;

        ck_assert_msg(left > 0 && simproc_next(h->p, &f, left),
                      "%s: no answer to seq %u; so far:\n%s", h->p->pty, seq,
                      h->text);
        if (periodic(f.type))
            continue;
        canon(&f, line, sizeof(line));
        note(h, line);
        if ((f.type == MSG_ACK && msg_decode_ack(f.payload, f.len, &a) == 0 &&
             a.seq == seq) ||
            (f.type == MSG_NACK && msg_decode_nack(f.payload, f.len, &a) == 0 &&
             a.seq == seq))
            break;
    }
    while (more-- > 0)
        expect(h, 0);
}

/* Sends an update request and notes everything up to its UPD_STATUS. */
static void step_upd(struct host *h, uint8_t type)
{
    uint16_t seq = send_cmd(h->p, type, NULL, 0);
    int64_t end = simproc_now_ms() + WAIT_MS;
    char line[CANON_MAX];
    struct msg_upd_status u;
    struct frame f;

    for (;;) {
        int left = (int)(end - simproc_now_ms());

        ck_assert_msg(left > 0 && simproc_next(h->p, &f, left),
                      "%s: no UPD_STATUS for seq %u; so far:\n%s", h->p->pty,
                      seq, h->text);
        if (periodic(f.type))
            continue;
        canon(&f, line, sizeof(line));
        note(h, line);
        if (f.type == MSG_UPD_STATUS &&
            msg_decode_upd_status(f.payload, f.len, &u) == 0 &&
            u.req_seq == seq)
            return;
    }
}

static void step_u16(struct host *h, uint8_t type, uint16_t v, int more)
{
    uint8_t p[2];

    ck_assert_int_eq(msg_encode_u16(p, sizeof(p), v), 2);
    step(h, type, p, sizeof(p), more);
}

static void step_scenario(struct host *h, uint8_t id, int more)
{
    struct msg_scenario_cmd c = {id, 0};
    uint8_t p[MSG_SET_SCENARIO_LEN];

    ck_assert_int_eq(msg_encode_scenario(p, sizeof(p), &c),
                     (int)MSG_SET_SCENARIO_LEN);
    step(h, MSG_SET_SCENARIO, p, sizeof(p), more);
}

static void step_ping(struct host *h, uint32_t token)
{
    uint8_t p[MSG_PING_LEN];

    ck_assert_int_eq(msg_encode_u32(p, sizeof(p), token), (int)MSG_PING_LEN);
    step(h, MSG_PING, p, sizeof(p), 1);
}

/* Turns on reports every 50 ms, notes the first HEAP (if heap) and STATS
 * after the command, and turns them off again. */
static void snapshot(struct host *h, int heap)
{
    step_u16(h, MSG_SET_HEAP_PERIOD, 50, 0);
    if (heap)
        expect(h, MSG_HEAP);
    expect(h, MSG_STATS);
    step_u16(h, MSG_SET_HEAP_PERIOD, 0, 0);
}

/* Notes the distinct ADC batches (apart from their scan count) seen in
 * window_ms. */
static void adc_window(struct host *h, int window_ms)
{
    int64_t end = simproc_now_ms() + window_ms;
    char line[CANON_MAX];
    struct frame f;
    int left;

    while ((left = (int)(end - simproc_now_ms())) > 0) {
        if (!simproc_next(h->p, &f, left) || f.type != MSG_ADC)
            continue;
        canon(&f, line, sizeof(line));
        if (strcmp(line, h->last_adc) != 0)
            note(h, line);
        snprintf(h->last_adc, sizeof(h->last_adc), "%s", line);
    }
}

/* Waits, with reports every 500 ms, until two reports in a row are the
 * same: the fragment workload has used up the arena and stopped. */
static void wait_heap_settled(struct host *h)
{
    int64_t end = simproc_now_ms() + 3 * WAIT_MS;
    struct msg_heap prev = {0}, cur;
    struct frame f;
    int seen = 0;

    step_u16(h, MSG_SET_HEAP_PERIOD, 500, 0);
    for (;;) {
        int left = (int)(end - simproc_now_ms());

        ck_assert_msg(left > 0, "%s: the heap did not settle", h->p->pty);
        if (!simproc_next(h->p, &f, left) || f.type != MSG_HEAP)
            continue;
        ck_assert_int_eq(msg_decode_heap(f.payload, f.len, &cur), 0);
        if (seen && cur.used == prev.used && cur.blocks == prev.blocks &&
            cur.largest == prev.largest)
            break;
        prev = cur;
        seen = 1;
    }
    step_u16(h, MSG_SET_HEAP_PERIOD, 0, 0);
}

/* Re-encodes the frame in w (n bytes with its delimiter) with its version
 * byte set to version, and its CRC recomputed (seal) or left as it was, so
 * that it no longer matches.  Returns the new length. */
static size_t tamper(uint8_t *w, size_t n, uint8_t version, int seal)
{
    uint8_t raw[FRAME_RAW_MAX];
    int len = cobs_decode(raw, sizeof(raw), w, n - 1);
    uint32_t crc;

    ck_assert_int_gt(len, (int)(FRAME_HDR_LEN + FRAME_CRC_LEN));
    raw[0] = version;
    if (seal) {
        crc = crc32c(raw, (size_t)len - FRAME_CRC_LEN);
        for (unsigned i = 0; i < FRAME_CRC_LEN; i++)
            raw[(size_t)len - FRAME_CRC_LEN + i] = (uint8_t)(crc >> (8 * i));
    } else {
        raw[FRAME_HDR_LEN] ^= 0x01; /* a payload bit */
    }
    len = cobs_encode(w, FRAME_WIRE_MAX - 1, raw, (size_t)len);
    ck_assert_int_gt(len, 0);
    w[len++] = 0;
    return (size_t)len;
}

/* Raw bytes that must be rejected and counted, never answered: a frame
 * with a flipped bit, a block longer than any frame (so too long for every
 * MCU's receive buffer), a frame of another protocol version, and a COBS
 * block cut short by a delimiter. */
static void send_damage(struct host *h)
{
    static const uint8_t cut[] = {0x05, 0x01, 0x00};
    uint8_t p[MSG_PING_LEN] = {0};
    uint8_t big[FRAME_RAW_MAX + 46];
    uint8_t w[COBS_ENCODED_MAX(sizeof(big)) + 1];
    size_t n;
    int len;

    n = encode(h->p, w, sizeof(w), MSG_PING, p, sizeof(p));
    write_all(h->p, w, tamper(w, n, FRAME_VERSION, 0));
    memset(big, 0x55, sizeof(big));
    len = cobs_encode(w, sizeof(w) - 1, big, sizeof(big));
    ck_assert_int_gt(len, 0);
    w[len++] = 0;
    write_all(h->p, w, (size_t)len);
    n = encode(h->p, w, sizeof(w), MSG_PING, p, sizeof(p));
    write_all(h->p, w, tamper(w, n, FRAME_VERSION + 1, 1));
    write_all(h->p, cut, sizeof(cut));
}

/* The script, in parts, so that two hosts can run it side by side. */
static void script_commands(struct host *h)
{
    static const uint8_t short_rate[1] = {1};

    /* What a host said before the script began is not part of it: QEMU
     * drops output until it notices the reader. */
    step(h, MSG_GET_HELLO, NULL, 0, 1);
    h->len = 0;
    h->text[0] = '\0';
    step(h, MSG_REBOOT, NULL, 0, 3); /* HELLO and two boot LOGs follow */
    step_u16(h, MSG_SET_HEAP_PERIOD, 0, 0);
    step_u16(h, MSG_SET_CHANNELS, 0x0008, 0);
    step_u16(h, MSG_SET_RATE, 500, 0);
    step_ping(h, 0xdeadbeef);
    step(h, MSG_GET_HELLO, NULL, 0, 1);
    step_u16(h, MSG_SET_RATE, 0, 0);
    step_u16(h, MSG_SET_CHANNELS, 0x0010, 0);
    step_u16(h, MSG_SET_HEAP_PERIOD, 5, 0);
    step_scenario(h, 9, 0);
    step(h, MSG_SET_RATE, short_rate, sizeof(short_rate), 0);
    step(h, 0x7e, NULL, 0, 0);
    step(h, MSG_UPDATE_FIRST, NULL, 0, 0); /* UPD_BEGIN without a header */
    step_upd(h, MSG_UPD_QUERY);
    send_damage(h);
    step_ping(h, 2);
    adc_window(h, 600);
    snapshot(h, 0);
    step_scenario(h, MSG_SCEN_FRAGMENT, 1);
}

static void script_heap(struct host *h)
{
    wait_heap_settled(h);
    snapshot(h, 1);
    step_scenario(h, MSG_SCEN_NONE, 1);
    snapshot(h, 1);
}

START_TEST(test_qemu_and_tether_sim_answer_one_script_with_the_same_messages)
{
    static struct host q, s;
    char flash[FILE_MAX];
    const char *sim_args[] = {"--flash", flash, NULL};
    char *a, *b;

    memset(&q, 0, sizeof(q));
    memset(&s, 0, sizeof(s));
    /* Both take updates: the simulator keeps its slots in run.dir. */
    snprintf(flash, sizeof(flash), "%s/flash", run.dir);
    ck_assert_int_eq(simproc_start(&run.sim, sim_args), 0);
    start_qemu_direct();
    q.p = &run.q;
    s.p = &run.sim;

    script_commands(&q);
    script_commands(&s);
    script_heap(&q);
    script_heap(&s);

    if (strcmp(q.text, s.text) != 0) {
        fprintf(stderr, "--- mps2-an505 under QEMU:\n%s--- tether-sim:\n%s",
                q.text, s.text);
        for (a = q.text, b = s.text; *a == *b; a++, b++)
            ;
        while (a > q.text && a[-1] != '\n') {
            a--;
            b--;
        }
        ck_abort_msg("the transcripts part at \"%.*s\" vs \"%.*s\"",
                     (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
    }
    /* The script did reach what it is about. */
    ck_assert_ptr_nonnull(strstr(q.text, "HELLO proto=1 reset=3 adc=4x14 "));
    ck_assert_ptr_nonnull(strstr(q.text, "PONG token=0xdeadbeef\n"));
    ck_assert_ptr_nonnull(strstr(q.text, "error=2\n"));
    ck_assert_ptr_nonnull(strstr(q.text, " type=0x80 error=2\n"));
    ck_assert_ptr_nonnull(
        strstr(q.text, "UPD_STATUS type=0x85 state=0 error=0 boot=0x08 "
                       "chunk=242 stored=0 len=0 fw=0x000100 window=4\n"));
    ck_assert_ptr_nonnull(
        strstr(q.text, "ADC mask=0x0008 period=2000 min=3854 max=3854\n"));
    ck_assert_ptr_nonnull(
        strstr(q.text, "crc=1 cobs=1 oversize=1 version=1 overruns=0\n"));
    ck_assert_ptr_nonnull(strstr(q.text, "LOG 6 scenario fragment\n"));
    ck_assert_ptr_nonnull(strstr(q.text, "scenario=3\n"));
    ck_assert_ptr_nonnull(strstr(q.text, " used=0 largest="));
}
END_TEST

static Suite *qemu_suite(void)
{
    Suite *s = suite_create("qemu mps2-an505");
    TCase *direct = tcase_create("image");
    TCase *daemon = tcase_create("tetherd");
    TCase *twin = tcase_create("one core, two hosts");
    TCase *update = tcase_create("update");
    TCase *flash = tcase_create("update through tetherd");

    tcase_add_unchecked_fixture(direct, make_base, remove_base);
    tcase_add_checked_fixture(direct, setup, teardown);
    tcase_set_timeout(direct, 60);
    tcase_add_test(direct,
                   test_qemu_image_boots_says_hello_and_streams_adc_and_heap);
    tcase_add_test(direct, test_qemu_image_answers_every_command_of_a_burst);
    tcase_add_test(
        direct,
        test_qemu_watchdog_and_fault_resets_are_reported_with_their_causes);
    suite_add_tcase(s, direct);

    tcase_add_unchecked_fixture(daemon, make_base, remove_base);
    tcase_add_checked_fixture(daemon, setup, teardown);
    tcase_set_timeout(daemon, 60);
    tcase_add_test(daemon,
                   test_qemu_tetherd_stores_hello_adc_and_heap_from_the_image);
    tcase_add_test(
        daemon,
        test_qemu_rate_command_through_tetherd_is_acknowledged_and_applied);
    tcase_add_test(daemon,
                   test_qemu_leak_scenario_raises_the_daemons_heap_alerts);
    tcase_add_test(
        daemon,
        test_qemu_reboot_is_detected_as_a_software_reset_and_link_recovers);
    suite_add_tcase(s, daemon);

    tcase_add_unchecked_fixture(update, make_base, remove_base);
    tcase_add_checked_fixture(update, update_setup, teardown);
    tcase_set_timeout(update, 60);
    tcase_add_test(
        update, test_qemu_update_v1_to_v2_boots_on_test_and_confirm_keeps_it);
    tcase_add_test(
        update,
        test_qemu_update_damaged_upload_fails_the_hash_and_v1_keeps_running);
    tcase_add_test(
        update,
        test_qemu_update_image_failing_the_health_gate_is_reverted_by_reboot);
    tcase_add_test(update,
                   test_qemu_update_cut_by_a_closed_pty_resumes_and_completes);
    tcase_add_test(
        update,
        test_qemu_update_image_hanging_at_start_is_reverted_by_the_watchdog);
    tcase_add_test(
        update, test_qemu_update_image_for_another_layout_is_refused_at_begin);
    tcase_add_test(
        update,
        test_qemu_update_restarting_qemu_loses_the_slots_and_runs_factory);
    suite_add_tcase(s, update);

    tcase_add_unchecked_fixture(flash, make_base, remove_base);
    tcase_add_checked_fixture(flash, update_setup, teardown);
    tcase_set_timeout(flash, 90);
    tcase_add_test(flash,
                   test_qemu_tetherctl_flash_v1_to_v2_is_confirmed_and_kept);
    tcase_add_test(
        flash,
        test_qemu_tetherctl_flash_of_the_mute_image_is_reverted_by_the_gate);
    tcase_add_test(
        flash,
        test_qemu_flash_damaged_past_the_frame_crc_fails_the_hash_and_v1_runs);
    tcase_add_test(
        flash,
        test_qemu_flash_cut_mid_way_by_a_lost_link_resumes_and_completes);
    suite_add_tcase(s, flash);

    tcase_add_unchecked_fixture(twin, make_base, remove_base);
    tcase_add_checked_fixture(twin, setup, teardown);
    tcase_set_timeout(twin, 90);
    tcase_add_test(
        twin,
        test_qemu_and_tether_sim_answer_one_script_with_the_same_messages);
    suite_add_tcase(s, twin);
    return s;
}

int main(void)
{
    return itest_run(qemu_suite());
}
