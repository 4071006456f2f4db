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
 * come and go without the link collapsing, as with a real wire. */
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
#include <termios.h>
#include <unistd.h>

#include "fw.h"
#include "msg.h"
#include "port.h"
#include "port_host.h"
#include "prng.h"
#include "scenario.h"

#define OUT_MAX        512u /* bytes staged for one write() */
#define IN_MAX         256u /* bytes taken per read() */
#define PACE_BURST_MIN 64u  /* token bucket depth, bytes (a UART FIFO) */
#define GARBAGE_ODDS   8u   /* one frame gap in this many gets garbage */
#define GARBAGE_MAX    32u  /* longest garbage burst */

struct options {
    struct fw_options fw;
    const char *link;
    uint32_t baud;      /* 0: unpaced */
    uint32_t noise_ppm; /* per bit */
    uint32_t drop_ppm;  /* per byte */
    uint32_t clock_offset_us;
    int garbage;
};

static struct {
    int master;
    int slave; /* held open so readers may come and go */
    uint8_t out[OUT_MAX + GARBAGE_MAX];
    size_t out_len;
    uint64_t tokens_ub; /* pacing tokens in micro-bytes */
    uint32_t last_pace_us;
    uint32_t rng; /* fault injection, apart from the core's */
    uint64_t sent, dropped, flipped, garbage;
} sim;

static jmp_buf reset_env;
static volatile sig_atomic_t stop;

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
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    uint32_t v;
    int c;

    memset(o, 0, sizeof(*o));
    fw_defaults(&o->fw);
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
    return 0;
}

static int open_pty(const char *link, char *name, size_t name_len)
{
    struct termios tio;
    const char *path;

    sim.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sim.master < 0 || grantpt(sim.master) != 0 ||
        unlockpt(sim.master) != 0 || (path = ptsname(sim.master)) == NULL) {
        perror("tether-sim: pseudo-terminal");
        return -1;
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

/* Bytes the line may carry now; UINT32_MAX when unpaced. */
static uint32_t pace_budget(const struct options *o)
{
    uint32_t now = port_time_us();
    uint64_t cap =
        (uint64_t)(o->baud / 10u / 500u > PACE_BURST_MIN ? o->baud / 10u / 500u
                                                         : PACE_BURST_MIN) *
        1000000u;

    if (o->baud == 0)
        return UINT32_MAX;
    sim.tokens_ub += (uint64_t)(now - sim.last_pace_us) * (o->baud / 10u);
    sim.last_pace_us = now;
    if (sim.tokens_ub > cap)
        sim.tokens_ub = cap;
    return (uint32_t)(sim.tokens_ub / 1000000u);
}

/* Moves bytes from the core to the pty.  Returns the poll events to wait
 * for and lowers *timeout_us to when pacing allows the next byte. */
static short pump_tx(const struct options *o, uint32_t *timeout_us)
{
    uint32_t budget = pace_budget(o);
    ssize_t n;
    int b;

    while (sim.out_len < OUT_MAX && budget > 0 &&
           (b = fw_uart_tx_next()) >= 0) {
        line_put(o, (uint8_t)b);
        budget--;
        if (o->baud)
            sim.tokens_ub -= 1000000u;
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
    if (o->baud != 0 && budget == 0) {
        uint32_t wait = (uint32_t)(10000000ull / o->baud) + 1u;

        if (wait < 1000u)
            wait = 1000u; /* refill in ~1 ms steps, not per byte */
        if (wait < *timeout_us)
            *timeout_us = wait;
    }
    return 0;
}

static void pump_rx(void)
{
    uint8_t in[IN_MAX];
    ssize_t n = read(sim.master, in, sizeof(in));

    for (ssize_t i = 0; i < n; i++)
        fw_uart_rx(in[i]);
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

    if (setjmp(reset_env) != 0)
        sim.out_len = 0; /* a reset loses what the UART had not sent */
    fw_init(&o->fw);
    port_host_booted();
    while (!stop) {
        uint32_t timeout_us = fw_poll();
        struct timespec ts;

        if (port_host_watchdog_expired())
            longjmp(reset_env, 1);
        pfd.fd = sim.master;
        pfd.events = (short)(POLLIN | pump_tx(o, &timeout_us));
        ts.tv_sec = timeout_us / 1000000u;
        ts.tv_nsec = (long)(timeout_us % 1000000u) * 1000;
        if (ppoll(&pfd, 1, &ts, &waitmask) < 0) {
            if (errno == EINTR)
                continue;
            perror("tether-sim: ppoll");
            return -1;
        }
        if (pfd.revents & POLLIN)
            pump_rx();
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    struct options o;
    char name[PATH_MAX];
    int ret;

    if (parse_args(argc, argv, &o) != 0)
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (open_pty(o.link, name, sizeof(name)) != 0)
        return 1;
    printf("%s\n", name);
    fflush(stdout);

    sim.rng = o.fw.seed ^ 0x5eed5eedu;
    port_host_init(&reset_env, o.fw.seed, o.clock_offset_us);
    sim.last_pace_us = port_time_us();
    ret = run(&o);

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
