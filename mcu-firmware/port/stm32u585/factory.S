/* The factory image inside tether-fw.elf: the application's update
 * image (tether-app.img: the 64-byte image header, then the flat binary
 * of stm32u585.ld's link, as `tetherctl image` writes it), byte for
 * byte, in the section boot.ld places at U585_FACTORY_BASE in flash bank
 * 1.  port.mk names the file in U585_FACTORY_IMG, as a quoted string.
 *
 * It is data to the bootloader, never run where it lies: the bootloader
 * checks the header and the body's hash (ramimage.c) and copies the body
 * to the execution region in SRAM when the factory image is the one to
 * start.  No update writes bank 1, so it is the image that was last
 * flashed, by the build's ELF or by OpenOCD writing an update image here
 * (docs/UPDATE.md, "method = openocd"). */
#ifndef U585_FACTORY_IMG
#error "U585_FACTORY_IMG must name the application's update image"
#endif

    .section .factory, "a", %progbits
    .balign 4
    .incbin U585_FACTORY_IMG
