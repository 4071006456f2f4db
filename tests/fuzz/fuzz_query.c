/* libFuzzer target: tetherd's query socket, the bytes a client writes.
 *
 * The real server answers: query_open() (daemon/query.c) over qsrv
 * (daemon/qsrv.c) listens on a Unix socket in a scratch directory, on a
 * libuv loop, with a real store (SQLite, a few rows of history), rings and
 * alerts holding data, a real link to a stand-in MCU on the far side of a
 * pty (it said HELLO, and answers every command with ACK or NACK, and
 * every update request with NACK unsupported), and a real flash.  The
 * flash reads image files by name, so its one open() (daemon/flash.c is
 * compiled for this target with open renamed, see tests/fuzz/fuzz.mk)
 * lands here: a name that ends in one of the images made in the scratch
 * directory opens that image, any other is ENOENT, so no input makes the
 * daemon open a file of the machine.  Each input opens a fresh server and
 * flash, connects to it, writes the bytes, reads every answer, and closes
 * both again, so no input sees what an earlier one left.
 *
 * Input: byte 0 chooses how the rest goes out:
 *   bit 0      the peer is admin (may call send and flash);
 *   bits 1-2   0 all at once, 1 a line per write, 2 writes of 1..32
 *              bytes (bits 3-7 + 1), each read by the server before the
 *              next is written, 3 all at once and then a line over
 *              QSRV_REQUEST_MAX bytes (the server must answer and hang up).
 * After the input the client sends one more request of its own (on a new
 * line, which also ends an unfinished last line of the input), an
 * "alerts" call with the id "fuzz-end".  With a thread pool of one
 * thread, jobs finish in the order they were queued, so once its answer
 * is in, every earlier history read and image check has been answered
 * too (a command may still wait for its ACK: it is answered when the
 * server closes).  Then the daemon's notifications are raised once each
 * (with the input's subscriptions and decimation in force), the client
 * hangs up, and the server is closed.
 *
 * Checked: every line the server sends is a JSON object with "jsonrpc"
 * "2.0", and either an answer (an "id", and exactly one of "result" and
 * an "error" with an integer code and a string message) or a
 * notification (a "method", no "id"); no line is longer than the output
 * bound allows; the server never stops answering (each input has
 * DEADLINE_S seconds); closing the server ends every handle. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "flash.h"
#include "frame.h"
#include "fuzz.h"
#include "link.h"
#include "log.h"
#include "query.h"
#include "ring.h"
#include "sha256.h"
#include "store.h"
#include "update.h"

#define DEADLINE_S   20 /* an input's bound; libFuzzer's -timeout is 10 */
#define RING_SAMPLES 256
#define RING_HEAP    64
#define HISTORY_MIN  30 /* minutes of stored history, ending now */
/* The longest line the server may send: a result at the output bound,
 * the head of the answer and an id as long as a request. */
#define LINE_MAX_OUT (QSRV_OUTPUT_MAX + QSRV_REQUEST_MAX + 256)

static const char end_request[] =
    "\n{\"jsonrpc\":\"2.0\",\"id\":\"fuzz-end\",\"method\":\"alerts\","
    "\"params\":{\"history\":2}}\n";

/* What lives across inputs: the daemon's state the methods read. */
static struct {
    char dir[256];
    char db[300];
    char sock[300];
    char tty[64];
    uv_loop_t loop;
    struct store *store;
    struct ring *adc[MSG_ADC_CHANNELS_MAX];
    struct ring *heap;
    struct alert *alert;
    struct link *link;
    /* The input being run, for the link's events and the flash's hooks. */
    struct query *q;
    struct flash *flash;
} w;

/* The stand-in MCU: the master side of the link's pty. */
static struct {
    int fd;
    uv_poll_t poll;
    struct frame_rx rx;
    uint8_t buf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    uint16_t seq;
} mcu;

/* The images the flash may read, by the last part of the name asked for:
 * one that passes every check, and one for each of three refusals. */
static const char *const image_names[] = {"good.img", "old.img", "an505.img",
                                          "bad-hash.img"};

/* One client talking to one server. */
struct session {
    int fd;
    uv_poll_t poll;
    uint8_t *out; /* what the client writes */
    size_t out_len, pos;
    int mode;
    size_t chunk;
    bool wrote_chunk; /* mode 1, 2: wait for the server to read it */
    bool admin;
    bool answered; /* the end request's answer came */
    bool eof;      /* the server hung up */
    bool shut;     /* the client hung up */
    char *line;    /* LINE_MAX_OUT bytes */
    size_t line_len;
    struct query *q;
};

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Alerts raised while the rings are filled go nowhere: the query reads
 * the active ones from the alert module itself. */
static void on_alert(void *ctx, const struct alert_event *ev)
{
    (void)ctx;
    (void)ev;
}

static bool admin_check(void *arg, uid_t uid, gid_t gid)
{
    const struct session *s = arg;

    (void)uid;
    (void)gid;
    return s->admin;
}

/* ---- What the server sends ---- */

static bool is_int(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble == (double)v->valueint;
}

static void check_line(struct session *s, const char *text, size_t len)
{
    cJSON *m = cJSON_ParseWithLength(text, len);
    const cJSON *ver, *id, *res, *err;

    FUZZ_CHECK(m != NULL && cJSON_IsObject(m));
    ver = cJSON_GetObjectItemCaseSensitive(m, "jsonrpc");
    FUZZ_CHECK(cJSON_IsString(ver) && strcmp(ver->valuestring, "2.0") == 0);
    id = cJSON_GetObjectItemCaseSensitive(m, "id");
    res = cJSON_GetObjectItemCaseSensitive(m, "result");
    err = cJSON_GetObjectItemCaseSensitive(m, "error");
    if (id == NULL) {
        FUZZ_CHECK(
            cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "method")));
        FUZZ_CHECK(res == NULL && err == NULL);
    } else {
        FUZZ_CHECK((res == NULL) != (err == NULL));
        FUZZ_CHECK(cJSON_IsString(id) || cJSON_IsNumber(id) ||
                   cJSON_IsNull(id));
        if (err != NULL) {
            FUZZ_CHECK(cJSON_IsObject(err));
            FUZZ_CHECK(is_int(cJSON_GetObjectItemCaseSensitive(err, "code")));
            FUZZ_CHECK(cJSON_IsString(
                cJSON_GetObjectItemCaseSensitive(err, "message")));
        }
        if (cJSON_IsString(id) && strcmp(id->valuestring, "fuzz-end") == 0)
            s->answered = true;
    }
    cJSON_Delete(m);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct session *s = h->data;
    char buf[65536];

    /* An error (the server reset the connection) stops the poll: what
     * is still buffered is read all the same, up to the error. */
    if (status == 0 && !(events & UV_READABLE))
        return;
    for (;;) {
        ssize_t k = read(s->fd, buf, sizeof(buf));

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && status == 0)
            return;
        if (k <= 0) {
            /* EOF, or a reset when the server hangs up on unread input. */
            s->eof = true;
            uv_poll_stop(&s->poll);
            return;
        }
        for (ssize_t i = 0; i < k; i++) {
            if (buf[i] == '\n') {
                check_line(s, s->line, s->line_len);
                s->line_len = 0;
                continue;
            }
            FUZZ_CHECK(s->line_len < LINE_MAX_OUT);
            s->line[s->line_len++] = buf[i];
        }
    }
}

/* ---- What the client writes ---- */

/* The size of the next write: mode 1 ends it after a newline. */
static size_t next_chunk(const struct session *s)
{
    size_t left = s->out_len - s->pos;
    const uint8_t *nl;

    if (s->mode == 1) {
        nl = memchr(s->out + s->pos, '\n', left);
        return nl != NULL ? (size_t)(nl - (s->out + s->pos)) + 1 : left;
    }
    if (s->mode == 2)
        return left < s->chunk ? left : s->chunk;
    return left;
}

static void pump(struct session *s)
{
    while (s->pos < s->out_len) {
        size_t n = next_chunk(s);
        ssize_t k;

        if (s->wrote_chunk)
            return; /* one piece per loop turn, so reads see pieces */
        k = send(s->fd, s->out + s->pos, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k < 0) {
            /* The server hung up (a request too long): stop writing. */
            s->pos = s->out_len;
            return;
        }
        s->pos += (size_t)k;
        s->wrote_chunk = s->mode == 1 || s->mode == 2;
    }
}

/* ---- The daemon's notifications ---- */

static void notify_all(struct query *q)
{
    static const uint8_t adc_payload[MSG_ADC_LEN(6)] = {
        0x10, 0, 0, 0, 0x10, 0x27, 0, 0, 0x05, 0x00, 3, 1,
        0,    2, 0, 3, 0,    4,    0, 5, 0,    6,    0};
    struct msg_adc adc;
    struct msg_heap heap = {.t_us = 5,
                            .total = 16384,
                            .free = 1000,
                            .used = 15384,
                            .largest = 900,
                            .min_free = 800,
                            .scenario = MSG_SCEN_LEAK};
    struct msg_hello hello = {.proto_version = 1,
                              .board = MSG_BOARD_SIM,
                              .reset_cause = MSG_RESET_WATCHDOG,
                              .adc_bits = 14,
                              .adc_channels = 4,
                              .fw_version = 0x000102,
                              .heap_total = 16384};
    struct msg_log lg = {
        .t_us = 7, .level = 3, .text = "boot \"x\"\n", .text_len = 9};
    struct alert_event ev = {.kind = ALERT_HEAP_LOW,
                             .name = "heap_low",
                             .state = "raised",
                             .t_us = wall_us(),
                             .value = 1000,
                             .threshold = 1638,
                             .estimate_s = -1,
                             .message = "free heap 1000 B"};
    struct flash_progress fp = {.id = 1,
                                .state = "done",
                                .image = "/img",
                                .method = "uart",
                                .version = 0x000200,
                                .from_version = 0x000102,
                                .total = 100,
                                .done = true,
                                .outcome = "failed",
                                .why = "timed out"};

    FUZZ_CHECK(msg_decode_adc(adc_payload, sizeof(adc_payload), &adc) == 0);
    for (int i = 0; i < 3; i++)
        query_on_adc(q, wall_us(), &adc);
    query_on_heap(q, wall_us(), &heap);
    query_on_alert(q, &ev);
    query_on_link(q, LINK_STALE, "no frame for 3000 ms");
    query_on_mcu_event(q, "hello", &hello, 0, NULL);
    query_on_mcu_event(q, "reset", NULL, MSG_RESET_FAULT, NULL);
    query_on_mcu_event(q, "log", NULL, 0, &lg);
    query_on_flash(q, &fp);
}

/* ---- The stand-in MCU ---- */

static void mcu_send(uint8_t type, const uint8_t *payload, size_t len)
{
    uint8_t wire[FRAME_WIRE_MAX];
    int n = frame_encode(wire, sizeof(wire), type, mcu.seq++, payload, len);

    FUZZ_CHECK(n > 0);
    /* A frame the pty cannot take now is lost, as on a real line; the
     * daemon's timeouts deal with it. */
    (void)!write(mcu.fd, wire, (size_t)n);
}

static void mcu_hello(void)
{
    struct msg_hello h = {.proto_version = 1,
                          .board = MSG_BOARD_SIM,
                          .reset_cause = MSG_RESET_POWER_ON,
                          .adc_bits = 14,
                          .adc_channels = 4,
                          .caps = MSG_CAP_ADC | MSG_CAP_HEAP | MSG_CAP_UPDATE,
                          .fw_version = 0x000100,
                          .heap_total = 16384,
                          .rx_max = FRAME_PAYLOAD_MAX};
    uint8_t p[MSG_HELLO_LEN];

    FUZZ_CHECK(msg_encode_hello(p, sizeof(p), &h) == MSG_HELLO_LEN);
    mcu_send(MSG_HELLO, p, sizeof(p));
}

/* Every command gets ACK (SET_SCENARIO with an odd seq gets NACK
 * bad_value, so both answers are seen); update requests get NACK
 * unsupported, as from firmware that takes no updates. */
static void mcu_answer(const struct frame *f)
{
    struct msg_ack a = {f->seq, f->type, 0};
    uint8_t p[MSG_NACK_LEN];

    if (f->type >= MSG_UPDATE_FIRST && f->type <= MSG_UPDATE_LAST)
        a.error = MSG_NACK_UNSUPPORTED;
    else if (f->type == MSG_SET_SCENARIO && (f->seq & 1))
        a.error = MSG_NACK_BAD_VALUE;
    if (a.error != 0) {
        FUZZ_CHECK(msg_encode_nack(p, sizeof(p), &a) == MSG_NACK_LEN);
        mcu_send(MSG_NACK, p, MSG_NACK_LEN);
        return;
    }
    FUZZ_CHECK(msg_encode_ack(p, sizeof(p), &a) == MSG_ACK_LEN);
    mcu_send(MSG_ACK, p, MSG_ACK_LEN);
    if (f->type == MSG_GET_HELLO)
        mcu_hello();
}

static void on_mcu(uv_poll_t *h, int status, int events)
{
    uint8_t buf[1024];
    struct frame f;
    ssize_t n;

    (void)h;
    if (status < 0 || !(events & UV_READABLE))
        return;
    while ((n = read(mcu.fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; i++)
            if (frame_rx_push(&mcu.rx, buf[i], &f) == FRAME_RX_OK)
                mcu_answer(&f);
}

/* ---- The link's events and the flash's hooks, as app.c wires them ---- */

static void on_answer(void *ctx, const struct msg_ack *a)
{
    (void)ctx;
    if (w.q != NULL)
        query_on_answer(w.q, a);
    if (w.flash != NULL)
        flash_on_answer(w.flash, a);
}

static void on_upd_status(void *ctx, const struct msg_upd_status *st)
{
    (void)ctx;
    if (w.flash != NULL)
        flash_on_status(w.flash, st);
}

static int fl_send(void *ctx, uint8_t type, const uint8_t *payload, size_t len,
                   uint16_t *seq)
{
    (void)ctx;
    return link_send(w.link, type, payload, len, seq);
}

static const struct msg_hello *fl_hello(void *ctx)
{
    (void)ctx;
    return link_hello(w.link);
}

static enum link_state fl_link_state(void *ctx)
{
    (void)ctx;
    return link_state(w.link);
}

static void fl_flag(void *ctx, bool on)
{
    (void)ctx;
    (void)on;
}

static uint32_t fl_heap_low(void *ctx, uint32_t total)
{
    (void)ctx;
    return alert_heap_low_bytes(w.alert, total);
}

static void fl_progress(void *ctx, const struct flash_progress *p)
{
    (void)ctx;
    if (w.q != NULL)
        query_on_flash(w.q, p);
}

/* daemon/flash.c's open(), for this target only: see the top. */
int fuzz_query_open(const char *path, int flags, ...);

int fuzz_query_open(const char *path, int flags, ...)
{
    const char *base = strrchr(path, '/');
    char real[400];

    base = base != NULL ? base + 1 : path;
    for (size_t i = 0; i < sizeof(image_names) / sizeof(image_names[0]); i++)
        if (strcmp(base, image_names[i]) == 0) {
            snprintf(real, sizeof(real), "%s/%s", w.dir, base);
            return open(real, flags);
        }
    errno = ENOENT;
    return -1;
}

static void write_image(const char *name, uint8_t board, uint32_t version,
                        bool bad_hash)
{
    uint8_t img[IMAGE_HDR_LEN + 300];
    struct image_hdr h = {.magic = IMAGE_MAGIC,
                          .hdr_version = IMAGE_HDR_VERSION,
                          .board = board,
                          .fw_version = version,
                          .body_len = sizeof(img) - IMAGE_HDR_LEN};
    char path[400];
    FILE *f;

    for (size_t i = IMAGE_HDR_LEN; i < sizeof(img); i++)
        img[i] = (uint8_t)(i * 31);
    sha256_digest(img + IMAGE_HDR_LEN, h.body_len, h.hash);
    h.hash[0] ^= bad_hash ? 1 : 0;
    FUZZ_CHECK(image_encode(img, sizeof(img), &h) == (int)IMAGE_HDR_LEN);
    snprintf(path, sizeof(path), "%s/%s", w.dir, name);
    f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL && fwrite(img, 1, sizeof(img), f) == sizeof(img));
    FUZZ_CHECK(fclose(f) == 0);
}

/* ---- Set-up, once ---- */

static void fill_history(int64_t now)
{
    uint8_t payload[MSG_ADC_LEN(8)];
    struct msg_adc hdr = {0, 1000000, 0x0003, 4, NULL}, a;
    int64_t t0 = now - HISTORY_MIN * 60 * 1000000LL;

    FUZZ_CHECK(msg_encode_adc_hdr(payload, sizeof(payload), &hdr) ==
               MSG_ADC_HDR_LEN);
    for (unsigned v = 0; v < 8; v++)
        msg_adc_put_value(payload, v, (uint16_t)(v * 1000));
    FUZZ_CHECK(msg_decode_adc(payload, sizeof(payload), &a) == 0);
    for (int i = 0; i < HISTORY_MIN; i++) {
        struct msg_heap h = {.t_us = (uint32_t)i,
                             .total = 16384,
                             .free = 9000u - 100u * (uint32_t)i,
                             .largest = 4000,
                             .min_free = 5000};
        int64_t t = t0 + i * 60 * 1000000LL;

        h.used = h.total - h.free;
        FUZZ_CHECK(store_put_adc(w.store, t, (uint16_t)i, &a) == 0);
        FUZZ_CHECK(store_put_heap(w.store, t, (uint16_t)i, &h) == 0);
    }
    FUZZ_CHECK(store_put_alert(w.store, now - 1000, "heap_low", "raised", 1200,
                               1638, "free heap 1200 B") == 0);
    FUZZ_CHECK(store_put_alert(w.store, now - 500, "heap_low", "cleared", NAN,
                               0, "free heap back") == 0);
    FUZZ_CHECK(store_flush(w.store) == 0);
}

static void fill_memory(int64_t now)
{
    struct alert_config ac = {
        .heap_low = {10, true},
        .heap_hysteresis = {5, true},
        .hold_off_s = 0,
        .hold_off_reports = 1,
        .leak_window_s = 60,
        .leak_horizon_s = 600,
        .leak_min_reports = 10,
    };
    struct heap_record hr = {0};

    for (unsigned ch = 0; ch < MSG_ADC_CHANNELS_MAX; ch++) {
        FUZZ_CHECK(
            ring_new(&w.adc[ch], RING_SAMPLES, sizeof(struct adc_record)) == 0);
        /* Channels 0..3 have data, one of them more than fits. */
        for (unsigned i = 0; ch < 4 && i < RING_SAMPLES + ch * 40; i++) {
            struct adc_record r = {now - 1000000 + i * 1000,
                                   (uint16_t)(i * 7 + ch)};

            ring_push(w.adc[ch], &r);
        }
    }
    FUZZ_CHECK(ring_new(&w.heap, RING_HEAP, sizeof(struct heap_record)) == 0);
    FUZZ_CHECK(alert_new(&w.alert, &ac, on_alert, NULL) == 0);
    for (int i = 0; i < 3; i++) {
        hr.t_us = now - 3000000 + i * 1000000;
        hr.heap = (struct msg_heap){.total = 16384,
                                    .free = 1200,
                                    .used = 15184,
                                    .largest = 1000,
                                    .min_free = 1100,
                                    .scenario = MSG_SCEN_LEAK};
        ring_push(w.heap, &hr);
        alert_heap(w.alert, hr.t_us, &hr.heap);
    }
}

static void remove_scratch(void)
{
    static const char *const tails[] = {"", "-wal", "-shm", "-journal"};
    char path[400];

    store_close(w.store);
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", w.db, tails[i]);
        unlink(path);
    }
    unlink(w.sock);
    for (size_t i = 0; i < sizeof(image_names) / sizeof(image_names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", w.dir, image_names[i]);
        unlink(path);
    }
    rmdir(w.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    struct store_config sc = {
        .commit_ms = 10, .commit_rows = 1000, .queue_rows = 65536};
    /* Stale after an hour: a run never sees the link go stale by
     * itself. */
    struct link_config lc = {.baud = 115200, .stale_after_ms = 3600000};
    struct link_events events = {.answer = on_answer,
                                 .upd_status = on_upd_status};
    char err[STORE_ERR_MAX];
    int64_t now = wall_us();
    int devnull;

    (void)argc;
    (void)argv;
    /* Jobs must finish in the order queued: see the top of the file. */
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    snprintf(w.dir, sizeof(w.dir), "%s/tether-fuzz-query.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(w.dir) != NULL);
    snprintf(w.db, sizeof(w.db), "%s/tether.db", w.dir);
    snprintf(w.sock, sizeof(w.sock), "%s/q.sock", w.dir);
    FUZZ_CHECK(strlen(w.sock) < sizeof(((struct sockaddr_un *)0)->sun_path));
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    FUZZ_CHECK(devnull >= 0);
    log_set_fd(devnull);
    FUZZ_CHECK(uv_loop_init(&w.loop) == 0);
    sc.path = w.db;
    FUZZ_CHECK(store_open(&w.store, &sc, err, sizeof(err)) == 0);
    fill_history(now);
    fill_memory(now);
    write_image("good.img", MSG_BOARD_SIM, 0x000200, false);
    write_image("old.img", MSG_BOARD_SIM, 0x000001, false);
    write_image("an505.img", MSG_BOARD_MPS2_AN505, 0x000200, false);
    write_image("bad-hash.img", MSG_BOARD_SIM, 0x000200, true);

    /* The MCU's side of the pty, then the link on the other, connected
     * once the HELLO is in. */
    mcu.fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    FUZZ_CHECK(mcu.fd >= 0 && grantpt(mcu.fd) == 0 && unlockpt(mcu.fd) == 0);
    FUZZ_CHECK(ptsname_r(mcu.fd, w.tty, sizeof(w.tty)) == 0);
    frame_rx_init(&mcu.rx, mcu.buf, sizeof(mcu.buf));
    FUZZ_CHECK(uv_poll_init(&w.loop, &mcu.poll, mcu.fd) == 0);
    FUZZ_CHECK(uv_poll_start(&mcu.poll, UV_READABLE, on_mcu) == 0);
    lc.device = w.tty;
    FUZZ_CHECK(link_new(&w.link, &w.loop, &lc, &events, NULL) == 0);
    for (time_t end = time(NULL) + DEADLINE_S;
         link_state(w.link) != LINK_CONNECTED || link_hello(w.link) == NULL;) {
        FUZZ_CHECK(time(NULL) < end);
        mcu_hello();
        uv_run(&w.loop, UV_RUN_ONCE);
    }
    atexit(remove_scratch);
    return 0;
}

/* ---- One input ---- */

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

static void run_until(bool *flag, time_t deadline)
{
    while (!*flag) {
        FUZZ_CHECK(time(NULL) < deadline);
        uv_run(&w.loop, UV_RUN_ONCE);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char line[LINE_MAX_OUT];
    struct session s = {.fd = -1, .line = line};
    struct qsrv_config qc = {.path = w.sock};
    struct query_deps qd = {
        .link = w.link,
        .store = w.store,
        .db_path = w.db,
        .adc_ring = w.adc,
        .heap_ring = w.heap,
        .alert = w.alert,
        .device = w.tty,
    };
    struct flash_config fc = {
        .method = FLASH_METHOD_UART,
        .window = 4,
        .timeout_ms = 1000,
        .retries = 5,
        .wait_ms = 30000,
        .health_s = 5,
        .openocd_command = "openocd",
        .openocd_config = "",
    };
    static const struct flash_hooks hooks = {
        .send = fl_send,
        .hello = fl_hello,
        .link_state = fl_link_state,
        .release = fl_flag,
        .pause = fl_flag,
        .expect_reset = fl_flag,
        .heap_low = fl_heap_low,
        .progress = fl_progress,
    };
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t pad = 0, n;
    time_t deadline = time(NULL) + DEADLINE_S;
    bool closed = false, flash_closed = false;

    if (size < 1)
        return 0;
    s.admin = data[0] & 1;
    s.mode = (data[0] >> 1) & 3;
    s.chunk = (size_t)(data[0] >> 3) + 1;
    if (s.mode == 3)
        pad = QSRV_REQUEST_MAX + 2;
    n = size - 1;
    s.out = malloc(n + pad + sizeof(end_request));
    FUZZ_CHECK(s.out != NULL);
    memcpy(s.out, data + 1, n);
    memset(s.out + n, 'x', pad);
    memcpy(s.out + n + pad, end_request, sizeof(end_request) - 1);
    s.out_len = n + pad + sizeof(end_request) - 1;

    qc.admin_check = admin_check;
    qc.admin_check_arg = &s;
    FUZZ_CHECK(flash_new(&w.flash, &w.loop, &fc, &hooks, NULL) == 0);
    qd.flash = w.flash;
    FUZZ_CHECK(query_open(&s.q, &w.loop, &qc, -1, &qd) == 0);
    w.q = s.q;
    s.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(s.fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
    FUZZ_CHECK(connect(s.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    FUZZ_CHECK(uv_poll_init(&w.loop, &s.poll, s.fd) == 0);
    s.poll.data = &s;
    FUZZ_CHECK(uv_poll_start(&s.poll, UV_READABLE, on_poll) == 0);

    while (!s.eof) {
        FUZZ_CHECK(time(NULL) < deadline);
        pump(&s);
        if (s.answered && !s.shut) {
            notify_all(s.q);
            shutdown(s.fd, SHUT_WR);
            s.shut = true;
        }
        uv_run(&w.loop, UV_RUN_ONCE);
        s.wrote_chunk = false;
    }
    uv_close((uv_handle_t *)&s.poll, NULL);
    /* In app.c's order: the query server, then the update. */
    w.q = NULL;
    query_close(s.q, on_closed, &closed);
    flash_close(w.flash, on_closed, &flash_closed);
    w.flash = NULL;
    run_until(&closed, deadline);
    run_until(&flash_closed, deadline);
    close(s.fd);
    free(s.out);
    return 0;
}
