/* The factory image inside tether-fw.elf: the application's flat binary
 * (stm32u585.ld, objcopy -O binary), byte for byte, in the section
 * boot.ld places at U585_FACTORY_BASE in flash bank 1.  port.mk names the
 * file in U585_FACTORY_BIN, as a quoted string.
 *
 * It is data to the bootloader, never run where it lies: the bootloader
 * copies it to the execution region in SRAM when the factory image is
 * the one to start.  No update writes bank 1, so it is always the image
 * that was flashed. */
#ifndef U585_FACTORY_BIN
#error "U585_FACTORY_BIN must name the application's flat binary"
#endif

    .section .factory, "a", %progbits
    .balign 4
    .incbin U585_FACTORY_BIN
