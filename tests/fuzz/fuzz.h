/* What the libFuzzer targets in tests/fuzz/ share: the entry point
 * libFuzzer calls, and the check that turns a broken invariant into a
 * crash libFuzzer reports with its input.  A check is not an assert: it
 * stays on whatever NDEBUG says, because it is the test. */
#ifndef TETHER_FUZZ_H
#define TETHER_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif
