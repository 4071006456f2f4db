/* Fixed-capacity ring of the most recent records of one series; when full
 * the oldest is overwritten.  The capacity and record size are fixed when
 * the ring is made: pushing copies a record and never allocates.  Records
 * must begin with an int64_t timestamp in microseconds, non-decreasing in
 * push order, so recent windows can be found.  Loop thread only. */
#ifndef TETHER_RING_H
#define TETHER_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_ENOMEM -1 /* ring_new: allocation failed */
#define RING_EINVAL -2 /* ring_new: zero capacity or record too small */

struct ring;

/* Caller owns the result; free with ring_free(). */
int ring_new(struct ring **out, size_t capacity, size_t record_size);
void ring_free(struct ring *r); /* NULL is a no-op */

/* O(1); overwrites the oldest record when full. */
void ring_push(struct ring *r, const void *record);

size_t ring_count(const struct ring *r);
size_t ring_capacity(const struct ring *r);

/* Copies up to n newest records into dst, newest first; returns the
 * count. */
size_t ring_latest(const struct ring *r, void *dst, size_t n);

/* Copies up to n records with timestamp >= since_us into dst, oldest
 * first; returns the count.  O(log capacity + n). */
size_t ring_since(const struct ring *r, int64_t since_us, void *dst, size_t n);

#endif
