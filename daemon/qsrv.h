/* The local query server: JSON-RPC 2.0 over a Unix stream socket, one JSON
 * object per line each way.  Local tools (tetherctl, dashboards) connect,
 * call methods the owner registered, and may subscribe to notifications.
 *
 * Conditions it lives with:
 * - Clients are untrusted.  A line longer than QSRV_REQUEST_MAX bytes gets
 *   error -32600 "request too long" and that client is disconnected; any
 *   other malformed request gets a JSON-RPC error and the client stays.
 *   Nothing one client sends affects another.
 * - Clients may be slow or stop reading.  Each has an output queue bounded
 *   by QSRV_OUTPUT_MAX bytes; a response or notification that would exceed
 *   it drops that client (warning, counter dropped_slow).  All queues
 *   together are bounded by QSRV_OUTPUT_TOTAL_MAX bytes: a message that
 *   would pass that drops the clients with the longest queues until it
 *   fits (warning, counter dropped_budget), so a thousand stalled
 *   readers cannot hold a gigabyte.
 * - Clients may stop half-way through a line.  One that has sent part of
 *   a request and not finished it QSRV_PARTIAL_MS after its first byte is
 *   disconnected (warning, counter dropped_stalled).  A client that sends
 *   nothing (a watcher) is never timed out, and no timer runs while no
 *   client has part of a line.
 * - Up to QSRV_CLIENTS_MAX clients; further connections are accepted and
 *   closed at once (counter rejected).
 * - Handlers may answer later (waiting for an MCU ACK): they return
 *   QSRV_LATER and complete the call with qsrv_reply() or
 *   qsrv_reply_error().  If the client went away meanwhile, the call is
 *   orphaned and the late reply is dropped; the owner must still complete
 *   every call exactly once so its memory is freed.
 * - Methods may be admin-only: allowed when the peer (SO_PEERCRED at
 *   accept) is uid 0 or in the admin group, by primary gid or by the
 *   supplementary groups of the peer uid's user (getgrouplist).
 * - The socket file: a stale one is unlinked before bind; after bind it
 *   is made mode 0660 and, when a group is named, chowned to that group
 *   (an unknown group is an error).  Alternatively an already-listening
 *   fd (systemd socket activation) is adopted and its file left alone.
 *
 * cJSON stays inside qsrv.c, for reading requests: handlers read params
 * through the qsrv_param_* accessors and build results with the small
 * qsrv_json builder below, which writes JSON text as it goes.
 * Loop thread only, but for a builder made with qsrv_json_new(), which
 * may be filled on any thread (a thread-pool job) and then handed to
 * qsrv_reply_json() on the loop thread. */
#ifndef TETHER_QSRV_H
#define TETHER_QSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define QSRV_REQUEST_MAX      65536         /* bytes in one request line */
#define QSRV_OUTPUT_MAX       (1024 * 1024) /* queued output bytes per client */
#define QSRV_OUTPUT_TOTAL_MAX (64 * 1024 * 1024) /* ... for all clients */
#define QSRV_PARTIAL_MS       30000 /* to finish a request line once begun */
#define QSRV_CLIENTS_MAX      1024
#define QSRV_METHODS_MAX      64
#define QSRV_METHOD_NAME_MAX  64  /* including the terminating NUL */
#define QSRV_JSON_DEPTH_MAX   16  /* nesting of a built result */
#define QSRV_GROUPS_MAX       256 /* supplementary groups checked per peer */
#define QSRV_MESSAGE_MAX      128 /* error message bytes */

/* JSON-RPC error codes sent to clients. */
#define QSRV_EPARSE     -32700 /* "parse error" */
#define QSRV_EINVALID   -32600 /* "invalid request" */
#define QSRV_ENOMETHOD  -32601 /* "method not found" */
#define QSRV_EPARAMS    -32602 /* "invalid params" */
#define QSRV_EINTERNAL  -32603 /* "internal error" */
/* Application codes. */
#define QSRV_ELINK_DOWN -32001 /* "link down" */
#define QSRV_ESTALE     -32002 /* "stale data" */
#define QSRV_ETIMEOUT   -32003 /* "timed out" */
#define QSRV_ESTORE     -32004 /* "store error" */
#define QSRV_EPERM      -32005 /* "permission denied" */
#define QSRV_EBUSY      -32006 /* "busy" */
#define QSRV_EIMAGE     -32007 /* "image refused" (flash) */

/* A handler's return value when it will reply later. */
#define QSRV_LATER 1

/* Notification topics, a bitmask per client. */
enum qsrv_topic {
    QSRV_TOPIC_SAMPLES = 1u << 0,
    QSRV_TOPIC_HEAP = 1u << 1,
    QSRV_TOPIC_ALERTS = 1u << 2,
    QSRV_TOPIC_LINK = 1u << 3,
    QSRV_TOPIC_MCU = 1u << 4,
    QSRV_TOPIC_FLASH = 1u << 5,
};

struct qsrv;
struct qsrv_call;   /* one request being answered */
struct qsrv_params; /* a request's params, read with qsrv_param_*() */
struct qsrv_json;   /* a result or notification being built */

struct qsrv_config {
    const char *path;        /* socket file; ignored when adopting an fd */
    const char *group;       /* NULL or "": keep the creating group */
    const char *admin_group; /* NULL or "": only uid 0 is admin */
    /* NULL: qsrv_peer_is_admin() with admin_group.  Tests set it to
     * decide admin rights without depending on who runs them. */
    bool (*admin_check)(void *arg, uid_t uid, gid_t gid);
    void *admin_check_arg;
    /* 0: the defaults, QSRV_OUTPUT_TOTAL_MAX and QSRV_PARTIAL_MS.  Tests
     * set them smaller. */
    size_t output_total_max;
    unsigned partial_ms;
};

struct qsrv_stats {
    uint64_t clients_now;     /* connected clients */
    uint64_t accepted;        /* connections taken on */
    uint64_t rejected;        /* connections closed at once: over the cap */
    uint64_t requests;        /* request lines handled (notifications too) */
    uint64_t errors;          /* error responses sent or due */
    uint64_t dropped_slow;    /* clients dropped for a full output queue */
    uint64_t too_long;        /* clients dropped for an over-long line */
    uint64_t dropped_budget;  /* clients dropped to keep the total bound */
    uint64_t dropped_stalled; /* clients dropped for an unfinished line */
    uint64_t queued;          /* output bytes queued for all clients */
};

/* --- Lifetime ------------------------------------------------------- */

/* Starts listening on cfg->path, or on listen_fd when it is >= 0 (an
 * already-listening socket; qsrv takes ownership of it).  cfg is copied.
 * Returns 0 and sets *out, or a negative errno: -EINVAL (empty or too long
 * path), -EEXIST (path exists and is not a socket), -ENOENT (group or
 * admin group unknown; logged), or what bind, chmod, chown or listen
 * failed with.  After a failure other than -EINVAL or an unknown admin
 * group, a closed handle is still on the loop: run the loop once before
 * uv_loop_close().  Caller owns the result; end it with qsrv_close(). */
int qsrv_open(struct qsrv **out, uv_loop_t *loop, const struct qsrv_config *cfg,
              int listen_fd);

/* Disconnects every client, orphans their pending calls, stops listening
 * and unlinks the socket file if qsrv created it.  done(arg) runs (may be
 * NULL) once every handle is closed, after which srv is freed. */
void qsrv_close(struct qsrv *srv, void (*done)(void *arg), void *arg);

void qsrv_get_stats(const struct qsrv *srv, struct qsrv_stats *out);

/* --- Methods -------------------------------------------------------- */

/* Registers a method.  fn runs on each call with the borrowed params (valid
 * until fn returns) and returns:
 *   0            answer now: the result built with qsrv_call_result()
 *                (JSON null when nothing was built);
 *   QSRV_LATER   fn has completed or will complete the call with
 *                qsrv_reply() / qsrv_reply_error();
 *   a code < 0   answer now with that error (message from the accessor
 *                that failed, else the code's standard message).
 * Returns 0, -EINVAL (name empty or too long), -EEXIST or -ENOSPC (more
 * than QSRV_METHODS_MAX). */
int qsrv_add_method(struct qsrv *srv, const char *name,
                    int (*fn)(void *ctx, struct qsrv_call *call,
                              const struct qsrv_params *params),
                    void *ctx, bool admin_only);

/* Completes a call with its built result, or with an error (msg NULL:
 * the standard message).  Frees the call; when the client is gone or the
 * request was a notification, nothing is sent.  A result over
 * QSRV_OUTPUT_MAX bytes drops the client as a full queue does. */
void qsrv_reply(struct qsrv_call *call);
/* As qsrv_reply(), with the result built in j instead of on the call's
 * own builder (which is discarded).  Takes ownership of j. */
void qsrv_reply_json(struct qsrv_call *call, struct qsrv_json *j);
void qsrv_reply_error(struct qsrv_call *call, int code, const char *msg);

/* True once the call's client has disconnected. */
bool qsrv_call_orphaned(const struct qsrv_call *call);
/* The peer's credentials, taken at accept. */
uid_t qsrv_call_uid(const struct qsrv_call *call);

/* Adds or removes topics (enum qsrv_topic bits) for the call's client;
 * no-op for an orphaned call. */
void qsrv_subscribe(struct qsrv_call *call, unsigned topics);
void qsrv_unsubscribe(struct qsrv_call *call, unsigned topics);

/* --- Params (borrowed: valid until the handler returns) --------------- */

/* Each reads the named member of an object params.  Absent (or params
 * absent): *out = def and 0.  Wrong type or out of range: QSRV_EPARAMS,
 * with a message naming the member kept for the reply.  A string is
 * borrowed like the params. */
int qsrv_param_int(const struct qsrv_params *p, const char *name, int64_t def,
                   int64_t *out);
int qsrv_param_double(const struct qsrv_params *p, const char *name, double def,
                      double *out);
int qsrv_param_bool(const struct qsrv_params *p, const char *name, bool def,
                    bool *out);
int qsrv_param_str(const struct qsrv_params *p, const char *name,
                   const char *def, const char **out);

/* Read an array member of integers (or strings) into out, up to cap
 * elements, setting *n to their number and *present to whether the member
 * was there (absent or null: 0 elements, *present false).  Not an array,
 * an element of the wrong type or more than cap elements: QSRV_EPARAMS
 * naming the member.  Strings are borrowed like the params. */
int qsrv_param_int_array(const struct qsrv_params *p, const char *name,
                         int64_t *out, size_t cap, size_t *n, bool *present);
int qsrv_param_str_array(const struct qsrv_params *p, const char *name,
                         const char **out, size_t cap, size_t *n,
                         bool *present);

/* --- Building results and notifications ---------------------------- */

/* The builder of a call's result.  Borrowed: valid until the call is
 * completed. */
struct qsrv_json *qsrv_call_result(struct qsrv_call *call);
/* The builder of the next notification's params.  Borrowed: valid until
 * the next qsrv_notify(). */
struct qsrv_json *qsrv_notify_params(struct qsrv *srv);

/* A builder of its own, for building a result away from the loop: it
 * touches nothing but itself, so any one thread may fill it.  Caller
 * owns the result; free with qsrv_json_free() (NULL is a no-op) or hand
 * it to qsrv_reply_json(). */
struct qsrv_json *qsrv_json_new(void);
void qsrv_json_free(struct qsrv_json *j);

/* Starts the root as an object or an array; once per builder. */
void qsrv_json_object(struct qsrv_json *j);
void qsrv_json_array(struct qsrv_json *j);
/* Adds a member to the innermost open object (key required) or an element
 * to the innermost open array (key ignored).  Strings are copied and
 * escaped as RFC 8259 asks (quote, backslash, control characters); other
 * bytes, invalid UTF-8 included, pass unchanged.  Doubles are printed so
 * that they read back exactly; NaN and infinities become null.  A
 * builder holds at most QSRV_OUTPUT_MAX bytes of text; what passes that
 * is dropped and the answer is not sent (see qsrv_reply()). */
void qsrv_add_int(struct qsrv_json *j, const char *key, int64_t v);
void qsrv_add_double(struct qsrv_json *j, const char *key, double v);
void qsrv_add_bool(struct qsrv_json *j, const char *key, bool v);
void qsrv_add_str(struct qsrv_json *j, const char *key, const char *v);
void qsrv_add_null(struct qsrv_json *j, const char *key);
/* Opens a nested object or array (at most QSRV_JSON_DEPTH_MAX deep);
 * qsrv_end() closes the innermost one. */
void qsrv_begin_object(struct qsrv_json *j, const char *key);
void qsrv_begin_array(struct qsrv_json *j, const char *key);
void qsrv_end(struct qsrv_json *j);

/* Sends {"jsonrpc":"2.0","method":method,"params":...} with the params
 * built on qsrv_notify_params() (none if nothing was built) to every
 * client subscribed to any of topics, then resets that builder. */
void qsrv_notify(struct qsrv *srv, unsigned topics, const char *method);

/* --- Admin rights --------------------------------------------------- */

/* True when uid is 0, or has_admin_gid and the peer's primary gid is
 * admin_gid or admin_gid is among the supplementary groups of uid's user
 * (looked up by name; an unknown uid has none). */
bool qsrv_peer_is_admin(uid_t uid, gid_t gid, bool has_admin_gid,
                        gid_t admin_gid);

#endif
