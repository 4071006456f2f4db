/* SHA-256 as FIPS 180-4 section 6.2 specifies it.  See sha256.h.
 *
 * The message schedule is kept as a 16-word ring rather than 64 words, so
 * the stack stays small on an MCU.  Every shift is done on uint32_t: int
 * may be 16 bits wide. */
#include "sha256.h"

#include <string.h>

/* The first 32 bits of the fractional parts of the cube roots of the
 * first 64 primes (FIPS 180-4 section 4.2.2). */
static const uint32_t k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu,
    0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u,
    0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u,
    0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu,
    0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u,
    0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u,
    0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u, 0x1e376c08u,
    0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu,
    0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

/* The first 32 bits of the fractional parts of the square roots of the
 * first 8 primes (section 5.3.3). */
static const uint32_t h0[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32u - n));
}

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)((v >> 16) & 0xffu);
    p[2] = (uint8_t)((v >> 8) & 0xffu);
    p[3] = (uint8_t)(v & 0xffu);
}

/* Section 6.2.2: one 64-byte block into the chaining state. */
static void compress(uint32_t h[8], const uint8_t *block)
{
    uint32_t w[16];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    uint32_t e = h[4], f = h[5], g = h[6], hh = h[7];

    for (unsigned t = 0; t < 64; t++) {
        uint32_t wt, t1, t2;

        if (t < 16) {
            wt = get_be32(&block[4 * t]);
        } else {
            uint32_t w15 = w[(t - 15) & 15u], w2 = w[(t - 2) & 15u];
            uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
            uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);

            wt = s1 + w[(t - 7) & 15u] + s0 + w[t & 15u];
        }
        w[t & 15u] = wt;
        t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) +
             ((e & f) ^ (~e & g)) + k[t] + wt;
        t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) +
             ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void sha256_init(struct sha256 *s)
{
    memcpy(s->h, h0, sizeof(s->h));
    s->bytes = 0;
    s->used = 0;
}

void sha256_update(struct sha256 *s, const uint8_t *p, size_t n)
{
    s->bytes += n;
    while (n > 0) {
        size_t take = SHA256_BLOCK_LEN - s->used;

        if (s->used == 0 && n >= SHA256_BLOCK_LEN) {
            /* Whole blocks straight from the input, without a copy. */
            compress(s->h, p);
            p += SHA256_BLOCK_LEN;
            n -= SHA256_BLOCK_LEN;
            continue;
        }
        if (take > n)
            take = n;
        memcpy(&s->block[s->used], p, take);
        s->used = (uint8_t)(s->used + take);
        p += take;
        n -= take;
        if (s->used == SHA256_BLOCK_LEN) {
            compress(s->h, s->block);
            s->used = 0;
        }
    }
}

/* Section 5.1.1: a 1 bit, zeros, and the message length in bits as a
 * big-endian 64-bit number end the last block. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN])
{
    uint64_t bits = s->bytes * 8u;

    s->block[s->used++] = 0x80u;
    if (s->used > SHA256_BLOCK_LEN - 8u) {
        memset(&s->block[s->used], 0, SHA256_BLOCK_LEN - s->used);
        compress(s->h, s->block);
        s->used = 0;
    }
    memset(&s->block[s->used], 0, SHA256_BLOCK_LEN - 8u - s->used);
    put_be32(&s->block[56], (uint32_t)(bits >> 32));
    put_be32(&s->block[60], (uint32_t)(bits & 0xffffffffu));
    compress(s->h, s->block);
    for (unsigned i = 0; i < 8; i++)
        put_be32(&out[4 * i], s->h[i]);
}

void sha256_digest(const uint8_t *p, size_t n, uint8_t out[SHA256_LEN])
{
    struct sha256 s;

    sha256_init(&s);
    sha256_update(&s, p, n);
    sha256_final(&s, out);
}
