/* Service notifications to systemd (Type=notify) through libsystemd's
 * sd_notify(), the only user of libsystemd.  Without $NOTIFY_SOCKET every
 * call is a no-op, so tetherd runs the same in a terminal. */
#ifndef TETHER_SDNOTIFY_H
#define TETHER_SDNOTIFY_H

#include <stdint.h>

void sdnotify_ready(void);
void sdnotify_reloading(void);
void sdnotify_stopping(void);
void sdnotify_watchdog(void);
/* STATUS= line shown by systemctl status. */
void sdnotify_status(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* The watchdog period systemd asked for, in microseconds, or 0. */
uint64_t sdnotify_watchdog_usec(void);
/* The socket systemd passed (socket activation, one fd):
 * SD_LISTEN_FDS_START, or -1 when none was passed. */
int sdnotify_listen_fd(void);

#endif
