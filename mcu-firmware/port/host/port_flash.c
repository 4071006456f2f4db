/* The update storage of tether-sim (port.h, "Update storage"): the two
 * slots and the boot record are files in the --flash directory.
 *
 *   DIR/slot0, DIR/slot1  the slot bodies exactly as written, mode 0755:
 *                         a slot holding a tether-sim executable is
 *                         executed in place when the bootloader starts it
 *   DIR/boot              the boot record, replaced whole by rename(), so
 *                         a crash of the sim leaves the old record or the
 *                         new one
 *
 * An erase truncates the slot file; writes go at the end of what is there,
 * as flash takes them; the first read after the writes closes the file for
 * writing (port.h: a read programs what is buffered), which also lets the
 * kernel execute it (a file open for writing cannot be).  --flip-update-byte
 * damages one stored byte on its way to the file, as a flash or a link
 * fault past the CRC would.  Without --flash there is no storage:
 * port_boot_load() says PORT_ENOSTORAGE and the firmware refuses updates. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot.h"
#include "port.h"
#include "port_host.h"

/* Largest single write: an UPD_DATA chunk (242 bytes) fits. */
#define CHUNK_MAX 256u

static struct {
    char dir[PATH_MAX];
    bool on;
    int wfd[BOOT_SLOTS];       /* open for writing since the erase, or -1 */
    int rfd[BOOT_SLOTS];       /* open for reading, or -1 */
    uint32_t size[BOOT_SLOTS]; /* bytes written since the erase */
    uint32_t flip_plus1;       /* body byte to damage, + 1; 0 = none */
} flash = {.wfd = {-1, -1}, .rfd = {-1, -1}};

static int path_of(const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", flash.dir, name);

    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int port_host_slot_path(uint8_t slot, char *buf, size_t cap)
{
    char name[8];

    if (!flash.on || slot >= BOOT_SLOTS)
        return -1;
    snprintf(name, sizeof(name), "slot%u", (unsigned)slot);
    return path_of(name, buf, cap);
}

int port_host_flash_open(const char *dir)
{
    struct stat st;
    int n = snprintf(flash.dir, sizeof(flash.dir), "%s", dir);

    if (n <= 0 || (size_t)n >= sizeof(flash.dir) - 16u) {
        fprintf(stderr, "tether-sim: --flash path too long\n");
        return -1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "tether-sim: --flash %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
        access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "tether-sim: --flash %s: not a writable directory\n",
                dir);
        return -1;
    }
    flash.on = true;
    return 0;
}

void port_host_flash_flip(uint32_t byte)
{
    flash.flip_plus1 = byte + 1u;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void port_host_flash_close(void)
{
    for (unsigned i = 0; i < BOOT_SLOTS; i++) {
        close_fd(&flash.wfd[i]);
        close_fd(&flash.rfd[i]);
    }
}

int port_slot_erase(uint8_t slot, uint32_t len)
{
    char path[PATH_MAX];

    if (port_host_slot_path(slot, path, sizeof(path)) != 0 ||
        len > PORT_SLOT_SIZE)
        return -1;
    close_fd(&flash.wfd[slot]);
    close_fd(&flash.rfd[slot]);
    flash.size[slot] = 0;
    flash.wfd[slot] =
        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (flash.wfd[slot] < 0 || fchmod(flash.wfd[slot], 0755) != 0) {
        fprintf(stderr, "tether-sim: erase %s: %s\n", path, strerror(errno));
        close_fd(&flash.wfd[slot]);
        return -1;
    }
    return 0;
}

int port_slot_write(uint8_t slot, uint32_t off, const uint8_t *p, uint16_t n)
{
    uint8_t buf[CHUNK_MAX];
    size_t done = 0;

    if (slot >= BOOT_SLOTS || flash.wfd[slot] < 0 || off != flash.size[slot] ||
        n > CHUNK_MAX || n > PORT_SLOT_SIZE - off)
        return -1;
    memcpy(buf, p, n);
    if (flash.flip_plus1 > off && flash.flip_plus1 - 1u < off + n)
        buf[flash.flip_plus1 - 1u - off] ^= 0x01u;
    while (done < n) {
        ssize_t w =
            pwrite(flash.wfd[slot], buf + done, n - done, (off_t)(off + done));

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    flash.size[slot] = off + n;
    return 0;
}

int port_slot_read(uint8_t slot, uint32_t off, uint8_t *p, uint16_t n)
{
    char path[PATH_MAX];
    size_t done = 0;

    if (port_host_slot_path(slot, path, sizeof(path)) != 0 ||
        off > PORT_SLOT_SIZE || n > PORT_SLOT_SIZE - off)
        return -1;
    close_fd(&flash.wfd[slot]); /* the writes are over: "program" them */
    if (flash.rfd[slot] < 0)
        flash.rfd[slot] = open(path, O_RDONLY | O_CLOEXEC);
    if (flash.rfd[slot] < 0)
        return -1;
    while (done < n) {
        ssize_t r =
            pread(flash.rfd[slot], p + done, n - done, (off_t)(off + done));

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1; /* past the end of what was written */
        done += (size_t)r;
    }
    return 0;
}

int port_boot_load(struct boot_record *r)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd;

    if (!flash.on)
        return PORT_ENOSTORAGE;
    if (path_of("boot", path, sizeof(path)) != 0)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, r, sizeof(*r));
    close(fd);
    return n == (ssize_t)sizeof(*r) ? 0 : -1;
}

int port_boot_store(const struct boot_record *r)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int fd, ok;

    if (!flash.on || path_of("boot", path, sizeof(path)) != 0 ||
        path_of("boot.new", tmp, sizeof(tmp)) != 0)
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    /* No fsync: the record must survive the sim's death (rename() is
     * atomic, the page cache outlives the process), not the host's; and a
     * slow disk must not stall the simulated MCU past its watchdog. */
    ok = write(fd, r, sizeof(*r)) == (ssize_t)sizeof(*r);
    if (close(fd) != 0 || !ok || rename(tmp, path) != 0) {
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

int port_image_check(const struct image_hdr *h)
{
    /* A tether-sim body is an executable file: nothing is loaded to an
     * address and there is no vector table. */
    return h->flags == 0 && h->load_addr == 0 && h->entry == 0 ? 0 : -1;
}
