/* The link on a real libuv loop, against two kinds of MCU:
 *
 *   - the real simulator ($TETHER_SIM, default build/tether-sim), started
 *     as a child with --link DIR/tty so that the link is given a symlink,
 *     as it would be given /dev/serial/by-id/...: connecting, HELLO, data
 *     with wall-clock times, commands and their answers, the sim being
 *     killed and replaced, a REBOOT, the sim stopped (SIGSTOP) and resumed;
 *   - a fake MCU played by the test on a pty it holds the master side of,
 *     for what the simulator does not do on demand: sequence gaps, frames
 *     of another protocol version, bad payloads, damaged frames and MCU
 *     resets whose HELLO is lost.
 *
 * Every wait is bounded by a timer that stops the loop, every child is
 * killed and reaped (and dies with the test if it ends early), and every
 * test ends with uv_loop_close() returning 0. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cobs.h"
#include "crc32c.h"
#include "daemon_test_util.h"
#include "link.h"
#include "log.h"
#include "wire.h"

#define SIM_ARGS_MAX  16
#define STATES_MAX    32
#define GOT_MAX       256     /* frames the fake MCU keeps */
#define TICK_MS       5       /* how often run_until() looks */
#define WAIT_MS       5000    /* for anything that should simply happen */
#define REATTACH_MS   1500    /* a replaced device is found again within */
#define IDLE_LOOPS    50      /* loop iterations allowed in a second idle */
#define TIME_SLACK_US 1000000 /* event times are this close to now */

struct sim {
    pid_t pid;
    int out;
    char pty[PATH_MAX];
};

static struct {
    uv_loop_t loop;
    uv_timer_t deadline;
    uv_timer_t tick;
    uv_check_t check;
    uint64_t iterations;
    bool (*until)(void);
    bool met;

    struct link *link;
    bool link_closed;
    char dir[PATH_MAX];
    char tty[PATH_MAX + 16];
    char log_path[PATH_MAX + 16];
    int log_fd;
    struct sim sims[2];

    /* What the link reported. */
    enum link_state states[STATES_MAX];
    size_t nstates;
    unsigned hellos, resets, adcs, heaps, logs, stats, answers, statuses;
    struct msg_upd_status upd;
    struct msg_hello hello;
    uint8_t reset_cause;
    struct msg_ack answer;
    unsigned bad_times; /* event times more than a second from now */
    int64_t last_heap_t;
    unsigned heap_backwards;

    /* The fake MCU. */
    int master;
    char slave[PATH_MAX];
    struct frame_rx frx;
    uint8_t frxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    uint8_t got_type[GOT_MAX];
    uint16_t got_seq[GOT_MAX];
    size_t ngot;
    uint64_t fake_frames; /* every frame the fake received */
    uint64_t fake_breaks; /* frames whose seq did not follow the last */
    uint16_t fake_last_seq;
    unsigned want;
} t;

static int64_t now_us(int clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- The link's events ---- */

static void check_time(int64_t t_us)
{
    int64_t d = t_us - now_us(CLOCK_REALTIME);

    if (d > TIME_SLACK_US || d < -TIME_SLACK_US)
        t.bad_times++;
}

static void on_state(void *ctx, enum link_state st, const char *why)
{
    (void)ctx;
    ck_assert_ptr_nonnull(why);
    if (t.nstates < STATES_MAX)
        t.states[t.nstates++] = st;
}

static void on_hello(void *ctx, int64_t t_us, const struct msg_hello *h)
{
    (void)ctx;
    check_time(t_us);
    t.hellos++;
    t.hello = *h;
}

static void on_reset(void *ctx, int64_t t_us, uint8_t cause)
{
    (void)ctx;
    check_time(t_us);
    t.resets++;
    t.reset_cause = cause;
}

static void on_adc(void *ctx, int64_t t0_us, uint16_t seq,
                   const struct msg_adc *a)
{
    (void)ctx;
    (void)seq;
    ck_assert_uint_gt(a->scans, 0);
    check_time(t0_us);
    t.adcs++;
}

static void on_heap(void *ctx, int64_t t_us, uint16_t seq,
                    const struct msg_heap *h)
{
    (void)ctx;
    (void)seq;
    ck_assert_uint_eq(h->free + h->used, h->total);
    check_time(t_us);
    if (t.heaps > 0 && t_us <= t.last_heap_t)
        t.heap_backwards++;
    t.last_heap_t = t_us;
    t.heaps++;
}

static void on_log(void *ctx, int64_t t_us, const struct msg_log *l)
{
    (void)ctx;
    (void)l;
    check_time(t_us);
    t.logs++;
}

static void on_stats(void *ctx, int64_t t_us, const struct msg_stats *s)
{
    (void)ctx;
    (void)s;
    check_time(t_us);
    t.stats++;
}

static void on_answer(void *ctx, const struct msg_ack *a)
{
    (void)ctx;
    t.answers++;
    t.answer = *a;
}

static void on_upd_status(void *ctx, const struct msg_upd_status *s)
{
    (void)ctx;
    t.statuses++;
    t.upd = *s;
}

static const struct link_events events = {
    .state = on_state,
    .hello = on_hello,
    .reset = on_reset,
    .adc = on_adc,
    .heap = on_heap,
    .log = on_log,
    .stats = on_stats,
    .answer = on_answer,
    .upd_status = on_upd_status,
};

/* ---- Running the loop, bounded ---- */

static void on_deadline(uv_timer_t *h)
{
    (void)h;
    uv_stop(&t.loop);
}

static void on_tick(uv_timer_t *h)
{
    (void)h;
    if (t.until != NULL && t.until()) {
        t.met = true;
        uv_stop(&t.loop);
    }
}

static void on_check(uv_check_t *h)
{
    (void)h;
    t.iterations++;
}

/* Runs the loop until cond() holds or ms pass; returns cond's verdict. */
static bool run_until(bool (*cond)(void), unsigned ms)
{
    if (cond())
        return true;
    t.until = cond;
    t.met = false;
    uv_timer_start(&t.deadline, on_deadline, ms, 0);
    uv_timer_start(&t.tick, on_tick, TICK_MS, TICK_MS);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t.deadline);
    uv_timer_stop(&t.tick);
    t.until = NULL;
    return t.met || cond();
}

/* Runs the loop for ms with nothing of the test's own waking it. */
static void run_for(unsigned ms)
{
    uv_timer_start(&t.deadline, on_deadline, ms, 0);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t.deadline);
}

/* ---- The simulator ---- */

static void sim_start(struct sim *s, const char *const *extra)
{
    const char *path = getenv("TETHER_SIM");
    const char *argv[SIM_ARGS_MAX];
    pid_t parent = getpid();
    int pipefd[2];
    size_t n = 0, len = 0;

    if (path == NULL)
        path = "build/tether-sim";
    argv[n++] = path;
    argv[n++] = "--link";
    argv[n++] = t.tty;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        ck_assert_uint_lt(n, SIM_ARGS_MAX - 1);
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        /* Die with the test, however it ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pipefd[1], STDOUT_FILENO);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    s->out = pipefd[0];
    /* Its first line is the pty; by then the symlink exists. */
    while (len + 1 < sizeof(s->pty)) {
        struct pollfd p = {s->out, POLLIN, 0};

        ck_assert_msg(poll(&p, 1, WAIT_MS) == 1, "%s printed no pty", path);
        ck_assert_int_eq(read(s->out, &s->pty[len], 1), 1);
        if (s->pty[len] == '\n')
            break;
        len++;
    }
    s->pty[len] = '\0';
    ck_assert_str_eq(s->pty, realpath(t.tty, (char[PATH_MAX]){0}));
}

static void sim_kill(struct sim *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (s->out >= 0)
        close(s->out);
    s->out = -1;
}

/* ---- Fixture ---- */

static void setup(void)
{
    memset(&t, 0, sizeof(t));
    t.master = -1;
    t.sims[0].out = t.sims[1].out = -1;
    snprintf(t.dir, sizeof(t.dir), "%s", dtest_tmpdir());
    snprintf(t.tty, sizeof(t.tty), "%s/tty", t.dir);
    snprintf(t.log_path, sizeof(t.log_path), "%s/log", t.dir);
    t.log_fd = open(t.log_path, O_CREAT | O_RDWR | O_APPEND, 0600);
    ck_assert_int_ge(t.log_fd, 0);
    log_set_fd(t.log_fd);
    log_set_level(LOG_PRIO_DEBUG);
    ck_assert_int_eq(uv_loop_init(&t.loop), 0);
    uv_timer_init(&t.loop, &t.deadline);
    uv_timer_init(&t.loop, &t.tick);
    uv_check_init(&t.loop, &t.check);
    uv_check_start(&t.check, on_check);
    uv_unref((uv_handle_t *)&t.check);
}

/* Kills what the test started even when it failed half-way. */
static void teardown(void)
{
    sim_kill(&t.sims[0]);
    sim_kill(&t.sims[1]);
    if (t.master >= 0)
        close(t.master);
    log_set_fd(STDERR_FILENO);
    log_set_level(LOG_PRIO_INFO);
    close(t.log_fd);
    unlink(t.log_path);
    unlink(t.tty);
    rmdir(t.dir);
}

static void start_link(const char *device, uint32_t stale_ms)
{
    struct link_config cfg = {
        .device = device,
        .baud = 115200,
        .rtscts = false,
        .stale_after_ms = stale_ms,
    };

    ck_assert_int_eq(link_new(&t.link, &t.loop, &cfg, &events, NULL), 0);
    ck_assert_int_eq(link_state(t.link), LINK_DISCONNECTED);
    ck_assert_ptr_null(link_hello(t.link));
}

static void on_link_closed(void *arg)
{
    ck_assert_ptr_eq(arg, &t);
    t.link_closed = true;
}

static bool link_closed(void)
{
    return t.link_closed;
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* Closes the link and the test's handles; the loop must then be empty. */
static void finish(void)
{
    if (t.link != NULL) {
        link_close(t.link, on_link_closed, &t);
        t.link = NULL;
        ck_assert(run_until(link_closed, WAIT_MS));
    }
    uv_close((uv_handle_t *)&t.deadline, on_handle_closed);
    uv_close((uv_handle_t *)&t.tick, on_handle_closed);
    uv_close((uv_handle_t *)&t.check, on_handle_closed);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&t.loop), 0);
}

static bool log_contains(const char *needle)
{
    static char text[65536];
    ssize_t n = pread(t.log_fd, text, sizeof(text) - 1, 0);

    text[n > 0 ? n : 0] = '\0';
    return strstr(text, needle) != NULL;
}

static struct link_stats stats_now(void)
{
    struct link_stats s;

    link_get_stats(t.link, &s);
    return s;
}

/* ---- Conditions ---- */

static bool is_connected(void)
{
    return link_state(t.link) == LINK_CONNECTED;
}

static bool is_disconnected(void)
{
    return link_state(t.link) == LINK_DISCONNECTED;
}

static bool is_stale(void)
{
    return link_state(t.link) == LINK_STALE;
}

static bool has_hello(void)
{
    return is_connected() && t.hellos >= 1;
}

static bool has_data(void)
{
    return has_hello() && t.adcs >= 5 && t.heaps >= 3 && t.stats >= 1 &&
           t.logs >= 1;
}

static bool has_hellos(void)
{
    return t.hellos >= t.want;
}

static bool has_answers(void)
{
    return t.answers >= t.want;
}

static bool has_resets(void)
{
    return t.resets >= t.want;
}

static bool has_heaps(void)
{
    return t.heaps >= t.want;
}

/* ---- Tests against the simulator ---- */

START_TEST(test_link_connects_to_the_sim_and_delivers_frames_with_wall_times)
{
    const char *args[] = {"--heap-period", "100", NULL};
    struct link_stats s;

    sim_start(&t.sims[0], args);
    start_link(t.tty, 3000);
    ck_assert_msg(run_until(has_data, WAIT_MS),
                  "hellos=%u adcs=%u heaps=%u stats=%u logs=%u", t.hellos,
                  t.adcs, t.heaps, t.stats, t.logs);
    ck_assert_uint_eq(t.nstates, 1);
    ck_assert_int_eq(t.states[0], LINK_CONNECTED);
    ck_assert_uint_eq(t.hello.board, MSG_BOARD_SIM);
    ck_assert_uint_eq(t.hello.proto_version, FRAME_VERSION);
    ck_assert_ptr_nonnull(link_hello(t.link));
    ck_assert_uint_eq(link_hello(t.link)->heap_total, t.hello.heap_total);
    ck_assert_uint_eq(t.bad_times, 0);
    ck_assert_uint_eq(t.heap_backwards, 0);
    ck_assert_uint_eq(t.resets, 0);
    ck_assert(log_contains("link connected: frames from "));

    s = stats_now();
    ck_assert_uint_gt(s.bytes_in, 0);
    ck_assert_uint_ge(s.frames_ok, 10);
    ck_assert_uint_eq(s.crc_errors + s.cobs_errors + s.oversize, 0);
    ck_assert_uint_eq(s.version_errors, 0);
    ck_assert_uint_eq(s.seq_gaps, 0);
    ck_assert_uint_eq(s.bad_payloads, 0);
    ck_assert_uint_eq(s.mcu_resets, 0);
    ck_assert_uint_eq(s.reconnects, 0);
    finish();
}
END_TEST

START_TEST(test_link_send_gets_an_ack_and_a_nack_back)
{
    uint8_t p[2], big[FRAME_PAYLOAD_MAX + 1] = {0};
    uint16_t seq1, seq2;

    sim_start(&t.sims[0], NULL);
    start_link(t.tty, 3000);
    ck_assert(run_until(has_hello, WAIT_MS));

    wire_put_u16(p, 200);
    ck_assert_int_eq(link_send(t.link, MSG_SET_RATE, p, 2, &seq1), 0);
    t.want = 1;
    ck_assert(run_until(has_answers, WAIT_MS));
    ck_assert_uint_eq(t.answer.seq, seq1);
    ck_assert_uint_eq(t.answer.type, MSG_SET_RATE);
    ck_assert_uint_eq(t.answer.error, 0);

    wire_put_u16(p, 0); /* below the range: NACK BAD_VALUE */
    ck_assert_int_eq(link_send(t.link, MSG_SET_RATE, p, 2, &seq2), 0);
    ck_assert_uint_eq((uint16_t)(seq2 - seq1), 1);
    t.want = 2;
    ck_assert(run_until(has_answers, WAIT_MS));
    ck_assert_uint_eq(t.answer.seq, seq2);
    ck_assert_uint_eq(t.answer.error, MSG_NACK_BAD_VALUE);

    ck_assert_int_eq(link_send(t.link, MSG_PING, big, sizeof(big), NULL),
                     -EMSGSIZE);
    finish();
}
END_TEST

START_TEST(test_link_asks_for_a_hello_when_none_came)
{
    char buf[4096];
    int fd;

    /* Someone else read the boot HELLO: the link sees data only. */
    sim_start(&t.sims[0], NULL);
    fd = open(t.tty, O_RDONLY | O_NOCTTY | O_NONBLOCK);
    ck_assert_int_ge(fd, 0);
    usleep(100000);
    while (read(fd, buf, sizeof(buf)) > 0)
        continue;
    close(fd);

    start_link(t.tty, 3000);
    ck_assert(run_until(has_hello, WAIT_MS));
    ck_assert(log_contains("link connected"));
    /* Its own GET_HELLO's ACK is not the owner's business, and a HELLO
     * of a boot it never saw start is not a reset. */
    ck_assert_uint_eq(t.answers, 0);
    ck_assert_uint_eq(t.resets, 0);
    ck_assert_uint_gt(t.hello.uptime_ms, 0);
    finish();
}
END_TEST

START_TEST(test_link_survives_the_sim_dying_and_reattaches_to_a_new_one)
{
    const char *args[] = {"--heap-period", "100", NULL};
    struct link_stats s;
    uint64_t loops;
    int64_t started;

    sim_start(&t.sims[0], args);
    start_link(t.tty, 3000);
    ck_assert(run_until(has_hello, WAIT_MS));

    sim_kill(&t.sims[0]);
    ck_assert(run_until(is_disconnected, WAIT_MS));
    ck_assert(log_contains("link disconnected: "));
    ck_assert_int_eq(link_send(t.link, MSG_PING, (uint8_t[4]){0}, 4, NULL),
                     LINK_ENOTCONN);
    /* A second without a device: retries on a timer, no busy loop. */
    loops = t.iterations;
    run_for(1000);
    ck_assert_uint_lt(t.iterations - loops, IDLE_LOOPS);
    ck_assert_int_eq(link_state(t.link), LINK_DISCONNECTED);

    /* A new MCU behind the same symlink. */
    t.want = t.heaps + 2;
    sim_start(&t.sims[1], args);
    started = now_us(CLOCK_MONOTONIC);
    ck_assert(run_until(is_connected, WAIT_MS));
    ck_assert_int_le(now_us(CLOCK_MONOTONIC) - started, REATTACH_MS * 1000);
    ck_assert(run_until(has_heaps, WAIT_MS));
    ck_assert_uint_eq(t.nstates, 3);
    ck_assert_int_eq(t.states[0], LINK_CONNECTED);
    ck_assert_int_eq(t.states[1], LINK_DISCONNECTED);
    ck_assert_int_eq(t.states[2], LINK_CONNECTED);
    /* The new sim is a new boot of "the MCU": one reset, power-on. */
    ck_assert_uint_eq(t.resets, 1);
    ck_assert_uint_eq(t.reset_cause, MSG_RESET_POWER_ON);
    ck_assert_uint_eq(t.bad_times, 0);
    s = stats_now();
    ck_assert_uint_eq(s.reconnects, 1);
    ck_assert_uint_eq(s.mcu_resets, 1);
    ck_assert_uint_eq(s.seq_gaps, 0);
    finish();
}
END_TEST

static bool has_status(void)
{
    return t.statuses >= 1;
}

START_TEST(test_link_passes_update_status_answers_on)
{
    char slots[PATH_MAX + 16];
    const char *args[] = {"--flash", slots, NULL};
    uint16_t seq;

    snprintf(slots, sizeof(slots), "%s/slots", t.dir);
    ck_assert_int_eq(mkdir(slots, 0700), 0);
    sim_start(&t.sims[0], args);
    start_link(t.tty, 3000);
    ck_assert(run_until(has_hello, WAIT_MS));
    ck_assert_uint_ne(t.hello.caps & MSG_CAP_UPDATE, 0);
    ck_assert_int_eq(link_send(t.link, MSG_UPD_QUERY, NULL, 0, &seq), 0);
    ck_assert(run_until(has_status, WAIT_MS));
    ck_assert_uint_eq(t.upd.req_seq, seq);
    ck_assert_uint_eq(t.upd.req_type, MSG_UPD_QUERY);
    ck_assert_uint_eq(t.upd.state, MSG_UPD_IDLE);
    ck_assert_uint_eq(t.upd.fw_version, t.hello.fw_version);
    ck_assert_uint_eq(t.answers, 0); /* not an ACK */
    finish();
}
END_TEST

/* Lent to OpenOCD: the device is closed and stays closed, with the MCU
 * still there, until it is taken back. */
START_TEST(test_link_released_device_stays_closed_until_reacquired)
{
    uint64_t loops;

    sim_start(&t.sims[0], NULL);
    start_link(t.tty, 3000);
    ck_assert(run_until(has_hello, WAIT_MS));
    link_release(t.link, "lent for a test");
    ck_assert_int_eq(link_state(t.link), LINK_DISCONNECTED);
    ck_assert_int_eq(t.states[t.nstates - 1], LINK_DISCONNECTED);
    ck_assert(log_contains("link disconnected: lent for a test"));
    ck_assert_int_eq(link_send(t.link, MSG_GET_HELLO, NULL, 0, NULL),
                     LINK_ENOTCONN);
    link_release(t.link, "again"); /* no-op */
    loops = t.iterations;
    run_for(1500); /* longer than any retry */
    ck_assert_int_eq(link_state(t.link), LINK_DISCONNECTED);
    ck_assert_uint_lt(t.iterations - loops, IDLE_LOOPS);
    ck_assert_uint_eq(stats_now().reconnects, 0);
    link_reacquire(t.link);
    ck_assert(run_until(is_connected, REATTACH_MS));
    ck_assert_uint_eq(stats_now().reconnects, 1);
    finish();
}
END_TEST

START_TEST(test_link_waits_for_a_missing_device_without_spinning)
{
    uint64_t loops;

    start_link(t.tty, 3000);
    loops = t.iterations;
    run_for(1500);
    ck_assert_uint_lt(t.iterations - loops, IDLE_LOOPS);
    ck_assert_uint_eq(t.nstates, 0);
    ck_assert(log_contains("cannot open "));
    ck_assert_int_eq(link_send(t.link, MSG_GET_HELLO, NULL, 0, NULL),
                     LINK_ENOTCONN);

    sim_start(&t.sims[0], NULL);
    ck_assert(run_until(has_hello, REATTACH_MS + 500));
    ck_assert_uint_eq(t.resets, 0); /* the first boot seen is no reset */
    finish();
}
END_TEST

START_TEST(test_link_reports_a_reboot_once_with_cause_software)
{
    uint16_t seq;

    sim_start(&t.sims[0], NULL);
    start_link(t.tty, 3000);
    ck_assert(run_until(has_hello, WAIT_MS));
    ck_assert_int_eq(link_send(t.link, MSG_REBOOT, NULL, 0, &seq), 0);
    t.want = 1;
    ck_assert(run_until(has_resets, WAIT_MS));
    ck_assert_uint_eq(t.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(t.answer.seq, seq);
    ck_assert_uint_eq(t.answer.type, MSG_REBOOT);
    run_for(700);
    ck_assert_uint_eq(t.resets, 1);
    ck_assert_uint_eq(t.hellos, 2);
    ck_assert_uint_eq(t.hello.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(stats_now().mcu_resets, 1);
    ck_assert_uint_eq(t.bad_times, 0);
    ck_assert(is_connected());
    finish();
}
END_TEST

START_TEST(test_link_goes_stale_when_frames_stop_and_back_when_they_resume)
{
    sim_start(&t.sims[0], NULL);
    start_link(t.tty, 300);
    ck_assert(run_until(has_hello, WAIT_MS));
    kill(t.sims[0].pid, SIGSTOP);
    ck_assert(run_until(is_stale, WAIT_MS));
    ck_assert(log_contains("link stale: no valid frame for 300 ms"));
    kill(t.sims[0].pid, SIGCONT);
    ck_assert(run_until(is_connected, WAIT_MS));
    ck_assert_uint_eq(t.nstates, 3);
    ck_assert_int_eq(t.states[1], LINK_STALE);
    ck_assert_int_eq(t.states[2], LINK_CONNECTED);
    ck_assert_uint_eq(stats_now().reconnects, 0);
    finish();
}
END_TEST

/* ---- The fake MCU ---- */

static uint32_t mcu_now(void)
{
    return (uint32_t)now_us(CLOCK_MONOTONIC);
}

static void fake_open(void)
{
    t.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    ck_assert_int_ge(t.master, 0);
    ck_assert_int_eq(grantpt(t.master), 0);
    ck_assert_int_eq(unlockpt(t.master), 0);
    ck_assert_int_eq(ptsname_r(t.master, t.slave, sizeof(t.slave)), 0);
    frame_rx_init(&t.frx, t.frxbuf, sizeof(t.frxbuf));
}

static void fake_write(const uint8_t *w, size_t n)
{
    ck_assert_int_eq(write(t.master, w, n), (ssize_t)n);
}

static void fake_send(uint8_t type, uint16_t seq, const uint8_t *p, size_t n)
{
    uint8_t w[FRAME_WIRE_MAX];
    int len = frame_encode(w, sizeof(w), type, seq, p, n);

    ck_assert_int_gt(len, 0);
    fake_write(w, (size_t)len);
}

/* A frame of another protocol version, with a good CRC. */
static void fake_send_version(uint8_t version, uint8_t type, uint16_t seq)
{
    uint8_t raw[FRAME_RAW_MAX], w[FRAME_WIRE_MAX];
    size_t n = 0;
    int len;

    raw[n++] = version;
    raw[n++] = type;
    wire_put_u16(&raw[n], seq);
    n += 2;
    memset(&raw[n], 0x55, 10);
    n += 10;
    wire_put_u32(&raw[n], crc32c(raw, n));
    n += 4;
    len = cobs_encode(w, sizeof(w) - 1, raw, n);
    ck_assert_int_gt(len, 0);
    w[len++] = 0;
    fake_write(w, (size_t)len);
}

static void fake_hello(uint16_t seq, uint8_t cause, uint32_t uptime_ms)
{
    struct msg_hello h = {
        .proto_version = FRAME_VERSION,
        .board = MSG_BOARD_SIM,
        .reset_cause = cause,
        .adc_bits = 14,
        .adc_channels = 4,
        .caps = MSG_CAP_HEAP,
        .fw_version = 0x000100,
        .heap_total = 16384,
        .uptime_ms = uptime_ms,
        .time_us = mcu_now(),
        .rx_max = 64,
    };
    uint8_t p[MSG_HELLO_LEN];

    ck_assert_int_eq(msg_encode_hello(p, sizeof(p), &h), MSG_HELLO_LEN);
    fake_send(MSG_HELLO, seq, p, sizeof(p));
}

static int encode_heap(uint8_t *p, size_t cap)
{
    struct msg_heap h = {
        .t_us = mcu_now(),
        .total = 16384,
        .free = 12288,
        .used = 4096,
        .largest = 8000,
        .min_free = 10000,
        .allocs = 10,
        .frees = 5,
        .blocks = 5,
        .scenario = MSG_SCEN_STEADY,
    };

    return msg_encode_heap(p, cap, &h);
}

static void fake_heap(uint16_t seq)
{
    uint8_t p[MSG_HEAP_LEN];

    ck_assert_int_eq(encode_heap(p, sizeof(p)), MSG_HEAP_LEN);
    fake_send(MSG_HEAP, seq, p, sizeof(p));
}

static void fake_stats(uint16_t seq, uint32_t tx_dropped)
{
    struct msg_stats s = {.t_us = mcu_now(), .tx_dropped = tx_dropped};
    uint8_t p[MSG_STATS_LEN];

    ck_assert_int_eq(msg_encode_stats(p, sizeof(p), &s), MSG_STATS_LEN);
    fake_send(MSG_STATS, seq, p, sizeof(p));
}

static void fake_ack(uint16_t seq, uint16_t cmd_seq, uint8_t cmd_type)
{
    struct msg_ack a = {cmd_seq, cmd_type, 0};
    uint8_t p[MSG_ACK_LEN];

    ck_assert_int_eq(msg_encode_ack(p, sizeof(p), &a), MSG_ACK_LEN);
    fake_send(MSG_ACK, seq, p, sizeof(p));
}

/* Takes what the link wrote to the fake MCU. */
static void fake_poll(void)
{
    uint8_t buf[512];
    ssize_t n;

    while ((n = read(t.master, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            struct frame f;

            if (frame_rx_push(&t.frx, buf[i], &f) != FRAME_RX_OK)
                continue;
            if (t.fake_frames > 0 && f.seq != (uint16_t)(t.fake_last_seq + 1u))
                t.fake_breaks++;
            t.fake_last_seq = f.seq;
            t.fake_frames++;
            if (t.ngot < GOT_MAX) {
                t.got_type[t.ngot] = f.type;
                t.got_seq[t.ngot] = f.seq;
                t.ngot++;
            }
        }
    }
}

static size_t count_got(uint8_t type)
{
    size_t n = 0;

    for (size_t i = 0; i < t.ngot; i++)
        n += t.got_type[i] == type;
    return n;
}

static bool fake_got_get_hellos(void)
{
    fake_poll();
    return count_got(MSG_GET_HELLO) >= t.want;
}

/* Starts the link on the fake's pty and waits for its GET_HELLO, which
 * shows that the link has the device open and raw: only then may the
 * fake write (a pty not yet raw would cook the bytes). */
static void fake_start(void)
{
    fake_open();
    start_link(t.slave, 3000);
    t.want = 1;
    ck_assert(run_until(fake_got_get_hellos, WAIT_MS));
}

static bool fake_got_frames(void)
{
    fake_poll();
    return t.fake_frames >= t.want;
}

static bool frames_ok_reach_want(void)
{
    return stats_now().frames_ok >= t.want;
}

/* ---- Tests against the fake MCU ---- */

START_TEST(test_link_counts_gaps_damage_versions_bad_payloads_and_mcu_drops)
{
    uint8_t p[MSG_HEAP_LEN], w[FRAME_WIRE_MAX];
    struct link_stats s;
    int len;

    fake_start();
    fake_hello(0, MSG_RESET_POWER_ON, 1000);
    fake_heap(1);
    fake_heap(2);
    fake_heap(5); /* 3 and 4 lost */
    fake_stats(6, 3);
    fake_stats(7, 5);
    fake_send_version(2, MSG_HEAP, 8);
    encode_heap(p, sizeof(p));
    fake_send(MSG_HEAP, 9, p, 10); /* too short: a bad payload */
    /* Seq 10 damaged on the line: one byte of its CRC changed. */
    len = frame_encode(w, sizeof(w), MSG_HEAP, 10, p, sizeof(p));
    ck_assert_int_gt(len, 4);
    w[len - 2] = w[len - 2] == 0x5a ? 0xa5 : 0x5a;
    fake_write(w, (size_t)len);
    fake_heap(11);

    t.want = 8;
    ck_assert(run_until(frames_ok_reach_want, WAIT_MS));
    run_for(50);
    s = stats_now();
    ck_assert_uint_eq(s.frames_ok, 8);
    ck_assert_uint_eq(s.seq_gaps, 4); /* 3, 4, 8 and 10 */
    ck_assert_uint_eq(s.version_errors, 1);
    ck_assert_uint_eq(s.bad_payloads, 1);
    ck_assert_uint_eq(s.crc_errors + s.cobs_errors, 1);
    ck_assert_uint_gt(s.discarded, 0);
    ck_assert_uint_eq(s.mcu_tx_dropped, 5);
    ck_assert_uint_eq(s.mcu_resets, 0);
    ck_assert_uint_eq(t.heaps, 4);
    ck_assert_uint_eq(t.stats, 2);
    ck_assert_uint_eq(t.hellos, 1);
    ck_assert_uint_eq(t.resets, 0);
    ck_assert_uint_eq(t.bad_times, 0);
    ck_assert(log_contains("<3>frame of protocol version 2: this tetherd "
                           "speaks version 1"));
    ck_assert(log_contains("<7>bad HEAP payload (seq 9"));
    /* One GET_HELLO per connection, however long the wait. */
    fake_poll();
    ck_assert_uint_eq(count_got(MSG_GET_HELLO), 1);
    finish();
}
END_TEST

START_TEST(test_link_sees_a_reset_by_seq_and_takes_its_cause_from_hello)
{
    struct link_stats s;

    fake_start();
    fake_hello(0, MSG_RESET_POWER_ON, 3000);
    for (uint16_t seq = 1; seq <= 20; seq++)
        fake_heap(seq);
    fake_stats(21, 7);
    t.want = 22;
    ck_assert(run_until(frames_ok_reach_want, WAIT_MS));

    /* The MCU restarts; its HELLO (seq 0) is lost on the line. */
    fake_heap(1);
    t.want = 2;
    ck_assert(run_until(fake_got_get_hellos, WAIT_MS));
    ck_assert_uint_eq(t.resets, 0); /* waiting for the cause */
    fake_ack(2, t.got_seq[t.ngot - 1], MSG_GET_HELLO);
    fake_hello(3, MSG_RESET_WATCHDOG, 40);
    t.want = 1;
    ck_assert(run_until(has_resets, WAIT_MS));
    ck_assert_uint_eq(t.reset_cause, MSG_RESET_WATCHDOG);
    ck_assert_uint_eq(t.answers, 0);

    /* The new boot's drop counter starts again from 0. */
    fake_stats(4, 2);
    t.want = 26;
    ck_assert(run_until(frames_ok_reach_want, WAIT_MS));
    run_for(LINK_HELLO_WAIT_MS + 200);
    s = stats_now();
    ck_assert_uint_eq(t.resets, 1);
    ck_assert_uint_eq(s.mcu_resets, 1);
    ck_assert_uint_eq(s.seq_gaps, 0); /* not counted across a restart */
    ck_assert_uint_eq(s.mcu_tx_dropped, 9);
    ck_assert_uint_eq(t.bad_times, 0);
    finish();
}
END_TEST

START_TEST(test_link_reports_an_unexplained_reset_and_uptime_going_back)
{
    fake_start();
    fake_hello(0, MSG_RESET_POWER_ON, 3000);
    for (uint16_t seq = 1; seq <= 10; seq++)
        fake_heap(seq);
    t.want = 11;
    ck_assert(run_until(frames_ok_reach_want, WAIT_MS));

    /* Seq back to the start, and no answer to GET_HELLO: the reset is
     * reported with cause unknown, once. */
    fake_heap(0);
    t.want = 1;
    ck_assert(run_until(has_resets, WAIT_MS));
    ck_assert_uint_eq(t.reset_cause, MSG_RESET_UNKNOWN);
    /* Its HELLO, late, is the same boot's: no second report. */
    fake_hello(5, MSG_RESET_PIN, 600);
    t.want = 2;
    ck_assert(run_until(has_hellos, WAIT_MS));
    run_for(100);
    ck_assert_uint_eq(t.resets, 1);

    /* A HELLO whose uptime went back is a reset even when seq runs on. */
    fake_hello(6, MSG_RESET_BROWN_OUT, 100);
    t.want = 2;
    ck_assert(run_until(has_resets, WAIT_MS));
    ck_assert_uint_eq(t.reset_cause, MSG_RESET_BROWN_OUT);
    ck_assert_uint_eq(stats_now().mcu_resets, 2);
    finish();
}
END_TEST

START_TEST(test_link_queues_what_the_device_cannot_take_and_refuses_beyond)
{
    uint8_t token[4];
    uint64_t accepted = 0;
    uint16_t seq;
    int r;

    fake_start();
    fake_hello(0, MSG_RESET_POWER_ON, 1000);
    ck_assert(run_until(has_hello, WAIT_MS));
    /* The fake MCU reads nothing: the pty fills, then the link's queue,
     * then sending is refused; no frame is ever dropped half-written. */
    for (;;) {
        wire_put_u32(token, (uint32_t)accepted);
        r = link_send(t.link, MSG_PING, token, sizeof(token), &seq);
        if (r != 0)
            break;
        ck_assert_uint_eq(seq, (uint16_t)(accepted + 1)); /* 0: GET_HELLO */
        accepted++;
        ck_assert_uint_lt(accepted, 1000000);
    }
    ck_assert_int_eq(r, -ENOBUFS);
    ck_assert_uint_gt(accepted, 0);

    /* Reading again, the fake gets every frame whole and in order. */
    t.want = accepted + 1;
    ck_assert(run_until(fake_got_frames, WAIT_MS));
    ck_assert_uint_eq(t.fake_frames, accepted + 1);
    ck_assert_uint_eq(t.fake_breaks, 0);
    ck_assert_uint_eq(t.frx.stats.crc_errors + t.frx.stats.cobs_errors, 0);
    ck_assert_int_eq(link_send(t.link, MSG_PING, token, sizeof(token), &seq),
                     0);
    t.want = accepted + 2;
    ck_assert(run_until(fake_got_frames, WAIT_MS));
    finish();
}
END_TEST

static Suite *link_suite(void)
{
    Suite *s = suite_create("link");
    TCase *sim = tcase_create("sim");
    TCase *fake = tcase_create("fake");

    tcase_add_checked_fixture(sim, setup, teardown);
    tcase_add_test(
        sim, test_link_connects_to_the_sim_and_delivers_frames_with_wall_times);
    tcase_add_test(sim, test_link_send_gets_an_ack_and_a_nack_back);
    tcase_add_test(sim, test_link_asks_for_a_hello_when_none_came);
    tcase_add_test(
        sim, test_link_survives_the_sim_dying_and_reattaches_to_a_new_one);
    tcase_add_test(sim, test_link_waits_for_a_missing_device_without_spinning);
    tcase_add_test(sim, test_link_reports_a_reboot_once_with_cause_software);
    tcase_add_test(sim, test_link_passes_update_status_answers_on);
    tcase_add_test(sim,
                   test_link_released_device_stays_closed_until_reacquired);
    tcase_add_test(
        sim, test_link_goes_stale_when_frames_stop_and_back_when_they_resume);
    tcase_set_timeout(sim, 30);
    suite_add_tcase(s, sim);

    tcase_add_checked_fixture(fake, setup, teardown);
    tcase_add_test(
        fake, test_link_counts_gaps_damage_versions_bad_payloads_and_mcu_drops);
    tcase_add_test(
        fake, test_link_sees_a_reset_by_seq_and_takes_its_cause_from_hello);
    tcase_add_test(
        fake, test_link_reports_an_unexplained_reset_and_uptime_going_back);
    tcase_add_test(
        fake, test_link_queues_what_the_device_cannot_take_and_refuses_beyond);
    tcase_set_timeout(fake, 30);
    suite_add_tcase(s, fake);
    return s;
}

int main(void)
{
    return dtest_run(link_suite());
}
