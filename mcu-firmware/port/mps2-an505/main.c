/* The firmware's main loop on the MPS2 AN505: bring the board up, start the
 * core with its default settings, then run it, sleeping whenever it has
 * nothing due.  The board has no command line, so the settings tether-sim
 * takes as options are the core's defaults here; the host changes them
 * with commands. */
#include <stdint.h>

#include "fw.h"
#include "port.h"
#include "port_an505.h"

int main(void)
{
    struct fw_options o;

    fw_defaults(&o);
    o.channels = PORT_ADC_CHANNELS_MAX;
    o.mask = (uint16_t)((1u << PORT_ADC_CHANNELS_MAX) - 1u);
    port_an505_init(o.seed);
    fw_init(&o);
    for (;;)
        port_an505_idle(fw_poll());
}
