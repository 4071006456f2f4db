/* The images of the STM32U585 port and the check of the factory image,
 * shared by the update handler's port verb (port_image_check() in
 * port_flash.c), the bootloader, and a host test (tests/stm32u585/).
 *
 * Every image of this port is RAM-loaded (MCUboot's RAM-load mode): its
 * header says IMAGE_FLAG_RAM, load_addr is the execution region, entry 0,
 * and its body fits both the execution region and the factory region
 * behind the header (layout.h U585_BODY_MAX).  The factory region holds
 * a whole update image, header first, so that whatever wrote it (the
 * build, or OpenOCD through tetherd) the bootloader reads the body's
 * length and hash from the flash, and starts nothing that does not
 * check.  Portable C over proto/: no registers, no port calls. */
#ifndef TETHER_RAMIMAGE_H
#define TETHER_RAMIMAGE_H

#include <stdint.h>

#include "update.h" /* proto/update.h: struct image_hdr */

/* Errors of ramimage_check(), in the order it checks. */
#define RAMIMAGE_EHEADER -1 /* no header: erased, not TTIM, version, CRC */
#define RAMIMAGE_EBOARD  -2 /* built for another board */
#define RAMIMAGE_ELAYOUT                                                       \
    -3                    /* not RAM-loaded at the execution region, or        \
                           * a body under 8 or over U585_BODY_MAX bytes */
#define RAMIMAGE_ESIZE -4 /* the body runs past the region it is in */
#define RAMIMAGE_EHASH -5 /* the body's SHA-256 is not the header's */

/* Bytes of the body hashed between two calls of feed. */
#define RAMIMAGE_FEED_EVERY 4096u

/* 0 if an image with header h can run on this port, else
 * RAMIMAGE_ELAYOUT.  The board is not looked at (the update handler
 * checks it apart, with its own error). */
int ramimage_layout(const struct image_hdr *h);

/* Checks the image that starts at region (size bytes of memory it may
 * read, the image and anything after it): the header decodes, names this
 * board and has the layout above, header and body lie inside the region,
 * and the body hashes to the header's SHA-256.  feed (not NULL) is called
 * every RAMIMAGE_FEED_EVERY bytes hashed, for the watchdog.  Returns 0
 * with the header in *h, or a RAMIMAGE_E* code (*h then undefined). */
int ramimage_check(const uint8_t *region, uint32_t size, void (*feed)(void),
                   struct image_hdr *h);

#endif
