# The STM32U585 port (Arduino UNO Q MCU): arm-none-eabi-gcc, newlib-nano for
# memcpy and friends only, the port's own start-up code and linker scripts.
# FW_CLASS selects the budget scripts/fw-size.sh applies (m33 or avr).
#
# The port takes firmware updates (docs/UPDATE.md section 3), so it builds
# two programs (the memory map is layout.h):
#
#   tether-app.elf  the application: proto/, the core, the update handler
#                   and the port, linked by stm32u585.ld to run from the
#                   execution region in SRAM1; tether-app.bin is its flat
#                   binary, the body of an update image (tetherctl image
#                   --board stm32u585 --load-addr $(U585_EXEC) --entry 0)
#   tether-fw.elf   what is flashed: the bootloader (bootloader.c, boot.ld)
#                   with tether-app.bin inside as the factory image
#                   (factory.S), one file for OpenOCD's `program`; built by
#                   the Makefile's "Firmware images, one per port" rules
#                   from FW_SRC_stm32u585, into which the Makefile also
#                   links proto/ and the core, which --gc-sections drops:
#                   the bootloader reaches none of it
#
# Both linker scripts go through the C preprocessor for layout.h, into
# $(BUILD)/fw/stm32u585/.  `make check-size` checks the application against
# the budget and shows the bootloader on a line of its own
# (scripts/fw-size.sh: FW_APP_stm32u585).

U585_DIR := mcu-firmware/port/stm32u585
U585_OUT := $(BUILD)/fw/stm32u585
U585_OBJ := $(U585_OUT)/obj
# The execution region's address, for the image headers: layout.h is the
# one place it is written.
U585_EXEC := $(shell sed -n 's/^\#define U585_EXEC_BASE  *//p' \
    $(U585_DIR)/layout.h)

FW_CC_stm32u585 := arm-none-eabi-gcc
FW_SIZE_stm32u585 := arm-none-eabi-size
FW_CLASS_stm32u585 := m33
FW_APP_stm32u585 := tether-app.elf
FW_CFLAGS_stm32u585 := -std=c11 $(WARN) -Os -g -mcpu=cortex-m33 -mthumb \
    -mfloat-abi=soft -ffreestanding -fno-common -ffunction-sections \
    -fdata-sections -Imcu-firmware/update
FW_LIBS_stm32u585 := -lc -lgcc
U585_LDFLAGS := -nostartfiles -specs=nano.specs -Wl,--gc-sections

# ---- The linker scripts ----
U585_LD := $(U585_OUT)/stm32u585.ld
U585_BOOT_LD := $(U585_OUT)/boot.ld
$(U585_OUT)/%.ld: $(U585_DIR)/%.ld $(U585_DIR)/layout.h
	@mkdir -p $(@D)
	$(FW_CC_stm32u585) -E -P -undef -x c -I$(U585_DIR) $< -o $@

# ---- The application ----
U585_APP_SRC := $(PROTO_SRC) $(CORE_SRC) $(UPDATE_SRC) \
    $(U585_DIR)/startup.c $(U585_DIR)/port_stm32u585.c \
    $(U585_DIR)/port_flash.c
U585_APP := $(U585_OUT)/tether-app.elf
U585_APP_BIN := $(U585_OUT)/tether-app.bin

# The script is a prerequisite, but goes to -T, not among the inputs.
$(U585_APP): $(patsubst %.c,$(U585_OBJ)/%.o,$(U585_APP_SRC)) $(U585_LD)
	@mkdir -p $(@D)
	$(FW_CC_stm32u585) $(FW_CFLAGS_stm32u585) -T $(U585_LD) \
	    $(U585_LDFLAGS) -Wl,-Map=$(@:.elf=.map) -o $@ \
	    $(filter %.o,$^) $(FW_LIBS_stm32u585)

$(U585_APP_BIN): $(U585_APP)
	arm-none-eabi-objcopy -O binary $< $@

# ---- The bootloader with the factory image: tether-fw.elf ----
FW_SRC_stm32u585 := $(U585_DIR)/bootloader.c $(U585_DIR)/port_flash.c \
    mcu-firmware/port/cortex-m33/ramload.c \
    mcu-firmware/update/boot.c $(U585_DIR)/factory.S
FW_LDFLAGS_stm32u585 = -T $(U585_BOOT_LD) $(U585_LDFLAGS) \
    -Wl,-Map=$(U585_OUT)/tether-fw.map

# The Makefile's link recipe passes every prerequisite of the image to the
# compiler, so the image's dependency on its script goes through the object
# that holds the vector table, which is rebuilt (and the image relinked)
# when the script changes.
$(U585_OBJ)/$(U585_DIR)/bootloader.o: $(U585_BOOT_LD)

# The factory image: factory.S takes the binary's name from the command
# line.
$(U585_OBJ)/$(U585_DIR)/factory.o: $(U585_DIR)/factory.S $(U585_APP_BIN)
	@mkdir -p $(@D)
	$(FW_CC_stm32u585) $(FW_CFLAGS_stm32u585) \
	    -DU585_FACTORY_BIN='"$(U585_APP_BIN)"' -c $< -o $@

check-size: $(U585_APP)
