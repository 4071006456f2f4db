/* Helpers shared by the daemon's Check runners.  See daemon_test_util.h. */
#include "daemon_test_util.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIRS_MAX 64 /* temp dirs one test process may make */

static char dirs[DIRS_MAX][PATH_MAX];
static int ndirs;

static int remove_one(const char *path, const struct stat *st, int type,
                      struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* Runs at exit of each test process (Check forks one per test), so every
 * directory a test made goes with it. */
static void remove_dirs(void)
{
    for (int i = 0; i < ndirs; i++)
        nftw(dirs[i], remove_one, 8, FTW_DEPTH | FTW_PHYS);
    ndirs = 0;
}

const char *dtest_tmpdir(void)
{
    static char path[PATH_MAX];
    const char *base = getenv("TMPDIR");

    snprintf(path, sizeof(path), "%s/tether-test-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(path));
    if (ndirs == 0)
        atexit(remove_dirs);
    if (ndirs < DIRS_MAX)
        memcpy(dirs[ndirs++], path, sizeof(path));
    return path;
}

int dtest_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
