/* Wrapping a firmware into an image.  See mkimage.h. */
#include "mkimage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "sha256.h"

#define TMP_SUFFIX ".tmp.XXXXXX"

int mkimage_board(const char *name, uint8_t *board)
{
    if (strcmp(name, "tether-sim") == 0 || strcmp(name, "sim") == 0)
        *board = MSG_BOARD_SIM;
    else if (strcmp(name, "mps2-an505") == 0)
        *board = MSG_BOARD_MPS2_AN505;
    else if (strcmp(name, "stm32u585") == 0)
        *board = MSG_BOARD_STM32U585;
    else
        return -1;
    return 0;
}

int mkimage_version(const char *s, uint32_t *version)
{
    uint32_t part[3];
    const char *p = s;

    for (int i = 0; i < 3; i++) {
        uint32_t v = 0;
        int digits = 0;

        while (*p >= '0' && *p <= '9' && digits < 4) {
            v = v * 10 + (uint32_t)(*p++ - '0');
            digits++;
        }
        if (digits == 0 || v > 255 || (i < 2 && *p++ != '.'))
            return -1;
        part[i] = v;
    }
    if (*p != '\0')
        return -1;
    *version = part[0] << 16 | part[1] << 8 | part[2];
    return 0;
}

int mkimage_header(const uint8_t *body, size_t len,
                   const struct mkimage_opts *o, uint8_t out[IMAGE_HDR_LEN])
{
    struct image_hdr h;
    struct sha256 sh;

    if (len == 0 || len > MKIMAGE_BODY_MAX || o->entry >= len)
        return -EINVAL;
    memset(&h, 0, sizeof(h));
    h.magic = IMAGE_MAGIC;
    h.hdr_version = IMAGE_HDR_VERSION;
    h.board = o->board;
    h.flags = o->ram ? IMAGE_FLAG_RAM : 0;
    h.fw_version = o->version;
    h.build_id = o->build_id;
    h.body_len = (uint32_t)len;
    h.load_addr = o->ram ? o->load_addr : 0;
    h.entry = o->entry;
    sha256_init(&sh);
    sha256_update(&sh, body, len);
    sha256_final(&sh, h.hash);
    return image_encode(out, IMAGE_HDR_LEN, &h) == (int)IMAGE_HDR_LEN ? 0
                                                                      : -EINVAL;
}

/* Reads a regular file of at most MKIMAGE_BODY_MAX bytes.  Caller owns
 * *out; free with free(). */
static int read_body(const char *path, uint8_t **out, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    size_t n = 0;
    int fd, r;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        r = -errno;
        goto err_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        goto err_fd;
    }
    if ((uint64_t)st.st_size > MKIMAGE_BODY_MAX) {
        r = -EFBIG;
        goto err_fd;
    }
    buf = malloc(MKIMAGE_BODY_MAX + 1);
    if (buf == NULL) {
        r = -ENOMEM;
        goto err_fd;
    }
    for (;;) {
        ssize_t k = read(fd, buf + n, MKIMAGE_BODY_MAX + 1 - n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -errno;
            goto err_buf;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > MKIMAGE_BODY_MAX) {
            r = -EFBIG;
            goto err_buf;
        }
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;

err_buf:
    free(buf);
err_fd:
    close(fd);
    return r;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int mkimage_file(const char *input, const char *output,
                 const struct mkimage_opts *o, struct image_hdr *hdr_out,
                 char *err, size_t errlen)
{
    uint8_t hdr[IMAGE_HDR_LEN];
    char tmp[PATH_MAX];
    uint8_t *body;
    size_t len = 0;
    int fd, r;

    r = read_body(input, &body, &len);
    if (r != 0) {
        snprintf(err, errlen, "cannot read %s: %s", input,
                 r == -EFBIG ? "larger than 8 MiB" : strerror(-r));
        return r;
    }
    r = mkimage_header(body, len, o, hdr);
    if (r != 0) {
        snprintf(err, errlen,
                 len == 0 ? "%s is empty" : "the entry is outside %s", input);
        goto out_body;
    }
    if (snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, output) >=
        (int)sizeof(tmp)) {
        r = -ENAMETOOLONG;
        snprintf(err, errlen, "%s: %s", output, strerror(-r));
        goto out_body;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot write next to %s: %s", output,
                 strerror(-r));
        goto out_body;
    }
    r = write_all(fd, hdr, sizeof(hdr));
    if (r == 0)
        r = write_all(fd, body, len);
    if (r == 0 && fchmod(fd, 0644) != 0)
        r = -errno;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, output) != 0)
        r = -errno;
    if (r != 0) {
        snprintf(err, errlen, "cannot write %s: %s", output, strerror(-r));
        unlink(tmp);
    } else if (hdr_out != NULL) {
        (void)image_decode(hdr, sizeof(hdr), hdr_out);
    }

out_body:
    free(body);
    return r;
}
