/* What the end-to-end tests have in common once tetherd runs: a JSON-RPC
 * client on its query socket (docs/QUERY.md), read-only looks into its
 * SQLite database, its log file, tetherctl run against it, and the
 * temporary folders and processes each test makes and ends.
 *
 * These helpers run inside Check tests: a broken precondition or a step
 * that cannot happen fails the calling test (ck_assert) rather than
 * returning an error, unless the comment says what is returned.  Every
 * wait is bounded by a timeout the caller gives; every buffer has a cap. */
#ifndef TETHER_ITEST_H
#define TETHER_ITEST_H

#include <check.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stddef.h>
#include <sys/types.h>

#define ITEST_LINE_MAX (1 << 20) /* longest response line read */
#define ITEST_ARGV_MAX 24        /* tetherctl arguments, --socket included */
#define ITEST_LOG_MAX  (1 << 20) /* how much of a log file is searched */

/* ---- Environment, files and processes ---- */

/* $name, or def when it is unset or empty.  Borrowed: the environment's
 * string or def. */
const char *itest_env_or(const char *name, const char *def);

/* Makes a fresh folder <$TMPDIR or /tmp>/<prefix>XXXXXX in dir (cap bytes,
 * $TMPDIR cut to 40 characters so that socket paths inside still fit). */
void itest_make_dir(char *dir, size_t cap, const char *prefix);

/* Removes dir and everything below it; links are removed, not followed. */
void itest_remove_tree(const char *dir);

/* Writes text to path (truncating) and sets its mode. */
void itest_write_file(const char *path, const char *text, mode_t mode);

/* Reads at most cap - 1 bytes of path into buf, NUL-terminated; a missing
 * file reads as empty. */
void itest_read_file(const char *path, char *buf, size_t cap);

/* Opens path for appending as a child's stdout and stderr; returns the
 * descriptor (close-on-exec; the caller closes it). */
int itest_open_log(const char *path);

/* Waits up to timeout_ms until the first ITEST_LOG_MAX bytes of the file
 * at path contain needle; returns 1 if they did in time, else 0. */
int itest_wait_log(const char *path, const char *needle, int timeout_ms);

/* Waits up to timeout_ms for something to exist at path (a pty's link). */
void itest_wait_link(const char *path, int timeout_ms);

/* Starts $TETHER_SIM (or build/tether-sim) with the NULL-terminated args,
 * which make it link its pty at link, its output to /dev/null; waits up
 * to timeout_ms for the link.  Returns the pid. */
pid_t itest_start_sim(const char *link, const char *const *args,
                      int timeout_ms);

/* If *pid > 0: SIGKILLs and reaps it (up to 2 s), and sets *pid to 0. */
void itest_kill(pid_t *pid);

/* SIGTERM to *pid, which must then exit with status 0 within timeout_ms;
 * *pid is 0 afterwards, whatever happened. */
void itest_stop_cleanly(pid_t *pid, int timeout_ms);

/* Runs $TETHERCTL (or build/tetherctl) --socket sock with the
 * NULL-terminated args, its stdout and stderr into out_file and then into
 * out (cap bytes, NUL-terminated); it must exit within timeout_ms.
 * Returns its exit status. */
int itest_tetherctl(const char *sock, const char *out_file,
                    const char *const *args, char *out, size_t cap,
                    int timeout_ms);

/* Runs every test of s; returns EXIT_SUCCESS if all passed, else
 * EXIT_FAILURE.  Takes ownership of s. */
int itest_run(Suite *s);

/* The resident memory of process pid (VmRSS in /proc/pid/status) in KiB,
 * or -1 when it cannot be read. */
long itest_proc_rss_kb(pid_t pid);

/* The open descriptors of process pid (entries of /proc/pid/fd), or -1
 * when they cannot be listed. */
int itest_proc_fds(pid_t pid);

/* ---- The query socket ---- */

/* One connection and its read buffer (ITEST_LINE_MAX bytes). */
struct itest_client {
    int fd;
    char *buf;
    size_t len;
    int next_id;
    int wait_ms; /* how long a connect or a call may take */
};

/* Connects to the socket at sock, retrying for up to wait_ms while tetherd
 * starts.  Close with itest_client_close(). */
void itest_client_open(struct itest_client *c, const char *sock, int wait_ms);
void itest_client_close(struct itest_client *c);

/* One connection attempt to the socket at sock, without retrying and
 * without failing the test (for any thread): returns the connected
 * descriptor (close-on-exec; the caller closes it) or -errno. */
int itest_connect(const char *sock);

/* For a forked child only: gives up root for uid with gid as its only
 * group, then connects to the socket at sock without retrying.  Returns
 * the connected descriptor, -EPERM when it could not become uid, or
 * -ECONNREFUSED when it could not connect. */
int itest_peer_connect(const char *sock, uid_t uid, gid_t gid);

/* Sends n bytes of p; returns 0, or -1 when the server hung up (a read
 * then says so). */
int itest_send_all(struct itest_client *c, const char *p, size_t n);

/* The next line within timeout_ms, which must be JSON; returns it parsed
 * (caller owns the result; free with cJSON_Delete()), or NULL on timeout,
 * end of stream, or a line longer than ITEST_LINE_MAX. */
cJSON *itest_read_msg(struct itest_client *c, int timeout_ms);

/* Sends a request (params is JSON text, or NULL for none) and returns its
 * response, skipping notifications; fails the test after c->wait_ms.
 * Caller owns the result; free with cJSON_Delete(). */
cJSON *itest_call(struct itest_client *c, const char *method,
                  const char *params);

/* The result of response m, which must not be an error.  Borrowed: valid
 * until m is deleted. */
const cJSON *itest_result(const cJSON *m);

/* The error code and message of response m, which must be an error.  The
 * message is borrowed: valid until m is deleted. */
int itest_error_code(const cJSON *m);
const char *itest_error_message(const cJSON *m);

/* o.a, or o.a.b when b is not NULL; the member must be there.  Borrowed:
 * valid until o's root is deleted. */
const cJSON *itest_member(const cJSON *o, const char *a, const char *b);

/* ---- The database ---- */

/* Opens the database at path read-only, waiting up to 2 s on locks; close
 * with sqlite3_close(). */
sqlite3 *itest_db_open(const char *path);

/* The first column of the first row of sql as an integer, or -1 when there
 * is no row; sql must prepare. */
long long itest_query_int(sqlite3 *db, const char *sql);

/* The first column of every row of sql, each followed by a newline, into
 * out (cap bytes, NUL-terminated, cut when full); sql must prepare. */
void itest_query_text(sqlite3 *db, const char *sql, char *out, size_t cap);

/* itest_query_int() on the database at path, opened for this one query. */
long long itest_db_int(const char *path, const char *sql);

/* Checks what tetherd stored from the four-channel layout that the
 * simulator and the firmware images share: at least 20 batches, each whole
 * (every channel of every scan), channel 3 present and always its constant
 * 3854 (4/17 of 14-bit full scale), and at least min_heap heap reports,
 * each with free + used = total. */
void itest_assert_stored_telemetry(sqlite3 *db, long long min_heap);

/* ---- A cable with a proxy on it ---- */

/* What a proxy does to the firmware upload it carries from tetherd to the
 * MCU.  Offsets are into the image's body, as UPD_DATA carries them; a
 * negative offset is never reached. */
struct itest_fault {
    /* Flips the low bit of the body byte at flip_at in every UPD_DATA
     * frame that carries it, and makes the frame's CRC good again: a
     * fault past the frame check (a bad RAM cell, a DMA error) that only
     * the MCU's hash of the whole body can catch.  Every copy is damaged,
     * as a bad cell would damage it, so a chunk sent again after a lost
     * frame does not repair the upload. */
    long flip_at;
    /* The first UPD_DATA frame that carries cut_at is not forwarded: the
     * proxy pulls its own cable there, at a point of the upload no timing
     * decides.  It removes its link, closes both ptys and exits with
     * status 0. */
    long cut_at;
};

/* Starts a proxy that copies bytes both ways between the MCU's pty (the
 * file or link at up) and a pty of its own linked at link, which tetherd
 * opens, until it is killed; with fault (NULL for none) it also does what
 * fault says.  It holds its own pty's other end open, so tetherd closing
 * and reopening the link is no hang-up.  Waits up to timeout_ms for the
 * link; returns the proxy's pid (it dies with the caller). */
pid_t itest_proxy_start(const char *up, const char *link,
                        const struct itest_fault *fault, int timeout_ms);

/* The cable pulled: removes link first, as udev removes a device's node
 * (a link left to a dead pty would point at whatever pty takes its
 * number next), then kills and reaps *pid (if > 0) and sets it to 0. */
void itest_proxy_stop(const char *link, pid_t *pid);

/* Waits up to timeout_ms for a proxy started with a cut_at to pull its
 * own cable; returns 1 if it did so (and is reaped), else 0 (it is killed
 * if it still ran).  *pid is 0 afterwards. */
int itest_proxy_wait_cut(pid_t *pid, int timeout_ms);

/* ---- Firmware updates through the socket ---- */

/* Asks c for status until the link is connected, the MCU runs version and
 * its newest heap report is under fresh_ms old; fails the test after
 * timeout_ms. */
void itest_wait_running(struct itest_client *c, const char *version,
                        int fresh_ms, int timeout_ms);

/* Reads c's notifications until a flash one with state "done" and returns
 * its params, borrowed from *root, which the caller deletes; fails the
 * test after timeout_ms. */
const cJSON *itest_wait_flash_outcome(struct itest_client *c, cJSON **root,
                                      int timeout_ms);

#endif
