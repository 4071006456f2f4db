/* The memory map of the mps2-an505 port, in one place for the C code and
 * the two linker scripts (an505.ld, the application; boot.ld, the
 * bootloader), which port.mk passes through the C preprocessor.  So the
 * numbers are plain: no casts, no suffixes, nothing but #define.
 *
 * QEMU's mps2-an505 has three SSRAMs, each reached here through its
 * Secure alias: SSRAM1 (4 MiB at 0x10000000, where the core fetches its
 * first vector table, so it plays the part of flash), SSRAM2 and SSRAM3
 * (2 MiB each at 0x38000000 and 0x38200000).  At every system reset
 * (SYSRESETREQ, the watchdog) QEMU copies the ELF's own segments back in
 * and zeroes their .bss, and leaves every other byte as it was; a new QEMU
 * process starts with all of them zero, which is the power-on.
 *
 *   SSRAM1  0x10000000  16 KiB  bootloader: vector table, code  (ELF)
 *           0x10004000  64 KiB  factory image: the application (ELF)
 *           0x10100000  64 KiB  slot 0                          (kept)
 *           0x10110000  64 KiB  slot 1                          (kept)
 *           0x10120000  256 B   boot record                     (kept)
 *   SSRAM2  0x38000000  16 B    reset-cause record              (kept)
 *           0x38000010  24 KiB  application RAM: .data, .bss, stack
 *           0x38100000  4 KiB   bootloader stack                (ELF)
 *   SSRAM3  0x38200000  64 KiB  execution region: the bootloader copies
 *                               the chosen image here and runs it
 *
 * "(ELF)" regions are the segments of tether-fw.elf, the one file QEMU
 * loads, reloaded at every reset; "(kept)" regions are in no segment, so
 * they keep what the firmware wrote across a system reset.  The
 * application's own sections (its RAM and the execution region) are in
 * no segment of tether-fw.elf either: the bootloader and the
 * application's start-up code fill them. */
#ifndef TETHER_LAYOUT_H
#define TETHER_LAYOUT_H

#define AN505_BOOT_BASE    0x10000000
#define AN505_BOOT_SIZE    0x4000
#define AN505_FACTORY_BASE 0x10004000
#define AN505_FACTORY_SIZE 0x10000
#define AN505_SLOT0_BASE   0x10100000
#define AN505_SLOT1_BASE   0x10110000
#define AN505_SLOT_SIZE    0x10000
#define AN505_BOOTREC_BASE 0x10120000
#define AN505_BOOTREC_SIZE 0x100

#define AN505_RETAIN_BASE  0x38000000
#define AN505_RETAIN_SIZE  16
#define AN505_RAM_BASE     0x38000010
#define AN505_RAM_SIZE     0x6000
#define AN505_BOOTRAM_BASE 0x38100000
#define AN505_BOOTRAM_SIZE 0x1000

#define AN505_EXEC_BASE 0x38200000
#define AN505_EXEC_SIZE 0x10000

/* The application's code budget: a small MCU's 32 KiB of flash.  The
 * execution region and the slots are larger, so an image may grow past
 * the budget on this board without changing the layout. */
#define AN505_APP_CODE_MAX 0x8000

#endif
