/* Wrapping a built firmware into a tether image (docs/UPDATE.md section
 * 1): the 64-byte header (board, version, length, SHA-256 of the body)
 * followed by the firmware itself, byte for byte.  For tether-sim the
 * firmware is a tether-sim executable; for the Cortex-M boards a flat
 * binary linked where it runs.
 *
 * The input is a file a person names, so it is read whole but bounded
 * by MKIMAGE_BODY_MAX, and the output appears complete or not at all: it
 * is written to a temporary file beside it and renamed into place. */
#ifndef TETHERCTL_MKIMAGE_H
#define TETHERCTL_MKIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "update.h"

/* The largest body, as tetherd reads it (daemon/flash.h FLASH_IMAGE_MAX
 * less the header). */
#define MKIMAGE_BODY_MAX (8u * 1024 * 1024)

struct mkimage_opts {
    uint8_t board;      /* enum msg_board */
    uint32_t version;   /* 0x00MMmmpp */
    uint32_t build_id;  /* as the firmware reports it in HELLO */
    bool ram;           /* the body runs from load_addr (IMAGE_FLAG_RAM) */
    uint32_t load_addr; /* ram only */
    uint32_t entry;     /* offset of the vector table in the body */
};

/* "tether-sim" (or "sim"), "mps2-an505", "stm32u585" into *board.
 * Returns 0, or -1 for any other name, the ATmega328P included: it takes
 * no updates (docs/UPDATE.md). */
int mkimage_board(const char *name, uint8_t *board);

/* "MAJOR.MINOR.PATCH", each 0 to 255, into 0x00MMmmpp.  Returns 0 or
 * -1. */
int mkimage_version(const char *s, uint32_t *version);

/* Writes the header of body (len bytes) into out.  Returns 0, or -EINVAL
 * when the body is empty or longer than MKIMAGE_BODY_MAX, or the entry
 * lies outside it. */
int mkimage_header(const uint8_t *body, size_t len,
                   const struct mkimage_opts *o, uint8_t out[IMAGE_HDR_LEN]);

/* Reads input, writes the image to output and its header to *hdr (may be
 * NULL).  Returns 0, or a negative errno with a sentence in err (-EFBIG
 * above MKIMAGE_BODY_MAX, -EINVAL for an empty input, an entry outside
 * it or an input that is not a regular file). */
int mkimage_file(const char *input, const char *output,
                 const struct mkimage_opts *o, struct image_hdr *hdr, char *err,
                 size_t errlen);

#endif
