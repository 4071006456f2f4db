/* Starting and stopping tether-sim from tests, and talking to its pty.
 * Every process started here dies with the test that started it
 * (PR_SET_PDEATHSIG), even when an assertion ends that test early. */
#ifndef TETHER_SIMPROC_H
#define TETHER_SIMPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "frame.h"

#define SIMPROC_PATH_MAX 256u

struct simproc {
    pid_t pid;
    int out;                    /* the sim's stdout */
    int tty;                    /* our end of the link, or -1 */
    char pty[SIMPROC_PATH_MAX]; /* path the sim printed */
    struct frame_rx rx;
    uint8_t rxbuf[FRAME_RX_BUF_LEN(FRAME_PAYLOAD_MAX)];
    uint16_t tx_seq;
    uint64_t bytes_in;
};

/* Starts $TETHER_SIM (or build/tether-sim) with the NULL-terminated
 * arguments and opens the pty it prints.  Returns 0 or -1. */
int simproc_start(struct simproc *s, const char *const *args);

/* Like simproc_start(), for any program that prints its pty's path on the
 * first line of stdout (scripts/qemu.sh too): runs path with args, its
 * stderr to err_fd (unchanged if < 0).  Returns 0 or -1. */
int simproc_start_prog(struct simproc *s, const char *path,
                       const char *const *args, int err_fd);

/* Waits up to timeout_ms for the next good frame; returns 1 with *f set
 * (payload valid until the next call), or 0 on timeout or end of link. */
int simproc_next(struct simproc *s, struct frame *f, int timeout_ms);

/* Waits for a frame of the given type; returns 1 or 0 on timeout. */
int simproc_wait_type(struct simproc *s, uint8_t type, struct frame *f,
                      int timeout_ms);

/* Sends one command frame; returns its sequence number. */
uint16_t simproc_send(struct simproc *s, uint8_t type, const uint8_t *p,
                      size_t n);

/* SIGTERM, then SIGKILL after timeout_ms.  Returns the exit status as
 * waitpid() gives it, or -1 if the process had to be killed. */
int simproc_stop(struct simproc *s, int timeout_ms);

/* Runs the sim with args, expecting it to exit by itself within
 * timeout_ms; returns its exit code and puts its stderr in err. */
int simproc_run_expect_exit(const char *const *args, char *err, size_t cap,
                            int timeout_ms);

/* Forks path with args (NULL-terminated, without argv[0]), extra "K=V"
 * environment entries (NULL-terminated, or NULL), stdout to out_fd and
 * stderr to err_fd (each unchanged if < 0).  The child dies with the
 * caller.  Returns the pid. */
pid_t simproc_spawn(const char *path, const char *const *args,
                    const char *const *env, int out_fd, int err_fd);

/* Waits up to timeout_ms for pid to exit, then SIGKILLs and reaps it.
 * Returns the waitpid() status, or -1 if it had to be killed. */
int simproc_wait_exit(pid_t pid, int timeout_ms);

/* Monotonic milliseconds. */
int64_t simproc_now_ms(void);

#endif
