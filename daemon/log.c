/* Priority-prefixed logging to stderr.  See log.h. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static int level = LOG_PRIO_INFO;
static int out_fd = STDERR_FILENO;

void log_set_level(int prio)
{
    level = prio;
}

int log_get_level(void)
{
    return level;
}

void log_set_fd(int fd)
{
    out_fd = fd;
}

int log_level_parse(const char *name)
{
    if (strcmp(name, "error") == 0)
        return LOG_PRIO_ERR;
    if (strcmp(name, "warning") == 0)
        return LOG_PRIO_WARNING;
    if (strcmp(name, "info") == 0)
        return LOG_PRIO_INFO;
    if (strcmp(name, "debug") == 0)
        return LOG_PRIO_DEBUG;
    return -1;
}

const char *log_level_name(int prio)
{
    switch (prio) {
    case LOG_PRIO_ERR:
        return "error";
    case LOG_PRIO_WARNING:
        return "warning";
    case LOG_PRIO_DEBUG:
        return "debug";
    default:
        return "info";
    }
}

void log_msg(int prio, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    int n, m;

    if (prio > level)
        return;
    n = snprintf(line, sizeof(line), "<%d>", prio);
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(out_fd, line, (size_t)n);
}
