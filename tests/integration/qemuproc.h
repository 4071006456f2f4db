/* Running the mps2-an505 firmware image under QEMU from tests, through
 * scripts/qemu.sh.  The image's UART0 is a pseudo-terminal, as tether-sim's
 * link is, so once QEMU runs, simproc.h's calls talk to it.
 *
 * The script execs QEMU, so the pid a test holds is QEMU's, and the
 * parent-death signal simproc_spawn() sets survives the exec: QEMU dies
 * with the test that started it, even when an assertion or a timeout ends
 * that test early.
 *
 * QEMU drops what the firmware sends until it notices that the pty has a
 * reader, up to a second after the reader opens it; qemuproc_wait_heard()
 * waits for that. */
#ifndef TETHER_QEMUPROC_H
#define TETHER_QEMUPROC_H

#include <stddef.h>
#include <sys/types.h>

#include "simproc.h"

#define QEMUPROC_START_MS 5000 /* the script prints the pty by then */

/* The firmware image: $TETHER_FW_MPS2, by default
 * build/fw/mps2-an505/tether-fw.elf. */
const char *qemuproc_image(void);

/* The port's reset test image (mcu-firmware/port/mps2-an505/reset_test.c):
 * $TETHER_FW_MPS2_RESETS, by default
 * build/fw/mps2-an505/tether-fw-resets.elf. */
const char *qemuproc_resets_image(void);

/* Checks that QEMU ($QEMU or qemu-system-arm on PATH), the script
 * ($TETHER_QEMU_SH, default scripts/qemu.sh) and image are there.
 * Returns 0, or -1 with what is missing written to why. */
int qemuproc_check(const char *image, char *why, size_t cap);

/* Boots image and opens its pty through s; QEMU's messages go to err_fd
 * (unchanged if < 0).  Returns 0 or -1.  Stop it with simproc_stop(). */
int qemuproc_start(struct simproc *s, const char *image, int err_fd);

/* Boots qemuproc_image() with its pty also linked at link, for a daemon;
 * QEMU's messages go to log_fd.  Waits until the link exists.  Returns
 * QEMU's pid, or -1 if no link appeared within QEMUPROC_START_MS (the
 * process, if any, is killed). */
pid_t qemuproc_start_linked(const char *link, int log_fd);

/* Waits for the first good frame from the firmware on s; returns 1, or 0
 * if none came within timeout_ms. */
int qemuproc_wait_heard(struct simproc *s, int timeout_ms);

#endif
