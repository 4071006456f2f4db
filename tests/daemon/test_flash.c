/* The firmware update module on a real libuv loop, against a scripted
 * fake MCU played by the test through the flash's hooks: every request
 * the flash sends is answered (or not) by the fake a millisecond later,
 * as a line would, with the UPD_STATUS the MCU's handler would send
 * (mcu-firmware/update/fwupdate.c), and the fake's scripts lose chunks,
 * answers, the link or the MCU itself.  The image check is tested on its
 * own, one refusal at a time.
 *
 * Every wait is bounded by a timer that stops the loop, and every test
 * ends with uv_loop_close() returning 0. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon_test_util.h"
#include "flash.h"
#include "log.h"
#include "sha256.h"
#include "update.h"

#define BODY_LEN     5000u /* about 21 chunks */
#define REPLIES_MAX  256u
#define STATES_MAX   64u
#define DEADLINE_MS  8000u
#define V1           0x000100u
#define V2           0x000200u
#define HEAP_TOTAL   16384u
#define HEAP_LOW     1638u /* 10% */
#define HEAP_EVERY   100u  /* ms between the fake's heap reports */
#define REBOOT_DELAY 20u   /* ms from a reset to the HELLO */

/* One frame the fake MCU sends back. */
struct reply {
    bool is_status; /* else an ACK or NACK */
    struct msg_upd_status s;
    struct msg_ack a;
};

static struct {
    uv_loop_t loop;
    uv_timer_t deadline, deliver, heap_timer, reboot_timer, link_timer;
    struct flash *flash;
    bool closed;

    /* The image. */
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
    uint8_t img[IMAGE_HDR_LEN + BODY_LEN];

    /* The fake MCU: what runs, and the upload it holds. */
    struct msg_hello hello;
    bool on_test;
    bool reverted;
    uint32_t next_version; /* what the reset that is coming boots */
    uint8_t state;         /* enum msg_upd_state */
    uint32_t stored;
    uint8_t hdr_raw[IMAGE_HDR_LEN];
    struct image_hdr hdr;
    uint8_t body[BODY_LEN];
    enum link_state link;
    uint16_t seq;
    struct reply q[REPLIES_MAX];
    size_t nq;
    unsigned outstanding, max_outstanding;

    /* Its script. */
    uint8_t window;
    unsigned drop_data;    /* drop this DATA frame (1-based), 0: none */
    unsigned drop_replies; /* drop this many answers from the 3rd DATA */
    bool silent;           /* answer nothing at all */
    bool nack;             /* NACK every update request, as without */
    bool corrupt;          /* a byte changes on its way to the slot */
    bool mute_new;         /* the new image sends no heap reports */
    uint32_t new_free;     /* free heap the new image reports */
    unsigned cut_link_at;  /* lose the link at this DATA frame */
    unsigned link_down_ms; /* for this long; 0: forever */
    unsigned reset_at;     /* the MCU resets at this DATA frame */
    unsigned crash_new_ms; /* the new image crashes this long after boot */
    bool refuse_boot;      /* the bootloader finds the slot bad */
    uint8_t cause;         /* of the next reset */

    /* What happened. */
    unsigned begins, datas, ends, boots, confirms, queries, reboots, aborts;
    const char *states[STATES_MAX];
    size_t nstates;
    bool done;
    char outcome[32];
    char why[FLASH_WHY_MAX];
    struct flash_progress last;
    bool paused, expecting, released;
    unsigned pauses, expects;
    bool started;
    int start_err;
    char start_why[FLASH_WHY_MAX];
} t;

/* ---- The image ---- */

static void make_image(uint32_t version, uint8_t board)
{
    struct image_hdr h = {
        .magic = IMAGE_MAGIC,
        .hdr_version = IMAGE_HDR_VERSION,
        .board = board,
        .fw_version = version,
        .build_id = 0x1234,
        .body_len = BODY_LEN,
    };
    struct sha256 sh;

    for (size_t i = 0; i < BODY_LEN; i++)
        t.img[IMAGE_HDR_LEN + i] = (uint8_t)(i * 7 + i / 251);
    sha256_init(&sh);
    sha256_update(&sh, t.img + IMAGE_HDR_LEN, BODY_LEN);
    sha256_final(&sh, h.hash);
    ck_assert_int_eq(image_encode(t.img, IMAGE_HDR_LEN, &h), IMAGE_HDR_LEN);
}

static void write_image(size_t len)
{
    int fd = open(t.path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, t.img, len), (ssize_t)len);
    close(fd);
}

/* ---- The fake MCU ---- */

static void on_deliver(uv_timer_t *h);

static void queue(const struct reply *r)
{
    ck_assert_uint_lt(t.nq, REPLIES_MAX);
    t.q[t.nq++] = *r;
    if (!uv_is_active((uv_handle_t *)&t.deliver))
        uv_timer_start(&t.deliver, on_deliver, 1, 0);
}

static void status(uint16_t seq, uint8_t type, uint8_t error)
{
    struct reply r = {.is_status = true};

    r.s.req_seq = seq;
    r.s.req_type = type;
    r.s.state = t.state;
    r.s.error = error;
    r.s.boot = (t.on_test ? MSG_UPD_BOOT_TEST : 0) |
               (t.reverted ? MSG_UPD_BOOT_REVERTED : 0);
    r.s.chunk_max = MSG_UPD_CHUNK_MAX;
    r.s.stored = t.state == MSG_UPD_IDLE ? 0 : t.stored;
    r.s.body_len = t.state == MSG_UPD_IDLE ? 0 : t.hdr.body_len;
    r.s.fw_version = t.hello.fw_version;
    r.s.window = t.window;
    queue(&r);
}

static void on_reboot(uv_timer_t *h);

/* The MCU resets now, forgetting the upload, and boots next_version
 * REBOOT_DELAY ms later; the link reports the reset and the HELLO. */
static void mcu_reset(void)
{
    t.state = MSG_UPD_IDLE;
    t.stored = 0;
    uv_timer_start(&t.reboot_timer, on_reboot, REBOOT_DELAY, 0);
}

static void on_crash(uv_timer_t *h)
{
    (void)h;
    /* A reset while on test: the bootloader goes back. */
    t.on_test = false;
    t.reverted = true;
    t.next_version = V1;
    t.cause = MSG_RESET_WATCHDOG;
    mcu_reset();
}

static void on_reboot(uv_timer_t *h)
{
    uint8_t cause = t.cause != 0 ? t.cause : MSG_RESET_SOFTWARE;

    (void)h;
    t.cause = 0;
    if (t.refuse_boot && t.on_test) {
        t.on_test = false;
        t.reverted = true;
        t.next_version = V1;
    }
    if (t.crash_new_ms > 0 && t.on_test)
        uv_timer_start(&t.link_timer, on_crash, t.crash_new_ms, 0);
    t.hello.fw_version = t.next_version;
    t.hello.uptime_ms = 0;
    t.hello.caps = MSG_CAP_UPDATE | (t.on_test ? MSG_CAP_TESTING : 0);
    if (t.flash == NULL)
        return;
    flash_on_reset(t.flash, cause);
    flash_on_hello(t.flash, &t.hello);
}

static void on_link_back(uv_timer_t *h)
{
    (void)h;
    t.link = LINK_CONNECTED;
    if (t.flash != NULL)
        flash_on_link(t.flash, LINK_CONNECTED);
}

/* The link reports a lost device from the loop, never from inside a
 * send, as link.c does. */
static void on_link_down(uv_timer_t *h)
{
    (void)h;
    if (t.flash != NULL)
        flash_on_link(t.flash, LINK_DISCONNECTED);
    if (t.link_down_ms > 0)
        uv_timer_start(&t.link_timer, on_link_back, t.link_down_ms, 0);
}

static uint8_t fake_data(const uint8_t *p, size_t n)
{
    struct msg_upd_data d;

    if (msg_decode_upd_data(p, n, &d) != 0)
        return MSG_UPD_EHEADER;
    if (t.state != MSG_UPD_RECEIVING)
        return MSG_UPD_ESTATE;
    if (d.offset != t.stored)
        return MSG_UPD_EOFFSET;
    if (d.len > t.hdr.body_len - t.stored)
        return MSG_UPD_ESIZE;
    memcpy(t.body + t.stored, d.data, d.len);
    if (t.corrupt && t.stored == 0)
        t.body[3] ^= 1;
    t.stored += (uint32_t)d.len;
    return MSG_UPD_OK;
}

static uint8_t fake_end(void)
{
    uint8_t digest[IMAGE_HASH_LEN];
    struct sha256 sh;

    if (t.state == MSG_UPD_VERIFIED)
        return MSG_UPD_OK;
    if (t.state != MSG_UPD_RECEIVING || t.stored != t.hdr.body_len)
        return MSG_UPD_ESTATE;
    sha256_init(&sh);
    sha256_update(&sh, t.body, t.stored);
    sha256_final(&sh, digest);
    if (memcmp(digest, t.hdr.hash, IMAGE_HASH_LEN) != 0) {
        t.state = MSG_UPD_IDLE;
        return MSG_UPD_EHASH;
    }
    t.state = MSG_UPD_VERIFIED;
    return MSG_UPD_OK;
}

/* The flash's send hook: the fake MCU receives a frame. */
static int h_send(void *ctx, uint8_t type, const uint8_t *p, size_t n,
                  uint16_t *seqp)
{
    uint16_t seq = t.seq++;
    struct reply r = {.is_status = false};
    uint8_t e;

    (void)ctx;
    if (t.link != LINK_CONNECTED)
        return LINK_ENOTCONN;
    if (seqp != NULL)
        *seqp = seq;
    if (type == MSG_UPD_DATA && ++t.datas == t.cut_link_at) {
        t.link = LINK_DISCONNECTED;
        uv_timer_start(&t.link_timer, on_link_down, 0, 0);
        return 0; /* the frame is lost with the link */
    }
    if (t.silent)
        return 0;
    if (type == MSG_REBOOT) {
        t.reboots++;
        r.a = (struct msg_ack){seq, type, 0};
        queue(&r);
        /* No CONFIRM came: the bootloader goes back. */
        if (t.on_test) {
            t.on_test = false;
            t.reverted = true;
            t.next_version = V1;
        }
        mcu_reset();
        return 0;
    }
    if (t.nack) {
        r.a = (struct msg_ack){seq, type, MSG_NACK_UNSUPPORTED};
        queue(&r);
        return 0;
    }
    switch (type) {
    case MSG_UPD_BEGIN:
        t.begins++;
        if (t.state != MSG_UPD_IDLE && memcmp(p, t.hdr_raw, n) == 0) {
            status(seq, type, MSG_UPD_OK); /* resume */
            break;
        }
        ck_assert_int_eq(image_decode(p, n, &t.hdr), 0);
        memcpy(t.hdr_raw, p, IMAGE_HDR_LEN);
        t.state = MSG_UPD_RECEIVING;
        t.stored = 0;
        status(seq, type, MSG_UPD_OK);
        break;
    case MSG_UPD_DATA:
        if (t.datas == t.drop_data)
            break;
        if (t.reset_at != 0 && t.datas == t.reset_at) {
            t.next_version = V1;
            mcu_reset();
            break;
        }
        e = fake_data(p, n);
        t.outstanding++;
        if (t.outstanding > t.max_outstanding)
            t.max_outstanding = t.outstanding;
        if (t.drop_replies > 0 && t.datas >= 3) {
            t.drop_replies--;
            t.outstanding--;
            break;
        }
        status(seq, type, e);
        break;
    case MSG_UPD_END:
        t.ends++;
        e = fake_end();
        status(seq, type, e);
        break;
    case MSG_UPD_BOOT:
        t.boots++;
        e = t.state == MSG_UPD_VERIFIED ? MSG_UPD_OK : MSG_UPD_ESTATE;
        if (e == MSG_UPD_OK)
            t.state = MSG_UPD_BOOTING;
        status(seq, type, e);
        if (e == MSG_UPD_OK) {
            /* The reset comes after the answer has gone out. */
            t.on_test = true;
            t.next_version = t.hdr.fw_version;
            uv_timer_start(&t.reboot_timer, on_reboot, REBOOT_DELAY, 0);
        }
        break;
    case MSG_UPD_CONFIRM:
        t.confirms++;
        e = t.on_test ? MSG_UPD_OK : MSG_UPD_ENOTEST;
        t.on_test = false;
        status(seq, type, e);
        break;
    case MSG_UPD_QUERY:
        t.queries++;
        status(seq, type, MSG_UPD_OK);
        break;
    case MSG_UPD_ABORT:
        t.aborts++;
        if (t.state != MSG_UPD_BOOTING)
            t.state = MSG_UPD_IDLE;
        status(seq, type, MSG_UPD_OK);
        break;
    default:
        break;
    }
    return 0;
}

static void on_deliver(uv_timer_t *h)
{
    struct reply r;

    (void)h;
    if (t.flash == NULL || t.nq == 0 || t.link != LINK_CONNECTED) {
        t.nq = 0;
        return;
    }
    r = t.q[0];
    memmove(t.q, t.q + 1, (t.nq - 1) * sizeof(t.q[0]));
    t.nq--;
    if (t.nq > 0)
        uv_timer_start(&t.deliver, on_deliver, 1, 0);
    if (r.is_status) {
        if (r.s.req_type == MSG_UPD_DATA && t.outstanding > 0)
            t.outstanding--;
        flash_on_status(t.flash, &r.s);
    } else {
        flash_on_answer(t.flash, &r.a);
    }
}

static void on_heap_timer(uv_timer_t *h)
{
    struct msg_heap heap = {.total = HEAP_TOTAL};

    (void)h;
    if (t.flash == NULL || t.link != LINK_CONNECTED ||
        t.state == MSG_UPD_RECEIVING ||
        (t.mute_new && t.hello.fw_version == V2))
        return;
    heap.free = t.hello.fw_version == V2 ? t.new_free : 12000;
    flash_on_heap(t.flash, &heap);
}

/* ---- The other hooks ---- */

static const struct msg_hello *h_hello(void *ctx)
{
    (void)ctx;
    return &t.hello;
}

static enum link_state h_link_state(void *ctx)
{
    (void)ctx;
    return t.link;
}

static void h_release(void *ctx, bool released)
{
    (void)ctx;
    t.released = released;
}

static void h_pause(void *ctx, bool paused)
{
    (void)ctx;
    ck_assert_int_ne(t.paused, paused);
    t.paused = paused;
    t.pauses++;
}

static void h_expect(void *ctx, bool expected)
{
    (void)ctx;
    ck_assert_int_ne(t.expecting, expected);
    t.expecting = expected;
    t.expects++;
}

static uint32_t h_heap_low(void *ctx, uint32_t total)
{
    (void)ctx;
    return total / 10;
}

static void h_progress(void *ctx, const struct flash_progress *p)
{
    (void)ctx;
    if (t.nstates == 0 || strcmp(t.states[t.nstates - 1], p->state) != 0) {
        ck_assert_uint_lt(t.nstates, STATES_MAX);
        t.states[t.nstates++] = p->state;
    }
    t.last = *p;
    if (!p->done)
        return;
    t.done = true;
    snprintf(t.outcome, sizeof(t.outcome), "%s", p->outcome);
    snprintf(t.why, sizeof(t.why), "%s", p->why);
    uv_stop(&t.loop);
}

static void on_started(void *arg, int err, const char *why,
                       const struct flash_progress *p)
{
    (void)arg;
    t.started = true;
    t.start_err = err;
    snprintf(t.start_why, sizeof(t.start_why), "%s", why);
    if (err == 0)
        ck_assert_ptr_nonnull(p);
    else
        uv_stop(&t.loop);
}

static const struct flash_hooks hooks = {
    .send = h_send,
    .hello = h_hello,
    .link_state = h_link_state,
    .release = h_release,
    .pause = h_pause,
    .expect_reset = h_expect,
    .heap_low = h_heap_low,
    .progress = h_progress,
};

/* ---- Running ---- */

static void on_deadline(uv_timer_t *h)
{
    (void)h;
    uv_stop(&t.loop);
}

static void setup(void)
{
    memset(&t, 0, sizeof(t));
    snprintf(t.dir, sizeof(t.dir), "%s", dtest_tmpdir());
    snprintf(t.path, sizeof(t.path), "%s/v2.img", t.dir);
    log_set_level(LOG_PRIO_ERR);
    make_image(V2, MSG_BOARD_SIM);
    write_image(sizeof(t.img));
    t.hello = (struct msg_hello){.proto_version = 1,
                                 .board = MSG_BOARD_SIM,
                                 .caps = MSG_CAP_UPDATE,
                                 .fw_version = V1,
                                 .heap_total = HEAP_TOTAL,
                                 .rx_max = FRAME_PAYLOAD_MAX};
    t.link = LINK_CONNECTED;
    t.window = 4;
    t.new_free = 12000;
    ck_assert_int_eq(uv_loop_init(&t.loop), 0);
    uv_timer_init(&t.loop, &t.deadline);
    uv_timer_init(&t.loop, &t.deliver);
    uv_timer_init(&t.loop, &t.heap_timer);
    uv_timer_init(&t.loop, &t.reboot_timer);
    uv_timer_init(&t.loop, &t.link_timer);
}

static struct flash_config config(void)
{
    return (struct flash_config){
        .method = FLASH_METHOD_UART,
        .window = 4,
        .timeout_ms = 50,
        .retries = 3,
        .wait_ms = 500,
        .health_s = 1,
        .openocd_timeout_ms = 1000,
        .openocd_command = "openocd",
        .openocd_config = "",
    };
}

static void open_flash(const struct flash_config *cfg)
{
    ck_assert_int_eq(flash_new(&t.flash, &t.loop, cfg, &hooks, NULL), 0);
}

/* Starts a flash of t.path and runs the loop until its outcome (or the
 * check's refusal), at most DEADLINE_MS. */
static void run_flash(bool confirm, bool force)
{
    struct flash_request req = {t.path, confirm, force};

    ck_assert_int_eq(flash_start(t.flash, &req, on_started, NULL), 0);
    uv_timer_start(&t.deadline, on_deadline, DEADLINE_MS, 0);
    uv_timer_start(&t.heap_timer, on_heap_timer, HEAP_EVERY, HEAP_EVERY);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t.deadline);
    uv_timer_stop(&t.heap_timer);
    ck_assert(t.started);
}

static void on_flash_closed(void *arg)
{
    (void)arg;
    t.closed = true;
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void teardown(void)
{
    if (t.flash != NULL)
        flash_close(t.flash, on_flash_closed, NULL);
    uv_close((uv_handle_t *)&t.deadline, close_cb);
    uv_close((uv_handle_t *)&t.deliver, close_cb);
    uv_close((uv_handle_t *)&t.heap_timer, close_cb);
    uv_close((uv_handle_t *)&t.reboot_timer, close_cb);
    uv_close((uv_handle_t *)&t.link_timer, close_cb);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    ck_assert(t.flash == NULL || t.closed);
    ck_assert_int_eq(uv_loop_close(&t.loop), 0);
}

/* Whatever the outcome, what the start did is undone. */
static void assert_undone(void)
{
    ck_assert(t.done);
    ck_assert(!t.paused);
    ck_assert(!t.expecting);
    ck_assert(!t.released);
    ck_assert(!flash_busy(t.flash));
    ck_assert_str_eq(t.last.state, "done");
}

static bool saw_state(const char *s)
{
    for (size_t i = 0; i < t.nstates; i++)
        if (strcmp(t.states[i], s) == 0)
            return true;
    return false;
}

/* ---- The image check ---- */

static int check(size_t len, const struct msg_hello *running, bool force,
                 char *why)
{
    struct image_hdr h;

    return flash_check_image(t.img, len, running, force, true, &h, why,
                             FLASH_WHY_MAX);
}

/* Re-encodes the header with a change made by fn. */
static void patch_header(void (*fn)(struct image_hdr *))
{
    struct image_hdr h;

    ck_assert_int_eq(image_decode(t.img, IMAGE_HDR_LEN, &h), 0);
    fn(&h);
    ck_assert_int_eq(image_encode(t.img, IMAGE_HDR_LEN, &h), IMAGE_HDR_LEN);
}

static void set_board_qemu(struct image_hdr *h)
{
    h->board = MSG_BOARD_MPS2_AN505;
}

static void set_long_body(struct image_hdr *h)
{
    h->body_len = BODY_LEN + 1;
}

static void set_empty_body(struct image_hdr *h)
{
    h->body_len = 0;
}

static void set_bad_entry(struct image_hdr *h)
{
    h->entry = BODY_LEN;
}

static void set_old_version(struct image_hdr *h)
{
    h->fw_version = V1;
}

START_TEST(test_check_accepts_a_good_image_and_returns_its_header)
{
    char why[FLASH_WHY_MAX];
    struct image_hdr h;

    ck_assert_int_eq(flash_check_image(t.img, sizeof(t.img), &t.hello, false,
                                       true, &h, why, sizeof(why)),
                     0);
    ck_assert_str_eq(why, "");
    ck_assert_uint_eq(h.fw_version, V2);
    ck_assert_uint_eq(h.body_len, BODY_LEN);
}
END_TEST

START_TEST(test_check_refuses_each_fault_with_its_own_code_and_message)
{
    char why[FLASH_WHY_MAX];
    struct msg_hello no_update = t.hello;

    ck_assert_int_eq(check(3, &t.hello, false, why), FLASH_EMAGIC);
    ck_assert_ptr_nonnull(strstr(why, "not_an_image: "));
    ck_assert_int_eq(check(40, &t.hello, false, why), FLASH_ETRUNCATED);
    ck_assert_ptr_nonnull(strstr(why, "truncated: 40 bytes"));
    ck_assert_int_eq(check(sizeof(t.img) - 1, &t.hello, false, why),
                     FLASH_ETRUNCATED);
    ck_assert_ptr_nonnull(strstr(why, "holds 4999 bytes"));

    t.img[1] ^= 0xff;
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why), FLASH_EMAGIC);
    t.img[1] ^= 0xff;
    t.img[4] = 2;
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why), FLASH_EHDRVER);
    ck_assert_ptr_nonnull(strstr(why, "header_version: header version 2"));
    t.img[4] = 1;
    t.img[10] ^= 1;
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why), FLASH_EHDRCRC);
    t.img[10] ^= 1;

    t.img[IMAGE_HDR_LEN + 100] ^= 1;
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why), FLASH_EHASH);
    ck_assert_ptr_nonnull(strstr(why, "bad_hash: "));
    /* force does not skip the hash. */
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, true, why), FLASH_EHASH);
    t.img[IMAGE_HDR_LEN + 100] ^= 1;

    no_update.caps = 0;
    ck_assert_int_eq(check(sizeof(t.img), &no_update, false, why),
                     FLASH_ENOUPDATE);
    ck_assert_int_eq(check(sizeof(t.img), NULL, false, why), FLASH_ENOHELLO);
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why), 0);
}
END_TEST

START_TEST(test_check_refuses_header_contradictions)
{
    char why[FLASH_WHY_MAX];
    uint8_t keep[sizeof(t.img)];

    memcpy(keep, t.img, sizeof(keep));
    patch_header(set_board_qemu);
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why), FLASH_EBOARD);
    ck_assert_str_eq(why, "wrong_board: the image is built for mps2-an505, "
                          "the MCU is tether-sim");
    memcpy(t.img, keep, sizeof(keep));
    patch_header(set_long_body);
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why),
                     FLASH_ETRUNCATED);
    memcpy(t.img, keep, sizeof(keep));
    patch_header(set_empty_body);
    ck_assert_int_eq(check(IMAGE_HDR_LEN, &t.hello, false, why), FLASH_EEMPTY);
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why),
                     FLASH_ETRAILING);
    ck_assert_ptr_nonnull(strstr(why, "5000 bytes follow the 0-byte body"));
    memcpy(t.img, keep, sizeof(keep));
    patch_header(set_bad_entry);
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why), FLASH_ELAYOUT);
    memcpy(t.img, keep, sizeof(keep));
}
END_TEST

START_TEST(test_check_refuses_an_image_not_newer_unless_forced)
{
    char why[FLASH_WHY_MAX];
    struct msg_hello newer = t.hello;

    patch_header(set_old_version);
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, false, why), FLASH_EOLDER);
    ck_assert_str_eq(why, "not_newer: the image is 0.1.0, the MCU runs 0.1.0 "
                          "(force to flash it anyway)");
    ck_assert_int_eq(check(sizeof(t.img), &t.hello, true, why), 0);
    newer.fw_version = 0x010000;
    ck_assert_int_eq(check(sizeof(t.img), &newer, false, why), FLASH_EOLDER);
    /* Forced, with no HELLO at all (a recovery by OpenOCD). */
    ck_assert_int_eq(check(sizeof(t.img), NULL, true, why), 0);
}
END_TEST

START_TEST(test_check_names_every_error)
{
    static const int codes[] = {
        FLASH_ETRUNCATED, FLASH_ETRAILING, FLASH_EMAGIC,   FLASH_EHDRVER,
        FLASH_EHDRCRC,    FLASH_EEMPTY,    FLASH_EBOARD,   FLASH_EHASH,
        FLASH_EOLDER,     FLASH_ENOUPDATE, FLASH_ENOHELLO, FLASH_ELAYOUT,
    };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        ck_assert_ptr_nonnull(flash_error_name(codes[i]));
    ck_assert_ptr_null(flash_error_name(0));
    ck_assert_ptr_null(flash_error_name(-ENOENT));
}
END_TEST

/* ---- Starting ---- */

START_TEST(test_start_refuses_bad_requests_and_a_second_flash)
{
    struct flash_config cfg = config();
    struct flash_request rel = {"v2.img", true, false};
    struct flash_request ok = {t.path, true, false};

    open_flash(&cfg);
    ck_assert_int_eq(flash_start(t.flash, &rel, on_started, NULL), -EINVAL);
    ck_assert_int_eq(flash_start(t.flash, &ok, on_started, NULL), 0);
    ck_assert(flash_busy(t.flash));
    ck_assert_int_eq(flash_start(t.flash, &ok, on_started, NULL), -EBUSY);
    uv_timer_start(&t.deadline, on_deadline, DEADLINE_MS, 0);
    uv_timer_start(&t.heap_timer, on_heap_timer, HEAP_EVERY, HEAP_EVERY);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    ck_assert_str_eq(t.outcome, "confirmed");
    ck_assert_int_eq(flash_start(t.flash, &ok, on_started, NULL), 0);
}
END_TEST

START_TEST(test_start_reports_a_refused_image_and_sends_nothing)
{
    struct flash_config cfg = config();

    t.img[IMAGE_HDR_LEN] ^= 1;
    write_image(sizeof(t.img));
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_int_eq(t.start_err, FLASH_EHASH);
    ck_assert_ptr_nonnull(strstr(t.start_why, "bad_hash"));
    ck_assert_uint_eq(t.seq, 0); /* not a frame */
    ck_assert(!t.done);
    ck_assert_uint_eq(t.pauses, 0);
    ck_assert(!flash_busy(t.flash));
}
END_TEST

START_TEST(test_start_reports_an_unreadable_file)
{
    struct flash_config cfg = config();

    snprintf(t.path, sizeof(t.path), "%s/none.img", t.dir);
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_int_eq(t.start_err, -ENOENT);
    snprintf(t.path, sizeof(t.path), "%s", t.dir);
    t.started = false;
    run_flash(true, false);
    ck_assert_int_eq(t.start_err, -EISDIR);
    ck_assert_uint_eq(t.seq, 0);
}
END_TEST

/* ---- The conversation ---- */

START_TEST(test_flash_uploads_boots_tests_and_confirms)
{
    struct flash_config cfg = config();

    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_int_eq(t.start_err, 0);
    ck_assert_msg(strcmp(t.outcome, "confirmed") == 0, "%s: %s", t.outcome,
                  t.why);
    assert_undone();
    ck_assert_int_eq(memcmp(t.body, t.img + IMAGE_HDR_LEN, BODY_LEN), 0);
    ck_assert_uint_eq(t.hello.fw_version, V2);
    ck_assert(!t.on_test);
    ck_assert_uint_eq(t.begins, 1);
    ck_assert_uint_eq(t.ends, 1);
    ck_assert_uint_eq(t.boots, 1);
    ck_assert_uint_eq(t.confirms, 1);
    ck_assert_uint_eq(t.reboots, 0);
    ck_assert_uint_eq(t.aborts, 0);
    ck_assert_uint_eq(t.last.resends, 0);
    ck_assert_uint_eq(t.last.bytes, BODY_LEN);
    ck_assert_uint_le(t.max_outstanding, 4);
    ck_assert_uint_eq(t.pauses, 2);
    ck_assert_uint_eq(t.expects, 2);
    ck_assert(saw_state("starting") && saw_state("uploading") &&
              saw_state("verifying") && saw_state("booting") &&
              saw_state("waiting") && saw_state("testing") &&
              saw_state("confirming"));
}
END_TEST

START_TEST(test_flash_keeps_no_more_chunks_in_flight_than_the_mcu_holds)
{
    struct flash_config cfg = config();

    cfg.window = 8;
    t.window = 2;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "confirmed");
    ck_assert_uint_eq(t.max_outstanding, 2);
}
END_TEST

START_TEST(test_flash_left_on_test_when_not_confirming)
{
    struct flash_config cfg = config();

    open_flash(&cfg);
    run_flash(false, false);
    ck_assert_str_eq(t.outcome, "testing");
    assert_undone();
    ck_assert(t.on_test);
    ck_assert_uint_eq(t.confirms, 0);
}
END_TEST

START_TEST(test_flash_goes_back_one_window_for_a_lost_chunk)
{
    struct flash_config cfg = config();

    t.drop_data = 5;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "confirmed");
    ck_assert_int_eq(memcmp(t.body, t.img + IMAGE_HDR_LEN, BODY_LEN), 0);
    /* The chunks behind the lost one were sent again, no more, and the
     * ones abandoned by the go-back still counted against the window
     * until answered: the MCU never held more than it can. */
    ck_assert_uint_ge(t.last.resends, 1);
    ck_assert_uint_le(t.last.resends, cfg.window);
    ck_assert_uint_le(t.max_outstanding, cfg.window);
}
END_TEST

START_TEST(test_flash_sends_again_after_lost_answers)
{
    struct flash_config cfg = config();

    t.drop_replies = 6;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_msg(strcmp(t.outcome, "confirmed") == 0, "%s: %s", t.outcome,
                  t.why);
    ck_assert_int_eq(memcmp(t.body, t.img + IMAGE_HDR_LEN, BODY_LEN), 0);
}
END_TEST

START_TEST(test_flash_fails_when_the_mcu_never_answers)
{
    struct flash_config cfg = config();

    t.silent = true;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "failed");
    ck_assert_str_eq(t.why, "no answer from the MCU to UPD_BEGIN after 4 "
                            "tries");
    assert_undone();
}
END_TEST

START_TEST(test_flash_fails_on_an_mcu_that_takes_no_updates)
{
    struct flash_config cfg = config();

    t.nack = true;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "failed");
    ck_assert_ptr_nonnull(strstr(t.why, "refused UPD_BEGIN"));
    assert_undone();
}
END_TEST

START_TEST(test_flash_fails_when_the_mcu_hash_differs_and_v1_stays)
{
    struct flash_config cfg = config();

    t.corrupt = true;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "failed");
    ck_assert_ptr_nonnull(strstr(t.why, "SHA-256"));
    ck_assert_ptr_nonnull(strstr(t.why, "0.1.0 keeps running"));
    ck_assert_uint_eq(t.boots, 0);
    ck_assert_uint_eq(t.hello.fw_version, V1);
    assert_undone();
}
END_TEST

START_TEST(test_flash_resumes_after_the_link_comes_back)
{
    struct flash_config cfg = config();

    t.cut_link_at = 9;
    t.link_down_ms = 100;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_msg(strcmp(t.outcome, "confirmed") == 0, "%s: %s", t.outcome,
                  t.why);
    ck_assert_uint_eq(t.last.resumes, 1);
    ck_assert_uint_eq(t.begins, 2);
    /* It went on from where the MCU stood: far fewer chunks than two
     * whole uploads. */
    ck_assert_uint_lt(t.datas, 2 * (BODY_LEN / MSG_UPD_CHUNK_MAX + 1));
    ck_assert_int_eq(memcmp(t.body, t.img + IMAGE_HDR_LEN, BODY_LEN), 0);
}
END_TEST

START_TEST(test_flash_fails_when_the_link_stays_down)
{
    struct flash_config cfg = config();

    t.cut_link_at = 4;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "failed");
    ck_assert_ptr_nonnull(strstr(t.why, "the link was down for 500 ms"));
    assert_undone();
}
END_TEST

START_TEST(test_flash_starts_over_after_the_mcu_resets_mid_upload)
{
    struct flash_config cfg = config();

    t.reset_at = 7;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_msg(strcmp(t.outcome, "confirmed") == 0, "%s: %s", t.outcome,
                  t.why);
    ck_assert_uint_ge(t.last.resumes, 1);
    ck_assert_int_eq(memcmp(t.body, t.img + IMAGE_HDR_LEN, BODY_LEN), 0);
}
END_TEST

START_TEST(test_flash_reverts_an_image_that_sends_no_telemetry)
{
    struct flash_config cfg = config();

    t.mute_new = true;
    cfg.health_s = 5; /* the gap of heap reports ends it first */
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "reverted");
    ck_assert_str_eq(t.why, "health gate: no heap report from the new image "
                            "within 3000 ms");
    ck_assert_uint_eq(t.reboots, 1);
    ck_assert_uint_eq(t.confirms, 0);
    ck_assert_uint_eq(t.hello.fw_version, V1);
    ck_assert(saw_state("reverting"));
    assert_undone();
}
END_TEST

START_TEST(test_flash_reverts_an_image_whose_heap_runs_low)
{
    struct flash_config cfg = config();

    t.new_free = HEAP_LOW - 100;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "reverted");
    ck_assert_str_eq(t.why, "health gate: free heap 1538 B below the "
                            "heap_low threshold 1638 B");
    ck_assert_uint_eq(t.hello.fw_version, V1);
    assert_undone();
}
END_TEST

START_TEST(test_flash_reverts_an_image_that_resets_during_the_gate)
{
    struct flash_config cfg = config();

    cfg.health_s = 3;
    t.crash_new_ms = 300;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "reverted");
    ck_assert_str_eq(t.why, "health gate: the new image reset (watchdog)");
    ck_assert_uint_eq(t.reboots, 0); /* the bootloader went back alone */
    ck_assert_uint_eq(t.hello.fw_version, V1);
    assert_undone();
}
END_TEST

/* Forced onto the running version, versions tell nothing apart: the
 * boot flags do. */
static void image_of_the_running_version(void)
{
    make_image(V1, MSG_BOARD_SIM);
    write_image(sizeof(t.img));
}

START_TEST(test_flash_forced_to_the_same_version_is_confirmed)
{
    struct flash_config cfg = config();

    image_of_the_running_version();
    open_flash(&cfg);
    run_flash(true, true);
    ck_assert_msg(strcmp(t.outcome, "confirmed") == 0, "%s: %s", t.outcome,
                  t.why);
    ck_assert_uint_eq(t.confirms, 1);
}
END_TEST

START_TEST(test_flash_of_an_image_the_bootloader_refuses_reports_the_revert)
{
    struct flash_config cfg = config();

    image_of_the_running_version();
    t.refuse_boot = true;
    open_flash(&cfg);
    run_flash(true, true);
    ck_assert_str_eq(t.outcome, "reverted");
    ck_assert_str_eq(t.why, "the bootloader did not start the new image and "
                            "went back to the previous one");
    ck_assert_uint_eq(t.confirms, 0);
    assert_undone();
}
END_TEST

START_TEST(test_flash_without_a_health_gate_confirms_at_once)
{
    struct flash_config cfg = config();

    cfg.health_s = 0;
    t.mute_new = true;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "confirmed");
    ck_assert(!saw_state("reverting"));
}
END_TEST

START_TEST(test_close_during_an_upload_ends_it_and_undoes_everything)
{
    struct flash_config cfg = config();
    struct flash_request req = {t.path, true, false};

    t.silent = true; /* nothing advances: the flash waits */
    cfg.timeout_ms = 5000;
    open_flash(&cfg);
    ck_assert_int_eq(flash_start(t.flash, &req, on_started, NULL), 0);
    uv_timer_start(&t.deadline, on_deadline, 200, 0);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    ck_assert(t.paused);
    ck_assert(flash_busy(t.flash));
    flash_close(t.flash, on_flash_closed, NULL);
    ck_assert_str_eq(t.outcome, "failed");
    ck_assert_str_eq(t.why, "tetherd is stopping");
    ck_assert(!t.paused && !t.expecting);
    t.flash = NULL;
    uv_run(&t.loop, UV_RUN_NOWAIT);
}
END_TEST

/* ---- OpenOCD ---- */

START_TEST(test_openocd_failing_is_reported_and_the_port_taken_back)
{
    struct flash_config cfg = config();

    cfg.method = FLASH_METHOD_OPENOCD;
    cfg.openocd_command = "/bin/false";
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "failed");
    ck_assert_str_eq(t.why, "OpenOCD exited with status 1");
    assert_undone();
    ck_assert_uint_eq(t.seq, 0); /* nothing over the link */
}
END_TEST

START_TEST(test_openocd_that_hangs_is_killed)
{
    struct flash_config cfg = config();

    char script[PATH_MAX + 16];
    FILE *f;

    /* A program that ignores its arguments and never ends. */
    snprintf(script, sizeof(script), "%s/hang", t.dir);
    f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#!/bin/sh\nexec sleep 30\n", f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(script, 0700), 0);
    cfg.method = FLASH_METHOD_OPENOCD;
    cfg.openocd_command = script;
    cfg.openocd_timeout_ms = 200;
    open_flash(&cfg);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "failed");
    ck_assert_str_eq(t.why, "OpenOCD did not finish within 200 ms");
    assert_undone();
}
END_TEST

START_TEST(test_openocd_that_cannot_start_is_reported)
{
    struct flash_config cfg = config();
    struct flash_request no_confirm = {t.path, false, false};

    cfg.method = FLASH_METHOD_OPENOCD;
    cfg.openocd_command = "/nonexistent/openocd";
    open_flash(&cfg);
    ck_assert_int_eq(flash_start(t.flash, &no_confirm, on_started, NULL),
                     -EINVAL);
    run_flash(true, false);
    ck_assert_str_eq(t.outcome, "failed");
    ck_assert_ptr_nonnull(strstr(t.why, "cannot run /nonexistent/openocd"));
    assert_undone();
}
END_TEST

static Suite *flash_suite(void)
{
    Suite *s = suite_create("flash");
    TCase *tc;

    tc = tcase_create("image check");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_check_accepts_a_good_image_and_returns_its_header);
    tcase_add_test(tc,
                   test_check_refuses_each_fault_with_its_own_code_and_message);
    tcase_add_test(tc, test_check_refuses_header_contradictions);
    tcase_add_test(tc, test_check_refuses_an_image_not_newer_unless_forced);
    tcase_add_test(tc, test_check_names_every_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("start");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_start_refuses_bad_requests_and_a_second_flash);
    tcase_add_test(tc, test_start_reports_a_refused_image_and_sends_nothing);
    tcase_add_test(tc, test_start_reports_an_unreadable_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("conversation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_flash_uploads_boots_tests_and_confirms);
    tcase_add_test(
        tc, test_flash_keeps_no_more_chunks_in_flight_than_the_mcu_holds);
    tcase_add_test(tc, test_flash_left_on_test_when_not_confirming);
    tcase_add_test(tc, test_flash_goes_back_one_window_for_a_lost_chunk);
    tcase_add_test(tc, test_flash_sends_again_after_lost_answers);
    tcase_add_test(tc, test_flash_fails_when_the_mcu_never_answers);
    tcase_add_test(tc, test_flash_fails_on_an_mcu_that_takes_no_updates);
    tcase_add_test(tc, test_flash_fails_when_the_mcu_hash_differs_and_v1_stays);
    tcase_add_test(tc, test_flash_resumes_after_the_link_comes_back);
    tcase_add_test(tc, test_flash_fails_when_the_link_stays_down);
    tcase_add_test(tc, test_flash_starts_over_after_the_mcu_resets_mid_upload);
    tcase_add_test(tc, test_flash_reverts_an_image_that_sends_no_telemetry);
    tcase_add_test(tc, test_flash_reverts_an_image_whose_heap_runs_low);
    tcase_add_test(tc, test_flash_reverts_an_image_that_resets_during_the_gate);
    tcase_add_test(tc, test_flash_forced_to_the_same_version_is_confirmed);
    tcase_add_test(
        tc, test_flash_of_an_image_the_bootloader_refuses_reports_the_revert);
    tcase_add_test(tc, test_flash_without_a_health_gate_confirms_at_once);
    tcase_add_test(tc,
                   test_close_during_an_upload_ends_it_and_undoes_everything);
    suite_add_tcase(s, tc);

    tc = tcase_create("openocd");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc,
                   test_openocd_failing_is_reported_and_the_port_taken_back);
    tcase_add_test(tc, test_openocd_that_hangs_is_killed);
    tcase_add_test(tc, test_openocd_that_cannot_start_is_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dtest_run(flash_suite());
}
