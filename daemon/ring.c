/* Fixed-capacity rings of recent records.  See ring.h.
 *
 * The query server asks for "the newest n" and "everything since t" many
 * times a second while the link pushes thousands of samples a second, so
 * both sides must be cheap and neither may allocate: the ring is one block
 * holding its bookkeeping and capacity * record_size bytes of records,
 * allocated once.  Records are opaque except for the int64_t timestamp
 * they begin with; it is read with memcpy because a record size need not
 * keep it aligned.  Because timestamps never decrease in push order, the
 * logical order (oldest to newest) is sorted and ring_since() can find its
 * first record by binary search. */
#include "ring.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct ring {
    size_t cap;   /* records the ring holds */
    size_t rsize; /* bytes per record */
    size_t head;  /* slot the next push writes */
    size_t count; /* records held, at most cap */
    alignas(max_align_t) unsigned char data[];
};

int ring_new(struct ring **out, size_t capacity, size_t record_size)
{
    struct ring *r;

    *out = NULL;
    if (capacity == 0 || record_size < sizeof(int64_t))
        return RING_EINVAL;
    if (capacity > (SIZE_MAX - sizeof(*r)) / record_size)
        return RING_ENOMEM;
    r = malloc(sizeof(*r) + capacity * record_size);
    if (r == NULL)
        return RING_ENOMEM;
    r->cap = capacity;
    r->rsize = record_size;
    r->head = 0;
    r->count = 0;
    *out = r;
    return 0;
}

void ring_free(struct ring *r)
{
    free(r);
}

/* Slot of the record at logical index i, 0 being the oldest held. */
static size_t slot_of(const struct ring *r, size_t i)
{
    size_t s = r->head + r->cap - r->count + i;

    return s >= r->cap ? s - r->cap : s;
}

static const unsigned char *record_at(const struct ring *r, size_t i)
{
    return &r->data[slot_of(r, i) * r->rsize];
}

static int64_t time_at(const struct ring *r, size_t i)
{
    int64_t t;

    memcpy(&t, record_at(r, i), sizeof(t));
    return t;
}

void ring_push(struct ring *r, const void *record)
{
    memcpy(&r->data[r->head * r->rsize], record, r->rsize);
    r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
    if (r->count < r->cap)
        r->count++;
}

size_t ring_count(const struct ring *r)
{
    return r->count;
}

size_t ring_capacity(const struct ring *r)
{
    return r->cap;
}

size_t ring_latest(const struct ring *r, void *dst, size_t n)
{
    unsigned char *d = dst;
    size_t k = n < r->count ? n : r->count;

    for (size_t j = 0; j < k; j++)
        memcpy(&d[j * r->rsize], record_at(r, r->count - 1 - j), r->rsize);
    return k;
}

size_t ring_since(const struct ring *r, int64_t since_us, void *dst, size_t n)
{
    unsigned char *d = dst;
    size_t lo = 0, hi = r->count, k, first, run;

    /* The first logical index whose timestamp is >= since_us. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (time_at(r, mid) < since_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    k = r->count - lo < n ? r->count - lo : n;
    if (k == 0)
        return 0;
    /* At most two contiguous runs: up to the end of the storage, then
     * from its start. */
    first = slot_of(r, lo);
    run = r->cap - first < k ? r->cap - first : k;
    memcpy(d, &r->data[first * r->rsize], run * r->rsize);
    memcpy(&d[run * r->rsize], r->data, (k - run) * r->rsize);
    return k;
}
