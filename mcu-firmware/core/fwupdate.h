/* The firmware side of an update (docs/UPDATE.md): answers UPD_* requests
 * from the link, writes the upload into the inactive slot through the
 * port, hashes it, and arms the test boot.  Loop context only.
 *
 * The core hands every frame of type 0x80..0x9f to fwupdate_handle()
 * and asks fwupdate_busy() whether to pause sampling and reports.  Ports
 * that take updates build mcu-firmware/update/fwupdate.c and boot.c; the
 * others build fwupdate_none.c, which answers every such frame with NACK
 * unsupported.  A port that builds fwupdate.c but has no update storage
 * in a given run (tether-sim without --flash) behaves like
 * fwupdate_none.c. */
#ifndef TETHER_FWUPDATE_H
#define TETHER_FWUPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* An upload that has had no request for this long stops holding the line:
 * telemetry resumes, and the upload stays where it was, so that the same
 * UPD_BEGIN resumes it.  A sender whose link dropped comes back within
 * this time or finds telemetry flowing again. */
#define FWUPDATE_PAUSE_US   10000000u
/* Most UPD_DATA frames a sender may keep unanswered.  The MCU offers the
 * frames its receive FIFO holds whole, up to this (UPD_STATUS window). */
#define FWUPDATE_WINDOW_MAX 8u

/* Called from fw_init(): loads the boot record through the port. */
void fwupdate_init(void);
/* One request frame of type MSG_UPDATE_FIRST..MSG_UPDATE_LAST; answers
 * it with fw_send_reply() (core/fw.h): UPD_STATUS for the UPD_* requests,
 * NACK for another type or a payload that does not decode.  UPD_BEGIN
 * (erase) and UPD_END (hash the slot) block for as long as the medium
 * needs. */
void fwupdate_handle(const struct frame *f);
/* True while an upload is under way and its sender is active: the core
 * sends no ADC batches, HEAP or STATS. */
bool fwupdate_busy(void);
/* MSG_CAP_UPDATE when this build and run take updates, with
 * MSG_CAP_TESTING while the running image is on test; else 0. */
uint16_t fwupdate_caps(void);

#endif
