/* The ATmega328P firmware image itself, run on a simulated 16 MHz part in
 * simavr and heard through its USART exactly as tetherd hears a classic
 * Uno: every frame is decoded with proto/, every command is framed with
 * it.  $TETHER_FW_ATMEGA328P names the image (build/fw/atmega328p/
 * tether-fw.elf); a test whose image does not load fails.
 *
 * Each test powers on a fresh MCU and runs it by simulated time only
 * (see avrsim.h): deadlines below are simulated microseconds, so results
 * do not depend on the host's speed, and each run is capped at
 * AVRSIM_RUN_MAX_US.
 *
 * simavr 1.6 paces the USART by its own estimate of the byte time, taken
 * when UBRR0L is written: it counts a parity bit 8N1 does not have, and
 * this port writes UBRR0 before it sets U2X0, so the estimate is for
 * single speed.  The simulated line carries one byte per 2992 cycles
 * (187 us, 5348 bytes/s) where the Uno's carries one per 85 us (11765
 * bytes/s).  Nothing below depends on the line rate except the saturated
 * test, which asks for more than either line carries. */
#define _GNU_SOURCE
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "avrsim.h"
#include "fw.h"
#include "msg.h"
#include "port_config.h"
#include "scenario.h"

#define MS 1000u /* simulated microseconds */
#define S  1000000u

#define ADC_BITS           10u
#define ADC_CHANNELS       6u
#define ALL_CHANNELS       0x3fu
#define DEFAULT_PERIOD     10000u /* 100 Hz, fw_defaults() */
#define HEAP_PERIOD        (1000u * MS)
#define BOOT_MAX           (100u * MS) /* power-on to HELLO */
#define ANSWER_MAX         (100u * MS) /* a command to its ACK or NACK */
/* Late a report may be: the loop checks the clock between scans, and
 * a scan of six channels takes 6 x 104 us.  When the line is full, a
 * report waits for its frame and the replies' room to drain: about 60
 * bytes at simavr's 187 us a byte, 11 ms. */
#define REPORT_SLACK_QUIET (2u * MS)
#define REPORT_SLACK_BUSY  (20u * MS)
/* REBOOT waits at most FW_REBOOT_DRAIN_US for its ACK to leave, the
 * watchdog then fires after 15 ms, and HELLO takes 41 bytes of line. */
#define REBOOT_MAX         (FW_REBOOT_DRAIN_US + 50u * MS)

/* Voltages on A0..A5, all different, within 0..AVcc. */
static const uint32_t volts_mv[ADC_CHANNELS] = {300,  1200, 2100,
                                                2900, 3800, 4700};

static struct avrsim sim;

static void teardown(void)
{
    avrsim_close(&sim);
}

/* Powers on a fresh MCU with the image and volts_mv on its inputs. */
static void start(void)
{
    const char *elf = getenv("TETHER_FW_ATMEGA328P");

    ck_assert_msg(elf != NULL && elf[0] != '\0',
                  "TETHER_FW_ATMEGA328P must name the firmware image");
    ck_assert_msg(avrsim_open(&sim, elf) == 0, "simavr cannot load %s", elf);
    for (unsigned ch = 0; ch < ADC_CHANNELS; ch++)
        avrsim_set_mv(&sim, ch, volts_mv[ch]);
}

/* Nothing was lost or damaged on the way, and simavr had nothing to say. */
static void expect_clean_run(void)
{
    ck_assert_uint_eq(sim.rx.stats.crc_errors, 0);
    ck_assert_uint_eq(sim.rx.stats.cobs_errors, 0);
    ck_assert_uint_eq(sim.rx.stats.oversize, 0);
    ck_assert_uint_eq(sim.rx.stats.version_errors, 0);
    ck_assert_uint_eq(sim.q_overflows, 0);
    ck_assert_uint_eq(sim.sim_errors, 0);
    ck_assert_uint_eq(sim.sim_warnings, 0);
}

/* The next frame before the simulated clock passes deadline_us. */
static bool next(struct avrsim_frame *f, uint64_t deadline_us)
{
    int r = avrsim_next(&sim, f, deadline_us);

    ck_assert_msg(r >= 0, "simulation ended: %d at %llu us", r,
                  (unsigned long long)avrsim_now_us(&sim));
    return r == 1;
}

/* The next frame of one type within within_us; others are skipped. */
static bool wait_type(uint8_t type, struct avrsim_frame *f, uint64_t within_us)
{
    uint64_t deadline = avrsim_now_us(&sim) + within_us;

    while (next(f, deadline))
        if (f->type == type)
            return true;
    return false;
}

/* The ACK or NACK for seq: 0 for ACK, the NACK code, or -1 if neither came
 * within ANSWER_MAX.  Other frames are skipped; *at gets its arrival. */
static int answer(int seq, uint64_t *at)
{
    uint64_t deadline = avrsim_now_us(&sim) + ANSWER_MAX;
    struct avrsim_frame f;
    struct msg_ack a;

    ck_assert_int_ge(seq, 0);
    while (next(&f, deadline)) {
        if (f.type == MSG_ACK && msg_decode_ack(f.payload, f.len, &a) == 0 &&
            a.seq == seq) {
            if (at != NULL)
                *at = f.t_us;
            return 0;
        }
        if (f.type == MSG_NACK && msg_decode_nack(f.payload, f.len, &a) == 0 &&
            a.seq == seq)
            return a.error;
    }
    return -1;
}

static int send_u16(uint8_t type, uint16_t v)
{
    uint8_t p[2];

    ck_assert_int_eq(msg_encode_u16(p, sizeof(p), v), 2);
    return avrsim_send(&sim, type, p, sizeof(p));
}

static int send_u32(uint8_t type, uint32_t v)
{
    uint8_t p[4];

    ck_assert_int_eq(msg_encode_u32(p, sizeof(p), v), 4);
    return avrsim_send(&sim, type, p, sizeof(p));
}

/* What a 10-bit ADC against AVcc reads for mv: mv * 1024 / AVcc. */
static unsigned counts_of(uint32_t mv)
{
    uint32_t c = mv * (1u << ADC_BITS) / AVRSIM_AVCC_MV;

    return c < (1u << ADC_BITS) ? c : (1u << ADC_BITS) - 1u;
}

/* Every value of batch a reads the voltage in mv[], within one count. */
static void expect_scan_reads(const struct msg_adc *a, unsigned scan,
                              const uint32_t *mv)
{
    for (unsigned k = 0; k < ADC_CHANNELS; k++) {
        unsigned want = counts_of(mv[k]);
        unsigned got = msg_adc_value(a, scan, k);

        ck_assert_msg(got + 1u >= want && got <= want + 1u,
                      "A%u at %u mV read %u, not %u +- 1", k, (unsigned)mv[k],
                      got, want);
    }
}

/* A LOG line says exactly text, or starts with it. */
static bool text_is(const struct msg_log *l, const char *text)
{
    return l->text_len == strlen(text) &&
           memcmp(l->text, text, l->text_len) == 0;
}

static bool text_starts(const struct msg_log *l, const char *text)
{
    return l->text_len >= strlen(text) &&
           memcmp(l->text, text, strlen(text)) == 0;
}

static void decode_adc(const struct avrsim_frame *f, struct msg_adc *a)
{
    ck_assert_int_eq(msg_decode_adc(f->payload, f->len, a), 0);
}

static void wait_hello(struct msg_hello *h, uint64_t within_us)
{
    struct avrsim_frame f;

    ck_assert_msg(wait_type(MSG_HELLO, &f, within_us), "no HELLO");
    ck_assert_uint_eq(f.seq, 0); /* the first frame after a reset */
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, h), 0);
}

START_TEST(test_avr_power_on_hello_names_the_uno_its_adc_and_its_heap)
{
    struct avrsim_frame f;
    struct msg_hello h;
    struct msg_log l;

    start();
    /* HELLO is the very first frame, then the boot and scenario logs. */
    ck_assert(next(&f, BOOT_MAX));
    ck_assert_uint_eq(f.type, MSG_HELLO);
    ck_assert_uint_eq(f.seq, 0);
    ck_assert_int_eq(msg_decode_hello(f.payload, f.len, &h), 0);
    ck_assert_uint_eq(h.proto_version, FRAME_VERSION);
    ck_assert_uint_eq(h.board, MSG_BOARD_ATMEGA328P);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_POWER_ON);
    ck_assert_uint_eq(h.adc_bits, ADC_BITS);
    ck_assert_uint_eq(h.adc_channels, ADC_CHANNELS);
    ck_assert_uint_eq(h.heap_total, PORT_HEAP_ARENA);
    ck_assert_uint_eq(h.rx_max, PORT_RX_PAYLOAD_MAX);
    ck_assert_uint_eq(h.fw_version, FW_VERSION);
    ck_assert_uint_eq(
        h.caps & (MSG_CAP_ADC | MSG_CAP_HEAP | MSG_CAP_LOG | MSG_CAP_SCENARIO),
        MSG_CAP_ADC | MSG_CAP_HEAP | MSG_CAP_LOG | MSG_CAP_SCENARIO);
    ck_assert_uint_eq(h.uptime_ms, 0);
    ck_assert_uint_le(h.time_us, f.t_us);

    ck_assert(next(&f, BOOT_MAX));
    ck_assert_uint_eq(f.type, MSG_LOG);
    ck_assert_int_eq(msg_decode_log(f.payload, f.len, &l), 0);
    ck_assert_uint_eq(l.level, 6);
    ck_assert(text_is(&l, "boot tether-fw 0.1.0"));
    ck_assert(next(&f, BOOT_MAX));
    ck_assert_uint_eq(f.type, MSG_LOG);
    ck_assert_int_eq(msg_decode_log(f.payload, f.len, &l), 0);
    ck_assert(text_is(&l, "scenario steady"));
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_adc_batches_carry_each_input_voltage_with_no_scan_missed)
{
    static const uint32_t swapped_mv[ADC_CHANNELS] = {4700, 3800, 2900,
                                                      2100, 1200, 300};
    struct avrsim_frame f;
    struct msg_adc a;
    struct msg_stats st;
    uint64_t deadline;
    uint32_t next_t0 = 0, swapped_at = 0;
    unsigned batches = 0, scans = 0, after_swap = 0;
    bool swapped = false, have_stats = false;

    start();
    deadline = avrsim_now_us(&sim) + 1500u * MS;
    while (next(&f, deadline)) {
        if (f.type == MSG_STATS && !have_stats) {
            ck_assert_int_eq(msg_decode_stats(f.payload, f.len, &st), 0);
            have_stats = true;
        }
        if (f.type != MSG_ADC)
            continue;
        decode_adc(&f, &a);
        ck_assert_uint_eq(a.mask, ALL_CHANNELS);
        ck_assert_uint_eq(a.period_us, DEFAULT_PERIOD);
        ck_assert_uint_ge(a.scans, 1);
        /* Each batch starts where the previous one ended: no scan was
         * skipped and none was sent twice. */
        if (batches > 0)
            ck_assert_uint_eq(a.t0_us, next_t0);
        next_t0 = a.t0_us + a.scans * a.period_us;
        for (unsigned s = 0; s < a.scans; s++) {
            uint32_t due = a.t0_us + s * a.period_us;

            /* A scan due after the swap reads the new voltages; one in
             * progress at the swap may read either.  The MCU's clock
             * started microseconds after the simulation's, so its due
             * times compare with simulated ones. */
            if (!swapped || due + a.period_us <= swapped_at)
                expect_scan_reads(&a, s, volts_mv);
            else if (due >= swapped_at) {
                expect_scan_reads(&a, s, swapped_mv);
                after_swap++;
            }
        }
        batches++;
        scans += a.scans;
        /* Halfway, the inputs change: the values must follow them. */
        if (!swapped && f.t_us >= 1000u * MS) {
            for (unsigned ch = 0; ch < ADC_CHANNELS; ch++)
                avrsim_set_mv(&sim, ch, swapped_mv[ch]);
            swapped = true;
            swapped_at = (uint32_t)avrsim_now_us(&sim);
        }
    }
    /* 1.5 s at 100 Hz, less the batch still open at the end. */
    ck_assert_uint_ge(scans, 140);
    ck_assert_uint_le(scans, 150);
    ck_assert_uint_ge(after_swap, 30);
    ck_assert(have_stats);
    ck_assert_uint_eq(st.scans_missed, 0);
    ck_assert_uint_eq(st.tx_dropped, 0);
    expect_clean_run();
}
END_TEST

/* Reports keep to a fixed grid: the k-th after the first is due k periods
 * after it (give or take how late each one was), never drifting by the
 * loop's delays. */
static void expect_on_grid(uint32_t t, uint32_t first, unsigned k,
                           uint32_t period, uint32_t slack)
{
    uint32_t due = first + (uint32_t)k * period;

    ck_assert_msg(t + slack >= due && t <= due + slack,
                  "report %u at %u us, due at %u us (+-%u)", k, (unsigned)t,
                  (unsigned)due, (unsigned)slack);
}

START_TEST(test_avr_heap_and_stats_arrive_together_every_heap_period)
{
    struct avrsim_frame f;
    struct msg_heap h;
    struct msg_stats st;
    uint64_t deadline;
    uint32_t heap_t = 0, first_t = 0;
    unsigned frames = 0, reports = 0;
    bool heap_pending = false;

    start();
    deadline = avrsim_now_us(&sim) + 3500u * MS;
    while (next(&f, deadline)) {
        if (f.type == MSG_HEAP) {
            ck_assert_msg(!heap_pending, "HEAP at %u us without STATS",
                          (unsigned)heap_t);
            ck_assert_int_eq(msg_decode_heap(f.payload, f.len, &h), 0);
            ck_assert_uint_eq(h.total, PORT_HEAP_ARENA);
            ck_assert_uint_eq(h.free + h.used, h.total);
            ck_assert_uint_le(h.largest, h.free);
            ck_assert_uint_le(h.min_free, h.free);
            ck_assert_uint_eq(h.scenario, MSG_SCEN_STEADY);
            ck_assert_uint_eq(h.failures, 0);
            ck_assert_uint_gt(h.allocs, 0);
            if (reports == 0)
                first_t = h.t_us;
            else
                expect_on_grid(h.t_us, first_t, reports, HEAP_PERIOD,
                               REPORT_SLACK_QUIET);
            heap_t = h.t_us;
            heap_pending = true;
        } else if (f.type == MSG_STATS) {
            ck_assert(heap_pending);
            ck_assert_int_eq(msg_decode_stats(f.payload, f.len, &st), 0);
            ck_assert_uint_eq(st.t_us, heap_t);
            /* Every frame the MCU queued before this one arrived. */
            ck_assert_uint_eq(st.tx_frames, frames);
            ck_assert_uint_eq(st.tx_dropped, 0);
            ck_assert_uint_eq(st.scans_missed, 0);
            ck_assert_uint_eq(st.rx_frames_ok + st.rx_crc_errors +
                                  st.rx_cobs_errors + st.rx_overruns,
                              0);
            heap_pending = false;
            reports++;
        }
        frames++;
    }
    ck_assert_msg(!heap_pending, "HEAP at %u us without STATS",
                  (unsigned)heap_t);
    ck_assert_uint_eq(reports, 3);
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_set_heap_period_changes_the_report_cadence)
{
    struct avrsim_frame f;
    struct msg_heap h;
    uint64_t acked = 0;
    uint32_t first_t = 0;
    unsigned heaps = 0, stats = 0;

    start();
    ck_assert(wait_type(MSG_ADC, &f, BOOT_MAX));
    ck_assert_int_eq(answer(send_u16(MSG_SET_HEAP_PERIOD, 5), NULL),
                     MSG_NACK_BAD_VALUE);
    ck_assert_int_eq(answer(send_u16(MSG_SET_HEAP_PERIOD, 200), &acked), 0);
    while (next(&f, acked + 1050u * MS)) {
        if (f.type == MSG_STATS)
            stats++;
        if (f.type != MSG_HEAP)
            continue;
        ck_assert_int_eq(msg_decode_heap(f.payload, f.len, &h), 0);
        if (heaps == 0)
            first_t = h.t_us;
        else
            expect_on_grid(h.t_us, first_t, heaps, 200u * MS,
                           REPORT_SLACK_QUIET);
        heaps++;
    }
    ck_assert_uint_eq(heaps, 5);
    ck_assert_uint_eq(stats, 5);
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_saturated_line_still_carries_heap_and_stats_every_period)
{
    struct avrsim_frame f;
    struct msg_heap h;
    struct msg_stats st;
    struct msg_pong p;
    struct msg_adc a;
    struct msg_ack ack;
    uint64_t acked = 0, deadline;
    uint32_t heap_t = 0, first_t = 0, dropped = 0;
    unsigned reports = 0, batches = 0;
    bool heap_pending = false, pinged = false, ping_acked = false;
    bool ponged = false;
    int ping = -1;

    start();
    ck_assert(wait_type(MSG_ADC, &f, BOOT_MAX));
    /* Six channels at the highest rate: 12000 values a second, more than
     * the simulated line (5348 bytes/s) or the Uno's (11765) carries. */
    ck_assert_int_eq(answer(send_u16(MSG_SET_RATE, PORT_RATE_MAX_HZ), &acked),
                     0);
    deadline = acked + 3500u * MS;
    while (next(&f, deadline)) {
        switch (f.type) {
        case MSG_ADC:
            decode_adc(&f, &a);
            ck_assert_uint_eq(a.period_us, S / PORT_RATE_MAX_HZ);
            expect_scan_reads(&a, 0, volts_mv);
            batches++;
            break;
        case MSG_HEAP:
            ck_assert_msg(!heap_pending, "HEAP at %u us without STATS",
                          (unsigned)heap_t);
            ck_assert_int_eq(msg_decode_heap(f.payload, f.len, &h), 0);
            ck_assert_uint_eq(h.total, PORT_HEAP_ARENA);
            if (reports == 0)
                first_t = h.t_us;
            else
                expect_on_grid(h.t_us, first_t, reports, HEAP_PERIOD,
                               REPORT_SLACK_BUSY);
            heap_t = h.t_us;
            heap_pending = true;
            break;
        case MSG_STATS:
            ck_assert(heap_pending);
            ck_assert_int_eq(msg_decode_stats(f.payload, f.len, &st), 0);
            /* STATS waits for room after HEAP, batches meanwhile dropped. */
            ck_assert_uint_ge(st.t_us, heap_t);
            ck_assert_uint_le(st.t_us, heap_t + REPORT_SLACK_BUSY);
            /* The line is full: batches are being dropped, and more of
             * them every period. */
            ck_assert_uint_gt(st.tx_dropped, dropped);
            dropped = st.tx_dropped;
            heap_pending = false;
            reports++;
            /* Commands are still heard and answered. */
            if (!pinged) {
                ping = send_u32(MSG_PING, 0x5a7u);
                pinged = true;
            }
            break;
        case MSG_PONG:
            ck_assert_int_eq(msg_decode_pong(f.payload, f.len, &p), 0);
            ck_assert_uint_eq(p.token, 0x5a7u);
            ponged = true;
            break;
        case MSG_ACK:
            ck_assert_int_eq(msg_decode_ack(f.payload, f.len, &ack), 0);
            if (pinged && ack.seq == ping)
                ping_acked = true;
            break;
        default:
            break;
        }
    }
    ck_assert_int_ge(ping, 0);
    ck_assert(ping_acked);
    ck_assert(ponged);
    ck_assert_msg(!heap_pending, "HEAP at %u us without STATS",
                  (unsigned)heap_t);
    ck_assert_uint_eq(reports, 3);
    ck_assert_uint_gt(batches, 100);
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_ping_gets_pong_and_bad_commands_get_nack)
{
    uint8_t junk[1] = {7};
    struct avrsim_frame f;
    struct msg_pong p;
    struct msg_adc a;
    uint64_t sent;

    start();
    ck_assert(wait_type(MSG_ADC, &f, BOOT_MAX));
    sent = avrsim_now_us(&sim);
    ck_assert_int_eq(answer(send_u32(MSG_PING, 0xdeadbeefu), NULL), 0);
    ck_assert(wait_type(MSG_PONG, &f, ANSWER_MAX));
    ck_assert_int_eq(msg_decode_pong(f.payload, f.len, &p), 0);
    ck_assert_uint_eq(p.token, 0xdeadbeefu);
    /* The MCU's clock runs with the simulated one. */
    ck_assert_uint_ge(p.t_us, sent);
    ck_assert_uint_le(p.t_us, f.t_us);

    ck_assert_int_eq(answer(send_u16(MSG_SET_RATE, 0), NULL),
                     MSG_NACK_BAD_VALUE);
    ck_assert_int_eq(
        answer(send_u16(MSG_SET_RATE, PORT_RATE_MAX_HZ + 1u), NULL),
        MSG_NACK_BAD_VALUE);
    ck_assert_int_eq(
        answer(avrsim_send(&sim, MSG_SET_RATE, junk, sizeof(junk)), NULL),
        MSG_NACK_BAD_LENGTH);
    ck_assert_int_eq(answer(send_u16(MSG_SET_CHANNELS, 0x40), NULL),
                     MSG_NACK_BAD_VALUE);
    ck_assert_int_eq(answer(avrsim_send(&sim, 0x7e, NULL, 0), NULL),
                     MSG_NACK_UNKNOWN_TYPE);
    ck_assert_int_eq(answer(avrsim_send(&sim, MSG_UPDATE_FIRST, NULL, 0), NULL),
                     MSG_NACK_UNSUPPORTED);

    /* Nothing of it changed the sampling. */
    ck_assert(wait_type(MSG_ADC, &f, 100u * MS));
    decode_adc(&f, &a);
    ck_assert_uint_eq(a.period_us, DEFAULT_PERIOD);
    ck_assert_uint_eq(a.mask, ALL_CHANNELS);
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_set_rate_is_acked_and_changes_the_batch_period)
{
    const uint16_t hz = 250;
    struct avrsim_frame f;
    struct msg_adc a;
    struct msg_stats st;
    uint64_t acked = 0;
    uint32_t next_t0 = 0;
    unsigned batches = 0;

    start();
    ck_assert(wait_type(MSG_ADC, &f, BOOT_MAX));
    ck_assert_int_eq(answer(send_u16(MSG_SET_RATE, hz), &acked), 0);
    /* The open batch was sent before the ACK: every batch after it is at
     * the new rate, back to back. */
    while (batches < 20 && next(&f, acked + 500u * MS)) {
        if (f.type != MSG_ADC)
            continue;
        decode_adc(&f, &a);
        ck_assert_uint_eq(a.period_us, S / hz);
        ck_assert_uint_eq(a.mask, ALL_CHANNELS);
        if (batches > 0)
            ck_assert_uint_eq(a.t0_us, next_t0);
        next_t0 = a.t0_us + a.scans * a.period_us;
        for (unsigned s = 0; s < a.scans; s++)
            expect_scan_reads(&a, s, volts_mv);
        batches++;
    }
    /* 4 scans of 6 channels a batch: 62.5 batches a second. */
    ck_assert_uint_eq(batches, 20);
    ck_assert(wait_type(MSG_STATS, &f, 1100u * MS));
    ck_assert_int_eq(msg_decode_stats(f.payload, f.len, &st), 0);
    ck_assert_uint_eq(st.scans_missed, 0);
    ck_assert_uint_eq(st.rx_frames_ok, 1);
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_leak_scenario_runs_the_heap_out_and_counts_failures)
{
    /* 400 B/s against a 512-byte arena, reported every 250 ms: the fall
     * takes a few reports, then the failures pile up. */
    const struct msg_scenario_cmd cmd = {MSG_SCEN_LEAK, 400};
    uint8_t leak[MSG_SET_SCENARIO_LEN];
    struct avrsim_frame f;
    struct msg_heap h;
    struct msg_log l;
    uint64_t acked = 0;
    uint32_t last_free = PORT_HEAP_ARENA + 1u, failures = 0;
    unsigned falling = 0, full = 0;
    bool scenario_logged = false, failure_logged = false;

    ck_assert_int_eq(msg_encode_scenario(leak, sizeof(leak), &cmd),
                     (int)sizeof(leak));
    start();
    ck_assert(wait_type(MSG_ADC, &f, BOOT_MAX));
    ck_assert_int_eq(answer(send_u16(MSG_SET_HEAP_PERIOD, 250), NULL), 0);
    ck_assert_int_eq(
        answer(avrsim_send(&sim, MSG_SET_SCENARIO, leak, sizeof(leak)), &acked),
        0);
    while (next(&f, acked + 3000u * MS)) {
        if (f.type == MSG_LOG) {
            ck_assert_int_eq(msg_decode_log(f.payload, f.len, &l), 0);
            if (text_is(&l, "scenario leak 400 B/s"))
                scenario_logged = true;
            if (l.level == 4 && text_starts(&l, "heap: "))
                failure_logged = true;
        }
        if (f.type != MSG_HEAP)
            continue;
        ck_assert_int_eq(msg_decode_heap(f.payload, f.len, &h), 0);
        ck_assert_uint_eq(h.scenario, MSG_SCEN_LEAK);
        ck_assert_uint_eq(h.free + h.used, h.total);
        ck_assert_uint_le(h.min_free, h.free);
        if (h.largest >= SCENARIO_LEAK_CHUNK) {
            /* Still room for a chunk: nothing has failed yet, and every
             * report has less free than the one before. */
            ck_assert_uint_eq(full, 0);
            ck_assert_uint_eq(h.failures, 0);
            ck_assert_uint_lt(h.free, last_free);
            falling++;
        } else {
            /* Full: every attempt since the last report failed and was
             * counted (one a chunk's worth of time, 80 ms at 400 B/s). */
            if (full > 0)
                ck_assert_uint_gt(h.failures, failures);
            full++;
        }
        last_free = h.free;
        failures = h.failures;
    }
    ck_assert_uint_ge(falling, 3);
    ck_assert_uint_ge(full, 4);
    ck_assert_uint_gt(failures, 0);
    ck_assert(scenario_logged);
    ck_assert(failure_logged);
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_reboot_is_acked_then_hello_says_software_reset)
{
    struct avrsim_frame f;
    struct msg_hello h;
    struct msg_adc a;
    uint64_t acked = 0;

    start();
    wait_hello(&h, BOOT_MAX);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_POWER_ON);
    ck_assert(wait_type(MSG_ADC, &f, BOOT_MAX));
    ck_assert_int_eq(answer(avrsim_send(&sim, MSG_REBOOT, NULL, 0), &acked), 0);
    /* The watchdog resets the part; the reset is noted in RAM that
     * survives it, so the new HELLO tells a REBOOT from a hang. */
    wait_hello(&h, REBOOT_MAX);
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(h.board, MSG_BOARD_ATMEGA328P);
    ck_assert_uint_eq(h.uptime_ms, 0);

    /* A new life: the clock restarted and commands are heard again. */
    ck_assert(wait_type(MSG_ADC, &f, BOOT_MAX));
    decode_adc(&f, &a);
    ck_assert_uint_lt(a.t0_us, BOOT_MAX);
    expect_scan_reads(&a, 0, volts_mv);
    ck_assert_int_eq(answer(send_u32(MSG_PING, 1), NULL), 0);
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_a_run_stops_at_its_simulated_time_limit)
{
    struct avrsim_frame f;
    unsigned frames = 0;
    int r;

    start();
    /* No deadline: the run must still end, at its bound. */
    while ((r = avrsim_next(&sim, &f, UINT64_MAX)) == 1)
        frames++;
    ck_assert_int_eq(r, AVRSIM_ELIMIT);
    ck_assert_uint_ge(avrsim_now_us(&sim), AVRSIM_RUN_MAX_US);
    ck_assert_uint_le(avrsim_now_us(&sim), AVRSIM_RUN_MAX_US + 1u * MS);
    ck_assert_uint_le(sim.steps, AVRSIM_STEPS_MAX);
    /* About 27 frames a second at the default rate. */
    ck_assert_uint_gt(frames, 25u * (AVRSIM_RUN_MAX_US / S));
    ck_assert_int_eq(avrsim_next(&sim, &f, UINT64_MAX), AVRSIM_ELIMIT);
    expect_clean_run();
}
END_TEST

START_TEST(test_avr_an_image_that_cannot_be_read_does_not_load)
{
    char dir[] = "/tmp/tether-avr-XXXXXX";
    char path[64];
    FILE *fp;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tether-fw.elf", dir);
    ck_assert_int_eq(avrsim_open(&sim, path), AVRSIM_ELOAD);
    /* Longer than an ELF header, and not one. */
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    for (int i = 0; i < 16; i++)
        fputs("not an ELF image\n", fp);
    ck_assert_int_eq(fclose(fp), 0);
    ck_assert_int_eq(avrsim_open(&sim, path), AVRSIM_ELOAD);
    ck_assert_int_eq(unlink(path), 0);
    /* An ELF program, but not for the AVR: this test itself. */
    ck_assert_int_eq(avrsim_open(&sim, "/proc/self/exe"), AVRSIM_ELOAD);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *avr_suite(void)
{
    Suite *s = suite_create("avr");
    TCase *tc = tcase_create("simavr");

    /* A backstop only: each test is bounded by simulated time, and runs
     * in a few seconds of host time. */
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc,
                   test_avr_power_on_hello_names_the_uno_its_adc_and_its_heap);
    tcase_add_test(
        tc, test_avr_adc_batches_carry_each_input_voltage_with_no_scan_missed);
    tcase_add_test(tc,
                   test_avr_heap_and_stats_arrive_together_every_heap_period);
    tcase_add_test(tc, test_avr_set_heap_period_changes_the_report_cadence);
    tcase_add_test(
        tc, test_avr_saturated_line_still_carries_heap_and_stats_every_period);
    tcase_add_test(tc, test_avr_ping_gets_pong_and_bad_commands_get_nack);
    tcase_add_test(tc, test_avr_set_rate_is_acked_and_changes_the_batch_period);
    tcase_add_test(
        tc, test_avr_leak_scenario_runs_the_heap_out_and_counts_failures);
    tcase_add_test(tc, test_avr_reboot_is_acked_then_hello_says_software_reset);
    tcase_add_test(tc, test_avr_a_run_stops_at_its_simulated_time_limit);
    tcase_add_test(tc, test_avr_an_image_that_cannot_be_read_does_not_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(avr_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
