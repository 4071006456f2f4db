/* A blocking JSON-RPC 2.0 client for tetherd's query socket (docs/QUERY.md):
 * one JSON object per line each way over a Unix stream socket.  Every wait
 * is bounded by poll() with a deadline, and every line read is bounded by
 * RPC_LINE_MAX, because a wedged or misbehaving daemon must not hang or
 * balloon the command-line tool.  Single-threaded; not reentrant. */
#ifndef TETHERCTL_RPC_H
#define TETHERCTL_RPC_H

#include <cjson/cJSON.h>

#define RPC_LINE_MAX    (1024 * 1024) /* longest response line accepted */
#define RPC_MESSAGE_MAX 256           /* error text kept from a response */

/* Return codes (besides 0). */
#define RPC_EREMOTE -1 /* the server answered with an error object */
/* Others are negative errno values: -ETIMEDOUT (no response in time),
 * -EMSGSIZE (a line longer than RPC_LINE_MAX), -EPROTO (a line that is not
 * a JSON object, or a response without result or error), -ECONNRESET (the
 * server closed the connection), -EINTR (a signal interrupted a wait),
 * -ENAMETOOLONG (socket path), -ENOMEM, or the errno of a failed call. */

struct rpc_error {
    long code;
    char message[RPC_MESSAGE_MAX];
};

struct rpc;

/* Connects to the socket at path; timeout_ms bounds each rpc_call().
 * Caller owns the result; free with rpc_close(). */
int rpc_open(struct rpc **out, const char *path, int timeout_ms);
void rpc_close(struct rpc *r); /* NULL is a no-op */

/* Where rpc_call() passes notifications (objects without "id") that arrive
 * while it waits for its response; without a function they are dropped.
 * Borrowed: note is valid only during the call of fn. */
void rpc_set_note_fn(struct rpc *r, void (*fn)(const cJSON *note, void *arg),
                     void *arg);

/* Sends a request and waits for the response with the same id.  Takes
 * ownership of params (may be NULL).  On 0, *result is the response's
 * result; caller owns it; free with cJSON_Delete().  On RPC_EREMOTE, err
 * holds the server's code and message. */
int rpc_call(struct rpc *r, const char *method, cJSON *params, cJSON **result,
             struct rpc_error *err);

/* Waits up to timeout_ms (-1: forever) for the next notification.  On 0,
 * caller owns *note; free with cJSON_Delete().  Stray responses are
 * skipped. */
int rpc_next_note(struct rpc *r, int timeout_ms, cJSON **note);

#endif
