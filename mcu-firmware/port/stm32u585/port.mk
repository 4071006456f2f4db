# The STM32U585 port (Arduino UNO Q MCU): arm-none-eabi-gcc, newlib-nano for
# memcpy and friends only, the port's own start-up code and linker script.
# FW_CLASS selects the budget scripts/fw-size.sh applies (m33 or avr).
FW_CC_stm32u585 := arm-none-eabi-gcc
FW_SIZE_stm32u585 := arm-none-eabi-size
FW_CLASS_stm32u585 := m33
FW_CFLAGS_stm32u585 := -std=c11 $(WARN) -Os -g -mcpu=cortex-m33 -mthumb \
    -mfloat-abi=soft -ffreestanding -fno-common -ffunction-sections \
    -fdata-sections
FW_LDFLAGS_stm32u585 = -nostartfiles -specs=nano.specs \
    -T mcu-firmware/port/stm32u585/stm32u585.ld -Wl,--gc-sections \
    -Wl,-Map=$(BUILD)/fw/stm32u585/tether-fw.map
FW_LIBS_stm32u585 := -lc -lgcc
# No firmware update yet (docs/UPDATE.md section 3 has the layout meant
# for it): the update handler that answers NACK unsupported.
FW_SRC_stm32u585 := mcu-firmware/port/stm32u585/startup.c \
    mcu-firmware/port/stm32u585/port_stm32u585.c \
    mcu-firmware/update/fwupdate_none.c

# The link also depends on the linker script; the link recipe hands every
# prerequisite to the compiler, so the script is made a prerequisite of the
# object holding the vector table, which then relinks the image.
$(BUILD)/fw/stm32u585/obj/mcu-firmware/port/stm32u585/startup.o: \
    mcu-firmware/port/stm32u585/stm32u585.ld
