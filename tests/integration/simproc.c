/* Helpers to run tether-sim under test.  See simproc.h. */
#define _GNU_SOURCE
#include "simproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define ARGS_MAX 32u

int64_t simproc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *sim_path(void)
{
    const char *p = getenv("TETHER_SIM");

    return p ? p : "build/tether-sim";
}

/* Forks path with args (NULL-terminated, argv[0] excluded), extra
 * environment entries (NULL-terminated "K=V", may be NULL) and stdout, and
 * stderr if err_fd >= 0, redirected. */
pid_t simproc_spawn(const char *path, const char *const *args,
                    const char *const *env, int out_fd, int err_fd)
{
    const char *argv[ARGS_MAX];
    size_t n = 0;
    pid_t parent = getpid();
    pid_t pid;

    argv[n++] = path;
    while (args != NULL && args[n - 1] != NULL && n < ARGS_MAX - 1) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    pid = fork();
    if (pid != 0)
        return pid;
    /* Die with the test process, whatever ends it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        putenv((char *)env[i]);
    if (out_fd >= 0)
        dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0)
        dup2(err_fd, STDERR_FILENO);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

static pid_t spawn(const char *const *args, int out_fd, int err_fd)
{
    return simproc_spawn(sim_path(), args, NULL, out_fd, err_fd);
}

static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    size_t n = 0;

    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(end - simproc_now_ms());

        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        if (read(fd, &buf[n], 1) != 1)
            return -1;
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    return -1;
}

int simproc_start(struct simproc *s, const char *const *args)
{
    struct termios tio;
    int pipefd[2];

    memset(s, 0, sizeof(*s));
    s->tty = -1;
    frame_rx_init(&s->rx, s->rxbuf, sizeof(s->rxbuf));
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    s->pid = spawn(args, pipefd[1], -1);
    close(pipefd[1]);
    s->out = pipefd[0];
    if (s->pid < 0 || read_line(s->out, s->pty, sizeof(s->pty), 5000) != 0)
        return -1;
    s->tty = open(s->pty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s->tty < 0 || tcgetattr(s->tty, &tio) != 0)
        return -1;
    cfmakeraw(&tio);
    return tcsetattr(s->tty, TCSANOW, &tio);
}

int simproc_start_prog(struct simproc *s, const char *path,
                       const char *const *args, int err_fd)
{
    struct termios tio;
    int pipefd[2];

    memset(s, 0, sizeof(*s));
    s->tty = -1;
    frame_rx_init(&s->rx, s->rxbuf, sizeof(s->rxbuf));
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    s->pid = simproc_spawn(path, args, NULL, pipefd[1], err_fd);
    close(pipefd[1]);
    s->out = pipefd[0];
    if (s->pid < 0 || read_line(s->out, s->pty, sizeof(s->pty), 5000) != 0)
        return -1;
    s->tty = open(s->pty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s->tty < 0 || tcgetattr(s->tty, &tio) != 0)
        return -1;
    cfmakeraw(&tio);
    return tcsetattr(s->tty, TCSANOW, &tio);
}

int simproc_next(struct simproc *s, struct frame *f, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;

    for (;;) {
        struct pollfd p = {s->tty, POLLIN, 0};
        uint8_t b;
        int left = (int)(end - simproc_now_ms());
        ssize_t n;

        /* One byte per read keeps the rest of the stream in the kernel,
         * so a frame's payload stays valid until the next call. */
        n = read(s->tty, &b, 1);
        if (n == 1) {
            s->bytes_in++;
            if (frame_rx_push(&s->rx, b, f) == FRAME_RX_OK)
                return 1;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return 0;
        if (left <= 0 || poll(&p, 1, left) < 0)
            return 0;
    }
}

int simproc_wait_type(struct simproc *s, uint8_t type, struct frame *f,
                      int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    int left;

    while ((left = (int)(end - simproc_now_ms())) > 0)
        if (simproc_next(s, f, left) && f->type == type)
            return 1;
    return 0;
}

uint16_t simproc_send(struct simproc *s, uint8_t type, const uint8_t *p,
                      size_t n)
{
    uint8_t w[FRAME_WIRE_MAX];
    int len = frame_encode(w, sizeof(w), type, s->tx_seq, p, n);

    if (len > 0 && write(s->tty, w, (size_t)len) != len)
        fprintf(stderr, "simproc: short write to %s\n", s->pty);
    return s->tx_seq++;
}

int simproc_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t end = simproc_now_ms() + timeout_ms;
    int status;

    while (simproc_now_ms() < end) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

int simproc_stop(struct simproc *s, int timeout_ms)
{
    int status = -1;

    if (s->tty >= 0)
        close(s->tty);
    s->tty = -1;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        status = simproc_wait_exit(s->pid, timeout_ms);
        s->pid = 0;
    }
    if (s->out > 0)
        close(s->out);
    s->out = -1;
    return status;
}

int simproc_run_expect_exit(const char *const *args, char *err, size_t cap,
                            int timeout_ms)
{
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int pipefd[2];
    pid_t pid;
    ssize_t n;
    int status;

    if (out < 0 || pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    pid = spawn(args, out, pipefd[1]);
    close(pipefd[1]);
    close(out);
    status = simproc_wait_exit(pid, timeout_ms);
    n = read(pipefd[0], err, cap - 1);
    err[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
