# The mps2-an505 port: the firmware on the Cortex-M33 of the MPS2 AN505 image,
# as QEMU's `-M mps2-an505` emulates it (scripts/qemu.sh runs it).  No vendor
# SDK: the registers are in an505.h.  newlib-nano provides only memcpy and
# memset.
#
# The port takes firmware updates (docs/UPDATE.md), so it builds two
# programs (the memory map is layout.h):
#
#   tether-app.elf  the application: proto/, the core, the update handler
#                   and the port, linked by an505.ld to run from the
#                   execution region in RAM; tether-app.bin is its flat
#                   binary, the body of an update image
#   tether-fw.elf   what QEMU boots: the bootloader (bootloader.c, boot.ld)
#                   with tether-app.bin inside as the factory image
#                   (factory.S); built by the Makefile's "Firmware images,
#                   one per port" rules from FW_SRC_mps2-an505, into which
#                   the Makefile also links proto/ and the core, which
#                   --gc-sections drops: the bootloader reaches none of it
#
# and, for the tests, update images of the same application at other
# versions, tether-fw-v2.img (0.2.0) and tether-fw-mute.img (0.3.0, built
# with FW_TEST_MUTE=1: it sends no telemetry and so fails the daemon's
# health gate), wrapped by `tetherctl image`, and tether-fw-resets.elf, the
# bootloader carrying the reset test application (reset_test.c).
#
# Both linker scripts go through the C preprocessor for layout.h, into
# $(BUILD)/fw/mps2-an505/.  `make check-size` checks the application
# against the budget and shows the bootloader on a line of its own
# (scripts/fw-size.sh: FW_APP_mps2-an505).

AN505_DIR := mcu-firmware/port/mps2-an505
AN505_OUT := $(BUILD)/fw/mps2-an505
AN505_OBJ := $(AN505_OUT)/obj
# The execution region's address, for the image headers: layout.h is the
# one place it is written.
AN505_EXEC := $(shell sed -n 's/^\#define AN505_EXEC_BASE  *//p' \
    $(AN505_DIR)/layout.h)

FW_CC_mps2-an505 := arm-none-eabi-gcc
FW_SIZE_mps2-an505 := arm-none-eabi-size
FW_CLASS_mps2-an505 := m33
FW_APP_mps2-an505 := tether-app.elf
FW_CFLAGS_mps2-an505 := -std=c11 $(WARN) -Os -g -mcpu=cortex-m33 -mthumb \
    -mfloat-abi=soft -ffreestanding -ffunction-sections -fdata-sections \
    -fno-common -Imcu-firmware/update
FW_LIBS_mps2-an505 := -lc -lgcc
AN505_LDFLAGS := -nostartfiles --specs=nano.specs -Wl,--gc-sections
AN505_INC := -Iproto -Imcu-firmware/core -Imcu-firmware/port -I$(AN505_DIR)

# ---- The linker scripts ----
AN505_LD := $(AN505_OUT)/an505.ld
AN505_BOOT_LD := $(AN505_OUT)/boot.ld
$(AN505_OUT)/%.ld: $(AN505_DIR)/%.ld $(AN505_DIR)/layout.h
	@mkdir -p $(@D)
	$(FW_CC_mps2-an505) -E -P -undef -x c -I$(AN505_DIR) $< -o $@

# ---- The application ----
AN505_APP_SRC := $(PROTO_SRC) $(CORE_SRC) $(UPDATE_SRC) \
    $(AN505_DIR)/startup.c $(AN505_DIR)/port_an505.c \
    $(AN505_DIR)/port_flash.c
AN505_APP := $(AN505_OUT)/tether-app.elf
AN505_APP_BIN := $(AN505_OUT)/tether-app.bin

# Links the application from the objects among its prerequisites; the
# script is a prerequisite too, but goes to -T, not among the inputs.
define an505_link_app
	@mkdir -p $(@D)
	$(FW_CC_mps2-an505) $(FW_CFLAGS_mps2-an505) -T $(AN505_LD) \
	    $(AN505_LDFLAGS) -Wl,-Map=$(@:.elf=.map) -o $@ \
	    $(filter %.o,$^) $(FW_LIBS_mps2-an505)
endef

$(AN505_APP): $(patsubst %.c,$(AN505_OBJ)/%.o,$(AN505_APP_SRC) \
        $(AN505_DIR)/main.c) $(AN505_LD)
	$(an505_link_app)

$(AN505_OUT)/%.bin: $(AN505_OUT)/%.elf
	arm-none-eabi-objcopy -O binary $< $@

# ---- The bootloader with the factory image: tether-fw.elf ----
AN505_BOOT_SRC := $(AN505_DIR)/bootloader.c $(AN505_DIR)/port_flash.c \
    mcu-firmware/port/cortex-m33/ramload.c \
    mcu-firmware/update/boot.c
FW_SRC_mps2-an505 := $(AN505_BOOT_SRC) $(AN505_DIR)/factory.S
FW_LDFLAGS_mps2-an505 = -T $(AN505_BOOT_LD) $(AN505_LDFLAGS) \
    -Wl,-Map=$(AN505_OUT)/tether-fw.map

# The Makefile's link recipe passes every prerequisite of the image to the
# compiler, so the image's dependency on its script goes through the object
# that holds the vector table, which is rebuilt (and the image relinked)
# when the script changes.
$(AN505_OBJ)/$(AN505_DIR)/bootloader.o: $(AN505_BOOT_LD)

# The factory image: factory.S takes the binary's name from the command
# line, so each bootloader gets its own object.
define an505_factory
	@mkdir -p $(@D)
	$(FW_CC_mps2-an505) $(FW_CFLAGS_mps2-an505) \
	    -DAN505_FACTORY_BIN='"$(filter %.bin,$^)"' -c $< -o $@
endef
$(AN505_OBJ)/$(AN505_DIR)/factory.o: $(AN505_DIR)/factory.S $(AN505_APP_BIN)
	$(an505_factory)

# ---- Test builds ----
# The reset test application (reset_test.c's main() in place of main.c's:
# it hangs, then faults, then runs) as the factory image of a bootloader
# of its own, so that the reset causes are tested behind the bootloader, as
# the real image runs (tests/integration/test_qemu.c, given it as
# TETHER_FW_MPS2_RESETS).  Its objects are the real image's.
AN505_BOOT_OBJ := $(patsubst %.c,$(AN505_OBJ)/%.o,$(AN505_BOOT_SRC) \
    proto/crc32c.c proto/sha256.c)
FW_RESETS_mps2-an505 := $(AN505_OUT)/tether-fw-resets.elf
$(AN505_OUT)/tether-app-resets.elf: $(patsubst %.c,$(AN505_OBJ)/%.o,\
        $(AN505_APP_SRC) $(AN505_DIR)/reset_test.c) $(AN505_LD)
	$(an505_link_app)
$(AN505_OBJ)/factory-resets.o: $(AN505_DIR)/factory.S \
        $(AN505_OUT)/tether-app-resets.bin
	$(an505_factory)
$(FW_RESETS_mps2-an505): $(AN505_BOOT_OBJ) $(AN505_OBJ)/factory-resets.o \
        $(AN505_BOOT_LD)
	$(FW_CC_mps2-an505) $(FW_CFLAGS_mps2-an505) -T $(AN505_BOOT_LD) \
	    $(AN505_LDFLAGS) -o $@ $(filter %.o,$^) $(FW_LIBS_mps2-an505)

# Update images of the application at other versions, for the update tests
# (docs/UPDATE.md): each from objects of its own, compiled with its -D.
#   obj-v2:   0.2.0
#   obj-mute: 0.3.0 that never sends telemetry (core/fw.c FW_TEST_MUTE)
AN505_V2_IMG := $(AN505_OUT)/tether-fw-v2.img
AN505_MUTE_IMG := $(AN505_OUT)/tether-fw-mute.img
AN505_DEFS_v2 := -DFW_VERSION_MINOR=2u
AN505_DEFS_mute := -DFW_VERSION_MINOR=3u -DFW_TEST_MUTE=1
AN505_VERSION_v2 := 0.2.0
AN505_VERSION_mute := 0.3.0

define an505_variant
$(AN505_OUT)/obj-$(1)/%.o: %.c
	@mkdir -p $$(@D)
	$$(FW_CC_mps2-an505) $$(FW_CFLAGS_mps2-an505) -MMD -MP \
	    -DFW_BUILD_ID=$$(BUILD_ID) $$(AN505_DEFS_$(1)) $$(AN505_INC) \
	    -c $$< -o $$@
$(AN505_OUT)/tether-app-$(1).elf: $$(patsubst %.c,$(AN505_OUT)/obj-$(1)/%.o,\
        $$(AN505_APP_SRC) $(AN505_DIR)/main.c) $$(AN505_LD)
	$$(an505_link_app)
$(AN505_OUT)/tether-fw-$(1).img: $(AN505_OUT)/tether-app-$(1).bin \
        $$(TETHERCTL)
	$$(TETHERCTL) image --board mps2-an505 \
	    --version $$(AN505_VERSION_$(1)) --build-id $$(BUILD_ID) \
	    --load-addr $$(AN505_EXEC) --entry 0 $$< -o $$@
endef
$(eval $(call an505_variant,v2))
$(eval $(call an505_variant,mute))

# What the QEMU tests need beyond the Makefile's list: the update images
# (found beside TETHER_FW_MPS2), and `make build` builds them too.
check-qemu: $(AN505_V2_IMG) $(AN505_MUTE_IMG)
build: $(AN505_V2_IMG) $(AN505_MUTE_IMG)
check-size: $(AN505_APP)
