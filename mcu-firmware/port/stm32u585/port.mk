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
#                   binary, and tether-app.img that binary wrapped as an
#                   update image by tetherctl (--board stm32u585
#                   --load-addr $(U585_EXEC) --entry 0, the version of
#                   core/fw.h), for the UART method or OpenOCD
#   tether-fw.elf   what is flashed: the bootloader (bootloader.c, boot.ld)
#                   with tether-app.img inside as the factory image
#                   (factory.S: the bootloader checks its header and hash,
#                   ramimage.c), one file for OpenOCD's `program`; built by
#                   the Makefile's "Firmware images, one per port" rules
#                   from FW_SRC_stm32u585, into which the Makefile also
#                   links proto/ and the core, which --gc-sections drops:
#                   the bootloader reaches none of it
#
# Both linker scripts go through the C preprocessor for layout.h, into
# $(BUILD)/fw/stm32u585/.  `make check-size` checks the application against
# the budget and shows the bootloader on a line of its own
# (scripts/fw-size.sh: FW_APP_stm32u585).
#
# check-u585 runs the bootloader's factory-image check (ramimage.c,
# portable C) on the host against crafted regions
# (tests/stm32u585/test_ramimage.c): the one part of the bootloader that
# can be tested without the part.

U585_DIR := mcu-firmware/port/stm32u585
U585_OUT := $(BUILD)/fw/stm32u585
U585_OBJ := $(U585_OUT)/obj
# The execution region's address, for the image headers: layout.h is the
# one place it is written.
U585_EXEC := $(shell sed -n 's/^\#define U585_EXEC_BASE  *//p' \
    $(U585_DIR)/layout.h)
# The application's version as HELLO reports it, for its image header:
# core/fw.h is the one place it is written.
fw_version_part = $(shell sed -n \
    's/^\#define FW_VERSION_$(1)  *\([0-9]*\)u*$$/\1/p' mcu-firmware/core/fw.h)
U585_VERSION := $(call fw_version_part,MAJOR).$(call \
    fw_version_part,MINOR).$(call fw_version_part,PATCH)

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
    $(U585_DIR)/port_flash.c $(U585_DIR)/ramimage.c
U585_APP := $(U585_OUT)/tether-app.elf
U585_APP_BIN := $(U585_OUT)/tether-app.bin
U585_APP_IMG := $(U585_OUT)/tether-app.img

# The script is a prerequisite, but goes to -T, not among the inputs.
$(U585_APP): $(patsubst %.c,$(U585_OBJ)/%.o,$(U585_APP_SRC)) $(U585_LD)
	@mkdir -p $(@D)
	$(FW_CC_stm32u585) $(FW_CFLAGS_stm32u585) -T $(U585_LD) \
	    $(U585_LDFLAGS) -Wl,-Map=$(@:.elf=.map) -o $@ \
	    $(filter %.o,$^) $(FW_LIBS_stm32u585)

$(U585_APP_BIN): $(U585_APP)
	arm-none-eabi-objcopy -O binary $< $@

# The update image: the one image writer is tetherctl's.
$(U585_APP_IMG): $(U585_APP_BIN) $(TETHERCTL)
	$(TETHERCTL) image --board stm32u585 --version $(U585_VERSION) \
	    --build-id $(BUILD_ID) --load-addr $(U585_EXEC) --entry 0 $< -o $@

# ---- The bootloader with the factory image: tether-fw.elf ----
FW_SRC_stm32u585 := $(U585_DIR)/bootloader.c $(U585_DIR)/port_flash.c \
    $(U585_DIR)/ramimage.c mcu-firmware/port/cortex-m33/ramload.c \
    mcu-firmware/update/boot.c $(U585_DIR)/factory.S
FW_LDFLAGS_stm32u585 = -T $(U585_BOOT_LD) $(U585_LDFLAGS) \
    -Wl,-Map=$(U585_OUT)/tether-fw.map

# The Makefile's link recipe passes every prerequisite of the image to the
# compiler, so the image's dependency on its script goes through the object
# that holds the vector table, which is rebuilt (and the image relinked)
# when the script changes.
$(U585_OBJ)/$(U585_DIR)/bootloader.o: $(U585_BOOT_LD)

# The factory image: factory.S takes the image's name from the command
# line.
$(U585_OBJ)/$(U585_DIR)/factory.o: $(U585_DIR)/factory.S $(U585_APP_IMG)
	@mkdir -p $(@D)
	$(FW_CC_stm32u585) $(FW_CFLAGS_stm32u585) \
	    -DU585_FACTORY_IMG='"$(U585_APP_IMG)"' -c $< -o $@

check-size: $(U585_APP)
build: $(U585_APP_IMG)

# ---- The factory-image check on the host ----
U585_TEST := $(BUILD)/tests/stm32u585-ramimage
U585_TEST_SRC := tests/stm32u585/test_ramimage.c $(U585_DIR)/ramimage.c

$(BUILD)/obj/host/$(U585_DIR)/ramimage.o: $(U585_DIR)/ramimage.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PROTO_INC) -I$(U585_DIR) -c $< -o $@

$(BUILD)/obj/host/tests/stm32u585/%.o: tests/stm32u585/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PROTO_INC) -I$(U585_DIR) \
	    $(shell pkg-config --cflags check) -c $< -o $@

$(U585_TEST): $(patsubst %.c,$(BUILD)/obj/host/%.o,$(U585_TEST_SRC)) \
        $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check)

.PHONY: check-u585
build: $(U585_TEST)
check-u585: $(U585_TEST) $(U585_APP_IMG)
	TETHER_U585_IMG=$(U585_APP_IMG) $(U585_TEST)
