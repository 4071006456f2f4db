/* A link-time fake of the port contract for unit tests: the clock moves
 * only when a test says so, the ADC returns a value made of the channel and
 * the time, a reset long-jumps to where the test asked, and the update
 * storage is two slots and a boot record in memory, with faults a test can
 * switch on and a count of any use that real flash would not take. */
#include "port_fake.h"

#include <stdlib.h>
#include <string.h>

struct port_fake port_fake;

uint32_t port_time_us(void)
{
    return port_fake.now_us;
}

void port_uart_kick(void)
{
    port_fake.kicks++;
}

uint16_t port_adc_read(uint8_t ch)
{
    return port_fake_adc_value(ch, port_fake.now_us);
}

uint8_t port_reset_cause(void)
{
    return port_fake.reset_cause;
}

_Noreturn void port_reset(void)
{
    port_fake.resets++;
    if (port_fake.reset_to == NULL)
        abort();
    longjmp(*port_fake.reset_to, 1);
}

void port_watchdog_kick(void)
{
    port_fake.watchdog_kicks++;
}

uint32_t port_irq_save(void)
{
    return port_fake.irq_depth++;
}

void port_irq_restore(uint32_t state)
{
    port_fake.irq_depth = state;
}

/* ---- Update storage ---- */

int port_slot_erase(uint8_t slot, uint32_t len)
{
    if (slot >= BOOT_SLOTS || len > PORT_SLOT_SIZE || port_fake.fail_erase)
        return -1;
    memset(port_fake.slot[slot], 0xff, sizeof(port_fake.slot[slot]));
    port_fake.written[slot] = 0;
    port_fake.erased[slot] = len;
    port_fake.erases++;
    return 0;
}

int port_slot_write(uint8_t slot, uint32_t off, const uint8_t *p, uint16_t n)
{
    if (slot >= BOOT_SLOTS || port_fake.fail_write)
        return -1;
    /* Flash takes each byte once, in order, within what was erased. */
    if (off != port_fake.written[slot] || n > port_fake.erased[slot] - off) {
        port_fake.misuses++;
        return -1;
    }
    memcpy(&port_fake.slot[slot][off], p, n);
    if (port_fake.flip_at_plus1 > off && port_fake.flip_at_plus1 - 1u < off + n)
        port_fake.slot[slot][port_fake.flip_at_plus1 - 1u] ^= 0x01u;
    port_fake.written[slot] = off + n;
    port_fake.writes++;
    return 0;
}

int port_slot_read(uint8_t slot, uint32_t off, uint8_t *p, uint16_t n)
{
    if (slot >= BOOT_SLOTS || port_fake.fail_read || off > PORT_SLOT_SIZE ||
        n > PORT_SLOT_SIZE - off)
        return -1;
    memcpy(p, &port_fake.slot[slot][off], n);
    return 0;
}

int port_boot_load(struct boot_record *r)
{
    if (!port_fake.flash)
        return PORT_ENOSTORAGE;
    if (!port_fake.has_record)
        return -1;
    *r = port_fake.rec;
    return 0;
}

int port_boot_store(const struct boot_record *r)
{
    if (!port_fake.flash || port_fake.fail_store)
        return -1;
    port_fake.rec = *r;
    port_fake.has_record = true;
    port_fake.stores++;
    return 0;
}

int port_image_check(const struct image_hdr *h)
{
    return h->flags == 0 && h->load_addr == 0 && h->entry == 0 ? 0 : -1;
}
