/* Helpers shared by the daemon's Check runners. */
#ifndef TETHER_DAEMON_TEST_UTIL_H
#define TETHER_DAEMON_TEST_UTIL_H

#include <check.h>
#include <stddef.h>

/* Makes a fresh directory under $TMPDIR (or /tmp) for one test and returns
 * its path (static storage, valid until the next call). */
const char *dtest_tmpdir(void);

/* Runs one suite and returns the process exit status (0 when all
 * passed). */
int dtest_run(Suite *s);

#endif
