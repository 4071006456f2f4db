/* The serial device: opened by path (including /dev/serial/by-id/...
 * links), set to baud 8N1 with no or RTS/CTS flow control, non-blocking.
 *
 * Real UARTs go through libserialport.  Pseudo-terminals (tether-sim,
 * QEMU's -serial pty, socat and ser2net bridges) are refused by Debian's
 * libserialport 0.1.1, which looks for /sys/class/tty/<name>/device and
 * calls TIOCMGET; a path that resolves to a pty (/dev/pts/N or /dev/ptmx
 * children) is therefore opened and configured here with termios directly.
 * Both paths give the same non-blocking fd.  libserialport is used nowhere
 * else.
 *
 * Errors are negative errno values: -ENOENT (no such device), -EACCES,
 * -EBUSY, -EINVAL (bad baud or not a tty), -EIO. */
#ifndef TETHER_SERIAL_H
#define TETHER_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct serial;

/* Caller owns the result; free with serial_close(). */
int serial_open(struct serial **out, const char *path, uint32_t baud,
                bool rtscts);
void serial_close(struct serial *s); /* NULL is a no-op */

/* The non-blocking descriptor, for the event loop.  Borrowed. */
int serial_fd(const struct serial *s);
/* True when the device was opened as a pseudo-terminal. */
bool serial_is_pty(const struct serial *s);

/* Returns bytes read (0: nothing now) or a negative errno (the device is
 * gone: -EIO, -ENXIO, -ENODEV). */
ssize_t serial_read(struct serial *s, void *buf, size_t n);
/* Returns bytes written (maybe fewer than n) or a negative errno. */
ssize_t serial_write(struct serial *s, const void *buf, size_t n);

#endif
