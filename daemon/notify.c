/* Running the alert command.  See notify.h.
 *
 * The command belongs to the administrator, but what it does is not under
 * our control: it may hang, fail to start, or exit with an error, and an
 * alert storm must not fork without bound.  So each run is a libuv child
 * process with a timer that SIGKILLs it after timeout_ms (0: no limit), at
 * most NOTIFY_RUNNING_MAX runs exist at once, and every failure is logged
 * and counted rather than reported back into the alert path.
 *
 * There is no shell: the command line is split on blanks and executed
 * directly (a script with a #! line is fine).  The child gets /dev/null as
 * stdin and our stdout and stderr, so what it prints reaches the journal.
 * Its environment is ours with the TETHER_* event variables set, replacing
 * any we inherited under the same names.
 *
 * A run owns two handles, the process and its timer, and is freed only
 * when both close callbacks have run.  The process handle is closed after
 * the child has exited, never before, so that libuv reaps it and no zombie
 * is left; notify_close() therefore kills what still runs and waits for
 * the exits. */
#include "notify.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define COMMAND_MAX   CONFIG_COMMAND_MAX /* command line, with its NUL */
#define ENV_VARS      8                  /* the TETHER_* variables */
#define ENV_VALUE_MAX 32                 /* any of them but the message */

/* One start of the command. */
struct run {
    struct notify *n;
    uv_process_t proc;
    uv_timer_t timer;
    char line[COMMAND_MAX]; /* the command, split in place */
    char *args[NOTIFY_ARGS_MAX + 1];
    char **env; /* one block: pointers, then strings */
    uint32_t timeout_ms;
    int open_handles;
    bool exited;
    bool timed_out;
};

struct notify {
    uv_loop_t *loop;
    char command[COMMAND_MAX];
    bool has_command; /* command has a word */
    uint32_t timeout_ms;
    struct run *runs[NOTIFY_RUNNING_MAX];
    size_t live; /* non-NULL entries of runs */
    struct notify_stats stats;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
};

static const char *const our_vars[ENV_VARS] = {
    "TETHER_EVENT",    "TETHER_STATE", "TETHER_VALUE",   "TETHER_THRESHOLD",
    "TETHER_ESTIMATE", "TETHER_TIME",  "TETHER_TIME_US", "TETHER_MESSAGE",
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Splits line in place into args (NULL-terminated); returns the word
 * count, or -E2BIG when there are more than NOTIFY_ARGS_MAX. */
static int split(char *line, char **args)
{
    int argc = 0;
    char *p = line;

    for (;;) {
        while (is_blank(*p))
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (argc == NOTIFY_ARGS_MAX)
            return -E2BIG;
        args[argc++] = p;
        while (*p != '\0' && !is_blank(*p))
            p++;
    }
    args[argc] = NULL;
    return argc;
}

/* Checks a command line; returns its word count, or -E2BIG with the
 * reason logged. */
static int check_command(const char *command)
{
    char line[COMMAND_MAX];
    char *args[NOTIFY_ARGS_MAX + 1];
    size_t len = strlen(command);
    int words;

    if (len >= sizeof(line)) {
        log_err("alert command is longer than %d bytes", COMMAND_MAX - 1);
        return -E2BIG;
    }
    memcpy(line, command, len + 1);
    words = split(line, args);
    if (words < 0)
        log_err("alert command has more than %d words: %s", NOTIFY_ARGS_MAX,
                command);
    return words;
}

static bool inherited_is_ours(const char *entry)
{
    for (size_t i = 0; i < ENV_VARS; i++) {
        size_t k = strlen(our_vars[i]);

        if (strncmp(entry, our_vars[i], k) == 0 && entry[k] == '=')
            return true;
    }
    return false;
}

static void fmt_number(char *buf, size_t cap, double v, bool present)
{
    if (present)
        snprintf(buf, cap, "%.0f", v);
    else
        buf[0] = '\0';
}

static void fmt_time(char *buf, size_t cap, int64_t t_us)
{
    time_t s = (time_t)(t_us / 1000000 - (t_us % 1000000 < 0));
    struct tm tm;

    if (gmtime_r(&s, &tm) == NULL ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
}

/* Builds the child's environment in one allocation: the pointer array
 * first, the strings after it.  Returns NULL when out of memory. */
static char **make_env(const struct alert_event *ev)
{
    char value[ENV_VARS][ENV_VALUE_MAX];
    const char *vals[ENV_VARS];
    size_t count = 0, bytes = 0, i, k = 0;
    char **env;
    char *s;

    fmt_number(value[2], ENV_VALUE_MAX, ev->value, true);
    fmt_number(value[3], ENV_VALUE_MAX, ev->threshold, ev->threshold > 0);
    fmt_number(value[4], ENV_VALUE_MAX, ev->estimate_s, ev->estimate_s >= 0);
    fmt_time(value[5], ENV_VALUE_MAX, ev->t_us);
    snprintf(value[6], ENV_VALUE_MAX, "%" PRId64, ev->t_us);
    vals[0] = ev->name;
    vals[1] = ev->state;
    for (i = 2; i < 7; i++)
        vals[i] = value[i];
    vals[7] = ev->message;

    for (i = 0; environ[i] != NULL; i++) {
        if (inherited_is_ours(environ[i]))
            continue;
        count++;
        bytes += strlen(environ[i]) + 1;
    }
    for (i = 0; i < ENV_VARS; i++)
        bytes += strlen(our_vars[i]) + 1 + strlen(vals[i]) + 1;
    count += ENV_VARS;

    env = malloc((count + 1) * sizeof(*env) + bytes);
    if (env == NULL)
        return NULL;
    s = (char *)(env + count + 1);
    for (i = 0; environ[i] != NULL; i++) {
        size_t len;

        if (inherited_is_ours(environ[i]))
            continue;
        len = strlen(environ[i]) + 1;
        memcpy(s, environ[i], len);
        env[k++] = s;
        s += len;
    }
    for (i = 0; i < ENV_VARS; i++) {
        int len = sprintf(s, "%s=%s", our_vars[i], vals[i]);

        env[k++] = s;
        s += len + 1;
    }
    env[k] = NULL;
    return env;
}

static void finish_close(struct notify *n)
{
    void (*done)(void *arg) = n->done;
    void *arg = n->done_arg;

    free(n);
    if (done != NULL)
        done(arg);
}

static void on_run_closed(uv_handle_t *h)
{
    struct run *r = h->data;
    struct notify *n = r->n;

    if (--r->open_handles > 0)
        return;
    for (size_t i = 0; i < NOTIFY_RUNNING_MAX; i++) {
        if (n->runs[i] == r) {
            n->runs[i] = NULL;
            n->live--;
            break;
        }
    }
    free(r->env);
    free(r);
    if (n->closing && n->live == 0)
        finish_close(n);
}

static void close_run(struct run *r)
{
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_run_closed);
    uv_close((uv_handle_t *)&r->proc, on_run_closed);
}

static void on_child_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct run *r = p->data;
    struct notify *n = r->n;

    r->exited = true;
    /* A child we killed was counted as a timeout already, or we are
     * shutting down. */
    if (!r->timed_out && !n->closing) {
        if (term_signal != 0) {
            n->stats.failed++;
            log_warn("alert command %s killed by signal %d", r->args[0],
                     term_signal);
        } else if (status != 0) {
            n->stats.failed++;
            log_warn("alert command %s exited with %" PRId64, r->args[0],
                     status);
        }
    }
    close_run(r);
}

static void on_timeout(uv_timer_t *t)
{
    struct run *r = t->data;
    struct notify *n = r->n;
    int e;

    if (r->exited)
        return;
    r->timed_out = true;
    n->stats.timeouts++;
    log_warn("alert command %s still running after %" PRIu32 " ms: killing it",
             r->args[0], r->timeout_ms);
    e = uv_process_kill(&r->proc, SIGKILL);
    if (e != 0 && e != UV_ESRCH)
        log_warn("alert command %s: cannot kill pid %d: %s", r->args[0],
                 r->proc.pid, uv_strerror(e));
}

int notify_new(struct notify **out, uv_loop_t *loop, const char *command,
               uint32_t timeout_ms)
{
    struct notify *n;
    int r;

    assert(out != NULL && loop != NULL);
    if (command == NULL)
        command = "";
    r = check_command(command);
    if (r < 0)
        return r;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    n->loop = loop;
    strcpy(n->command, command);
    n->has_command = r > 0;
    n->timeout_ms = timeout_ms;
    *out = n;
    return 0;
}

int notify_set_command(struct notify *n, const char *command,
                       uint32_t timeout_ms)
{
    int r;

    if (command == NULL)
        command = "";
    r = check_command(command);
    if (r < 0)
        return r;
    strcpy(n->command, command);
    n->has_command = r > 0;
    n->timeout_ms = timeout_ms;
    return 0;
}

static struct run **free_slot(struct notify *n)
{
    for (size_t i = 0; i < NOTIFY_RUNNING_MAX; i++)
        if (n->runs[i] == NULL)
            return &n->runs[i];
    return NULL;
}

int notify_run(struct notify *n, const struct alert_event *ev)
{
    uv_stdio_container_t stdio[3];
    uv_process_options_t opt;
    struct run **slot;
    struct run *r;
    int e;

    if (n == NULL || n->closing)
        return -ESHUTDOWN;
    if (!n->has_command)
        return 0;
    slot = free_slot(n);
    if (slot == NULL) {
        n->stats.dropped++;
        log_warn("alert command not run for %s %s: %d commands still "
                 "running",
                 ev->name, ev->state, NOTIFY_RUNNING_MAX);
        return -EBUSY;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto err_nomem;
    strcpy(r->line, n->command);
    (void)split(r->line, r->args); /* checked when it was set */
    r->env = make_env(ev);
    if (r->env == NULL)
        goto err_run;

    memset(&opt, 0, sizeof(opt));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = STDOUT_FILENO;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = STDERR_FILENO;
    opt.exit_cb = on_child_exit;
    opt.file = r->args[0];
    opt.args = r->args;
    opt.env = r->env;
    opt.stdio_count = 3;
    opt.stdio = stdio;

    r->n = n;
    r->timeout_ms = n->timeout_ms;
    r->open_handles = 2;
    *slot = r;
    n->live++;
    uv_timer_init(n->loop, &r->timer);
    r->timer.data = r;
    r->proc.data = r;
    e = uv_spawn(n->loop, &r->proc, &opt);
    if (e != 0) {
        /* libuv initialised the handle even so; it closes like any. */
        n->stats.failed++;
        log_warn("alert command %s cannot start: %s", r->args[0],
                 uv_strerror(e));
        r->exited = true;
        close_run(r);
        return e;
    }
    n->stats.started++;
    if (r->timeout_ms > 0)
        uv_timer_start(&r->timer, on_timeout, r->timeout_ms, 0);
    return 0;

err_run:
    free(r);
err_nomem:
    n->stats.failed++;
    log_warn("alert command not run for %s %s: out of memory", ev->name,
             ev->state);
    return -ENOMEM;
}

void notify_get_stats(const struct notify *n, struct notify_stats *out)
{
    *out = n->stats;
}

void notify_close(struct notify *n, void (*done)(void *arg), void *arg)
{
    if (n == NULL) {
        if (done != NULL)
            done(arg);
        return;
    }
    assert(!n->closing);
    n->closing = true;
    n->done = done;
    n->done_arg = arg;
    if (n->live == 0) {
        finish_close(n);
        return;
    }
    /* Each exit callback closes its run's handles; the last close frees
     * n.  SIGKILL cannot be caught, so the exits follow promptly. */
    for (size_t i = 0; i < NOTIFY_RUNNING_MAX; i++) {
        struct run *r = n->runs[i];
        int e;

        if (r == NULL || r->exited)
            continue;
        uv_timer_stop(&r->timer);
        e = uv_process_kill(&r->proc, SIGKILL);
        if (e != 0 && e != UV_ESRCH)
            log_warn("alert command %s: cannot kill pid %d: %s", r->args[0],
                     r->proc.pid, uv_strerror(e));
    }
}
