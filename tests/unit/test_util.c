/* Helpers shared by the unit suites.  See test_util.h. */
#include "test_util.h"

#include <check.h>
#include <ctype.h>
#include <stdlib.h>

static FILE *open_data(const char *name, const char *mode)
{
    const char *dir = getenv("TETHER_TEST_DATA");
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/data", name);
    f = fopen(path, mode);
    ck_assert_msg(f != NULL, "cannot open test data %s", path);
    return f;
}

size_t test_read_data(const char *name, uint8_t *buf, size_t cap)
{
    FILE *f = open_data(name, "rb");
    size_t n = fread(buf, 1, cap, f);

    ck_assert_msg(feof(f), "test data %s is larger than %zu bytes", name, cap);
    fclose(f);
    return n;
}

FILE *test_open_data(const char *name)
{
    return open_data(name, "r");
}

static int nibble(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int test_parse_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;

    while (*s != '\0') {
        int hi, lo;

        if (isspace((unsigned char)*s)) {
            s++;
            continue;
        }
        hi = nibble((unsigned char)s[0]);
        lo = s[1] ? nibble((unsigned char)s[1]) : -1;
        if (hi < 0 || lo < 0 || n >= cap)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    return (int)n;
}
