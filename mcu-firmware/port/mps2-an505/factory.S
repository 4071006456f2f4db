/* The factory image inside tether-fw.elf: the application's flat binary
 * (an505.ld, objcopy -O binary), byte for byte, in the section boot.ld
 * places at AN505_FACTORY_BASE.  port.mk names the file in
 * AN505_FACTORY_BIN, as a quoted string; a bootloader built with another
 * binary (the reset test application) carries that one instead.
 *
 * It is data to the bootloader, never run where it lies: the bootloader
 * copies it to the execution region when the factory image is the one to
 * start.  QEMU reloads it with the rest of the file at every system
 * reset, so it is always the image that was built. */
#ifndef AN505_FACTORY_BIN
#error "AN505_FACTORY_BIN must name the application's flat binary"
#endif

    .section .factory, "a", %progbits
    .balign 4
    .incbin AN505_FACTORY_BIN
