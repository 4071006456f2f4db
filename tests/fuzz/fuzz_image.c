/* libFuzzer target: the check tetherd runs on a firmware image file
 * before it sends a byte of it, flash_check_image() (daemon/flash.c),
 * and the image header decoder under it (proto/update.c).
 *
 * Input: 8 option bytes, then the image file.
 *   byte 0   bit 0 force, bit 1 the uart method (needs the update
 *            capability), bit 2 an MCU has said HELLO, bit 3 fix up the
 *            body: body_len and the SHA-256 in the header made right for
 *            the bytes that follow it, bit 4 fix up the header's CRC (after
 *            the body fix), bits 5-7 the size of the caller's reason
 *            buffer (0 to 256 bytes);
 *   bytes 1-7  HELLO's board, caps (u16) and fw_version (u32), LE.
 * The fix-ups let mutations reach the checks behind the CRC and the hash.
 *
 * Checked, both ways: an image that passes has a header that decodes, a
 * body of exactly body_len bytes that is not empty, an entry inside it
 * and a load address only with the RAM flag, the SHA-256 the header
 * names, and against HELLO the board, the update capability (uart) and a
 * newer version (unless forced); a refused one names a check that really
 * fails.  The reason is a NUL-terminated sentence within its buffer that
 * starts with the check's name.  The image and the reason live in
 * buffers of their exact size, so a read or write past them is a crash
 * under AddressSanitizer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "flash.h"
#include "fuzz.h"
#include "sha256.h"
#include "update.h"
#include "wire.h"

#define OPTION_BYTES 8
#define HDR_CRC_AT   60u

static const size_t why_sizes[8] = {0, 1, 8, 32, 64, 128, 192, 256};

static void fix_up(uint8_t *img, size_t len, uint8_t opts)
{
    if (len < IMAGE_HDR_LEN)
        return;
    if (opts & 0x08) {
        wire_put_u32(&img[16], (uint32_t)(len - IMAGE_HDR_LEN));
        sha256_digest(img + IMAGE_HDR_LEN, len - IMAGE_HDR_LEN, &img[28]);
    }
    if (opts & 0x10)
        wire_put_u32(&img[HDR_CRC_AT], crc32c(img, HDR_CRC_AT));
}

/* What the header's raw bytes say, read here without image_decode(). */
struct raw {
    bool magic, version, crc;
    uint8_t board;
    uint16_t flags;
    uint32_t fw_version, body_len, load_addr, entry;
};

static struct raw read_raw(const uint8_t *img, size_t len)
{
    struct raw r = {0};

    r.magic = len >= 4 && memcmp(img, "TTIM", 4) == 0;
    if (len < IMAGE_HDR_LEN)
        return r;
    r.version = img[4] == IMAGE_HDR_VERSION;
    r.crc = wire_get_u32(&img[HDR_CRC_AT]) == crc32c(img, HDR_CRC_AT);
    r.board = img[5];
    r.flags = (uint16_t)(img[6] | img[7] << 8);
    r.fw_version = wire_get_u32(&img[8]);
    r.body_len = wire_get_u32(&img[16]);
    r.load_addr = wire_get_u32(&img[20]);
    r.entry = wire_get_u32(&img[24]);
    return r;
}

static bool hash_ok(const uint8_t *img, size_t len, uint32_t body_len)
{
    uint8_t digest[SHA256_LEN];

    if (len < IMAGE_HDR_LEN || len - IMAGE_HDR_LEN != body_len)
        return false;
    sha256_digest(img + IMAGE_HDR_LEN, body_len, digest);
    return memcmp(digest, &img[28], SHA256_LEN) == 0;
}

static bool layout_ok(const struct raw *h)
{
    return h->entry < h->body_len &&
           ((h->flags & IMAGE_FLAG_RAM) || h->load_addr == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg_hello hello = {0};
    const struct msg_hello *running = NULL;
    struct image_hdr hdr, dec;
    struct raw h;
    uint8_t *img;
    char *why;
    const char *name;
    size_t len, whylen;
    bool force, uart;
    int r;

    if (size < OPTION_BYTES)
        return 0;
    force = data[0] & 0x01;
    uart = data[0] & 0x02;
    if (data[0] & 0x04) {
        hello.board = data[1];
        hello.caps = (uint16_t)(data[2] | data[3] << 8);
        hello.fw_version = wire_get_u32(&data[4]);
        running = &hello;
    }
    whylen = why_sizes[data[0] >> 5];
    len = size - OPTION_BYTES;
    img = malloc(len == 0 ? 1 : len);
    why = malloc(whylen == 0 ? 1 : whylen);
    FUZZ_CHECK(img != NULL && why != NULL);
    memcpy(img, data + OPTION_BYTES, len);
    fix_up(img, len, data[0]);
    h = read_raw(img, len);

    r = flash_check_image(len == 0 ? NULL : img, len, running, force, uart,
                          &hdr, why, whylen);
    name = flash_error_name(r);
    if (whylen > 0)
        FUZZ_CHECK(memchr(why, '\0', whylen) != NULL);
    if (r != 0) {
        size_t k;

        FUZZ_CHECK(name != NULL);
        k = strlen(name);
        if (whylen > k + 2)
            FUZZ_CHECK(strncmp(why, name, k) == 0 && why[k] == ':' &&
                       why[k + 1] == ' ');
    }

    switch (r) {
    case 0:
        FUZZ_CHECK(h.magic && h.version && h.crc);
        FUZZ_CHECK(image_decode(img, len, &dec) == 0);
        FUZZ_CHECK(memcmp(&dec.hash, &hdr.hash, IMAGE_HASH_LEN) == 0);
        FUZZ_CHECK(hdr.board == h.board && hdr.flags == h.flags &&
                   hdr.fw_version == h.fw_version &&
                   hdr.body_len == h.body_len && hdr.entry == h.entry &&
                   hdr.load_addr == h.load_addr);
        FUZZ_CHECK(h.body_len > 0 && len == IMAGE_HDR_LEN + h.body_len);
        FUZZ_CHECK(layout_ok(&h) && hash_ok(img, len, h.body_len));
        FUZZ_CHECK(running != NULL || force);
        if (running != NULL) {
            FUZZ_CHECK(h.board == running->board);
            FUZZ_CHECK(!uart || (running->caps & MSG_CAP_UPDATE));
            FUZZ_CHECK(force || h.fw_version > running->fw_version);
        }
        break;
    case FLASH_EMAGIC:
        FUZZ_CHECK(!h.magic);
        break;
    case FLASH_EHDRVER:
        FUZZ_CHECK(h.magic && !h.version);
        break;
    case FLASH_EHDRCRC:
        FUZZ_CHECK(h.magic && h.version && !h.crc);
        break;
    case FLASH_ETRUNCATED:
        FUZZ_CHECK(len < IMAGE_HDR_LEN || len - IMAGE_HDR_LEN < h.body_len);
        break;
    case FLASH_ETRAILING:
        FUZZ_CHECK(len - IMAGE_HDR_LEN > h.body_len);
        break;
    case FLASH_EEMPTY:
        FUZZ_CHECK(h.body_len == 0);
        break;
    case FLASH_ELAYOUT:
        FUZZ_CHECK(!layout_ok(&h));
        break;
    case FLASH_EHASH:
        FUZZ_CHECK(!hash_ok(img, len, h.body_len));
        break;
    case FLASH_ENOHELLO:
        FUZZ_CHECK(running == NULL && !force);
        break;
    case FLASH_EBOARD:
        FUZZ_CHECK(running != NULL && h.board != running->board);
        break;
    case FLASH_ENOUPDATE:
        FUZZ_CHECK(running != NULL && uart &&
                   !(running->caps & MSG_CAP_UPDATE));
        break;
    case FLASH_EOLDER:
        FUZZ_CHECK(running != NULL && !force &&
                   h.fw_version <= running->fw_version);
        break;
    default:
        FUZZ_CHECK(!"an error code flash.h does not list");
    }
    free(why);
    free(img);
    return 0;
}
