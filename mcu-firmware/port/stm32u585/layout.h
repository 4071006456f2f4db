/* The memory map of the STM32U585 port, in one place for the C code and
 * the two linker scripts (stm32u585.ld, the application; boot.ld, the
 * bootloader), which port.mk passes through the C preprocessor.  So the
 * numbers are plain: no casts, no suffixes, nothing but #define.
 *
 * The part's 2 MB of flash is two banks of 1 MB (RM0456: on a 2 MB part
 * the DUALBANK option bit does not apply, the banks are always two), each
 * of 128 pages of 8 KiB, programmed 16 bytes (a quad-word) at a time.
 * SWAP_BANK is assumed clear, so bank 1 is at 0x08000000.  TrustZone is
 * off (TZEN = 0), so the non-secure flash registers drive both banks.
 *
 *   bank 1  0x08000000  16 KiB  bootloader: vector table, code   (ELF)
 *           0x08004000  64 KiB  factory image: an update image,  (ELF)
 *                               header and body, as tetherctl
 *                               image writes it
 *   bank 2  0x08100000  64 KiB  slot 0, pages 0..7 of bank 2     (kept)
 *           0x08110000  64 KiB  slot 1, pages 8..15              (kept)
 *           0x08120000   8 KiB  boot record, page 16             (kept)
 *   SRAM1   0x20000000  64 KiB  execution region: the bootloader copies
 *                               the chosen image here and runs it
 *           0x20010000          application RAM: .data, .bss, .noinit,
 *                               the heap arena and the stack
 *   SRAM3   0x200bf000   4 KiB  bootloader RAM: its data and stack
 *
 * "(ELF)" regions are what tether-fw.elf programs; "(kept)" regions are
 * in no segment of it, so flashing tether-fw.elf with OpenOCD's
 * `program` (which erases only the sectors it writes) leaves them alone.
 * The application runs from RAM, as in MCUboot's RAM-load mode: every
 * image, the factory one included, is linked for the execution region,
 * so one binary is both the factory image and what a slot holds, and the
 * factory image is never overwritten by an update.  The factory region
 * holds the whole update image, its 64-byte header first, so that the
 * bootloader reads the body's length and hash from the flash, not from
 * its own link: OpenOCD may write a new factory image, of another length,
 * without the bootloader.  The slots and the record are in bank 2 and the
 * code runs from SRAM, so erasing and programming them never stalls the
 * running code. */
#ifndef TETHER_LAYOUT_H
#define TETHER_LAYOUT_H

#define U585_PAGE_SIZE  0x2000
#define U585_QWORD      16
#define U585_BANK1_BASE 0x08000000
#define U585_BANK2_BASE 0x08100000
#define U585_BANK_SIZE  0x100000

#define U585_BOOT_BASE    0x08000000
#define U585_BOOT_SIZE    0x4000
#define U585_FACTORY_BASE 0x08004000
#define U585_FACTORY_SIZE 0x10000
#define U585_SLOT0_BASE   0x08100000
#define U585_SLOT1_BASE   0x08110000
#define U585_SLOT_SIZE    0x10000
#define U585_BOOTREC_BASE 0x08120000
#define U585_BOOTREC_SIZE 0x2000

#define U585_EXEC_BASE    0x20000000
#define U585_EXEC_SIZE    0x10000
#define U585_RAM_BASE     0x20010000
#define U585_RAM_SIZE     0xaf000
#define U585_BOOTRAM_BASE 0x200bf000
#define U585_BOOTRAM_SIZE 0x1000

/* The update image's header (proto/update.h IMAGE_HDR_LEN, which
 * ramimage.c asserts), for the linker script's checks.  An image's body
 * must fit both the factory region behind its header and the execution
 * region, so that any image runs from a slot and from the factory
 * region alike: at most U585_BODY_MAX bytes. */
#define U585_IMAGE_HDR_LEN 64
#define U585_BODY_MAX      (U585_FACTORY_SIZE - U585_IMAGE_HDR_LEN)

/* The application's code budget (docs/FIRMWARE.md): 32 KiB.  The
 * execution region and the slots are twice that, so an image may grow
 * past the budget without changing the layout. */
#define U585_APP_CODE_MAX 0x8000

#endif
