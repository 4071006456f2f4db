# The ATmega328P port (classic Arduino Uno): avr-gcc with avr-libc, whose
# start-up code, vector table and linker script it uses as they are.
# FW_CLASS selects the budget scripts/fw-size.sh applies (m33 or avr).
FW_CC_atmega328p := avr-gcc
FW_SIZE_atmega328p := avr-size
FW_CLASS_atmega328p := avr
FW_CFLAGS_atmega328p := -std=c11 $(WARN) -Os -g -mmcu=atmega328p \
    -DF_CPU=16000000UL -ffunction-sections -fdata-sections
FW_LDFLAGS_atmega328p = -Wl,--gc-sections \
    -Wl,-Map=$(BUILD)/fw/atmega328p/tether-fw.map
FW_LIBS_atmega328p :=
# No firmware update on an Uno (avrdude and its bootloader do that): the
# update handler that answers NACK unsupported.
FW_SRC_atmega328p := mcu-firmware/port/atmega328p/port_atmega328p.c \
    mcu-firmware/update/fwupdate_none.c
