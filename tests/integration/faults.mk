# Fault injection against tetherd (docs/TESTING.md, "Fault injection"):
# line noise from tether-sim, frames split at every offset, an MCU reset
# mid-frame and a device unplugged a hundred times (the test as the MCU on
# its own pty), and SIGKILL during ingest.  Included at the end of the
# top-level Makefile.
#
#   make check-faults                      plain build
#   make BUILD=build/san SAN=1 check-faults    under ASan + UBSan
#
# The test checks stored ADC rows against the simulator's own waveform
# code (mcu-firmware/core/wave.c), so it builds against the core's headers
# and links wave.c's object.

INTEG_FAULTS := $(BUILD)/tests/integration-faults
INTEG_FAULTS_SRC := tests/integration/test_faults.c \
                    tests/integration/itest.c tests/integration/simproc.c
INTEG_FAULTS_OBJ := $(call obj,host,$(INTEG_FAULTS_SRC) \
                      mcu-firmware/core/wave.c)

$(BUILD)/obj/host/tests/integration/test_faults.o: \
    ALL_CFLAGS += -Imcu-firmware/core

$(INTEG_FAULTS): $(INTEG_FAULTS_OBJ) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check sqlite3 libcjson)

build: $(INTEG_FAULTS)

.PHONY: check-faults
check-faults: $(INTEG_FAULTS) $(SIM) $(TETHERD)
	TETHER_SIM=$(SIM) TETHERD=$(TETHERD) $(INTEG_FAULTS)
