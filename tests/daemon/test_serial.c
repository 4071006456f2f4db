/* The serial module on pseudo-terminals, the only terminals a test can
 * make: the test holds the master side and plays the MCU.  There is no
 * real UART here, so libserialport's own path is exercised as far as it
 * goes without one: the library is shown to refuse a pty (which is why
 * the pty path exists), /dev/ptmx is opened through the fallback taken
 * when the library refuses a terminal, and /dev/tty, which the library
 * accepts, fails in sp_open() when there is no controlling terminal and
 * that error is translated. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libserialport.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "daemon_test_util.h"
#include "log.h"
#include "serial.h"

#define WAIT_MS 2000

struct pty {
    int master;
    char slave[PATH_MAX];
};

static void pty_open(struct pty *p)
{
    p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(p->master, 0);
    ck_assert_int_eq(grantpt(p->master), 0);
    ck_assert_int_eq(unlockpt(p->master), 0);
    snprintf(p->slave, sizeof(p->slave), "%s", ptsname(p->master));
}

/* Reads exactly n bytes from fd within WAIT_MS. */
static void read_exactly(int fd, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t r;

        ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
        r = read(fd, (char *)buf + got, n - got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
}

/* serial_read() until n bytes came, waiting on the descriptor. */
static void serial_read_exactly(struct serial *s, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        struct pollfd pfd = {serial_fd(s), POLLIN, 0};
        ssize_t r;

        ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
        r = serial_read(s, (char *)buf + got, n - got);
        ck_assert_int_ge(r, 0);
        got += (size_t)r;
    }
}

/* Bytes a cooked terminal would change or act on. */
static const unsigned char awkward[] = {0x00, 0x0d, 0x0a, 0x03, 0x04, 0x11,
                                        0x13, 0x1a, 0x7f, 0xff, 0x80, 0x1b};

/* Both directions carry every byte unchanged. */
static void check_both_ways(struct serial *s, int other)
{
    unsigned char buf[sizeof(awkward)];

    ck_assert_int_eq(write(other, awkward, sizeof(awkward)),
                     (ssize_t)sizeof(awkward));
    serial_read_exactly(s, buf, sizeof(buf));
    ck_assert_mem_eq(buf, awkward, sizeof(awkward));
    ck_assert_int_eq(serial_write(s, awkward, sizeof(awkward)),
                     (ssize_t)sizeof(awkward));
    read_exactly(other, buf, sizeof(buf));
    ck_assert_mem_eq(buf, awkward, sizeof(awkward));
}

START_TEST(test_serial_opens_a_pty_raw_nonblocking_and_moves_bytes_both_ways)
{
    struct serial *s = NULL;
    struct termios tio;
    unsigned char b;
    struct pty p;
    int fd;

    pty_open(&p);
    ck_assert_int_eq(serial_open(&s, p.slave, 115200, false), 0);
    ck_assert(serial_is_pty(s));
    fd = serial_fd(s);
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert_int_eq(tcgetattr(fd, &tio), 0);
    ck_assert_uint_eq(tio.c_cflag & CSIZE, CS8);
    ck_assert_uint_eq(tio.c_cflag & (PARENB | CSTOPB | CRTSCTS), 0);
    ck_assert_uint_eq(tio.c_lflag & (ICANON | ECHO | ISIG), 0);
    ck_assert_uint_eq(cfgetospeed(&tio), B115200);
    ck_assert_uint_eq(tio.c_cc[VMIN], 1);
    /* Nothing to read is not an error. */
    ck_assert_int_eq(serial_read(s, &b, 1), 0);
    check_both_ways(s, p.master);
    serial_close(s);
    close(p.master);
    serial_close(NULL);
}
END_TEST

START_TEST(test_serial_keeps_bytes_the_mcu_sent_before_the_open)
{
    static const char hello[] = "HELLO before open";
    struct serial *s;
    struct termios tio;
    char buf[sizeof(hello)];
    struct pty p;
    int holder;

    /* As tether-sim does: the slave is held open (raw) by the MCU side,
     * which writes before tetherd opens it. */
    pty_open(&p);
    holder = open(p.slave, O_RDWR | O_NOCTTY);
    ck_assert_int_ge(holder, 0);
    ck_assert_int_eq(tcgetattr(holder, &tio), 0);
    cfmakeraw(&tio);
    ck_assert_int_eq(tcsetattr(holder, TCSANOW, &tio), 0);
    ck_assert_int_eq(write(p.master, hello, sizeof(hello)),
                     (ssize_t)sizeof(hello));
    usleep(50000);
    ck_assert_int_eq(serial_open(&s, p.slave, 115200, false), 0);
    serial_read_exactly(s, buf, sizeof(buf));
    ck_assert_mem_eq(buf, hello, sizeof(hello));
    serial_close(s);
    close(holder);
    close(p.master);
}
END_TEST

START_TEST(test_serial_reports_a_hangup_as_eio)
{
    struct serial *s;
    char buf[8];
    struct pty p;

    /* Closing the master hangs the slave up (what tetherd sees when
     * tether-sim is killed); bytes still queued may go with it. */
    pty_open(&p);
    ck_assert_int_eq(serial_open(&s, p.slave, 9600, false), 0);
    ck_assert_int_eq(serial_read(s, buf, sizeof(buf)), 0);
    close(p.master);
    ck_assert_int_eq(serial_read(s, buf, sizeof(buf)), -EIO);
    ck_assert_int_lt(serial_write(s, "x", 1), 0);
    serial_close(s);
}
END_TEST

START_TEST(test_serial_follows_a_symlink_to_a_pty)
{
    char link[PATH_MAX + 16];
    struct serial *s;
    struct pty p;

    pty_open(&p);
    snprintf(link, sizeof(link), "%s/tty", dtest_tmpdir());
    ck_assert_int_eq(symlink(p.slave, link), 0);
    ck_assert_int_eq(serial_open(&s, link, 115200, true), 0);
    ck_assert(serial_is_pty(s));
    check_both_ways(s, p.master);
    serial_close(s);
    close(p.master);
    unlink(link);
    rmdir(dirname(link));
}
END_TEST

START_TEST(test_serial_rejects_missing_paths_files_and_bad_bauds)
{
    char dir[PATH_MAX], file[PATH_MAX + 16], dangling[PATH_MAX + 16];
    struct serial *s = (struct serial *)&s;
    struct pty p;
    int fd;

    snprintf(dir, sizeof(dir), "%s", dtest_tmpdir());
    snprintf(file, sizeof(file), "%s/file", dir);
    snprintf(dangling, sizeof(dangling), "%s/dangling", dir);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(symlink("/dev/pts/999999", dangling), 0);

    ck_assert_int_eq(serial_open(&s, "/dev/tether-no-such-tty", 115200, false),
                     -ENOENT);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(serial_open(&s, dangling, 115200, false), -ENOENT);
    ck_assert_int_eq(serial_open(&s, file, 115200, false), -EINVAL);
    ck_assert_int_eq(serial_open(&s, dir, 115200, false), -EINVAL);
    ck_assert_int_eq(serial_open(&s, "/dev/null", 115200, false), -EINVAL);
    ck_assert_int_eq(serial_open(&s, "", 115200, false), -EINVAL);
    ck_assert_ptr_null(s);

    pty_open(&p);
    ck_assert_int_eq(serial_open(&s, p.slave, 0, false), -EINVAL);
    ck_assert_int_eq(serial_open(&s, p.slave, 12345, false), -EINVAL);
    ck_assert_ptr_null(s);
    close(p.master);
    unlink(file);
    unlink(dangling);
    rmdir(dir);
}
END_TEST

START_TEST(test_serial_libserialport_refuses_a_pty_so_the_pty_path_is_needed)
{
    struct sp_port *port = NULL;
    struct serial *s;
    struct pty p;

    pty_open(&p);
    /* Debian's 0.1.1 finds no /sys/class/tty/<name>/device for a pty and
     * answers SP_ERR_ARG. */
    ck_assert_int_eq(sp_get_port_by_name(p.slave, &port), SP_ERR_ARG);
    ck_assert_ptr_null(port);
    ck_assert_int_eq(serial_open(&s, p.slave, 115200, false), 0);
    serial_close(s);
    close(p.master);
}
END_TEST

/* Runs serial_open() with debug logging into a file; returns its result
 * and puts what was logged in text. */
static int open_logged(struct serial **s, const char *path, char *text,
                       size_t cap)
{
    char logpath[PATH_MAX + 16];
    ssize_t n;
    int fd, r;

    snprintf(logpath, sizeof(logpath), "%s/log", dtest_tmpdir());
    fd = open(logpath, O_CREAT | O_RDWR | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    log_set_fd(fd);
    log_set_level(LOG_PRIO_DEBUG);
    r = serial_open(s, path, 115200, false);
    log_set_fd(STDERR_FILENO);
    log_set_level(LOG_PRIO_INFO);
    n = pread(fd, text, cap - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(logpath);
    rmdir(dirname(logpath));
    return r;
}

START_TEST(test_serial_tries_termios_when_the_library_does_not_know_a_device)
{
    struct sp_port *port = NULL;
    struct serial *s = NULL;
    char text[4096];

    /* /dev/null is a character device but no terminal: the library has
     * no port by that name, the fallback opens it, and isatty() says no. */
    ck_assert_int_eq(sp_get_port_by_name("/dev/null", &port), SP_ERR_ARG);
    ck_assert_int_eq(open_logged(&s, "/dev/null", text, sizeof(text)), -EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(text, "libserialport does not know /dev/null") != NULL,
                  "log: %s", text);
}
END_TEST

START_TEST(test_serial_falls_back_to_termios_when_sp_open_refuses_a_tty)
{
    struct sp_port *port = NULL;
    char text[4096], slave[PATH_MAX];
    struct serial *s;
    struct termios tio;
    int fd, e;

    /* /dev/ptmx is a terminal (each open makes a new pty master) that is
     * neither under /dev/pts/ nor of a slave major, so serial_open() goes
     * to the library first.  The library knows the name, but its sp_open()
     * fails in the TIOCMGET that pty masters refuse. */
    ck_assert_int_eq(sp_get_port_by_name("/dev/ptmx", &port), SP_OK);
    ck_assert_int_eq(sp_open(port, SP_MODE_READ_WRITE), SP_ERR_FAIL);
    e = sp_last_error_code();
    ck_assert(e == ENOTTY || e == EINVAL);
    sp_free_port(port);

    ck_assert_int_eq(open_logged(&s, "/dev/ptmx", text, sizeof(text)), 0);
    ck_assert(!serial_is_pty(s));
    ck_assert_msg(strstr(text, "libserialport cannot drive /dev/ptmx") != NULL,
                  "log: %s", text);
    ck_assert(fcntl(serial_fd(s), F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(serial_fd(s), F_GETFD) & FD_CLOEXEC);

    /* It works: its slave talks to it. */
    ck_assert_int_eq(grantpt(serial_fd(s)), 0);
    ck_assert_int_eq(unlockpt(serial_fd(s)), 0);
    ck_assert_int_eq(ptsname_r(serial_fd(s), slave, sizeof(slave)), 0);
    fd = open(slave, O_RDWR | O_NOCTTY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(tcgetattr(fd, &tio), 0);
    cfmakeraw(&tio);
    ck_assert_int_eq(tcsetattr(fd, TCSANOW, &tio), 0);
    check_both_ways(s, fd);
    close(fd);
    serial_close(s);
}
END_TEST

START_TEST(test_serial_translates_an_sp_open_failure_of_the_library_path)
{
    struct sp_port *port = NULL;
    struct serial *s = (struct serial *)&s;
    int fd;

    /* Without a controlling terminal /dev/tty cannot be opened (ENXIO).
     * The library knows /dev/tty, so this goes through
     * sp_get_port_by_name() and fails in sp_open().  The check runs only
     * when the test process has no controlling terminal, so that a
     * developer's terminal is never reconfigured. */
    (void)setsid();
    fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0) {
        close(fd);
        return;
    }
    ck_assert_int_eq(errno, ENXIO);
    ck_assert_int_eq(sp_get_port_by_name("/dev/tty", &port), SP_OK);
    ck_assert_int_eq(sp_open(port, SP_MODE_READ_WRITE), SP_ERR_FAIL);
    ck_assert_int_eq(sp_last_error_code(), ENXIO);
    sp_free_port(port);
    ck_assert_int_eq(serial_open(&s, "/dev/tty", 115200, false), -ENOENT);
    ck_assert_ptr_null(s);
}
END_TEST

static Suite *serial_suite(void)
{
    Suite *s = suite_create("serial");
    TCase *pty = tcase_create("pty");
    TCase *errors = tcase_create("errors");
    TCase *library = tcase_create("libserialport");

    tcase_add_test(
        pty, test_serial_opens_a_pty_raw_nonblocking_and_moves_bytes_both_ways);
    tcase_add_test(pty, test_serial_keeps_bytes_the_mcu_sent_before_the_open);
    tcase_add_test(pty, test_serial_reports_a_hangup_as_eio);
    tcase_add_test(pty, test_serial_follows_a_symlink_to_a_pty);
    tcase_set_timeout(pty, 10);
    suite_add_tcase(s, pty);

    tcase_add_test(errors,
                   test_serial_rejects_missing_paths_files_and_bad_bauds);
    tcase_set_timeout(errors, 10);
    suite_add_tcase(s, errors);

    tcase_add_test(
        library,
        test_serial_libserialport_refuses_a_pty_so_the_pty_path_is_needed);
    tcase_add_test(
        library,
        test_serial_tries_termios_when_the_library_does_not_know_a_device);
    tcase_add_test(
        library, test_serial_falls_back_to_termios_when_sp_open_refuses_a_tty);
    tcase_add_test(
        library, test_serial_translates_an_sp_open_failure_of_the_library_path);
    tcase_set_timeout(library, 10);
    suite_add_tcase(s, library);
    return s;
}

int main(void)
{
    return dtest_run(serial_suite());
}
