/* Event-loop stalls during full-rate ingest, with commits and checkpoints.
 *
 * Runs tetherd's own link and store modules in one loop, as app.c wires
 * them, against a tether-sim sending as fast as it can, and a 1 ms
 * repeating timer whose lateness measures how long the loop was kept
 * from running.  Prints samples/s stored and the p50/p99/max stall.
 * Usage: loop_bench PTY DB SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "link.h"
#include "log.h"
#include "store.h"

#define TICK_MS  1u
#define HIST_MAX 100000u /* stalls recorded, in microseconds */

static struct {
    uv_loop_t loop;
    uv_timer_t tick, end;
    struct link *link;
    struct store *store;
    uint64_t last_ns;
    uint32_t *lateness_us;
    size_t n;
    uint64_t samples;
} b;

static void on_adc(void *ctx, int64_t t0_us, uint16_t seq,
                   const struct msg_adc *a)
{
    (void)ctx;
    if (store_put_adc(b.store, t0_us, seq, a) == 0)
        b.samples += (uint64_t)a->scans * msg_popcount16(a->mask);
}

static void on_heap(void *ctx, int64_t t_us, uint16_t seq,
                    const struct msg_heap *h)
{
    (void)ctx;
    (void)store_put_heap(b.store, t_us, seq, h);
}

static void on_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();

    (void)t;
    if (b.last_ns != 0 && b.n < HIST_MAX) {
        uint64_t gap = (now - b.last_ns) / 1000u;

        b.lateness_us[b.n++] =
            (uint32_t)(gap > TICK_MS * 1000u ? gap - TICK_MS * 1000u : 0);
    }
    b.last_ns = now;
}

static void closed(void *arg)
{
    (void)arg;
}

static void on_end(uv_timer_t *t)
{
    uv_timer_stop(&b.tick);
    uv_close((uv_handle_t *)&b.tick, NULL);
    uv_close((uv_handle_t *)t, NULL);
    link_close(b.link, closed, NULL);
}

static int cmp(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;

    return (a > c) - (a < c);
}

int main(int argc, char **argv)
{
    static const struct link_events ev = {.adc = on_adc, .heap = on_heap};
    struct store_config sc = {.commit_ms = 100,
                              .commit_rows = 1000,
                              .queue_rows = 65536,
                              .raw_max_age_s = 0,
                              .raw_max_rows = 0,
                              .rollup_1s_age_s = 86400,
                              .rollup_1m_age_s = 86400};
    struct link_config lc = {.baud = 115200, .stale_after_ms = 3000};
    struct store_stats st;
    char err[STORE_ERR_MAX];
    double secs;

    if (argc != 4) {
        fprintf(stderr, "usage: loop_bench PTY DB SECONDS\n");
        return 2;
    }
    log_set_level(LOG_PRIO_WARNING);
    lc.device = argv[1];
    sc.path = argv[2];
    secs = atof(argv[3]);
    b.lateness_us = calloc(HIST_MAX, sizeof(*b.lateness_us));
    if (b.lateness_us == NULL || store_open(&b.store, &sc, err, sizeof(err)))
        return 1;
    uv_loop_init(&b.loop);
    if (link_new(&b.link, &b.loop, &lc, &ev, NULL) != 0)
        return 1;
    uv_timer_init(&b.loop, &b.tick);
    uv_timer_init(&b.loop, &b.end);
    uv_timer_start(&b.tick, on_tick, TICK_MS, TICK_MS);
    uv_timer_start(&b.end, on_end, (uint64_t)(secs * 1000), 0);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    store_flush(b.store);
    store_get_stats(b.store, &st);
    store_close(b.store);
    uv_loop_close(&b.loop);

    qsort(b.lateness_us, b.n, sizeof(*b.lateness_us), cmp);
    printf("loop_ticks %zu\n", b.n);
    if (b.n > 0) {
        printf("loop_stall_p50_us %u\n", b.lateness_us[b.n / 2]);
        printf("loop_stall_p99_us %u\n", b.lateness_us[b.n * 99 / 100]);
        printf("loop_stall_max_us %u\n", b.lateness_us[b.n - 1]);
    }
    printf("ingest_samples_per_s %.0f\n", (double)b.samples / secs);
    printf("store_rows_written %llu dropped %llu\n",
           (unsigned long long)st.written, (unsigned long long)st.dropped);
    free(b.lateness_us);
    return 0;
}
