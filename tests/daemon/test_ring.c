/* The ring against a reference model: a plain array of every record ever
 * pushed.  After each random push the ring's count, its newest records and
 * a random "since" window are compared with what the model says they must
 * be, so wrap-around, a full ring and the binary search are all checked
 * on every step. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_test_util.h"
#include "ring.h"

#define MODEL_MAX 6000 /* records pushed in one random run */
#define QUERY_MAX 64   /* records asked for in one query */

/* An odd size, so records do not keep the timestamp aligned. */
struct rec {
    int64_t t_us;
    uint8_t payload[5];
} __attribute__((packed));

static struct rec model[MODEL_MAX];
static size_t model_n;

static uint32_t rng = 12345;

static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

static void make_rec(struct rec *r, int64_t t, uint32_t tag)
{
    r->t_us = t;
    for (size_t i = 0; i < sizeof(r->payload); i++)
        r->payload[i] = (uint8_t)(tag >> (i * 3));
}

/* Checks ring_latest(n) against the model's newest records. */
static void check_latest(const struct ring *r, size_t cap, size_t n)
{
    struct rec got[QUERY_MAX];
    size_t held = model_n < cap ? model_n : cap;
    size_t want = n < held ? n : held;

    ck_assert_uint_eq(ring_latest(r, got, n), want);
    for (size_t j = 0; j < want; j++)
        ck_assert_mem_eq(&got[j], &model[model_n - 1 - j], sizeof(got[j]));
}

/* Checks ring_since(t, n) against a linear scan of the held records. */
static void check_since(const struct ring *r, size_t cap, int64_t t, size_t n)
{
    struct rec got[QUERY_MAX];
    size_t held = model_n < cap ? model_n : cap;
    size_t first = model_n - held, want = 0;

    while (first < model_n && model[first].t_us < t)
        first++;
    want = model_n - first < n ? model_n - first : n;
    ck_assert_uint_eq(ring_since(r, t, got, n), want);
    for (size_t j = 0; j < want; j++)
        ck_assert_mem_eq(&got[j], &model[first + j], sizeof(got[j]));
}

/* Pushes steps random records into a ring of capacity cap, with runs of
 * equal timestamps, checking everything after each push. */
static void random_run(size_t cap, size_t steps)
{
    struct ring *r;
    int64_t t = 1000;

    model_n = 0;
    ck_assert_int_eq(ring_new(&r, cap, sizeof(struct rec)), 0);
    ck_assert_uint_eq(ring_capacity(r), cap);
    ck_assert_uint_eq(ring_count(r), 0);
    check_latest(r, cap, 4);
    check_since(r, cap, INT64_MIN, 4);
    for (size_t i = 0; i < steps; i++) {
        struct rec rec;
        int64_t lo, span;

        if (next_rand() % 4 != 0)
            t += next_rand() % 50;
        make_rec(&rec, t, (uint32_t)i);
        ring_push(r, &rec);
        model[model_n++] = rec;
        ck_assert_uint_eq(ring_count(r), model_n < cap ? model_n : cap);

        check_latest(r, cap, next_rand() % (QUERY_MAX + 1));
        /* Windows from before the oldest held to past the newest. */
        lo = model[model_n > cap ? model_n - cap : 0].t_us - 100;
        span = t - lo + 200;
        check_since(r, cap, lo + (int64_t)(next_rand() % (uint32_t)span),
                    next_rand() % (QUERY_MAX + 1));
    }
    ring_free(r);
}

START_TEST(test_ring_matches_a_reference_model_over_random_pushes)
{
    random_run(100, MODEL_MAX);
    random_run(257, 3000);
    random_run(4096, 5000);
}
END_TEST

START_TEST(test_ring_of_capacity_1_keeps_only_the_newest)
{
    struct ring *r;
    struct rec a, b, got[2];

    ck_assert_int_eq(ring_new(&r, 1, sizeof(struct rec)), 0);
    make_rec(&a, 10, 1);
    make_rec(&b, 20, 2);
    ring_push(r, &a);
    ck_assert_uint_eq(ring_latest(r, got, 2), 1);
    ck_assert_mem_eq(&got[0], &a, sizeof(a));
    ring_push(r, &b);
    ck_assert_uint_eq(ring_count(r), 1);
    ck_assert_uint_eq(ring_latest(r, got, 2), 1);
    ck_assert_mem_eq(&got[0], &b, sizeof(b));
    ck_assert_uint_eq(ring_since(r, 0, got, 2), 1);
    ck_assert_mem_eq(&got[0], &b, sizeof(b));
    ck_assert_uint_eq(ring_since(r, 21, got, 2), 0);
    ck_assert_uint_eq(ring_since(r, 20, got, 0), 0);
    ring_free(r);

    random_run(1, 500);
}
END_TEST

START_TEST(test_ring_since_reads_across_the_wrap_in_order)
{
    struct ring *r;
    struct rec rec, got[8];

    ck_assert_int_eq(ring_new(&r, 5, sizeof(struct rec)), 0);
    /* Eight pushes into five slots: the oldest held (t = 3) sits in the
     * middle of the storage and the newest before it. */
    for (int i = 0; i < 8; i++) {
        make_rec(&rec, i, (uint32_t)i);
        ring_push(r, &rec);
    }
    ck_assert_uint_eq(ring_since(r, INT64_MIN, got, 8), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(got[i].t_us, 3 + i);
    ck_assert_uint_eq(ring_since(r, 6, got, 8), 2);
    ck_assert_int_eq(got[0].t_us, 6);
    ck_assert_int_eq(got[1].t_us, 7);
    ck_assert_uint_eq(ring_since(r, 4, got, 2), 2); /* oldest first */
    ck_assert_int_eq(got[0].t_us, 4);
    ck_assert_int_eq(got[1].t_us, 5);
    ck_assert_uint_eq(ring_latest(r, got, 3), 3); /* newest first */
    ck_assert_int_eq(got[0].t_us, 7);
    ck_assert_int_eq(got[2].t_us, 5);
    ring_free(r);
}
END_TEST

START_TEST(test_ring_rejects_zero_capacity_small_records_and_overflow)
{
    struct ring *r = (struct ring *)&r;

    ck_assert_int_eq(ring_new(&r, 0, sizeof(struct rec)), RING_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(ring_new(&r, 10, sizeof(int64_t) - 1), RING_EINVAL);
    ck_assert_int_eq(ring_new(&r, SIZE_MAX / 4, 16), RING_ENOMEM);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(ring_new(&r, 3, sizeof(int64_t)), 0);
    ck_assert_uint_eq(ring_count(r), 0);
    ring_free(r);
    ring_free(NULL);
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *model_tc = tcase_create("model");
    TCase *edges = tcase_create("edges");

    tcase_add_test(model_tc,
                   test_ring_matches_a_reference_model_over_random_pushes);
    tcase_set_timeout(model_tc, 60);
    suite_add_tcase(s, model_tc);

    tcase_add_test(edges, test_ring_of_capacity_1_keeps_only_the_newest);
    tcase_add_test(edges, test_ring_since_reads_across_the_wrap_in_order);
    tcase_add_test(edges,
                   test_ring_rejects_zero_capacity_small_records_and_overflow);
    tcase_set_timeout(edges, 10);
    suite_add_tcase(s, edges);
    return s;
}

int main(void)
{
    return dtest_run(ring_suite());
}
