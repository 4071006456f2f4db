/* The configuration: defaults, the INI file, flags, their precedence,
 * every kind of error with its file:line message, reload, and the printed
 * configuration reading back the same. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon_test_util.h"
#include "log.h"

#define ARGS_MAX      96
#define TEXT_MAX      8192
#define DIR_MAX       256  /* the test's temporary directory */
#define FILE_NAME_MAX 320  /* a file in it */
#define WANT_MAX      1024 /* an expected message */

static char dir[DIR_MAX];
static char conf[FILE_NAME_MAX]; /* dir/tetherd.conf */
static char err[CONFIG_ERR_MAX];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s", dtest_tmpdir());
    snprintf(conf, sizeof(conf), "%s/tetherd.conf", dir);
    err[0] = '\0';
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* argv = "tetherd" followed by args (NULL-terminated). */
static int load_args(struct config *c, struct config_cli *cli,
                     const char *const *args)
{
    char *argv[ARGS_MAX];
    int argc = 0;

    argv[argc++] = (char *)"tetherd";
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        ck_assert_int_lt(argc, ARGS_MAX - 1);
        argv[argc++] = (char *)args[i];
    }
    argv[argc] = NULL;
    return config_load(c, cli, argc, argv, err, sizeof(err));
}

/* Loads conf (written from text) with no other flags. */
static int load_text(struct config *c, const char *text)
{
    const char *args[] = {"--config", conf, NULL};

    write_text(conf, text);
    return load_args(c, NULL, args);
}

static void assert_same(const struct config *a, const struct config *b)
{
    ck_assert_str_eq(a->device, b->device);
    ck_assert_uint_eq(a->baud, b->baud);
    ck_assert_int_eq(a->rtscts, b->rtscts);
    ck_assert_uint_eq(a->stale_after_ms, b->stale_after_ms);
    ck_assert_str_eq(a->db, b->db);
    ck_assert_uint_eq(a->commit_ms, b->commit_ms);
    ck_assert_uint_eq(a->commit_rows, b->commit_rows);
    ck_assert_uint_eq(a->queue_rows, b->queue_rows);
    ck_assert_uint_eq(a->raw_max_age_s, b->raw_max_age_s);
    ck_assert_uint_eq(a->raw_max_rows, b->raw_max_rows);
    ck_assert_uint_eq(a->rollup_1s_age_s, b->rollup_1s_age_s);
    ck_assert_uint_eq(a->rollup_1m_age_s, b->rollup_1m_age_s);
    ck_assert_uint_eq(a->max_size_mb, b->max_size_mb);
    ck_assert_uint_eq(a->ring_samples, b->ring_samples);
    ck_assert_uint_eq(a->ring_heap, b->ring_heap);
    ck_assert_uint_eq(a->heap_low.value, b->heap_low.value);
    ck_assert_int_eq(a->heap_low.percent, b->heap_low.percent);
    ck_assert_uint_eq(a->heap_hysteresis.value, b->heap_hysteresis.value);
    ck_assert_int_eq(a->heap_hysteresis.percent, b->heap_hysteresis.percent);
    ck_assert_uint_eq(a->hold_off_s, b->hold_off_s);
    ck_assert_uint_eq(a->hold_off_reports, b->hold_off_reports);
    ck_assert_uint_eq(a->leak_window_s, b->leak_window_s);
    ck_assert_uint_eq(a->leak_horizon_s, b->leak_horizon_s);
    ck_assert_uint_eq(a->leak_min_reports, b->leak_min_reports);
    ck_assert_str_eq(a->alert_command, b->alert_command);
    ck_assert_uint_eq(a->alert_timeout_ms, b->alert_timeout_ms);
    ck_assert_str_eq(a->socket, b->socket);
    ck_assert_uint_eq(a->request_timeout_ms, b->request_timeout_ms);
    ck_assert_int_eq(a->flash_method, b->flash_method);
    ck_assert_uint_eq(a->flash_window, b->flash_window);
    ck_assert_uint_eq(a->flash_timeout_ms, b->flash_timeout_ms);
    ck_assert_uint_eq(a->flash_retries, b->flash_retries);
    ck_assert_uint_eq(a->flash_wait_ms, b->flash_wait_ms);
    ck_assert_uint_eq(a->flash_health_s, b->flash_health_s);
    ck_assert_str_eq(a->openocd_command, b->openocd_command);
    ck_assert_str_eq(a->openocd_config, b->openocd_config);
    ck_assert_uint_eq(a->openocd_address, b->openocd_address);
    ck_assert_uint_eq(a->openocd_timeout_ms, b->openocd_timeout_ms);
    ck_assert_uint_eq(a->openocd_erase.addr, b->openocd_erase.addr);
    ck_assert_uint_eq(a->openocd_erase.len, b->openocd_erase.len);
    ck_assert_int_eq(a->log_level, b->log_level);
}

/* Runs fn with stdout going to a file; returns what it printed. */
static int capture_stdout(const char *const *args, char *out, size_t cap)
{
    char path[FILE_NAME_MAX];
    struct config c;
    int saved, fd, r;

    snprintf(path, sizeof(path), "%s/stdout", dir);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    r = load_args(&c, NULL, args);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    read_text(path, out, cap);
    return r;
}

/* ---- Defaults ---- */

START_TEST(test_config_defaults_are_the_documented_values)
{
    struct config c;

    config_defaults(&c);
    ck_assert_str_eq(c.file, "");
    ck_assert_str_eq(c.device, "/dev/ttyHS1");
    ck_assert_uint_eq(c.baud, 115200);
    ck_assert(!c.rtscts);
    ck_assert_uint_eq(c.stale_after_ms, 3000);
    ck_assert_str_eq(c.db, "/var/lib/tether/tether.db");
    ck_assert_uint_eq(c.commit_ms, 100);
    ck_assert_uint_eq(c.commit_rows, 1000);
    ck_assert_uint_eq(c.queue_rows, 65536);
    ck_assert_uint_eq(c.raw_max_age_s, 86400);
    ck_assert_uint_eq(c.raw_max_rows, 20000000);
    ck_assert_uint_eq(c.rollup_1s_age_s, 2592000);
    ck_assert_uint_eq(c.rollup_1m_age_s, 31536000);
    ck_assert_uint_eq(c.max_size_mb, 0);
    ck_assert_uint_eq(c.ring_samples, 4096);
    ck_assert_uint_eq(c.ring_heap, 1024);
    ck_assert_uint_eq(c.heap_low.value, 10);
    ck_assert(c.heap_low.percent);
    ck_assert_uint_eq(c.heap_hysteresis.value, 5);
    ck_assert(c.heap_hysteresis.percent);
    ck_assert_uint_eq(c.hold_off_s, 5);
    ck_assert_uint_eq(c.hold_off_reports, 3);
    ck_assert_uint_eq(c.leak_window_s, 60);
    ck_assert_uint_eq(c.leak_horizon_s, 600);
    ck_assert_uint_eq(c.leak_min_reports, 10);
    ck_assert_str_eq(c.alert_command, "");
    ck_assert_uint_eq(c.alert_timeout_ms, 10000);
    ck_assert_str_eq(c.socket, "/run/tether/tetherd.sock");
    ck_assert_uint_eq(c.request_timeout_ms, 30000);
    ck_assert_int_eq(c.flash_method, CONFIG_FLASH_UART);
    ck_assert_uint_eq(c.flash_window, 4);
    ck_assert_uint_eq(c.flash_timeout_ms, 1000);
    ck_assert_uint_eq(c.flash_retries, 5);
    ck_assert_uint_eq(c.flash_wait_ms, 30000);
    ck_assert_uint_eq(c.flash_health_s, 5);
    ck_assert_str_eq(c.openocd_command, "openocd");
    ck_assert_str_eq(c.openocd_config, "");
    ck_assert_uint_eq(c.openocd_address, 0x08000000u);
    ck_assert_uint_eq(c.openocd_timeout_ms, 120000);
    ck_assert_uint_eq(c.openocd_erase.len, 0);
    ck_assert_int_eq(c.log_level, LOG_PRIO_INFO);
}
END_TEST

START_TEST(test_config_empty_file_gives_the_defaults)
{
    struct config c, d;
    const char *args[] = {"--config", "/dev/null", NULL};

    config_defaults(&d);
    ck_assert_int_eq(load_args(&c, NULL, args), 0);
    ck_assert_str_eq(c.file, "/dev/null");
    assert_same(&c, &d);
    ck_assert_int_eq(load_text(&c, "; nothing but a comment\n\n"), 0);
    assert_same(&c, &d);
}
END_TEST

START_TEST(test_config_missing_default_file_is_skipped_silently)
{
    struct config c, d;
    struct config_cli cli = {true};

    /* Only meaningful where no default file is installed. */
    if (access(CONFIG_DEFAULT_FILE, F_OK) == 0)
        return;
    config_defaults(&d);
    ck_assert_int_eq(load_args(&c, &cli, NULL), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(c.file, "");
    ck_assert(!cli.check_only);
    assert_same(&c, &d);
}
END_TEST

START_TEST(test_config_missing_explicit_file_is_an_error)
{
    struct config c;
    char path[FILE_NAME_MAX], want[WANT_MAX];
    const char *args[] = {"--config", path, NULL};

    snprintf(path, sizeof(path), "%s/nope.conf", dir);
    ck_assert_int_eq(load_args(&c, NULL, args), CONFIG_EINVAL);
    snprintf(want, sizeof(want), "cannot read %s: No such file or directory",
             path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_config_directory_given_as_file_is_an_error)
{
    struct config c;
    const char *args[] = {"--config", dir, NULL};

    ck_assert_int_eq(load_args(&c, NULL, args), CONFIG_EINVAL);
    ck_assert_msg(strstr(err, "Is a directory") != NULL, "%s", err);
}
END_TEST

/* ---- The file ---- */

START_TEST(test_config_reads_every_key_of_a_full_file)
{
    struct config c;

    ck_assert_int_eq(load_text(&c, "# every key, none at its default\n"
                                   "[link]\n"
                                   "device = /dev/ttyS3\n"
                                   "baud = 921600\n"
                                   "flow = rtscts\n"
                                   "stale_after_ms = 1500\n"
                                   "[store]\n"
                                   "db = /tmp/x/t.db\n"
                                   "commit_ms = 250\n"
                                   "commit_rows = 500\n"
                                   "queue_rows = 4096\n"
                                   "raw_max_age_s = 0\n"
                                   "raw_max_rows = 0\n"
                                   "rollup_1s_age_s = 3600\n"
                                   "rollup_1m_age_s = 7200\n"
                                   "max_size_mb = 1048576\n"
                                   "[ring]\n"
                                   "samples = 100\n"
                                   "heap = 50\n"
                                   "[alert]\n"
                                   "heap_low = 4096\n"
                                   "heap_hysteresis = 512\n"
                                   "hold_off_s = 0\n"
                                   "hold_off_reports = 1\n"
                                   "leak_window_s = 30\n"
                                   "leak_horizon_s = 120\n"
                                   "leak_min_reports = 5\n"
                                   "command = /usr/local/bin/page -x ops\n"
                                   "command_timeout_ms = 2000\n"
                                   "[socket]\n"
                                   "path = /tmp/x/s.sock\n"
                                   "request_timeout_ms = 5000\n"
                                   "[flash]\n"
                                   "method = openocd\n"
                                   "window = 8\n"
                                   "timeout_ms = 250\n"
                                   "retries = 0\n"
                                   "wait_ms = 5000\n"
                                   "health_s = 0\n"
                                   "openocd_command = /usr/bin/openocd -d1\n"
                                   "openocd_config = /etc/a.cfg /etc/b.cfg\n"
                                   "openocd_address = 0x0800aBcD\n"
                                   "openocd_timeout_ms = 9000\n"
                                   "openocd_erase = 0x08120000 0x2000\n"
                                   "[log]\n"
                                   "level = warning\n"),
                     0);
    ck_assert_str_eq(c.file, conf);
    ck_assert_str_eq(c.device, "/dev/ttyS3");
    ck_assert_uint_eq(c.baud, 921600);
    ck_assert(c.rtscts);
    ck_assert_uint_eq(c.stale_after_ms, 1500);
    ck_assert_str_eq(c.db, "/tmp/x/t.db");
    ck_assert_uint_eq(c.commit_ms, 250);
    ck_assert_uint_eq(c.commit_rows, 500);
    ck_assert_uint_eq(c.queue_rows, 4096);
    ck_assert_uint_eq(c.raw_max_age_s, 0);
    ck_assert_uint_eq(c.raw_max_rows, 0);
    ck_assert_uint_eq(c.rollup_1s_age_s, 3600);
    ck_assert_uint_eq(c.rollup_1m_age_s, 7200);
    ck_assert_uint_eq(c.max_size_mb, 1048576);
    ck_assert_uint_eq(c.ring_samples, 100);
    ck_assert_uint_eq(c.ring_heap, 50);
    ck_assert_uint_eq(c.heap_low.value, 4096);
    ck_assert(!c.heap_low.percent);
    ck_assert_uint_eq(c.heap_hysteresis.value, 512);
    ck_assert(!c.heap_hysteresis.percent);
    ck_assert_uint_eq(c.hold_off_s, 0);
    ck_assert_uint_eq(c.hold_off_reports, 1);
    ck_assert_uint_eq(c.leak_window_s, 30);
    ck_assert_uint_eq(c.leak_horizon_s, 120);
    ck_assert_uint_eq(c.leak_min_reports, 5);
    ck_assert_str_eq(c.alert_command, "/usr/local/bin/page -x ops");
    ck_assert_uint_eq(c.alert_timeout_ms, 2000);
    ck_assert_str_eq(c.socket, "/tmp/x/s.sock");
    ck_assert_uint_eq(c.request_timeout_ms, 5000);
    ck_assert_int_eq(c.flash_method, CONFIG_FLASH_OPENOCD);
    ck_assert_uint_eq(c.flash_window, 8);
    ck_assert_uint_eq(c.flash_timeout_ms, 250);
    ck_assert_uint_eq(c.flash_retries, 0);
    ck_assert_uint_eq(c.flash_wait_ms, 5000);
    ck_assert_uint_eq(c.flash_health_s, 0);
    ck_assert_str_eq(c.openocd_command, "/usr/bin/openocd -d1");
    ck_assert_str_eq(c.openocd_config, "/etc/a.cfg /etc/b.cfg");
    ck_assert_uint_eq(c.openocd_address, 0x0800abcdu);
    ck_assert_uint_eq(c.openocd_timeout_ms, 9000);
    ck_assert_uint_eq(c.openocd_erase.addr, 0x08120000u);
    ck_assert_uint_eq(c.openocd_erase.len, 0x2000u);
    ck_assert_int_eq(c.log_level, LOG_PRIO_WARNING);
}
END_TEST

START_TEST(test_config_file_allows_comments_indentation_crlf_and_a_bom)
{
    struct config c;

    ck_assert_int_eq(load_text(&c, "\xef\xbb\xbf; a BOM, then a comment\r\n"
                                   "  [link]   ; where the MCU is\r\n"
                                   "\tbaud = 57600 ; inline comment\r\n"
                                   "    device=/dev/ttyACM0\n"
                                   "# hash comment\n"
                                   "flow: none\n"
                                   "\n"
                                   "[alert]\n"
                                   "  heap_low = 20%\n"
                                   "  command = /bin/echo a=b:c #1\n"),
                     0);
    ck_assert_uint_eq(c.baud, 57600);
    ck_assert_str_eq(c.device, "/dev/ttyACM0");
    ck_assert(!c.rtscts);
    ck_assert_uint_eq(c.heap_low.value, 20);
    ck_assert(c.heap_low.percent);
    /* An indented line is a key of its own, never a continuation. */
    ck_assert_str_eq(c.alert_command, "/bin/echo a=b:c #1");
}
END_TEST

START_TEST(test_config_empty_command_means_none)
{
    struct config c;

    ck_assert_int_eq(load_text(&c, "[alert]\ncommand =\n"), 0);
    ck_assert_str_eq(c.alert_command, "");
}
END_TEST

/* [flash] openocd_erase: two numbers, each hexadecimal or decimal, up to
 * the last byte of the 32-bit space; nothing means no erase, also over a
 * range the file set. */
START_TEST(test_config_openocd_erase_takes_a_range_or_nothing)
{
    const char *clear[] = {"--config", conf, "--openocd-erase", "", NULL};
    struct config c;

    ck_assert_int_eq(load_text(&c, "[flash]\nopenocd_erase = 0x08120000 "
                                   "0x2000\n"),
                     0);
    ck_assert_uint_eq(c.openocd_erase.addr, 0x08120000u);
    ck_assert_uint_eq(c.openocd_erase.len, 0x2000u);
    ck_assert_int_eq(load_args(&c, NULL, clear), 0);
    ck_assert_uint_eq(c.openocd_erase.len, 0);
    ck_assert_int_eq(load_text(&c, "[flash]\nopenocd_erase =\n"), 0);
    ck_assert_uint_eq(c.openocd_erase.len, 0);
    ck_assert_int_eq(load_text(&c, "[flash]\nopenocd_erase = 0xffffffff 1\n"),
                     0);
    ck_assert_uint_eq(c.openocd_erase.addr, 0xffffffffu);
    ck_assert_uint_eq(c.openocd_erase.len, 1);
    ck_assert_int_eq(load_text(&c, "[flash]\nopenocd_erase = 0 0xFFFFFFFF\n"),
                     0);
    ck_assert_uint_eq(c.openocd_erase.addr, 0);
    ck_assert_uint_eq(c.openocd_erase.len, 0xffffffffu);
    ck_assert_int_eq(load_text(&c, "[flash]\nopenocd_erase = 4096 8192\n"), 0);
    ck_assert_uint_eq(c.openocd_erase.addr, 4096);
    ck_assert_uint_eq(c.openocd_erase.len, 8192);
}
END_TEST

/* ---- Errors in the file: each with its file:line message ---- */

struct bad_file {
    const char *text;
    const char *want; /* after "<file>:" */
};

static const struct bad_file bad_files[] = {
    {"[alert]\nheap_low = lots\n",
     "2: [alert] heap_low: expected bytes or a percentage like 10%, got "
     "'lots'"},
    {"[alert]\nheap_low = 150%\n",
     "2: [alert] heap_low: expected a percentage from 1% to 99%, got "
     "'150%'"},
    {"[alert]\nheap_hysteresis = 0%\n",
     "2: [alert] heap_hysteresis: expected a percentage from 1% to 99%, got "
     "'0%'"},
    {"[alert]\nheap_low = 0\n",
     "2: [alert] heap_low: expected bytes from 1 to 4294967295 or a "
     "percentage like 10%, got '0'"},
    {"[alert]\nheap_low = %\n",
     "2: [alert] heap_low: expected bytes or a percentage like 10%, got "
     "'%'"},
    {"[serial]\nbaud = 9600\n",
     "1: unknown section [serial] (expected [link], [store], [ring], "
     "[alert], [socket], [flash] or [log])"},
    {"[link]\nspeed = 9600\n",
     "2: [link] speed: unknown key (expected device, baud, flow or "
     "stale_after_ms)"},
    {"baud = 9600\n",
     "1: 'baud' comes before any section; put it under [link], [store], "
     "[ring], [alert], [socket], [flash] or [log]"},
    {"[store]\ncommit_ms = 0\n",
     "2: [store] commit_ms: expected a number from 1 to 10000, got '0'"},
    {"[store]\ncommit_ms = 10001\n",
     "2: [store] commit_ms: expected a number from 1 to 10000, got "
     "'10001'"},
    {"[store]\ncommit_ms = 10ms\n",
     "2: [store] commit_ms: expected a number from 1 to 10000, got '10ms'"},
    {"[store]\nmax_size_mb = 1048577\n",
     "2: [store] max_size_mb: expected a number from 0 to 1048576, got "
     "'1048577'"},
    {"[store]\nraw_max_rows = 99999999999\n",
     "2: [store] raw_max_rows: expected a number from 0 to 4294967295, got "
     "'99999999999'"},
    {"[alert]\nhold_off_s = -1\n",
     "2: [alert] hold_off_s: expected a number from 0 to 86400, got '-1'"},
    {"[alert]\nleak_min_reports = 1\n",
     "2: [alert] leak_min_reports: expected a number from 2 to 512, got "
     "'1'"},
    {"[link]\nbaud =\n",
     "2: [link] baud: expected a standard rate from 1200 to 4000000 such as "
     "9600, 115200 or 921600, got ''"},
    {"[link]\nbaud = 12345\n",
     "2: [link] baud: expected a standard rate from 1200 to 4000000 such as "
     "9600, 115200 or 921600, got '12345'"},
    {"[link]\nflow = xonxoff\n",
     "2: [link] flow: expected none or rtscts, got 'xonxoff'"},
    {"[log]\nlevel = loud\n",
     "2: [log] level: expected error, warning, info or debug, got 'loud'"},
    {"[link]\nbaud = 9600\n\nbaud = 19200\n",
     "4: [link] baud: given twice (first on line 2)"},
    {"[link]\njust some words\n",
     "2: expected 'key = value', '[section]' or a comment, got 'just some "
     "words'"},
    {"[link]\nbaud ; = 9600\n",
     "2: expected 'key = value', '[section]' or a comment, got 'baud ; = "
     "9600'"},
    {"[link\n", "1: expected ']' to close the section name"},
    {"[link] baud = 9600\n", "1: unexpected text after the section name"},
    {"[link]\ndevice = /dev/tty\001S1\n",
     "2: control character 0x01 in the line"},
    {"[link]\ndevice =\n", "2: [link] device: expected a value, got nothing"},
    {"[socket]\npath = /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "2: [socket] path: expected at most 107 characters, got 123"},
    {"[store]\nqueue_rows = 500\n",
     "2: [store] queue_rows: expected at least commit_rows (1000), got "
     "'500'"},
    {"[store]\nqueue_rows = 500\ncommit_rows = 600\n",
     "3: [store] commit_rows: expected at most queue_rows (500), got "
     "'600'"},
    {"[store]\nrollup_1m_age_s = 60\n",
     "2: [store] rollup_1m_age_s: expected at least rollup_1s_age_s "
     "(2592000), got '60'"},
    {"[alert]\nheap_low = 60%\nheap_hysteresis = 50%\n",
     "3: [alert] heap_hysteresis: expected at most 39% with heap_low at 60% "
     "(their sum, where the alert clears, must stay under 100%), got "
     "'50%'"},
    {"[alert]\nheap_hysteresis = 3000000000\nheap_low = 3000000000\n",
     "3: [alert] heap_low: expected at most 1294967295 with "
     "heap_hysteresis at 3000000000 (their sum must fit in 32 bits), got "
     "'3000000000'"},
    /* Only the first error is reported. */
    {"[link]\nbaud = 1\nflow = x\n",
     "2: [link] baud: expected a standard rate from 1200 to 4000000 such as "
     "9600, 115200 or 921600, got '1'"},
    {"[nope]\nkey = 1\n[link]\nbaud = 2\n",
     "1: unknown section [nope] (expected [link], [store], [ring], [alert], "
     "[socket], [flash] or [log])"},
    {"[flash]\nmethod = stlink\n",
     "2: [flash] method: expected uart or openocd, got 'stlink'"},
    {"[flash]\nwindow = 9\n",
     "2: [flash] window: expected a number from 1 to 8, got '9'"},
    {"[flash]\nwindow = 0\n",
     "2: [flash] window: expected a number from 1 to 8, got '0'"},
    {"[flash]\nopenocd_address = 0x123456789\n",
     "2: [flash] openocd_address: expected an address such as 0x08000000 "
     "(at most 32 bits), got '0x123456789'"},
    {"[flash]\nopenocd_address = 0x08zz\n",
     "2: [flash] openocd_address: expected an address such as 0x08000000 "
     "(at most 32 bits), got '0x08zz'"},
    {"[flash]\nopenocd_address = 0x\n",
     "2: [flash] openocd_address: expected an address such as 0x08000000 "
     "(at most 32 bits), got '0x'"},
    {"[flash]\nopenocd_command =\n",
     "2: [flash] openocd_command: expected a value, got nothing"},
    {"[flash]\nhealth_s = 3601\n",
     "2: [flash] health_s: expected a number from 0 to 3600, got '3601'"},
    {"[flash]\nspeed = 1\n",
     "2: [flash] speed: unknown key (expected method, window, timeout_ms, "
     "retries, wait_ms, health_s, openocd_command, openocd_config, "
     "openocd_address, openocd_timeout_ms or openocd_erase)"},
    {"[flash]\nopenocd_erase = 0x08120000\n",
     "2: [flash] openocd_erase: expected an address and a length such as "
     "0x08120000 0x2000, or nothing, got '0x08120000'"},
    {"[flash]\nopenocd_erase = 0x08120000 0x2000 0x10\n",
     "2: [flash] openocd_erase: expected an address and a length such as "
     "0x08120000 0x2000, or nothing, got '0x08120000 0x2000 0x10'"},
    {"[flash]\nopenocd_erase = 0x08120000 8k\n",
     "2: [flash] openocd_erase: expected an address and a length such as "
     "0x08120000 0x2000, or nothing, got '0x08120000 8k'"},
    {"[flash]\nopenocd_erase = 0x108120000 0x2000\n",
     "2: [flash] openocd_erase: expected an address and a length such as "
     "0x08120000 0x2000, or nothing, got '0x108120000 0x2000'"},
    {"[flash]\nopenocd_erase = -1 0x2000\n",
     "2: [flash] openocd_erase: expected an address and a length such as "
     "0x08120000 0x2000, or nothing, got '-1 0x2000'"},
    {"[flash]\nopenocd_erase = 0x08120000 0\n",
     "2: [flash] openocd_erase: expected a length of at least 1 byte, got "
     "'0x08120000 0'"},
    {"[flash]\nopenocd_erase = 0xfffff000 0x1001\n",
     "2: [flash] openocd_erase: expected a range that ends below 4 GiB "
     "(ADDR + LEN), got '0xfffff000 0x1001'"},
    {"[flash]\nopenocd_erase = 2 4294967295\n",
     "2: [flash] openocd_erase: expected a range that ends below 4 GiB "
     "(ADDR + LEN), got '2 4294967295'"},
};

START_TEST(test_config_file_errors_name_the_line_key_and_expectation)
{
    const struct bad_file *b = &bad_files[_i];
    char want[WANT_MAX];
    struct config c, before;

    config_defaults(&c);
    before = c;
    ck_assert_int_eq(load_text(&c, b->text), CONFIG_EINVAL);
    snprintf(want, sizeof(want), "%s:%s", conf, b->want);
    ck_assert_str_eq(err, want);
    /* A failed load leaves the caller's configuration alone. */
    ck_assert_int_eq(memcmp(&c, &before, sizeof(c)), 0);
}
END_TEST

START_TEST(test_config_overlong_line_is_refused_not_split)
{
    char text[1024], want[WANT_MAX];
    struct config c;
    size_t n;

    /* The tail of an overlong line must not be read as a key of its own,
     * whatever it holds. */
    n = (size_t)snprintf(text, sizeof(text), "[link]\ndevice = /dev/");
    memset(text + n, 'a', 300);
    snprintf(text + n + 300, sizeof(text) - n - 300, "baud = 9600\n");
    ck_assert_int_eq(load_text(&c, text), CONFIG_EINVAL);
    snprintf(want, sizeof(want), "%s:2: line is longer than 198 characters",
             conf);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_config_longest_values_fit_a_line)
{
    char text[1024], cmd[181];
    struct config c;

    memset(cmd, 'x', 180);
    cmd[0] = '/';
    cmd[180] = '\0';
    snprintf(text, sizeof(text), "[alert]\ncommand = %s\r\n", cmd);
    ck_assert_int_eq(load_text(&c, text), 0);
    ck_assert_str_eq(c.alert_command, cmd);
}
END_TEST

/* ---- Flags ---- */

START_TEST(test_config_flags_override_the_file_in_either_order)
{
    const char *before[] = {"--baud",   "9600", "--heap-low", "2048",
                            "--config", conf,   NULL};
    const char *after[] = {"--config",   conf,   "--baud", "9600",
                           "--heap-low", "2048", NULL};
    struct config c;

    write_text(conf, "[link]\nbaud = 57600\ndevice = /dev/ttyS9\n"
                     "[alert]\nheap_low = 20%\n");
    ck_assert_int_eq(load_args(&c, NULL, before), 0);
    ck_assert_uint_eq(c.baud, 9600);
    ck_assert_uint_eq(c.heap_low.value, 2048);
    ck_assert(!c.heap_low.percent);
    ck_assert_str_eq(c.device, "/dev/ttyS9"); /* from the file */
    ck_assert_int_eq(load_args(&c, NULL, after), 0);
    ck_assert_uint_eq(c.baud, 9600);
    ck_assert_uint_eq(c.heap_low.value, 2048);
    ck_assert_str_eq(c.device, "/dev/ttyS9");
}
END_TEST

/* The same values through the file and through flags. */
START_TEST(test_config_every_key_is_also_a_flag)
{
    const char *args[] = {"--config",
                          "/dev/null",
                          "--device",
                          "/dev/ttyS3",
                          "--baud",
                          "921600",
                          "--flow",
                          "rtscts",
                          "--stale-after-ms",
                          "1500",
                          "--db",
                          "/tmp/t.db",
                          "--commit-ms",
                          "250",
                          "--commit-rows",
                          "500",
                          "--queue-rows",
                          "4096",
                          "--raw-max-age-s",
                          "10",
                          "--raw-max-rows",
                          "20",
                          "--rollup-1s-age-s",
                          "3600",
                          "--rollup-1m-age-s",
                          "7200",
                          "--max-size-mb",
                          "64",
                          "--ring-samples",
                          "100",
                          "--ring-heap",
                          "50",
                          "--heap-low",
                          "25%",
                          "--heap-hysteresis",
                          "512",
                          "--hold-off-s",
                          "7",
                          "--hold-off-reports",
                          "4",
                          "--leak-window-s",
                          "30",
                          "--leak-horizon-s",
                          "120",
                          "--leak-min-reports",
                          "5",
                          "--alert-command",
                          "/bin/page ops",
                          "--command-timeout-ms",
                          "2000",
                          "--socket",
                          "/tmp/s.sock",
                          "--flash-method",
                          "openocd",
                          "--flash-window",
                          "2",
                          "--flash-timeout-ms",
                          "300",
                          "--flash-retries",
                          "9",
                          "--flash-wait-ms",
                          "2000",
                          "--health-s",
                          "12",
                          "--openocd-command",
                          "/opt/openocd -s /opt/scripts",
                          "--openocd-config",
                          "a.cfg b.cfg",
                          "--openocd-address",
                          "134348800",
                          "--openocd-timeout-ms",
                          "60000",
                          "--openocd-erase",
                          "0x08120000\t8192",
                          "--log-level",
                          "error",
                          NULL};
    struct config by_flags, by_file;

    ck_assert_int_eq(load_args(&by_flags, NULL, args), 0);
    ck_assert_int_eq(load_text(&by_file,
                               "[link]\ndevice = /dev/ttyS3\nbaud = 921600\n"
                               "flow = rtscts\nstale_after_ms = 1500\n"
                               "[store]\ndb = /tmp/t.db\ncommit_ms = 250\n"
                               "commit_rows = 500\nqueue_rows = 4096\n"
                               "raw_max_age_s = 10\nraw_max_rows = 20\n"
                               "rollup_1s_age_s = 3600\n"
                               "rollup_1m_age_s = 7200\n"
                               "max_size_mb = 64\n"
                               "[ring]\nsamples = 100\nheap = 50\n"
                               "[alert]\nheap_low = 25%\n"
                               "heap_hysteresis = 512\nhold_off_s = 7\n"
                               "hold_off_reports = 4\nleak_window_s = 30\n"
                               "leak_horizon_s = 120\nleak_min_reports = 5\n"
                               "command = /bin/page ops\n"
                               "command_timeout_ms = 2000\n"
                               "[socket]\npath = /tmp/s.sock\n"
                               "[flash]\nmethod = openocd\nwindow = 2\n"
                               "timeout_ms = 300\nretries = 9\n"
                               "wait_ms = 2000\nhealth_s = 12\n"
                               "openocd_command = /opt/openocd -s "
                               "/opt/scripts\n"
                               "openocd_config = a.cfg b.cfg\n"
                               "openocd_address = 0x08020000\n"
                               "openocd_timeout_ms = 60000\n"
                               "openocd_erase = 135397376   0x2000\n"
                               "[log]\nlevel = error\n"),
                     0);
    assert_same(&by_flags, &by_file);
    ck_assert_uint_eq(by_flags.openocd_address, 0x08020000u);
    ck_assert_uint_eq(by_flags.openocd_erase.addr, 0x08120000u);
    ck_assert_uint_eq(by_flags.openocd_erase.len, 0x2000u);
}
END_TEST

START_TEST(test_config_verbose_flag_means_debug)
{
    const char *shorts[] = {"--config", "/dev/null", "-v", NULL};
    const char *longs[] = {"--config", conf, "--verbose", NULL};
    const char *last[] = {"--config",    "/dev/null", "-v",
                          "--log-level", "error",     NULL};
    struct config c;

    write_text(conf, "[log]\nlevel = error\n");
    ck_assert_int_eq(load_args(&c, NULL, shorts), 0);
    ck_assert_int_eq(c.log_level, LOG_PRIO_DEBUG);
    ck_assert_int_eq(load_args(&c, NULL, longs), 0);
    ck_assert_int_eq(c.log_level, LOG_PRIO_DEBUG);
    ck_assert_int_eq(load_args(&c, NULL, last), 0);
    ck_assert_int_eq(c.log_level, LOG_PRIO_ERR);
}
END_TEST

START_TEST(test_config_check_config_flag_sets_check_only)
{
    const char *check[] = {"--config", "/dev/null", "--check-config", NULL};
    const char *plain[] = {"--config", "/dev/null", NULL};
    struct config_cli cli = {false};
    struct config c;

    ck_assert_int_eq(load_args(&c, &cli, check), 0);
    ck_assert(cli.check_only);
    ck_assert_int_eq(load_args(&c, &cli, plain), 0);
    ck_assert(!cli.check_only);
}
END_TEST

struct bad_flags {
    const char *args[6];
    const char *want;
};

static const struct bad_flags bad_flags[] = {
    {{"--baud", "fast"},
     "--baud: expected a standard rate from 1200 to 4000000 such as 9600, "
     "115200 or 921600, got 'fast'"},
    {{"--heap-low", "lots"},
     "--heap-low: expected bytes or a percentage like 10%, got 'lots'"},
    {{"--commit-ms", "0"},
     "--commit-ms: expected a number from 1 to 10000, got '0'"},
    {{"--bogus"}, "unknown option '--bogus' (see --help)"},
    {{"--bogus=1"}, "unknown option '--bogus=1' (see --help)"},
    {{"-x"}, "unknown option '-x'"},
    {{"--ring", "5"}, "ambiguous option '--ring' (see --help)"},
    {{"--baud"}, "option '--baud' needs a value"},
    {{"--verbose=yes"}, "option '--verbose' takes no value"},
    {{"--check-config=1"}, "option '--check-config' takes no value"},
    {{"extra"}, "unexpected argument 'extra' (see --help)"},
    {{"--config", ""}, "--config: expected a file name, got nothing"},
    {{"--device", ""}, "--device: expected a value, got nothing"},
    {{"--alert-command", " /bin/x"},
     "--alert-command: expected no leading or trailing blanks, got ' "
     "/bin/x'"},
    {{"--alert-command", "/bin/x ;y"},
     "--alert-command: expected no ';' at the start or after a blank (the "
     "file format reads it as a comment), got '/bin/x ;y'"},
    {{"--device", "/dev/tty\nS1"},
     "--device: expected no control characters, got '/dev/tty?S1'"},
    {{"--queue-rows", "10"},
     "--queue-rows: expected at least commit_rows (1000), got '10'"},
    {{"--flash-method", "swd"},
     "--flash-method: expected uart or openocd, got 'swd'"},
    {{"--openocd-address", "-1"},
     "--openocd-address: expected an address such as 0x08000000 (at most 32 "
     "bits), got '-1'"},
    {{"--openocd-erase", "0x08120000,0x2000"},
     "--openocd-erase: expected an address and a length such as 0x08120000 "
     "0x2000, or nothing, got '0x08120000,0x2000'"},
    {{"--openocd-erase", "0xffffffff 2"},
     "--openocd-erase: expected a range that ends below 4 GiB (ADDR + LEN), "
     "got '0xffffffff 2'"},
    {{"--heap-low", "90%", "--heap-hysteresis", "10%"},
     "--heap-hysteresis: expected at most 9% with heap_low at 90% (their "
     "sum, where the alert clears, must stay under 100%), got '10%'"},
};

START_TEST(test_config_flag_errors_name_the_flag_and_expectation)
{
    const struct bad_flags *b = &bad_flags[_i];
    const char *args[10] = {"--config", "/dev/null"};
    struct config c;
    size_t n = 2;

    for (size_t i = 0; b->args[i] != NULL; i++)
        args[n++] = b->args[i];
    args[n] = NULL;
    ck_assert_int_eq(load_args(&c, NULL, args), CONFIG_EINVAL);
    ck_assert_str_eq(err, b->want);
}
END_TEST

START_TEST(test_config_overlong_flag_value_is_refused)
{
    char dev[200];
    const char *args[] = {"--config", "/dev/null", "--device", dev, NULL};
    struct config c;

    memset(dev, 'd', sizeof(dev) - 1);
    dev[sizeof(dev) - 1] = '\0';
    ck_assert_int_eq(load_args(&c, NULL, args), CONFIG_EINVAL);
    ck_assert_str_eq(err, "--device: expected at most 180 characters, got 199");
}
END_TEST

/* Every flag with its placeholder, as --help shows it. */
static const char *const flags[] = {
    "--config",
    "--check-config",
    "--verbose",
    "--help",
    "--version",
    "--device PATH",
    "--baud N",
    "--flow none|rtscts",
    "--stale-after-ms MS",
    "--db PATH",
    "--commit-ms MS",
    "--commit-rows N",
    "--queue-rows N",
    "--raw-max-age-s S",
    "--raw-max-rows N",
    "--rollup-1s-age-s S",
    "--rollup-1m-age-s S",
    "--max-size-mb MB",
    "--ring-samples N",
    "--ring-heap N",
    "--heap-low BYTES|N%",
    "--heap-hysteresis BYTES|N%",
    "--hold-off-s S",
    "--hold-off-reports N",
    "--leak-window-s S",
    "--leak-horizon-s S",
    "--leak-min-reports N",
    "--alert-command CMD",
    "--command-timeout-ms MS",
    "--socket PATH",
    "--flash-method uart|openocd",
    "--flash-window N",
    "--flash-timeout-ms MS",
    "--flash-retries N",
    "--flash-wait-ms MS",
    "--health-s S",
    "--openocd-command CMD",
    "--openocd-config FILES",
    "--openocd-address ADDR",
    "--openocd-timeout-ms MS",
    "--openocd-erase 'ADDR LEN'",
    "--log-level LEVEL",
};

START_TEST(test_config_version_and_help_print_and_ask_to_exit)
{
    const char *version[] = {"--version", NULL};
    const char *help[] = {"--help", "--bogus", NULL};
    static char out[TEXT_MAX];

    ck_assert_int_eq(capture_stdout(version, out, sizeof(out)), CONFIG_EXIT);
    ck_assert_str_eq(out, "tetherd " TETHER_VERSION "\n");
    ck_assert_str_eq(TETHER_VERSION, "0.1.0");
    ck_assert_int_eq(capture_stdout(help, out, sizeof(out)), CONFIG_EXIT);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        ck_assert_msg(strstr(out, flags[i]) != NULL, "--help lacks %s",
                      flags[i]);
    ck_assert_ptr_nonnull(strstr(out, "[link] device = /dev/ttyHS1\n"));
    ck_assert_ptr_nonnull(strstr(out, "[alert] heap_low = 10%\n"));
    for (const char *p = out; *p != '\0'; p += strcspn(p, "\n") + 1) {
        ck_assert_msg(strcspn(p, "\n") <= 80, "--help line over 80: %.*s",
                      (int)strcspn(p, "\n"), p);
        if (p[strcspn(p, "\n")] == '\0')
            break;
    }
}
END_TEST

/* ---- Amounts ---- */

START_TEST(test_config_amount_bytes_takes_percent_of_total_rounded_down)
{
    struct config_amount pct = {10, true}, bytes = {4096, false};
    struct config_amount most = {99, true};

    ck_assert_uint_eq(config_amount_bytes(&pct, 65536), 6553);
    ck_assert_uint_eq(config_amount_bytes(&pct, 0), 0);
    ck_assert_uint_eq(config_amount_bytes(&pct, 9), 0);
    ck_assert_uint_eq(config_amount_bytes(&most, UINT32_MAX), 4252017622u);
    ck_assert_uint_eq(config_amount_bytes(&bytes, 65536), 4096);
    ck_assert_uint_eq(config_amount_bytes(&bytes, 1000), 4096);
}
END_TEST

START_TEST(test_config_amounts_parse_as_bytes_or_percent)
{
    struct config c;

    ck_assert_int_eq(
        load_text(&c, "[alert]\nheap_low = 1%\nheap_hysteresis = 98%\n"), 0);
    ck_assert_uint_eq(c.heap_low.value, 1);
    ck_assert(c.heap_low.percent);
    ck_assert_uint_eq(c.heap_hysteresis.value, 98);
    ck_assert(c.heap_hysteresis.percent);
    ck_assert_int_eq(load_text(&c, "[alert]\nheap_low = 4294967295\n"
                                   "heap_hysteresis = 5%\n"),
                     0);
    ck_assert_uint_eq(c.heap_low.value, 4294967295u);
    ck_assert(!c.heap_low.percent);
    ck_assert_int_eq(load_text(&c, "[alert]\nheap_low = 10 %\n"),
                     CONFIG_EINVAL);
    ck_assert_int_eq(load_text(&c, "[alert]\nheap_low = 0x100\n"),
                     CONFIG_EINVAL);
}
END_TEST

/* ---- Printing ---- */

static void assert_round_trip(const struct config *c)
{
    char path[FILE_NAME_MAX];
    const char *args[] = {"--config", path, NULL};
    struct config back;
    FILE *f;

    snprintf(path, sizeof(path), "%s/printed.conf", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    config_print(c, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(load_args(&back, NULL, args) == 0, "%s", err);
    assert_same(c, &back);
}

START_TEST(test_config_printed_defaults_read_back_the_same)
{
    struct config c;

    config_defaults(&c);
    assert_round_trip(&c);
}
END_TEST

START_TEST(test_config_printed_configuration_reads_back_the_same)
{
    const char *args[] = {"--config",
                          conf,
                          "--alert-command",
                          "/usr/bin/logger -t tether#1 a=b:c\tx;y",
                          "--heap-hysteresis",
                          "300",
                          "-v",
                          NULL};
    static char text[TEXT_MAX];
    char printed[FILE_NAME_MAX];
    struct config c;

    write_text(conf, "[link]\ndevice = /dev/serial/by-id/usb-x:y=z\n"
                     "baud = 4000000\nflow = rtscts\n"
                     "[store]\ndb = :memory:\nraw_max_age_s = 0\n"
                     "[alert]\nheap_low = 8000\n"
                     "[socket]\npath = rel/t.sock\n"
                     "[flash]\nmethod = openocd\nopenocd_address = 7\n"
                     "openocd_config = x.cfg\n"
                     "openocd_erase = 0xFFFFE000 8192\n");
    ck_assert_int_eq(load_args(&c, NULL, args), 0);
    assert_round_trip(&c);

    snprintf(printed, sizeof(printed), "%s/printed.conf", dir);
    read_text(printed, text, sizeof(text));
    ck_assert_ptr_nonnull(strstr(text, "[link]\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n[log]\nlevel = debug\n"));
    ck_assert_ptr_nonnull(strstr(text, "heap_low = 8000\n"));
    ck_assert_ptr_nonnull(strstr(text, "heap_hysteresis = 300\n"));
    ck_assert_ptr_nonnull(strstr(text, "openocd_erase = 0xffffe000 0x2000\n"));
}
END_TEST

/* The printed file names the file it came from in a comment, which must
 * not make a line too long to read back. */
START_TEST(test_config_printed_configuration_of_a_long_file_name_reads_back)
{
    char sub[FILE_NAME_MAX], path[FILE_NAME_MAX];
    const char *args[] = {"--config", path, NULL};
    char name[161];
    struct config c;

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_int_lt(snprintf(sub, sizeof(sub), "%s/%s", dir, name),
                     (int)sizeof(sub));
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_lt(snprintf(path, sizeof(path), "%s/t.conf", sub),
                     (int)sizeof(path));
    write_text(path, "[link]\nbaud = 9600\n");
    ck_assert_int_eq(load_args(&c, NULL, args), 0);
    assert_round_trip(&c);
}
END_TEST

START_TEST(test_config_printed_file_has_every_section_and_key)
{
    const char *want[] = {
        "\n[link]\ndevice = /dev/ttyHS1\nbaud = 115200\nflow = none\n"
        "stale_after_ms = 3000\n",
        "\n[store]\ndb = /var/lib/tether/tether.db\ncommit_ms = 100\n"
        "commit_rows = 1000\nqueue_rows = 65536\nraw_max_age_s = 86400\n"
        "raw_max_rows = 20000000\nrollup_1s_age_s = 2592000\n"
        "rollup_1m_age_s = 31536000\nmax_size_mb = 0\n",
        "\n[ring]\nsamples = 4096\nheap = 1024\n",
        "\n[alert]\nheap_low = 10%\nheap_hysteresis = 5%\nhold_off_s = 5\n"
        "hold_off_reports = 3\nleak_window_s = 60\nleak_horizon_s = 600\n"
        "leak_min_reports = 10\ncommand =\ncommand_timeout_ms = 10000\n",
        "\n[socket]\npath = /run/tether/tetherd.sock\n",
        "\n[flash]\nmethod = uart\nwindow = 4\ntimeout_ms = 1000\n"
        "retries = 5\nwait_ms = 30000\nhealth_s = 5\n"
        "openocd_command = openocd\nopenocd_config =\n"
        "openocd_address = 0x08000000\nopenocd_timeout_ms = 120000\n"
        "openocd_erase =\n",
        "\n[log]\nlevel = info\n",
    };
    static char text[TEXT_MAX];
    char path[FILE_NAME_MAX];
    struct config c;
    FILE *f;

    snprintf(path, sizeof(path), "%s/printed.conf", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    config_defaults(&c);
    config_print(&c, f);
    ck_assert_int_eq(fclose(f), 0);
    read_text(path, text, sizeof(text));
    ck_assert_msg(text[0] == '#', "%s", text);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "missing %s in %s",
                      want[i], text);
}
END_TEST

/* ---- Reload ---- */

static int reload_args(struct config *c, const char *const *args)
{
    char *argv[ARGS_MAX];
    int argc = 0;

    argv[argc++] = (char *)"tetherd";
    for (size_t i = 0; args[i] != NULL; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    return config_reload(c, argc, argv, err, sizeof(err));
}

START_TEST(test_config_reload_rereads_the_file_and_flags_keep_winning)
{
    const char *args[] = {"--baud", "9600", "--config", conf, NULL};
    struct config c;

    write_text(conf, "[link]\nbaud = 57600\n[alert]\nheap_low = 20%\n"
                     "hold_off_s = 8\n");
    ck_assert_int_eq(load_args(&c, NULL, args), 0);
    ck_assert_uint_eq(c.baud, 9600);
    ck_assert_uint_eq(c.heap_low.value, 20);

    write_text(conf, "[link]\nbaud = 19200\n[alert]\nheap_low = 30%\n"
                     "[log]\nlevel = debug\n");
    ck_assert_int_eq(reload_args(&c, args), 0);
    ck_assert_uint_eq(c.baud, 9600);         /* the flag still wins */
    ck_assert_uint_eq(c.heap_low.value, 30); /* the file changed */
    ck_assert_uint_eq(c.hold_off_s, 5);      /* removed: the default */
    ck_assert_int_eq(c.log_level, LOG_PRIO_DEBUG);
    ck_assert_str_eq(c.file, conf);
}
END_TEST

START_TEST(test_config_failed_reload_keeps_the_old_configuration)
{
    const char *args[] = {"--config", conf, NULL};
    char want[WANT_MAX];
    struct config c, before;

    write_text(conf, "[alert]\nheap_low = 20%\n");
    ck_assert_int_eq(load_args(&c, NULL, args), 0);
    before = c;
    write_text(conf, "[alert]\nheap_low = lots\n");
    ck_assert_int_eq(reload_args(&c, args), CONFIG_EINVAL);
    snprintf(want, sizeof(want),
             "%s:2: [alert] heap_low: expected bytes or a percentage like "
             "10%%, got 'lots'",
             conf);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(memcmp(&c, &before, sizeof(c)), 0);

    ck_assert_int_eq(unlink(conf), 0);
    ck_assert_int_eq(reload_args(&c, args), CONFIG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
    ck_assert_int_eq(memcmp(&c, &before, sizeof(c)), 0);
}
END_TEST

START_TEST(test_config_reload_reads_the_file_named_in_the_configuration)
{
    const char *none[] = {NULL};
    struct config c;

    config_defaults(&c);
    snprintf(c.file, sizeof(c.file), "%s", conf);
    write_text(conf, "[ring]\nsamples = 77\n");
    ck_assert_int_eq(reload_args(&c, none), 0);
    ck_assert_uint_eq(c.ring_samples, 77);
    ck_assert_int_eq(config_reload(&c, 0, NULL, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.ring_samples, 77);
}
END_TEST

/* ---- The example configuration and the documentation ---- */

/* Reads a file of the source tree; the tests run from its top, as make
 * runs them, or from $TETHER_SRCDIR. */
static void read_source(const char *name, char *path, size_t pathcap, char *buf,
                        size_t cap)
{
    const char *top = getenv("TETHER_SRCDIR");

    snprintf(path, pathcap, "%s/%s", top ? top : ".", name);
    ck_assert_msg(access(path, R_OK) == 0,
                  "%s not found: run from the source tree or set "
                  "TETHER_SRCDIR",
                  path);
    read_text(path, buf, cap);
}

/* Keeps the section and key lines of an INI text, one a line. */
static void settings_only(const char *text, char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    while (*text != '\0') {
        size_t len = strcspn(text, "\n");

        if (len > 0 && text[0] != '#' && text[0] != ';') {
            ck_assert_uint_lt(n + len + 1, cap);
            memcpy(out + n, text, len);
            n += len;
            out[n++] = '\n';
            out[n] = '\0';
        }
        text += len + (text[len] == '\n');
    }
}

START_TEST(test_config_example_file_reads_as_the_defaults)
{
    char path[FILE_NAME_MAX];
    const char *args[] = {"--config", path, NULL};
    static char text[TEXT_MAX];
    struct config c, d;

    read_source("systemd/tetherd.conf", path, sizeof(path), text, sizeof(text));
    config_defaults(&d);
    ck_assert_msg(load_args(&c, NULL, args) == 0, "%s", err);
    assert_same(&c, &d);
}
END_TEST

/* With every ";key = value" line uncommented, the example holds every
 * key, in the printed order, at its default. */
START_TEST(test_config_example_file_shows_every_key_at_its_default)
{
    char path[FILE_NAME_MAX];
    static char text[TEXT_MAX], open[TEXT_MAX], printed[TEXT_MAX];
    static char want[TEXT_MAX], got[TEXT_MAX];
    struct config c, d;
    size_t n = 0;
    FILE *f;

    read_source("systemd/tetherd.conf", path, sizeof(path), text, sizeof(text));
    for (const char *p = text; *p != '\0'; p++) {
        bool line_start = p == text || p[-1] == '\n';

        if (line_start && p[0] == ';' && p[1] >= 'a' && p[1] <= 'z')
            continue;
        open[n++] = *p;
    }
    open[n] = '\0';
    ck_assert_int_eq(load_text(&c, open), 0);
    config_defaults(&d);
    assert_same(&c, &d);

    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    config_print(&d, f);
    ck_assert_int_eq(fclose(f), 0);
    read_text(conf, printed, sizeof(printed));
    settings_only(printed, want, sizeof(want));
    settings_only(open, got, sizeof(got));
    ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(test_config_documentation_names_every_key_and_flag)
{
    static const char *const keys[] = {
        "device",
        "baud",
        "flow",
        "stale_after_ms",
        "db",
        "commit_ms",
        "commit_rows",
        "queue_rows",
        "raw_max_age_s",
        "raw_max_rows",
        "rollup_1s_age_s",
        "rollup_1m_age_s",
        "max_size_mb",
        "samples",
        "heap",
        "heap_low",
        "heap_hysteresis",
        "hold_off_s",
        "hold_off_reports",
        "leak_window_s",
        "leak_horizon_s",
        "leak_min_reports",
        "command",
        "command_timeout_ms",
        "path",
        "method",
        "window",
        "timeout_ms",
        "retries",
        "wait_ms",
        "health_s",
        "openocd_command",
        "openocd_config",
        "openocd_address",
        "openocd_timeout_ms",
        "openocd_erase",
        "level",
    };
    char path[FILE_NAME_MAX], cell[128];
    static char text[4 * TEXT_MAX];

    read_source("docs/CONFIG.md", path, sizeof(path), text, sizeof(text));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        snprintf(cell, sizeof(cell), "| `%s` |", keys[i]);
        ck_assert_msg(strstr(text, cell) != NULL, "CONFIG.md lacks %s", cell);
    }
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        size_t len = strcspn(flags[i], " ");

        snprintf(cell, sizeof(cell), "`%.*s", (int)len, flags[i]);
        ck_assert_msg(strstr(text, cell) != NULL, "CONFIG.md lacks %s", cell);
    }
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("defaults");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_config_defaults_are_the_documented_values);
    tcase_add_test(tc, test_config_empty_file_gives_the_defaults);
    tcase_add_test(tc, test_config_missing_default_file_is_skipped_silently);
    tcase_add_test(tc, test_config_missing_explicit_file_is_an_error);
    tcase_add_test(tc, test_config_directory_given_as_file_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_config_reads_every_key_of_a_full_file);
    tcase_add_test(tc,
                   test_config_file_allows_comments_indentation_crlf_and_a_bom);
    tcase_add_test(tc, test_config_empty_command_means_none);
    tcase_add_test(tc, test_config_openocd_erase_takes_a_range_or_nothing);
    tcase_add_test(tc, test_config_longest_values_fit_a_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("file errors");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(
        tc, test_config_file_errors_name_the_line_key_and_expectation, 0,
        (int)(sizeof(bad_files) / sizeof(bad_files[0])));
    tcase_add_test(tc, test_config_overlong_line_is_refused_not_split);
    suite_add_tcase(s, tc);

    tc = tcase_create("flags");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_config_flags_override_the_file_in_either_order);
    tcase_add_test(tc, test_config_every_key_is_also_a_flag);
    tcase_add_test(tc, test_config_verbose_flag_means_debug);
    tcase_add_test(tc, test_config_check_config_flag_sets_check_only);
    tcase_add_loop_test(tc,
                        test_config_flag_errors_name_the_flag_and_expectation,
                        0, (int)(sizeof(bad_flags) / sizeof(bad_flags[0])));
    tcase_add_test(tc, test_config_overlong_flag_value_is_refused);
    tcase_add_test(tc, test_config_version_and_help_print_and_ask_to_exit);
    suite_add_tcase(s, tc);

    tc = tcase_create("amounts");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(
        tc, test_config_amount_bytes_takes_percent_of_total_rounded_down);
    tcase_add_test(tc, test_config_amounts_parse_as_bytes_or_percent);
    suite_add_tcase(s, tc);

    tc = tcase_create("print");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_config_printed_defaults_read_back_the_same);
    tcase_add_test(tc, test_config_printed_configuration_reads_back_the_same);
    tcase_add_test(tc, test_config_printed_file_has_every_section_and_key);
    tcase_add_test(
        tc, test_config_printed_configuration_of_a_long_file_name_reads_back);
    suite_add_tcase(s, tc);

    tc = tcase_create("reload");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc,
                   test_config_reload_rereads_the_file_and_flags_keep_winning);
    tcase_add_test(tc, test_config_failed_reload_keeps_the_old_configuration);
    tcase_add_test(
        tc, test_config_reload_reads_the_file_named_in_the_configuration);
    suite_add_tcase(s, tc);

    tc = tcase_create("example and documentation");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_config_example_file_reads_as_the_defaults);
    tcase_add_test(tc, test_config_example_file_shows_every_key_at_its_default);
    tcase_add_test(tc, test_config_documentation_names_every_key_and_flag);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dtest_run(config_suite());
}
