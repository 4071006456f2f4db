/* SHA-256 (FIPS 180-4), the hash that names a firmware image's body.
 *
 * Both sides need it: tetherctl writes it into an image's header, the MCU
 * hashes what it stored before it will boot it, and the bootloader checks
 * a slot again before it starts it.  So it is freestanding like the rest
 * of proto/, uses no more than a few hundred bytes of state on the stack,
 * takes its input in pieces of any size (a slot is read back in small
 * blocks), and is clean for a 16-bit int.  It is not hardened against
 * timing side channels: nothing here is secret. */
#ifndef TETHER_SHA256_H
#define TETHER_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN       32u /* bytes of a digest */
#define SHA256_BLOCK_LEN 64u /* bytes of one compression block */

/* A hash in progress.  Caller-owned; no resources to release. */
struct sha256 {
    uint32_t h[8];                   /* chaining state */
    uint64_t bytes;                  /* message bytes so far */
    uint8_t block[SHA256_BLOCK_LEN]; /* partial block */
    uint8_t used;                    /* bytes in block */
};

/* Starts a new hash. */
void sha256_init(struct sha256 *s);
/* Adds n bytes; pieces may have any size, including 0. */
void sha256_update(struct sha256 *s, const uint8_t *p, size_t n);
/* Writes the digest to out; s must be started again before reuse. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);
/* The digest of n bytes in one call. */
void sha256_digest(const uint8_t *p, size_t n, uint8_t out[SHA256_LEN]);

#endif
