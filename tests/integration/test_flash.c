/* Firmware update end to end (docs/UPDATE.md): the real tetherd flashing
 * tether-sim --flash over a pseudo-terminal, asked through its query
 * socket as tetherctl asks, and tetherctl itself.  The images are the
 * simulator built as other versions: $TETHER_SIM_V2 (0.2.0) and
 * $TETHER_SIM_MUTE (0.3.0, which never sends telemetry and so fails the
 * health gate).
 *
 * A lost link is made by a proxy of the test's own between the
 * simulator's pty and a pty of its own that tetherd opens: killing the
 * proxy is the cable pulled, starting it again the cable put back.
 *
 * The openocd method runs a STAND-IN for OpenOCD, not OpenOCD
 * (tests/integration/openocd-standin.sh, $TETHER_OPENOCD_STANDIN): it
 * checks the command line tetherd builds, keeps the file it was handed,
 * checks a whole image's header and hash as a RAM-load bootloader does,
 * emulates the erase of the boot record's page on the simulator's flash,
 * and restarts the simulator as the image's body, which is what OpenOCD
 * and a reset do to a board.
 *
 * Every process started here dies with the test that started it
 * (simproc.h), but the simulator the stand-in starts, which the test
 * stops by the pid the stand-in wrote (and `timeout` bounds); every wait
 * is bounded.
 *
 * Run with --throughput to measure instead of test: flashes at 115200
 * and 921600 baud (tether-sim --baud paces both directions) and prints
 * the upload rate against the line rate. */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"
#include "simproc.h"

#define WAIT_MS    15000 /* for anything that should simply happen */
#define FLASH_MS   60000 /* for a whole flash */
#define DIR_MAX    64    /* short enough for a socket path inside it */
#define FILE_MAX   (DIR_MAX + 32)
#define TEXT_MAX   16384
#define PEER_UID   65534 /* Debian's nobody and nogroup */
#define PEER_GID   65534
#define PEER_GROUP "nogroup"

struct run {
    char dir[DIR_MAX];
    char mcu[FILE_MAX];   /* the simulator's pty symlink */
    char tty[FILE_MAX];   /* what tetherd opens: mcu, or the proxy's */
    char slots[FILE_MAX]; /* --flash DIR */
    char db[FILE_MAX];
    char sock[FILE_MAX];
    char log[FILE_MAX];
    char conf[FILE_MAX];
    pid_t sim;
    pid_t proxy;
    pid_t daemon;
    pid_t standin_sim; /* started by the OpenOCD stand-in */
};

static struct run run;

/* ---- Processes ---- */

/* Starts the simulator with --flash and the extra arguments. */
static void start_sim(const char *const *extra)
{
    const char *args[16] = {"--link", run.mcu, "--flash", run.slots};
    size_t n = 4;

    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    unlink(run.mcu);
    run.sim = itest_start_sim(run.mcu, args, WAIT_MS);
}

/* The proxy (itest_proxy_start) copies bytes both ways between the
 * simulator's pty and a pty of its own linked at run.tty; stopping it is
 * the cable pulled, the link removed first as udev removes a device's
 * node. */
static void start_proxy(void)
{
    run.proxy = itest_proxy_start(run.mcu, run.tty, NULL, WAIT_MS);
}

static void stop_proxy(void)
{
    itest_proxy_stop(run.tty, &run.proxy);
}

/* Writes the configuration and starts tetherd with it; extra is more of
 * the file ("[flash]" keys). */
static void start_daemon(const char *flash_keys)
{
    const char *args[] = {"--config",       run.conf,   "--device", run.tty,
                          "--db",           run.db,     "--socket", run.sock,
                          "--socket-group", PEER_GROUP, "-v",       NULL};
    char text[2048], env_tmp[FILE_MAX + 8];
    const char *env[] = {env_tmp, NULL};
    int log;

    snprintf(text, sizeof(text),
             "[flash]\nhealth_s = 2\nwait_ms = 10000\ntimeout_ms = 500\n%s",
             flash_keys != NULL ? flash_keys : "");
    itest_write_file(run.conf, text, 0644);
    /* The body file for OpenOCD goes to the test's directory. */
    snprintf(env_tmp, sizeof(env_tmp), "TMPDIR=%s", run.dir);
    log = itest_open_log(run.log);
    run.daemon = simproc_spawn(itest_env_or("TETHERD", "build/tetherd"), args,
                               env, log, log);
    close(log);
}

static void setup_dirs(void)
{
    memset(&run, 0, sizeof(run));
    itest_make_dir(run.dir, sizeof(run.dir), "tf-");
    snprintf(run.mcu, sizeof(run.mcu), "%s/link", run.dir);
    snprintf(run.tty, sizeof(run.tty), "%s/link", run.dir);
    snprintf(run.slots, sizeof(run.slots), "%s/slots", run.dir);
    snprintf(run.db, sizeof(run.db), "%s/tether.db", run.dir);
    snprintf(run.sock, sizeof(run.sock), "%s/q.sock", run.dir);
    snprintf(run.log, sizeof(run.log), "%s/tetherd.log", run.dir);
    snprintf(run.conf, sizeof(run.conf), "%s/tetherd.conf", run.dir);
    ck_assert_int_eq(mkdir(run.slots, 0700), 0);
}

/* tetherd straight on the simulator's pty. */
static void setup(void)
{
    setup_dirs();
    start_sim(NULL);
    start_daemon(NULL);
}

/* The simulator paced at 460800 baud (both ways), behind the proxy, so
 * that an upload lasts seconds and its link can be cut. */
static void setup_proxied(void)
{
    const char *paced[] = {"--baud", "460800", NULL};

    setup_dirs();
    snprintf(run.mcu, sizeof(run.mcu), "%s/mcu", run.dir);
    start_sim(paced);
    start_proxy();
    start_daemon(NULL);
}

/* Only the directories: the test starts what it needs. */
static void setup_bare(void)
{
    setup_dirs();
}

static void stop_pid_file_process(void)
{
    char path[FILE_MAX];
    FILE *f;
    int pid = 0;

    snprintf(path, sizeof(path), "%s/sim.pid", run.dir);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fscanf(f, "%d", &pid) == 1 && pid > 0 && pid != run.sim) {
        int64_t end = simproc_now_ms() + 3000;

        /* Not our child: `timeout` passes the TERM on to the simulator. */
        kill(pid, SIGTERM);
        while (kill(pid, 0) == 0 && simproc_now_ms() < end)
            usleep(20000);
        kill(pid, SIGKILL);
    }
    fclose(f);
}

static void teardown(void)
{
    itest_kill(&run.daemon);
    if (run.proxy > 0)
        stop_proxy();
    itest_kill(&run.sim);
    stop_pid_file_process();
    itest_remove_tree(run.dir);
}

/* ---- Images ---- */

/* Runs tetherctl with args against the daemon; returns its exit status
 * and what it printed (stdout and stderr) in out. */
static int tetherctl(const char *const *args, char *out, size_t cap,
                     int timeout_ms)
{
    char file[FILE_MAX];

    snprintf(file, sizeof(file), "%s/ctl.out", run.dir);
    return itest_tetherctl(run.sock, file, args, out, cap, timeout_ms);
}

/* Wraps a simulator executable into run.dir/<name> as version; with
 * load_addr, as a RAM-loaded image (IMAGE_FLAG_RAM, entry 0). */
static void make_image_at(const char *exe, const char *version,
                          const char *load_addr, const char *name, char *path,
                          size_t cap)
{
    const char *args[] = {
        "image", "--board", "tether-sim", "--version", version, exe, "-o",
        path,    NULL,      NULL,         NULL,        NULL,    NULL};
    char out[TEXT_MAX];

    if (load_addr != NULL) {
        args[8] = "--load-addr";
        args[9] = load_addr;
        args[10] = "--entry";
        args[11] = "0";
    }
    snprintf(path, cap, "%s/%s", run.dir, name);
    ck_assert_msg(tetherctl(args, out, sizeof(out), WAIT_MS) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "wrote "));
}

static void make_image(const char *exe, const char *version, const char *name,
                       char *path, size_t cap)
{
    make_image_at(exe, version, NULL, name, path, cap);
}

/* Fails unless file a from byte skip on is file b, byte for byte. */
static void assert_same_bytes(const char *a, long skip, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    long long at = 0;
    int ca, cb;

    ck_assert_msg(fa != NULL && fb != NULL, "cannot open %s or %s", a, b);
    ck_assert_int_eq(fseek(fa, skip, SEEK_SET), 0);
    do {
        ca = getc(fa);
        cb = getc(fb);
        ck_assert_msg(ca == cb, "%s + %ld and %s differ at byte %lld", a, skip,
                      b, at);
        at++;
    } while (ca != EOF);
    fclose(fa);
    fclose(fb);
}

static void image_v2(char *path, size_t cap)
{
    make_image(itest_env_or("TETHER_SIM_V2", "build/tests/sim-v2"), "0.2.0",
               "v2.img", path, cap);
}

/* ---- The socket ---- */

static void wait_running(struct itest_client *c, const char *version)
{
    itest_wait_running(c, version, 1000, WAIT_MS);
}

static const cJSON *wait_outcome(struct itest_client *c, cJSON **root)
{
    return itest_wait_flash_outcome(c, root, FLASH_MS);
}

static void flash_params(char *buf, size_t cap, const char *image,
                         const char *more)
{
    snprintf(buf, cap, "{\"image\":\"%s\"%s%s}", image, more ? "," : "",
             more ? more : "");
}

/* Opens c, starts a flash of v2 and returns once a progress notification
 * shows the upload under way past fraction of its bytes. */
static void start_v2_flash_until(struct itest_client *c, double fraction)
{
    char img[FILE_MAX], params[FILE_MAX + 64];
    int64_t end = simproc_now_ms() + FLASH_MS;
    bool there = false;
    cJSON *m;

    image_v2(img, sizeof(img));
    itest_client_open(c, run.sock, WAIT_MS);
    wait_running(c, "0.1.0");
    flash_params(params, sizeof(params), img, NULL);
    m = itest_call(c, "flash", params);
    itest_result(m);
    cJSON_Delete(m);
    while (!there && simproc_now_ms() < end) {
        const cJSON *p;

        m = itest_read_msg(c, (int)(end - simproc_now_ms()));
        ck_assert_ptr_nonnull(m);
        p = cJSON_GetObjectItem(m, "params");
        if (cJSON_IsObject(p) && cJSON_GetObjectItem(p, "bytes") != NULL &&
            itest_member(p, "bytes", NULL)->valuedouble >
                itest_member(p, "total", NULL)->valuedouble * fraction) {
            ck_assert_str_eq(itest_member(p, "state", NULL)->valuestring,
                             "uploading");
            there = true;
        }
        cJSON_Delete(m);
    }
    ck_assert_msg(there, "the upload never got past %.0f%%", fraction * 100);
}

/* ---- The database ---- */

/* The first column of sql's first row in the daemon's database. */
static long long count_rows(const char *sql)
{
    return itest_db_int(run.db, sql);
}

/* Heap rows stored after the flash's outcome: telemetry resumed. */
static void expect_storing_resumed(struct itest_client *c)
{
    int64_t end = simproc_now_ms() + WAIT_MS;
    long long n = 0;

    while (n < 2 && simproc_now_ms() < end) {
        cJSON *m = itest_call(c, "status", NULL);

        cJSON_Delete(m);
        n = count_rows("SELECT count(*) FROM heap WHERE t_us > "
                       "(SELECT max(t_us) FROM events WHERE kind = 'flash')");
        if (n < 2)
            usleep(200000);
    }
    ck_assert_msg(n >= 2, "no heap rows stored after the flash (%lld)", n);
}

/* ---- Tests ---- */

START_TEST(test_flash_v1_to_v2_succeeds_and_hello_reports_v2)
{
    char img[FILE_MAX], out[TEXT_MAX];
    const char *args[] = {"flash", img, NULL};
    struct itest_client c;
    cJSON *m;

    image_v2(img, sizeof(img));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");
    ck_assert_int_eq(tetherctl(args, out, sizeof(out), FLASH_MS), 0);
    ck_assert_msg(strstr(out, "flash 1: confirmed: 0.2.0 runs (was 0.1.0)"),
                  "%s", out);
    ck_assert_msg(strstr(out, "flash 1: uploading 100%"), "%s", out);
    ck_assert_msg(strstr(out, "health gate"), "%s", out);
    wait_running(&c, "0.2.0");
    m = itest_call(&c, "status", NULL);
    ck_assert_str_eq(
        itest_member(itest_result(m), "mcu", "firmware_version")->valuestring,
        "0.2.0");
    cJSON_Delete(m);
    /* The events table has the start and the outcome; the planned reset
     * is an expected event, not an alert. */
    expect_storing_resumed(&c);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM events WHERE kind = "
                                "'flash' AND detail LIKE 'start 1:%'"),
                     1);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM events WHERE kind = "
                                "'flash' AND detail LIKE 'confirmed 1:%'"),
                     1);
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM events WHERE kind = "
                   "'flash' AND detail LIKE 'expected mcu_reset%'"),
        1);
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM alerts WHERE name = 'mcu_reset'"), 0);
    /* Nothing was stored while the flash ran.  Rows carry the MCU's time
     * mapped to the wall clock by the smallest delay seen, so a report read
     * just after storing resumed can carry a time a little before the
     * 'confirmed' event; the window is trimmed by half a second at each end,
     * far more than any delay beyond the smallest and well inside the 2 s
     * health gate. */
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM heap WHERE t_us > (SELECT t_us FROM "
                   "events WHERE detail LIKE 'start 1:%') + 500000 AND t_us < "
                   "(SELECT t_us FROM events WHERE detail LIKE "
                   "'confirmed 1:%') - 500000"),
        0);
    itest_client_close(&c);
}
END_TEST

START_TEST(test_flash_left_on_test_runs_v2_until_the_next_reset)
{
    char img[FILE_MAX], out[TEXT_MAX];
    const char *args[] = {"flash", "--no-confirm", img, NULL};
    const char *reboot[] = {"send", "reboot", NULL};
    struct itest_client c;

    image_v2(img, sizeof(img));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");
    ck_assert_int_eq(tetherctl(args, out, sizeof(out), FLASH_MS), 0);
    ck_assert_msg(strstr(out, "flash 1: testing: 0.2.0 runs on test"), "%s",
                  out);
    wait_running(&c, "0.2.0");
    /* Not confirmed: the bootloader goes back at the next reset. */
    tetherctl(reboot, out, sizeof(out), WAIT_MS);
    wait_running(&c, "0.1.0");
    itest_client_close(&c);
}
END_TEST

START_TEST(test_flash_refuses_a_corrupted_image_before_sending_anything)
{
    char img[FILE_MAX], params[FILE_MAX + 64], out[TEXT_MAX];
    const char *args[] = {"flash", img, NULL};
    struct itest_client c;
    uint8_t byte;
    int fd;
    cJSON *m;

    image_v2(img, sizeof(img));
    fd = open(img, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &byte, 1, 5000), 1);
    byte ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &byte, 1, 5000), 1);
    close(fd);
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");
    flash_params(params, sizeof(params), img, NULL);
    m = itest_call(&c, "flash", params);
    ck_assert_int_eq(itest_error_code(m), -32007);
    ck_assert_msg(strncmp(itest_error_message(m), "bad_hash:", 9) == 0, "%s",
                  itest_error_message(m));
    cJSON_Delete(m);
    ck_assert_int_eq(tetherctl(args, out, sizeof(out), WAIT_MS), 1);
    ck_assert_msg(strstr(out, "bad_hash") && strstr(out, "(code -32007)"), "%s",
                  out);
    /* Nothing reached the MCU: it never paused its telemetry for an
     * upload, and there is no flash in the events. */
    wait_running(&c, "0.1.0");
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM events WHERE kind = 'flash'"), 0);
    ck_assert_ptr_null(strstr(out, "flash 1"));
    itest_client_close(&c);
}
END_TEST

START_TEST(test_flash_refuses_wrong_board_truncated_and_older_images)
{
    char v2[FILE_MAX], img[FILE_MAX], params[FILE_MAX + 64];
    const char *an505[] = {
        "image",      "--board",
        "mps2-an505", "--version",
        "0.2.0",      itest_env_or("TETHER_SIM_V2", "build/tests/sim-v2"),
        "-o",         img,
        NULL};
    char out[TEXT_MAX];
    struct itest_client c;
    cJSON *m;

    image_v2(v2, sizeof(v2));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");

    snprintf(img, sizeof(img), "%s/an505.img", run.dir);
    ck_assert_int_eq(tetherctl(an505, out, sizeof(out), WAIT_MS), 0);
    flash_params(params, sizeof(params), img, NULL);
    m = itest_call(&c, "flash", params);
    ck_assert_int_eq(itest_error_code(m), -32007);
    ck_assert_msg(strstr(itest_error_message(m), "wrong_board"), "%s",
                  itest_error_message(m));
    cJSON_Delete(m);

    ck_assert_int_eq(truncate(v2, 100000), 0);
    flash_params(params, sizeof(params), v2, NULL);
    m = itest_call(&c, "flash", params);
    ck_assert_int_eq(itest_error_code(m), -32007);
    ck_assert_msg(strstr(itest_error_message(m), "truncated"), "%s",
                  itest_error_message(m));
    cJSON_Delete(m);

    make_image(itest_env_or("TETHER_SIM", "build/tether-sim"), "0.1.0",
               "same.img", img, sizeof(img));
    flash_params(params, sizeof(params), img, NULL);
    m = itest_call(&c, "flash", params);
    ck_assert_int_eq(itest_error_code(m), -32007);
    ck_assert_msg(strstr(itest_error_message(m), "not_newer"), "%s",
                  itest_error_message(m));
    cJSON_Delete(m);

    m = itest_call(&c, "flash", "{\"image\":\"relative.img\"}");
    ck_assert_int_eq(itest_error_code(m), -32602);
    cJSON_Delete(m);
    m = itest_call(&c, "flash", NULL);
    ck_assert_int_eq(itest_error_code(m), -32602);
    cJSON_Delete(m);
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM events WHERE kind = 'flash'"), 0);
    itest_client_close(&c);
}
END_TEST

START_TEST(test_flash_corruption_on_the_link_is_caught_and_v1_keeps_running)
{
    const char *flip[] = {"--flip-update-byte", "12345", NULL};
    char img[FILE_MAX], params[FILE_MAX + 64];
    struct itest_client c;
    const cJSON *o;
    cJSON *m, *root;

    start_sim(flip);
    start_daemon(NULL);
    image_v2(img, sizeof(img));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");
    flash_params(params, sizeof(params), img, NULL);
    m = itest_call(&c, "flash", params);
    itest_result(m);
    cJSON_Delete(m);
    o = wait_outcome(&c, &root);
    ck_assert_str_eq(itest_member(o, "outcome", NULL)->valuestring, "failed");
    ck_assert_msg(strstr(itest_member(o, "why", NULL)->valuestring, "SHA-256"),
                  "%s", itest_member(o, "why", NULL)->valuestring);
    cJSON_Delete(root);
    wait_running(&c, "0.1.0");
    expect_storing_resumed(&c);
    itest_client_close(&c);
}
END_TEST

START_TEST(test_flash_of_an_image_failing_its_health_gate_is_reverted)
{
    char img[FILE_MAX], out[TEXT_MAX];
    const char *args[] = {"flash", img, NULL};
    struct itest_client c;

    make_image(itest_env_or("TETHER_SIM_MUTE", "build/tests/sim-mute"), "0.3.0",
               "mute.img", img, sizeof(img));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");
    ck_assert_int_eq(tetherctl(args, out, sizeof(out), FLASH_MS), 1);
    ck_assert_msg(strstr(out, "flash 1: reverted: health gate: no heap "
                              "report"),
                  "%s", out);
    ck_assert_msg(strstr(out, "; 0.1.0 runs"), "%s", out);
    wait_running(&c, "0.1.0");
    ck_assert_int_eq(count_rows("SELECT count(*) FROM events WHERE kind = "
                                "'flash' AND detail LIKE 'reverted 1: health "
                                "gate:%'"),
                     1);
    /* Two planned resets (into 0.3.0, back to 0.1.0), no alert. */
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM events WHERE kind = "
                   "'flash' AND detail LIKE 'expected mcu_reset%'"),
        2);
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM alerts WHERE name = 'mcu_reset'"), 0);
    expect_storing_resumed(&c);
    itest_client_close(&c);
}
END_TEST

START_TEST(test_flash_cut_mid_way_resumes_and_completes)
{
    struct itest_client c;
    const cJSON *o;
    cJSON *root;

    start_v2_flash_until(&c, 0.2);
    /* Pull the cable a fifth of the way in. */
    stop_proxy();
    usleep(700000);
    start_proxy();
    o = wait_outcome(&c, &root);
    ck_assert_msg(
        strcmp(itest_member(o, "outcome", NULL)->valuestring, "confirmed") == 0,
        "%s: %s", itest_member(o, "outcome", NULL)->valuestring,
        itest_member(o, "why", NULL)->valuestring);
    ck_assert_int_ge(itest_member(o, "resumes", NULL)->valueint, 1);
    ck_assert_int_eq(itest_member(o, "bytes", NULL)->valueint,
                     itest_member(o, "total", NULL)->valueint);
    cJSON_Delete(root);
    wait_running(&c, "0.2.0");
    itest_client_close(&c);
}
END_TEST

START_TEST(test_flash_while_a_flash_runs_is_refused)
{
    char img[FILE_MAX], params[FILE_MAX + 64];
    struct itest_client a, b;
    const cJSON *o;
    cJSON *m, *root;

    image_v2(img, sizeof(img));
    itest_client_open(&a, run.sock, WAIT_MS);
    itest_client_open(&b, run.sock, WAIT_MS);
    wait_running(&a, "0.1.0");
    flash_params(params, sizeof(params), img, NULL);
    m = itest_call(&a, "flash", params);
    ck_assert_int_eq(itest_member(itest_result(m), "id", NULL)->valueint, 1);
    cJSON_Delete(m);
    /* The upload alone takes seconds at 460800 baud. */
    m = itest_call(&b, "flash", params);
    ck_assert_int_eq(itest_error_code(m), -32006);
    cJSON_Delete(m);
    m = itest_call(&b, "send", "{\"command\":\"ping\"}");
    ck_assert_int_eq(itest_error_code(m), -32006);
    cJSON_Delete(m);
    o = wait_outcome(&a, &root);
    ck_assert_str_eq(itest_member(o, "outcome", NULL)->valuestring,
                     "confirmed");
    cJSON_Delete(root);
    itest_client_close(&a);
    itest_client_close(&b);
}
END_TEST

START_TEST(test_flash_stopping_tetherd_mid_upload_ends_it_and_exits_cleanly)
{
    struct itest_client c;
    int status;

    start_v2_flash_until(&c, 0);
    ck_assert_int_eq(kill(run.daemon, SIGTERM), 0);
    status = simproc_wait_exit(run.daemon, 5000);
    run.daemon = 0;
    ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "tetherd did not stop cleanly (status %d)", status);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM events WHERE kind = "
                                "'flash' AND detail = 'failed 1: tetherd is "
                                "stopping'"),
                     1);
    itest_client_close(&c);
}
END_TEST

/* In a child that has become PEER_UID in the socket's group: asks for a
 * flash and exits 4 when it was refused with -32005, 8 when answered
 * otherwise, 0 when nothing came. */
static int peer_child(const char *image)
{
    char req[FILE_MAX + 128], buf[4096];
    size_t len = 0;
    int fd = itest_peer_connect(run.sock, PEER_UID, PEER_GID);
    int64_t end = simproc_now_ms() + WAIT_MS;

    if (fd == -EPERM)
        return 64;
    if (fd < 0)
        return 0;
    snprintf(req, sizeof(req),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"flash\","
             "\"params\":{\"image\":\"%s\"}}\n",
             image);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        return 0;
    while (simproc_now_ms() < end && len < sizeof(buf) - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t k;

        if (poll(&pfd, 1, 200) <= 0)
            continue;
        k = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        buf[len] = '\0';
        if (strchr(buf, '\n') != NULL)
            return strstr(buf, "-32005") ? 4 : 8;
    }
    return 0;
}

START_TEST(test_flash_is_refused_to_a_peer_outside_the_admin_group)
{
    char img[FILE_MAX];
    struct itest_client c;
    pid_t pid;
    int status;

    if (getuid() != 0) {
        fprintf(stderr, "test_flash: not root, peer test not run\n");
        return;
    }
    image_v2(img, sizeof(img));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");
    ck_assert_int_eq(chmod(run.dir, 0711), 0);
    ck_assert_int_eq(chmod(img, 0644), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(peer_child(img));
    status = simproc_wait_exit(pid, WAIT_MS + 2000);
    ck_assert(status >= 0 && WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 4);
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM events WHERE kind = 'flash'"), 0);
    wait_running(&c, "0.1.0");
    itest_client_close(&c);
}
END_TEST

/* ---- method = openocd ---- */

/* The stand-in stops the simulator whose pid is in run.dir/sim.pid. */
static void write_sim_pid(void)
{
    char path[FILE_MAX], text[32];

    snprintf(path, sizeof(path), "%s/sim.pid", run.dir);
    snprintf(text, sizeof(text), "%d\n", (int)run.sim);
    itest_write_file(path, text, 0644);
}

/* Two configuration files for -f, named in cfg1 and cfg2, and the [flash]
 * keys that run the stand-in with them, more keys after. */
static void openocd_keys(char *keys, size_t cap, char *cfg1, char *cfg2,
                         const char *more)
{
    snprintf(cfg1, FILE_MAX, "%s/gpiod.cfg", run.dir);
    snprintf(cfg2, FILE_MAX, "%s/target.cfg", run.dir);
    itest_write_file(cfg1, "# adapter\n", 0644);
    itest_write_file(cfg2, "# target\n", 0644);
    snprintf(keys, cap,
             "method = openocd\nopenocd_command = %s %s\n"
             "openocd_config = %s %s\nopenocd_timeout_ms = 10000\n%s",
             itest_env_or("TETHER_OPENOCD_STANDIN",
                          "tests/integration/openocd-standin.sh"),
             run.dir, cfg1, cfg2, more);
}

/* The stand-in's record of its arguments, one a line. */
static void read_standin_argv(char *text, size_t cap)
{
    char path[FILE_MAX];

    snprintf(path, sizeof(path), "%s/argv", run.dir);
    itest_read_file(path, text, cap);
}

/* method = openocd, with the stand-in: tetherd lends the port, runs the
 * command line it builds from the configuration (the body of an image
 * that is not RAM-loaded, no erase when none is configured), takes the
 * port back and checks HELLO and the health gate. */
START_TEST(test_flash_by_openocd_stand_in_runs_the_new_image)
{
    const char *args[] = {"--link", run.mcu, NULL};
    char keys[1024], cfg1[FILE_MAX], cfg2[FILE_MAX], img[FILE_MAX];
    char path[FILE_MAX], text[TEXT_MAX], want[3 * FILE_MAX];
    const char *flash[] = {"flash", img, NULL};
    const char *no_confirm[] = {"flash", "--no-confirm", img, NULL};
    struct itest_client c;

    /* The MCU before: a plain simulator, whose pid the stand-in stops. */
    run.sim = itest_start_sim(run.mcu, args, WAIT_MS);
    write_sim_pid();
    openocd_keys(keys, sizeof(keys), cfg1, cfg2,
                 "openocd_address = 0x08010000\n");
    start_daemon(keys);
    image_v2(img, sizeof(img));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");

    /* No test boot with OpenOCD: --no-confirm is refused. */
    ck_assert_int_eq(tetherctl(no_confirm, text, sizeof(text), WAIT_MS), 1);
    ck_assert_msg(strstr(text, "-32602"), "%s", text);

    ck_assert_int_eq(tetherctl(flash, text, sizeof(text), FLASH_MS), 0);
    ck_assert_msg(strstr(text, "flash 1: confirmed: 0.2.0 runs (was 0.1.0)"),
                  "%s", text);
    ck_assert_msg(strstr(text, "OpenOCD is writing the image"), "%s", text);
    wait_running(&c, "0.2.0");

    /* The command line tetherd built, as the stand-in recorded it. */
    read_standin_argv(text, sizeof(text));
    snprintf(want, sizeof(want), "-f\n%s\n-f\n%s\n-c\nprogram %s/tether-fw-",
             cfg1, cfg2, run.dir);
    ck_assert_msg(strncmp(text, want, strlen(want)) == 0, "%s", text);
    ck_assert_msg(strstr(text, ".bin 0x08010000 verify reset exit\n"), "%s",
                  text);
    ck_assert_msg(strstr(text, "erase") == NULL, "%s", text);
    /* What OpenOCD was handed: the body, without the header. */
    snprintf(path, sizeof(path), "%s/programmed", run.dir);
    assert_same_bytes(img, 64, path);
    /* The body file is gone, the lent port and the reset were expected. */
    ck_assert_int_eq(count_rows("SELECT count(*) FROM events WHERE kind = "
                                "'link' AND detail LIKE '%OpenOCD%'"),
                     1);
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM alerts WHERE name = 'link_lost'"), 0);
    ck_assert_int_eq(
        count_rows("SELECT count(*) FROM alerts WHERE name = 'mcu_reset'"), 0);
    itest_client_close(&c);
}
END_TEST

/* A RAM-loaded image (IMAGE_FLAG_RAM, as every STM32U585 image is) goes
 * to OpenOCD whole, header first, for the bootloader that reads the
 * factory image's header; and the configured erase of the boot record's
 * page comes first, so that a confirmed update in a slot no longer starts
 * ahead of the image just written.  The MCU before: v2, put in a slot of
 * the simulator's flash by a UART update and confirmed; OpenOCD then
 * writes v1 (forced: it is older), as to recover a board.  Without the
 * erase the simulator would start the confirmed v2 again, and the flash
 * would fail for want of a HELLO with 0.1.0. */
START_TEST(test_flash_by_openocd_writes_a_ram_loaded_image_whole_after_an_erase)
{
    char keys[1024], cfg1[FILE_MAX], cfg2[FILE_MAX], v2[FILE_MAX];
    char img[FILE_MAX], path[FILE_MAX + 8], text[TEXT_MAX];
    char want[4 * FILE_MAX];
    const char *by_uart[] = {"flash", v2, NULL};
    const char *by_openocd[] = {"flash", "--force", img, NULL};
    struct itest_client c;

    start_sim(NULL);
    write_sim_pid();
    start_daemon(NULL);
    image_v2(v2, sizeof(v2));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");
    ck_assert_int_eq(tetherctl(by_uart, text, sizeof(text), FLASH_MS), 0);
    ck_assert_msg(strstr(text, "confirmed: 0.2.0 runs"), "%s", text);
    wait_running(&c, "0.2.0");
    itest_client_close(&c);
    itest_stop_cleanly(&run.daemon, WAIT_MS);
    snprintf(path, sizeof(path), "%s/boot", run.slots);
    ck_assert_int_eq(access(path, F_OK), 0);

    openocd_keys(keys, sizeof(keys), cfg1, cfg2,
                 "openocd_address = 0x08004000\n"
                 "openocd_erase = 0x08120000 0x2000\n");
    start_daemon(keys);
    make_image_at(itest_env_or("TETHER_SIM", "build/tether-sim"), "0.1.0",
                  "0x20000000", "v1-ram.img", img, sizeof(img));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.2.0");
    ck_assert_int_eq(tetherctl(by_openocd, text, sizeof(text), FLASH_MS), 0);
    ck_assert_msg(strstr(text, "flash 1: confirmed: 0.1.0 runs (was 0.2.0)"),
                  "%s", text);
    wait_running(&c, "0.1.0");
    itest_client_close(&c);

    read_standin_argv(text, sizeof(text));
    snprintf(want, sizeof(want),
             "-f\n%s\n-f\n%s\n-c\ninit\n-c\nreset halt\n-c\n"
             "flash erase_address 0x08120000 0x00002000\n-c\n"
             "program %s/tether-fw-",
             cfg1, cfg2, run.dir);
    ck_assert_msg(strncmp(text, want, strlen(want)) == 0, "%s", text);
    ck_assert_msg(strstr(text, ".img 0x08004000 verify reset exit\n"), "%s",
                  text);
    /* What OpenOCD was handed: the image file, header and all. */
    snprintf(path, sizeof(path), "%s/programmed", run.dir);
    assert_same_bytes(img, 0, path);
}
END_TEST

/* ---- Throughput (--throughput, not part of the tests) ---- */

/* Flashes v2 with the simulator paced at baud and prints the upload rate
 * against the line's: 10 bits a byte, so baud / 10 bytes a second. */
static void measure(const char *baud)
{
    const char *paced[] = {"--baud", baud, NULL};
    char img[FILE_MAX], params[FILE_MAX + 64];
    struct itest_client c;
    const cJSON *o;
    cJSON *m, *root;
    double bytes, ms, line = atof(baud) / 10;

    setup_dirs();
    start_sim(paced);
    start_daemon(NULL);
    image_v2(img, sizeof(img));
    itest_client_open(&c, run.sock, WAIT_MS);
    wait_running(&c, "0.1.0");
    flash_params(params, sizeof(params), img, NULL);
    m = itest_call(&c, "flash", params);
    itest_result(m);
    cJSON_Delete(m);
    o = wait_outcome(&c, &root);
    ck_assert_str_eq(itest_member(o, "outcome", NULL)->valuestring,
                     "confirmed");
    bytes = itest_member(o, "bytes", NULL)->valuedouble;
    ms = itest_member(o, "upload_ms", NULL)->valuedouble;
    printf("%s baud: %.0f bytes uploaded in %.0f ms = %.0f B/s, %.1f%% of "
           "the line's %.0f B/s (%d chunks sent again)\n",
           baud, bytes, ms, bytes * 1000 / ms, 100 * bytes * 1000 / ms / line,
           line, itest_member(o, "resends", NULL)->valueint);
    fflush(stdout);
    cJSON_Delete(root);
    itest_client_close(&c);
}

START_TEST(test_flash_throughput_at_115200)
{
    measure("115200");
}
END_TEST

START_TEST(test_flash_throughput_at_921600)
{
    measure("921600");
}
END_TEST

static Suite *throughput_suite(void)
{
    Suite *s = suite_create("flash throughput");
    TCase *tc = tcase_create("upload rate");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_flash_throughput_at_115200);
    tcase_add_test(tc, test_flash_throughput_at_921600);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *flash_suite(void)
{
    Suite *s = suite_create("flash");
    TCase *tc = tcase_create("straight");
    TCase *px = tcase_create("through a proxy");
    TCase *own = tcase_create("own setup");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_flash_v1_to_v2_succeeds_and_hello_reports_v2);
    tcase_add_test(tc, test_flash_left_on_test_runs_v2_until_the_next_reset);
    tcase_add_test(
        tc, test_flash_refuses_a_corrupted_image_before_sending_anything);
    tcase_add_test(tc,
                   test_flash_refuses_wrong_board_truncated_and_older_images);
    tcase_add_test(tc,
                   test_flash_of_an_image_failing_its_health_gate_is_reverted);
    tcase_add_test(tc, test_flash_is_refused_to_a_peer_outside_the_admin_group);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(px, setup_proxied, teardown);
    tcase_set_timeout(px, 120);
    tcase_add_test(px, test_flash_cut_mid_way_resumes_and_completes);
    tcase_add_test(px, test_flash_while_a_flash_runs_is_refused);
    tcase_add_test(
        px, test_flash_stopping_tetherd_mid_upload_ends_it_and_exits_cleanly);
    suite_add_tcase(s, px);

    tcase_add_checked_fixture(own, setup_bare, teardown);
    tcase_set_timeout(own, 120);
    tcase_add_test(
        own, test_flash_corruption_on_the_link_is_caught_and_v1_keeps_running);
    tcase_add_test(own, test_flash_by_openocd_stand_in_runs_the_new_image);
    tcase_add_test(
        own,
        test_flash_by_openocd_writes_a_ram_loaded_image_whole_after_an_erase);
    suite_add_tcase(s, own);
    return s;
}

int main(int argc, char **argv)
{
    bool measuring = argc == 2 && strcmp(argv[1], "--throughput") == 0;

    return itest_run(measuring ? throughput_suite() : flash_suite());
}
