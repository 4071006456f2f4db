/* Helpers shared by the unit suites: test data files and hex strings. */
#ifndef TETHER_TEST_UTIL_H
#define TETHER_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Reads tests/data/NAME (the directory comes from $TETHER_TEST_DATA) into
 * buf; fails the test if it is missing or larger than cap.  Returns its
 * size. */
size_t test_read_data(const char *name, uint8_t *buf, size_t cap);
/* Opens tests/data/NAME for reading text; fails the test if missing. */
FILE *test_open_data(const char *name);
/* Parses hex digit pairs, ignoring spaces; returns the byte count or -1. */
int test_parse_hex(const char *s, uint8_t *out, size_t cap);

#endif
