/* The query server: a libuv Unix socket listener, line framing with a
 * hard cap, JSON-RPC 2.0 dispatch, bounded per-client output and topic
 * notifications.  See qsrv.h for the conditions it lives with.
 *
 * Every client owns a line buffer that starts at LINE_START bytes and
 * doubles, up to QSRV_REQUEST_MAX, only while a request is longer; it goes
 * back to LINE_START once the long line is done.  So a thousand idle
 * clients hold a thousand small buffers, not a thousand 64 KiB ones.
 * Bytes are appended until a newline completes a request, so requests may
 * be split across reads or several may arrive in one.  cJSON parses the
 * requests; answers are written as text straight into a growing buffer
 * (the qsrv_json builder), which for a call's result keeps room in front
 * for the head of the response, so the answer goes out of that buffer
 * without a copy.  Each message is offered to the socket with
 * uv_try_write first; what it does not take is queued with uv_write, and
 * the bytes not yet confirmed by a write callback count against the
 * client's QSRV_OUTPUT_MAX.
 *
 * A call keeps a pointer to its client, and each client lists its pending
 * calls, so closing a client can orphan them: a late reply to an orphaned
 * call frees it and sends nothing.
 *
 * Output that waited for a slow client is many small blocks; once they are
 * freed, glibc keeps the pages unless asked.  A client that had more than
 * TRIM_AFTER bytes queued therefore ends with malloc_trim(), so a dropped
 * subscriber's megabyte goes back to the system.  Loop thread only. */
#include "qsrv.h"

#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define NSS_BUF_MAX     16384        /* getpwuid_r / getgrnam_r scratch */
#define JSON_BUF_MIN    256          /* a builder's first allocation */
#define NUMBER_MAX      32           /* the text of one number */
#define LINE_START      1024         /* a client's first line buffer */
#define TRIM_AFTER      (256 * 1024) /* queued bytes that earn a trim */
#define PARSE_ARENA_MAX 8192         /* a request's cJSON tree, mostly */

/* The head of a response with a result, written into the room a
 * builder keeps in front of its text. */
static const char reply_head[] = "{\"jsonrpc\":\"2.0\",\"result\":";
#define HEAD_ROOM (sizeof(reply_head) - 1)

struct method {
    char name[QSRV_METHOD_NAME_MAX];
    int (*fn)(void *ctx, struct qsrv_call *call,
              const struct qsrv_params *params);
    void *ctx;
    bool admin_only;
};

/* Text is written as it is built.  A builder holds at most
 * QSRV_OUTPUT_MAX bytes of text (more could not be sent anyway); past
 * that it sets full and drops the rest. */
struct qsrv_json {
    char *buf;  /* HEAD_ROOM bytes of room, then the text; NULL: empty */
    size_t len; /* bytes of buf in use, the room included */
    size_t cap; /* bytes allocated */
    int depth;  /* the innermost open container; -1 once finished */
    bool full;  /* text was dropped */
    char closer[QSRV_JSON_DEPTH_MAX + 1]; /* '}' or ']'; [0] the root */
    bool more[QSRV_JSON_DEPTH_MAX + 1];   /* a member is in already */
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
    size_t queued;          /* output bytes awaiting their write callback */
    bool partial;           /* an unfinished request line is buffered */
    uint64_t partial_since; /* uv_now() when that line began */
    size_t queued_peak;     /* the most queued at once */
    size_t line_len;
    size_t line_cap; /* LINE_START .. QSRV_REQUEST_MAX + 1 */
    char *line;
};

struct qsrv_params {
    const cJSON *obj; /* NULL when the request had none */
    struct qsrv_call *call;
};

struct qsrv_call {
    struct client *client; /* NULL once orphaned */
    struct qsrv_call *prev, *next;
    bool notification;
    struct qsrv_json result;
    char message[QSRV_MESSAGE_MAX]; /* from a failed accessor */
    size_t id_len;
    char id[]; /* the request's id as JSON text; empty for a notification */
};

/* A message, or the part of it the socket did not take at once, waiting
 * for its write callback. */
struct write_req {
    uv_write_t req;
    struct client *client;
    size_t len;  /* bytes counted in client->queued */
    char *alloc; /* what to free: data or the buffer it lies in */
    char *data;
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
    size_t handles;      /* open handles: listener, timer, rejected pipes */
    size_t total_max;    /* output queued for all clients together */
    unsigned partial_ms; /* to finish a request line */
    uv_timer_t partial_timer; /* runs while a client has part of a line */
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

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);

    if (q == NULL) {
        log_err("out of memory (%zu bytes) in the query server", n);
        abort();
    }
    return q;
}

static void *xcalloc(size_t n)
{
    void *p = xmalloc(n);

    memset(p, 0, n);
    return p;
}

/* --- Parse arena ---------------------------------------------------- */

/* cJSON allocates every node and string of a request's tree on its own,
 * and a request is parsed, used and deleted within one call of
 * handle_line().  So while a request is parsed its allocations come from
 * one static arena, a bump pointer, and deleting the tree is forgetting
 * the arena; a tree larger than the arena takes the rest from malloc and
 * is deleted the usual way.  A short request's parse and delete cost a
 * third less so (4,100 instructions down to 2,800).  The arena is used by the
 * loop thread alone, and only between arena_begin() and arena_end(): any other
 * cJSON allocation, on any thread, goes to malloc.  Under AddressSanitizer the
 * arena's unused part is poisoned, so a pointer kept into a deleted tree is
 * still caught. */
#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define ARENA_ASAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_POISON(p, n)   ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_ALIGN (sizeof(max_align_t))

static struct {
    alignas(max_align_t) unsigned char buf[PARSE_ARENA_MAX];
    size_t used;
    unsigned spilled; /* allocations that went to malloc */
} arena;
static _Thread_local bool arena_on;

static bool in_arena(const void *p)
{
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)arena.buf;

    return a >= base && a < base + sizeof(arena.buf);
}

static void *cjson_malloc(size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    void *p;

    if (!arena_on || need == 0 || need > sizeof(arena.buf) - arena.used) {
        if (arena_on)
            arena.spilled++;
        return xmalloc(n);
    }
    p = arena.buf + arena.used;
    arena.used += need;
    ARENA_UNPOISON(p, n);
    return p;
}

static void cjson_free(void *p)
{
    if (!in_arena(p))
        free(p);
}

static void arena_begin(void)
{
    arena.used = 0;
    arena.spilled = 0;
    arena_on = true;
}

/* Deletes tree (may be NULL), parsed since arena_begin(). */
static void arena_end(cJSON *tree)
{
    arena_on = false;
    if (arena.spilled > 0)
        cJSON_Delete(tree); /* frees what malloc gave; the arena is skipped */
    ARENA_POISON(arena.buf, arena.used);
    arena.used = 0;
}

static void init_cjson(void)
{
    static bool done;
    cJSON_Hooks hooks = {.malloc_fn = cjson_malloc, .free_fn = cjson_free};

    if (!done) {
        ARENA_POISON(arena.buf, sizeof(arena.buf));
        cJSON_InitHooks(&hooks);
        done = true;
    }
}

/* --- Builder --------------------------------------------------------- */

/* The builder touches nothing but itself and the allocator, so a builder
 * of its own (qsrv_json_new) may be filled on any thread. */

static void json_reset(struct qsrv_json *j)
{
    free(j->buf);
    memset(j, 0, sizeof(*j));
}

/* Makes room for n more bytes, without the text bound: for the parts of
 * a message around the text, whose sizes have bounds of their own. */
static void reserve(struct qsrv_json *j, size_t n)
{
    size_t cap = j->cap != 0 ? j->cap : JSON_BUF_MIN;

    if (j->len + n <= j->cap)
        return;
    while (cap < j->len + n)
        cap *= 2;
    j->buf = xrealloc(j->buf, cap);
    j->cap = cap;
}

/* Makes room for n more bytes of text; false (and full set) past the
 * bound. */
static bool room(struct qsrv_json *j, size_t n)
{
    size_t text = j->len > HEAD_ROOM ? j->len - HEAD_ROOM : 0;

    if (j->full)
        return false;
    if (text + n > QSRV_OUTPUT_MAX) {
        j->full = true;
        return false;
    }
    reserve(j, n);
    return true;
}

static void put_raw(struct qsrv_json *j, const char *s, size_t n)
{
    if (!room(j, n))
        return;
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

static void put_char(struct qsrv_json *j, char ch)
{
    if (!room(j, 1))
        return;
    j->buf[j->len++] = ch;
}

/* The length of the part of s that a JSON string carries as it is: up
 * to the first byte that needs escaping, or to the end. */
static size_t clean_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p >= 0x20 && *p != '"' && *p != '\\')
        p++;
    return (size_t)(p - (const unsigned char *)s);
}

/* Appends the n clean bytes of s as a JSON string, with a comma before
 * it and a colon after it when asked: one bound check and one copy, for
 * the keys and most values, which need no escaping. */
static void put_clean(struct qsrv_json *j, bool comma, const char *s, size_t n,
                      bool colon)
{
    char *o;

    if (!room(j, n + 2 + (size_t)comma + (size_t)colon))
        return;
    o = j->buf + j->len;
    if (comma)
        *o++ = ',';
    *o++ = '"';
    memcpy(o, s, n);
    o += n;
    *o++ = '"';
    if (colon)
        *o++ = ':';
    j->len = (size_t)(o - j->buf);
}

/* A JSON string (RFC 8259 section 7): the quote, the backslash and the
 * control characters escaped, every other byte as it is.  Bytes that are
 * not UTF-8 pass through unchanged, as cJSON passed them before: they
 * come from the daemon's own tables and the MCU's log text. */
static void put_string(struct qsrv_json *j, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = clean_len(s);

    if (s[n] == '\0') {
        put_clean(j, false, s, n, false);
        return;
    }
    put_char(j, '"');
    for (;;) {
        const unsigned char *run = p;
        char esc[6] = {'\\', 'u', '0', '0', 0, 0};

        n = 2;
        while (*p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        put_raw(j, (const char *)run, (size_t)(p - run));
        if (*p == '\0')
            break;
        switch (*p) {
        case '"':
        case '\\':
            esc[1] = (char)*p;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
            break;
        }
        put_raw(j, esc, n);
        p++;
    }
    put_char(j, '"');
}

static void put_int(struct qsrv_json *j, int64_t v)
{
    char text[NUMBER_MAX];
    char *end = text + sizeof(text), *p = end;
    /* The magnitude as unsigned, so that INT64_MIN has one too. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    put_raw(j, p, (size_t)(end - p));
}

/* The shortest of %.15g and %.17g that reads back as v, as cJSON printed
 * numbers; whole numbers as integers, and null for NaN and infinities,
 * which JSON cannot carry. */
static void put_double(struct qsrv_json *j, double v)
{
    char text[NUMBER_MAX];
    int n;

    if (!isfinite(v)) {
        put_raw(j, "null", 4);
        return;
    }
    /* The range first: converting a double beyond int64_t is undefined. */
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v) {
        put_int(j, (int64_t)v);
        return;
    }
    n = snprintf(text, sizeof(text), "%.15g", v);
    if (strtod(text, NULL) != v)
        n = snprintf(text, sizeof(text), "%.17g", v);
    put_raw(j, text, (size_t)n);
}

/* Starts a member of the innermost open container: the comma before it,
 * and in an object its key. */
static void put_member(struct qsrv_json *j, const char *key)
{
    bool comma;
    size_t n;

    assert(j->buf != NULL && j->depth >= 0);
    comma = j->more[j->depth];
    j->more[j->depth] = true;
    if (j->closer[j->depth] != '}') {
        if (comma)
            put_char(j, ',');
        return;
    }
    assert(key != NULL);
    n = clean_len(key);
    if (key[n] == '\0') {
        put_clean(j, comma, key, n, true);
        return;
    }
    if (comma)
        put_char(j, ',');
    put_string(j, key);
    put_char(j, ':');
}

static void json_root(struct qsrv_json *j, char open, char closer)
{
    assert(j->buf == NULL);
    reserve(j, HEAD_ROOM + 1);
    j->len = HEAD_ROOM;
    j->depth = 0;
    j->closer[0] = closer;
    j->more[0] = false;
    put_char(j, open);
}

void qsrv_json_object(struct qsrv_json *j)
{
    json_root(j, '{', '}');
}

void qsrv_json_array(struct qsrv_json *j)
{
    json_root(j, '[', ']');
}

/* Closes every container still open; the text is complete after it. */
static void json_finish(struct qsrv_json *j)
{
    for (; j->depth >= 0; j->depth--)
        put_char(j, j->closer[j->depth]);
}

void qsrv_add_int(struct qsrv_json *j, const char *key, int64_t v)
{
    put_member(j, key);
    put_int(j, v);
}

void qsrv_add_double(struct qsrv_json *j, const char *key, double v)
{
    put_member(j, key);
    put_double(j, v);
}

void qsrv_add_bool(struct qsrv_json *j, const char *key, bool v)
{
    put_member(j, key);
    if (v)
        put_raw(j, "true", 4);
    else
        put_raw(j, "false", 5);
}

void qsrv_add_str(struct qsrv_json *j, const char *key, const char *v)
{
    put_member(j, key);
    put_string(j, v != NULL ? v : "");
}

void qsrv_add_null(struct qsrv_json *j, const char *key)
{
    put_member(j, key);
    put_raw(j, "null", 4);
}

static void json_begin(struct qsrv_json *j, const char *key, char open,
                       char closer)
{
    assert(j->depth < QSRV_JSON_DEPTH_MAX);
    put_member(j, key);
    put_char(j, open);
    j->depth++;
    j->closer[j->depth] = closer;
    j->more[j->depth] = false;
}

void qsrv_begin_object(struct qsrv_json *j, const char *key)
{
    json_begin(j, key, '{', '}');
}

void qsrv_begin_array(struct qsrv_json *j, const char *key)
{
    json_begin(j, key, '[', ']');
}

void qsrv_end(struct qsrv_json *j)
{
    assert(j->depth > 0);
    put_char(j, j->closer[j->depth]);
    j->depth--;
}

struct qsrv_json *qsrv_json_new(void)
{
    return xcalloc(sizeof(struct qsrv_json));
}

void qsrv_json_free(struct qsrv_json *j)
{
    if (j == NULL)
        return;
    json_reset(j);
    free(j);
}

/* --- Output ---------------------------------------------------------- */

static void client_close(struct client *c);

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;

    (void)status; /* a failed write shows up as a read error or EOF */
    w->client->queued -= w->len;
    /* A closing client's bytes left the total when it began to close. */
    if (!w->client->closing)
        w->client->srv->stats.queued -= w->len;
    free(w->alloc);
    free(w);
}

static void client_drop_slow(struct client *c)
{
    log_warn("query client uid %u: output queue full, dropping it",
             (unsigned)c->uid);
    c->srv->stats.dropped_slow++;
    client_close(c);
}

/* Makes room for need more queued bytes within the bound on all clients'
 * output: drops the clients with the longest queues, c among them, until
 * they fit.  False when c itself was dropped. */
static bool total_room(struct client *c, size_t need)
{
    struct qsrv *srv = c->srv;

    while (srv->stats.queued + need > srv->total_max) {
        struct client *big = c;

        for (struct client *o = srv->clients; o != NULL; o = o->next) {
            if (!o->closing && o->queued > big->queued)
                big = o;
        }
        log_warn("query client uid %u: dropped with %zu bytes queued, "
                 "all clients' output being over %zu bytes",
                 (unsigned)big->uid, big->queued, srv->total_max);
        srv->stats.dropped_budget++;
        client_close(big);
        if (big == c)
            return false;
    }
    return true;
}

/* Sends one message of len bytes, its newline included, to c: as much
 * as the socket takes at once with uv_try_write when nothing is queued
 * before it, the rest with uv_write.  A uv_write alone would cost an
 * epoll_ctl to arm the watcher and another to disarm it for every
 * answer.  Drops c when its queue would pass QSRV_OUTPUT_MAX.  With give,
 * takes ownership of msg (a malloc'd block); else copies what waits. */
static void client_send(struct client *c, char *msg, size_t len, bool give)
{
    struct write_req *w;
    size_t done = 0;
    uv_buf_t buf;
    int r;

    if (c->closing)
        goto out_msg;
    if (c->queued + len > QSRV_OUTPUT_MAX) {
        client_drop_slow(c);
        goto out_msg;
    }
    if (c->queued == 0) {
        buf = uv_buf_init(msg, (unsigned)len);
        r = uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
        if (r < 0 && r != UV_EAGAIN) {
            log_debug("query client write failed: %s", uv_strerror(r));
            client_close(c);
            goto out_msg;
        }
        done = r < 0 ? 0 : (size_t)r;
        if (done == len)
            goto out_msg;
    }
    if (!total_room(c, len - done))
        goto out_msg;
    w = xmalloc(sizeof(*w));
    w->client = c;
    w->len = len - done;
    if (give) {
        w->alloc = msg;
        w->data = msg + done;
    } else {
        w->alloc = w->data = xmalloc(w->len);
        memcpy(w->data, msg + done, w->len);
    }
    buf = uv_buf_init(w->data, (unsigned)w->len);
    r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_write);
    if (r < 0) {
        log_debug("query client write failed: %s", uv_strerror(r));
        free(w->alloc);
        free(w);
        client_close(c);
        return;
    }
    c->queued += w->len;
    c->srv->stats.queued += w->len;
    if (c->queued > c->queued_peak)
        c->queued_peak = c->queued;
    return;

out_msg:
    if (give)
        free(msg);
}

/* Sends the message built in m (which must not be full) and empties m. */
static void send_built(struct client *c, struct qsrv_json *m)
{
    char *msg = m->buf;
    size_t len = m->len;

    m->buf = NULL;
    json_reset(m);
    client_send(c, msg, len, true);
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
    case QSRV_EIMAGE:
        return "image refused";
    default:
        return "internal error";
    }
}

/* Appends text that has bounds of its own (the head and tail of a
 * message, an id of at most QSRV_REQUEST_MAX bytes). */
static void put_frame(struct qsrv_json *m, const char *s, size_t n)
{
    reserve(m, n);
    memcpy(m->buf + m->len, s, n);
    m->len += n;
}

#define PUT_FRAME(m, lit) put_frame((m), (lit), sizeof(lit) - 1)

/* Sends an error response; id is the request's id as JSON text (id_len
 * bytes), NULL for JSON null. */
static void send_error(struct client *c, const char *id, size_t id_len,
                       int code, const char *msg)
{
    struct qsrv_json m = {0};

    c->srv->stats.errors++;
    PUT_FRAME(&m, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":");
    put_int(&m, code);
    PUT_FRAME(&m, ",\"message\":");
    /* A message is at most QSRV_MESSAGE_MAX bytes (or a constant), far
     * within the text bound. */
    put_string(&m, msg != NULL ? msg : std_message(code));
    PUT_FRAME(&m, "},\"id\":");
    if (id != NULL)
        put_frame(&m, id, id_len);
    else
        PUT_FRAME(&m, "null");
    PUT_FRAME(&m, "}\n");
    send_built(c, &m);
}

/* --- Request ids ----------------------------------------------------- */

/* An answer repeats the request's id as the client wrote it: the text is
 * found in the request line, which cJSON has already accepted as one
 * JSON object, so the scan below can skip values without checking them.
 * Its text is checked before it is used (a string without raw control
 * characters, a number in RFC 8259's grammar): cJSON accepts a little
 * more than JSON (leading zeros), and then the id is printed from the
 * value cJSON read instead. */

/* cJSON's whitespace: every byte up to the space. */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ')
        p++;
    return p;
}

/* p at a string's opening quote; returns the byte after its closing
 * quote. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

/* p at the first byte of a value; returns the byte after it. */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;

    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' &&
               (unsigned char)*p > ' ')
            p++;
        return p;
    }
    while (p < end) {
        if (*p == '"') {
            p = skip_string(p, end);
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return end;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Whether the key between p and end (its quotes excluded) reads "id",
 * escapes decoded. */
static bool key_is_id(const char *p, const char *end)
{
    static const char want[] = "id";
    size_t k = 0;

    while (p < end) {
        unsigned cp = (unsigned char)*p++;

        if (cp == '\\' && p < end && *p == 'u' && end - p >= 5) {
            cp = 0;
            for (int i = 1; i <= 4; i++)
                cp = cp * 16 + (unsigned)hex_value(p[i]);
            p += 5;
        } else if (cp == '\\' && p < end) {
            cp = (unsigned char)*p++; /* \" \\ \/ and the letters */
            if (cp != '"' && cp != '\\' && cp != '/')
                return false; /* \b \f \n \r \t: not in "id" */
        }
        /* cJSON keeps a key as a C string, so to it "id\u0000x" (or a raw
         * NUL after "id") is "id": end the key there too, or the id
         * echoed would be another member's than the one cJSON checked. */
        if (cp == 0)
            return k == sizeof(want) - 1;
        if (k >= sizeof(want) - 1 || cp != (unsigned char)want[k])
            return false;
        k++;
    }
    return k == sizeof(want) - 1;
}

/* Finds the text of the first member "id" of the object on the line. */
static bool find_id(const char *line, size_t len, const char **at, size_t *n)
{
    const char *p = line, *end = line + len;

    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* cJSON skips a byte order mark */
    p = skip_ws(p, end);
    if (p == end || *p != '{')
        return false;
    p = skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *key = p + 1, *key_end, *v;

        p = skip_string(p, end);
        key_end = p - 1;
        p = skip_ws(p, end);
        if (p == end || *p != ':')
            return false;
        v = skip_ws(p + 1, end);
        if (v == end)
            return false;
        p = skip_value(v, end);
        if (key_end >= key && key_is_id(key, key_end)) {
            *at = v;
            *n = (size_t)(p - v);
            return true;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    return false;
}

/* Whether text is a JSON number (RFC 8259 section 6). */
static bool json_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (p < end && *p == '.') {
        if (++p == end || *p < '0' || *p > '9')
            return false;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || *p < '0' || *p > '9')
            return false;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    return p == end;
}

/* Whether text (a string cJSON accepted) has no raw control character. */
static bool json_clean_string(const char *p, const char *end)
{
    for (; p < end; p++)
        if ((unsigned char)*p < 0x20)
            return false;
    return true;
}

/* The id's JSON text into *at and *n: "null" when id is NULL, else its
 * text on the line when that is good JSON, else printed into scratch
 * from what cJSON read (the caller empties scratch with json_reset). */
static void id_text(const cJSON *id, const char *line, size_t len,
                    struct qsrv_json *scratch, const char **at, size_t *n)
{
    if (id == NULL) {
        *at = "null";
        *n = 4;
        return;
    }
    if (find_id(line, len, at, n) &&
        ((cJSON_IsString(id) && json_clean_string(*at, *at + *n)) ||
         (cJSON_IsNumber(id) && json_number(*at, *at + *n)) ||
         (cJSON_IsNull(id) && *n == 4)))
        return;
    if (cJSON_IsString(id))
        put_string(scratch, id->valuestring);
    else if (cJSON_IsNumber(id))
        put_double(scratch, id->valuedouble);
    else
        PUT_FRAME(scratch, "null");
    *at = scratch->buf;
    *n = scratch->len;
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
    free(call);
}

void qsrv_reply(struct qsrv_call *call)
{
    struct client *c = call->client;
    struct qsrv_json *j = &call->result;

    if (c == NULL || call->notification)
        goto out_call;
    if (j->full) {
        /* The answer alone is more than a client may have queued. */
        client_drop_slow(c);
        goto out_call;
    }
    if (j->buf == NULL) {
        PUT_FRAME(j, "{\"jsonrpc\":\"2.0\",\"result\":null");
    } else {
        json_finish(j);
        if (j->full) {
            client_drop_slow(c);
            goto out_call;
        }
        memcpy(j->buf, reply_head, HEAD_ROOM);
    }
    PUT_FRAME(j, ",\"id\":");
    put_frame(j, call->id, call->id_len);
    PUT_FRAME(j, "}\n");
    send_built(c, j);
out_call:
    call_free(call);
}

void qsrv_reply_json(struct qsrv_call *call, struct qsrv_json *j)
{
    json_reset(&call->result);
    call->result = *j;
    free(j);
    qsrv_reply(call);
}

void qsrv_reply_error(struct qsrv_call *call, int code, const char *msg)
{
    struct client *c = call->client;

    if (c != NULL) {
        if (call->notification)
            c->srv->stats.errors++;
        else
            send_error(c, call->id, call->id_len, code, msg);
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

/* An integer a double holds exactly (|d| <= 2^53).  The range is checked
 * before the conversion, which is undefined for values out of int64_t's
 * range (and for NaN, which fails both comparisons). */
static bool exact_int(double d)
{
    return d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
           d == (double)(int64_t)d;
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
    if (!exact_int(d))
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

        if (!cJSON_IsNumber(e) || !exact_int(d))
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

/* Runs the method named by an already-validated request object; id is
 * the request's id (NULL: a notification), id_text its JSON text. */
static void dispatch(struct client *c, const cJSON *req, const cJSON *id,
                     const char *id_json, size_t id_len)
{
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(req, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "params");
    const struct method *m = find_method(c->srv, method->valuestring);
    struct qsrv_params p;
    struct qsrv_call *call;
    int r;

    call = xcalloc(sizeof(*call) + id_len);
    call->client = c;
    call->notification = id == NULL;
    if (id != NULL) {
        memcpy(call->id, id_json, id_len);
        call->id_len = id_len;
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
    struct qsrv_json scratch = {0};
    const char *end = NULL, *id_json;
    const cJSON *ver, *method, *id;
    size_t i, id_len;
    cJSON *req;

    for (i = 0; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            break;
    }
    if (i == len)
        return; /* blank lines are keep-alives, not requests */
    c->srv->stats.requests++;
    arena_begin();
    req = cJSON_ParseWithLengthOpts(line, len, &end, false);
    arena_on = false; /* only the parse allocates from it */
    if (req != NULL) {
        while (end < line + len &&
               (*end == ' ' || *end == '\t' || *end == '\r'))
            end++;
    }
    if (req == NULL || end != line + len) {
        send_error(c, NULL, 0, QSRV_EPARSE, NULL);
        goto out_req;
    }
    if (!cJSON_IsObject(req)) {
        send_error(c, NULL, 0, QSRV_EINVALID, NULL);
        goto out_req;
    }
    id = cJSON_GetObjectItemCaseSensitive(req, "id");
    if (id != NULL && !valid_id(id)) {
        send_error(c, NULL, 0, QSRV_EINVALID, NULL);
        goto out_req;
    }
    id_text(id, line, len, &scratch, &id_json, &id_len);
    ver = cJSON_GetObjectItemCaseSensitive(req, "jsonrpc");
    method = cJSON_GetObjectItemCaseSensitive(req, "method");
    if (!cJSON_IsString(ver) || strcmp(ver->valuestring, "2.0") != 0 ||
        !cJSON_IsString(method)) {
        send_error(c, id_json, id_len, QSRV_EINVALID, NULL);
        goto out_req;
    }
    dispatch(c, req, id, id_json, id_len);
out_req:
    json_reset(&scratch);
    arena_end(req);
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
    bool trim;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    trim = c->queued_peak > TRIM_AFTER;
    free(c->line);
    free(c);
    if (trim)
        malloc_trim(0);
    maybe_done(srv);
}

static void client_close(struct client *c)
{
    struct qsrv_call *call, *next;

    if (c->closing)
        return;
    c->closing = true;
    c->partial = false;
    c->srv->stats.clients_now--;
    c->srv->stats.queued -= c->queued;
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

/* Answers a request that cannot be read with error -32600 "why" and
 * disconnects once the answer is out. */
static void client_refuse(struct client *c, const char *why)
{
    uv_shutdown_t *req;

    c->topics = 0; /* nothing more goes out after the error */
    c->partial = false;
    send_error(c, NULL, 0, QSRV_EINVALID, why);
    if (c->closing)
        return;
    uv_read_stop((uv_stream_t *)&c->pipe);
    req = xmalloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&c->pipe, on_shutdown) < 0) {
        free(req);
        client_close(c);
    }
}

static void client_too_long(struct client *c)
{
    c->srv->stats.too_long++;
    log_warn("query client uid %u sent a request over %d bytes; "
             "disconnecting it",
             (unsigned)c->uid, QSRV_REQUEST_MAX);
    client_refuse(c, "request too long");
}

/* Ends the clients whose unfinished line has had its time; runs again at
 * the next deadline while any client has part of a line. */
static void on_partial_timer(uv_timer_t *t)
{
    struct qsrv *srv = t->data;
    uint64_t now = uv_now(srv->loop), next = UINT64_MAX;

    for (struct client *c = srv->clients; c != NULL; c = c->next) {
        uint64_t due = c->partial_since + srv->partial_ms;

        if (c->closing || !c->partial)
            continue;
        if (due <= now) {
            srv->stats.dropped_stalled++;
            log_warn("query client uid %u left a request unfinished for "
                     "%u ms; disconnecting it",
                     (unsigned)c->uid, srv->partial_ms);
            client_refuse(c, "request not finished in time");
        } else if (due < next) {
            next = due;
        }
    }
    if (next != UINT64_MAX)
        uv_timer_start(t, on_partial_timer, next - now, 0);
}

/* Notes that c holds an unfinished line, begun now when it is new or
 * when this read finished the one before. */
static void note_partial(struct client *c, bool finished_one)
{
    struct qsrv *srv = c->srv;

    if (c->line_len == 0) {
        c->partial = false;
        return;
    }
    if (c->partial && !finished_one)
        return;
    c->partial = true;
    c->partial_since = uv_now(srv->loop);
    if (!uv_is_active((uv_handle_t *)&srv->partial_timer))
        uv_timer_start(&srv->partial_timer, on_partial_timer, srv->partial_ms,
                       0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct client *c = h->data;

    (void)hint;
    /* Reads land straight in the free part of the line buffer; a full
     * buffer doubles, up to one byte past the cap so that a line one byte
     * too long is noticed. */
    if (c->line_len == c->line_cap && c->line_cap < QSRV_REQUEST_MAX + 1) {
        c->line_cap = c->line_cap * 2 < QSRV_REQUEST_MAX + 1
                          ? c->line_cap * 2
                          : QSRV_REQUEST_MAX + 1;
        c->line = xrealloc(c->line, c->line_cap);
    }
    buf->base = c->line + c->line_len;
    buf->len = c->line_cap - c->line_len;
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
    /* Keep the unfinished tail at the front of the buffer, and give back
     * what a long line made it grow by once the tail fits the start. */
    memmove(c->line, c->line + start, end - start);
    c->line_len = end - start;
    if (c->line_len > QSRV_REQUEST_MAX) {
        client_too_long(c);
        return;
    }
    note_partial(c, start > 0);
    if (c->line_cap > LINE_START && c->line_len <= LINE_START) {
        c->line = xrealloc(c->line, LINE_START);
        c->line_cap = LINE_START;
    }
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
    c->line = xmalloc(LINE_START);
    c->line_cap = LINE_START;
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
    struct qsrv_json *p = &srv->notify, m = {0};
    struct client *c, *next;

    PUT_FRAME(&m, "{\"jsonrpc\":\"2.0\",\"method\":");
    put_string(&m, method);
    if (p->buf != NULL)
        json_finish(p);
    if (p->full) {
        log_warn("query notification %s over %d bytes: not sent", method,
                 QSRV_OUTPUT_MAX);
        goto out_m;
    }
    if (p->buf != NULL) {
        PUT_FRAME(&m, ",\"params\":");
        put_frame(&m, p->buf + HEAD_ROOM, p->len - HEAD_ROOM);
    }
    PUT_FRAME(&m, "}\n");
    for (c = srv->clients; c != NULL; c = next) {
        next = c->next; /* client_send may close c; unlinking waits */
        if ((c->topics & topics) != 0)
            client_send(c, m.buf, m.len, false);
    }
out_m:
    json_reset(&m);
    json_reset(p);
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

static void on_handle_closed(uv_handle_t *h)
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
    srv->total_max = cfg->output_total_max != 0 ? cfg->output_total_max
                                                : QSRV_OUTPUT_TOTAL_MAX;
    srv->partial_ms = cfg->partial_ms != 0 ? cfg->partial_ms : QSRV_PARTIAL_MS;
    uv_timer_init(loop, &srv->partial_timer);
    srv->partial_timer.data = srv;
    uv_pipe_init(loop, &srv->listener, 0);
    srv->listener.data = srv;
    srv->handles = 2;
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
    uv_close((uv_handle_t *)&srv->partial_timer, on_handle_closed);
    uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
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
