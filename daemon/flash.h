/* Firmware update of the MCU (docs/UPDATE.md section 4): the image check
 * and the conversation that puts a checked image on the MCU, tests it and
 * keeps it or has it reverted.
 *
 * Two methods.  "uart" talks the UPD_* messages of proto/update.h over the
 * link: BEGIN, DATA chunks with a go-back-N window, END (the MCU hashes
 * what it stored), BOOT (one test boot), then a HELLO with the new version
 * on test, the health gate, and CONFIRM, or REBOOT so that the bootloader
 * goes back to the previous image.  "openocd" lends the serial port to a
 * configured OpenOCD command line that writes the image's body over SWD
 * (the whole image, header first, when it is RAM-loaded), optionally
 * after erasing a configured range, then takes the port back and checks the new
 * version in HELLO and the health gate (there is no test boot to fall back
 * from).
 *
 * Conditions it lives with:
 * - The image comes from a file named by an admin peer.  It is read and
 *   checked on the libuv thread pool (it may be megabytes on a slow card),
 *   bounded by FLASH_IMAGE_MAX, and nothing is sent before every check has
 *   passed.
 * - The MCU and the line are unreliable: any frame may be lost or damaged,
 *   the link may drop and come back, the MCU may reset at any time.  Every
 *   request has a timeout and a bounded number of retries; a lost chunk
 *   costs one window; an upload cut by a lost link resumes where the MCU's
 *   `stored` says.
 * - One flash at a time; a second is refused with -EBUSY.
 * - Telemetry storing is paused from the start of a flash to its outcome,
 *   and the planned resets are announced as expected, through hooks the
 *   owner implements; both are undone on every way out.
 * Loop thread only, but flash_check_image(), which is pure. */
#ifndef TETHER_FLASH_H
#define TETHER_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "link.h"
#include "msg.h"
#include "update.h"

/* The largest image file read: a header and a body the size of the
 * STM32U585's whole 2 MiB flash, four times over (tether-sim executables
 * built with sanitizers are around 700 KiB). */
#define FLASH_IMAGE_MAX   (8u * 1024 * 1024 + IMAGE_HDR_LEN)
#define FLASH_WINDOW_MAX  8u /* chunks in flight; 8 full frames = 2 KiB */
#define FLASH_PATH_MAX    4096u
#define FLASH_WHY_MAX     192u /* a reason, as the events table keeps it */
#define FLASH_ARGS_MAX    32u  /* words of the OpenOCD command line */
#define FLASH_PROGRESS_MS 250u /* upload progress at most this often */
#define FLASH_GATE_GAP_MS                                                      \
    3000u /* health gate: longest gap between heap                             \
             reports */

/* Why an image is refused (flash_check_image()).  Reading the file gives
 * negative errno values instead (-ENOENT, -EACCES, -EISDIR, -EINVAL for
 * anything but a regular file, -EFBIG above FLASH_IMAGE_MAX). */
#define FLASH_ETRUNCATED -1001 /* shorter than its header says */
#define FLASH_ETRAILING  -1002 /* bytes after the body the header names */
#define FLASH_EMAGIC     -1003 /* not a tether image */
#define FLASH_EHDRVER    -1004 /* a header version this tetherd does not know */
#define FLASH_EHDRCRC    -1005 /* header CRC mismatch */
#define FLASH_EEMPTY     -1006 /* body_len 0 */
#define FLASH_EBOARD     -1007 /* built for another board than HELLO's */
#define FLASH_EHASH      -1008 /* SHA-256 of the body is not the header's */
#define FLASH_EOLDER     -1009 /* not newer than what runs (and not forced) */
#define FLASH_ENOUPDATE  -1010 /* uart: HELLO lacks MSG_CAP_UPDATE */
#define FLASH_ENOHELLO   -1011 /* no HELLO yet to check the image against */
#define FLASH_ELAYOUT    -1012 /* load_addr or entry outside the body */

enum flash_method {
    FLASH_METHOD_UART,
    FLASH_METHOD_OPENOCD,
};

struct flash_config {
    enum flash_method method;
    uint32_t window;     /* DATA chunks in flight, 1..FLASH_WINDOW_MAX */
    uint32_t timeout_ms; /* an answer to DATA, CONFIRM, QUERY, REBOOT */
    uint32_t retries;    /* timeouts in a row without progress */
    uint32_t wait_ms;    /* BEGIN (erase), END (hash), reboots, lost links */
    uint32_t health_s;   /* health gate; 0 skips it */
    uint32_t openocd_timeout_ms;
    /* Where OpenOCD writes the body, or the whole image when its header
     * has IMAGE_FLAG_RAM (a RAM-load board's bootloader reads it). */
    uint32_t openocd_address;
    /* Bytes OpenOCD erases first (`flash erase_address`), such as a boot
     * record that would otherwise start an older image; len 0: none.
     * addr + len - 1 fits in 32 bits (the configuration checks it). */
    uint32_t openocd_erase_addr;
    uint32_t openocd_erase_len;
    /* Borrowed for the flash's lifetime; split on blanks, no shell. */
    const char *openocd_command;
    const char *openocd_config; /* files, each passed as -f FILE */
};

/* What is happening, for notifications and the events table.  Strings
 * are static or borrowed for the call. */
struct flash_progress {
    unsigned id;       /* 1 for the first flash since tetherd started */
    const char *state; /* "uploading", "verifying", ... "done" (below) */
    const char *image;
    const char *method; /* "uart" or "openocd" */
    uint32_t version;   /* the image's, 0x00MMmmpp */
    uint32_t from_version;
    uint32_t bytes;      /* of the body acknowledged by the MCU */
    uint32_t total;      /* body_len */
    uint64_t upload_ms;  /* spent uploading so far */
    uint64_t elapsed_ms; /* since the flash started */
    uint32_t resends;    /* chunks sent again (go-back-N, timeouts) */
    uint32_t resumes;    /* BEGINs sent again after a lost link or reset */
    bool confirm;
    bool first; /* the flash's first notification: it has started */
    bool done;
    /* done only: "confirmed", "testing" (left on test), "reverted" or
     * "failed"; why is "" for the first two. */
    const char *outcome;
    const char *why;
};
/* States, in order: "checking" (never notified: the answer to the call
 * says how the check went), "starting" (BEGIN), "uploading", "verifying"
 * (END), "booting" (BOOT, then the reset), "programming" (OpenOCD runs),
 * "waiting" (for the new image's HELLO), "testing" (the health gate),
 * "confirming", "reverting", "done". */

/* What the flash needs from its owner.  Called on the loop thread. */
struct flash_hooks {
    /* Sends one request frame, as link_send(). */
    int (*send)(void *ctx, uint8_t type, const uint8_t *payload, size_t len,
                uint16_t *seq);
    /* The latest HELLO, or NULL. */
    const struct msg_hello *(*hello)(void *ctx);
    enum link_state (*link_state)(void *ctx);
    /* openocd: release the serial port (true) or take it back (false). */
    void (*release)(void *ctx, bool released);
    /* Storing telemetry paused (true) or resumed (false). */
    void (*pause)(void *ctx, bool paused);
    /* Resets and link losses are the flash's own doing from now (true)
     * until false. */
    void (*expect_reset)(void *ctx, bool expected);
    /* heap_low threshold in bytes for a heap of total bytes. */
    uint32_t (*heap_low)(void *ctx, uint32_t total);
    /* State changes, upload progress and the outcome. */
    void (*progress)(void *ctx, const struct flash_progress *p);
};

/* ---- The image check ---- */

/* Checks an image file's bytes before anything is sent: the header (CRC,
 * magic, version), the length against the header, that the body is not
 * empty and its entry and load address fit, the board against HELLO's,
 * the SHA-256 of the body, and that the version is newer than HELLO's
 * (unless force).  running may be NULL only when force is set (an MCU
 * that says nothing, recovered through OpenOCD); board and version are
 * then not checked.  need_update is true for the uart method, which needs
 * MSG_CAP_UPDATE.  Returns 0 with the header in *hdr, or one of the
 * FLASH_E* codes above with a sentence in why (both always written). */
int flash_check_image(const uint8_t *img, size_t len,
                      const struct msg_hello *running, bool force,
                      bool need_update, struct image_hdr *hdr, char *why,
                      size_t whylen);

/* A short name for a FLASH_E* code ("bad_hash"), or NULL. */
const char *flash_error_name(int err);

/* "0.2.0" for 0x00000200, into buf (at least 16 bytes). */
void flash_version_text(char *buf, size_t cap, uint32_t version);

/* ---- A flash ---- */

struct flash;

struct flash_request {
    const char *image; /* absolute path; copied */
    bool confirm;      /* false: leave the image on test (uart only) */
    bool force;        /* flash an older or equal version */
};

/* The answer to flash_start(): err 0 and the start of the flash in p
 * (state "starting"), or a negative code (-EBUSY, the FLASH_E* codes,
 * errno values of reading the file, -ESHUTDOWN) with why.  Borrowed for
 * the call. */
typedef void (*flash_started_fn)(void *arg, int err, const char *why,
                                 const struct flash_progress *p);

/* Caller owns the result; close with flash_close().  cfg and hooks are
 * copied (cfg's strings are borrowed).  Returns 0 or -ENOMEM. */
int flash_new(struct flash **out, uv_loop_t *loop,
              const struct flash_config *cfg, const struct flash_hooks *hooks,
              void *ctx);

/* Begins a flash: reads and checks the image on the thread pool, then
 * calls started(arg, ...) once, on the loop, and on success goes on with
 * the update; progress and the outcome go to the progress hook.  Returns
 * 0 (started will be called), or without calling it -EBUSY (a flash is
 * under way), -EINVAL (a relative or over-long path, or confirm false with
 * the openocd method), -ENAMETOOLONG, -ESHUTDOWN (closing) or -ENOMEM. */
int flash_start(struct flash *f, const struct flash_request *req,
                flash_started_fn started, void *arg);

bool flash_busy(const struct flash *f);

/* Ends a flash under way ("failed: tetherd is stopping", with UPD_ABORT
 * when the upload had not booted yet), kills OpenOCD, waits for a check
 * in flight and closes the handles; done(arg) runs when all is closed,
 * after which f is freed. */
void flash_close(struct flash *f, void (*done)(void *arg), void *arg);

/* ---- What the link says, passed on by the owner ---- */

void flash_on_status(struct flash *f, const struct msg_upd_status *s);
/* ACK or NACK of a request (NACK: an MCU that takes no updates). */
void flash_on_answer(struct flash *f, const struct msg_ack *a);
void flash_on_hello(struct flash *f, const struct msg_hello *h);
void flash_on_reset(struct flash *f, uint8_t cause);
void flash_on_heap(struct flash *f, const struct msg_heap *h);
void flash_on_link(struct flash *f, enum link_state st);

#endif
