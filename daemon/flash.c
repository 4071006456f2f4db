/* Firmware update.  See flash.h and docs/UPDATE.md section 4.
 *
 * A flash is a chain of phases on the event loop:
 *
 *   check (thread pool) -> begin -> upload -> verify -> boot -> wait
 *     -> query -> gate -> confirm                       (method uart)
 *   check -> program (OpenOCD) -> wait -> gate          (method openocd)
 *
 * and on a failed gate: reboot -> wait -> query ("reverted").  Every
 * phase waits for one thing (an answer, a HELLO, the end of the gate, the
 * child's exit) under a timer, and every way out goes through finish(),
 * which undoes what start did: the paused store, the expected-reset
 * window, the lent port, the file for OpenOCD, an upload the MCU still holds.
 *
 * The upload is go-back-N.  Up to `window` UPD_DATA chunks are in flight,
 * each remembered with its sequence number; the MCU writes only the chunk
 * at its `stored` offset and answers any other with EOFFSET and `stored`.
 * So a lost or damaged chunk shows as EOFFSET for the chunks behind it:
 * the first such answer sends again from `stored`, and the chunks still
 * in flight are marked dead, so that their EOFFSETs send nothing more.
 * They still count against the window until answered: the MCU's window
 * is the frames its receive FIFO holds, and the dead ones are in it or
 * on their way.  The MCU answers every frame it receives, in order, so
 * an answer to one chunk ends every chunk sent before it (lost, or its
 * answer lost).  A timeout forgets them all and sends again from
 * `stored`.  Answers are matched by sequence number and type, never
 * trusted by position, and `stored` is checked against the image before
 * it is believed.
 *
 * A lost link during the upload stops the sending; when the link is back
 * (or the MCU has reset) BEGIN goes again with the same header and the
 * MCU answers with the offset to resume from.  Timeouts in a row without
 * progress, rewinds without progress and resumes are all bounded. */
#include "flash.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sha256.h"

#define RESUMES_MAX      16u /* BEGINs again after lost links or resets */
#define BLOCKED_RETRY_MS 20u /* the link's queue was full: try again */
#define PROGRAM_MAX      (FLASH_PATH_MAX + 64u) /* OpenOCD's -c argument */
#define ERASE_MAX        64u /* "flash erase_address 0x... 0x..." */
#define COMMAND_MAX      1024u
/* The file handed to OpenOCD: a body (".bin") or a whole image (".img");
 * mkstemps() keeps the suffix, SUFFIX_LEN characters. */
#define TMP_BODY         "tether-fw-XXXXXX.bin"
#define TMP_IMAGE        "tether-fw-XXXXXX.img"
#define SUFFIX_LEN       4

enum phase {
    PH_IDLE,
    PH_CHECK,   /* the job reads and checks the image */
    PH_BEGIN,   /* BEGIN sent */
    PH_UPLOAD,  /* DATA chunks */
    PH_VERIFY,  /* END sent */
    PH_BOOT,    /* BOOT sent */
    PH_PROGRAM, /* OpenOCD runs */
    PH_WAIT,    /* for the new image's HELLO */
    PH_QUERY,   /* UPD_QUERY to the new image */
    PH_GATE,    /* the health gate */
    PH_CONFIRM, /* CONFIRM sent */
    PH_REVERT,  /* REBOOT sent: for the previous image's HELLO */
    PH_REVERTQ, /* UPD_QUERY to the image that came back */
};

static const char *const phase_names[] = {
    [PH_IDLE] = "idle",           [PH_CHECK] = "checking",
    [PH_BEGIN] = "starting",      [PH_UPLOAD] = "uploading",
    [PH_VERIFY] = "verifying",    [PH_BOOT] = "booting",
    [PH_PROGRAM] = "programming", [PH_WAIT] = "waiting",
    [PH_QUERY] = "waiting",       [PH_GATE] = "testing",
    [PH_CONFIRM] = "confirming",  [PH_REVERT] = "reverting",
    [PH_REVERTQ] = "reverting",
};

struct chunk {
    uint16_t seq;
    uint32_t offset;
    uint32_t len;
    bool live; /* false: sent before the last go-back */
};

/* The thread-pool job: reads and checks the image.  It touches only
 * itself; the loop hands it over and takes it back. */
struct job {
    uv_work_t work;
    struct flash *f;
    char path[FLASH_PATH_MAX];
    struct msg_hello running;
    bool have_running;
    bool force;
    enum flash_method method;
    /* out */
    uint8_t *img;
    size_t len;
    struct image_hdr hdr;
    char prog_path[FLASH_PATH_MAX]; /* openocd: what it writes, as a file */
    int err;
    char why[FLASH_WHY_MAX];
};

struct flash {
    uv_loop_t *loop;
    struct flash_config cfg;
    struct flash_hooks h;
    void *ctx;
    uv_timer_t req_timer;   /* an answer, or a blocked send's retry */
    uv_timer_t phase_timer; /* HELLO, a lost link, the gate, OpenOCD */
    uv_timer_t gap_timer;   /* the gate: the next heap report */
    uv_process_t proc;
    bool proc_live; /* proc is initialised and not yet closed */
    bool proc_exited;
    struct job *job; /* in the pool, or NULL */

    enum phase phase;
    unsigned id;
    char image[FLASH_PATH_MAX];
    bool confirm, force;
    flash_started_fn started;
    void *started_arg;

    /* The image, once checked. */
    uint8_t *img;
    size_t img_len;
    struct image_hdr hdr;
    char prog_path[FLASH_PATH_MAX];
    uint32_t from_version;
    uint32_t rx_max; /* the MCU's largest payload, from HELLO */

    /* The upload. */
    uint32_t chunk_max;
    uint32_t window; /* ours, or the MCU's when it holds fewer */
    uint32_t acked;  /* the MCU's `stored` */
    uint32_t next;   /* offset of the next chunk to send */
    struct chunk inflight[FLASH_WINDOW_MAX]; /* unanswered, in send order */
    size_t ninflight;
    bool blocked;          /* the link's queue refused a chunk */
    uint32_t rewind_acked; /* acked at the last rewind */

    /* The one control request waiting for its answer. */
    bool ctl_pending;
    bool ctl_sent; /* false: the send failed; the timer sends again */
    uint16_t ctl_seq;
    uint8_t ctl_type;

    uint32_t tries; /* timeouts (or rewinds) in a row without progress */
    bool link_down;
    bool reset_seen; /* since the phase that waits for one began */
    uint8_t reset_cause;
    bool on_test; /* the new image runs on test */
    uint32_t gate_reports;

    uint64_t start_ms;
    uint64_t upload_since_ms; /* uploading since; 0: not now */
    uint64_t upload_ms;       /* before upload_since_ms */
    uint64_t progress_ms;     /* last progress hook call */
    uint32_t resends, resumes;
    bool paused, expecting, released;
    char why[FLASH_WHY_MAX]; /* the gate's failure, kept for the outcome */

    bool closing;
    int closes; /* handles and the job still to finish */
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- The image check ---- */

static const struct {
    int err;
    const char *name;
} error_names[] = {
    {FLASH_ETRUNCATED, "truncated"}, {FLASH_ETRAILING, "trailing_bytes"},
    {FLASH_EMAGIC, "not_an_image"},  {FLASH_EHDRVER, "header_version"},
    {FLASH_EHDRCRC, "header_crc"},   {FLASH_EEMPTY, "empty"},
    {FLASH_EBOARD, "wrong_board"},   {FLASH_EHASH, "bad_hash"},
    {FLASH_EOLDER, "not_newer"},     {FLASH_ENOUPDATE, "no_update"},
    {FLASH_ENOHELLO, "no_hello"},    {FLASH_ELAYOUT, "bad_layout"},
};

const char *flash_error_name(int err)
{
    for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++)
        if (error_names[i].err == err)
            return error_names[i].name;
    return NULL;
}

void flash_version_text(char *buf, size_t cap, uint32_t v)
{
    snprintf(buf, cap, "%u.%u.%u", (unsigned)((v >> 16) & 0xff),
             (unsigned)((v >> 8) & 0xff), (unsigned)(v & 0xff));
}

static const char *board_name(uint8_t b)
{
    switch (b) {
    case MSG_BOARD_SIM:
        return "tether-sim";
    case MSG_BOARD_MPS2_AN505:
        return "mps2-an505";
    case MSG_BOARD_STM32U585:
        return "stm32u585";
    case MSG_BOARD_ATMEGA328P:
        return "atmega328p";
    default:
        return "an unknown board";
    }
}

static int refuse(char *why, size_t whylen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "<name>: <sentence>" into why and returns err. */
static int refuse(char *why, size_t whylen, int err, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(why, whylen, "%s: ", flash_error_name(err));
    if (n < 0 || (size_t)n >= whylen)
        return err;
    va_start(ap, fmt);
    vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
    va_end(ap);
    return err;
}

int flash_check_image(const uint8_t *img, size_t len,
                      const struct msg_hello *running, bool force,
                      bool need_update, struct image_hdr *hdr, char *why,
                      size_t whylen)
{
    char have[16], want[16];
    uint8_t digest[IMAGE_HASH_LEN];
    struct sha256 sh;
    size_t body;
    int r;

    assert(img != NULL || len == 0);
    memset(hdr, 0, sizeof(*hdr));
    if (whylen > 0)
        why[0] = '\0';
    r = image_decode(img, len, hdr);
    /* A short file that does not even start like an image is not one. */
    if (r == MSG_ELEN && (len < 4 || memcmp(img, "TTIM", 4) != 0))
        r = IMAGE_EMAGIC;
    if (r == MSG_ELEN)
        return refuse(why, whylen, FLASH_ETRUNCATED,
                      "%zu bytes, shorter than the %u-byte image header", len,
                      IMAGE_HDR_LEN);
    if (r == IMAGE_EMAGIC)
        return refuse(why, whylen, FLASH_EMAGIC,
                      "no TTIM magic: not a tether image (wrap a firmware "
                      "with tetherctl image)");
    if (r == IMAGE_EVERSION)
        return refuse(why, whylen, FLASH_EHDRVER,
                      "header version %u, this tetherd reads version %u",
                      len > 4 ? img[4] : 0, IMAGE_HDR_VERSION);
    if (r != 0)
        return refuse(why, whylen, FLASH_EHDRCRC,
                      "the header's CRC does not match: the file is damaged");
    if (running == NULL && !force)
        return refuse(why, whylen, FLASH_ENOHELLO,
                      "no HELLO from a connected MCU to check the image "
                      "against");
    if (running != NULL && hdr->board != running->board)
        return refuse(why, whylen, FLASH_EBOARD,
                      "the image is built for %s, the MCU is %s",
                      board_name(hdr->board), board_name(running->board));
    if (running != NULL && need_update && !(running->caps & MSG_CAP_UPDATE))
        return refuse(why, whylen, FLASH_ENOUPDATE,
                      "the running firmware takes no updates over the link "
                      "(no update capability in HELLO)");
    body = len - IMAGE_HDR_LEN;
    if (body < hdr->body_len)
        return refuse(why, whylen, FLASH_ETRUNCATED,
                      "the header announces a %" PRIu32
                      "-byte body, the file holds %zu bytes of it",
                      hdr->body_len, body);
    if (body > hdr->body_len)
        return refuse(why, whylen, FLASH_ETRAILING,
                      "%zu bytes follow the %" PRIu32 "-byte body",
                      body - hdr->body_len, hdr->body_len);
    if (hdr->body_len == 0)
        return refuse(why, whylen, FLASH_EEMPTY, "the body is empty");
    if (hdr->entry >= hdr->body_len ||
        (!(hdr->flags & IMAGE_FLAG_RAM) && hdr->load_addr != 0))
        return refuse(why, whylen, FLASH_ELAYOUT,
                      "entry %" PRIu32 " is outside the body, or a load "
                      "address is set without the RAM flag",
                      hdr->entry);
    sha256_init(&sh);
    sha256_update(&sh, img + IMAGE_HDR_LEN, hdr->body_len);
    sha256_final(&sh, digest);
    if (memcmp(digest, hdr->hash, IMAGE_HASH_LEN) != 0)
        return refuse(why, whylen, FLASH_EHASH,
                      "the SHA-256 of the body does not match the header: "
                      "the file is damaged");
    if (running != NULL && !force && hdr->fw_version <= running->fw_version) {
        flash_version_text(want, sizeof(want), hdr->fw_version);
        flash_version_text(have, sizeof(have), running->fw_version);
        return refuse(why, whylen, FLASH_EOLDER,
                      "the image is %s, the MCU runs %s (force to flash "
                      "it anyway)",
                      want, have);
    }
    return 0;
}

/* ---- Small helpers ---- */

static uint64_t now_ms(const struct flash *f)
{
    return uv_now(f->loop);
}

static bool uart(const struct flash *f)
{
    return f->cfg.method == FLASH_METHOD_UART;
}

static const char *type_name(uint8_t type)
{
    const char *n = msg_upd_type_name(type);

    if (n != NULL)
        return n;
    return type == MSG_REBOOT ? "REBOOT" : "request";
}

static const char *reset_name(uint8_t cause)
{
    static const char *const names[] = {
        [MSG_RESET_UNKNOWN] = "cause unknown",
        [MSG_RESET_POWER_ON] = "power-on",
        [MSG_RESET_PIN] = "reset pin",
        [MSG_RESET_SOFTWARE] = "software",
        [MSG_RESET_WATCHDOG] = "watchdog",
        [MSG_RESET_BROWN_OUT] = "brown-out",
        [MSG_RESET_FAULT] = "fault",
    };

    return cause < sizeof(names) / sizeof(names[0]) ? names[cause]
                                                    : "cause unknown";
}

static const char *upd_error(uint8_t e)
{
    const char *n = msg_upd_error_name(e);

    return n != NULL ? n : "unknown error";
}

static void fill_progress(const struct flash *f, struct flash_progress *p)
{
    uint64_t now = now_ms(f);

    memset(p, 0, sizeof(*p));
    p->id = f->id;
    p->state = phase_names[f->phase];
    p->image = f->image;
    p->method = uart(f) ? "uart" : "openocd";
    p->version = f->hdr.fw_version;
    p->from_version = f->from_version;
    p->bytes = uart(f) ? f->acked : 0;
    p->total = f->hdr.body_len;
    p->upload_ms =
        f->upload_ms + (f->upload_since_ms != 0 ? now - f->upload_since_ms : 0);
    p->elapsed_ms = now - f->start_ms;
    p->resends = f->resends;
    p->resumes = f->resumes;
    p->confirm = f->confirm;
    p->outcome = "";
    p->why = "";
}

static void progress(struct flash *f)
{
    struct flash_progress p;

    fill_progress(f, &p);
    f->progress_ms = now_ms(f);
    f->h.progress(f->ctx, &p);
}

static void set_phase(struct flash *f, enum phase ph)
{
    bool named_change = strcmp(phase_names[f->phase], phase_names[ph]) != 0;

    f->phase = ph;
    if (named_change)
        progress(f);
}

static void upload_clock(struct flash *f, bool running)
{
    uint64_t now = now_ms(f);

    if (running && f->upload_since_ms == 0) {
        f->upload_since_ms = now != 0 ? now : 1;
    } else if (!running && f->upload_since_ms != 0) {
        f->upload_ms += now - f->upload_since_ms;
        f->upload_since_ms = 0;
    }
}

static void stop_timers(struct flash *f)
{
    uv_timer_stop(&f->req_timer);
    uv_timer_stop(&f->phase_timer);
    uv_timer_stop(&f->gap_timer);
}

/* ---- The outcome ---- */

static void remove_prog_file(struct flash *f)
{
    if (f->prog_path[0] != '\0' && unlink(f->prog_path) != 0)
        log_warn("flash: cannot remove %s: %s", f->prog_path, strerror(errno));
    f->prog_path[0] = '\0';
}

/* Ends the flash with outcome and why; undoes everything start did.  The
 * hooks come last, with the flash idle, because they may start the next
 * one. */
static void finish(struct flash *f, const char *outcome, const char *why)
{
    struct flash_progress p;
    bool upload_held;

    stop_timers(f);
    upload_clock(f, false);
    /* An MCU holding an unbooted upload samples nothing until told. */
    upload_held = uart(f) && (f->phase == PH_BEGIN || f->phase == PH_UPLOAD ||
                              f->phase == PH_VERIFY);
    if (upload_held && strcmp(outcome, "failed") == 0 &&
        f->h.link_state(f->ctx) != LINK_DISCONNECTED &&
        f->h.send(f->ctx, MSG_UPD_ABORT, NULL, 0, NULL) == 0)
        log_info("flash: UPD_ABORT sent: the MCU forgets the upload");
    f->ninflight = 0;
    f->ctl_pending = false;
    remove_prog_file(f);
    free(f->img);
    f->img = NULL;
    fill_progress(f, &p);
    p.state = "done";
    p.done = true;
    p.outcome = outcome;
    p.why = why;
    f->phase = PH_IDLE;
    if (strcmp(outcome, "failed") == 0 || strcmp(outcome, "reverted") == 0)
        log_warn("flash %u %s: %s", f->id, outcome, why);
    else
        log_info("flash %u %s", f->id, outcome);
    if (f->released) {
        f->released = false;
        f->h.release(f->ctx, false);
    }
    if (f->expecting) {
        f->expecting = false;
        f->h.expect_reset(f->ctx, false);
    }
    if (f->paused) {
        f->paused = false;
        f->h.pause(f->ctx, false);
    }
    f->h.progress(f->ctx, &p);
}

static void fail(struct flash *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct flash *f, const char *fmt, ...)
{
    char why[FLASH_WHY_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    finish(f, "failed", why);
}

static void expect_resets(struct flash *f)
{
    if (!f->expecting) {
        f->expecting = true;
        f->h.expect_reset(f->ctx, true);
    }
}

/* ---- Requests ---- */

static uint32_t timeout_for(const struct flash *f, uint8_t type)
{
    /* BEGIN erases a slot and END hashes one: both may take seconds. */
    return type == MSG_UPD_BEGIN || type == MSG_UPD_END ? f->cfg.wait_ms
                                                        : f->cfg.timeout_ms;
}

static void on_req_timer(uv_timer_t *t);
static void on_phase_timer(uv_timer_t *t);

/* Waits up to wait_ms for the link to come back; flash_on_link() goes
 * on from there. */
static void start_link_wait(struct flash *f)
{
    f->link_down = true;
    f->ninflight = 0;
    upload_clock(f, false);
    uv_timer_stop(&f->req_timer);
    uv_timer_start(&f->phase_timer, on_phase_timer, f->cfg.wait_ms, 0);
}

/* Sends the control request type (BEGIN carries the image's header as it
 * is in the file) and waits for its answer; again is false for a new
 * request, true for a retry of the pending one. */
static void send_request(struct flash *f, uint8_t type, bool again)
{
    const uint8_t *p = type == MSG_UPD_BEGIN ? f->img : NULL;
    size_t n = type == MSG_UPD_BEGIN ? IMAGE_HDR_LEN : 0;
    uint16_t seq = 0;
    int r = f->h.send(f->ctx, type, p, n, &seq);

    if (!again)
        f->tries = 0;
    f->ctl_pending = true;
    f->ctl_type = type;
    f->ctl_seq = seq;
    f->ctl_sent = r == 0;
    if (r == LINK_ENOTCONN) {
        start_link_wait(f);
        return;
    }
    if (r != 0)
        log_debug("flash: %s not sent (%s); trying again", type_name(type),
                  strerror(-r));
    uv_timer_start(&f->req_timer, on_req_timer,
                   r == 0 ? timeout_for(f, type) : BLOCKED_RETRY_MS, 0);
}

static void request(struct flash *f, uint8_t type)
{
    send_request(f, type, false);
}

static void send_begin(struct flash *f)
{
    f->ninflight = 0;
    f->blocked = false;
    set_phase(f, PH_BEGIN);
    request(f, MSG_UPD_BEGIN);
}

/* BEGIN again after the link or the MCU was lost: the MCU says where the
 * upload stands. */
static void resume(struct flash *f, const char *what)
{
    if (f->resumes >= RESUMES_MAX) {
        fail(f, "gave up after %u resumes (%s)", RESUMES_MAX, what);
        return;
    }
    f->resumes++;
    log_info("flash: %s; sending UPD_BEGIN again to resume", what);
    send_begin(f);
}

/* ---- The upload ---- */

static void start_verify(struct flash *f)
{
    upload_clock(f, false);
    f->ninflight = 0;
    uv_timer_stop(&f->req_timer);
    progress(f);
    set_phase(f, PH_VERIFY);
    request(f, MSG_UPD_END);
}

/* Sends chunks from `next` until the window is full or the body sent. */
static void fill(struct flash *f)
{
    uint8_t buf[FRAME_PAYLOAD_MAX];

    f->blocked = false;
    if (f->link_down)
        return;
    while (f->ninflight < f->window && f->next < f->hdr.body_len) {
        uint32_t left = f->hdr.body_len - f->next;
        struct msg_upd_data d = {
            .offset = f->next,
            .data = f->img + IMAGE_HDR_LEN + f->next,
            .len = left < f->chunk_max ? left : f->chunk_max,
        };
        uint16_t seq;
        int n = msg_encode_upd_data(buf, sizeof(buf), &d);
        int r;

        assert(n > 0);
        r = f->h.send(f->ctx, MSG_UPD_DATA, buf, (size_t)n, &seq);
        if (r == LINK_ENOTCONN) {
            start_link_wait(f);
            return;
        }
        if (r != 0) {
            /* The link's queue is full: the line is slower than us. */
            f->blocked = true;
            if (f->ninflight == 0)
                uv_timer_start(&f->req_timer, on_req_timer, BLOCKED_RETRY_MS,
                               0);
            return;
        }
        if (f->ninflight == 0)
            uv_timer_start(&f->req_timer, on_req_timer, f->cfg.timeout_ms, 0);
        f->inflight[f->ninflight++] =
            (struct chunk){seq, d.offset, (uint32_t)d.len, true};
        f->next += (uint32_t)d.len;
    }
}

/* Goes back to what the MCU holds and sends from there; the chunks in
 * flight die but keep their place in the window until answered. */
static void rewind_to_stored(struct flash *f, const char *why)
{
    uint32_t dropped = 0;

    if (f->acked == f->rewind_acked && ++f->tries > f->cfg.retries) {
        fail(f, "the upload makes no progress at offset %" PRIu32 " (%s)",
             f->acked, why);
        return;
    }
    f->rewind_acked = f->acked;
    for (size_t i = 0; i < f->ninflight; i++) {
        dropped += f->inflight[i].live;
        f->inflight[i].live = false;
    }
    log_debug("flash: back to offset %" PRIu32 " (%s), %" PRIu32
              " chunks dropped",
              f->acked, why, dropped);
    f->resends += dropped;
    f->next = f->acked;
    fill(f);
}

static void start_upload(struct flash *f, const struct msg_upd_status *s)
{
    uint32_t cap = MSG_UPD_CHUNK_MAX;

    if (s->chunk_max < cap)
        cap = s->chunk_max;
    if (f->rx_max > MSG_UPD_DATA_HDR_LEN &&
        f->rx_max - MSG_UPD_DATA_HDR_LEN < cap)
        cap = f->rx_max - MSG_UPD_DATA_HDR_LEN;
    if (cap == 0) {
        fail(f, "the MCU accepts no UPD_DATA chunk (chunk_max %u)",
             s->chunk_max);
        return;
    }
    f->chunk_max = cap;
    f->window = s->window < f->cfg.window ? s->window : f->cfg.window;
    f->acked = s->stored;
    f->next = s->stored;
    f->rewind_acked = UINT32_MAX;
    f->tries = 0;
    if (s->stored > 0)
        log_info("flash: the MCU holds %" PRIu32 " of %" PRIu32
                 " bytes: resuming there",
                 s->stored, f->hdr.body_len);
    if (s->stored == f->hdr.body_len) {
        start_verify(f);
        return;
    }
    set_phase(f, PH_UPLOAD);
    upload_clock(f, true);
    fill(f);
}

static void on_data_status(struct flash *f, size_t k,
                           const struct msg_upd_status *s)
{
    const struct chunk c = f->inflight[k];

    /* This chunk and every one sent before it have left the MCU's FIFO:
     * answered, or lost with their answers. */
    memmove(f->inflight, f->inflight + k + 1,
            (f->ninflight - k - 1) * sizeof(f->inflight[0]));
    f->ninflight -= k + 1;
    if (s->stored > f->acked) {
        f->acked = s->stored;
        f->tries = 0;
    }
    if (s->error == MSG_UPD_OK) {
        /* stored grew, by this chunk or, for a dead one, past where the
         * live ones start, which then answer EOFFSET. */
    } else if (s->error == MSG_UPD_EOFFSET) {
        /* The first EOFFSET after a go-back is a live chunk's; the dead
         * ones have been sent again already. */
        if (c.live) {
            rewind_to_stored(f, "a chunk was lost");
            if (f->phase != PH_UPLOAD)
                return;
        }
    } else if (s->error == MSG_UPD_ESTATE) {
        resume(f, "the MCU has no upload under way");
        return;
    } else {
        fail(f, "the MCU could not take the chunk at offset %" PRIu32 ": %s",
             c.offset, upd_error(s->error));
        return;
    }
    if (f->acked == f->hdr.body_len) {
        start_verify(f);
        return;
    }
    if (now_ms(f) - f->progress_ms >= FLASH_PROGRESS_MS)
        progress(f);
    if (f->ninflight == 0)
        uv_timer_stop(&f->req_timer);
    else
        uv_timer_start(&f->req_timer, on_req_timer, f->cfg.timeout_ms, 0);
    fill(f);
}

/* ---- After the upload ---- */

static void start_gate(struct flash *f);
static void gate_failed(struct flash *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void send_boot(struct flash *f)
{
    expect_resets(f);
    f->reset_seen = false;
    set_phase(f, PH_BOOT);
    request(f, MSG_UPD_BOOT);
}

/* The MCU is resetting into the new image: wait for its HELLO. */
static void start_wait(struct flash *f)
{
    f->ctl_pending = false;
    uv_timer_stop(&f->req_timer);
    set_phase(f, PH_WAIT);
    uv_timer_start(&f->phase_timer, on_phase_timer, f->cfg.wait_ms, 0);
}

static void on_ctl_status(struct flash *f, const struct msg_upd_status *s)
{
    char v[16];

    f->ctl_pending = false;
    uv_timer_stop(&f->req_timer);
    f->tries = 0;
    switch (f->ctl_type) {
    case MSG_UPD_BEGIN:
        if (s->error != MSG_UPD_OK) {
            fail(f, "the MCU refused the image: %s", upd_error(s->error));
        } else if (s->stored > f->hdr.body_len ||
                   (s->body_len != 0 && s->body_len != f->hdr.body_len)) {
            fail(f,
                 "the MCU's answer to UPD_BEGIN does not fit the image "
                 "(stored %" PRIu32 " of %" PRIu32 ")",
                 s->stored, s->body_len);
        } else {
            start_upload(f, s);
        }
        return;
    case MSG_UPD_END:
        if (s->state == MSG_UPD_VERIFIED &&
            (s->error == MSG_UPD_OK || s->error == MSG_UPD_ESTATE)) {
            send_boot(f);
        } else if (s->error == MSG_UPD_EHASH) {
            flash_version_text(v, sizeof(v), f->from_version);
            fail(f,
                 "the MCU's SHA-256 of what it stored does not match "
                 "the image (damaged on the line); %s keeps running",
                 v);
        } else if (s->state == MSG_UPD_RECEIVING &&
                   s->stored < f->hdr.body_len) {
            f->acked = s->stored;
            set_phase(f, PH_UPLOAD);
            upload_clock(f, true);
            rewind_to_stored(f, "the MCU holds less than the whole body");
        } else if (s->state == MSG_UPD_IDLE) {
            resume(f, "the MCU forgot the upload before UPD_END");
        } else {
            fail(f, "UPD_END failed: %s", upd_error(s->error));
        }
        return;
    case MSG_UPD_BOOT:
        if (s->error == MSG_UPD_OK && s->state == MSG_UPD_BOOTING) {
            start_wait(f);
        } else if (s->boot & MSG_UPD_BOOT_TEST) {
            /* A BOOT sent again reached the new image: it runs. */
            set_phase(f, PH_QUERY);
            request(f, MSG_UPD_QUERY);
        } else {
            fail(f, "UPD_BOOT failed: %s", upd_error(s->error));
        }
        return;
    case MSG_UPD_QUERY:
        /* The boot flags decide, not the versions, which are equal when
         * an image of the running version is forced on. */
        flash_version_text(v, sizeof(v), s->fw_version);
        if (f->phase == PH_QUERY) {
            if ((s->boot & MSG_UPD_BOOT_TEST) &&
                s->fw_version == f->hdr.fw_version) {
                f->on_test = true;
                start_gate(f);
            } else if (s->boot & MSG_UPD_BOOT_TEST) {
                fail(f, "the image on test reports version %s", v);
            } else if (s->boot & MSG_UPD_BOOT_REVERTED) {
                finish(f, "reverted",
                       "the bootloader did not start the new image and "
                       "went back to the previous one");
            } else if (s->fw_version == f->hdr.fw_version) {
                /* Running, but not on test: nothing to go back to. */
                f->on_test = false;
                start_gate(f);
            } else if (s->fw_version == f->from_version) {
                finish(f, "reverted",
                       "the MCU came back with the previous image");
            } else {
                fail(f, "the MCU runs %s after the update", v);
            }
        } else if (f->phase == PH_REVERTQ) {
            if (s->boot & MSG_UPD_BOOT_TEST)
                fail(f, "%s; the image on test still runs after a reset",
                     f->why);
            else if ((s->boot & MSG_UPD_BOOT_REVERTED) ||
                     s->fw_version == f->from_version)
                finish(f, "reverted", f->why);
            else
                fail(f, "%s; then the MCU runs %s", f->why, v);
        }
        return;
    case MSG_UPD_CONFIRM:
        if (s->fw_version != f->hdr.fw_version ||
            (s->boot & MSG_UPD_BOOT_REVERTED))
            fail(f, "the MCU reset before UPD_CONFIRM");
        else if (s->error == MSG_UPD_OK || (s->error == MSG_UPD_ENOTEST &&
                                            !(s->boot & MSG_UPD_BOOT_TEST)))
            finish(f, "confirmed", "");
        else
            fail(f, "UPD_CONFIRM failed: %s", upd_error(s->error));
        return;
    default:
        return;
    }
}

/* ---- The health gate ---- */

static void on_gap_timer(uv_timer_t *t)
{
    struct flash *f = t->data;

    if (f->phase != PH_GATE)
        return;
    if (f->gate_reports == 0)
        gate_failed(f, "no heap report from the new image within %u ms",
                    FLASH_GATE_GAP_MS);
    else
        gate_failed(f, "heap reports stopped for %u ms", FLASH_GATE_GAP_MS);
}

static void gate_passed(struct flash *f)
{
    stop_timers(f);
    if (!uart(f)) {
        finish(f, "confirmed", "");
    } else if (!f->confirm) {
        finish(f, "testing", "");
    } else {
        set_phase(f, PH_CONFIRM);
        request(f, MSG_UPD_CONFIRM);
    }
}

static void start_gate(struct flash *f)
{
    f->gate_reports = 0;
    f->reset_seen = false;
    set_phase(f, PH_GATE);
    if (f->cfg.health_s == 0) {
        gate_passed(f);
        return;
    }
    uv_timer_start(&f->phase_timer, on_phase_timer,
                   (uint64_t)f->cfg.health_s * 1000, 0);
    uv_timer_start(&f->gap_timer, on_gap_timer, FLASH_GATE_GAP_MS, 0);
}

/* The gate failed: have the bootloader go back to the previous image,
 * where there is one to go back to. */
static void gate_failed(struct flash *f, const char *fmt, ...)
{
    char v[16];
    va_list ap;
    int n;

    n = snprintf(f->why, sizeof(f->why), "health gate: ");
    va_start(ap, fmt);
    vsnprintf(f->why + n, sizeof(f->why) - (size_t)n, fmt, ap);
    va_end(ap);
    stop_timers(f);
    flash_version_text(v, sizeof(v), f->hdr.fw_version);
    if (!uart(f)) {
        fail(f, "%s; OpenOCD has no test boot: %s stays", f->why, v);
        return;
    }
    if (!f->on_test) {
        fail(f, "%s; the image is not on test: %s stays", f->why, v);
        return;
    }
    /* REBOOT gets an ACK, or none when the reset wins the race; the HELLO
     * that follows is what counts, so REBOOT is never sent twice. */
    f->reset_seen = false;
    f->ctl_pending = false;
    set_phase(f, PH_REVERT);
    if (f->h.send(f->ctx, MSG_REBOOT, NULL, 0, NULL) != 0)
        log_warn("flash: REBOOT not sent; waiting for a reset anyway");
    uv_timer_start(&f->phase_timer, on_phase_timer, f->cfg.wait_ms, 0);
}

/* ---- OpenOCD ---- */

static void on_proc_closed(uv_handle_t *h);

static void program_done(struct flash *f, int64_t status, int sig)
{
    if (f->phase != PH_PROGRAM)
        return;
    uv_timer_stop(&f->phase_timer);
    remove_prog_file(f);
    f->released = false;
    f->h.release(f->ctx, false);
    if (sig != 0) {
        fail(f, "OpenOCD was killed by signal %d", sig);
        return;
    }
    if (status != 0) {
        fail(f, "OpenOCD exited with status %" PRId64, status);
        return;
    }
    f->reset_seen = false;
    set_phase(f, PH_WAIT);
    uv_timer_start(&f->phase_timer, on_phase_timer, f->cfg.wait_ms, 0);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
    struct flash *f = p->data;

    f->proc_exited = true;
    uv_close((uv_handle_t *)&f->proc, on_proc_closed);
    program_done(f, status, sig);
}

static int split_words(char *line, char **args, size_t cap, size_t *n)
{
    char *p = line;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (*p == '\0')
            return 0;
        if (*n + 1 >= cap)
            return -E2BIG;
        args[(*n)++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
    }
}

/* The command line: the configured command, "-f FILE" for each
 * configuration file, then the commands.  With openocd_erase set, the
 * erase comes first, on a halted target after init (OpenOCD runs -c
 * commands before its own init, and flash commands need the target):
 *
 *   -c init -c "reset halt" -c "flash erase_address ADDR LEN"
 *
 * and then always
 *
 *   -c "program FILE ADDRESS verify reset exit"
 *
 * whose own init finds OpenOCD initialised already. */
static void start_program(struct flash *f)
{
    char line[COMMAND_MAX], files[COMMAND_MAX], program[PROGRAM_MAX];
    char erase[ERASE_MAX];
    char *args[FLASH_ARGS_MAX + 1];
    char *cfgs[FLASH_ARGS_MAX];
    size_t n = 0, ncfg = 0, ncmd = f->cfg.openocd_erase_len > 0 ? 4 : 1;
    uv_process_options_t opt;
    uv_stdio_container_t stdio[3];
    int r;

    snprintf(line, sizeof(line), "%s", f->cfg.openocd_command);
    snprintf(files, sizeof(files), "%s", f->cfg.openocd_config);
    snprintf(erase, sizeof(erase),
             "flash erase_address 0x%08" PRIx32 " 0x%08" PRIx32,
             f->cfg.openocd_erase_addr, f->cfg.openocd_erase_len);
    snprintf(program, sizeof(program),
             "program %s 0x%08" PRIx32 " verify reset exit", f->prog_path,
             f->cfg.openocd_address);
    if (split_words(line, args, FLASH_ARGS_MAX, &n) != 0 || n == 0 ||
        split_words(files, cfgs, FLASH_ARGS_MAX, &ncfg) != 0 ||
        n + 2 * ncfg + 2 * ncmd > FLASH_ARGS_MAX) {
        fail(f,
             "the OpenOCD command line is empty or has more than %u "
             "words",
             FLASH_ARGS_MAX);
        return;
    }
    for (size_t i = 0; i < ncfg; i++) {
        args[n++] = (char *)"-f";
        args[n++] = cfgs[i];
    }
    if (f->cfg.openocd_erase_len > 0) {
        args[n++] = (char *)"-c";
        args[n++] = (char *)"init";
        args[n++] = (char *)"-c";
        args[n++] = (char *)"reset halt";
        args[n++] = (char *)"-c";
        args[n++] = erase;
    }
    args[n++] = (char *)"-c";
    args[n++] = program;
    args[n] = NULL;

    memset(&opt, 0, sizeof(opt));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = STDERR_FILENO; /* its chatter goes to the journal */
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = STDERR_FILENO;
    opt.exit_cb = on_proc_exit;
    opt.file = args[0];
    opt.args = args;
    opt.stdio_count = 3;
    opt.stdio = stdio;

    expect_resets(f);
    f->released = true;
    f->h.release(f->ctx, true);
    set_phase(f, PH_PROGRAM);
    f->proc.data = f;
    f->proc_exited = false;
    r = uv_spawn(f->loop, &f->proc, &opt);
    f->proc_live = true;
    if (r != 0) {
        f->proc_exited = true;
        uv_close((uv_handle_t *)&f->proc, on_proc_closed);
        remove_prog_file(f);
        f->released = false;
        f->h.release(f->ctx, false);
        fail(f, "cannot run %s: %s", args[0], uv_strerror(r));
        return;
    }
    if (f->cfg.openocd_erase_len > 0)
        log_info("flash: %s runs (pid %d): %s; %s", args[0], f->proc.pid, erase,
                 program);
    else
        log_info("flash: %s runs (pid %d): %s", args[0], f->proc.pid, program);
    uv_timer_start(&f->phase_timer, on_phase_timer, f->cfg.openocd_timeout_ms,
                   0);
}

/* ---- Timers ---- */

static void on_req_timer(uv_timer_t *t)
{
    struct flash *f = t->data;

    if (f->phase == PH_UPLOAD && !f->ctl_pending) {
        if (f->blocked && f->ninflight == 0) {
            fill(f);
            return;
        }
        if (++f->tries > f->cfg.retries) {
            fail(f,
                 "no answer from the MCU to UPD_DATA at offset %" PRIu32
                 " after %u tries",
                 f->acked, f->cfg.retries + 1);
            return;
        }
        /* Nothing came back for a while: whatever was in flight is
         * gone, the window is free. */
        f->rewind_acked = f->acked;
        for (size_t i = 0; i < f->ninflight; i++)
            f->resends += f->inflight[i].live;
        f->ninflight = 0;
        f->next = f->acked;
        fill(f);
        return;
    }
    if (!f->ctl_pending)
        return;
    if (f->ctl_sent && ++f->tries > f->cfg.retries) {
        fail(f, "no answer from the MCU to %s after %u tries",
             type_name(f->ctl_type), f->cfg.retries + 1);
        return;
    }
    send_request(f, f->ctl_type, true);
}

static void on_phase_timer(uv_timer_t *t)
{
    struct flash *f = t->data;
    char v[16];

    if (f->link_down) {
        fail(f, "the link was down for %u ms during the %s", f->cfg.wait_ms,
             phase_names[f->phase]);
        return;
    }
    flash_version_text(v, sizeof(v), f->hdr.fw_version);
    switch (f->phase) {
    case PH_PROGRAM:
        log_warn("flash: OpenOCD still runs after %u ms: killing it",
                 f->cfg.openocd_timeout_ms);
        if (!f->proc_exited)
            uv_process_kill(&f->proc, SIGKILL);
        /* Its exit, when it comes, finds the flash over. */
        fail(f, "OpenOCD did not finish within %u ms",
             f->cfg.openocd_timeout_ms);
        return;
    case PH_WAIT:
    case PH_BOOT:
        fail(f, "no HELLO from the MCU with %s within %u ms", v,
             f->cfg.wait_ms);
        return;
    case PH_GATE:
        if (f->gate_reports == 0)
            gate_failed(f, "no heap report in %u s", f->cfg.health_s);
        else
            gate_passed(f);
        return;
    case PH_REVERT:
        fail(f, "%s; the MCU did not come back within %u ms after REBOOT",
             f->why, f->cfg.wait_ms);
        return;
    default:
        return;
    }
}

/* ---- What the link says ---- */

void flash_on_status(struct flash *f, const struct msg_upd_status *s)
{
    if (f->phase == PH_IDLE || f->phase == PH_CHECK)
        return;
    if (f->ctl_pending && f->ctl_sent && s->req_seq == f->ctl_seq &&
        s->req_type == f->ctl_type) {
        on_ctl_status(f, s);
        return;
    }
    if (f->phase == PH_UPLOAD && s->req_type == MSG_UPD_DATA) {
        for (size_t k = 0; k < f->ninflight; k++)
            if (f->inflight[k].seq == s->req_seq) {
                if (s->stored > f->hdr.body_len) {
                    fail(f,
                         "the MCU says it stored %" PRIu32
                         " bytes of a %" PRIu32 "-byte body",
                         s->stored, f->hdr.body_len);
                    return;
                }
                on_data_status(f, k, s);
                return;
            }
    }
    log_debug("flash: UPD_STATUS for seq %u type 0x%02x ignored", s->req_seq,
              s->req_type);
}

void flash_on_answer(struct flash *f, const struct msg_ack *a)
{
    bool ours =
        (f->ctl_pending && a->seq == f->ctl_seq && a->type == f->ctl_type) ||
        (f->phase == PH_UPLOAD && a->type == MSG_UPD_DATA);

    if (f->phase == PH_IDLE || f->phase == PH_CHECK || !ours || a->error == 0)
        return;
    fail(f, "the MCU refused %s (NACK %u): it takes no updates",
         type_name(a->type), a->error);
}

void flash_on_reset(struct flash *f, uint8_t cause)
{
    if (f->phase == PH_IDLE || f->phase == PH_CHECK)
        return;
    f->reset_seen = true;
    f->reset_cause = cause;
}

void flash_on_hello(struct flash *f, const struct msg_hello *h)
{
    bool reset = f->reset_seen;
    char v[16], want[16];

    f->reset_seen = false;
    flash_version_text(v, sizeof(v), h->fw_version);
    flash_version_text(want, sizeof(want), f->hdr.fw_version);
    switch (f->phase) {
    case PH_BEGIN:
    case PH_UPLOAD:
    case PH_VERIFY:
        if (reset && !f->link_down) {
            upload_clock(f, false);
            resume(f, "the MCU reset during the upload");
        }
        return;
    case PH_BOOT:
    case PH_WAIT:
        /* In uart's wait, only a HELLO after a reset is the new boot's;
         * a HELLO the link asked for may still be the old image's. */
        if (uart(f) && !reset)
            return;
        stop_timers(f);
        f->ctl_pending = false;
        if (!uart(f)) {
            if (h->fw_version == f->hdr.fw_version) {
                f->on_test = false;
                start_gate(f);
            } else {
                fail(f, "after OpenOCD the MCU runs %s, expected %s", v, want);
            }
            return;
        }
        if (h->fw_version != f->hdr.fw_version &&
            h->fw_version != f->from_version) {
            fail(f, "the MCU came back with %s, expected %s", v, want);
            return;
        }
        set_phase(f, PH_QUERY);
        request(f, MSG_UPD_QUERY);
        return;
    case PH_GATE:
        if (!reset)
            return;
        /* A reset of the image on test sends the bootloader back to the
         * previous image by itself: ask which one runs now. */
        snprintf(f->why, sizeof(f->why),
                 "health gate: the new image reset (%s)",
                 reset_name(f->reset_cause));
        stop_timers(f);
        if (uart(f) && f->on_test) {
            set_phase(f, PH_REVERTQ);
            request(f, MSG_UPD_QUERY);
        } else {
            fail(f, "%s; it runs %s now", f->why, v);
        }
        return;
    case PH_REVERT:
        if (!reset)
            return;
        uv_timer_stop(&f->phase_timer);
        set_phase(f, PH_REVERTQ);
        request(f, MSG_UPD_QUERY);
        return;
    default:
        return;
    }
}

void flash_on_heap(struct flash *f, const struct msg_heap *h)
{
    uint32_t low;

    if (f->phase != PH_GATE)
        return;
    f->gate_reports++;
    low = f->h.heap_low(f->ctx, h->total);
    if (h->free < low) {
        gate_failed(f,
                    "free heap %" PRIu32 " B below the heap_low threshold "
                    "%" PRIu32 " B",
                    h->free, low);
        return;
    }
    uv_timer_start(&f->gap_timer, on_gap_timer, FLASH_GATE_GAP_MS, 0);
}

void flash_on_link(struct flash *f, enum link_state st)
{
    bool upload =
        f->phase == PH_BEGIN || f->phase == PH_UPLOAD || f->phase == PH_VERIFY;
    bool control =
        f->ctl_pending && (f->phase == PH_QUERY || f->phase == PH_CONFIRM ||
                           f->phase == PH_REVERTQ);

    if (st == LINK_DISCONNECTED && !f->link_down && (upload || control)) {
        log_info("flash: link lost during the %s; waiting up to %u ms",
                 phase_names[f->phase], f->cfg.wait_ms);
        f->ninflight = 0;
        start_link_wait(f);
        return;
    }
    if (st != LINK_CONNECTED || !f->link_down)
        return;
    f->link_down = false;
    uv_timer_stop(&f->phase_timer);
    if (upload)
        resume(f, "the link is back");
    else if (f->ctl_pending)
        send_request(f, f->ctl_type, true);
}

/* ---- Starting ---- */

/* Reads the whole file into *out (caller frees), refusing anything but a
 * regular file of at most FLASH_IMAGE_MAX bytes.  Returns 0 or -errno. */
static int read_image(const char *path, uint8_t **out, size_t *len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t n = 0;
    int fd, r = 0;

    *out = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        r = -errno;
        goto out_fd;
    }
    if (S_ISDIR(st.st_mode)) {
        r = -EISDIR;
        goto out_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        goto out_fd;
    }
    if ((uint64_t)st.st_size > FLASH_IMAGE_MAX) {
        r = -EFBIG;
        goto out_fd;
    }
    /* One byte more than allowed, to see a file that grew meanwhile. */
    buf = malloc(FLASH_IMAGE_MAX + 1);
    if (buf == NULL) {
        r = -ENOMEM;
        goto out_fd;
    }
    for (;;) {
        ssize_t k = read(fd, buf + n, FLASH_IMAGE_MAX + 1 - n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -errno;
            goto out_buf;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > FLASH_IMAGE_MAX) {
            r = -EFBIG;
            goto out_buf;
        }
    }
    *out = buf;
    *len = n;
    close(fd);
    return 0;

out_buf:
    free(buf);
out_fd:
    close(fd);
    return r;
}

/* openocd: writes what OpenOCD is to program to a file of its own in
 * $TMPDIR (/tmp; under systemd a private one).  That is the body, the
 * raw firmware, for a board whose flash runs it where it lies; but the
 * whole image, header first, when the image is RAM-loaded
 * (IMAGE_FLAG_RAM): such a board's bootloader reads the factory image's
 * header for the body's length and hash (the STM32U585 port,
 * docs/UPDATE.md). */
static int write_prog_file(struct job *jb)
{
    const char *dir = getenv("TMPDIR");
    bool whole = (jb->hdr.flags & IMAGE_FLAG_RAM) != 0;
    const uint8_t *p = whole ? jb->img : jb->img + IMAGE_HDR_LEN;
    size_t left = whole ? jb->len : jb->hdr.body_len;
    int fd, n;

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    n = snprintf(jb->prog_path, sizeof(jb->prog_path), "%s/%s", dir,
                 whole ? TMP_IMAGE : TMP_BODY);
    if (n < 0 || (size_t)n >= sizeof(jb->prog_path))
        return -ENAMETOOLONG;
    fd = mkstemps(jb->prog_path, SUFFIX_LEN);
    if (fd < 0) {
        jb->prog_path[0] = '\0';
        return -errno;
    }
    while (left > 0) {
        ssize_t k = write(fd, p, left);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;

            close(fd);
            unlink(jb->prog_path);
            jb->prog_path[0] = '\0';
            return -e;
        }
        p += k;
        left -= (size_t)k;
    }
    if (close(fd) != 0) {
        int e = errno;

        unlink(jb->prog_path);
        jb->prog_path[0] = '\0';
        return -e;
    }
    return 0;
}

static void job_work(uv_work_t *w)
{
    struct job *jb = w->data;

    jb->err = read_image(jb->path, &jb->img, &jb->len);
    if (jb->err != 0) {
        snprintf(jb->why, sizeof(jb->why), "cannot read the image: %s",
                 strerror(-jb->err));
        return;
    }
    jb->err = flash_check_image(
        jb->img, jb->len, jb->have_running ? &jb->running : NULL, jb->force,
        jb->method == FLASH_METHOD_UART, &jb->hdr, jb->why, sizeof(jb->why));
    if (jb->err == 0 && jb->method == FLASH_METHOD_OPENOCD) {
        jb->err = write_prog_file(jb);
        if (jb->err != 0)
            snprintf(jb->why, sizeof(jb->why),
                     "cannot write the file for OpenOCD: %s",
                     strerror(-jb->err));
    }
}

static void maybe_closed(struct flash *f);

static void job_after(uv_work_t *w, int status)
{
    struct job *jb = w->data;
    struct flash *f = jb->f;
    struct flash_progress p;
    char from[16], to[16];

    f->job = NULL;
    if (status != 0 || f->closing) {
        if (jb->prog_path[0] != '\0')
            unlink(jb->prog_path);
        free(jb->img);
        f->phase = PH_IDLE;
        f->started(f->started_arg, -ESHUTDOWN, "tetherd is stopping", NULL);
        free(jb);
        if (f->closing) {
            f->closes--;
            maybe_closed(f);
        }
        return;
    }
    if (jb->err != 0) {
        log_info("flash: %s refused: %s", jb->path, jb->why);
        free(jb->img);
        f->phase = PH_IDLE;
        f->started(f->started_arg, jb->err, jb->why, NULL);
        free(jb);
        return;
    }
    f->img = jb->img;
    f->img_len = jb->len;
    f->hdr = jb->hdr;
    memcpy(f->prog_path, jb->prog_path, sizeof(f->prog_path));
    f->from_version = jb->have_running ? jb->running.fw_version : 0;
    f->rx_max = jb->have_running ? jb->running.rx_max : 0;
    free(jb);

    f->id++;
    f->start_ms = now_ms(f);
    f->upload_ms = 0;
    f->upload_since_ms = 0;
    f->progress_ms = 0;
    f->acked = 0;
    f->next = 0;
    f->ninflight = 0;
    f->resends = 0;
    f->resumes = 0;
    f->tries = 0;
    f->link_down = false;
    f->reset_seen = false;
    f->on_test = false;
    f->why[0] = '\0';
    f->phase = uart(f) ? PH_BEGIN : PH_PROGRAM;
    flash_version_text(from, sizeof(from), f->from_version);
    flash_version_text(to, sizeof(to), f->hdr.fw_version);
    log_info("flash %u: %s, %s -> %s, %" PRIu32 " bytes by %s", f->id, f->image,
             from, to, f->hdr.body_len, uart(f) ? "uart" : "openocd");
    f->paused = true;
    f->h.pause(f->ctx, true);
    fill_progress(f, &p);
    f->started(f->started_arg, 0, "", &p);
    if (f->phase == PH_IDLE)
        return;
    /* The first progress is the start, for watchers and the events. */
    p.first = true;
    f->progress_ms = now_ms(f);
    f->h.progress(f->ctx, &p);
    if (uart(f))
        request(f, MSG_UPD_BEGIN);
    else
        start_program(f);
}

int flash_start(struct flash *f, const struct flash_request *req,
                flash_started_fn started, void *arg)
{
    const struct msg_hello *h;
    struct job *jb;
    size_t len;
    int r;

    if (f->closing)
        return -ESHUTDOWN;
    /* An OpenOCD killed on its timeout may not have been reaped yet. */
    if (f->phase != PH_IDLE || f->proc_live)
        return -EBUSY;
    len = strlen(req->image);
    if (len >= FLASH_PATH_MAX)
        return -ENAMETOOLONG;
    if (req->image[0] != '/' || (!req->confirm && !uart(f)))
        return -EINVAL;
    jb = calloc(1, sizeof(*jb));
    if (jb == NULL)
        return -ENOMEM;
    jb->f = f;
    jb->work.data = jb;
    memcpy(jb->path, req->image, len + 1);
    h = f->h.hello(f->ctx);
    if (h != NULL && f->h.link_state(f->ctx) != LINK_DISCONNECTED) {
        jb->running = *h;
        jb->have_running = true;
    }
    jb->force = req->force;
    jb->method = f->cfg.method;
    r = uv_queue_work(f->loop, &jb->work, job_work, job_after);
    if (r != 0) {
        free(jb);
        return -ENOMEM;
    }
    f->job = jb;
    memcpy(f->image, req->image, len + 1);
    f->confirm = req->confirm;
    f->force = req->force;
    f->started = started;
    f->started_arg = arg;
    f->phase = PH_CHECK;
    return 0;
}

bool flash_busy(const struct flash *f)
{
    return f->phase != PH_IDLE;
}

/* ---- Life cycle ---- */

int flash_new(struct flash **out, uv_loop_t *loop,
              const struct flash_config *cfg, const struct flash_hooks *hooks,
              void *ctx)
{
    struct flash *f;

    assert(cfg->window >= 1 && cfg->window <= FLASH_WINDOW_MAX);
    *out = NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->loop = loop;
    f->cfg = *cfg;
    f->h = *hooks;
    f->ctx = ctx;
    f->phase = PH_IDLE;
    uv_timer_init(loop, &f->req_timer);
    uv_timer_init(loop, &f->phase_timer);
    uv_timer_init(loop, &f->gap_timer);
    f->req_timer.data = f;
    f->phase_timer.data = f;
    f->gap_timer.data = f;
    *out = f;
    return 0;
}

static void maybe_closed(struct flash *f)
{
    void (*done)(void *arg) = f->done;
    void *arg = f->done_arg;

    if (f->closes > 0)
        return;
    free(f->img);
    free(f);
    if (done != NULL)
        done(arg);
}

static void on_closed(uv_handle_t *h)
{
    struct flash *f = h->data;

    f->closes--;
    maybe_closed(f);
}

static void on_proc_closed(uv_handle_t *h)
{
    struct flash *f = h->data;

    f->proc_live = false;
    if (f->closing) {
        f->closes--;
        maybe_closed(f);
    }
}

void flash_close(struct flash *f, void (*done)(void *arg), void *arg)
{
    assert(!f->closing);
    if (f->proc_live && !f->proc_exited)
        uv_process_kill(&f->proc, SIGKILL); /* its exit closes it */
    if (f->phase != PH_IDLE && f->phase != PH_CHECK)
        fail(f, "tetherd is stopping");
    /* A check not yet begun is dropped; one running is waited for. */
    if (f->job != NULL)
        (void)uv_cancel((uv_req_t *)&f->job->work);
    f->closing = true;
    f->done = done;
    f->done_arg = arg;
    f->closes = 3 + (f->job != NULL) + f->proc_live;
    uv_close((uv_handle_t *)&f->req_timer, on_closed);
    uv_close((uv_handle_t *)&f->phase_timer, on_closed);
    uv_close((uv_handle_t *)&f->gap_timer, on_closed);
}
