/* systemd notifications.  See sdnotify.h. */
#include "sdnotify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "log.h"

#define STATUS_MAX 256

static void notify(const char *msg)
{
    int r = sd_notify(0, msg);

    if (r < 0)
        log_warn("sd_notify(%s): error %d", msg, r);
}

void sdnotify_ready(void)
{
    notify("READY=1");
}

void sdnotify_reloading(void)
{
    notify("RELOADING=1");
}

void sdnotify_stopping(void)
{
    notify("STOPPING=1");
}

void sdnotify_watchdog(void)
{
    notify("WATCHDOG=1");
}

void sdnotify_status(const char *fmt, ...)
{
    char line[STATUS_MAX] = "STATUS=";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line + 7, sizeof(line) - 7, fmt, ap);
    va_end(ap);
    notify(line);
}

uint64_t sdnotify_watchdog_usec(void)
{
    uint64_t usec = 0;

    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

int sdnotify_listen_fd(void)
{
    int n = sd_listen_fds(1);

    if (n < 0)
        log_warn("sd_listen_fds: error %d", n);
    if (n > 1)
        log_warn("systemd passed %d sockets; using the first", n);
    return n >= 1 ? SD_LISTEN_FDS_START : -1;
}
