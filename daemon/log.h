/* Logging to stderr with syslog priority prefixes ("<3>" .. "<7>"), so
 * journald keeps each line's level when tetherd runs under systemd.  Loop
 * thread and the store's writer thread may both log: each line is written
 * with one write(2).  No allocation. */
#ifndef TETHER_LOG_H
#define TETHER_LOG_H

#include <stdio.h>

#define LOG_LINE_MAX 512 /* longer messages are cut */

/* Syslog priorities; only these four are used. */
enum log_prio {
    LOG_PRIO_ERR = 3,
    LOG_PRIO_WARNING = 4,
    LOG_PRIO_INFO = 6,
    LOG_PRIO_DEBUG = 7,
};

/* Lines above this priority are dropped (default LOG_PRIO_INFO). */
void log_set_level(int prio);
int log_get_level(void);
/* Parses "error", "warning", "info" or "debug"; returns the priority or
 * -1. */
int log_level_parse(const char *name);
const char *log_level_name(int prio);
/* Sends lines to fd instead of stderr (tests). */
void log_set_fd(int fd);

void log_msg(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_PRIO_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_PRIO_WARNING, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_PRIO_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_PRIO_DEBUG, __VA_ARGS__)

#endif
