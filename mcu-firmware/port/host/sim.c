/* tether-sim: the firmware core running on Linux, its UART a pseudo-terminal.
 *
 * The core is the same code the MCU runs; this file plays the hardware
 * around it.  It opens a pty, prints the path of its slave side on stdout
 * (and links it to --link PATH), feeds bytes written there to the core's
 * receive entry, and writes the core's transmit FIFO back out, optionally
 * paced at a real UART's byte rate (10 bits a byte at --baud) and damaged on
 * the way by bit flips, dropped bytes and garbage between frames, so that
 * receivers can be tested against line noise.  SIGINT or SIGTERM end it.
 *
 * The sim keeps its own descriptor to the slave side open, so a reader may
 * come and go without the link collapsing, as with a real wire.  Input is
 * paced like output under --baud: a UART delivers no faster than its line.
 *
 * With --flash DIR the sim has update storage (port_flash.c) and a
 * bootloader.  The binary the user starts is the factory image.  At start
 * and at every reset the bootloader logic of mcu-firmware/update/boot.c
 * chooses an image and checks its hash; an image other than the one this
 * process is gets exec()ed in place of it: a slot's file, which holds a
 * tether-sim executable, or the factory binary again.  The new program
 * keeps the pid, the pty (its master's descriptor is passed with the
 * internal option --pty-fd) and every user option, so whoever holds the
 * link sees only a reset and a new HELLO.  Internal options (--pty-fd,
 * --image, --reset-cause, --factory) are for that hand-over only.
 *
 * A hang inside the core is caught: a SIGALRM watchdog resets it after
 * PORT_WATCHDOG_MS without a kick, as the MCU's would.  A crash of the
 * process ends the sim; there is no power supply to cycle it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#include "boot.h"
#include "fw.h"
#include "msg.h"
#include "port.h"
#include "port_host.h"
#include "prng.h"
#include "scenario.h"

#define OUT_MAX          512u    /* bytes staged for one write() */
#define IN_MAX           256u    /* bytes taken per read() */
#define PACE_BURST_MIN   64u     /* token bucket depth, bytes, at least */
#define PACE_BURST_DIV   50u     /* and at most 1/50 s of line (20 ms) */
#define GARBAGE_ODDS     8u      /* one frame gap in this many gets garbage */
#define GARBAGE_MAX      32u     /* longest garbage burst */
#define ARGS_MAX         64u     /* arguments handed to the next image */
#define WATCHDOG_TICK_US 100000u /* how often the SIGALRM watchdog looks */

struct options {
    struct fw_options fw;
    const char *link;
    const char *flash;   /* --flash DIR: update storage, or NULL */
    const char *factory; /* internal: the factory image's executable */
    uint32_t baud;       /* 0: unpaced */
    uint32_t noise_ppm;  /* per bit */
    uint32_t drop_ppm;   /* per byte */
    uint32_t clock_offset_us;
    uint32_t flip_byte; /* --flip-update-byte N, when flip is set */
    int garbage;
    int flip;
    int pty_fd;    /* internal: the pty master inherited, or -1 */
    uint8_t image; /* internal: which image this process is */
    uint8_t cause; /* internal: the reset that started this image */
};

/* Pacing at the line's byte rate: a token bucket in micro-bytes. */
struct pacer {
    uint64_t tokens_ub;
    uint32_t last_us;
};

static struct {
    int master;
    int slave; /* held open so readers may come and go */
    uint8_t out[OUT_MAX + GARBAGE_MAX];
    size_t out_len;
    struct pacer tx, rx;
    uint32_t rng; /* fault injection, apart from the core's */
    uint64_t sent, dropped, flipped, garbage;
    int argc;             /* the command line as given, for the */
    char *argv[ARGS_MAX]; /* next image */
    char self[PATH_MAX];  /* the factory image's executable */
} sim;

static sigjmp_buf reset_env;
static volatile sig_atomic_t stop;
static volatile sig_atomic_t in_core; /* fw_init() or fw_poll() runs */

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: tether-sim [options]\n"
            "  --link PATH        also make PATH a symlink to the pty\n"
            "  --rate HZ          ADC scans per second (default 100)\n"
            "  --channels N       ADC channels, 1..%u (default 4)\n"
            "  --heap-period MS   HEAP/STATS report period, 0 = off "
            "(default 1000)\n"
            "  --scenario NAME    none|steady|leak|fragment|spike "
            "(default steady)\n"
            "  --leak-rate N      leak scenario: bytes per second "
            "(default %u)\n"
            "  --seed N           waveform and workload seed (default 1)\n"
            "  --baud N           pace output at N baud, 10 bits a byte "
            "(default: unpaced)\n"
            "  --noise-ppm N      flip each sent bit with probability N/1e6\n"
            "  --drop-ppm N       drop each sent byte with probability "
            "N/1e6\n"
            "  --garbage          random bursts between frames\n"
            "  --clock-offset US  start the MCU clock at US microseconds\n"
            "  --flash DIR        update slots and boot record in DIR; the\n"
            "                     sim takes firmware updates (docs/UPDATE.md)\n"
            "  --flip-update-byte N  flip bit 0 of body byte N of every\n"
            "                     upload as it is stored\n"
            "The pty path is printed on the first line of stdout.\n",
            PORT_ADC_CHANNELS_MAX, SCENARIO_LEAK_DEFAULT);
}

static int parse_u32(const char *name, const char *s, uint32_t lo, uint32_t hi,
                     uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo ||
        v > hi) {
        fprintf(stderr,
                "tether-sim: %s must be a number from %lu to %lu, "
                "not '%s'\n",
                name, (unsigned long)lo, (unsigned long)hi, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_scenario(const char *s, uint8_t *out)
{
    for (uint8_t id = 0; id < MSG_SCEN_COUNT; id++) {
        if (strcmp(s, msg_scenario_name(id)) == 0) {
            *out = id;
            return 0;
        }
    }
    fprintf(stderr,
            "tether-sim: unknown scenario '%s' (none, steady, leak, "
            "fragment, spike)\n",
            s);
    return -1;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    enum {
        O_LINK = 256,
        O_RATE,
        O_CHANNELS,
        O_HEAP,
        O_SCEN,
        O_LEAK,
        O_SEED,
        O_BAUD,
        O_NOISE,
        O_DROP,
        O_GARBAGE,
        O_CLOCK,
        O_FLASH,
        O_FLIP,
        O_PTY_FD,
        O_IMAGE,
        O_CAUSE,
        O_FACTORY,
        O_HELP
    };
    static const struct option longs[] = {
        {"link", required_argument, NULL, O_LINK},
        {"rate", required_argument, NULL, O_RATE},
        {"channels", required_argument, NULL, O_CHANNELS},
        {"heap-period", required_argument, NULL, O_HEAP},
        {"scenario", required_argument, NULL, O_SCEN},
        {"leak-rate", required_argument, NULL, O_LEAK},
        {"seed", required_argument, NULL, O_SEED},
        {"baud", required_argument, NULL, O_BAUD},
        {"noise-ppm", required_argument, NULL, O_NOISE},
        {"drop-ppm", required_argument, NULL, O_DROP},
        {"garbage", no_argument, NULL, O_GARBAGE},
        {"clock-offset", required_argument, NULL, O_CLOCK},
        {"flash", required_argument, NULL, O_FLASH},
        {"flip-update-byte", required_argument, NULL, O_FLIP},
        {"pty-fd", required_argument, NULL, O_PTY_FD},
        {"image", required_argument, NULL, O_IMAGE},
        {"reset-cause", required_argument, NULL, O_CAUSE},
        {"factory", required_argument, NULL, O_FACTORY},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    uint32_t v;
    int c;

    memset(o, 0, sizeof(*o));
    fw_defaults(&o->fw);
    o->pty_fd = -1;
    o->image = BOOT_FACTORY;
    o->cause = MSG_RESET_POWER_ON;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case O_LINK:
            o->link = optarg;
            break;
        case O_RATE:
            if (parse_u32("--rate", optarg, 1, PORT_RATE_MAX_HZ, &v) != 0)
                return -1;
            o->fw.rate_hz = (uint16_t)v;
            break;
        case O_CHANNELS:
            if (parse_u32("--channels", optarg, 1, PORT_ADC_CHANNELS_MAX, &v) !=
                0)
                return -1;
            o->fw.channels = (uint8_t)v;
            o->fw.mask = (uint16_t)((1ul << v) - 1u);
            break;
        case O_HEAP:
            if (parse_u32("--heap-period", optarg, 0, 60000, &v) != 0)
                return -1;
            if (v != 0 && v < 10) {
                fprintf(stderr, "tether-sim: --heap-period must be 0 or at "
                                "least 10 ms\n");
                return -1;
            }
            o->fw.heap_period_ms = (uint16_t)v;
            break;
        case O_SCEN:
            if (parse_scenario(optarg, &o->fw.scenario) != 0)
                return -1;
            break;
        case O_LEAK:
            if (parse_u32("--leak-rate", optarg, 1, 1000000,
                          &o->fw.scenario_param) != 0)
                return -1;
            break;
        case O_SEED:
            if (parse_u32("--seed", optarg, 1, UINT32_MAX, &o->fw.seed) != 0)
                return -1;
            break;
        case O_BAUD:
            if (parse_u32("--baud", optarg, 300, 12000000, &o->baud) != 0)
                return -1;
            break;
        case O_NOISE:
            if (parse_u32("--noise-ppm", optarg, 0, 1000000, &o->noise_ppm) !=
                0)
                return -1;
            break;
        case O_DROP:
            if (parse_u32("--drop-ppm", optarg, 0, 1000000, &o->drop_ppm) != 0)
                return -1;
            break;
        case O_GARBAGE:
            o->garbage = 1;
            break;
        case O_CLOCK:
            if (parse_u32("--clock-offset", optarg, 0, UINT32_MAX,
                          &o->clock_offset_us) != 0)
                return -1;
            break;
        case O_FLASH:
            o->flash = optarg;
            break;
        case O_FLIP:
            if (parse_u32("--flip-update-byte", optarg, 0, PORT_SLOT_SIZE - 1u,
                          &o->flip_byte) != 0)
                return -1;
            o->flip = 1;
            break;
        case O_PTY_FD:
            if (parse_u32("--pty-fd", optarg, 3, INT_MAX, &v) != 0)
                return -1;
            o->pty_fd = (int)v;
            break;
        case O_IMAGE:
            if (parse_u32("--image", optarg, 0, BOOT_FACTORY, &v) != 0)
                return -1;
            o->image = (uint8_t)v;
            break;
        case O_CAUSE:
            if (parse_u32("--reset-cause", optarg, 0, MSG_RESET_FAULT, &v) != 0)
                return -1;
            o->cause = (uint8_t)v;
            break;
        case O_FACTORY:
            o->factory = optarg;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tether-sim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->image != BOOT_FACTORY && o->image >= BOOT_SLOTS) {
        fprintf(stderr, "tether-sim: --image must be 0, 1 or 255\n");
        return -1;
    }
    if ((o->pty_fd >= 0 || o->image != BOOT_FACTORY) && o->flash == NULL) {
        fprintf(stderr, "tether-sim: --pty-fd and --image need --flash\n");
        return -1;
    }
    return 0;
}

/* Opens a new pty, or adopts the one the previous image handed over
 * (inherited: its link is already in place). */
static int open_pty(const struct options *o, char *name, size_t name_len)
{
    const char *link = o->pty_fd >= 0 ? NULL : o->link;
    struct termios tio;
    const char *path;

    if (o->pty_fd >= 0) {
        sim.master = o->pty_fd;
        if (fcntl(sim.master, F_SETFD, FD_CLOEXEC) != 0 ||
            (path = ptsname(sim.master)) == NULL) {
            perror("tether-sim: inherited pseudo-terminal");
            return -1;
        }
    } else {
        sim.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (sim.master < 0 || grantpt(sim.master) != 0 ||
            unlockpt(sim.master) != 0 || (path = ptsname(sim.master)) == NULL) {
            perror("tether-sim: pseudo-terminal");
            return -1;
        }
    }
    snprintf(name, name_len, "%s", path);
    sim.slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sim.slave < 0 || tcgetattr(sim.slave, &tio) != 0) {
        perror("tether-sim: pty slave");
        return -1;
    }
    /* Raw, 8N1, as a UART: no echo, no line editing, no CR/LF mapping. */
    cfmakeraw(&tio);
    cfsetispeed(&tio, B115200);
    cfsetospeed(&tio, B115200);
    if (tcsetattr(sim.slave, TCSANOW, &tio) != 0 ||
        fcntl(sim.master, F_SETFL, O_NONBLOCK) != 0) {
        perror("tether-sim: pty setup");
        return -1;
    }
    if (link != NULL) {
        (void)unlink(link);
        if (symlink(name, link) != 0) {
            fprintf(stderr, "tether-sim: symlink %s: %s\n", link,
                    strerror(errno));
            return -1;
        }
    }
    return 0;
}

static bool chance(uint32_t ppm)
{
    return ppm != 0 && prng_next(&sim.rng) % 1000000u < ppm;
}

/* Puts one byte from the core on the simulated line, with faults. */
static void line_put(const struct options *o, uint8_t byte)
{
    if (chance(o->drop_ppm)) {
        sim.dropped++;
        return;
    }
    for (unsigned bit = 0; o->noise_ppm != 0 && bit < 8; bit++) {
        if (chance(o->noise_ppm)) {
            byte ^= (uint8_t)(1u << bit);
            sim.flipped++;
        }
    }
    sim.out[sim.out_len++] = byte;
    if (o->garbage && byte == 0 && prng_next(&sim.rng) % GARBAGE_ODDS == 0) {
        uint32_t n = prng_range(&sim.rng, 1, GARBAGE_MAX);

        for (uint32_t i = 0; i < n; i++)
            sim.out[sim.out_len++] = (uint8_t)prng_next(&sim.rng);
        sim.garbage += n;
    }
}

/* Bytes the line may carry now in one direction; UINT32_MAX when
 * unpaced.  The bucket holds up to 20 ms of line: a UART fed by DMA goes on
 * sending what is queued while the CPU is busy, but this process stops
 * with its host CPU, so line time the scheduler takes from it is given
 * back afterwards instead of lost: a burst is at most the 20 ms of line
 * just missed, and the long-run rate stays the line's. */
static uint32_t pace_budget(const struct options *o, struct pacer *p)
{
    uint32_t now = port_time_us();
    uint32_t depth = o->baud / 10u / PACE_BURST_DIV;
    uint64_t cap =
        (uint64_t)(depth > PACE_BURST_MIN ? depth : PACE_BURST_MIN) * 1000000u;

    if (o->baud == 0)
        return UINT32_MAX;
    p->tokens_ub += (uint64_t)(now - p->last_us) * (o->baud / 10u);
    p->last_us = now;
    if (p->tokens_ub > cap)
        p->tokens_ub = cap;
    return (uint32_t)(p->tokens_ub / 1000000u);
}

/* When pacing next allows a byte: lowers *timeout_us to that. */
static void pace_wait(const struct options *o, uint32_t *timeout_us)
{
    uint32_t wait = (uint32_t)(10000000ull / o->baud) + 1u;

    if (wait < 1000u)
        wait = 1000u; /* refill in ~1 ms steps, not per byte */
    if (wait < *timeout_us)
        *timeout_us = wait;
}

/* Moves bytes from the core to the pty.  Returns the poll events to wait
 * for and lowers *timeout_us to when pacing allows the next byte. */
static short pump_tx(const struct options *o, uint32_t *timeout_us)
{
    uint32_t budget = pace_budget(o, &sim.tx);
    ssize_t n;
    int b;

    while (sim.out_len < OUT_MAX && budget > 0 &&
           (b = fw_uart_tx_next()) >= 0) {
        line_put(o, (uint8_t)b);
        budget--;
        if (o->baud)
            sim.tx.tokens_ub -= 1000000u;
    }
    if (sim.out_len > 0) {
        n = write(sim.master, sim.out, sim.out_len);
        if (n > 0) {
            memmove(sim.out, sim.out + n, sim.out_len - (size_t)n);
            sim.out_len -= (size_t)n;
            sim.sent += (uint64_t)n;
        }
    }
    if (sim.out_len > 0)
        return POLLOUT; /* the reader is behind: wait for room */
    if (o->baud != 0 && budget == 0)
        pace_wait(o, timeout_us);
    return 0;
}

/* The poll events for input: POLLIN while pacing lets a byte in, else
 * none, with *timeout_us lowered to when it will. */
static short rx_events(const struct options *o, uint32_t *timeout_us)
{
    if (pace_budget(o, &sim.rx) > 0)
        return POLLIN;
    pace_wait(o, timeout_us);
    return 0;
}

static void pump_rx(const struct options *o)
{
    uint8_t in[IN_MAX];
    uint32_t budget = pace_budget(o, &sim.rx);
    ssize_t n = read(sim.master, in, budget < IN_MAX ? budget : IN_MAX);

    for (ssize_t i = 0; i < n; i++)
        fw_uart_rx(in[i]);
    if (o->baud != 0 && n > 0)
        sim.rx.tokens_ub -= (uint64_t)n * 1000000u;
}

/* ---- The bootloader (--flash) ---- */

/* True for the internal options the bootloader sets for the next image,
 * with *skip the number of arguments that make up this one. */
static bool internal_option(const char *arg, int *skip)
{
    static const char *const names[] = {"--pty-fd", "--image", "--reset-cause",
                                        "--factory"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len = strlen(names[i]);

        if (strncmp(arg, names[i], len) != 0)
            continue;
        if (arg[len] == '\0' || arg[len] == '=') {
            *skip = arg[len] == '\0' ? 2 : 1;
            return true;
        }
    }
    return false;
}

/* Replaces this process with image img, handing over the pty.  Returns
 * only if the exec failed. */
static void exec_image(uint8_t img)
{
    char path[PATH_MAX], fd[16], image[8], cause[8];
    char *argv[ARGS_MAX + 10];
    int n = 0, skip;
    struct itimerval off;

    if (img == BOOT_FACTORY)
        snprintf(path, sizeof(path), "%s", sim.self);
    else if (port_host_slot_path(img, path, sizeof(path)) != 0)
        return;
    argv[n++] = path;
    for (int i = 1; i < sim.argc; i += skip) {
        skip = 1;
        if (!internal_option(sim.argv[i], &skip))
            argv[n++] = sim.argv[i];
    }
    snprintf(fd, sizeof(fd), "%d", sim.master);
    snprintf(image, sizeof(image), "%u", (unsigned)img);
    snprintf(cause, sizeof(cause), "%u", (unsigned)port_reset_cause());
    argv[n++] = "--pty-fd";
    argv[n++] = fd;
    argv[n++] = "--image";
    argv[n++] = image;
    argv[n++] = "--reset-cause";
    argv[n++] = cause;
    argv[n++] = "--factory";
    argv[n++] = sim.self;
    argv[n] = NULL;

    /* What the UART had queued goes out if the line takes it now. */
    if (sim.out_len > 0)
        (void)write(sim.master, sim.out, sim.out_len);
    sim.out_len = 0;
    /* Timers survive exec: the watchdog must not fire in the new image
     * before it installs its handler. */
    memset(&off, 0, sizeof(off));
    setitimer(ITIMER_REAL, &off, NULL);
    port_host_flash_close();
    close(sim.slave);
    fcntl(sim.master, F_SETFD, 0);
    execv(path, argv);
    fprintf(stderr, "tether-sim: cannot start image %u (%s): %s\n",
            (unsigned)img, path, strerror(errno));
    fcntl(sim.master, F_SETFD, FD_CLOEXEC);
    sim.slave = open(ptsname(sim.master), O_RDWR | O_NOCTTY | O_CLOEXEC);
}

/* The bootloader at start and at every reset: chooses an image with the
 * portable logic and starts it, here in place when this process already
 * is that image, else by exec.  A slot that cannot be started counts as a
 * failed boot of it.  Returns 0 to run the core here, -1 if no image can
 * be started at all. */
static int boot(const struct options *o)
{
    for (;;) {
        struct boot_record r;
        uint8_t img = boot_select(&r);

        if (img == o->image)
            return 0;
        exec_image(img);
        if (img == BOOT_FACTORY)
            return -1;
        (void)boot_failed(&r, img);
        boot_record_seal(&r);
        if (port_boot_store(&r) != 0)
            return -1;
    }
}

/* ---- The watchdog ---- */

/* SIGALRM every WATCHDOG_TICK_US: a core that has not kicked the watchdog
 * for PORT_WATCHDOG_MS is reset from wherever it hangs in the core, as the
 * MCU's watchdog would.  Only from the core: the sim's own bookkeeping
 * (what it has written to the pty) must not be cut in the middle, so a
 * lapse outside the core (a stopped process, a slow disk) is left to the
 * loop's check, at a point where nothing is half done. */
static void on_alarm(int sig)
{
    (void)sig;
    if (in_core && port_host_watchdog_expired())
        siglongjmp(reset_env, 1);
}

static void watchdog_start(void)
{
    struct itimerval it = {{0, WATCHDOG_TICK_US}, {0, WATCHDOG_TICK_US}};
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
}

static int run(const struct options *o)
{
    sigset_t blocked, waitmask;
    struct pollfd pfd;

    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    sigprocmask(SIG_BLOCK, &blocked, &waitmask);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGTERM);

    if (sigsetjmp(reset_env, 1) != 0) {
        /* A reset: the watchdog period starts again, the bootloader runs
         * and may start another image, and what the UART had not sent is
         * lost. */
        in_core = 0;
        port_host_booted();
        if (o->flash != NULL && boot(o) != 0)
            return -1;
        sim.out_len = 0;
    }
    in_core = 1;
    fw_init(&o->fw);
    port_host_booted();
    in_core = 0;
    while (!stop) {
        uint32_t timeout_us;
        struct timespec ts;

        if (port_host_watchdog_expired())
            siglongjmp(reset_env, 1);
        in_core = 1;
        timeout_us = fw_poll();
        in_core = 0;
        pfd.fd = sim.master;
        pfd.events =
            (short)(rx_events(o, &timeout_us) | pump_tx(o, &timeout_us));
        ts.tv_sec = timeout_us / 1000000u;
        ts.tv_nsec = (long)(timeout_us % 1000000u) * 1000;
        if (ppoll(&pfd, 1, &ts, &waitmask) < 0) {
            if (errno == EINTR)
                continue;
            perror("tether-sim: ppoll");
            return -1;
        }
        if (pfd.revents & POLLIN)
            pump_rx(o);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    sigset_t stops;
    struct options o;
    char name[PATH_MAX];
    int ret;

    /* getopt permutes argv: keep the command line as given for the next
     * image the bootloader starts. */
    sim.argc = argc < (int)ARGS_MAX ? argc : (int)ARGS_MAX;
    for (int i = 0; i < sim.argc; i++)
        sim.argv[i] = argv[i];
    if (argc > (int)ARGS_MAX) {
        fprintf(stderr, "tether-sim: more than %u arguments\n", ARGS_MAX);
        return 2;
    }
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* SIGINT and SIGTERM are taken only while the loop waits (run()).  A
     * stop asked for before then stays pending, across the bootloader's
     * exec too, which keeps the signal mask. */
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_BLOCK, &stops, NULL);

    if (o.flash != NULL && port_host_flash_open(o.flash) != 0)
        return 1;
    if (o.flip)
        port_host_flash_flip(o.flip_byte);
    if (o.factory != NULL) {
        snprintf(sim.self, sizeof(sim.self), "%s", o.factory);
    } else {
        ssize_t n = readlink("/proc/self/exe", sim.self, sizeof(sim.self) - 1);

        sim.self[n > 0 ? n : 0] = '\0';
    }
    if (open_pty(&o, name, sizeof(name)) != 0)
        return 1;
    if (o.pty_fd < 0) {
        printf("%s\n", name);
        fflush(stdout);
    }

    sim.rng = o.fw.seed ^ 0x5eed5eedu;
    port_host_init(&reset_env, o.fw.seed, o.clock_offset_us, o.cause);
    sim.tx.last_us = sim.rx.last_us = port_time_us();
    /* Power-on: the bootloader chooses, unless it already has and this
     * process is the image it started. */
    if (o.flash != NULL && o.pty_fd < 0 && boot(&o) != 0)
        ret = -1;
    else {
        watchdog_start();
        ret = run(&o);
    }

    fprintf(stderr,
            "tether-sim: sent %llu bytes; faults: %llu dropped, %llu bits "
            "flipped, %llu garbage bytes\n",
            (unsigned long long)sim.sent, (unsigned long long)sim.dropped,
            (unsigned long long)sim.flipped, (unsigned long long)sim.garbage);
    if (o.link != NULL)
        (void)unlink(o.link);
    close(sim.slave);
    close(sim.master);
    return ret == 0 ? 0 : 1;
}
