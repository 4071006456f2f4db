/* tether-dump: prints every frame on a tether link, decoded, one per line.
 *
 * A protocol analyser for people: point it at a tty (or tether-sim's pty)
 * and it shows each message with its fields, each rejected frame with the
 * reason, and the receive counters when it ends.  It only listens; it never
 * writes to the link.  Ends on SIGINT/SIGTERM, after --count frames, after
 * --seconds, or at the end of a file.  --check prints the terse form the
 * unit tests keep beside a recorded stream ("ok TYPE SEQ LEN" / "err CODE",
 * the .chk files in tests/data). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"

#define READ_MAX        4096u
#define SHOW_VALUES_MAX 8u /* ADC values printed per batch */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void show_adc(const struct msg_adc *m)
{
    unsigned nch = msg_popcount16(m->mask);
    unsigned shown = 0;

    printf("t0=%luus period=%luus mask=0x%04x scans=%u first=[",
           (unsigned long)m->t0_us, (unsigned long)m->period_us, m->mask,
           m->scans);
    for (unsigned k = 0; k < nch && shown < SHOW_VALUES_MAX; k++, shown++)
        printf("%s%u", k ? " " : "", msg_adc_value(m, 0, k));
    printf("]");
}

static void show(const struct frame *f)
{
    const char *name = msg_type_name(f->type);
    struct msg_hello h;
    struct msg_adc a;
    struct msg_heap hp;
    struct msg_log l;
    struct msg_pong p;
    struct msg_ack k;
    struct msg_stats s;
    int err = 0;

    printf("seq=%-5u %-6s ", f->seq, name ? name : "?");
    switch (f->type) {
    case MSG_HELLO:
        if ((err = msg_decode_hello(f->payload, f->len, &h)) == 0)
            printf("proto=%u board=%u fw=%lu.%lu.%lu build=%08lx "
                   "reset=%u adc=%ux%ubit heap=%lu uptime=%lums caps=0x%04x",
                   h.proto_version, h.board,
                   (unsigned long)(h.fw_version >> 16),
                   (unsigned long)((h.fw_version >> 8) & 0xff),
                   (unsigned long)(h.fw_version & 0xff),
                   (unsigned long)h.build_id, h.reset_cause, h.adc_channels,
                   h.adc_bits, (unsigned long)h.heap_total,
                   (unsigned long)h.uptime_ms, h.caps);
        break;
    case MSG_ADC:
        if ((err = msg_decode_adc(f->payload, f->len, &a)) == 0)
            show_adc(&a);
        break;
    case MSG_HEAP:
        if ((err = msg_decode_heap(f->payload, f->len, &hp)) == 0)
            printf(
                "free=%lu/%lu used=%lu largest=%lu min_free=%lu "
                "allocs=%lu frees=%lu failed=%lu blocks=%u scenario=%s",
                (unsigned long)hp.free, (unsigned long)hp.total,
                (unsigned long)hp.used, (unsigned long)hp.largest,
                (unsigned long)hp.min_free, (unsigned long)hp.allocs,
                (unsigned long)hp.frees, (unsigned long)hp.failures, hp.blocks,
                msg_scenario_name(hp.scenario) ? msg_scenario_name(hp.scenario)
                                               : "?");
        break;
    case MSG_LOG:
        if ((err = msg_decode_log(f->payload, f->len, &l)) == 0)
            printf("<%u> %.*s", l.level, (int)l.text_len, l.text);
        break;
    case MSG_PONG:
        if ((err = msg_decode_pong(f->payload, f->len, &p)) == 0)
            printf("token=%lu t=%luus", (unsigned long)p.token,
                   (unsigned long)p.t_us);
        break;
    case MSG_ACK:
    case MSG_NACK:
        err = f->type == MSG_ACK ? msg_decode_ack(f->payload, f->len, &k)
                                 : msg_decode_nack(f->payload, f->len, &k);
        if (err == 0)
            printf("for seq=%u type=0x%02x error=%u", k.seq, k.type, k.error);
        break;
    case MSG_STATS:
        if ((err = msg_decode_stats(f->payload, f->len, &s)) == 0)
            printf(
                "tx=%lu dropped=%lu rx_ok=%lu crc=%lu cobs=%lu "
                "oversize=%lu overruns=%lu missed=%lu",
                (unsigned long)s.tx_frames, (unsigned long)s.tx_dropped,
                (unsigned long)s.rx_frames_ok, (unsigned long)s.rx_crc_errors,
                (unsigned long)s.rx_cobs_errors, (unsigned long)s.rx_oversize,
                (unsigned long)s.rx_overruns, (unsigned long)s.scans_missed);
        break;
    default:
        printf("type=0x%02x len=%zu", f->type, f->len);
        break;
    }
    if (err != 0)
        printf("undecodable payload (len=%zu, error %d)", f->len, err);
    printf("\n");
}

static int open_tty(const char *path)
{
    struct termios tio;
    int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "tether-dump: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetispeed(&tio, B115200);
        cfsetospeed(&tio, B115200);
        (void)tcsetattr(fd, TCSANOW, &tio);
    }
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"count", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 's'},
        {"check", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    uint8_t in[READ_MAX];
    struct frame_rx rx;
    struct frame f;
    long count = -1;
    int check = 0;
    double seconds = -1, start;
    int c, fd;

    while ((c = getopt_long(argc, argv, "n:s:h", longs, NULL)) != -1) {
        switch (c) {
        case 'n':
            count = strtol(optarg, NULL, 10);
            break;
        case 's':
            seconds = strtod(optarg, NULL);
            break;
        case 'c':
            check = 1;
            break;
        case 'h':
            printf("usage: tether-dump [--count N] [--seconds S] [--check] "
                   "TTY|FILE\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: tether-dump [--count N] [--seconds S] "
                        "[--check] TTY|FILE\n");
        return 2;
    }
    if ((fd = open_tty(argv[optind])) < 0)
        return 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);
    frame_rx_init(&rx, rxbuf, sizeof(rxbuf));
    start = now_s();

    while (!stop && count != 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;

        if (seconds >= 0 && now_s() - start >= seconds)
            break;
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        n = read(fd, in, sizeof(in));
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n < 0 || isatty(fd))
                fprintf(stderr, "tether-dump: link closed\n");
            break;
        }
        for (ssize_t i = 0; i < n && count != 0; i++) {
            int r = frame_rx_push(&rx, in[i], &f);

            if (check && r == FRAME_RX_OK) {
                printf("ok %u %u %zu\n", f.type, f.seq, f.len);
            } else if (check && r < 0) {
                printf("err %d\n", r);
            } else if (r == FRAME_RX_OK) {
                printf("%9.3f ", now_s() - start);
                show(&f);
                if (count > 0)
                    count--;
            } else if (r < 0) {
                printf("%9.3f rejected: %s\n", now_s() - start,
                       frame_strerror(r));
            }
        }
    }
    fprintf(
        stderr,
        "tether-dump: frames ok %lu, crc errors %lu, cobs errors %lu, "
        "oversize %lu, version errors %lu, discarded bytes %lu\n",
        (unsigned long)rx.stats.frames_ok, (unsigned long)rx.stats.crc_errors,
        (unsigned long)rx.stats.cobs_errors, (unsigned long)rx.stats.oversize,
        (unsigned long)rx.stats.version_errors,
        (unsigned long)rx.stats.discarded);
    close(fd);
    return 0;
}
