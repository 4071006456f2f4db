/* The interrupt/loop byte FIFO: capacity, wrap-around, all-or-nothing puts
 * and balanced interrupt masking. */
#include "fifo.h"
#include "port_fake.h"
#include "suites.h"

START_TEST(test_fifo_holds_size_minus_one_and_wraps_in_order)
{
    uint8_t buf[8], b = 0, next = 0;
    struct fifo f;

    fifo_init(&f, buf, sizeof(buf));
    ck_assert_uint_eq(fifo_space(&f), 7);
    for (unsigned round = 0; round < 100; round++) {
        uint8_t in[5];

        for (unsigned i = 0; i < 5; i++)
            in[i] = (uint8_t)(round * 5 + i);
        ck_assert(fifo_put_all(&f, in, 5));
        ck_assert_uint_eq(fifo_used(&f), 5);
        for (unsigned i = 0; i < 5; i++) {
            ck_assert(i % 2 ? fifo_get(&f, &b) : fifo_get_isr(&f, &b));
            ck_assert_uint_eq(b, next++);
        }
        ck_assert(!fifo_get(&f, &b));
    }
    ck_assert_uint_eq(port_fake.irq_depth, 0);
}
END_TEST

START_TEST(test_fifo_put_all_is_all_or_nothing)
{
    uint8_t buf[8], in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b;
    struct fifo f;

    fifo_init(&f, buf, sizeof(buf));
    ck_assert(!fifo_put_all(&f, in, 8));
    ck_assert_uint_eq(fifo_used(&f), 0);
    ck_assert(fifo_put_all(&f, in, 4));
    ck_assert(!fifo_put_all(&f, in, 4));
    ck_assert(fifo_put_all(&f, in, 3));
    ck_assert_uint_eq(fifo_space(&f), 0);
    ck_assert(!fifo_put_isr(&f, 9));
    ck_assert(fifo_get_isr(&f, &b));
    ck_assert_uint_eq(b, 1);
    ck_assert(fifo_put_isr(&f, 9));
    ck_assert_uint_eq(port_fake.irq_depth, 0);
}
END_TEST

Suite *fifo_suite(void)
{
    Suite *s = suite_create("fifo");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_fifo_holds_size_minus_one_and_wraps_in_order);
    tcase_add_test(tc, test_fifo_put_all_is_all_or_nothing);
    suite_add_tcase(s, tc);
    return s;
}
