/* The messages of the tether wire protocol (PROTOCOL.md section 4).
 *
 * Each message is a payload inside one frame; its type byte is in the frame
 * header.  The encoders write a payload into a caller's buffer and return its
 * length; the decoders check the length before reading a byte and fill a
 * struct.  A payload longer than a decoder knows is accepted and its tail
 * ignored (fields are only ever appended within a protocol version); a
 * shorter one is rejected with MSG_ELEN. */
#ifndef TETHER_MSG_H
#define TETHER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* ---- Message types ---- */
/* 0x01..0x3f: MCU to Linux. */
#define MSG_HELLO           0x01
#define MSG_ADC             0x02
#define MSG_HEAP            0x03
#define MSG_LOG             0x04
#define MSG_PONG            0x05
#define MSG_ACK             0x06
#define MSG_NACK            0x07
#define MSG_STATS           0x08
/* 0x40..0x7f: Linux to MCU, each answered by ACK or NACK. */
#define MSG_PING            0x40
#define MSG_SET_RATE        0x41
#define MSG_SET_CHANNELS    0x42
#define MSG_SET_HEAP_PERIOD 0x43
#define MSG_GET_HELLO       0x44
#define MSG_REBOOT          0x45
#define MSG_SET_SCENARIO    0x46
/* 0x80..0x9f: reserved for firmware update.  0x00, 0xa0..0xff: reserved. */
#define MSG_UPDATE_FIRST    0x80
#define MSG_UPDATE_LAST     0x9f

/* ---- Error codes ---- */
#define MSG_ELEN   -1 /* decode: payload shorter than the message */
#define MSG_EINVAL -2 /* decode: a field is out of its documented range */
#define MSG_ENOSPC -3 /* encode: output buffer too small */

/* ---- Enumerations carried in fields ---- */
enum msg_board {
    MSG_BOARD_SIM = 1,        /* tether-sim, the host port */
    MSG_BOARD_MPS2_AN505 = 2, /* Cortex-M33 in QEMU */
    MSG_BOARD_STM32U585 = 3,  /* Arduino UNO Q MCU */
    MSG_BOARD_ATMEGA328P = 4, /* classic Arduino Uno */
};

enum msg_reset {
    MSG_RESET_UNKNOWN = 0,
    MSG_RESET_POWER_ON = 1,
    MSG_RESET_PIN = 2,
    MSG_RESET_SOFTWARE = 3, /* the REBOOT command, or a firmware request */
    MSG_RESET_WATCHDOG = 4,
    MSG_RESET_BROWN_OUT = 5,
    MSG_RESET_FAULT = 6, /* lockup or fault handler */
};

enum msg_scenario {
    MSG_SCEN_NONE = 0,
    MSG_SCEN_STEADY = 1,
    MSG_SCEN_LEAK = 2,
    MSG_SCEN_FRAGMENT = 3,
    MSG_SCEN_SPIKE = 4,
};
#define MSG_SCEN_COUNT 5

enum msg_nack_code {
    MSG_NACK_UNKNOWN_TYPE = 1,
    MSG_NACK_BAD_LENGTH = 2,
    MSG_NACK_BAD_VALUE = 3,
    MSG_NACK_BUSY = 4,
    MSG_NACK_UNSUPPORTED = 5,
};

/* HELLO capability bits. */
#define MSG_CAP_ADC      0x0001u
#define MSG_CAP_HEAP     0x0002u
#define MSG_CAP_SCENARIO 0x0004u
#define MSG_CAP_LOG      0x0008u
#define MSG_CAP_UPDATE   0x0010u /* takes UPD_* (proto/update.h) */
#define MSG_CAP_TESTING  0x0020u /* the running image is on test */

/* ---- Messages and their payload sizes ---- */
#define MSG_HELLO_LEN 30u
struct msg_hello {
    uint8_t proto_version;
    uint8_t board;       /* enum msg_board */
    uint8_t reset_cause; /* enum msg_reset */
    uint8_t adc_bits;
    uint8_t adc_channels;
    uint16_t caps;       /* MSG_CAP_* */
    uint32_t fw_version; /* 0x00MMmmpp */
    uint32_t build_id;
    uint32_t heap_total; /* bytes in the heap arena */
    uint32_t uptime_ms;  /* since reset, wraps after 49.7 days */
    uint32_t time_us;    /* MCU clock when sent */
    uint16_t rx_max;     /* longest payload the MCU accepts */
};

#define MSG_ADC_HDR_LEN      11u
#define MSG_ADC_CHANNELS_MAX 16u
/* Largest number of values one ADC frame carries. */
#define MSG_ADC_VALUES_MAX   ((FRAME_PAYLOAD_MAX - MSG_ADC_HDR_LEN) / 2u)
/* Bytes of an ADC payload with n values. */
#define MSG_ADC_LEN(n)       (MSG_ADC_HDR_LEN + 2u * (n))
struct msg_adc {
    uint32_t t0_us;     /* MCU time of the first scan */
    uint32_t period_us; /* time between scans */
    uint16_t mask;      /* channels in each scan, bit i = channel i */
    uint8_t scans;      /* scans in this batch */
    /* Borrowed: scans * popcount(mask) little-endian u16 values, scan by
     * scan, channels ascending.  Read them with msg_adc_value(). */
    const uint8_t *values;
};

#define MSG_HEAP_LEN 40u
struct msg_heap {
    uint32_t t_us;
    uint32_t total;    /* arena bytes */
    uint32_t free;     /* total - used */
    uint32_t used;     /* bytes in allocated blocks, headers included */
    uint32_t largest;  /* largest allocation that would succeed now */
    uint32_t min_free; /* lowest free since reset (low watermark) */
    uint32_t allocs;   /* successful allocations since reset */
    uint32_t frees;
    uint32_t failures; /* allocations refused since reset */
    uint16_t blocks;   /* allocated blocks now */
    uint8_t scenario;  /* enum msg_scenario running */
};

#define MSG_LOG_HDR_LEN  5u
#define MSG_LOG_TEXT_MAX 64u
struct msg_log {
    uint32_t t_us;
    uint8_t level;    /* syslog priority 0..7 */
    const char *text; /* borrowed, not NUL-terminated */
    size_t text_len;  /* at most MSG_LOG_TEXT_MAX */
};

#define MSG_PING_LEN 4u
#define MSG_PONG_LEN 8u
struct msg_pong {
    uint32_t token; /* copied from the PING */
    uint32_t t_us;
};

#define MSG_ACK_LEN  3u
#define MSG_NACK_LEN 4u
struct msg_ack {
    uint16_t seq;  /* sequence number of the command answered */
    uint8_t type;  /* its type */
    uint8_t error; /* NACK only: enum msg_nack_code */
};

#define MSG_STATS_LEN 40u
struct msg_stats {
    uint32_t t_us;
    uint32_t tx_frames;  /* frames queued for sending */
    uint32_t tx_dropped; /* frames dropped because the queue was full */
    uint32_t rx_frames_ok;
    uint32_t rx_crc_errors;
    uint32_t rx_cobs_errors;
    uint32_t rx_oversize;
    uint32_t rx_version_errors;
    uint32_t rx_overruns;  /* bytes lost because the RX FIFO was full */
    uint32_t scans_missed; /* ADC scans skipped because the loop was late */
};

#define MSG_SET_RATE_LEN        2u
#define MSG_SET_CHANNELS_LEN    2u
#define MSG_SET_HEAP_PERIOD_LEN 2u
#define MSG_SET_SCENARIO_LEN    5u
struct msg_scenario_cmd {
    uint8_t id;     /* enum msg_scenario */
    uint32_t param; /* leak: bytes per second; 0 = the default */
};

/* ---- Encoders: return the payload length or MSG_ENOSPC ---- */
int msg_encode_hello(uint8_t *out, size_t cap, const struct msg_hello *m);
int msg_encode_heap(uint8_t *out, size_t cap, const struct msg_heap *m);
int msg_encode_log(uint8_t *out, size_t cap, const struct msg_log *m);
int msg_encode_pong(uint8_t *out, size_t cap, const struct msg_pong *m);
int msg_encode_ack(uint8_t *out, size_t cap, const struct msg_ack *m);
int msg_encode_nack(uint8_t *out, size_t cap, const struct msg_ack *m);
int msg_encode_stats(uint8_t *out, size_t cap, const struct msg_stats *m);
int msg_encode_scenario(uint8_t *out, size_t cap,
                        const struct msg_scenario_cmd *m);
/* PING, SET_RATE, SET_CHANNELS, SET_HEAP_PERIOD: one integer each. */
int msg_encode_u16(uint8_t *out, size_t cap, uint16_t v);
int msg_encode_u32(uint8_t *out, size_t cap, uint32_t v);
/* Writes the ADC header; the caller writes the values after it with
 * msg_adc_put_value().  Returns MSG_ADC_HDR_LEN or MSG_ENOSPC. */
int msg_encode_adc_hdr(uint8_t *out, size_t cap, const struct msg_adc *m);
void msg_adc_put_value(uint8_t *payload, size_t index, uint16_t value);

/* ---- Decoders: return 0, MSG_ELEN or MSG_EINVAL ---- */
int msg_decode_hello(const uint8_t *p, size_t n, struct msg_hello *m);
/* Also checks that n matches the header's scan count and mask exactly. */
int msg_decode_adc(const uint8_t *p, size_t n, struct msg_adc *m);
int msg_decode_heap(const uint8_t *p, size_t n, struct msg_heap *m);
int msg_decode_log(const uint8_t *p, size_t n, struct msg_log *m);
int msg_decode_pong(const uint8_t *p, size_t n, struct msg_pong *m);
int msg_decode_ack(const uint8_t *p, size_t n, struct msg_ack *m);
int msg_decode_nack(const uint8_t *p, size_t n, struct msg_ack *m);
int msg_decode_stats(const uint8_t *p, size_t n, struct msg_stats *m);
int msg_decode_scenario(const uint8_t *p, size_t n, struct msg_scenario_cmd *m);
int msg_decode_u16(const uint8_t *p, size_t n, uint16_t *v);
int msg_decode_u32(const uint8_t *p, size_t n, uint32_t *v);

/* Channels in a mask. */
unsigned msg_popcount16(uint16_t mask);
/* Value of scan s, k-th channel of the mask, from a decoded ADC batch. */
uint16_t msg_adc_value(const struct msg_adc *m, unsigned scan, unsigned k);

/* A short name for a message type ("HELLO", "SET_RATE"), or NULL. */
const char *msg_type_name(uint8_t type);
/* A short name for a scenario id, or NULL. */
const char *msg_scenario_name(uint8_t id);

#endif
