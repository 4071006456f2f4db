/* libFuzzer target: tetherd's configuration (daemon/config.c), the INI
 * file and the command-line flags.
 *
 * Input: the text of the file, then optionally a NUL byte and the flags,
 * one word per NUL-separated piece (at most FLAGS_MAX).  The file is
 * written to a scratch directory and read with config_load() as
 * `tetherd --config FILE FLAGS...` would.  Words that could name another
 * --config are left out: the flag would have tetherd open any file the
 * input names, which is not the parser's business.
 *
 * Checked:
 * - the result is 0, CONFIG_EXIT (--help, --version: printed to a stdout
 *   that goes nowhere) or CONFIG_EINVAL with a message that fits its
 *   buffer;
 * - a configuration that loads prints (config_print()) as a file that
 *   loads again, with no flags, and prints the same text: every value a
 *   file or a flag can set survives the round trip, as config.c promises;
 * - config_reload() of the same file and flags gives the same
 *   configuration. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

#define FLAGS_MAX 16
#define PRINT_MAX 65536 /* config_print()'s text, with room to spare */

static char dir[256], file_in[300], file_out[300];
static struct config c1, c2;

static void remove_scratch(void)
{
    unlink(file_in);
    unlink(file_out);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    int devnull;

    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "%s/tether-fuzz-config.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(file_in, sizeof(file_in), "%s/in.conf", dir);
    snprintf(file_out, sizeof(file_out), "%s/printed.conf", dir);
    /* --help and --version print to stdout; libFuzzer reports on
     * stderr. */
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    FUZZ_CHECK(devnull >= 0);
    FUZZ_CHECK(dup2(devnull, STDOUT_FILENO) == STDOUT_FILENO);
    log_set_fd(devnull);
    atexit(remove_scratch);
    return 0;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "we");

    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(p, 1, n, f) == n);
    FUZZ_CHECK(fclose(f) == 0);
}

/* config_print() into buf; returns the length. */
static size_t print_to(const struct config *c, char *buf, size_t cap)
{
    FILE *f = fmemopen(buf, cap, "w");
    long n;

    FUZZ_CHECK(f != NULL);
    config_print(c, f);
    n = ftell(f);
    FUZZ_CHECK(fclose(f) == 0);
    FUZZ_CHECK(n >= 0 && (size_t)n < cap - 1);
    return (size_t)n;
}

/* The text after the first line, which names the file read. */
static const char *body(const char *text)
{
    const char *nl = strchr(text, '\n');

    FUZZ_CHECK(nl != NULL);
    return nl + 1;
}

/* Whether word could be taken as --config (getopt_long takes any
 * unambiguous prefix, and --config=FILE). */
static bool names_config(const char *word)
{
    size_t n;

    if (strncmp(word, "--", 2) != 0)
        return false;
    n = strcspn(word + 2, "=");
    return n > 0 && n <= strlen("config") &&
           strncmp(word + 2, "config", n) == 0;
}

static void check_err(int r, const char *err)
{
    FUZZ_CHECK(r == 0 || r == CONFIG_EXIT || r == CONFIG_EINVAL);
    FUZZ_CHECK(memchr(err, '\0', CONFIG_ERR_MAX) != NULL);
    if (r == CONFIG_EINVAL)
        FUZZ_CHECK(err[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text1[PRINT_MAX], text2[PRINT_MAX];
    char *argv[3 + FLAGS_MAX + 1], *words, *w, *end, *err;
    const uint8_t *nul = memchr(data, 0, size);
    size_t file_len = nul != NULL ? (size_t)(nul - data) : size;
    int argc = 3, r;

    /* The flags, as NUL-terminated words of their own. */
    words = malloc(size - file_len + 1);
    err = malloc(CONFIG_ERR_MAX);
    FUZZ_CHECK(words != NULL && err != NULL);
    memcpy(words, data + file_len, size - file_len);
    words[size - file_len] = '\0';
    argv[0] = "tetherd";
    argv[1] = "--config";
    argv[2] = file_in;
    end = words + (size - file_len);
    for (w = nul != NULL ? words + 1 : end; w < end && argc < 3 + FLAGS_MAX;
         w += strlen(w) + 1)
        if (!names_config(w))
            argv[argc++] = w;
    argv[argc] = NULL;

    write_file(file_in, data, file_len);
    r = config_load(&c1, NULL, argc, argv, err, CONFIG_ERR_MAX);
    check_err(r, err);
    if (r != 0)
        goto out;

    /* What prints reads back, and prints the same. */
    print_to(&c1, text1, sizeof(text1));
    write_file(file_out, text1, strlen(text1));
    argv[2] = file_out;
    r = config_load(&c2, NULL, 3, argv, err, CONFIG_ERR_MAX);
    if (r != 0)
        fprintf(stderr, "printed configuration does not load: %s\n", err);
    FUZZ_CHECK(r == 0);
    print_to(&c2, text2, sizeof(text2));
    FUZZ_CHECK(strcmp(body(text1), body(text2)) == 0);

    /* A reload of the same file and flags changes nothing. */
    argv[2] = file_in;
    r = config_reload(&c1, argc, argv, err, CONFIG_ERR_MAX);
    if (r != 0)
        fprintf(stderr, "reload failed: %s\n", err);
    FUZZ_CHECK(r == 0);
    print_to(&c1, text2, sizeof(text2));
    FUZZ_CHECK(strcmp(text1, text2) == 0);
out:
    free(err);
    free(words);
    return 0;
}
