/* The serial device, opened by path and set to raw 8N1.  See serial.h.
 *
 * The path is resolved first (realpath), so a /dev/serial/by-id/... link
 * or a symlink made by tether-sim --link names the device it points to at
 * the moment of opening; a link that is re-pointed later is followed on
 * the next open.  Then one of two ways is taken:
 *
 *   - A pseudo-terminal slave (the resolved path is under /dev/pts/, or
 *     the device number has a Unix98 pty slave major, 136..143) is opened
 *     and configured here with termios.  libserialport 0.1.1 cannot open
 *     one: sp_get_port_by_name() looks for /sys/class/tty/<name>/device,
 *     which ptys lack, and returns SP_ERR_ARG; sp_open() on a port made by
 *     hand would fail in its TIOCMGET, which ptys refuse.
 *   - Anything else goes to libserialport.  If the library refuses it in
 *     one of those two ways (sp_get_port_by_name() fails, or sp_open()
 *     fails with ENOTTY or EINVAL from TIOCMGET), the device is opened
 *     with termios here instead, provided isatty() says it is a terminal
 *     at all.  /dev/ptmx, a pty master, takes this way: the library knows
 *     its name but its sp_open() fails in TIOCMGET.  /dev/null, unknown
 *     to the library and no terminal, gives -EINVAL.  Every other failure
 *     is reported.
 *
 * Both ways leave a non-blocking, close-on-exec descriptor with VMIN = 1
 * and VTIME = 0.  With those, a read with nothing to read fails with
 * EAGAIN, so a read that returns 0 means the terminal was hung up (a USB
 * adapter unplugged); libserialport sets VMIN = 0, which would make the
 * two look alike, so it is changed after the library has configured the
 * port.  Attributes are always set with TCSANOW: TCSAFLUSH would throw
 * away bytes the MCU sent before the device was opened (its HELLO).
 *
 * Foreign errors (errno, sp_return) are turned into the few negative
 * errno values serial.h lists. */
#include "serial.h"

#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"

#define PTS_DIR          "/dev/pts/"
#define PTY_SLAVE_MAJOR  136u /* Unix98 pty slaves: majors 136..143 */
#define PTY_SLAVE_MAJORS 8u

struct serial {
    int fd;
    struct sp_port *port; /* NULL when opened with termios here */
    bool pty;
};

struct speed {
    uint32_t baud;
    speed_t code;
};

static const struct speed speeds[] = {
    {50, B50},           {75, B75},           {110, B110},
    {134, B134},         {150, B150},         {200, B200},
    {300, B300},         {600, B600},         {1200, B1200},
    {1800, B1800},       {2400, B2400},       {4800, B4800},
    {9600, B9600},       {19200, B19200},     {38400, B38400},
    {57600, B57600},     {115200, B115200},   {230400, B230400},
    {460800, B460800},   {500000, B500000},   {576000, B576000},
    {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
    {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000},
    {3000000, B3000000}, {3500000, B3500000}, {4000000, B4000000},
};

static bool speed_of(uint32_t baud, speed_t *code)
{
    for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++) {
        if (speeds[i].baud == baud) {
            *code = speeds[i].code;
            return true;
        }
    }
    return false;
}

/* The errno of a failed open or configuration, as serial.h lists them. */
static int errno_result(int e)
{
    switch (e) {
    case ENOENT:
    case ENXIO:
    case ENODEV:
    case ENOTDIR:
    case ELOOP:
        return -ENOENT;
    case EACCES:
    case EPERM:
    case EROFS:
        return -EACCES;
    case EBUSY:
        return -EBUSY;
    case EINVAL:
    case ENOTTY:
    case ENAMETOOLONG:
        return -EINVAL;
    default:
        return -EIO;
    }
}

/* A pty slave: /dev/pts/<number>, or a node elsewhere with a slave's
 * major.  The master (/dev/ptmx, /dev/pts/ptmx) is left to the library,
 * whose sp_open() refuses it, so it ends up opened as a plain terminal. */
static bool is_pty(const char *real, const struct stat *st)
{
    size_t dir_len = strlen(PTS_DIR);
    unsigned maj = major(st->st_rdev);

    if (strncmp(real, PTS_DIR, dir_len) == 0 && real[dir_len] >= '0' &&
        real[dir_len] <= '9')
        return true;
    return maj >= PTY_SLAVE_MAJOR && maj < PTY_SLAVE_MAJOR + PTY_SLAVE_MAJORS;
}

/* Raw 8N1 at speed, no software flow control, VMIN = 1 (see the top). */
static int set_raw(int fd, speed_t speed, bool rtscts)
{
    struct termios tio;

    if (tcgetattr(fd, &tio) != 0)
        return errno_result(errno);
    cfmakeraw(&tio);
    tio.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
    tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
    tio.c_cflag |= CS8 | CLOCAL | CREAD;
    if (rtscts)
        tio.c_cflag |= CRTSCTS;
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (cfsetispeed(&tio, speed) != 0 || cfsetospeed(&tio, speed) != 0 ||
        tcsetattr(fd, TCSANOW, &tio) != 0)
        return errno_result(errno);
    return 0;
}

/* Opens and configures the device with termios alone. */
static int open_termios(struct serial *s, const char *real, speed_t speed,
                        bool rtscts)
{
    int r;

    s->fd = open(real, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s->fd < 0)
        return errno_result(errno);
    if (!isatty(s->fd)) {
        r = -EINVAL;
        goto err_fd;
    }
    r = set_raw(s->fd, speed, rtscts);
    if (r != 0)
        goto err_fd;
    return 0;

err_fd:
    close(s->fd);
    s->fd = -1;
    return r;
}

/* The error of a failed libserialport call, as serial.h lists them. */
static int sp_result(enum sp_return sr)
{
    switch (sr) {
    case SP_ERR_FAIL:
        return errno_result(sp_last_error_code());
    case SP_ERR_ARG:
    case SP_ERR_SUPP:
        return -EINVAL;
    case SP_ERR_MEM:
        log_err("out of memory in libserialport");
        abort();
    default:
        return -EIO;
    }
}

static int configure_port(struct serial *s, uint32_t baud, speed_t speed,
                          bool rtscts)
{
    enum sp_return sr;
    int flags;

    sr = sp_set_baudrate(s->port, (int)baud);
    if (sr == SP_OK)
        sr = sp_set_bits(s->port, 8);
    if (sr == SP_OK)
        sr = sp_set_parity(s->port, SP_PARITY_NONE);
    if (sr == SP_OK)
        sr = sp_set_stopbits(s->port, 1);
    if (sr == SP_OK)
        sr = sp_set_flowcontrol(s->port, rtscts ? SP_FLOWCONTROL_RTSCTS
                                                : SP_FLOWCONTROL_NONE);
    if (sr == SP_OK)
        sr = sp_get_port_handle(s->port, &s->fd);
    if (sr != SP_OK)
        return sp_result(sr);
    /* The library's descriptor is blocking on some versions, inheritable,
     * and has VMIN = 0; set_raw() repeats the library's settings and
     * fixes VMIN. */
    flags = fcntl(s->fd, F_GETFL);
    if (flags < 0 || fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        fcntl(s->fd, F_SETFD, FD_CLOEXEC) != 0)
        return errno_result(errno);
    return set_raw(s->fd, speed, rtscts);
}

/* Opens a device that is not a pty through libserialport, falling back to
 * termios where the library does not know the terminal (see the top). */
static int open_library(struct serial *s, const char *real, uint32_t baud,
                        speed_t speed, bool rtscts)
{
    enum sp_return sr;
    int e, r;

    sr = sp_get_port_by_name(real, &s->port);
    if (sr == SP_ERR_MEM)
        return sp_result(sr);
    if (sr != SP_OK) {
        s->port = NULL;
        log_debug("libserialport does not know %s: opening it as a plain "
                  "terminal",
                  real);
        return open_termios(s, real, speed, rtscts);
    }
    sr = sp_open(s->port, SP_MODE_READ_WRITE);
    if (sr != SP_OK) {
        e = sp_last_error_code();
        sp_free_port(s->port);
        s->port = NULL;
        if (sr == SP_ERR_FAIL && (e == ENOTTY || e == EINVAL)) {
            log_debug("libserialport cannot drive %s (%s): opening it as a "
                      "plain terminal",
                      real, strerror(e));
            return open_termios(s, real, speed, rtscts);
        }
        return sr == SP_ERR_FAIL ? errno_result(e) : sp_result(sr);
    }
    r = configure_port(s, baud, speed, rtscts);
    if (r != 0) {
        sp_close(s->port);
        sp_free_port(s->port);
        s->port = NULL;
        s->fd = -1;
    }
    return r;
}

int serial_open(struct serial **out, const char *path, uint32_t baud,
                bool rtscts)
{
    char real[PATH_MAX];
    struct serial *s;
    struct stat st;
    speed_t speed;
    int r;

    *out = NULL;
    if (path == NULL || path[0] == '\0' || !speed_of(baud, &speed))
        return -EINVAL;
    if (realpath(path, real) == NULL || stat(real, &st) != 0)
        return errno_result(errno);
    if (!S_ISCHR(st.st_mode))
        return -EINVAL;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        log_err("out of memory opening %s", path);
        abort();
    }
    s->fd = -1;
    s->pty = is_pty(real, &st);
    if (s->pty)
        r = open_termios(s, real, speed, rtscts);
    else
        r = open_library(s, real, baud, speed, rtscts);
    if (r != 0) {
        free(s);
        return r;
    }
    *out = s;
    return 0;
}

void serial_close(struct serial *s)
{
    if (s == NULL)
        return;
    if (s->port != NULL) {
        sp_close(s->port);
        sp_free_port(s->port);
    } else if (s->fd >= 0) {
        close(s->fd);
    }
    free(s);
}

int serial_fd(const struct serial *s)
{
    return s->fd;
}

bool serial_is_pty(const struct serial *s)
{
    return s->pty;
}

ssize_t serial_read(struct serial *s, void *buf, size_t n)
{
    ssize_t r;

    if (n == 0)
        return 0;
    do {
        r = read(s->fd, buf, n);
    } while (r < 0 && errno == EINTR);
    if (r > 0)
        return r;
    if (r == 0)
        return -EIO; /* hung up: with VMIN = 1 nothing else reads 0 */
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    return -errno;
}

ssize_t serial_write(struct serial *s, const void *buf, size_t n)
{
    ssize_t r;

    if (n == 0)
        return 0;
    do {
        r = write(s->fd, buf, n);
    } while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    return -errno;
}
