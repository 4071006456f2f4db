/* SHA-256 against the FIPS 180-2 / NIST example vectors (the empty
 * message, "abc", the two-block 448- and 896-bit messages, and one million
 * 'a'), against digests at every padding boundary, and fed in pieces of
 * every size: a split must never change the digest. */
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "suites.h"
#include "test_util.h"

static void digest_hex(const char *hex, uint8_t out[SHA256_LEN])
{
    ck_assert_int_eq(test_parse_hex(hex, out, SHA256_LEN), (int)SHA256_LEN);
}

static void check_text(const char *msg, const char *hex)
{
    uint8_t want[SHA256_LEN], got[SHA256_LEN];

    digest_hex(hex, want);
    sha256_digest((const uint8_t *)msg, strlen(msg), got);
    ck_assert_mem_eq(got, want, SHA256_LEN);
}

START_TEST(test_sha256_nist_short_messages_match)
{
    check_text("", "e3b0c44298fc1c149afbf4c8996fb924"
                   "27ae41e4649b934ca495991b7852b855");
    check_text("abc", "ba7816bf8f01cfea414140de5dae2223"
                      "b00361a396177a9cb410ff61f20015ad");
    check_text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
               "248d6a61d20638b8e5c026930c3e6039"
               "a33ce45964ff2167f6ecedd419db06c1");
    check_text("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
               "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
               "cf5b16a778af8380036ce59e7b049237"
               "0b249b11e8f07a51afac45037afee9d1");
}
END_TEST

START_TEST(test_sha256_one_million_a_matches_in_uneven_pieces)
{
    static const size_t pieces[] = {1, 63, 64, 65, 1000, 4096, 7};
    uint8_t a[4096], want[SHA256_LEN], got[SHA256_LEN];
    struct sha256 s;
    size_t left = 1000000, i = 0;

    memset(a, 'a', sizeof(a));
    digest_hex("cdc76e5c9914fb9281a1c7e284d73e67"
               "f1809a48a497200e046d39ccc7112cd0",
               want);
    sha256_init(&s);
    while (left > 0) {
        size_t n = pieces[i++ % (sizeof(pieces) / sizeof(pieces[0]))];

        if (n > left)
            n = left;
        sha256_update(&s, a, n);
        left -= n;
    }
    sha256_final(&s, got);
    ck_assert_mem_eq(got, want, SHA256_LEN);
}
END_TEST

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 7u + 3u) & 0xffu);
}

/* Digests of the first n bytes of pattern(), around the lengths where the
 * padding needs one block or two (55, 56), a whole block, and more. */
START_TEST(test_sha256_padding_boundaries_match_reference_digests)
{
    static const struct {
        size_t n;
        const char *hex;
    } ref[] = {
        {55,
         "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
        {56,
         "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
        {63,
         "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
        {64,
         "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
        {65,
         "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
        {119,
         "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
        {120,
         "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
        {128,
         "d2742f1f4ac6bb7ca2b239ee18402ba8b3f9f8e652d2a72973c2b9ba11c08cf6"},
        {200,
         "2c7e18c942ef065b526a2d4e5546283749cd3ddfb51d8fc71f42717363685f46"},
    };
    uint8_t buf[200], want[SHA256_LEN], got[SHA256_LEN];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = pattern(i);
    for (size_t r = 0; r < sizeof(ref) / sizeof(ref[0]); r++) {
        digest_hex(ref[r].hex, want);
        sha256_digest(buf, ref[r].n, got);
        ck_assert_msg(memcmp(got, want, SHA256_LEN) == 0,
                      "digest of %zu bytes differs", ref[r].n);
    }
}
END_TEST

/* Every two-way split and a run of random splits of 300 bytes give the
 * one-call digest, and empty updates change nothing. */
START_TEST(test_sha256_any_split_gives_the_same_digest)
{
    uint8_t buf[300], whole[SHA256_LEN], got[SHA256_LEN];
    struct sha256 s;
    unsigned seed = 12345;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = pattern(i * 13u);
    sha256_digest(buf, sizeof(buf), whole);
    for (size_t cut = 0; cut <= sizeof(buf); cut++) {
        sha256_init(&s);
        sha256_update(&s, buf, cut);
        sha256_update(&s, buf + cut, 0);
        sha256_update(&s, buf + cut, sizeof(buf) - cut);
        sha256_final(&s, got);
        ck_assert_msg(memcmp(got, whole, SHA256_LEN) == 0, "cut at %zu", cut);
    }
    for (int round = 0; round < 200; round++) {
        size_t at = 0;

        sha256_init(&s);
        while (at < sizeof(buf)) {
            size_t n;

            seed = seed * 1103515245u + 12345u;
            n = (seed >> 16) % 140u;
            if (n > sizeof(buf) - at)
                n = sizeof(buf) - at;
            sha256_update(&s, buf + at, n);
            at += n;
        }
        sha256_final(&s, got);
        ck_assert_mem_eq(got, whole, SHA256_LEN);
    }
}
END_TEST

START_TEST(test_sha256_one_flipped_bit_changes_the_digest)
{
    uint8_t buf[100], a[SHA256_LEN], b[SHA256_LEN];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = pattern(i);
    sha256_digest(buf, sizeof(buf), a);
    buf[57] ^= 0x01u;
    sha256_digest(buf, sizeof(buf), b);
    ck_assert(memcmp(a, b, SHA256_LEN) != 0);
}
END_TEST

Suite *sha256_suite(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("vectors");
    TCase *split = tcase_create("split");

    tcase_add_test(tc, test_sha256_nist_short_messages_match);
    tcase_add_test(tc, test_sha256_one_million_a_matches_in_uneven_pieces);
    tcase_add_test(tc, test_sha256_padding_boundaries_match_reference_digests);
    suite_add_tcase(s, tc);
    tcase_add_test(split, test_sha256_any_split_gives_the_same_digest);
    tcase_add_test(split, test_sha256_one_flipped_bit_changes_the_digest);
    suite_add_tcase(s, split);
    return s;
}
