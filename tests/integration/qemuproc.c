/* Helpers to run the mps2-an505 image under QEMU in tests.  See
 * qemuproc.h. */
#define _GNU_SOURCE
#include "qemuproc.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATH_LIST_MAX 4096u

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : fallback;
}

static const char *script_path(void)
{
    return env_or("TETHER_QEMU_SH", "scripts/qemu.sh");
}

const char *qemuproc_image(void)
{
    return env_or("TETHER_FW_MPS2", "build/fw/mps2-an505/tether-fw.elf");
}

const char *qemuproc_resets_image(void)
{
    return env_or("TETHER_FW_MPS2_RESETS",
                  "build/fw/mps2-an505/tether-fw-resets.elf");
}

/* Whether name is an executable file, as given or in one of $PATH's
 * folders. */
static int on_path(const char *name)
{
    char list[PATH_LIST_MAX], file[PATH_MAX];
    char *save = NULL;

    if (strchr(name, '/') != NULL)
        return access(name, X_OK) == 0;
    snprintf(list, sizeof(list), "%s", env_or("PATH", "/usr/bin:/bin"));
    for (char *dir = strtok_r(list, ":", &save); dir != NULL;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(file, sizeof(file), "%s/%s", dir, name);
        if (access(file, X_OK) == 0)
            return 1;
    }
    return 0;
}

int qemuproc_check(const char *image, char *why, size_t cap)
{
    const char *qemu = env_or("QEMU", "qemu-system-arm");

    if (!on_path(qemu)) {
        snprintf(why, cap, "%s is not installed (make deps installs it)", qemu);
        return -1;
    }
    if (access(script_path(), X_OK) != 0) {
        snprintf(why, cap, "%s is missing or not executable", script_path());
        return -1;
    }
    if (access(image, R_OK) != 0) {
        snprintf(why, cap, "no firmware image at %s", image);
        return -1;
    }
    why[0] = '\0';
    return 0;
}

int qemuproc_start(struct simproc *s, const char *image, int err_fd)
{
    const char *args[] = {image, NULL};

    return simproc_start_prog(s, script_path(), args, err_fd);
}

pid_t qemuproc_start_linked(const char *link, int log_fd)
{
    const char *args[] = {qemuproc_image(), link, NULL};
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int64_t end = simproc_now_ms() + QEMUPROC_START_MS;
    struct stat st;
    pid_t pid;

    (void)unlink(link);
    pid = simproc_spawn(script_path(), args, NULL, null, log_fd);
    if (null >= 0)
        close(null);
    if (pid < 0)
        return -1;
    while (lstat(link, &st) != 0) {
        int status;

        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1; /* the script or QEMU gave up; it said why */
        if (simproc_now_ms() >= end) {
            kill(pid, SIGKILL);
            simproc_wait_exit(pid, 2000);
            return -1;
        }
        usleep(10000);
    }
    return pid;
}

int qemuproc_wait_heard(struct simproc *s, int timeout_ms)
{
    struct frame f;

    return simproc_next(s, &f, timeout_ms);
}
