/* The query server: a libuv Unix socket listener, line framing with a
 * hard cap, JSON-RPC 2.0 dispatch, bounded per-client output and topic
 * notifications.  See qsrv.h for the conditions it lives with.
 *
 * Every client owns a fixed line buffer of QSRV_REQUEST_MAX bytes; bytes
 * are appended until a newline completes a request, so requests may be
 * split across reads or several may arrive in one.  Output is written with
 * one uv_write per message; the bytes not yet confirmed by a write
 * callback count against the client's QSRV_OUTPUT_MAX.
 *
 * A call keeps a pointer to its client, and each client lists its pending
 * calls, so closing a client can orphan them: a late reply to an orphaned
 * call frees it and sends nothing.  Loop thread only. */
#include "qsrv.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define NSS_BUF_MAX 16384 /* getpwuid_r / getgrnam_r scratch */

struct method {
    char name[QSRV_METHOD_NAME_MAX];
    int (*fn)(void *ctx, struct qsrv_call *call,
              const struct qsrv_params *params);
    void *ctx;
    bool admin_only;
};

struct qsrv_json {
    cJSON *root;
    cJSON *stack[QSRV_JSON_DEPTH_MAX + 1]; /* [0] is the root */
    int depth;                             /* open containers */
};

struct client {
    uv_pipe_t pipe;
    struct qsrv *srv;
    struct client *prev, *next;
    struct qsrv_call *calls; /* pending, linked through call->next */
    uid_t uid;
    gid_t gid;
    unsigned topics;
    bool closing;
    size_t queued; /* output bytes awaiting their write callback */
    size_t line_len;
    char line[QSRV_REQUEST_MAX + 1];
};

struct qsrv_params {
    const cJSON *obj; /* NULL when the request had none */
    struct qsrv_call *call;
};

struct qsrv_call {
    struct client *client; /* NULL once orphaned */
    struct qsrv_call *prev, *next;
    cJSON *id; /* detached copy; NULL for a notification */
    bool notification;
    struct qsrv_json result;
    char message[QSRV_MESSAGE_MAX]; /* from a failed accessor */
};

struct write_req {
    uv_write_t req;
    struct client *client;
    size_t len;
    char data[];
};

struct qsrv {
    uv_loop_t *loop;
    uv_pipe_t listener;
    struct client *clients;
    struct method methods[QSRV_METHODS_MAX];
    size_t n_methods;
    struct qsrv_stats stats;
    struct qsrv_json notify;
    bool (*admin_check)(void *arg, uid_t uid, gid_t gid);
    void *admin_check_arg;
    bool has_admin_gid;
    gid_t admin_gid;
    bool created_path;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    bool closing;
    size_t handles; /* open handles: the listener plus rejected pipes */
    void (*done)(void *arg);
    void *done_arg;
};

/* --- Allocation ------------------------------------------------------ */

/* Allocation failure in the daemon aborts with a log line; cJSON's
 * allocator goes through the same hook. */
static void *xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);

    if (p == NULL) {
        log_err("out of memory (%zu bytes) in the query server", n);
        abort();
    }
    return p;
}

static void *xcalloc(size_t n)
{
    void *p = xmalloc(n);

    memset(p, 0, n);
    return p;
}

static void init_cjson(void)
{
    static bool done;
    cJSON_Hooks hooks = {.malloc_fn = xmalloc, .free_fn = free};

    if (!done) {
        cJSON_InitHooks(&hooks);
        done = true;
    }
}

/* --- Builder --------------------------------------------------------- */

static void json_reset(struct qsrv_json *j)
{
    cJSON_Delete(j->root);
    memset(j, 0, sizeof(*j));
}

static void json_root(struct qsrv_json *j, cJSON *root)
{
    assert(j->root == NULL);
    if (root == NULL) {
        log_err("out of memory in the query server");
        abort();
    }
    j->root = root;
    j->stack[0] = root;
    j->depth = 0;
}

void qsrv_json_object(struct qsrv_json *j)
{
    json_root(j, cJSON_CreateObject());
}

void qsrv_json_array(struct qsrv_json *j)
{
    json_root(j, cJSON_CreateArray());
}

/* Attaches item to the innermost open container. */
static void json_put(struct qsrv_json *j, const char *key, cJSON *item)
{
    cJSON *top;

    assert(j->root != NULL);
    if (item == NULL) {
        log_err("out of memory in the query server");
        abort();
    }
    top = j->stack[j->depth];
    if (cJSON_IsArray(top)) {
        cJSON_AddItemToArray(top, item);
    } else {
        assert(key != NULL);
        cJSON_AddItemToObject(top, key, item);
    }
}

void qsrv_add_int(struct qsrv_json *j, const char *key, int64_t v)
{
    char text[32];

    /* Raw text keeps 64-bit integers exact; cJSON holds numbers as
     * doubles and would print large ones in exponent form. */
    snprintf(text, sizeof(text), "%" PRId64, v);
    json_put(j, key, cJSON_CreateRaw(text));
}

void qsrv_add_double(struct qsrv_json *j, const char *key, double v)
{
    json_put(j, key, cJSON_CreateNumber(v));
}

void qsrv_add_bool(struct qsrv_json *j, const char *key, bool v)
{
    json_put(j, key, cJSON_CreateBool(v));
}

void qsrv_add_str(struct qsrv_json *j, const char *key, const char *v)
{
    json_put(j, key, cJSON_CreateString(v != NULL ? v : ""));
}

void qsrv_add_null(struct qsrv_json *j, const char *key)
{
    json_put(j, key, cJSON_CreateNull());
}

static void json_begin(struct qsrv_json *j, const char *key, cJSON *c)
{
    assert(j->depth < QSRV_JSON_DEPTH_MAX);
    json_put(j, key, c);
    j->stack[++j->depth] = c;
}

void qsrv_begin_object(struct qsrv_json *j, const char *key)
{
    json_begin(j, key, cJSON_CreateObject());
}

void qsrv_begin_array(struct qsrv_json *j, const char *key)
{
    json_begin(j, key, cJSON_CreateArray());
}

void qsrv_end(struct qsrv_json *j)
{
    assert(j->depth > 0);
    j->depth--;
}

/* --- Output ---------------------------------------------------------- */

static void client_close(struct client *c);

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;

    (void)status; /* a failed write shows up as a read error or EOF */
    w->client->queued -= w->len;
    free(w);
}

/* Queues one message (text plus a newline) for c; drops c when its queue
 * would pass QSRV_OUTPUT_MAX. */
static void client_send(struct client *c, const char *text)
{
    size_t n = strlen(text);
    struct write_req *w;
    uv_buf_t buf;
    int r;

    if (c->closing)
        return;
    if (c->queued + n + 1 > QSRV_OUTPUT_MAX) {
        log_warn("query client uid %u: output queue full, dropping it",
                 (unsigned)c->uid);
        c->srv->stats.dropped_slow++;
        client_close(c);
        return;
    }
    w = xmalloc(sizeof(*w) + n + 1);
    w->client = c;
    w->len = n + 1;
    memcpy(w->data, text, n);
    w->data[n] = '\n';
    buf = uv_buf_init(w->data, (unsigned)(n + 1));
    r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_write);
    if (r < 0) {
        log_debug("query client write failed: %s", uv_strerror(r));
        free(w);
        client_close(c);
        return;
    }
    c->queued += w->len;
}

static void send_json(struct client *c, const cJSON *msg)
{
    char *text = cJSON_PrintUnformatted(msg);

    if (text == NULL) {
        log_err("out of memory in the query server");
        abort();
    }
    client_send(c, text);
    cJSON_free(text);
}

static const char *std_message(int code)
{
    switch (code) {
    case QSRV_EPARSE:
        return "parse error";
    case QSRV_EINVALID:
        return "invalid request";
    case QSRV_ENOMETHOD:
        return "method not found";
    case QSRV_EPARAMS:
        return "invalid params";
    case QSRV_ELINK_DOWN:
        return "link down";
    case QSRV_ESTALE:
        return "stale data";
    case QSRV_ETIMEOUT:
        return "timed out";
    case QSRV_ESTORE:
        return "store error";
    case QSRV_EPERM:
        return "permission denied";
    case QSRV_EBUSY:
        return "busy";
    default:
        return "internal error";
    }
}

/* Sends an error response; id NULL means JSON null. */
static void send_error(struct client *c, const cJSON *id, int code,
                       const char *msg)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *e = cJSON_CreateObject();

    if (m == NULL || e == NULL) {
        log_err("out of memory in the query server");
        abort();
    }
    c->srv->stats.errors++;
    cJSON_AddStringToObject(m, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message",
                            msg != NULL ? msg : std_message(code));
    cJSON_AddItemToObject(m, "error", e);
    if (id != NULL)
        cJSON_AddItemToObject(m, "id", cJSON_Duplicate(id, true));
    else
        cJSON_AddNullToObject(m, "id");
    send_json(c, m);
    cJSON_Delete(m);
}

/* --- Calls ----------------------------------------------------------- */

static void call_free(struct qsrv_call *call)
{
    struct client *c = call->client;

    if (c != NULL) {
        if (call->prev != NULL)
            call->prev->next = call->next;
        else
            c->calls = call->next;
        if (call->next != NULL)
            call->next->prev = call->prev;
    }
    json_reset(&call->result);
    cJSON_Delete(call->id);
    free(call);
}

void qsrv_reply(struct qsrv_call *call)
{
    struct client *c = call->client;
    cJSON *m;

    if (c != NULL && !call->notification) {
        m = cJSON_CreateObject();
        if (m == NULL) {
            log_err("out of memory in the query server");
            abort();
        }
        cJSON_AddStringToObject(m, "jsonrpc", "2.0");
        if (call->result.root != NULL) {
            cJSON_AddItemToObject(m, "result", call->result.root);
            call->result.root = NULL;
        } else {
            cJSON_AddNullToObject(m, "result");
        }
        cJSON_AddItemToObject(m, "id", call->id);
        call->id = NULL;
        send_json(c, m);
        cJSON_Delete(m);
    }
    call_free(call);
}

void qsrv_reply_error(struct qsrv_call *call, int code, const char *msg)
{
    struct client *c = call->client;

    if (c != NULL) {
        if (call->notification)
            c->srv->stats.errors++;
        else
            send_error(c, call->id, code, msg);
    }
    call_free(call);
}

bool qsrv_call_orphaned(const struct qsrv_call *call)
{
    return call->client == NULL;
}

uid_t qsrv_call_uid(const struct qsrv_call *call)
{
    return call->client != NULL ? call->client->uid : (uid_t)-1;
}

void qsrv_subscribe(struct qsrv_call *call, unsigned topics)
{
    if (call->client != NULL)
        call->client->topics |= topics;
}

void qsrv_unsubscribe(struct qsrv_call *call, unsigned topics)
{
    if (call->client != NULL)
        call->client->topics &= ~topics;
}

struct qsrv_json *qsrv_call_result(struct qsrv_call *call)
{
    return &call->result;
}

/* --- Params ---------------------------------------------------------- */

/* Finds a member, or NULL when absent (a JSON null counts as absent). */
static const cJSON *param(const struct qsrv_params *p, const char *name)
{
    const cJSON *v;

    if (p->obj == NULL)
        return NULL;
    v = cJSON_GetObjectItemCaseSensitive(p->obj, name);
    return cJSON_IsNull(v) ? NULL : v;
}

static int param_error(const struct qsrv_params *p, const char *name,
                       const char *what)
{
    snprintf(p->call->message, sizeof(p->call->message),
             "invalid params: %s must be %s", name, what);
    return QSRV_EPARAMS;
}

int qsrv_param_int(const struct qsrv_params *p, const char *name, int64_t def,
                   int64_t *out)
{
    const cJSON *v = param(p, name);
    double d;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v))
        return param_error(p, name, "an integer");
    d = v->valuedouble;
    /* Only integers a double holds exactly are accepted. */
    if (d != (double)(int64_t)d || d < -9007199254740992.0 ||
        d > 9007199254740992.0)
        return param_error(p, name, "an integer");
    *out = (int64_t)d;
    return 0;
}

/* The array member name, or NULL with 0 (absent) or an error. */
static int param_array(const struct qsrv_params *p, const char *name,
                       size_t cap, const cJSON **arr, size_t *n, bool *present)
{
    const cJSON *v = param(p, name);

    *arr = NULL;
    *n = 0;
    *present = v != NULL;
    if (v == NULL)
        return 0;
    if (!cJSON_IsArray(v))
        return param_error(p, name, "an array");
    if ((size_t)cJSON_GetArraySize(v) > cap)
        return param_error(p, name, "a shorter array");
    *arr = v;
    return 0;
}

int qsrv_param_int_array(const struct qsrv_params *p, const char *name,
                         int64_t *out, size_t cap, size_t *n, bool *present)
{
    const cJSON *arr, *e;
    size_t k = 0;
    int r = param_array(p, name, cap, &arr, n, present);

    if (r != 0 || arr == NULL)
        return r;
    cJSON_ArrayForEach(e, arr)
    {
        double d = e->valuedouble;

        if (!cJSON_IsNumber(e) || d != (double)(int64_t)d ||
            d < -9007199254740992.0 || d > 9007199254740992.0)
            return param_error(p, name, "an array of integers");
        out[k++] = (int64_t)d;
    }
    *n = k;
    return 0;
}

int qsrv_param_str_array(const struct qsrv_params *p, const char *name,
                         const char **out, size_t cap, size_t *n, bool *present)
{
    const cJSON *arr, *e;
    size_t k = 0;
    int r = param_array(p, name, cap, &arr, n, present);

    if (r != 0 || arr == NULL)
        return r;
    cJSON_ArrayForEach(e, arr)
    {
        if (!cJSON_IsString(e))
            return param_error(p, name, "an array of strings");
        out[k++] = e->valuestring;
    }
    *n = k;
    return 0;
}

int qsrv_param_double(const struct qsrv_params *p, const char *name, double def,
                      double *out)
{
    const cJSON *v = param(p, name);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v))
        return param_error(p, name, "a number");
    *out = v->valuedouble;
    return 0;
}

int qsrv_param_bool(const struct qsrv_params *p, const char *name, bool def,
                    bool *out)
{
    const cJSON *v = param(p, name);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return param_error(p, name, "true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

int qsrv_param_str(const struct qsrv_params *p, const char *name,
                   const char *def, const char **out)
{
    const cJSON *v = param(p, name);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsString(v))
        return param_error(p, name, "a string");
    *out = v->valuestring;
    return 0;
}

/* --- Admin rights ---------------------------------------------------- */

bool qsrv_peer_is_admin(uid_t uid, gid_t gid, bool has_admin_gid,
                        gid_t admin_gid)
{
    struct passwd pw, *res = NULL;
    gid_t groups[QSRV_GROUPS_MAX];
    int n = QSRV_GROUPS_MAX;
    char *buf;
    bool found = false;

    if (uid == 0)
        return true;
    if (!has_admin_gid)
        return false;
    if (gid == admin_gid)
        return true;
    buf = xmalloc(NSS_BUF_MAX);
    if (getpwuid_r(uid, &pw, buf, NSS_BUF_MAX, &res) != 0 || res == NULL)
        goto out_buf;
    /* A user in more than QSRV_GROUPS_MAX groups is checked against the
     * first ones only; getgrouplist returns -1 then but fills the array. */
    if (getgrouplist(pw.pw_name, gid, groups, &n) < 0)
        n = QSRV_GROUPS_MAX;
    for (int i = 0; i < n && i < QSRV_GROUPS_MAX; i++) {
        if (groups[i] == admin_gid) {
            found = true;
            break;
        }
    }
out_buf:
    free(buf);
    return found;
}

static bool client_is_admin(const struct client *c)
{
    const struct qsrv *srv = c->srv;

    if (srv->admin_check != NULL)
        return srv->admin_check(srv->admin_check_arg, c->uid, c->gid);
    return qsrv_peer_is_admin(c->uid, c->gid, srv->has_admin_gid,
                              srv->admin_gid);
}

/* --- Dispatch -------------------------------------------------------- */

static const struct method *find_method(const struct qsrv *srv,
                                        const char *name)
{
    for (size_t i = 0; i < srv->n_methods; i++) {
        if (strcmp(srv->methods[i].name, name) == 0)
            return &srv->methods[i];
    }
    return NULL;
}

static bool valid_id(const cJSON *id)
{
    return cJSON_IsString(id) || cJSON_IsNumber(id) || cJSON_IsNull(id);
}

/* Runs the method named by an already-validated request object. */
static void dispatch(struct client *c, const cJSON *req, const cJSON *id)
{
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(req, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "params");
    const struct method *m = find_method(c->srv, method->valuestring);
    struct qsrv_params p;
    struct qsrv_call *call;
    int r;

    call = xcalloc(sizeof(*call));
    call->client = c;
    call->notification = id == NULL;
    if (id != NULL) {
        call->id = cJSON_Duplicate(id, true);
        if (call->id == NULL) {
            log_err("out of memory in the query server");
            abort();
        }
    }
    call->next = c->calls;
    if (c->calls != NULL)
        c->calls->prev = call;
    c->calls = call;

    if (m == NULL) {
        qsrv_reply_error(call, QSRV_ENOMETHOD, NULL);
        return;
    }
    if (params != NULL && !cJSON_IsNull(params) && !cJSON_IsObject(params)) {
        qsrv_reply_error(call, QSRV_EPARAMS,
                         "invalid params: params must be an object");
        return;
    }
    if (m->admin_only && !client_is_admin(c)) {
        qsrv_reply_error(call, QSRV_EPERM, NULL);
        return;
    }
    p.obj = cJSON_IsObject(params) ? params : NULL;
    p.call = call;
    r = m->fn(m->ctx, call, &p);
    if (r == QSRV_LATER)
        return;
    if (r == 0)
        qsrv_reply(call);
    else
        qsrv_reply_error(call, r < 0 ? r : QSRV_EINTERNAL,
                         call->message[0] != '\0' ? call->message : NULL);
}

/* Handles one complete request line (without its newline). */
static void handle_line(struct client *c, const char *line, size_t len)
{
    const char *end = NULL;
    const cJSON *ver, *method, *id;
    cJSON *req;
    size_t i;

    for (i = 0; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            break;
    }
    if (i == len)
        return; /* blank lines are keep-alives, not requests */
    c->srv->stats.requests++;
    req = cJSON_ParseWithLengthOpts(line, len, &end, false);
    if (req != NULL) {
        while (end < line + len &&
               (*end == ' ' || *end == '\t' || *end == '\r'))
            end++;
    }
    if (req == NULL || end != line + len) {
        send_error(c, NULL, QSRV_EPARSE, NULL);
        goto out_req;
    }
    if (!cJSON_IsObject(req)) {
        send_error(c, NULL, QSRV_EINVALID, NULL);
        goto out_req;
    }
    id = cJSON_GetObjectItemCaseSensitive(req, "id");
    if (id != NULL && !valid_id(id)) {
        send_error(c, NULL, QSRV_EINVALID, NULL);
        goto out_req;
    }
    ver = cJSON_GetObjectItemCaseSensitive(req, "jsonrpc");
    method = cJSON_GetObjectItemCaseSensitive(req, "method");
    if (!cJSON_IsString(ver) || strcmp(ver->valuestring, "2.0") != 0 ||
        !cJSON_IsString(method)) {
        send_error(c, id, QSRV_EINVALID, NULL);
        goto out_req;
    }
    dispatch(c, req, id);
out_req:
    cJSON_Delete(req);
}

/* --- Clients --------------------------------------------------------- */

static void maybe_done(struct qsrv *srv)
{
    if (!srv->closing || srv->handles > 0 || srv->clients != NULL)
        return;
    json_reset(&srv->notify);
    if (srv->done != NULL)
        srv->done(srv->done_arg);
    free(srv);
}

static void on_client_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    struct qsrv *srv = c->srv;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
    maybe_done(srv);
}

static void client_close(struct client *c)
{
    struct qsrv_call *call, *next;

    if (c->closing)
        return;
    c->closing = true;
    c->srv->stats.clients_now--;
    for (call = c->calls; call != NULL; call = next) {
        next = call->next;
        call->client = NULL;
        call->prev = call->next = NULL;
    }
    c->calls = NULL;
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct client *c = req->handle->data;

    (void)status;
    free(req);
    client_close(c);
}

/* Answers an over-long line and disconnects once the answer is out. */
static void client_too_long(struct client *c)
{
    uv_shutdown_t *req;

    c->srv->stats.too_long++;
    c->topics = 0; /* nothing more goes out after the error */
    log_warn("query client uid %u sent a request over %d bytes; "
             "disconnecting it",
             (unsigned)c->uid, QSRV_REQUEST_MAX);
    send_error(c, NULL, QSRV_EINVALID, "request too long");
    if (c->closing)
        return;
    uv_read_stop((uv_stream_t *)&c->pipe);
    req = xmalloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&c->pipe, on_shutdown) < 0) {
        free(req);
        client_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct client *c = h->data;

    (void)hint;
    /* Reads land straight in the free part of the line buffer, plus one
     * byte so that a line one byte too long is noticed. */
    buf->base = c->line + c->line_len;
    buf->len = QSRV_REQUEST_MAX + 1 - c->line_len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *c = s->data;
    size_t start = 0, scan, end;
    char *nl;

    (void)buf;
    if (nread < 0) {
        client_close(c);
        return;
    }
    scan = c->line_len;
    end = c->line_len + (size_t)nread;
    while (!c->closing) {
        nl = memchr(c->line + scan, '\n', end - scan);
        if (nl == NULL)
            break;
        handle_line(c, c->line + start, (size_t)(nl - (c->line + start)));
        start = scan = (size_t)(nl - c->line) + 1;
    }
    if (c->closing)
        return;
    /* Keep the unfinished tail at the front of the buffer. */
    memmove(c->line, c->line + start, end - start);
    c->line_len = end - start;
    if (c->line_len > QSRV_REQUEST_MAX)
        client_too_long(c);
}

static void on_rejected_closed(uv_handle_t *h)
{
    struct qsrv *srv = h->data;

    free(h);
    srv->handles--;
    maybe_done(srv);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct qsrv *srv = listener->data;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct client *c;
    uv_os_fd_t fd;
    uv_pipe_t *p;

    if (status < 0) {
        log_warn("query socket accept failed: %s", uv_strerror(status));
        return;
    }
    if (srv->stats.clients_now >= QSRV_CLIENTS_MAX) {
        p = xmalloc(sizeof(*p));
        uv_pipe_init(srv->loop, p, 0);
        p->data = srv;
        srv->handles++;
        (void)uv_accept(listener, (uv_stream_t *)p);
        srv->stats.rejected++;
        uv_close((uv_handle_t *)p, on_rejected_closed);
        return;
    }
    c = xcalloc(sizeof(*c));
    c->srv = srv;
    uv_pipe_init(srv->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->next = srv->clients;
    if (srv->clients != NULL)
        srv->clients->prev = c;
    srv->clients = c;
    srv->stats.clients_now++;
    if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0 ||
        uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        log_warn("query socket: could not take on a client");
        client_close(c);
        return;
    }
    c->uid = cred.uid;
    c->gid = cred.gid;
    srv->stats.accepted++;
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
        client_close(c);
}

/* --- Notifications --------------------------------------------------- */

struct qsrv_json *qsrv_notify_params(struct qsrv *srv)
{
    return &srv->notify;
}

void qsrv_notify(struct qsrv *srv, unsigned topics, const char *method)
{
    struct client *c, *next;
    cJSON *m = cJSON_CreateObject();
    char *text;

    if (m == NULL) {
        log_err("out of memory in the query server");
        abort();
    }
    cJSON_AddStringToObject(m, "jsonrpc", "2.0");
    cJSON_AddStringToObject(m, "method", method);
    if (srv->notify.root != NULL) {
        cJSON_AddItemToObject(m, "params", srv->notify.root);
        srv->notify.root = NULL;
    }
    json_reset(&srv->notify);
    text = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    if (text == NULL) {
        log_err("out of memory in the query server");
        abort();
    }
    for (c = srv->clients; c != NULL; c = next) {
        next = c->next; /* client_send may close c; unlinking waits */
        if ((c->topics & topics) != 0)
            client_send(c, text);
    }
    cJSON_free(text);
}

/* --- Lifetime -------------------------------------------------------- */

/* Looks a group name up; returns 0 and sets *gid, or -ENOENT. */
static int group_gid(const char *name, gid_t *gid)
{
    struct group gr, *res = NULL;
    char *buf = xmalloc(NSS_BUF_MAX);
    int r = -ENOENT;

    if (getgrnam_r(name, &gr, buf, NSS_BUF_MAX, &res) == 0 && res != NULL) {
        *gid = gr.gr_gid;
        r = 0;
    }
    free(buf);
    return r;
}

/* Binds to srv->path with mode 0660 and the named group. */
static int bind_path(struct qsrv *srv, const char *group)
{
    struct stat st;
    gid_t gid = 0;
    int r;

    if (group != NULL && group[0] != '\0' && group_gid(group, &gid) < 0) {
        log_err("query socket group \"%s\" does not exist", group);
        return -ENOENT;
    }
    if (lstat(srv->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_err("%s exists and is not a socket", srv->path);
            return -EEXIST;
        }
        /* A socket file left by an earlier run that did not stop cleanly;
         * nobody can be listening on it since we are the only tetherd. */
        unlink(srv->path);
    }
    r = uv_pipe_bind(&srv->listener, srv->path);
    if (r < 0) {
        log_err("cannot bind query socket %s: %s", srv->path, uv_strerror(r));
        return r;
    }
    srv->created_path = true;
    if (chmod(srv->path, 0660) < 0) {
        r = -errno;
        log_err("cannot chmod %s: %s", srv->path, strerror(errno));
        return r;
    }
    if (group != NULL && group[0] != '\0' &&
        chown(srv->path, (uid_t)-1, gid) < 0) {
        r = -errno;
        log_err("cannot chown %s to group %s: %s", srv->path, group,
                strerror(errno));
        return r;
    }
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct qsrv *srv = h->data;

    srv->handles--;
    maybe_done(srv);
}

int qsrv_open(struct qsrv **out, uv_loop_t *loop, const struct qsrv_config *cfg,
              int listen_fd)
{
    struct qsrv *srv;
    int r;

    if (listen_fd < 0 && (cfg->path == NULL || cfg->path[0] == '\0' ||
                          strlen(cfg->path) >= sizeof(srv->path)))
        return -EINVAL;
    init_cjson();
    srv = xcalloc(sizeof(*srv));
    srv->loop = loop;
    srv->admin_check = cfg->admin_check;
    srv->admin_check_arg = cfg->admin_check_arg;
    if (cfg->admin_group != NULL && cfg->admin_group[0] != '\0') {
        if (group_gid(cfg->admin_group, &srv->admin_gid) < 0) {
            log_err("admin group \"%s\" does not exist", cfg->admin_group);
            free(srv);
            return -ENOENT;
        }
        srv->has_admin_gid = true;
    }
    uv_pipe_init(loop, &srv->listener, 0);
    srv->listener.data = srv;
    srv->handles = 1;
    if (listen_fd >= 0) {
        r = uv_pipe_open(&srv->listener, listen_fd);
        if (r < 0) {
            log_err("cannot adopt query socket fd %d: %s", listen_fd,
                    uv_strerror(r));
            close(listen_fd);
        }
    } else {
        snprintf(srv->path, sizeof(srv->path), "%s", cfg->path);
        r = bind_path(srv, cfg->group);
    }
    if (r < 0)
        goto err_listener;
    r = uv_listen((uv_stream_t *)&srv->listener, SOMAXCONN, on_connection);
    if (r < 0) {
        log_err("cannot listen on the query socket: %s", uv_strerror(r));
        goto err_listener;
    }
    *out = srv;
    return 0;

err_listener:
    /* The listener is a live handle: it must be closed, and srv freed in
     * its close callback. */
    qsrv_close(srv, NULL, NULL);
    return r;
}

void qsrv_close(struct qsrv *srv, void (*done)(void *arg), void *arg)
{
    struct client *c;

    if (srv == NULL)
        return;
    assert(!srv->closing);
    srv->closing = true;
    srv->done = done;
    srv->done_arg = arg;
    for (c = srv->clients; c != NULL; c = c->next)
        client_close(c);
    if (srv->created_path)
        unlink(srv->path);
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
}

void qsrv_get_stats(const struct qsrv *srv, struct qsrv_stats *out)
{
    *out = srv->stats;
}

int qsrv_add_method(struct qsrv *srv, const char *name,
                    int (*fn)(void *ctx, struct qsrv_call *call,
                              const struct qsrv_params *params),
                    void *ctx, bool admin_only)
{
    struct method *m;

    if (name == NULL || name[0] == '\0' ||
        strlen(name) >= QSRV_METHOD_NAME_MAX || fn == NULL)
        return -EINVAL;
    if (find_method(srv, name) != NULL)
        return -EEXIST;
    if (srv->n_methods >= QSRV_METHODS_MAX)
        return -ENOSPC;
    m = &srv->methods[srv->n_methods++];
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->fn = fn;
    m->ctx = ctx;
    m->admin_only = admin_only;
    return 0;
}
