/* Blocking JSON-RPC client over a Unix stream socket.  See rpc.h.
 *
 * Lines from the daemon may arrive split across reads or several to a read,
 * and notifications may be interleaved with the response we wait for (a
 * watcher's first samples can overtake the "watch" result), so input goes
 * through one fixed buffer of RPC_LINE_MAX + 1 bytes from which whole lines
 * are cut.  The buffer is allocated once; a line that fills it without a
 * newline is an error, not a reason to grow.  All waits go through poll()
 * against a monotonic deadline so that a slow trickle of bytes cannot
 * stretch the timeout. */
#include "rpc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (RPC_LINE_MAX + 1) /* a full line plus its newline */

struct rpc {
    int fd;
    int timeout_ms;
    long next_id;
    size_t len; /* bytes held in buf */
    void (*note_fn)(const cJSON *note, void *arg);
    void *note_arg;
    char buf[BUF_SIZE];
};

int rpc_open(struct rpc **out, const char *path, int timeout_ms)
{
    struct sockaddr_un sa;
    struct rpc *r;
    int err;

    *out = NULL;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);

    r = malloc(sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        err = -errno;
        goto err_alloc;
    }
    if (connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = -errno;
        goto err_socket;
    }
    r->timeout_ms = timeout_ms;
    r->next_id = 1;
    r->len = 0;
    r->note_fn = NULL;
    r->note_arg = NULL;
    *out = r;
    return 0;

err_socket:
    close(r->fd);
err_alloc:
    free(r);
    return err;
}

void rpc_close(struct rpc *r)
{
    if (r == NULL)
        return;
    close(r->fd);
    free(r);
}

void rpc_set_note_fn(struct rpc *r, void (*fn)(const cJSON *note, void *arg),
                     void *arg)
{
    r->note_fn = fn;
    r->note_arg = arg;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline for poll(); -1 deadline means forever. */
static int remaining(int64_t deadline)
{
    int64_t left;

    if (deadline < 0)
        return -1;
    left = deadline - mono_ms();
    return left < 0 ? 0 : (int)left;
}

static int send_line(struct rpc *r, const char *text, int64_t deadline)
{
    size_t len = strlen(text);
    size_t off = 0;
    int first = 1;

    while (off < len + 1) {
        const char *p = off < len ? text + off : "\n";
        size_t n = off < len ? len - off : 1;
        struct pollfd pfd = {.fd = r->fd, .events = POLLOUT};
        ssize_t w;
        int pr;

        if (!first) {
            pr = poll(&pfd, 1, remaining(deadline));
            if (pr < 0)
                return -errno;
            if (pr == 0)
                return -ETIMEDOUT;
        }
        first = 0;
        w = send(r->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            return errno == EPIPE ? -ECONNRESET : -errno;
        }
        off += (size_t)w;
    }
    return 0;
}

/* Cuts the next whole line out of buf, parsing it.  Returns 1 with *msg
 * set, 0 when no whole line is buffered yet, or a negative code. */
static int take_line(struct rpc *r, cJSON **msg)
{
    char *nl = memchr(r->buf, '\n', r->len);
    size_t line_len, used;
    cJSON *j;

    if (nl == NULL)
        return r->len >= BUF_SIZE ? -EMSGSIZE : 0;
    line_len = (size_t)(nl - r->buf);
    used = line_len + 1;
    if (line_len > 0 && r->buf[line_len - 1] == '\r')
        line_len--;
    /* The newline (or CR) is consumed anyway; terminating there lets cJSON
     * insist that nothing but whitespace follows the object. */
    r->buf[line_len] = '\0';
    j = line_len > 0 ? cJSON_ParseWithOpts(r->buf, NULL, 1) : NULL;
    memmove(r->buf, r->buf + used, r->len - used);
    r->len -= used;
    if (line_len == 0)
        return take_line(r, msg); /* blank lines carry nothing */
    if (j == NULL || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return -EPROTO;
    }
    *msg = j;
    return 1;
}

static int read_message(struct rpc *r, int64_t deadline, cJSON **msg)
{
    for (;;) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        ssize_t n;
        int rc = take_line(r, msg);

        if (rc != 0)
            return rc < 0 ? rc : 0;
        rc = poll(&pfd, 1, remaining(deadline));
        if (rc < 0)
            return -errno;
        if (rc == 0)
            return -ETIMEDOUT;
        n = read(r->fd, r->buf + r->len, BUF_SIZE - r->len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ECONNRESET;
        r->len += (size_t)n;
    }
}

static int fill_error(const cJSON *e, struct rpc_error *err)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(e, "message");

    if (!cJSON_IsObject(e) || !cJSON_IsNumber(code))
        return -EPROTO;
    err->code = (long)code->valuedouble;
    snprintf(err->message, sizeof(err->message), "%s",
             cJSON_IsString(message) ? message->valuestring : "(no message)");
    return RPC_EREMOTE;
}

int rpc_call(struct rpc *r, const char *method, cJSON *params, cJSON **result,
             struct rpc_error *err)
{
    int64_t deadline = mono_ms() + r->timeout_ms;
    long id = r->next_id++;
    cJSON *req = cJSON_CreateObject();
    char *text;
    int rc;

    *result = NULL;
    cJSON_AddStringToObject(req, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(req, "id", (double)id);
    cJSON_AddStringToObject(req, "method", method);
    if (params != NULL)
        cJSON_AddItemToObject(req, "params", params);
    text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (text == NULL)
        return -ENOMEM;
    rc = send_line(r, text, deadline);
    cJSON_free(text);
    if (rc != 0)
        return rc;

    for (;;) {
        cJSON *msg = NULL;
        const cJSON *mid, *res, *e;

        rc = read_message(r, deadline, &msg);
        if (rc != 0)
            return rc;
        mid = cJSON_GetObjectItemCaseSensitive(msg, "id");
        if (mid == NULL) {
            if (r->note_fn != NULL)
                r->note_fn(msg, r->note_arg);
            cJSON_Delete(msg);
            continue;
        }
        /* A null id answers a request the server could not read at all
         * (parse error, too long); it is meant for us too. */
        if (!cJSON_IsNull(mid) &&
            !(cJSON_IsNumber(mid) && mid->valuedouble == (double)id)) {
            cJSON_Delete(msg);
            continue;
        }
        e = cJSON_GetObjectItemCaseSensitive(msg, "error");
        res = cJSON_GetObjectItemCaseSensitive(msg, "result");
        if (e != NULL)
            rc = fill_error(e, err);
        else if (res != NULL)
            *result = cJSON_DetachItemViaPointer(msg, (cJSON *)res);
        else
            rc = -EPROTO;
        cJSON_Delete(msg);
        return rc;
    }
}

int rpc_next_note(struct rpc *r, int timeout_ms, cJSON **note)
{
    int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;

    *note = NULL;
    for (;;) {
        cJSON *msg = NULL;
        int rc = read_message(r, deadline, &msg);

        if (rc != 0)
            return rc;
        if (cJSON_GetObjectItemCaseSensitive(msg, "id") == NULL) {
            *note = msg;
            return 0;
        }
        cJSON_Delete(msg);
    }
}
