/* Maps MCU time (a u32 microsecond clock that wraps every 71.6 minutes and
 * restarts at every MCU reset) to wall-clock time on the Linux side.
 *
 * Each timestamped frame is an observation: it was built at MCU time m and
 * arrived at wall time w, so the MCU clock's offset is at most w - m (the
 * frame cannot arrive before it was built).  The mapping keeps the smallest
 * such offset, the one with the least queueing and line delay in it, and
 * lets it rise by MCUTIME_DRIFT_PPM of elapsed time so that a MCU crystal
 * slower than the Linux clock is followed.  Timestamps are unwrapped
 * against the newest one seen, so they may arrive out of order by up to
 * half the wrap period (35 minutes).  After mcutime_reset() (the MCU
 * restarted and its clock began again at 0) the next observation anchors a
 * fresh offset.  Loop thread only. */
#ifndef TETHER_MCUTIME_H
#define TETHER_MCUTIME_H

#include <stdbool.h>
#include <stdint.h>

#define MCUTIME_DRIFT_PPM 200 /* largest crystal error followed */

struct mcutime {
    bool anchored;
    uint32_t last_mcu;      /* newest MCU timestamp seen */
    int64_t last_unwrapped; /* it, unwrapped, in microseconds */
    int64_t offset_us;      /* wall = unwrapped MCU time + offset */
    int64_t offset_wall_us; /* when offset was last lowered */
};

void mcutime_init(struct mcutime *t);

/* The MCU restarted: forget the clock; the next observation anchors. */
void mcutime_reset(struct mcutime *t);

/* Records that a frame stamped mcu_us arrived at wall_us (microseconds
 * since the epoch).  Call once per timestamped frame, before mapping its
 * timestamps. */
void mcutime_observe(struct mcutime *t, uint32_t mcu_us, int64_t wall_us);

/* Wall-clock microseconds for an MCU timestamp near the newest observed
 * one.  Before the first observation, returns 0. */
int64_t mcutime_to_wall(const struct mcutime *t, uint32_t mcu_us);

#endif
