/* Fault injection end to end: the real tetherd against a damaged line, a
 * device that comes and goes, an MCU that resets mid-frame, and its own
 * death by SIGKILL while it writes.
 *
 * Two MCUs play the other end.  tether-sim runs the real firmware core and
 * damages its own output on request (--noise-ppm, --drop-ppm, --garbage);
 * since its waveforms are deterministic given --seed (mcu-firmware/core/
 * wave.c), what tetherd stored can be compared with what a clean run of
 * the same seed produces, row by row, so a frame that passed a broken CRC
 * check would show.  Where the exact bytes and their timing matter (a
 * frame split at every offset, a frame torn by a reset, a device unplugged
 * a hundred times), the test itself is the MCU: it makes its own
 * pseudo-terminal pair, links the slave where tetherd looks for its
 * device, and writes frames encoded with proto/.
 *
 * Every process started here dies with the test that started it
 * (simproc.h), every wait is bounded, and each test has a Check timeout.
 * Nothing here measures speed: the bounds on time are there so that a
 * hang fails instead of blocking CI. */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "itest.h"
#include "msg.h"
#include "simproc.h"
#include "wave.h"

#define WAIT_MS  10000
#define ARGV_MAX 32
#define TEXT_MAX 4096
#define DIR_MAX  64 /* short enough for a Unix socket path inside it */
#define FILE_MAX (DIR_MAX + 24)
#define ERR_MAX  512 /* the sim's closing line on stderr */

/* ---- The run: a folder, tether-sim or the test's own MCU, tetherd ---- */

struct run {
    char dir[DIR_MAX];
    char tty[FILE_MAX];
    char db[FILE_MAX];
    char sock[FILE_MAX];
    char log[FILE_MAX];
    char simerr[FILE_MAX];
    pid_t sim;
    pid_t daemon;
};

static struct run run;

static void setup(void)
{
    memset(&run, 0, sizeof(run));
    itest_make_dir(run.dir, sizeof(run.dir), "faults-");
    snprintf(run.tty, sizeof(run.tty), "%s/tty", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.sock, sizeof(run.sock), "%s/q.sock", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
    snprintf(run.simerr, sizeof(run.simerr), "%s/sim.err", run.dir);
}

static void teardown(void)
{
    itest_kill(&run.daemon);
    itest_kill(&run.sim);
    itest_remove_tree(run.dir);
}

/* Starts tether-sim on run.tty with the NULL-terminated extra args, its
 * stderr (where it counts the faults it made) into run.simerr. */
static void start_sim(const char *const *extra)
{
    const char *args[ARGV_MAX] = {"--link", run.tty};
    size_t n = 2;
    int err = itest_open_log(run.simerr);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

    ck_assert_int_ge(null, 0);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    run.sim = simproc_spawn(itest_env_or("TETHER_SIM", "build/tether-sim"),
                            args, NULL, null, err);
    close(err);
    close(null);
    itest_wait_link(run.tty, WAIT_MS);
}

/* Stops the sim once tetherd has read everything it sent: a pty's input
 * that nobody read is thrown away when its master closes.  The sim is
 * frozen, the slave's input queue is let run dry, and only then is the
 * sim ended; what it writes between waking and seeing SIGTERM is at most
 * one write (512 bytes and a garbage burst). */
static void stop_sim_drained(void)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    int fd = open(run.tty, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    int queued = -1, dry = 0, status;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(kill(run.sim, SIGSTOP), 0);
    while (dry < 3 && simproc_now_ms() < end) {
        usleep(10000);
        ck_assert_int_eq(ioctl(fd, FIONREAD, &queued), 0);
        dry = queued == 0 ? dry + 1 : 0;
    }
    close(fd);
    ck_assert_msg(dry == 3, "tetherd left %d bytes unread", queued);
    kill(run.sim, SIGTERM);
    kill(run.sim, SIGCONT);
    status = simproc_wait_exit(run.sim, 5000);
    run.sim = 0;
    ck_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Starts tetherd on run.tty, run.db and run.sock, logging to run.log. */
static void start_daemon(void)
{
    const char *args[] = {"--config", "/dev/null", "--device", run.tty, "--db",
                          run.db,     "--socket",  run.sock,   NULL};
    int log = itest_open_log(run.log);

    run.daemon = simproc_spawn(itest_env_or("TETHERD", "build/tetherd"), args,
                               NULL, log, log);
    close(log);
}

/* status -> link.<key>, a number. */
static long long link_int(struct itest_client *c, const char *key)
{
    cJSON *m = itest_call(c, "status", NULL);
    long long v =
        (long long)itest_member(itest_result(m), "link", key)->valuedouble;

    cJSON_Delete(m);
    return v;
}

/* Whether status says link.state is state. */
static int link_is(struct itest_client *c, const char *state)
{
    cJSON *m = itest_call(c, "status", NULL);
    int yes =
        strcmp(itest_member(itest_result(m), "link", "state")->valuestring,
               state) == 0;

    cJSON_Delete(m);
    return yes;
}

/* Waits up to timeout_ms, polling every poll_ms, for link.state. */
static int wait_state(struct itest_client *c, const char *state, int timeout_ms,
                      int poll_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;

    do {
        if (link_is(c, state))
            return 1;
        usleep((useconds_t)poll_ms * 1000);
    } while (simproc_now_ms() < end);
    return 0;
}

/* Waits up to timeout_ms for link.frames_ok to reach n; returns it. */
static long long wait_frames(struct itest_client *c, long long n,
                             int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    long long ok;

    while ((ok = link_int(c, "frames_ok")) < n && simproc_now_ms() < end)
        usleep(10000);
    return ok;
}

static void assert_integrity(sqlite3 *db)
{
    char text[TEXT_MAX];

    itest_query_text(db, "PRAGMA integrity_check", text, sizeof(text));
    ck_assert_str_eq(text, "ok\n");
}

/* The link's counters as tetherd wrote them in its last 'stats' event
 * (at every minute and at a clean stop). */
struct counts {
    long long frames_ok, crc, cobs, oversize, version, discarded, gaps, bad,
        tx_dropped, resets;
};

static void last_stats(sqlite3 *db, struct counts *k)
{
    char text[TEXT_MAX];
    int n;

    itest_query_text(db,
                     "SELECT detail FROM events WHERE kind = 'stats' "
                     "ORDER BY rowid DESC LIMIT 1",
                     text, sizeof(text));
    n = sscanf(text,
               "frames_ok=%lld crc_errors=%lld cobs_errors=%lld "
               "oversize=%lld version_errors=%lld discarded=%lld "
               "seq_gaps=%lld bad_payloads=%lld mcu_tx_dropped=%lld "
               "mcu_resets=%lld",
               &k->frames_ok, &k->crc, &k->cobs, &k->oversize, &k->version,
               &k->discarded, &k->gaps, &k->bad, &k->tx_dropped, &k->resets);
    ck_assert_msg(n == 10, "no stats event to read: '%s'", text);
}

/* ---- The test as the MCU, on a pseudo-terminal pair of its own ---- */

#define MCU_CHANNELS  4u
#define MCU_MASK      0x000fu
#define MCU_SCANS     29u /* 116 values: the largest 4-channel batch */
#define MCU_PERIOD_US 1000u
#define MCU_HEAP      16384u
#define MCU_WRITE_MS  5000 /* longest wait for room in the pty */

struct mcu {
    int master; /* our end of the line */
    int slave;  /* held open, as a UART's, so the line stays up */
    char link[FILE_MAX];
    uint16_t seq;
    int64_t boot_us; /* CLOCK_MONOTONIC at the simulated boot */
    unsigned boot;   /* which boot: part of every value sent */
    struct frame_rx rx;
    uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
};

static int64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The value the test's MCU sends on channel ch of frame seq in boot b, so
 * that the database shows which frame every row came from. */
static uint16_t mcu_value(unsigned b, uint16_t seq, unsigned ch)
{
    return (uint16_t)((b * 4096u + seq * 16u + ch) & 0x3fffu);
}

/* A new pseudo-terminal, raw like a UART, with its slave linked at
 * m->link (replacing whatever was there). */
static void mcu_plug(struct mcu *m)
{
    char name[SIMPROC_PATH_MAX];
    struct termios tio;

    m->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    ck_assert_int_ge(m->master, 0);
    ck_assert_int_eq(grantpt(m->master), 0);
    ck_assert_int_eq(unlockpt(m->master), 0);
    ck_assert_int_eq(ptsname_r(m->master, name, sizeof(name)), 0);
    /* Raw before any byte is written: a new pty echoes and maps CR. */
    m->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(m->slave, 0);
    ck_assert_int_eq(tcgetattr(m->slave, &tio), 0);
    cfmakeraw(&tio);
    ck_assert_int_eq(tcsetattr(m->slave, TCSANOW, &tio), 0);
    unlink(m->link);
    ck_assert_int_eq(symlink(name, m->link), 0);
    frame_rx_init(&m->rx, m->rxbuf, sizeof(m->rxbuf));
}

/* The cable pulled: the link goes first (so that nothing opens a pty
 * number the kernel may give to someone else), then both ends close and
 * tetherd's descriptor hangs up. */
static void mcu_unplug(struct mcu *m)
{
    unlink(m->link);
    close(m->master);
    close(m->slave);
    m->master = m->slave = -1;
}

/* A fresh boot: the clock and seq start again. */
static void mcu_boot(struct mcu *m, unsigned boot)
{
    m->boot = boot;
    m->seq = 0;
    m->boot_us = mono_us();
}

static uint32_t mcu_time_us(const struct mcu *m)
{
    return (uint32_t)(mono_us() - m->boot_us);
}

static void mcu_write(struct mcu *m, const uint8_t *p, size_t n)
{
    int64_t end = simproc_now_ms() + MCU_WRITE_MS;

    while (n > 0) {
        struct pollfd pfd = {m->master, POLLOUT, 0};
        ssize_t k = write(m->master, p, n);

        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        ck_assert_msg(k < 0 && (errno == EAGAIN || errno == EINTR),
                      "write to the pty: %s", strerror(errno));
        ck_assert_msg(simproc_now_ms() < end, "the pty stayed full");
        poll(&pfd, 1, 50);
    }
}

/* Encodes one frame with the next seq into w; returns its length. */
static size_t mcu_frame(struct mcu *m, uint8_t type, const uint8_t *p, size_t n,
                        uint8_t *w)
{
    int len = frame_encode(w, FRAME_WIRE_MAX, type, m->seq++, p, n);

    ck_assert_int_gt(len, 0);
    return (size_t)len;
}

static size_t mcu_hello_frame(struct mcu *m, uint8_t cause, uint8_t *w)
{
    uint8_t p[MSG_HELLO_LEN];
    struct msg_hello h = {
        .proto_version = FRAME_VERSION,
        .board = MSG_BOARD_SIM,
        .reset_cause = cause,
        .adc_bits = 14,
        .adc_channels = MCU_CHANNELS,
        .caps = MSG_CAP_ADC | MSG_CAP_HEAP,
        .fw_version = 0x000100u,
        .heap_total = MCU_HEAP,
        .uptime_ms = mcu_time_us(m) / 1000u,
        .time_us = mcu_time_us(m),
        .rx_max = FRAME_PAYLOAD_MAX,
    };

    ck_assert_int_eq(msg_encode_hello(p, sizeof(p), &h), MSG_HELLO_LEN);
    return mcu_frame(m, MSG_HELLO, p, sizeof(p), w);
}

/* A full batch whose values say which boot and frame they belong to. */
static size_t mcu_adc_frame(struct mcu *m, uint8_t *w)
{
    uint8_t p[MSG_ADC_LEN(MCU_SCANS * MCU_CHANNELS)];
    struct msg_adc a = {
        .t0_us = mcu_time_us(m) - (MCU_SCANS - 1u) * MCU_PERIOD_US,
        .period_us = MCU_PERIOD_US,
        .mask = MCU_MASK,
        .scans = MCU_SCANS,
    };

    ck_assert_int_eq(msg_encode_adc_hdr(p, sizeof(p), &a), MSG_ADC_HDR_LEN);
    for (unsigned i = 0; i < MCU_SCANS * MCU_CHANNELS; i++)
        msg_adc_put_value(p, i, mcu_value(m->boot, m->seq, i % MCU_CHANNELS));
    return mcu_frame(m, MSG_ADC, p, sizeof(p), w);
}

/* A consistent heap report whose used bytes carry the frame's seq. */
static size_t mcu_heap_frame(struct mcu *m, uint8_t *w)
{
    uint8_t p[MSG_HEAP_LEN];
    uint32_t used = 1000u + m->seq;
    struct msg_heap h = {
        .t_us = mcu_time_us(m),
        .total = MCU_HEAP,
        .free = MCU_HEAP - used,
        .used = used,
        .largest = MCU_HEAP - used - 64u,
        .min_free = MCU_HEAP - 2000u,
        .allocs = 10,
        .frees = 5,
        .blocks = 5,
        .scenario = MSG_SCEN_STEADY,
    };

    ck_assert_int_eq(msg_encode_heap(p, sizeof(p), &h), MSG_HEAP_LEN);
    return mcu_frame(m, MSG_HEAP, p, sizeof(p), w);
}

/* A boot HELLO as the firmware sends it: after a delimiter that ends
 * whatever the line carried before. */
static void mcu_send_boot_hello(struct mcu *m, uint8_t cause)
{
    uint8_t w[FRAME_WIRE_MAX + 1];

    w[0] = 0;
    mcu_write(m, w, 1 + mcu_hello_frame(m, cause, w + 1));
}

static void mcu_send_adc(struct mcu *m)
{
    uint8_t w[FRAME_WIRE_MAX];

    mcu_write(m, w, mcu_adc_frame(m, w));
}

static void mcu_send_heap(struct mcu *m)
{
    uint8_t w[FRAME_WIRE_MAX];

    mcu_write(m, w, mcu_heap_frame(m, w));
}

/* Waits until nothing written to the line waits in the slave's input
 * queue any more: tetherd has read it. */
static void mcu_wait_read(struct mcu *m)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    int queued;

    /* The kernel moves master writes to the slave's queue from a work
     * item: give it a moment before the queue can be trusted empty. */
    usleep(1000);
    do {
        ck_assert_int_eq(ioctl(m->slave, FIONREAD, &queued), 0);
        if (queued == 0)
            return;
        usleep(200);
    } while (simproc_now_ms() < end);
    ck_abort_msg("tetherd stopped reading (%d bytes queued)", queued);
}

/* Waits up to timeout_ms for a command of type from tetherd; returns its
 * seq, or -1. */
static int mcu_wait_command(struct mcu *m, uint8_t type, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;

    for (;;) {
        struct pollfd pfd = {m->master, POLLIN, 0};
        int left = (int)(end - simproc_now_ms());
        uint8_t b;
        struct frame f;

        while (read(m->master, &b, 1) == 1)
            if (frame_rx_push(&m->rx, b, &f) == FRAME_RX_OK && f.type == type)
                return f.seq;
        if (left <= 0)
            return -1;
        poll(&pfd, 1, left);
    }
}

static void mcu_send_ack(struct mcu *m, uint16_t seq, uint8_t type)
{
    uint8_t p[MSG_ACK_LEN], w[FRAME_WIRE_MAX];
    struct msg_ack a = {seq, type, 0};

    ck_assert_int_eq(msg_encode_ack(p, sizeof(p), &a), MSG_ACK_LEN);
    mcu_write(m, w, mcu_frame(m, MSG_ACK, p, sizeof(p), w));
}

/* Starts tetherd against a test MCU plugged in and booted (HELLO sent),
 * and connects c. */
static void start_with_mcu(struct mcu *m, struct itest_client *c)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->link, sizeof(m->link), "%s", run.tty);
    mcu_plug(m);
    mcu_boot(m, 1);
    mcu_send_boot_hello(m, MSG_RESET_POWER_ON);
    start_daemon();
    itest_client_open(c, run.sock, WAIT_MS);
    ck_assert_msg(wait_state(c, "connected", WAIT_MS, 20), "no link");
}

/* ---- What a clean run of tether-sim stores, as a reference ----
 *
 * The sim's four channels carry a sine, a ramp, noise and a constant
 * (wave.h).  The constant is known exactly.  The sine takes one of 256
 * values.  The noise is the seeded generator's stream, one draw per scan,
 * so every stored batch must be a run of consecutive draws of the stream
 * a fresh generator with the same seed gives, and later batches lie later
 * in it.  The ramp rises by about 1/2000 of full scale per millisecond and
 * falls only when it wraps.  Heap reports satisfy the identities of one
 * snapshot and their counters since reset never go back.  Frames are
 * stored in the order they arrived, so seq only grows along the rowid.
 * A bit flipped in any value of the constant or noise channel, in a sine
 * value (but for the rare flip onto another value of the table), in a
 * ramp value's top bits, in the period, the mask or the scan count, or in
 * most heap fields breaks one of these. */

#define SIM_SEED     7u
#define SIM_RATE     1000u
#define SIM_PERIOD   (1000000u / SIM_RATE)
#define ADC_BITS     14u
#define ADC_FULL     ((1u << ADC_BITS) - 1u)
#define STREAM_MAX   (SIM_RATE * 120u) /* noise draws: two minutes' worth */
#define BATCH_ROWS   MSG_ADC_VALUES_MAX
#define CHECK_MSG    256
#define CH_SINE      0u
#define CH_RAMP      1u
#define CH_NOISE     2u
#define CH_CONST     3u
#define TIME_SLOP_US (60ll * 1000000) /* stored times near the run's */

struct reference {
    uint16_t noise[STREAM_MAX];
    uint8_t sine[ADC_FULL + 1u]; /* 1 where the sine can take the value */
    uint16_t constant;
};

struct verdict {
    long long batches, heaps, bad;
    long long adc_wire; /* bytes the stored ADC frames took on the wire */
    char first[CHECK_MSG];
};

static void reference_init(struct reference *r)
{
    struct wave w;

    wave_init(&w, ADC_BITS, SIM_SEED);
    for (size_t i = 0; i < STREAM_MAX; i++)
        r->noise[i] = wave_sample(&w, CH_NOISE, 0);
    memset(r->sine, 0, sizeof(r->sine));
    /* The sine's phase is 1/256 of its 1 s period, 3906 us a step. */
    for (uint32_t p = 0; p < 256u; p++)
        r->sine[wave_sample(&w, CH_SINE, p * 3906u)] = 1;
    r->constant = wave_sample(&w, CH_CONST, 0);
}

static void fault(struct verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fault(struct verdict *v, const char *fmt, ...)
{
    va_list ap;

    if (v->bad++ > 0)
        return;
    va_start(ap, fmt);
    vsnprintf(v->first, sizeof(v->first), fmt, ap);
    va_end(ap);
}

struct row {
    long long t_us;
    int channel, value;
};

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;

    if (x->t_us != y->t_us)
        return x->t_us < y->t_us ? -1 : 1;
    return x->channel - y->channel;
}

/* The stream position after *pos where the batch's noise values run, or
 * -1; the search starts at *pos and moves it past the run. */
static long find_noise(const struct reference *r, const int *noise, size_t n,
                       size_t *pos)
{
    for (size_t at = *pos; at + n <= STREAM_MAX; at++) {
        size_t k = 0;

        while (k < n && r->noise[at + k] == noise[k])
            k++;
        if (k == n) {
            *pos = at + n;
            return (long)at;
        }
    }
    return -1;
}

/* One ADC frame's rows, sorted scan by scan. */
static void check_batch(const struct reference *r, struct verdict *v,
                        long long seq, struct row *rows, size_t n, size_t *pos,
                        long long t_lo, long long t_hi)
{
    int noise[BATCH_ROWS];
    size_t scans = n / MCU_CHANNELS, falls = 0;

    v->batches++;
    v->adc_wire += (long long)FRAME_WIRE_LEN(MSG_ADC_LEN(n));
    qsort(rows, n, sizeof(*rows), row_cmp);
    if (n % MCU_CHANNELS != 0) {
        fault(v, "seq %lld: %zu rows, not whole scans", seq, n);
        return;
    }
    for (size_t s = 0; s < scans; s++) {
        const struct row *sc = &rows[s * MCU_CHANNELS];

        for (unsigned ch = 0; ch < MCU_CHANNELS; ch++) {
            if (sc[ch].channel != (int)ch ||
                sc[ch].t_us != rows[0].t_us + (long long)s * SIM_PERIOD) {
                fault(v, "seq %lld scan %zu: channel %d at %+lld us", seq, s,
                      sc[ch].channel, sc[ch].t_us - rows[0].t_us);
                return;
            }
        }
        if (sc[CH_CONST].value != r->constant)
            fault(v, "seq %lld scan %zu: constant %d, not %u", seq, s,
                  sc[CH_CONST].value, r->constant);
        if (sc[CH_SINE].value < 0 || sc[CH_SINE].value > (int)ADC_FULL ||
            !r->sine[sc[CH_SINE].value])
            fault(v, "seq %lld scan %zu: %d is no value of the sine", seq, s,
                  sc[CH_SINE].value);
        noise[s] = sc[CH_NOISE].value;
        if (s > 0) {
            int d = sc[CH_RAMP].value -
                    rows[(s - 1) * MCU_CHANNELS + CH_RAMP].value;

            if (d < 0 && (-d <= (int)ADC_FULL / 2 || ++falls > 1))
                fault(v, "seq %lld scan %zu: ramp fell by %d", seq, s, -d);
            else if (d > (int)ADC_FULL / 8)
                fault(v, "seq %lld scan %zu: ramp rose by %d", seq, s, d);
        }
    }
    if (find_noise(r, noise, scans, pos) < 0)
        fault(v,
              "seq %lld: its noise is no run of the seed's stream after "
              "draw %zu",
              seq, *pos);
    if (rows[0].t_us < t_lo || rows[n - 1].t_us > t_hi)
        fault(v, "seq %lld: stored at %lld, outside the run", seq,
              rows[0].t_us);
}

static void check_adc(sqlite3 *db, const struct reference *r, struct verdict *v,
                      long long t_lo, long long t_hi)
{
    struct row rows[BATCH_ROWS];
    size_t n = 0, pos = 0;
    long long seq = -1, last_seq = -1;
    sqlite3_stmt *st;
    int rc;

    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT seq, t_us, channel, value "
                                        "FROM adc ORDER BY rowid",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW || sqlite3_column_int64(st, 0) != seq) {
            if (n > 0)
                check_batch(r, v, seq, rows, n, &pos, t_lo, t_hi);
            if (rc != SQLITE_ROW)
                break;
            last_seq = seq;
            seq = sqlite3_column_int64(st, 0);
            n = 0;
            if (seq <= last_seq)
                fault(v, "seq %lld stored after seq %lld", seq, last_seq);
        }
        if (n == BATCH_ROWS) {
            fault(v, "seq %lld: more rows than a frame holds", seq);
            continue;
        }
        rows[n].t_us = sqlite3_column_int64(st, 1);
        rows[n].channel = sqlite3_column_int(st, 2);
        rows[n].value = sqlite3_column_int(st, 3);
        n++;
    }
    ck_assert_int_eq(rc, SQLITE_DONE);
    sqlite3_finalize(st);
}

static void check_heap(sqlite3 *db, struct verdict *v, long long t_lo,
                       long long t_hi)
{
    long long prev[12] = {0};
    bool first = true;
    sqlite3_stmt *st;
    int rc;

    ck_assert_int_eq(
        sqlite3_prepare_v2(db,
                           "SELECT seq, t_us, mcu_t_us, total, free, used, "
                           "largest, min_free, allocs, frees, failures, "
                           "blocks, scenario FROM heap ORDER BY rowid",
                           -1, &st, NULL),
        SQLITE_OK);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long f[13];

        for (int i = 0; i < 13; i++)
            f[i] = sqlite3_column_int64(st, i);
        v->heaps++;
        /* seq t_us mcu_t_us total free used largest min_free allocs
         * frees failures blocks scenario */
        if (f[4] + f[5] != f[3] || f[6] > f[4] || f[7] > f[4] ||
            f[11] != f[8] - f[9] || f[12] != MSG_SCEN_STEADY)
            fault(v,
                  "heap seq %lld: not one snapshot (total %lld free %lld "
                  "used %lld largest %lld min_free %lld allocs %lld "
                  "frees %lld blocks %lld scenario %lld)",
                  f[0], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[11], f[12]);
        if (f[1] < t_lo || f[1] > t_hi)
            fault(v, "heap seq %lld: stored at %lld, outside the run", f[0],
                  f[1]);
        if (!first && (f[0] <= prev[0] || f[2] <= prev[2] || f[3] != prev[3] ||
                       f[7] > prev[7] || f[8] < prev[8] || f[9] < prev[9] ||
                       f[10] < prev[10]))
            fault(v, "heap seq %lld after seq %lld: a counter went back", f[0],
                  prev[0]);
        memcpy(prev, f, sizeof(prev));
        first = false;
    }
    ck_assert_int_eq(rc, SQLITE_DONE);
    sqlite3_finalize(st);
}

/* Checks every ADC and heap row against the reference; stored times must
 * lie within TIME_SLOP_US of [t_lo, t_hi]. */
static void check_sim_db(sqlite3 *db, const struct reference *r,
                         struct verdict *v, long long t_lo, long long t_hi)
{
    memset(v, 0, sizeof(*v));
    check_adc(db, r, v, t_lo - TIME_SLOP_US, t_hi + TIME_SLOP_US);
    check_heap(db, v, t_lo - TIME_SLOP_US, t_hi + TIME_SLOP_US);
}

/* The check must be able to fail: in a transaction rolled back after, one
 * bit of one stored field is flipped, and the check must see it. */
static void assert_check_sees(sqlite3 *rw, const struct reference *r,
                              long long t_lo, long long t_hi, const char *sql)
{
    struct verdict v;

    ck_assert_int_eq(sqlite3_exec(rw, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(rw, sql, NULL, NULL, NULL) == SQLITE_OK &&
                      sqlite3_changes(rw) == 1,
                  "%s: %s", sql, sqlite3_errmsg(rw));
    check_sim_db(rw, r, &v, t_lo, t_hi);
    ck_assert_int_eq(sqlite3_exec(rw, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_msg(v.bad > 0, "the check missed: %s", sql);
}

/* ---- 1. Line noise at increasing rates ---- */

/* tether-sim unpaced at SIM_RATE scans/s of 4 channels sends full ADC
 * frames (116 values, 253 bytes on the wire) and, every 100 ms, a HEAP and
 * a STATS report (50 bytes each): about 54 frames and 9,700 bytes, 78,000
 * bits, a second.  Over RUN_MS that is at least 230,000 bits, so even 100
 * ppm flips some 23 of them (the chance of none is e^-23): every faulty
 * run must count damage. */
#define RUN_MS      3000
#define STEP_MS     1000
#define REPORT_WIRE FRAME_WIRE_LEN(MSG_HEAP_LEN)

/* How a run's counters are held to account (assert_accounted()). */
enum account {
    CLEAN,      /* nothing damaged, nothing lost */
    BY_SEQ,     /* good frames are frequent: seq numbers tell what was lost */
    BYTES_ONLY, /* few or no good frames: only the byte count holds */
};

struct noise_case {
    const char *name;
    const char *noise_ppm, *drop_ppm;
    bool garbage;
    enum account account;
    int slack_pct; /* BY_SEQ: the tolerance, see below */
};

static const struct noise_case noise_cases[] = {
    {"no faults", "0", "0", false, CLEAN, 0},
    {"100 ppm bit flips", "100", "0", false, BY_SEQ, 10},
    {"1000 ppm bit flips", "1000", "0", false, BY_SEQ, 10},
    {"10000 ppm bit flips", "10000", "0", false, BYTES_ONLY, 0},
    {"50000 ppm bit flips", "50000", "0", false, BYTES_ONLY, 0},
    {"1000 ppm dropped bytes", "0", "1000", false, BY_SEQ, 10},
    {"garbage bursts", "0", "0", true, BY_SEQ, 15},
    {"flips, drops and garbage", "300", "300", true, BY_SEQ, 15},
};

/* What the sim and tetherd said about one run. */
struct tally {
    unsigned long long sent, dropped, flipped, garbage; /* the sim's */
    struct counts k;                                    /* tetherd's */
    long long max_seq; /* newest frame stored, -1: none */
    struct verdict v;  /* what was stored */
};

/* Over a pty nothing is lost but what the faults destroy, and tetherd
 * reads every byte the sim sends from its boot on (the pty holds what
 * comes before tetherd opens it, and the sim, stopped first, leaves
 * little unread, see below).  Each destroyed frame ends in one damaged
 * block at the next delimiter.  So, for every run:
 *
 *   Bytes: every byte sent is in a good frame, in a rejected block (the
 *   discarded count) or is the delimiter of one (one per damaged block),
 *   or ends an empty block.  The good frames' bytes are known: stored ADC
 *   frames from their rows, every other good frame is a 50-byte report
 *   but for a handful (HELLO 40 bytes, LOG lines up to 81).  Allowed:
 *   the sim's last write (stop_sim_drained(), 544 bytes with a garbage
 *   burst), the frame it was in the middle of when frozen (its bytes end
 *   no block: 256), 2% for empty blocks, 64 bytes for the odd frames.
 *
 * and, by how often frames survive:
 *
 *   BY_SEQ: the frames sent up to the newest stored one are its seq + 1
 *   (seq counts every frame the MCU queued since its boot), and each was
 *   either good or in a damaged block: frames_ok + damage ~ max_seq + 1.
 *   tetherd's own count of frames missing between good ones must agree:
 *   damage ~ gaps.  Both differ by a delimiter destroyed, which merges
 *   two frames into one block (8 bits of ~1,400 per frame: under 1% of
 *   damaged frames at 1000 ppm), by a byte turned into 0x00 or a zero in
 *   a garbage burst, which splits a block (a few in a hundred): slack_pct
 *   of the frames lost, plus 5.  And they differ by the frames sent after
 *   the newest stored one, damaged or not stored (STATS): with a fraction
 *   p of the frames stored, their number is geometric with mean 1/p, and
 *   above 7/p with a chance of e^-7.
 *
 *   BYTES_ONLY: at 10000 ppm a full ADC frame survives with e^-20 and a
 *   report with e^-4, at 50000 ppm nothing does, so seq numbers tell
 *   little.  Nor do blocks stand for frames: 8% (10000 ppm) to a third
 *   (50000 ppm) of the delimiters are destroyed, merging blocks, and
 *   about as many new zeros appear, splitting them.  The byte account
 *   still holds exactly. */
static void assert_accounted(const struct noise_case *nc, const struct tally *t)
{
    const struct counts *k = &t->k;
    long long damage = k->crc + k->cobs + k->oversize;
    long long good, sent, slack;

    /* A good CRC cannot come from a damaged frame, so no damaged frame
     * reaches the version check or the payload decoder. */
    ck_assert_int_eq(k->version, 0);
    ck_assert_int_eq(k->bad, 0);
    good = t->v.adc_wire + (k->frames_ok - t->v.batches) * REPORT_WIRE;
    slack = 544 + 256 + 64 + (long long)t->sent / 50;
    ck_assert_msg(llabs(good + k->discarded + damage - (long long)t->sent) <=
                      slack,
                  "%s: %lld bytes in good frames, %lld discarded in %lld "
                  "blocks, %llu sent",
                  nc->name, good, k->discarded, damage, t->sent);
    if (nc->account == CLEAN) {
        ck_assert_int_eq(damage, 0);
        ck_assert_int_eq(k->gaps, 0);
        ck_assert_int_eq(k->discarded, 0);
        return;
    }
    ck_assert_msg(damage > 0 && k->discarded > 0, "%s: no damage counted",
                  nc->name);
    if (nc->account == BY_SEQ) {
        ck_assert_int_ge(t->max_seq, 0);
        sent = t->max_seq + 1;
        slack = 5 + (sent - k->frames_ok) * nc->slack_pct / 100 +
                7 * sent / (t->v.batches + t->v.heaps);
        ck_assert_msg(llabs(k->frames_ok + damage - sent) <= slack,
                      "%s: %lld good + %lld damaged, %lld sent", nc->name,
                      k->frames_ok, damage, sent);
        ck_assert_msg(llabs(damage - k->gaps) <= slack,
                      "%s: %lld damaged blocks for %lld frames missing",
                      nc->name, damage, k->gaps);
    }
}

/* Single changes to a clean run's stored rows, each of which the check of
 * what was stored must catch: a bit of a value, a time, a heap field, a
 * missing row. */
static const char *const mutations[] = {
    "UPDATE adc SET value = (value | 1) - (value & 1) WHERE rowid = "
    "(SELECT max(rowid) FROM adc WHERE channel = 2)",
    "UPDATE adc SET value = (value | 1024) - (value & 1024) WHERE rowid = "
    "(SELECT min(rowid) FROM adc WHERE channel = 3)",
    "UPDATE adc SET value = (value | 8192) - (value & 8192) WHERE rowid = "
    "(SELECT min(rowid) + 40 FROM adc WHERE channel = 1)",
    "UPDATE adc SET t_us = t_us + 1 WHERE rowid = (SELECT min(rowid) + 9 "
    "FROM adc)",
    "UPDATE heap SET allocs = (allocs | 4) - (allocs & 4) WHERE rowid = "
    "(SELECT min(rowid) + 3 FROM heap)",
    "DELETE FROM adc WHERE rowid = (SELECT min(rowid) + 70 FROM adc)",
};

START_TEST(test_faults_line_noise_never_stores_a_damaged_frame)
{
    const struct noise_case *nc = &noise_cases[_i];
    bool steady = nc->account == CLEAN || nc->account == BY_SEQ;
    char seed[16], rate[16], err[ERR_MAX];
    const char *sim[ARGV_MAX] = {
        "--seed",      seed,          "--rate",        rate,
        "--channels",  "4",           "--heap-period", "100",
        "--noise-ppm", nc->noise_ppm, "--drop-ppm",    nc->drop_ppm,
        NULL};
    static struct reference ref; /* static: 260 KB */
    struct itest_client c;
    struct tally t = {0};
    struct verdict *v = &t.v;
    long long t_lo, t_hi, ok, prev = -1;
    sqlite3 *db;

    snprintf(seed, sizeof(seed), "%u", SIM_SEED);
    snprintf(rate, sizeof(rate), "%u", SIM_RATE);
    if (nc->garbage)
        sim[12] = "--garbage";
    reference_init(&ref);
    t_lo = (long long)time(NULL) * 1000000;
    start_sim(sim);
    start_daemon();
    itest_client_open(&c, run.sock, WAIT_MS);
    if (steady)
        ck_assert_msg(wait_state(&c, "connected", WAIT_MS, 50), "no link");
    for (int ms = 0; ms < RUN_MS; ms += STEP_MS) {
        usleep(STEP_MS * 1000);
        ck_assert_int_eq(kill(run.daemon, 0), 0);
        ok = link_int(&c, "frames_ok");
        /* Frames keep coming through after every damaged one: at 1000
         * ppm a full ADC frame survives with e^-2 = 13%, a report with
         * e^-0.4 = 67%, some 18 good frames a second, so a second
         * without one has odds of e^-18. */
        ck_assert_msg(!steady || ok > prev, "%s: no good frame for %d ms",
                      nc->name, STEP_MS);
        prev = ok;
    }
    /* The sim first, so that tetherd reads all it sent. */
    stop_sim_drained();
    ck_assert_int_eq(kill(run.daemon, 0), 0);
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, 5000);
    t_hi = (long long)time(NULL) * 1000000 + 1000000;

    itest_read_file(run.simerr, err, sizeof(err));
    ck_assert_msg(sscanf(err,
                         "tether-sim: sent %llu bytes; faults: %llu dropped, "
                         "%llu bits flipped, %llu garbage bytes",
                         &t.sent, &t.dropped, &t.flipped, &t.garbage) == 4,
                  "sim said: %s", err);
    db = itest_db_open(run.db);
    assert_integrity(db);
    last_stats(db, &t.k);
    t.max_seq = itest_query_int(db, "SELECT s FROM (SELECT max(seq) AS s "
                                    "FROM adc UNION ALL SELECT max(seq) "
                                    "FROM heap) WHERE s IS NOT NULL ORDER BY "
                                    "s DESC LIMIT 1");
    check_sim_db(db, &ref, v, t_lo, t_hi);
    fprintf(stderr,
            "faults: %s: sim sent %llu B (%llu dropped, %llu bits flipped, "
            "%llu garbage); tetherd: %lld ok, %lld crc, %lld cobs, %lld "
            "oversize, %lld gaps, %lld B discarded, %+lld B unaccounted; "
            "stored %lld ADC frames (newest seq %lld), %lld heap, %lld bad\n",
            nc->name, t.sent, t.dropped, t.flipped, t.garbage, t.k.frames_ok,
            t.k.crc, t.k.cobs, t.k.oversize, t.k.gaps, t.k.discarded,
            (long long)t.sent -
                (v->adc_wire + (t.k.frames_ok - v->batches) * REPORT_WIRE +
                 t.k.discarded + t.k.crc + t.k.cobs + t.k.oversize),
            v->batches, t.max_seq, v->heaps, v->bad);
    ck_assert_msg(v->bad == 0, "%s: %lld stored rows no clean run gives: %s",
                  nc->name, v->bad, v->first);
    assert_accounted(nc, &t);
    if (steady) {
        /* Rows came through the noise, and not a frame more than came. */
        ck_assert_int_gt(v->batches, 0);
        ck_assert_int_gt(v->heaps, 0);
        ck_assert_int_le(v->batches + v->heaps, t.k.frames_ok);
    }
    if (nc->account == CLEAN) {
        /* Clean, and the check of what was stored has teeth. */
        ck_assert_int_eq(t.flipped + t.dropped + t.garbage, 0);
        sqlite3_close(db);
        ck_assert_int_eq(
            sqlite3_open_v2(run.db, &db, SQLITE_OPEN_READWRITE, NULL),
            SQLITE_OK);
        for (size_t i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++)
            assert_check_sees(db, &ref, t_lo, t_hi, mutations[i]);
    } else {
        ck_assert_uint_gt(t.flipped + t.dropped + t.garbage, 0);
    }
    sqlite3_close(db);
}
END_TEST

/* ---- 2. Damage costs exactly the frame it lands in ---- */

/* Frames as the MCU, each good frame preceded at random by nothing, a
 * copy of it with one bit flipped, or a burst of garbage ended by a
 * delimiter: each injection must count exactly one damaged block, and
 * every good frame after it must be stored. */
#define DAMAGE_FRAMES 200u
#define GARBAGE_MAX   40u

START_TEST(test_faults_each_damaged_frame_counts_once_and_the_next_is_stored)
{
    struct mcu m;
    struct itest_client c;
    uint32_t rng = 12345;
    unsigned injected = 0, adc = 0, heap = 0;
    long long damage;
    sqlite3 *db;

    start_with_mcu(&m, &c);
    for (unsigned i = 0; i < DAMAGE_FRAMES; i++) {
        uint8_t w[FRAME_WIRE_MAX], bad[FRAME_WIRE_MAX + GARBAGE_MAX];
        bool is_adc = i % 3 != 0;
        size_t n = is_adc ? mcu_adc_frame(&m, w) : mcu_heap_frame(&m, w);
        unsigned what;

        rng = rng * 1103515245u + 12345u;
        what = (rng >> 16) % 3u;
        if (what == 1) {
            /* One bit of one byte before the delimiter, never making a
             * 0x00 (which would split the copy in two). */
            size_t at = (rng >> 4) % (n - 1);
            uint8_t bit = (uint8_t)(1u << ((rng >> 20) % 8u));

            memcpy(bad, w, n);
            if ((bad[at] ^ bit) == 0)
                bit = bit == 0x80 ? 0x01 : (uint8_t)(bit << 1);
            bad[at] ^= bit;
            mcu_write(&m, bad, n);
            injected++;
        } else if (what == 2) {
            size_t len = 1 + (rng >> 8) % GARBAGE_MAX;

            for (size_t k = 0; k < len; k++) {
                rng = rng * 1103515245u + 12345u;
                bad[k] = (uint8_t)(1u + (rng >> 16) % 255u);
            }
            bad[len] = 0;
            mcu_write(&m, bad, len + 1);
            injected++;
        }
        mcu_write(&m, w, n);
        if (is_adc)
            adc++;
        else
            heap++;
    }
    ck_assert_int_eq(wait_frames(&c, 1 + DAMAGE_FRAMES, WAIT_MS),
                     1 + DAMAGE_FRAMES);
    damage = link_int(&c, "crc_errors") + link_int(&c, "cobs_errors") +
             link_int(&c, "oversize");
    ck_assert_int_eq(damage, injected);
    ck_assert_int_eq(link_int(&c, "seq_gaps"), 0);
    ck_assert_int_eq(link_int(&c, "bad_payloads"), 0);
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, 5000);
    mcu_unplug(&m);

    db = itest_db_open(run.db);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(DISTINCT seq) FROM adc"),
                     adc);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(*) FROM adc"),
                     adc * MCU_SCANS * MCU_CHANNELS);
    ck_assert_int_eq(itest_query_int(db,
                                     "SELECT count(*) FROM adc WHERE value != "
                                     "((4096 + seq * 16 + channel) & 16383)"),
                     0);
    ck_assert_int_eq(
        itest_query_int(db, "SELECT count(DISTINCT seq) FROM heap"), heap);
    ck_assert_int_eq(
        itest_query_int(db, "SELECT count(*) FROM heap WHERE used != 1000 + "
                            "seq"),
        0);
    sqlite3_close(db);
}
END_TEST

/* ---- 3. Frames split at every offset ---- */

/* Writes the frame in two parts, the first of at bytes, and lets tetherd
 * read the first part before the second is written. */
static void write_split(struct mcu *m, const uint8_t *w, size_t n, size_t at)
{
    mcu_write(m, w, at);
    ck_assert_int_eq(tcdrain(m->master), 0);
    mcu_wait_read(m);
    mcu_write(m, w + at, n - at);
}

START_TEST(test_faults_frames_split_at_every_offset_are_stored_once)
{
    struct mcu m;
    struct itest_client c;
    unsigned adc = 0, heap = 0;
    size_t adc_len = 0, heap_len = 0;
    long long last_seq = 0;
    cJSON *msg;
    sqlite3 *db;

    start_with_mcu(&m, &c);
    /* Every split of a full ADC frame, then of a heap report. */
    for (size_t at = 1;; at++) {
        uint8_t w[FRAME_WIRE_MAX];
        size_t n = mcu_adc_frame(&m, w);

        adc_len = n;
        write_split(&m, w, n, at);
        adc++;
        if (at + 1 >= n)
            break;
    }
    for (size_t at = 1;; at++) {
        uint8_t w[FRAME_WIRE_MAX];
        size_t n = mcu_heap_frame(&m, w);

        heap_len = n;
        write_split(&m, w, n, at);
        heap++;
        if (at + 1 >= n)
            break;
    }
    /* The last word: a whole frame, whose values latest must show. */
    last_seq = m.seq;
    mcu_send_adc(&m);
    adc++;
    ck_assert_uint_eq(adc_len,
                      FRAME_WIRE_LEN(MSG_ADC_LEN(MCU_SCANS * MCU_CHANNELS)));
    ck_assert_uint_eq(heap_len, FRAME_WIRE_LEN(MSG_HEAP_LEN));
    ck_assert_int_eq(wait_frames(&c, 1 + adc + heap, WAIT_MS), 1 + adc + heap);
    ck_assert_int_eq(link_int(&c, "crc_errors") + link_int(&c, "cobs_errors") +
                         link_int(&c, "oversize") + link_int(&c, "seq_gaps"),
                     0);
    msg = itest_call(&c, "latest", "{\"n\":1,\"channels\":[1]}");
    ck_assert_int_eq(
        itest_member(
            cJSON_GetArrayItem(
                itest_member(
                    cJSON_GetArrayItem(
                        itest_member(itest_result(msg), "channels", NULL), 0),
                    "samples", NULL),
                0),
            "value", NULL)
            ->valueint,
        mcu_value(1, (uint16_t)last_seq, 1));
    cJSON_Delete(msg);
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, 5000);
    mcu_unplug(&m);

    db = itest_db_open(run.db);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(DISTINCT seq) FROM adc"),
                     adc);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(*) FROM adc"),
                     adc * MCU_SCANS * MCU_CHANNELS);
    ck_assert_int_eq(itest_query_int(db,
                                     "SELECT count(*) FROM adc WHERE value != "
                                     "((4096 + seq * 16 + channel) & 16383)"),
                     0);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(*) FROM heap"), heap);
    ck_assert_int_eq(
        itest_query_int(db, "SELECT count(DISTINCT seq) FROM heap"), heap);
    sqlite3_close(db);
}
END_TEST

/* ---- 4. An MCU reset in the middle of a frame ---- */

#define BOOT_FRAMES 10u

/* Sends BOOT_FRAMES ADC frames of m's boot. */
static void send_batches(struct mcu *m)
{
    for (unsigned i = 0; i < BOOT_FRAMES; i++)
        mcu_send_adc(m);
}

/* The first half of the next ADC frame: the reset comes before the rest. */
static void send_torn_frame(struct mcu *m)
{
    uint8_t w[FRAME_WIRE_MAX];
    size_t n = mcu_adc_frame(m, w);

    mcu_write(m, w, n / 2);
}

/* Checks what tetherd stored of two boots of BOOT_FRAMES batches each and
 * a torn frame of boot 1 with seq BOOT_FRAMES + 1, the second boot
 * reported with cause. */
static void assert_two_boots(unsigned cause)
{
    char text[TEXT_MAX], want[64];
    sqlite3 *db = itest_db_open(run.db);

    for (unsigned b = 1; b <= 2; b++) {
        char sql[256];

        snprintf(sql, sizeof(sql),
                 "SELECT count(DISTINCT seq) FROM adc WHERE value = ((%u * "
                 "4096 + seq * 16 + channel) & 16383)",
                 b);
        ck_assert_int_eq(itest_query_int(db, sql), BOOT_FRAMES);
    }
    ck_assert_int_eq(itest_query_int(db, "SELECT count(*) FROM adc"),
                     2 * BOOT_FRAMES * MCU_SCANS * MCU_CHANNELS);
    /* Nothing of the torn frame. */
    ck_assert_int_eq(itest_query_int(db, "SELECT count(*) FROM adc WHERE seq "
                                         "= 11 AND value = ((4096 + seq * 16 "
                                         "+ channel) & 16383)"),
                     0);
    itest_query_text(db,
                     "SELECT value FROM alerts WHERE name = 'mcu_reset' "
                     "ORDER BY rowid",
                     text, sizeof(text));
    snprintf(want, sizeof(want), "%u.0\n", cause);
    ck_assert_msg(strcmp(text, want) == 0, "mcu_reset alerts: '%s'", text);
    itest_query_text(db,
                     "SELECT detail FROM events WHERE kind = 'hello' ORDER BY "
                     "rowid DESC LIMIT 1",
                     text, sizeof(text));
    snprintf(want, sizeof(want), "reset_cause=%u ", cause);
    ck_assert_msg(strstr(text, want) != NULL, "last hello: %s", text);
    sqlite3_close(db);
}

START_TEST(test_faults_mcu_reset_mid_frame_is_damage_then_a_reset)
{
    struct mcu m;
    struct itest_client c;
    cJSON *msg;

    start_with_mcu(&m, &c);
    send_batches(&m);
    ck_assert_int_eq(wait_frames(&c, 1 + BOOT_FRAMES, WAIT_MS),
                     1 + BOOT_FRAMES);
    send_torn_frame(&m);
    /* The firmware's boot: a delimiter, then HELLO with seq 0. */
    mcu_boot(&m, 2);
    mcu_send_boot_hello(&m, MSG_RESET_WATCHDOG);
    send_batches(&m);
    ck_assert_int_eq(wait_frames(&c, 2 + 2 * BOOT_FRAMES, WAIT_MS),
                     2 + 2 * BOOT_FRAMES);
    ck_assert_int_eq(link_int(&c, "crc_errors") + link_int(&c, "cobs_errors") +
                         link_int(&c, "oversize"),
                     1);
    ck_assert_int_eq(link_int(&c, "mcu_resets"), 1);
    ck_assert_int_eq(link_int(&c, "seq_gaps"), 0);
    msg = itest_call(&c, "status", NULL);
    ck_assert_str_eq(
        itest_member(itest_result(msg), "mcu", "last_reset_cause")->valuestring,
        "watchdog");
    cJSON_Delete(msg);
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, 5000);
    mcu_unplug(&m);
    assert_two_boots(MSG_RESET_WATCHDOG);
}
END_TEST

START_TEST(test_faults_mcu_reset_that_tears_its_hello_is_asked_for_the_cause)
{
    struct mcu m;
    struct itest_client c;
    uint8_t w[FRAME_WIRE_MAX];
    int cmd;

    start_with_mcu(&m, &c);
    send_batches(&m);
    ck_assert_int_eq(wait_frames(&c, 1 + BOOT_FRAMES, WAIT_MS),
                     1 + BOOT_FRAMES);
    send_torn_frame(&m);
    /* No delimiter this time: the boot HELLO runs into the torn frame and
     * is lost with it.  tetherd sees seq go back to 1, asks GET_HELLO, and
     * the MCU answers as the firmware does: ACK, then HELLO. */
    mcu_boot(&m, 2);
    mcu_write(&m, w, mcu_hello_frame(&m, MSG_RESET_FAULT, w));
    mcu_send_adc(&m);
    cmd = mcu_wait_command(&m, MSG_GET_HELLO, WAIT_MS);
    ck_assert_msg(cmd >= 0, "no GET_HELLO after the reset");
    mcu_send_ack(&m, (uint16_t)cmd, MSG_GET_HELLO);
    mcu_write(&m, w, mcu_hello_frame(&m, MSG_RESET_FAULT, w));
    for (unsigned i = 1; i < BOOT_FRAMES; i++)
        mcu_send_adc(&m);
    /* HELLO, boot 1's batches; boot 2's batches, ACK and HELLO. */
    ck_assert_int_eq(wait_frames(&c, 3 + 2 * BOOT_FRAMES, WAIT_MS),
                     3 + 2 * BOOT_FRAMES);
    ck_assert_int_eq(link_int(&c, "crc_errors") + link_int(&c, "cobs_errors") +
                         link_int(&c, "oversize"),
                     1);
    ck_assert_int_eq(link_int(&c, "mcu_resets"), 1);
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, 5000);
    mcu_unplug(&m);
    assert_two_boots(MSG_RESET_FAULT);
}
END_TEST

/* ---- 5. Unplugged and plugged in again, a hundred times ---- */

#define REPLUGS 100

/* Descriptors pid holds; the fewest of a few looks, so that one taken
 * for a moment (a history read, say) does not count. */
static int count_fds(pid_t pid)
{
    char path[64];
    int best = -1;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    for (int look = 0; look < 3; look++) {
        DIR *d = opendir(path);
        struct dirent *e;
        int n = 0;

        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)) != NULL)
            n += e->d_name[0] != '.';
        closedir(d);
        if (best < 0 || n < best)
            best = n;
        usleep(20000);
    }
    return best;
}

START_TEST(test_faults_unplug_and_replug_100_times_reconnects_every_time)
{
    struct mcu m;
    struct itest_client c;
    int fds_before, fds_after;
    long long frames;
    sqlite3 *db;

    start_with_mcu(&m, &c);
    mcu_send_heap(&m);
    frames = wait_frames(&c, 2, WAIT_MS);
    fds_before = count_fds(run.daemon);
    for (int i = 0; i < REPLUGS; i++) {
        /* Pulled in the middle of a frame, which is lost; its first half
         * must not spoil the first frame after the replug. */
        send_torn_frame(&m);
        mcu_unplug(&m);
        ck_assert_msg(wait_state(&c, "disconnected", WAIT_MS, 5),
                      "unplug %d not seen", i);
        ck_assert_int_eq(kill(run.daemon, 0), 0);
        /* The same MCU, still running: seq and clock go on. */
        mcu_plug(&m);
        mcu_send_adc(&m);
        mcu_send_heap(&m);
        frames += 2;
        ck_assert_msg(wait_state(&c, "connected", WAIT_MS, 5),
                      "replug %d not taken", i);
    }
    ck_assert_int_eq(wait_frames(&c, frames, WAIT_MS), frames);
    fds_after = count_fds(run.daemon);
    ck_assert_msg(fds_after <= fds_before,
                  "tetherd holds %d descriptors, %d before", fds_after,
                  fds_before);
    ck_assert_int_eq(link_int(&c, "reconnects"), REPLUGS);
    ck_assert_int_eq(link_int(&c, "seq_gaps"), 0);
    /* After the last replug, frames are stored as ever. */
    m.boot = 3;
    send_batches(&m);
    frames += BOOT_FRAMES;
    ck_assert_int_eq(wait_frames(&c, frames, WAIT_MS), frames);
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, 5000);
    mcu_unplug(&m);

    db = itest_db_open(run.db);
    ck_assert_int_eq(itest_query_int(db,
                                     "SELECT count(*) FROM events WHERE kind = "
                                     "'link' AND detail LIKE 'connected:%'"),
                     REPLUGS + 1);
    ck_assert_int_eq(itest_query_int(db,
                                     "SELECT count(*) FROM events WHERE kind = "
                                     "'link' AND detail LIKE "
                                     "'disconnected:%'"),
                     REPLUGS);
    ck_assert_int_eq(
        itest_query_int(db, "SELECT count(DISTINCT seq) FROM adc WHERE value = "
                            "((3 * 4096 + seq * 16 + channel) & 16383)"),
        BOOT_FRAMES);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(DISTINCT seq) FROM adc"),
                     REPLUGS + BOOT_FRAMES);
    ck_assert_int_eq(itest_query_int(db, "SELECT count(*) FROM adc"),
                     (REPLUGS + BOOT_FRAMES) * MCU_SCANS * MCU_CHANNELS);
    sqlite3_close(db);
}
END_TEST

/* ---- 6. SIGKILL during ingest, twenty times ---- */

#define KILLS 20

/* What a reader saw committed, in one read transaction. */
struct seen {
    long long rowid, count, max_t, sum;
    long long heap_rowid, heap_count;
};

static void look(sqlite3 *db, struct seen *s)
{
    sqlite3_stmt *st;

    ck_assert_int_eq(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT ifnull(max(rowid), 0), "
                                        "count(*), ifnull(max(t_us), 0), "
                                        "ifnull(sum(value), 0) FROM adc",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    s->rowid = sqlite3_column_int64(st, 0);
    s->count = sqlite3_column_int64(st, 1);
    s->max_t = sqlite3_column_int64(st, 2);
    s->sum = sqlite3_column_int64(st, 3);
    sqlite3_finalize(st);
    s->heap_rowid = itest_query_int(db, "SELECT ifnull(max(rowid), 0) FROM "
                                        "heap");
    s->heap_count = itest_query_int(db, "SELECT count(*) FROM heap");
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

/* Starts tetherd and waits until it has committed ADC and heap rows of
 * its own, beyond what *base saw; returns what a reader then sees. */
static void start_and_wait_commits(const struct seen *base, struct seen *s)
{
    int64_t end = simproc_now_ms() + WAIT_MS;

    start_daemon();
    for (;;) {
        ck_assert_msg(simproc_now_ms() < end, "no commits");
        memset(s, 0, sizeof(*s));
        if (access(run.db, F_OK) == 0) {
            sqlite3 *db = itest_db_open(run.db);

            if (itest_query_int(db, "SELECT count(*) FROM sqlite_master "
                                    "WHERE name IN ('adc', 'heap')") == 2)
                look(db, s);
            sqlite3_close(db);
            if (s->rowid > base->rowid && s->heap_rowid > base->heap_rowid)
                return;
        }
        usleep(20000);
    }
}

START_TEST(test_faults_sigkill_during_full_rate_ingest_20_times_loses_nothing)
{
    /* Unpaced: the sim sends as fast as tetherd takes it, 32,000 values a
     * second in full frames, 10 heap reports. */
    const char *sim[] = {"--rate",        "20000", "--channels", "16",
                         "--heap-period", "100",   NULL};
    struct seen base = {0}, s;
    uint32_t rng = 99;
    int busy = 0;
    sqlite3 *db;

    start_sim(sim);
    for (int round = 0; round < KILLS; round++) {
        char sql[256];

        start_and_wait_commits(&base, &s);
        /* Kill at a random point of the commit cycle (100 ms). */
        rng = rng * 1103515245u + 12345u;
        usleep((useconds_t)((rng >> 16) % 150u) * 1000);
        itest_kill(&run.daemon);

        db = itest_db_open(run.db);
        assert_integrity(db);
        /* Everything seen committed is there, unchanged. */
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM adc WHERE rowid <= %lld", s.rowid);
        ck_assert_int_eq(itest_query_int(db, sql), s.count);
        snprintf(sql, sizeof(sql),
                 "SELECT sum(value) FROM adc WHERE rowid <= %lld", s.rowid);
        ck_assert_int_eq(itest_query_int(db, sql), s.sum);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM adc WHERE t_us <= %lld", s.max_t);
        ck_assert_int_ge(itest_query_int(db, sql), s.count);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM heap WHERE rowid <= %lld", s.heap_rowid);
        ck_assert_int_eq(itest_query_int(db, sql), s.heap_count);
        /* The next tetherd must commit beyond what this one left. */
        look(db, &base);
        sqlite3_close(db);
        busy += base.rowid > s.rowid;
    }
    /* The file the kills left behind opens, takes rows, and closes. */
    start_and_wait_commits(&base, &s);
    itest_stop_cleanly(&run.daemon, 5000);
    db = itest_db_open(run.db);
    assert_integrity(db);
    sqlite3_close(db);
    fprintf(stderr,
            "faults: %d kills, %d of them after commits newer than the "
            "reader's look; %lld ADC rows kept, integrity ok\n",
            KILLS, busy, s.count);
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *noise = tcase_create("noise");
    TCase *mcu = tcase_create("mcu");
    TCase *kill9 = tcase_create("kill");

    tcase_set_timeout(noise, 30);
    tcase_add_checked_fixture(noise, setup, teardown);
    tcase_add_loop_test(noise,
                        test_faults_line_noise_never_stores_a_damaged_frame, 0,
                        (int)(sizeof(noise_cases) / sizeof(noise_cases[0])));
    suite_add_tcase(s, noise);

    tcase_set_timeout(mcu, 60);
    tcase_add_checked_fixture(mcu, setup, teardown);
    tcase_add_test(
        mcu, test_faults_each_damaged_frame_counts_once_and_the_next_is_stored);
    tcase_add_test(mcu,
                   test_faults_frames_split_at_every_offset_are_stored_once);
    tcase_add_test(mcu, test_faults_mcu_reset_mid_frame_is_damage_then_a_reset);
    tcase_add_test(
        mcu, test_faults_mcu_reset_that_tears_its_hello_is_asked_for_the_cause);
    tcase_add_test(
        mcu, test_faults_unplug_and_replug_100_times_reconnects_every_time);
    suite_add_tcase(s, mcu);

    tcase_set_timeout(kill9, 90);
    tcase_add_checked_fixture(kill9, setup, teardown);
    tcase_add_test(
        kill9,
        test_faults_sigkill_during_full_rate_ingest_20_times_loses_nothing);
    suite_add_tcase(s, kill9);
    return s;
}

int main(void)
{
    return itest_run(faults_suite());
}
