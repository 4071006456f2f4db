/* Little-endian get/put helpers for wire fields.
 *
 * Every multi-byte field on the wire is little-endian.  Fields are read and
 * written one byte at a time so the code is independent of the host's byte
 * order and alignment; no struct is ever copied to or from the wire.
 * Callers check lengths before calling these. */
#ifndef TETHER_WIRE_H
#define TETHER_WIRE_H

#include <stdint.h>

static inline void wire_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xffu);
    p[1] = (uint8_t)(v >> 8);
}

static inline void wire_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xffu);
    p[1] = (uint8_t)((v >> 8) & 0xffu);
    p[2] = (uint8_t)((v >> 16) & 0xffu);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint16_t wire_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | ((uint16_t)p[1] << 8));
}

static inline uint32_t wire_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

#endif
