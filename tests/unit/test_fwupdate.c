/* The update handler inside the firmware core (mcu-firmware/update/
 * fwupdate.c with core/fw.c) on the fake port's in-memory flash: whole
 * uploads with a window of chunks, test boot, confirm and revert, every
 * error a sender can provoke, injected storage faults, and the pause of
 * telemetry while an upload holds the line. */
#include <setjmp.h>
#include <string.h>

#include "boot.h"
#include "frame.h"
#include "fw.h"
#include "fwupdate.h"
#include "msg.h"
#include "port_fake.h"
#include "sha256.h"
#include "suites.h"
#include "update.h"

#define SEEN_MAX 2048u
#define BODY_LEN 3000u /* 13 chunks, the last one short */

struct seen {
    uint8_t type;
    size_t len;
    uint8_t payload[FRAME_PAYLOAD_MAX];
};

static struct seen seen[SEEN_MAX];
static size_t nseen;
static uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
static struct frame_rx host_rx;
static uint16_t host_seq;
static uint8_t body[BODY_LEN];
static struct image_hdr hdr;
static uint8_t hdr_raw[IMAGE_HDR_LEN];

static void drain(void)
{
    struct frame f;
    int b;

    while ((b = fw_uart_tx_next()) >= 0) {
        if (frame_rx_push(&host_rx, (uint8_t)b, &f) != FRAME_RX_OK)
            continue;
        ck_assert_uint_lt(nseen, SEEN_MAX);
        seen[nseen].type = f.type;
        seen[nseen].len = f.len;
        memcpy(seen[nseen].payload, f.payload, f.len);
        nseen++;
    }
}

static void poll_once(void)
{
    port_fake.now_us += 1000;
    (void)fw_poll();
    drain();
}

static void run_ms(unsigned ms)
{
    for (unsigned i = 0; i < ms; i++)
        poll_once();
}

static void start_core(void)
{
    struct fw_options o;

    fw_defaults(&o);
    o.heap_period_ms = 100;
    frame_rx_init(&host_rx, rxbuf, sizeof(rxbuf));
    fw_init(&o);
    drain();
}

/* A board with update storage, fresh from the factory, and an image. */
static void boot_with_flash(void)
{
    struct boot_record r;

    memset(&port_fake, 0, sizeof(port_fake));
    port_fake.now_us = 1000;
    port_fake.reset_cause = MSG_RESET_POWER_ON;
    port_fake.flash = true;
    nseen = 0;
    host_seq = 500;
    for (size_t i = 0; i < BODY_LEN; i++)
        body[i] = (uint8_t)(i * 7u + (i >> 8));
    memset(&hdr, 0, sizeof(hdr));
    hdr.magic = IMAGE_MAGIC;
    hdr.hdr_version = IMAGE_HDR_VERSION;
    hdr.board = PORT_BOARD_ID;
    hdr.fw_version = 0x000200;
    hdr.build_id = 0xabcdef01;
    hdr.body_len = BODY_LEN;
    sha256_digest(body, BODY_LEN, hdr.hash);
    ck_assert_int_eq(image_encode(hdr_raw, sizeof(hdr_raw), &hdr),
                     (int)IMAGE_HDR_LEN);
    ck_assert_uint_eq(boot_select(&r), BOOT_FACTORY); /* the bootloader */
    start_core();
}

/* Queues one request as the UART would deliver it; returns its seq. */
static uint16_t put(uint8_t type, const uint8_t *p, size_t n)
{
    uint8_t w[FRAME_WIRE_MAX];
    int len = frame_encode(w, sizeof(w), type, host_seq, p, n);

    ck_assert_int_gt(len, 0);
    for (int i = 0; i < len; i++)
        fw_uart_rx(w[i]);
    return host_seq++;
}

static uint16_t put_data(uint32_t offset)
{
    uint8_t p[FRAME_PAYLOAD_MAX];
    uint32_t left = BODY_LEN - offset;
    struct msg_upd_data d = {offset, &body[offset],
                             left < MSG_UPD_CHUNK_MAX ? left
                                                      : MSG_UPD_CHUNK_MAX};
    int n = msg_encode_upd_data(p, sizeof(p), &d);

    ck_assert_int_gt(n, 0);
    return put(MSG_UPD_DATA, p, (size_t)n);
}

/* The UPD_STATUS answering seq (1), or a NACK's code in *nack (0). */
static int answer(uint16_t seq, struct msg_upd_status *st, uint8_t *nack)
{
    struct msg_ack a;

    for (size_t i = 0; i < nseen; i++) {
        if (seen[i].type == MSG_UPD_STATUS &&
            msg_decode_upd_status(seen[i].payload, seen[i].len, st) == 0 &&
            st->req_seq == seq)
            return 1;
        if (seen[i].type == MSG_NACK &&
            msg_decode_nack(seen[i].payload, seen[i].len, &a) == 0 &&
            a.seq == seq) {
            *nack = a.error;
            return 0;
        }
    }
    ck_abort_msg("no answer to seq %u", seq);
    return -1;
}

/* Sends a request, runs the core once, returns the status's error. */
static uint8_t request(uint8_t type, const uint8_t *p, size_t n,
                       struct msg_upd_status *st)
{
    uint16_t s = put(type, p, n);
    uint8_t nack = 0;

    poll_once();
    ck_assert_msg(answer(s, st, &nack) == 1, "NACK %u to type 0x%02x", nack,
                  type);
    ck_assert_uint_eq(st->req_type, type);
    return st->error;
}

static uint8_t nack_of(uint8_t type, const uint8_t *p, size_t n)
{
    struct msg_upd_status st;
    uint16_t s = put(type, p, n);
    uint8_t nack = 0;

    poll_once();
    ck_assert_int_eq(answer(s, &st, &nack), 0);
    return nack;
}

static size_t count(uint8_t type, size_t from)
{
    size_t n = 0;

    for (size_t i = from; i < nseen; i++)
        n += seen[i].type == type;
    return n;
}

static struct msg_hello last_hello(void)
{
    struct msg_hello h;

    for (size_t i = nseen; i-- > 0;)
        if (seen[i].type == MSG_HELLO) {
            ck_assert_int_eq(msg_decode_hello(seen[i].payload, seen[i].len, &h),
                             0);
            return h;
        }
    ck_abort_msg("no HELLO");
    return h;
}

/* The whole body with a window of four DATA frames in flight: each poll
 * answers what arrived, and the sender tops the window up. */
static void upload_all(void)
{
    struct msg_upd_status st;
    uint32_t next = 0, acked = 0;
    uint16_t seqs[64];
    uint32_t offs[64];
    size_t sent = 0, done = 0;
    uint8_t nack;

    while (acked < BODY_LEN) {
        while (next < BODY_LEN && sent - done < 4) {
            offs[sent] = next;
            seqs[sent++] = put_data(next);
            next += BODY_LEN - next < MSG_UPD_CHUNK_MAX ? BODY_LEN - next
                                                        : MSG_UPD_CHUNK_MAX;
        }
        poll_once();
        while (done < sent) {
            ck_assert_int_eq(answer(seqs[done], &st, &nack), 1);
            ck_assert_uint_eq(st.error, MSG_UPD_OK);
            ck_assert_uint_gt(st.stored, offs[done]);
            acked = st.stored;
            done++;
        }
    }
    ck_assert_uint_eq(acked, BODY_LEN);
}

static void begin_ok(void)
{
    struct msg_upd_status st;

    ck_assert_uint_eq(request(MSG_UPD_BEGIN, hdr_raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_RECEIVING);
    ck_assert_uint_eq(st.stored, 0);
    ck_assert_uint_eq(st.body_len, BODY_LEN);
}

/* BOOT, then the reset it causes, the bootloader, and the new image's
 * start; returns the image the bootloader chose. */
static uint8_t boot_new_image(void)
{
    struct msg_upd_status st;
    struct boot_record r;
    jmp_buf env;
    uint16_t s;
    uint8_t nack = 0;

    port_fake.reset_to = &env;
    if (setjmp(env) == 0) {
        s = put(MSG_UPD_BOOT, NULL, 0);
        poll_once();
        ck_assert_int_eq(answer(s, &st, &nack), 1);
        ck_assert_uint_eq(st.error, MSG_UPD_OK);
        ck_assert_uint_eq(st.state, MSG_UPD_BOOTING);
        run_ms(300);
        ck_abort_msg("UPD_BOOT did not reset");
    }
    port_fake.reset_to = NULL;
    port_fake.reset_cause = MSG_RESET_SOFTWARE;
    nseen = 0;
    return boot_select(&r);
}

/* REBOOT from the daemon, then the bootloader; returns its choice. */
static uint8_t reboot(void)
{
    struct boot_record r;
    jmp_buf env;

    port_fake.reset_to = &env;
    if (setjmp(env) == 0) {
        put(MSG_REBOOT, NULL, 0);
        run_ms(300);
        ck_abort_msg("REBOOT did not reset");
    }
    port_fake.reset_to = NULL;
    nseen = 0;
    return boot_select(&r);
}

START_TEST(test_fwupdate_without_storage_nacks_and_hello_has_no_caps)
{
    boot_with_flash();
    port_fake.flash = false;
    start_core();
    ck_assert_uint_eq(last_hello().caps & (MSG_CAP_UPDATE | MSG_CAP_TESTING),
                      0);
    ck_assert_uint_eq(nack_of(MSG_UPD_QUERY, NULL, 0), MSG_NACK_UNSUPPORTED);
    ck_assert_uint_eq(nack_of(MSG_UPD_BEGIN, hdr_raw, IMAGE_HDR_LEN),
                      MSG_NACK_UNSUPPORTED);
    ck_assert(!fwupdate_busy());
}
END_TEST

START_TEST(test_fwupdate_upload_boot_confirm_runs_the_new_image)
{
    struct msg_upd_status st;
    struct msg_hello h;

    boot_with_flash();
    h = last_hello();
    ck_assert_uint_eq(h.caps & (MSG_CAP_UPDATE | MSG_CAP_TESTING),
                      MSG_CAP_UPDATE);
    ck_assert_uint_eq(h.rx_max, FRAME_PAYLOAD_MAX);
    ck_assert_uint_eq(request(MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY);
    ck_assert_uint_eq(st.chunk_max, MSG_UPD_CHUNK_MAX);
    ck_assert_uint_eq(st.window, 4);
    ck_assert_uint_eq(st.fw_version, FW_VERSION);

    begin_ok();
    upload_all();
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_VERIFIED);
    ck_assert_mem_eq(port_fake.slot[0], body, BODY_LEN);
    /* A repeated END (its answer lost) is answered the same way. */
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_VERIFIED);

    ck_assert_uint_eq(boot_new_image(), 0);
    start_core();
    h = last_hello();
    ck_assert_uint_eq(h.reset_cause, MSG_RESET_SOFTWARE);
    ck_assert_uint_eq(h.caps & (MSG_CAP_UPDATE | MSG_CAP_TESTING),
                      MSG_CAP_UPDATE | MSG_CAP_TESTING);
    ck_assert_uint_eq(request(MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_TEST);

    ck_assert_uint_eq(request(MSG_UPD_CONFIRM, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, 0); /* slot 0, confirmed */
    ck_assert_uint_eq(port_fake.rec.active, 0);
    /* A repeated CONFIRM says not_on_test; the flags tell why. */
    ck_assert_uint_eq(request(MSG_UPD_CONFIRM, NULL, 0, &st), MSG_UPD_ENOTEST);
    ck_assert_uint_eq(st.boot, 0);

    /* The confirmed image is what every later reset starts. */
    port_fake.reset_cause = MSG_RESET_SOFTWARE;
    ck_assert_uint_eq(reboot(), 0);
    ck_assert_uint_eq(reboot(), 0);
    ck_assert_uint_eq(port_fake.misuses, 0);
}
END_TEST

START_TEST(test_fwupdate_unconfirmed_image_is_reverted_at_the_next_reset)
{
    struct msg_upd_status st;

    boot_with_flash();
    begin_ok();
    upload_all();
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(boot_new_image(), 0);
    start_core();
    /* The health gate fails: the daemon reboots it without CONFIRM. */
    ck_assert_uint_eq(reboot(), BOOT_FACTORY);
    start_core();
    ck_assert_uint_eq(last_hello().caps & MSG_CAP_TESTING, 0);
    ck_assert_uint_eq(request(MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.boot, MSG_UPD_BOOT_FACTORY | MSG_UPD_BOOT_REVERTED);
    ck_assert_uint_eq(request(MSG_UPD_CONFIRM, NULL, 0, &st), MSG_UPD_ENOTEST);
    ck_assert_uint_eq(reboot(), BOOT_FACTORY);
}
END_TEST

START_TEST(test_fwupdate_corruption_in_storage_fails_end_and_changes_nothing)
{
    struct msg_upd_status st;

    boot_with_flash();
    port_fake.flip_at_plus1 = 1000 + 1;
    begin_ok();
    upload_all();
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_EHASH);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);
    ck_assert_uint_eq(st.stored, 0);
    ck_assert_uint_eq(request(MSG_UPD_BOOT, NULL, 0, &st), MSG_UPD_ESTATE);
    ck_assert_uint_eq(port_fake.rec.pending, BOOT_FACTORY);
    ck_assert_uint_eq(reboot(), BOOT_FACTORY);
}
END_TEST

START_TEST(test_fwupdate_lost_frame_in_a_window_goes_back_to_stored)
{
    struct msg_upd_status st;
    uint16_t s0, s2, s3, again;
    uint8_t nack;

    boot_with_flash();
    begin_ok();
    s0 = put_data(0);
    /* The frame at 242 is lost on the line. */
    s2 = put_data(2 * MSG_UPD_CHUNK_MAX);
    s3 = put_data(3 * MSG_UPD_CHUNK_MAX);
    poll_once();
    ck_assert_int_eq(answer(s0, &st, &nack), 1);
    ck_assert_uint_eq(st.error, MSG_UPD_OK);
    ck_assert_int_eq(answer(s2, &st, &nack), 1);
    ck_assert_uint_eq(st.error, MSG_UPD_EOFFSET);
    ck_assert_uint_eq(st.stored, MSG_UPD_CHUNK_MAX);
    ck_assert_int_eq(answer(s3, &st, &nack), 1);
    ck_assert_uint_eq(st.error, MSG_UPD_EOFFSET);
    /* A duplicate of a stored chunk is ignored the same way. */
    again = put_data(0);
    poll_once();
    ck_assert_int_eq(answer(again, &st, &nack), 1);
    ck_assert_uint_eq(st.error, MSG_UPD_EOFFSET);
    ck_assert_uint_eq(st.stored, MSG_UPD_CHUNK_MAX);
    /* Go back to stored and finish. */
    for (uint32_t off = MSG_UPD_CHUNK_MAX; off < BODY_LEN;
         off += MSG_UPD_CHUNK_MAX) {
        put_data(off);
        poll_once();
    }
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(port_fake.misuses, 0);
}
END_TEST

START_TEST(test_fwupdate_same_begin_resumes_and_another_starts_over)
{
    struct msg_upd_status st;
    struct image_hdr other;
    uint8_t other_raw[IMAGE_HDR_LEN];
    unsigned erases;

    boot_with_flash();
    begin_ok();
    for (uint32_t off = 0; off < 5 * MSG_UPD_CHUNK_MAX;
         off += MSG_UPD_CHUNK_MAX) {
        put_data(off);
        poll_once();
    }
    erases = port_fake.erases;
    /* The link drops; later the sender comes back with the same BEGIN. */
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, hdr_raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_OK);
    ck_assert_uint_eq(st.stored, 5 * MSG_UPD_CHUNK_MAX);
    ck_assert_uint_eq(st.state, MSG_UPD_RECEIVING);
    ck_assert_uint_eq(port_fake.erases, erases);
    /* A BEGIN that fails its checks keeps the upload under way. */
    hdr_raw[30] ^= 1u;
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, hdr_raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_EHEADER);
    hdr_raw[30] ^= 1u;
    ck_assert_uint_eq(st.stored, 5 * MSG_UPD_CHUNK_MAX);
    /* Another image starts over. */
    other = hdr;
    other.fw_version = 0x000201;
    image_encode(other_raw, sizeof(other_raw), &other);
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, other_raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_OK);
    ck_assert_uint_eq(st.stored, 0);
    ck_assert_uint_eq(port_fake.erases, erases + 1);
    /* ABORT forgets it. */
    ck_assert_uint_eq(request(MSG_UPD_ABORT, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);
    put_data(0);
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_ESTATE);
    ck_assert_uint_eq(st.stored, 0);
}
END_TEST

START_TEST(test_fwupdate_bad_headers_and_requests_out_of_order_are_refused)
{
    struct msg_upd_status st;
    struct image_hdr h;
    uint8_t raw[IMAGE_HDR_LEN + 4], p[8] = {0};

    boot_with_flash();
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_ESTATE);
    ck_assert_uint_eq(request(MSG_UPD_BOOT, NULL, 0, &st), MSG_UPD_ESTATE);
    ck_assert_uint_eq(request(MSG_UPD_CONFIRM, NULL, 0, &st), MSG_UPD_ENOTEST);
    msg_encode_u32(p, sizeof(p), 0);
    p[4] = 0x55;
    ck_assert_uint_eq(request(MSG_UPD_DATA, p, 5, &st), MSG_UPD_ESTATE);

    memcpy(raw, hdr_raw, IMAGE_HDR_LEN);
    raw[0] = 'X';
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_EHEADER);
    h = hdr;
    h.board = MSG_BOARD_STM32U585;
    image_encode(raw, sizeof(raw), &h);
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_EBOARD);
    h = hdr;
    h.body_len = PORT_SLOT_SIZE + 1u;
    image_encode(raw, sizeof(raw), &h);
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_ESIZE);
    h.body_len = 0;
    image_encode(raw, sizeof(raw), &h);
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_ESIZE);
    h = hdr;
    h.flags = IMAGE_FLAG_RAM;
    h.load_addr = 0x20000000u;
    image_encode(raw, sizeof(raw), &h);
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_ELAYOUT);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);

    ck_assert_uint_eq(nack_of(MSG_UPD_BEGIN, hdr_raw, IMAGE_HDR_LEN - 1),
                      MSG_NACK_BAD_LENGTH);
    ck_assert_uint_eq(nack_of(MSG_UPD_DATA, p, 3), MSG_NACK_BAD_LENGTH);
    ck_assert_uint_eq(nack_of(MSG_UPD_DATA, p, 4), MSG_NACK_BAD_VALUE);
    ck_assert_uint_eq(nack_of(0x87, NULL, 0), MSG_NACK_UNKNOWN_TYPE);
    ck_assert_uint_eq(nack_of(MSG_UPD_STATUS, NULL, 0), MSG_NACK_UNKNOWN_TYPE);

    /* Data past the end of the body. */
    begin_ok();
    upload_all();
    ck_assert_uint_eq(request(MSG_UPD_DATA, p, 5, &st), MSG_UPD_EOFFSET);
    msg_encode_u32(p, sizeof(p), BODY_LEN);
    ck_assert_uint_eq(request(MSG_UPD_DATA, p, 5, &st), MSG_UPD_ESIZE);
    ck_assert_uint_eq(port_fake.misuses, 0);
}
END_TEST

START_TEST(test_fwupdate_begin_is_refused_while_the_image_is_on_test)
{
    struct msg_upd_status st;

    boot_with_flash();
    begin_ok();
    upload_all();
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(boot_new_image(), 0);
    start_core();
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, hdr_raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_ESTATE);
    ck_assert(!fwupdate_busy());
    /* Once confirmed, the next upload goes to the other slot. */
    ck_assert_uint_eq(request(MSG_UPD_CONFIRM, NULL, 0, &st), MSG_UPD_OK);
    begin_ok();
    upload_all();
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_mem_eq(port_fake.slot[1], body, BODY_LEN);
    ck_assert_uint_eq(boot_new_image(), 1);
}
END_TEST

START_TEST(test_fwupdate_storage_faults_answer_write_failed)
{
    struct msg_upd_status st;

    boot_with_flash();
    port_fake.fail_erase = true;
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, hdr_raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_EWRITE);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);
    port_fake.fail_erase = false;

    begin_ok();
    port_fake.fail_write = true;
    put_data(0);
    poll_once();
    port_fake.fail_write = false;
    ck_assert_uint_eq(request(MSG_UPD_QUERY, NULL, 0, &st), MSG_UPD_OK);
    ck_assert_uint_eq(st.state, MSG_UPD_IDLE);

    begin_ok();
    upload_all();
    port_fake.fail_read = true;
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_EWRITE);
    port_fake.fail_read = false;

    begin_ok();
    upload_all();
    ck_assert_uint_eq(request(MSG_UPD_END, NULL, 0, &st), MSG_UPD_OK);
    port_fake.fail_store = true;
    ck_assert_uint_eq(request(MSG_UPD_BOOT, NULL, 0, &st), MSG_UPD_EWRITE);
    ck_assert_uint_eq(st.state, MSG_UPD_VERIFIED);
    ck_assert_uint_eq(port_fake.rec.pending, BOOT_FACTORY);
    port_fake.fail_store = false;
    ck_assert_uint_eq(boot_new_image(), 0);
}
END_TEST

START_TEST(test_fwupdate_telemetry_pauses_while_an_upload_holds_the_line)
{
    struct msg_upd_status st;
    size_t from;

    boot_with_flash();
    run_ms(300);
    ck_assert_uint_gt(count(MSG_ADC, 0), 0);
    ck_assert_uint_gt(count(MSG_HEAP, 0), 0);
    begin_ok();
    from = nseen;
    for (int i = 0; i < 5; i++) {
        put_data((uint32_t)i * MSG_UPD_CHUNK_MAX);
        run_ms(100);
    }
    ck_assert(fwupdate_busy());
    ck_assert_uint_eq(count(MSG_ADC, from), 0);
    ck_assert_uint_eq(count(MSG_HEAP, from), 0);
    ck_assert_uint_eq(count(MSG_STATS, from), 0);
    ck_assert_uint_eq(count(MSG_UPD_STATUS, from), 5);

    /* The sender goes silent: after FWUPDATE_PAUSE_US telemetry comes
     * back, and the upload is still there to resume. */
    run_ms(FWUPDATE_PAUSE_US / 1000u + 300u);
    ck_assert(!fwupdate_busy());
    ck_assert_uint_gt(count(MSG_ADC, from), 0);
    ck_assert_uint_gt(count(MSG_HEAP, from), 0);
    ck_assert_uint_eq(request(MSG_UPD_BEGIN, hdr_raw, IMAGE_HDR_LEN, &st),
                      MSG_UPD_OK);
    ck_assert_uint_eq(st.stored, 5 * MSG_UPD_CHUNK_MAX);
    ck_assert(fwupdate_busy());
    from = nseen;
    run_ms(300);
    ck_assert_uint_eq(count(MSG_ADC, from), 0);

    /* ABORT ends the pause at once. */
    ck_assert_uint_eq(request(MSG_UPD_ABORT, NULL, 0, &st), MSG_UPD_OK);
    from = nseen;
    run_ms(300);
    ck_assert_uint_gt(count(MSG_ADC, from), 0);
    ck_assert_uint_gt(count(MSG_HEAP, from), 0);
}
END_TEST

Suite *fwupdate_suite(void)
{
    Suite *s = suite_create("fwupdate");
    TCase *tc = tcase_create("upload");
    TCase *err = tcase_create("errors");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fwupdate_upload_boot_confirm_runs_the_new_image);
    tcase_add_test(
        tc, test_fwupdate_unconfirmed_image_is_reverted_at_the_next_reset);
    tcase_add_test(tc,
                   test_fwupdate_lost_frame_in_a_window_goes_back_to_stored);
    tcase_add_test(tc,
                   test_fwupdate_same_begin_resumes_and_another_starts_over);
    tcase_add_test(
        tc, test_fwupdate_telemetry_pauses_while_an_upload_holds_the_line);
    suite_add_tcase(s, tc);
    tcase_set_timeout(err, 30);
    tcase_add_test(err,
                   test_fwupdate_without_storage_nacks_and_hello_has_no_caps);
    tcase_add_test(
        err, test_fwupdate_corruption_in_storage_fails_end_and_changes_nothing);
    tcase_add_test(
        err, test_fwupdate_bad_headers_and_requests_out_of_order_are_refused);
    tcase_add_test(err,
                   test_fwupdate_begin_is_refused_while_the_image_is_on_test);
    tcase_add_test(err, test_fwupdate_storage_faults_answer_write_failed);
    suite_add_tcase(s, err);
    return s;
}
