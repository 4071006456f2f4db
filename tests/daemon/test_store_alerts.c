/* store_query_alerts(): past alert rows read back newest first through a
 * reader connection of their own, while the writer has them committed. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daemon_test_util.h"
#include "store.h"

#define ROWS 5

static char db_path[PATH_MAX + 16];

static void setup(void)
{
    snprintf(db_path, sizeof(db_path), "%s/tether.db", dtest_tmpdir());
}

static struct store *open_store(void)
{
    struct store_config c = {
        .path = db_path,
        .commit_ms = 20,
        .commit_rows = 1000,
        .queue_rows = 1024,
    };
    char err[STORE_ERR_MAX] = "";
    struct store *s = NULL;
    int r = store_open(&s, &c, err, sizeof(err));

    ck_assert_msg(r == 0, "store_open: %d %s", r, err);
    return s;
}

START_TEST(test_store_alerts_come_back_newest_first_and_capped)
{
    struct store *s = open_store();
    struct store_alert_row rows[ROWS + 2];
    char err[STORE_ERR_MAX];
    size_t n = 99;

    for (int i = 0; i < ROWS; i++)
        ck_assert_int_eq(store_put_alert(s, 1000 + i, "heap_low",
                                         i % 2 ? "cleared" : "raised",
                                         100.0 + i, 64.0, "free heap low"),
                         0);
    ck_assert_int_eq(store_flush(s), 0);
    ck_assert_int_eq(
        store_query_alerts(db_path, rows, ROWS + 2, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, ROWS);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(rows[i].t_us, 1000 + (int64_t)(ROWS - 1 - i));
        ck_assert_str_eq(rows[i].name, "heap_low");
        ck_assert_str_eq(rows[i].message, "free heap low");
        ck_assert(rows[i].value == 100.0 + (double)(ROWS - 1 - i));
        ck_assert(rows[i].threshold == 64.0);
    }
    ck_assert_str_eq(rows[0].state, "raised");
    ck_assert_str_eq(rows[1].state, "cleared");
    ck_assert_int_eq(store_query_alerts(db_path, rows, 2, &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(rows[0].t_us, 1000 + ROWS - 1);
    store_close(s);
}
END_TEST

START_TEST(test_store_alerts_of_an_empty_database_are_none)
{
    struct store *s = open_store();
    struct store_alert_row rows[1];
    char err[STORE_ERR_MAX];
    size_t n = 99;

    ck_assert_int_eq(store_flush(s), 0);
    ck_assert_int_eq(store_query_alerts(db_path, rows, 1, &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 0);
    store_close(s);
}
END_TEST

START_TEST(test_store_alerts_report_missing_and_memory_databases)
{
    struct store_alert_row rows[1];
    char err[STORE_ERR_MAX], missing[PATH_MAX + 32];
    size_t n = 99;

    snprintf(missing, sizeof(missing), "%s/none.db", dtest_tmpdir());
    ck_assert_int_eq(store_query_alerts(missing, rows, 1, &n, err, sizeof(err)),
                     -ENOENT);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(
        store_query_alerts(":memory:", rows, 1, &n, err, sizeof(err)),
        -ENOTSUP);
    ck_assert_int_eq(store_query_alerts("", rows, 1, &n, err, sizeof(err)),
                     -EINVAL);
}
END_TEST

static Suite *store_alerts_suite(void)
{
    Suite *s = suite_create("store_alerts");
    TCase *tc = tcase_create("read");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_store_alerts_come_back_newest_first_and_capped);
    tcase_add_test(tc, test_store_alerts_of_an_empty_database_are_none);
    tcase_add_test(tc, test_store_alerts_report_missing_and_memory_databases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dtest_run(store_alerts_suite());
}
