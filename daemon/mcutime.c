/* MCU time to wall-clock time.  See mcutime.h.
 *
 * The MCU's clock is a u32 microsecond counter with no relation to the
 * Linux clock: it starts at an arbitrary value, wraps every 71.6 minutes,
 * restarts on every MCU reset, and its crystal may run up to a few hundred
 * ppm fast or slow.  The only link between the two clocks is that a frame
 * stamped m by the MCU is read at wall time w > m + offset, later by an
 * unknown delay (UART transmission, the MCU's transmit queue, the pty or
 * driver buffers, our own event loop).  The delay is never negative, so
 * the smallest w - m seen is the best estimate of the offset; it only gets
 * better with more frames, and one late frame cannot spoil it.
 *
 * A minimum alone would stick when the MCU clock runs slow (the true
 * offset w - m then grows), so the kept minimum is allowed to rise by
 * MCUTIME_DRIFT_PPM of the time since it was last lowered.  The rise is
 * computed from the lowering point each time, never accumulated step by
 * step, so rounding cannot build up.  In the mapping the rise is taken at
 * the wall time of the timestamp being mapped, which keeps the mapping
 * strictly increasing in MCU time and the same for a timestamp whether it
 * is mapped before or after newer ones.
 *
 * Unwrapping: a timestamp is placed within half the wrap period of the
 * newest one seen, in whichever direction is nearer. */
#include "mcutime.h"

#define PPM_DIV 1000000

void mcutime_init(struct mcutime *t)
{
    t->anchored = false;
    t->last_mcu = 0;
    t->last_unwrapped = 0;
    t->offset_us = 0;
    t->offset_wall_us = 0;
}

void mcutime_reset(struct mcutime *t)
{
    mcutime_init(t);
}

/* The MCU timestamp on the unwrapped axis of the newest one seen. */
static int64_t unwrap(const struct mcutime *t, uint32_t mcu_us)
{
    return t->last_unwrapped + (int32_t)(mcu_us - t->last_mcu);
}

/* The offset allowed at wall time wall_us: the kept minimum plus the drift
 * allowance since it was set. */
static int64_t offset_at(const struct mcutime *t, int64_t wall_us)
{
    int64_t elapsed = wall_us - t->offset_wall_us;

    if (elapsed <= 0)
        return t->offset_us;
    return t->offset_us + elapsed * MCUTIME_DRIFT_PPM / PPM_DIV;
}

void mcutime_observe(struct mcutime *t, uint32_t mcu_us, int64_t wall_us)
{
    int64_t u, candidate;

    if (!t->anchored) {
        t->anchored = true;
        t->last_mcu = mcu_us;
        t->last_unwrapped = mcu_us;
        t->offset_us = wall_us - (int64_t)mcu_us;
        t->offset_wall_us = wall_us;
        return;
    }
    u = unwrap(t, mcu_us);
    if (u > t->last_unwrapped) {
        t->last_mcu = mcu_us;
        t->last_unwrapped = u;
    }
    candidate = wall_us - u;
    if (candidate <= offset_at(t, wall_us)) {
        t->offset_us = candidate;
        t->offset_wall_us = wall_us;
    }
}

int64_t mcutime_to_wall(const struct mcutime *t, uint32_t mcu_us)
{
    int64_t u;

    if (!t->anchored)
        return 0;
    u = unwrap(t, mcu_us);
    return u + offset_at(t, u + t->offset_us);
}
