/* CRC-32C, reflected, four bits per table step.  See crc32c.h. */
#include "crc32c.h"

/* table[i] is the reflected polynomial 0x82f63b78 applied to i for 4 bits. */
static const uint32_t table[16] = {
    0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u,
    0x417b1dbcu, 0x5125dad3u, 0x61c69362u, 0x7198540du,
    0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
    0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u,
};

uint32_t crc32c_update(uint32_t state, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        state ^= p[i];
        state = (state >> 4) ^ table[state & 0x0fu];
        state = (state >> 4) ^ table[state & 0x0fu];
    }
    return state;
}

uint32_t crc32c(const uint8_t *p, size_t n)
{
    return crc32c_final(crc32c_update(CRC32C_INIT, p, n));
}
