/* The cost of taking frames off the wire: deframing (COBS, CRC-32C, the
 * envelope) and decoding the messages, per byte and per frame.
 *
 * The input is what a saturated line carries: full ADC batches of 16
 * channels (7 scans, 112 values, the largest batch the firmware makes for
 * 16 channels) with a HEAP and a STATS report after every ADC_PER_REPORT
 * of them, which is what tether-sim sends at 115200 baud with one report
 * a second.  The frames are made by the proto encoders, as the firmware
 * makes them, into one buffer before anything is measured.
 *
 * decode_all() is the work the daemon does for every byte it reads: the
 * bytes through frame_rx_feed() as tetherd's link reads them (in blocks of
 * READ_MAX), each good frame's message decoded, and
 * every ADC value read out of its batch.  crc_all() is the reference: the
 * CRC-32C of the same bytes in one call, the least work a receiver that
 * checks frames must do.  Both are reached through volatile pointers, so
 * that the compiler keeps them as functions of their own names: `valgrind
 * --tool=callgrind --toggle-collect=decode_all` then counts the instructions
 * spent inside one of them and nothing of the setup.
 *
 * deframe_all() is decode_all() without the messages, to tell the two
 * costs apart.  Run natively, each is timed REPEATS times and the best run
 * is kept: on a shared machine the fastest run is the one least
 * disturbed.  What they decoded is checked (every frame good, every value
 * as encoded), so a broken deframer fails the bench instead of timing it.
 * Usage: deframe_bench [REPEATS [GROUPS]].  Prints "key value" lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "crc32c.h"
#include "frame.h"
#include "msg.h"

#define CHANNELS       16u
/* Scans in a full batch: as many as fit MSG_ADC_VALUES_MAX (117), which
 * is also the firmware's bound. */
#define SCANS          (MSG_ADC_VALUES_MAX / CHANNELS)
#define VALUES         (SCANS * CHANNELS)
#define ADC_PER_REPORT 46u  /* ADC frames per HEAP + STATS pair */
#define READ_MAX       4096u /* bytes a read hands the deframer at once */
#define GROUPS_DEFAULT 400u /* of ADC_PER_REPORT + 2 frames: about 4.5 MB */
#define GROUPS_MAX     100000u
#define REPEATS_MAX    1000u
#define ADC_BITS       14u
#define PERIOD_US      1000u

/* What decode_all() saw; compared with what was encoded. */
struct tally {
    uint64_t frames;
    uint64_t adc;
    uint64_t heap;
    uint64_t stats;
    uint64_t samples;
    uint64_t value_sum;
    uint64_t errors; /* rejected frames and undecodable messages */
};

/* A 14-bit value of channel ch in scan k: a ramp, a triangle, noise or a
 * constant by ch % 4, the mix of the simulated ADC (mcu-firmware/core/
 * wave.h) with a triangle for its sine.  The values barely matter: below
 * 254 bytes COBS adds one byte whatever the data, and the decoder's work
 * per byte hardly depends on it. */
static uint16_t sample(unsigned ch, uint32_t k, uint32_t *rng)
{
    const uint32_t full = (1u << ADC_BITS) - 1u;

    switch (ch % 4u) {
    case 0:
        return (uint16_t)((k * 37u + ch * 1000u) & full);
    case 1: {
        uint32_t p = (k * 53u) % (2u * full);

        return (uint16_t)(p < full ? p : 2u * full - p);
    }
    case 2:
        *rng = *rng * 1664525u + 1013904223u;
        return (uint16_t)((full / 2u - 256u) + ((*rng >> 16) & 511u));
    default:
        return (uint16_t)(full * (ch + 1u) / 17u);
    }
}

static int put_frame(uint8_t *buf, size_t cap, size_t *at, uint8_t type,
                     uint16_t seq, const uint8_t *p, size_t n)
{
    int len = frame_encode(buf + *at, cap - *at, type, seq, p, n);

    if (len < 0)
        return -1;
    *at += (size_t)len;
    return 0;
}

/* Fills buf with groups of ADC_PER_REPORT ADC batches and one HEAP and
 * one STATS report each.  Returns the bytes written, or 0 if cap is too
 * small; *sum gets the sum of every ADC value encoded. */
static size_t build(uint8_t *buf, size_t cap, unsigned groups, uint64_t *sum)
{
    uint8_t payload[MSG_ADC_LEN(VALUES)];
    uint32_t rng = 1, k = 0, t_us = 0;
    uint16_t seq = 0;
    size_t at = 0;

    *sum = 0;
    for (unsigned g = 0; g < groups; g++) {
        struct msg_heap h = {.t_us = t_us,
                             .total = 16384,
                             .free = 14000,
                             .used = 2384,
                             .largest = 13000,
                             .min_free = 13500,
                             .allocs = g * 10u,
                             .frees = g * 9u,
                             .blocks = 12,
                             .scenario = MSG_SCEN_STEADY};
        struct msg_stats s = {.t_us = t_us, .tx_frames = seq};
        int n;

        for (unsigned b = 0; b < ADC_PER_REPORT; b++) {
            struct msg_adc m = {t_us, PERIOD_US, (1u << CHANNELS) - 1u, SCANS,
                                NULL};

            if (msg_encode_adc_hdr(payload, sizeof(payload), &m) < 0)
                return 0;
            for (unsigned i = 0; i < VALUES; i++) {
                uint16_t v = sample(i % CHANNELS, k + i / CHANNELS, &rng);

                msg_adc_put_value(payload, i, v);
                *sum += v;
            }
            k += SCANS;
            t_us += SCANS * PERIOD_US;
            if (put_frame(buf, cap, &at, MSG_ADC, seq++, payload,
                          sizeof(payload)) != 0)
                return 0;
        }
        n = msg_encode_heap(payload, sizeof(payload), &h);
        if (n < 0 ||
            put_frame(buf, cap, &at, MSG_HEAP, seq++, payload, (size_t)n) != 0)
            return 0;
        n = msg_encode_stats(payload, sizeof(payload), &s);
        if (n < 0 ||
            put_frame(buf, cap, &at, MSG_STATS, seq++, payload, (size_t)n) != 0)
            return 0;
    }
    return at;
}

/* Everything the daemon's link does with the bytes it reads, short of
 * handing the messages on: deframe, decode, read every ADC value. */
static void decode_all(const uint8_t *p, size_t n, struct tally *t)
{
    uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    struct frame_rx rx;
    struct frame f;
    struct msg_adc a;
    struct msg_heap h;
    struct msg_stats s;

    frame_rx_init(&rx, rxbuf, sizeof(rxbuf));
    for (size_t i = 0, used; i < n; i += used) {
        size_t len = n - i < READ_MAX ? n - i : READ_MAX;
        int r = frame_rx_feed(&rx, p + i, len, &used, &f);

        if (r == FRAME_RX_MORE)
            continue;
        if (r != FRAME_RX_OK) {
            t->errors++;
            continue;
        }
        t->frames++;
        switch (f.type) {
        case MSG_ADC:
            if (msg_decode_adc(f.payload, f.len, &a) != 0) {
                t->errors++;
                break;
            }
            t->adc++;
            for (unsigned sc = 0, nch = msg_popcount16(a.mask); sc < a.scans;
                 sc++)
                for (unsigned c = 0; c < nch; c++)
                    t->value_sum += msg_adc_value(&a, sc, c);
            t->samples += (uint64_t)a.scans * msg_popcount16(a.mask);
            break;
        case MSG_HEAP:
            if (msg_decode_heap(f.payload, f.len, &h) != 0)
                t->errors++;
            else
                t->heap++;
            break;
        case MSG_STATS:
            if (msg_decode_stats(f.payload, f.len, &s) != 0)
                t->errors++;
            else
                t->stats++;
            break;
        default:
            t->errors++;
        }
    }
}

/* The deframing alone. */
static void deframe_all(const uint8_t *p, size_t n, struct tally *t)
{
    uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    struct frame_rx rx;
    struct frame f;

    frame_rx_init(&rx, rxbuf, sizeof(rxbuf));
    for (size_t i = 0, used; i < n; i += used) {
        size_t len = n - i < READ_MAX ? n - i : READ_MAX;
        int r = frame_rx_feed(&rx, p + i, len, &used, &f);

        if (r == FRAME_RX_OK) {
            t->frames++;
            t->value_sum += f.len;
        } else if (r != FRAME_RX_MORE) {
            t->errors++;
        }
    }
}

static void crc_all(const uint8_t *p, size_t n, struct tally *t)
{
    t->value_sum += crc32c(p, n);
}

/* Volatile, so that neither function is inlined into main() or cloned
 * under another name: the profiler finds them by name. */
static void (*volatile run_decode)(const uint8_t *, size_t,
                                   struct tally *) = decode_all;
static void (*volatile run_deframe)(const uint8_t *, size_t,
                                    struct tally *) = deframe_all;
static void (*volatile run_crc)(const uint8_t *, size_t,
                                struct tally *) = crc_all;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn over the buffer `repeats` times; returns the fastest run in
 * seconds, with *t the tally of the last run (every run sees the same
 * bytes, so every tally is the same). */
static double best_of(void (*fn)(const uint8_t *, size_t, struct tally *),
                      const uint8_t *buf, size_t len, unsigned long repeats,
                      struct tally *t)
{
    double best = 0;

    for (unsigned long r = 0; r < repeats; r++) {
        double t0 = now_s(), dt;

        *t = (struct tally){0};
        fn(buf, len, t);
        dt = now_s() - t0;
        if (r == 0 || dt < best)
            best = dt;
    }
    return best;
}

int main(int argc, char **argv)
{
    unsigned long repeats = argc > 1 ? strtoul(argv[1], NULL, 10) : 20ul;
    unsigned long groups =
        argc > 2 ? strtoul(argv[2], NULL, 10) : GROUPS_DEFAULT;
    uint64_t frames, sum;
    size_t cap, len;
    uint8_t *buf;
    double dec_s, fr_s, crc_s;
    struct tally t, d, c;
    int ret = 1;

    if (repeats < 1 || repeats > REPEATS_MAX || groups < 1 ||
        groups > GROUPS_MAX) {
        fprintf(stderr,
                "usage: deframe_bench [REPEATS (1..%u) [GROUPS (1..%u)]]\n",
                REPEATS_MAX, GROUPS_MAX);
        return 2;
    }
    frames = (uint64_t)groups * (ADC_PER_REPORT + 2u);
    cap = (size_t)frames * FRAME_WIRE_MAX;
    buf = malloc(cap);
    if (buf == NULL) {
        fprintf(stderr, "deframe_bench: out of memory\n");
        return 1;
    }
    len = build(buf, cap, (unsigned)groups, &sum);
    if (len == 0) {
        fprintf(stderr, "deframe_bench: frames do not fit the buffer\n");
        goto out_buf;
    }
    dec_s = best_of(run_decode, buf, len, repeats, &t);
    fr_s = best_of(run_deframe, buf, len, repeats, &d);
    crc_s = best_of(run_crc, buf, len, repeats, &c);
    if (t.errors != 0 || t.frames != frames ||
        t.adc != groups * ADC_PER_REPORT || t.heap != groups ||
        t.stats != groups || t.samples != (uint64_t)t.adc * VALUES ||
        t.value_sum != sum || d.errors != 0 || d.frames != frames) {
        fprintf(stderr,
                "deframe_bench: %llu of %llu frames deframed; decoded %llu "
                "ADC, %llu HEAP, %llu STATS frames with %llu errors; "
                "values do%s match\n",
                (unsigned long long)d.frames, (unsigned long long)frames,
                (unsigned long long)t.adc, (unsigned long long)t.heap,
                (unsigned long long)t.stats, (unsigned long long)t.errors,
                t.value_sum == sum ? "" : " not");
        goto out_buf;
    }
    printf("deframe_bytes %zu\n", len);
    printf("deframe_frames %llu\n", (unsigned long long)t.frames);
    printf("deframe_adc_frames %llu\n", (unsigned long long)t.adc);
    printf("deframe_report_frames %llu\n",
           (unsigned long long)(t.heap + t.stats));
    printf("deframe_samples %llu\n", (unsigned long long)t.samples);
    printf("deframe_repeats %lu\n", repeats);
    printf("decode_frames_per_s %.0f\n", (double)t.frames / dec_s);
    printf("decode_mb_per_s %.1f\n", (double)len / dec_s / 1e6);
    printf("deframe_frames_per_s %.0f\n", (double)d.frames / fr_s);
    printf("deframe_mb_per_s %.1f\n", (double)len / fr_s / 1e6);
    printf("crc_mb_per_s %.1f\n", (double)len / crc_s / 1e6);
    ret = 0;
out_buf:
    free(buf);
    return ret;
}
