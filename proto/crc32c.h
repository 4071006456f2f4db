/* CRC-32C (Castagnoli), the frame check of the tether wire protocol.
 *
 * Catalogue parameters: width=32 poly=0x1edc6f41 init=0xffffffff refin=true
 * refout=true xorout=0xffffffff check=0xe3069283 (the CRC of the ASCII bytes
 * "123456789").  Table-driven four bits at a time: the 64-byte table is small
 * enough for the ATmega328P, whose const data lives in its 2 KB of RAM. */
#ifndef TETHER_CRC32C_H
#define TETHER_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define CRC32C_INIT  0xffffffffu /* state before the first byte */
#define CRC32C_CHECK 0xe3069283u /* crc32c("123456789", 9) */

/* Folds n bytes into a running state started at CRC32C_INIT. */
uint32_t crc32c_update(uint32_t state, const uint8_t *p, size_t n);

/* Turns a running state into the CRC value that goes on the wire. */
static inline uint32_t crc32c_final(uint32_t state)
{
    return state ^ 0xffffffffu;
}

/* The CRC of n bytes in one call. */
uint32_t crc32c(const uint8_t *p, size_t n);

#endif
