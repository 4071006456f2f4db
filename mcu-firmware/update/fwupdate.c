/* The update handler of the running firmware.  See fwupdate.h and
 * docs/UPDATE.md.
 *
 * The Linux side leads; this side keeps one upload at a time in RAM (its
 * header, the slot it goes to, how many bytes are stored) and the boot
 * record, and answers every request with one UPD_STATUS that says all of
 * it.  Requests may come twice (a lost answer), out of order (a frame lost
 * to a CRC error: the rest of the window arrives after the gap), or after
 * a silence (the link dropped and came back): a repeated BEGIN resumes, a
 * chunk anywhere but at `stored` is ignored and answered with where to
 * continue, a repeated END is answered again.  A reset forgets the upload;
 * only the boot record survives it.
 *
 * Nothing but the port's storage verbs touches the slots, so this file
 * runs unchanged on every port that has them. */
#include "fwupdate.h"

#include <string.h>

#include "boot.h"
#include "fw.h"
#include "msg.h"
#include "port.h"
#include "update.h"

/* The largest chunk a frame this MCU accepts can carry. */
#define CHUNK_MAX                                                              \
    (PORT_RX_PAYLOAD_MAX - MSG_UPD_DATA_HDR_LEN < MSG_UPD_CHUNK_MAX            \
         ? PORT_RX_PAYLOAD_MAX - MSG_UPD_DATA_HDR_LEN                          \
         : MSG_UPD_CHUNK_MAX)
/* Frames of the longest kind that the receive FIFO holds whole: a sender
 * that keeps no more than this unanswered can never overrun it, however
 * long the loop is away (a flash erase, say). */
#define WINDOW_FIT ((PORT_RXQ_SIZE - 1u) / FRAME_WIRE_MAX)
#define WINDOW                                                                 \
    (WINDOW_FIT < FWUPDATE_WINDOW_MAX ? WINDOW_FIT : FWUPDATE_WINDOW_MAX)

_Static_assert(PORT_RX_PAYLOAD_MAX >= FRAME_PAYLOAD_MAX,
               "an updatable port must accept full UPD_DATA frames");
_Static_assert(WINDOW_FIT >= 1u, "the RX FIFO must hold one whole frame");
_Static_assert(PORT_SLOT_SIZE > 0u, "an updatable port has slots");

static struct {
    struct boot_record rec;         /* as stored, or about to be */
    struct image_hdr hdr;           /* of the upload */
    uint8_t hdr_raw[IMAGE_HDR_LEN]; /* as received: a resume repeats it */
    uint32_t stored;                /* body bytes written, from 0 */
    uint32_t last_us;               /* time of the last request */
    uint8_t state;                  /* enum msg_upd_state */
    uint8_t slot;                   /* where the upload goes */
    bool enabled;                   /* the port has update storage */
} upd;

static void nack(const struct frame *f, uint8_t code)
{
    struct msg_ack a = {f->seq, f->type, code};
    uint8_t p[MSG_NACK_LEN];
    int n = msg_encode_nack(p, sizeof(p), &a);

    if (n > 0)
        (void)fw_send_reply(MSG_NACK, p, (size_t)n);
}

static void status(const struct frame *f, uint8_t error)
{
    struct msg_upd_status m = {
        .req_seq = f->seq,
        .req_type = f->type,
        .state = upd.state,
        .error = error,
        .boot = boot_flags(&upd.rec),
        .chunk_max = CHUNK_MAX,
        .stored = upd.state == MSG_UPD_IDLE ? 0 : upd.stored,
        .body_len = upd.state == MSG_UPD_IDLE ? 0 : upd.hdr.body_len,
        .fw_version = FW_VERSION,
        .window = WINDOW,
    };
    uint8_t p[MSG_UPD_STATUS_LEN];
    int n = msg_encode_upd_status(p, sizeof(p), &m);

    if (n > 0)
        (void)fw_send_reply(MSG_UPD_STATUS, p, (size_t)n);
}

static void forget(void)
{
    upd.state = MSG_UPD_IDLE;
    upd.stored = 0;
}

/* Seals and stores the record; on failure the RAM copy goes back to
 * before, so that RAM never claims what the medium does not hold. */
static bool store(const struct boot_record *before)
{
    boot_record_seal(&upd.rec);
    if (port_boot_store(&upd.rec) == 0)
        return true;
    upd.rec = *before;
    return false;
}

static uint8_t check_header(const struct frame *f, struct image_hdr *h)
{
    if (image_decode(f->payload, f->len, h) != 0)
        return MSG_UPD_EHEADER;
    if (h->board != PORT_BOARD_ID)
        return MSG_UPD_EBOARD;
    if (h->body_len == 0 || h->body_len > PORT_SLOT_SIZE)
        return MSG_UPD_ESIZE;
    if (port_image_check(h) != 0)
        return MSG_UPD_ELAYOUT;
    return MSG_UPD_OK;
}

static uint8_t begin(const struct frame *f)
{
    struct boot_record before = upd.rec;
    struct image_hdr h;
    uint8_t err, slot;

    if (upd.state != MSG_UPD_IDLE && upd.state != MSG_UPD_BOOTING &&
        memcmp(f->payload, upd.hdr_raw, IMAGE_HDR_LEN) == 0)
        return MSG_UPD_OK; /* the same upload: resume where it stands */
    err = check_header(f, &h);
    if (err != MSG_UPD_OK)
        return err; /* the upload under way, if any, is kept */
    slot = boot_target_slot(&upd.rec);
    if (upd.state == MSG_UPD_BOOTING ||
        (boot_flags(&upd.rec) & MSG_UPD_BOOT_TEST) != 0 || slot == BOOT_FACTORY)
        return MSG_UPD_ESTATE;
    forget();
    /* The record must not call the slot anything but empty once its
     * bytes start to change. */
    if (upd.rec.slot[slot].state != BOOT_SLOT_EMPTY ||
        upd.rec.pending == slot) {
        upd.rec.slot[slot].state = BOOT_SLOT_EMPTY;
        if (upd.rec.pending == slot)
            upd.rec.pending = BOOT_FACTORY;
        if (!store(&before))
            return MSG_UPD_EWRITE;
    }
    if (port_slot_erase(slot, h.body_len) != 0)
        return MSG_UPD_EWRITE;
    upd.hdr = h;
    memcpy(upd.hdr_raw, f->payload, IMAGE_HDR_LEN);
    upd.slot = slot;
    upd.state = MSG_UPD_RECEIVING;
    return MSG_UPD_OK;
}

static uint8_t data(const struct msg_upd_data *d)
{
    if (upd.state != MSG_UPD_RECEIVING)
        return MSG_UPD_ESTATE;
    if (d->offset != upd.stored)
        return MSG_UPD_EOFFSET;
    if (d->len > upd.hdr.body_len - upd.stored)
        return MSG_UPD_ESIZE;
    if (port_slot_write(upd.slot, upd.stored, d->data, (uint16_t)d->len) != 0) {
        forget(); /* the sender starts over with BEGIN, which erases */
        return MSG_UPD_EWRITE;
    }
    upd.stored += (uint32_t)d->len;
    return MSG_UPD_OK;
}

static uint8_t end(void)
{
    int r;

    if (upd.state == MSG_UPD_VERIFIED)
        return MSG_UPD_OK; /* a repeat: its answer was lost */
    if (upd.state != MSG_UPD_RECEIVING || upd.stored != upd.hdr.body_len)
        return MSG_UPD_ESTATE;
    /* What the slot holds, read back, not what passed through RAM: the
     * hash is the check of the whole path down to the medium. */
    r = boot_slot_verify(upd.slot, upd.hdr.body_len, upd.hdr.hash);
    if (r != 0) {
        forget();
        return r == BOOT_EHASH ? MSG_UPD_EHASH : MSG_UPD_EWRITE;
    }
    upd.state = MSG_UPD_VERIFIED;
    return MSG_UPD_OK;
}

static uint8_t boot(void)
{
    struct boot_record before = upd.rec;

    if (upd.state != MSG_UPD_VERIFIED)
        return MSG_UPD_ESTATE;
    boot_set_pending(&upd.rec, upd.slot, &upd.hdr);
    if (!store(&before))
        return MSG_UPD_EWRITE;
    upd.state = MSG_UPD_BOOTING;
    fw_reboot(); /* after this answer has gone out */
    return MSG_UPD_OK;
}

static uint8_t confirm(void)
{
    struct boot_record before = upd.rec;

    if (!boot_confirm(&upd.rec))
        return MSG_UPD_ENOTEST;
    return store(&before) ? MSG_UPD_OK : MSG_UPD_EWRITE;
}

void fwupdate_init(void)
{
    int r;

    memset(&upd, 0, sizeof(upd));
    r = port_boot_load(&upd.rec);
    upd.enabled = r != PORT_ENOSTORAGE;
    if (r != 0 || !boot_record_valid(&upd.rec))
        boot_record_init(&upd.rec);
    upd.state = MSG_UPD_IDLE;
}

void fwupdate_handle(const struct frame *f)
{
    struct msg_upd_data d;
    int r;

    if (!upd.enabled) {
        nack(f, MSG_NACK_UNSUPPORTED);
        return;
    }
    upd.last_us = port_time_us();
    switch (f->type) {
    case MSG_UPD_BEGIN:
        if (f->len < IMAGE_HDR_LEN)
            nack(f, MSG_NACK_BAD_LENGTH);
        else
            status(f, begin(f));
        return;
    case MSG_UPD_DATA:
        r = msg_decode_upd_data(f->payload, f->len, &d);
        if (r != 0)
            nack(f, r == MSG_ELEN ? MSG_NACK_BAD_LENGTH : MSG_NACK_BAD_VALUE);
        else
            status(f, data(&d));
        return;
    case MSG_UPD_END:
        status(f, end());
        return;
    case MSG_UPD_BOOT:
        status(f, boot());
        return;
    case MSG_UPD_CONFIRM:
        status(f, confirm());
        return;
    case MSG_UPD_QUERY:
        status(f, MSG_UPD_OK);
        return;
    case MSG_UPD_ABORT:
        if (upd.state != MSG_UPD_BOOTING)
            forget();
        status(f, MSG_UPD_OK);
        return;
    default:
        nack(f, MSG_NACK_UNKNOWN_TYPE);
        return;
    }
}

bool fwupdate_busy(void)
{
    if (upd.state == MSG_UPD_IDLE)
        return false;
    return upd.state == MSG_UPD_BOOTING ||
           port_time_us() - upd.last_us < FWUPDATE_PAUSE_US;
}

uint16_t fwupdate_caps(void)
{
    if (!upd.enabled)
        return 0;
    if (boot_flags(&upd.rec) & MSG_UPD_BOOT_TEST)
        return MSG_CAP_UPDATE | MSG_CAP_TESTING;
    return MSG_CAP_UPDATE;
}
