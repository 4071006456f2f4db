/* simavr as a test rig for the ATmega328P image.  See avrsim.h.
 *
 * simavr's USART model delivers each byte the firmware writes to UDR0
 * through the UART_IRQ_OUTPUT hook, at the moment of the write; the byte
 * time it then waits before raising UDRE again is its own estimate of the
 * line rate (see the tests for what that means for throughput).  Bytes
 * towards the MCU are raised on UART_IRQ_INPUT into simavr's 64-byte
 * receive FIFO, which it drains into RXC interrupts at the same byte
 * time, and which signals XOFF when full and XON when empty again.
 *
 * Two of simavr's habits would tie a run to the host's clock: the UART
 * sleeps a microsecond when firmware polls an idle status register
 * (AVR_UART_FLAG_POLL_SLEEP), and a sleeping CPU makes the simulator
 * usleep() for the time skipped.  Both are turned off here, so simulated
 * time is all there is. */
#include "avrsim.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avr_adc.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_irq.h>

#define MCU_NAME  "atmega328p"
#define UART_NAME '0'

/* simavr's logger takes no context pointer: this is the open instance. */
static struct avrsim *current;

/* Keeps what matters of simavr's own messages: errors and warnings are
 * counted (the tests expect none) and shown; traces and the firmware's
 * console output are dropped. */
static void logger(avr_t *avr, const int level, const char *format, va_list ap)
{
    (void)avr;
    if (level != LOG_ERROR && level != LOG_WARNING)
        return;
    if (current != NULL) {
        if (level == LOG_ERROR)
            current->sim_errors++;
        else
            current->sim_warnings++;
    }
    fputs("simavr: ", stderr);
    vfprintf(stderr, format, ap);
}

/* A sleeping CPU costs no host time: the cycles it skips are counted by
 * the simulator all the same. */
static void no_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
    (void)avr;
    (void)how_long;
}

uint64_t avrsim_now_us(const struct avrsim *s)
{
    return s->avr->cycle / (AVRSIM_HZ / 1000000u);
}

/* A byte left the MCU's USART (simavr context, inside avr_run()). */
static void on_uart_out(struct avr_irq_t *irq, uint32_t value, void *param)
{
    struct avrsim *s = param;
    struct avrsim_frame *q;
    struct frame f;

    (void)irq;
    s->bytes_out++;
    if (frame_rx_push(&s->rx, (uint8_t)value, &f) != FRAME_RX_OK)
        return;
    if (s->q_len == AVRSIM_FRAMES_MAX) {
        s->q_overflows++;
        return;
    }
    q = &s->q[(s->q_head + s->q_len) % AVRSIM_FRAMES_MAX];
    q->t_us = avrsim_now_us(s);
    q->seq = f.seq;
    q->type = f.type;
    q->len = f.len;
    memcpy(q->payload, f.payload, f.len);
    s->q_len++;
}

static void on_uart_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
    struct avrsim *s = param;

    (void)irq;
    (void)value;
    s->rx_paused = false;
}

static void on_uart_xoff(struct avr_irq_t *irq, uint32_t value, void *param)
{
    struct avrsim *s = param;

    (void)irq;
    s->rx_paused = value != 0;
}

static void free_firmware(struct elf_firmware_t *fw)
{
    if (fw == NULL)
        return;
    free(fw->flash);
    free(fw->eeprom);
    free(fw->fuse);
    free(fw->lockbits);
    for (uint32_t i = 0; i < fw->symbolcount; i++)
        free(fw->symbol[i]);
    free(fw->symbol);
    free(fw);
}

/* simavr 1.6 reads any file as a 32-bit ELF image and crashes on other
 * kinds (an x86-64 program makes it dereference a NULL section name), and
 * reports an unreadable file with perror() and a stale errno.  So the
 * image is checked here first: readable, and a 32-bit little-endian ELF
 * file for the AVR. */
static int check_image(const char *path)
{
    unsigned char h[EI_NIDENT + 4];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "avrsim: %s: %s\n", path, strerror(errno));
        return AVRSIM_ELOAD;
    }
    n = fread(h, 1, sizeof(h), f);
    fclose(f);
    /* e_type (2 bytes) and e_machine (2 bytes) follow e_ident. */
    if (n != sizeof(h) || memcmp(h, ELFMAG, SELFMAG) != 0 ||
        h[EI_CLASS] != ELFCLASS32 || h[EI_DATA] != ELFDATA2LSB ||
        (h[EI_NIDENT + 2] | h[EI_NIDENT + 3] << 8) != EM_AVR) {
        fprintf(stderr, "avrsim: %s: not an AVR ELF image\n", path);
        return AVRSIM_ELOAD;
    }
    return 0;
}

int avrsim_open(struct avrsim *s, const char *path)
{
    uint32_t flags = 0;
    avr_irq_t *uart;
    int ret;

    memset(s, 0, sizeof(*s));
    frame_rx_init(&s->rx, s->rx_buf, sizeof(s->rx_buf));
    s->rx_paused = true; /* until the firmware enables its receiver */
    current = s;
    avr_global_logger_set(logger);

    ret = check_image(path);
    if (ret < 0)
        goto err_logger;
    s->fw = calloc(1, sizeof(*s->fw));
    if (s->fw == NULL) {
        ret = AVRSIM_ELOAD;
        goto err_logger;
    }
    /* A file that is no ELF image reads as one without sections. */
    if (elf_read_firmware(path, s->fw) != 0 || s->fw->flashsize == 0) {
        ret = AVRSIM_ELOAD;
        goto err_fw;
    }
    s->fw->frequency = AVRSIM_HZ; /* the image carries no .mmcu section */

    s->avr = avr_make_mcu_by_name(MCU_NAME);
    if (s->avr == NULL) {
        ret = AVRSIM_EMCU;
        goto err_fw;
    }
    /* simavr aborts the process on an image larger than the flash. */
    if ((uint64_t)s->fw->flashbase + s->fw->flashsize >
        (uint64_t)s->avr->flashend + 1u) {
        fprintf(stderr, "avrsim: %s: %lu bytes do not fit the flash\n", path,
                (unsigned long)s->fw->flashsize);
        ret = AVRSIM_ELOAD;
        goto err_avr;
    }
    avr_init(s->avr);
    avr_load_firmware(s->avr, s->fw);
    s->avr->vcc = AVRSIM_AVCC_MV;
    s->avr->avcc = AVRSIM_AVCC_MV;
    s->avr->aref = AVRSIM_AVCC_MV;
    s->avr->sleep = no_sleep;

    /* Neither console printing nor host sleeps on status polls. */
    avr_ioctl(s->avr, AVR_IOCTL_UART_SET_FLAGS(UART_NAME), &flags);
    uart = avr_io_getirq(s->avr, AVR_IOCTL_UART_GETIRQ(UART_NAME), 0);
    s->uart_in = uart + UART_IRQ_INPUT;
    avr_irq_register_notify(uart + UART_IRQ_OUTPUT, on_uart_out, s);
    avr_irq_register_notify(uart + UART_IRQ_OUT_XON, on_uart_xon, s);
    avr_irq_register_notify(uart + UART_IRQ_OUT_XOFF, on_uart_xoff, s);
    for (unsigned ch = 0; ch < AVRSIM_ADC_INPUTS; ch++)
        avrsim_set_mv(s, ch, 0);
    return 0;

err_avr:
    free(s->avr);
    s->avr = NULL;
err_fw:
    free_firmware(s->fw);
    s->fw = NULL;
err_logger:
    avr_global_logger_set(NULL);
    current = NULL;
    return ret;
}

void avrsim_close(struct avrsim *s)
{
    if (s->avr != NULL) {
        avr_terminate(s->avr);
        free(s->avr); /* avr_make_mcu_by_name() allocated it */
        s->avr = NULL;
    }
    free_firmware(s->fw);
    s->fw = NULL;
    if (current == s) {
        avr_global_logger_set(NULL);
        current = NULL;
    }
}

void avrsim_set_mv(struct avrsim *s, unsigned ch, uint32_t mv)
{
    avr_raise_irq(
        avr_io_getirq(s->avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0 + (int)ch),
        mv);
}

int avrsim_send(struct avrsim *s, uint8_t type, const uint8_t *p, size_t n)
{
    uint16_t seq = s->tx_seq;
    int len;

    if (s->tx_pos == s->tx_len)
        s->tx_pos = s->tx_len = 0;
    len = frame_encode(s->tx + s->tx_len, sizeof(s->tx) - s->tx_len, type, seq,
                       p, n);
    if (len < 0)
        return AVRSIM_EFULL;
    s->tx_len += (size_t)len;
    s->tx_seq++;
    return seq;
}

/* Hands queued bytes to simavr's receive FIFO until it says XOFF; the
 * FIFO paces them into the MCU at its byte time. */
static void feed(struct avrsim *s)
{
    while (!s->rx_paused && s->tx_pos < s->tx_len)
        avr_raise_irq(s->uart_in, s->tx[s->tx_pos++]);
}

/* One instruction (or one stretch of sleep). */
static int step(struct avrsim *s)
{
    int state;

    if (s->steps >= AVRSIM_STEPS_MAX ||
        s->avr->cycle >= (uint64_t)AVRSIM_RUN_MAX_US * (AVRSIM_HZ / 1000000u))
        return AVRSIM_ELIMIT;
    feed(s);
    state = avr_run(s->avr);
    s->steps++;
    if (state == cpu_Done || state == cpu_Crashed || state == cpu_Stopped)
        return AVRSIM_ECPU;
    return 0;
}

int avrsim_next(struct avrsim *s, struct avrsim_frame *out,
                uint64_t deadline_us)
{
    for (;;) {
        int ret;

        if (s->q_len > 0) {
            *out = s->q[s->q_head];
            s->q_head = (s->q_head + 1) % AVRSIM_FRAMES_MAX;
            s->q_len--;
            return 1;
        }
        if (avrsim_now_us(s) >= deadline_us)
            return 0;
        ret = step(s);
        if (ret < 0)
            return ret;
    }
}
