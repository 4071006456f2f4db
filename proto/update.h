/* The firmware-update messages of the wire protocol (PROTOCOL.md section
 * 4, types 0x80..0x9f) and the firmware image header they carry
 * (docs/UPDATE.md).
 *
 * An update is a conversation the Linux side leads: UPD_BEGIN with the
 * image's header, UPD_DATA chunks by offset, UPD_END (the MCU hashes what
 * it stored), UPD_BOOT (test-boot the new image), and after a health
 * check UPD_CONFIRM from the new image.  Every request is answered with
 * one UPD_STATUS, which always says how many bytes of the upload the MCU
 * holds, so a sender can keep a window of chunks in flight, go back to
 * the first one lost, and resume an upload cut by a dropped link.
 *
 * Freestanding like the rest of proto/: both sides and the bootloader use
 * it.  The same decode rules as msg.h apply (a longer payload's tail is
 * ignored, a shorter one is MSG_ELEN). */
#ifndef TETHER_UPDATE_H
#define TETHER_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "msg.h"

/* ---- Message types ---- */
/* Linux to MCU, each answered by UPD_STATUS (NACK only for a type the
 * MCU does not know, or a payload it cannot decode). */
#define MSG_UPD_BEGIN   0x80 /* payload: the image header, verbatim */
#define MSG_UPD_DATA    0x81 /* offset u32, then the bytes */
#define MSG_UPD_END     0x82 /* no payload: verify what was stored */
#define MSG_UPD_BOOT    0x83 /* no payload: test-boot the verified image */
#define MSG_UPD_CONFIRM 0x84 /* no payload: keep the running image */
#define MSG_UPD_QUERY   0x85 /* no payload: just the status */
#define MSG_UPD_ABORT   0x86 /* no payload: forget the upload */
/* MCU to Linux. */
#define MSG_UPD_STATUS  0x90

/* ---- The image header (docs/UPDATE.md): 64 bytes, little-endian ---- */
#define IMAGE_MAGIC       0x4d495454u /* "TTIM" in file order */
#define IMAGE_HDR_VERSION 1u
#define IMAGE_HDR_LEN     64u
#define IMAGE_HASH_LEN    32u     /* SHA-256 of the body */
#define IMAGE_FLAG_RAM    0x0001u /* body runs from load_addr (RAM-load) */

struct image_hdr {
    uint32_t magic;      /* IMAGE_MAGIC */
    uint8_t hdr_version; /* IMAGE_HDR_VERSION */
    uint8_t board;       /* enum msg_board the body was built for */
    uint16_t flags;      /* IMAGE_FLAG_* */
    uint32_t fw_version; /* 0x00MMmmpp, as HELLO reports it */
    uint32_t build_id;
    uint32_t body_len;  /* bytes after the header */
    uint32_t load_addr; /* IMAGE_FLAG_RAM: where the body runs; else 0 */
    uint32_t entry;     /* offset of the vector table in the body */
    uint8_t hash[IMAGE_HASH_LEN];
    /* bytes 60..63: CRC-32C of bytes 0..59, checked by the decoder */
};

/* Header errors (besides MSG_ELEN), for image_decode(). */
#define IMAGE_EMAGIC   -10 /* not a tether image */
#define IMAGE_EVERSION -11 /* a header version this code does not know */
#define IMAGE_ECRC     -12 /* header CRC mismatch */

/* Writes the 64-byte header, CRC included (h->magic and h->hdr_version
 * are written as given).  Returns IMAGE_HDR_LEN or MSG_ENOSPC. */
int image_encode(uint8_t *out, size_t cap, const struct image_hdr *h);
/* Checks in this order: length, magic, version (a later version may move
 * the CRC, so it is not read before the version is known), CRC.  Returns
 * 0, MSG_ELEN, IMAGE_EMAGIC, IMAGE_EVERSION or IMAGE_ECRC.  Field values
 * are the receiver's to judge (board, size, layout). */
int image_decode(const uint8_t *p, size_t n, struct image_hdr *h);

/* ---- UPD_DATA ---- */
#define MSG_UPD_DATA_HDR_LEN 4u
/* Most bytes one UPD_DATA carries in a frame. */
#define MSG_UPD_CHUNK_MAX    (FRAME_PAYLOAD_MAX - MSG_UPD_DATA_HDR_LEN)
struct msg_upd_data {
    uint32_t offset;     /* into the body */
    const uint8_t *data; /* borrowed */
    size_t len;          /* 1..MSG_UPD_CHUNK_MAX */
};

/* ---- UPD_STATUS ---- */
enum msg_upd_state {
    MSG_UPD_IDLE = 0,      /* no upload */
    MSG_UPD_RECEIVING = 1, /* BEGIN accepted; `stored` bytes held */
    MSG_UPD_VERIFIED = 2,  /* END: the stored body matches the hash */
    MSG_UPD_BOOTING = 3,   /* BOOT accepted; the MCU resets now */
};

enum msg_upd_error {
    MSG_UPD_OK = 0,
    MSG_UPD_EHEADER = 1, /* BEGIN: header does not decode */
    MSG_UPD_EBOARD = 2,  /* BEGIN: built for another board */
    MSG_UPD_ESIZE = 3,   /* BEGIN: body empty or larger than a slot;
                          * DATA: past body_len */
    MSG_UPD_EOFFSET = 4, /* DATA: not at `stored` (ignored) */
    MSG_UPD_ESTATE = 5,  /* request out of order (END before all data;
                          * BEGIN while the running image is on test) */
    MSG_UPD_EHASH = 6,   /* END: the stored body does not match */
    MSG_UPD_EWRITE = 7,  /* the slot could not be written or read */
    MSG_UPD_ENOTEST = 8, /* CONFIRM: the running image is not on test */
    MSG_UPD_ELAYOUT = 9, /* BEGIN: load_addr/entry wrong for this MCU */
};

/* Boot flags in UPD_STATUS (and why the running image runs). */
#define MSG_UPD_BOOT_TEST     0x01u /* running image is on test, unconfirmed */
#define MSG_UPD_BOOT_REVERTED 0x02u /* last test image failed; reverted */
#define MSG_UPD_BOOT_SLOT1    0x04u /* running from slot 1 (else slot 0) */
#define MSG_UPD_BOOT_FACTORY  0x08u /* running the factory image (no slot) */

#define MSG_UPD_STATUS_LEN 22u
struct msg_upd_status {
    uint16_t req_seq;    /* sequence number of the request answered */
    uint8_t req_type;    /* its type */
    uint8_t state;       /* enum msg_upd_state */
    uint8_t error;       /* enum msg_upd_error of this request */
    uint8_t boot;        /* MSG_UPD_BOOT_* */
    uint16_t chunk_max;  /* largest UPD_DATA chunk accepted */
    uint32_t stored;     /* bytes of the body held, from offset 0 */
    uint32_t body_len;   /* of the upload under way, else 0 */
    uint32_t fw_version; /* of the running image */
    uint8_t window;      /* UPD_DATA frames the MCU can hold unanswered */
};

/* Encoders return the payload length, MSG_ENOSPC, or (UPD_DATA) MSG_EINVAL
 * for a chunk of 0 or more than MSG_UPD_CHUNK_MAX bytes.  Decoders return
 * 0, MSG_ELEN, or MSG_EINVAL: UPD_DATA without data or with more than
 * MSG_UPD_CHUNK_MAX bytes; UPD_STATUS with an unknown state, a window of
 * 0, or stored > body_len. */
int msg_encode_upd_data(uint8_t *out, size_t cap, const struct msg_upd_data *m);
/* m->data borrows from p. */
int msg_decode_upd_data(const uint8_t *p, size_t n, struct msg_upd_data *m);
int msg_encode_upd_status(uint8_t *out, size_t cap,
                          const struct msg_upd_status *m);
int msg_decode_upd_status(const uint8_t *p, size_t n, struct msg_upd_status *m);

/* Short names ("bad_hash") for logs and the query socket, or NULL. */
const char *msg_upd_error_name(uint8_t error);
const char *msg_upd_state_name(uint8_t state);
/* "UPD_BEGIN" .. "UPD_STATUS" for the update types, else NULL. */
const char *msg_upd_type_name(uint8_t type);

#endif
