/* The update handler of a port that takes no updates (the ATmega328P:
 * an Uno is flashed through its own bootloader).  HELLO carries no
 * MSG_CAP_UPDATE, and every frame of the update range is answered with
 * NACK unsupported, as PROTOCOL.md promises.  See fwupdate.h. */
#include "fwupdate.h"

#include "fw.h"
#include "msg.h"

void fwupdate_init(void)
{
}

void fwupdate_handle(const struct frame *f)
{
    struct msg_ack a = {f->seq, f->type, MSG_NACK_UNSUPPORTED};
    uint8_t p[MSG_NACK_LEN];
    int n = msg_encode_nack(p, sizeof(p), &a);

    if (n > 0)
        (void)fw_send_reply(MSG_NACK, p, (size_t)n);
}

bool fwupdate_busy(void)
{
    return false;
}

uint16_t fwupdate_caps(void)
{
    return 0;
}
