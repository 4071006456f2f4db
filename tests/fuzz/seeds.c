/* Writes the generated seeds of the fuzz corpora (tests/fuzz/corpus/,
 * files named gen-*): real frames, message bodies and firmware images
 * made by proto/'s own encoders, in the input layout each target reads
 * (see the top of each tests/fuzz/fuzz_*.c).  The same run always writes
 * the same bytes.
 *
 * Usage: fuzz-seeds CORPUS_DIR (which holds deframer/, msg/, image/). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "frame.h"
#include "msg.h"
#include "sha256.h"
#include "update.h"

#define SEED_MAX      4096
#define SEED_PATH_MAX 4096

struct seed {
    uint8_t b[SEED_MAX];
    size_t n;
};

static const char *root;
static int failures;

static void put(struct seed *s, const void *p, size_t n)
{
    if (s->n + n > SEED_MAX) {
        fprintf(stderr, "fuzz-seeds: a seed outgrew %d bytes\n", SEED_MAX);
        exit(1);
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void put_byte(struct seed *s, uint8_t b)
{
    put(s, &b, 1);
}

static void save(const char *target, const char *name, const struct seed *s)
{
    char path[SEED_PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/gen-%s", root, target, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
        fprintf(stderr, "fuzz-seeds: cannot write %s\n", path);
        failures++;
    }
}

/* ---- Payloads ---- */

struct payload {
    const char *name;
    uint8_t type;
    uint8_t b[FRAME_PAYLOAD_MAX];
    int n;
};

static const uint8_t body3[3] = {'a', 'b', 'c'};

static struct image_hdr image_for(const uint8_t *body, size_t n,
                                  uint32_t version)
{
    struct image_hdr h = {
        .magic = IMAGE_MAGIC,
        .hdr_version = IMAGE_HDR_VERSION,
        .board = MSG_BOARD_SIM,
        .fw_version = version,
        .build_id = 0x1a2b3c4d,
        .body_len = (uint32_t)n,
    };

    sha256_digest(body, n, h.hash);
    return h;
}

static size_t payloads(struct payload *p)
{
    struct msg_hello hello = {1,
                              MSG_BOARD_SIM,
                              MSG_RESET_POWER_ON,
                              14,
                              4,
                              MSG_CAP_ADC | MSG_CAP_HEAP | MSG_CAP_UPDATE,
                              0x000100,
                              0x1a2b3c4d,
                              16384,
                              1234,
                              987654,
                              FRAME_PAYLOAD_MAX};
    struct msg_adc adc = {1000, 10000, 0x000f, 3, NULL};
    struct msg_heap heap = {5000, 16384, 14824, 1560, 14264,          13984,
                            13,   7,     0,     6,    MSG_SCEN_STEADY};
    struct msg_log lg = {777, 6, "boot tether-fw 0.1.0", 20};
    struct msg_pong pong = {0xdeadbeef, 4242};
    struct msg_ack ack = {17, MSG_SET_RATE, 0};
    struct msg_ack nack = {18, MSG_SET_CHANNELS, MSG_NACK_BAD_VALUE};
    struct msg_stats st = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    struct msg_scenario_cmd sc = {MSG_SCEN_LEAK, 256};
    struct msg_upd_data ud = {0, body3, sizeof(body3)};
    struct msg_upd_status us = {600,
                                MSG_UPD_BEGIN,
                                MSG_UPD_RECEIVING,
                                MSG_UPD_OK,
                                MSG_UPD_BOOT_SLOT1,
                                242,
                                0,
                                3,
                                0x000100,
                                4};
    struct image_hdr ih = image_for(body3, sizeof(body3), 0x000200);
    size_t k = 0;

    p[k] = (struct payload){"hello", MSG_HELLO, {0}, 0};
    p[k].n = msg_encode_hello(p[k].b, sizeof(p[k].b), &hello);
    k++;
    p[k] = (struct payload){"adc", MSG_ADC, {0}, 0};
    p[k].n = msg_encode_adc_hdr(p[k].b, sizeof(p[k].b), &adc);
    for (unsigned i = 0; i < 12; i++)
        msg_adc_put_value(p[k].b, i, (uint16_t)(i * 1365));
    p[k].n = (int)MSG_ADC_LEN(12);
    k++;
    p[k] = (struct payload){"heap", MSG_HEAP, {0}, 0};
    p[k].n = msg_encode_heap(p[k].b, sizeof(p[k].b), &heap);
    k++;
    p[k] = (struct payload){"log", MSG_LOG, {0}, 0};
    p[k].n = msg_encode_log(p[k].b, sizeof(p[k].b), &lg);
    k++;
    p[k] = (struct payload){"pong", MSG_PONG, {0}, 0};
    p[k].n = msg_encode_pong(p[k].b, sizeof(p[k].b), &pong);
    k++;
    p[k] = (struct payload){"ack", MSG_ACK, {0}, 0};
    p[k].n = msg_encode_ack(p[k].b, sizeof(p[k].b), &ack);
    k++;
    p[k] = (struct payload){"nack", MSG_NACK, {0}, 0};
    p[k].n = msg_encode_nack(p[k].b, sizeof(p[k].b), &nack);
    k++;
    p[k] = (struct payload){"stats", MSG_STATS, {0}, 0};
    p[k].n = msg_encode_stats(p[k].b, sizeof(p[k].b), &st);
    k++;
    p[k] = (struct payload){"ping", MSG_PING, {0}, 0};
    p[k].n = msg_encode_u32(p[k].b, sizeof(p[k].b), 0x01020304);
    k++;
    p[k] = (struct payload){"set-rate", MSG_SET_RATE, {0}, 0};
    p[k].n = msg_encode_u16(p[k].b, sizeof(p[k].b), 250);
    k++;
    p[k] = (struct payload){"get-hello", MSG_GET_HELLO, {0}, 0};
    k++;
    p[k] = (struct payload){"scenario", MSG_SET_SCENARIO, {0}, 0};
    p[k].n = msg_encode_scenario(p[k].b, sizeof(p[k].b), &sc);
    k++;
    p[k] = (struct payload){"upd-begin", MSG_UPD_BEGIN, {0}, 0};
    p[k].n = image_encode(p[k].b, sizeof(p[k].b), &ih);
    k++;
    p[k] = (struct payload){"upd-data", MSG_UPD_DATA, {0}, 0};
    p[k].n = msg_encode_upd_data(p[k].b, sizeof(p[k].b), &ud);
    k++;
    p[k] = (struct payload){"upd-status", MSG_UPD_STATUS, {0}, 0};
    p[k].n = msg_encode_upd_status(p[k].b, sizeof(p[k].b), &us);
    k++;
    for (size_t i = 0; i < k; i++)
        if (p[i].n < 0) {
            fprintf(stderr, "fuzz-seeds: %s does not encode\n", p[i].name);
            exit(1);
        }
    return k;
}

/* ---- Seeds ---- */

static void put_frame(struct seed *s, const struct payload *p, uint16_t seq)
{
    uint8_t wire[FRAME_WIRE_MAX];
    int n = frame_encode(wire, sizeof(wire), p->type, seq, p->b, (size_t)p->n);

    if (n < 0) {
        fprintf(stderr, "fuzz-seeds: %s does not frame\n", p->name);
        exit(1);
    }
    put(s, wire, (size_t)n);
}

/* msg: the frame before its CRC. */
static void msg_seeds(const struct payload *p, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        struct seed s = {.n = 0};

        put_byte(&s, FRAME_VERSION);
        put_byte(&s, p[i].type);
        put_byte(&s, (uint8_t)i);
        put_byte(&s, 0);
        put(&s, p[i].b, (size_t)p[i].n);
        save("msg", p[i].name, &s);
    }
}

/* deframer: a receive buffer, where the second receiver joins, a
 * stream. */
static void deframer_seeds(const struct payload *p, size_t k)
{
    static const uint8_t garbage[] = {0x13, 0x00, 0x00, 0x05, 0xff, 0x37};
    struct seed s = {.n = 0};

    /* Every message, back to back, after a delimiter. */
    put_byte(&s, 0xff);
    put_byte(&s, 0x00);
    put_byte(&s, 0x21);
    put_byte(&s, 0x00);
    for (size_t i = 0; i < k; i++)
        put_frame(&s, &p[i], (uint16_t)i);
    save("deframer", "all-messages", &s);

    /* Garbage between frames, a frame cut short, and a receiver
     * (MCU-sized, 64-byte payloads) too small for the ADC batch. */
    s.n = 0;
    put_byte(&s, 64);
    put_byte(&s, 0x00);
    put_byte(&s, 0x03);
    put(&s, garbage, sizeof(garbage));
    put_frame(&s, &p[0], 0);
    put_frame(&s, &p[1], 1);
    s.n -= 7; /* the ADC frame loses its tail and delimiter */
    put(&s, garbage, sizeof(garbage));
    put_frame(&s, &p[2], 2);
    save("deframer", "garbage-cut-small", &s);
}

/* image: options, HELLO, then the image file. */
static void image_seed(const char *name, uint8_t opts, uint8_t board,
                       uint16_t caps, uint32_t running, struct image_hdr h,
                       const uint8_t *body, size_t n)
{
    struct seed s = {.n = 0};
    uint8_t hdr[IMAGE_HDR_LEN];

    put_byte(&s, opts);
    put_byte(&s, board);
    put_byte(&s, (uint8_t)caps);
    put_byte(&s, (uint8_t)(caps >> 8));
    for (int i = 0; i < 4; i++)
        put_byte(&s, (uint8_t)(running >> (8 * i)));
    image_encode(hdr, sizeof(hdr), &h);
    put(&s, hdr, sizeof(hdr));
    put(&s, body, n);
    save("image", name, &s);
}

static void image_seeds(void)
{
    uint8_t body[512];
    struct image_hdr h;
    const uint8_t hello = 0x04, uart = 0x02, force = 0x01, why = 0xe0;

    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 37 + 11);
    h = image_for(body, sizeof(body), 0x000200);
    image_seed("valid-uart", why | hello | uart, MSG_BOARD_SIM, MSG_CAP_UPDATE,
               0x000100, h, body, sizeof(body));
    image_seed("older-short-why", 0x40 | hello, MSG_BOARD_SIM, 0, 0x000300, h,
               body, sizeof(body));
    image_seed("forced-no-hello", why | force, 0, 0, 0, h, body, sizeof(body));
    h.flags = IMAGE_FLAG_RAM;
    h.load_addr = 0x20000000;
    h.entry = 0x100;
    h.board = MSG_BOARD_MPS2_AN505;
    image_seed("ram-load", why | hello, MSG_BOARD_MPS2_AN505, MSG_CAP_UPDATE,
               0x000100, h, body, sizeof(body));
    h = image_for(body, sizeof(body), 0x000200);
    h.body_len = sizeof(body) + 1;
    image_seed("truncated", why | hello, MSG_BOARD_SIM, 0, 0x000100, h, body,
               sizeof(body));
}

int main(int argc, char **argv)
{
    struct payload p[32];
    size_t k;

    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-seeds CORPUS_DIR\n");
        return 2;
    }
    root = argv[1];
    k = payloads(p);
    msg_seeds(p, k);
    deframer_seeds(p, k);
    image_seeds();
    return failures == 0 ? 0 : 1;
}
