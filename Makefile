# tether: one GNU Makefile for the whole tree.  Outputs go under $(BUILD).
#
#   make          build everything into build/
#   make run      build, then run the simulator and show its frames decoded
#   make test     install what is missing, build, run every test (also under
#                 AddressSanitizer + UBSan, and the Cortex-M33 compile check)
#   make deps     install the Debian packages the project needs
#   make fmt      apply .clang-format to every C file
#
# Entry points that need packages call scripts/deps.sh first and then
# re-enter make, so pkg-config runs only once the packages are there.

BUILD ?= build
CC ?= cc
ARM_CC ?= arm-none-eabi-gcc
PYTHON ?= python3
SAN ?=

GIT_REV := $(shell git rev-parse --short=8 HEAD 2>/dev/null)
BUILD_ID := 0x$(if $(GIT_REV),$(GIT_REV),0)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Wvla
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 $(WARN) $(CFLAGS) -MMD -MP
LDLIBS :=
ifneq ($(SAN),)
ALL_CFLAGS += -fsanitize=address,undefined,float-cast-overflow \
              -fno-sanitize-recover=all \
              -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined,float-cast-overflow
endif

# ---- Sources ----
PROTO_SRC := $(wildcard proto/*.c)
CORE_SRC := $(wildcard mcu-firmware/core/*.c)
# Firmware update (docs/UPDATE.md): the handler and the boot logic, built by
# tether-sim, the unit tests and ports that take updates; the others build
# mcu-firmware/update/fwupdate_none.c (named in their port.mk, or by
# default: see fw_update below).
UPDATE_SRC := mcu-firmware/update/boot.c mcu-firmware/update/fwupdate.c
HOST_PORT_SRC := $(wildcard mcu-firmware/port/host/*.c)
DUMP_SRC := tools/tether-dump.c
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
DAEMON_TEST_SRC := $(wildcard tests/daemon/test_*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
INTEG_SRC := tests/integration/test_sim.c tests/integration/simproc.c
INTEG_D_SRC := tests/integration/test_tetherd.c tests/integration/itest.c \
               tests/integration/simproc.c
INTEG_Q_SRC := tests/integration/test_query.c tests/integration/itest.c \
               tests/integration/simproc.c
CTL_SRC := $(wildcard tetherctl/*.c)
CTL_LIB_SRC := $(filter-out tetherctl/tetherctl.c,$(CTL_SRC))
CTL_TEST_SRC := $(wildcard tests/tetherctl/*.c)

PROTO_INC := -Iproto
CORE_INC := $(PROTO_INC) -Imcu-firmware/core -Imcu-firmware/port \
            -Imcu-firmware/update
HOST_INC := $(CORE_INC) -Imcu-firmware/port/host
FAKE_INC := $(CORE_INC) -Itests/fake

obj = $(patsubst %.c,$(BUILD)/obj/$(1)/%.o,$(2))

PROTO_OBJ := $(call obj,host,$(PROTO_SRC))
CORE_HOST_OBJ := $(call obj,host,$(CORE_SRC) $(UPDATE_SRC))
HOST_PORT_OBJ := $(call obj,host,$(HOST_PORT_SRC))
CORE_FAKE_OBJ := $(call obj,fake,$(CORE_SRC) $(UPDATE_SRC) \
                   tests/fake/port_fake.c)
UNIT_OBJ := $(call obj,fake,$(UNIT_SRC))
INTEG_OBJ := $(call obj,host,$(INTEG_SRC))
INTEG_D_OBJ := $(call obj,host,$(INTEG_D_SRC))
INTEG_Q_OBJ := $(call obj,host,$(INTEG_Q_SRC))
CTL_OBJ := $(call obj,host,$(CTL_SRC))
DUMP_OBJ := $(call obj,host,$(DUMP_SRC))
DAEMON_OBJ := $(call obj,host,$(DAEMON_SRC))
DAEMON_TEST_BIN := $(patsubst tests/daemon/%.c,$(BUILD)/tests/daemon/%,\
                     $(DAEMON_TEST_SRC))
ARM_OBJ := $(call obj,arm,$(PROTO_SRC) $(CORE_SRC) $(UPDATE_SRC) \
             mcu-firmware/update/fwupdate_none.c)

PROTO_LIB := $(BUILD)/libtether-proto.a
DAEMON_LIB := $(BUILD)/libtetherd.a
TETHERD := $(BUILD)/tetherd
# Libraries of the daemon, each used by one module only (see daemon/*.h).
DAEMON_PKGS := libuv libserialport sqlite3 inih libsystemd libcjson
DAEMON_CFLAGS = $(shell pkg-config --cflags $(DAEMON_PKGS))
DAEMON_LIBS = $(shell pkg-config --libs $(DAEMON_PKGS)) -lpthread
SIM := $(BUILD)/tether-sim
DUMP := $(BUILD)/tether-dump
UNIT := $(BUILD)/tests/unit
INTEG := $(BUILD)/tests/integration
INTEG_D := $(BUILD)/tests/integration-tetherd
INTEG_Q := $(BUILD)/tests/integration-query
TETHERCTL := $(BUILD)/tetherctl
CTL_TEST := $(BUILD)/tests/tetherctl

.PHONY: all build run run-sim install bench test test-run check-unit check-daemon \
        check-ctl check-avr check-qemu check-flash run-qemu \
        check-integration check-wire check-arm check-systemd deps fmt clean
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build

build: $(PROTO_LIB) $(SIM) $(DUMP) $(UNIT) $(INTEG) $(INTEG_D) $(TETHERD) \
       $(INTEG_Q) $(TETHERCTL) $(CTL_TEST) \
       $(DAEMON_TEST_BIN)

deps:
	@scripts/deps.sh

# ---- Host objects ----
$(BUILD)/obj/host/proto/%.o: proto/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PROTO_INC) -c $< -o $@

$(BUILD)/obj/host/mcu-firmware/%.o: mcu-firmware/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DFW_BUILD_ID=$(BUILD_ID) $(HOST_INC) -c $< -o $@

$(BUILD)/obj/host/daemon/%.o: daemon/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -D_GNU_SOURCE $(PROTO_INC) $(DAEMON_CFLAGS) -c $< -o $@

$(BUILD)/obj/host/tests/daemon/%.o: tests/daemon/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -D_GNU_SOURCE $(PROTO_INC) -Idaemon -Itests/daemon \
	    $(DAEMON_CFLAGS) $(shell pkg-config --cflags check) -c $< -o $@

$(BUILD)/obj/host/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PROTO_INC) -c $< -o $@

$(BUILD)/obj/host/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PROTO_INC) \
	    $(shell pkg-config --cflags check libcjson) -c $< -o $@

# The core again, against the link-time fake port the unit tests drive.
$(BUILD)/obj/fake/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(FAKE_INC) $(shell pkg-config --cflags check) \
	    -c $< -o $@

$(PROTO_LIB): $(PROTO_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(DAEMON_LIB): $(DAEMON_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(TETHERD): $(call obj,host,daemon/main.c) $(DAEMON_LIB) $(PROTO_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LIBS)

# One Check runner per daemon module: tests/daemon/test_<module>.c.
$(BUILD)/tests/daemon/test_%: $(BUILD)/obj/host/tests/daemon/test_%.o \
        $(BUILD)/obj/host/tests/daemon/daemon_test_util.o $(DAEMON_LIB) \
        $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LIBS) $(shell pkg-config --libs check)

$(SIM): $(HOST_PORT_OBJ) $(CORE_HOST_OBJ) $(PROTO_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- Firmware update on tether-sim (docs/UPDATE.md) ----
# Two more simulators from the same sources, each with its own objects, as
# the images the update tests flash: sim-v2 is version 0.2.0; sim-mute is
# 0.3.0 and never sends telemetry (FW_TEST_MUTE, core/fw.c), so it fails
# the daemon's health gate.  integration-update drives tether-sim --flash
# over its pty with UPD_* requests (check-integration runs it), and with
# --throughput measures upload speed against the line rate.
SIM_V2 := $(BUILD)/tests/sim-v2
SIM_MUTE := $(BUILD)/tests/sim-mute
SIM_VARIANT_SRC := $(HOST_PORT_SRC) $(CORE_SRC) $(UPDATE_SRC)
INTEG_U := $(BUILD)/tests/integration-update
INTEG_U_SRC := tests/integration/test_update.c tests/integration/simproc.c

$(BUILD)/obj/sim-v2/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DFW_BUILD_ID=$(BUILD_ID) -DFW_VERSION_MINOR=2u \
	    $(HOST_INC) -c $< -o $@
$(BUILD)/obj/sim-mute/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DFW_BUILD_ID=$(BUILD_ID) -DFW_VERSION_MINOR=3u \
	    -DFW_TEST_MUTE=1 $(HOST_INC) -c $< -o $@
$(SIM_V2): $(call obj,sim-v2,$(SIM_VARIANT_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(SIM_MUTE): $(call obj,sim-mute,$(SIM_VARIANT_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(INTEG_U): $(call obj,host,$(INTEG_U_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check)

.PHONY: check-update
build: $(SIM_V2) $(SIM_MUTE) $(INTEG_U)
check-integration: check-update
check-update: $(INTEG_U) $(SIM) $(SIM_V2) $(SIM_MUTE)
	TETHER_SIM=$(SIM) TETHER_SIM_V2=$(SIM_V2) TETHER_SIM_MUTE=$(SIM_MUTE) \
	    $(INTEG_U)

$(DUMP): $(DUMP_OBJ) $(PROTO_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT): $(UNIT_OBJ) $(CORE_FAKE_OBJ) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check)

$(INTEG): $(INTEG_OBJ) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check)

$(INTEG_Q): $(INTEG_Q_OBJ) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check sqlite3 libcjson)

$(BUILD)/obj/host/tetherctl/%.o: tetherctl/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -D_GNU_SOURCE $(PROTO_INC) \
	    $(shell pkg-config --cflags libcjson) -c $< -o $@

$(TETHERCTL): $(CTL_OBJ) $(PROTO_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libcjson)

# tetherctl's output checked against expected text (tests/tetherctl/).
$(BUILD)/obj/host/tests/tetherctl/%.o: tests/tetherctl/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -D_GNU_SOURCE $(PROTO_INC) -Itetherctl \
	    $(shell pkg-config --cflags check libcjson) -c $< -o $@

$(CTL_TEST): $(call obj,host,$(CTL_TEST_SRC) $(CTL_LIB_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check libcjson)

$(INTEG_D): $(INTEG_D_OBJ) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check sqlite3 libcjson)

# ---- Freestanding Cortex-M33 compile of proto/ and the core ----
ARM_CFLAGS := -std=c11 $(WARN) -Os -mcpu=cortex-m33 -mthumb -ffreestanding \
              -fno-common
$(BUILD)/obj/arm/%.o: %.c
	@mkdir -p $(@D)
	$(ARM_CC) $(ARM_CFLAGS) $(HOST_INC) -c $< -o $@

# The core is compiled against the host port's sizes until a Cortex-M33 port
# exists; what is checked is that it needs nothing a bare-metal target lacks.
check-arm: $(ARM_OBJ)
	@bad=$$(grep -h '^#include <' proto/*.[ch] | \
	    grep -v -E '<(stdint|stddef|stdbool|string)\.h>' || true); \
	if [ -n "$$bad" ]; then \
	    echo "check-arm: proto/ includes more than it may: $$bad"; exit 1; fi
	@echo "check-arm: proto/, mcu-firmware/core/ and update/ compile" \
	      "freestanding" \
	      "for Cortex-M33 ($(words $(ARM_OBJ)) files)"

# ---- Firmware images, one per port ----
# Each bare-metal port has mcu-firmware/port/<name>/port.mk, which sets
# FW_CC_<name>, FW_CFLAGS_<name>, FW_LDFLAGS_<name>, FW_LIBS_<name>,
# FW_SRC_<name> (the port's own .c and .S files) and FW_SIZE_<name> (the
# size tool).  The rules below build proto/, the core and the port into
# $(BUILD)/fw/<name>/tether-fw.elf.  `make fw PORT=<name>` builds one.
FW_PORTS := $(patsubst mcu-firmware/port/%/port.mk,%,\
              $(wildcard mcu-firmware/port/*/port.mk))
include $(wildcard mcu-firmware/port/*/port.mk)

# A port whose FW_SRC names no update handler (mcu-firmware/update/) takes
# no updates: it gets fwupdate_none.c.
fw_update = $(if $(filter mcu-firmware/update/fwupdate%,$(FW_SRC_$(1))),,\
              mcu-firmware/update/fwupdate_none.c)
fw_objs = $(patsubst %,$(BUILD)/fw/$(1)/obj/%.o,\
            $(basename $(PROTO_SRC) $(CORE_SRC) $(FW_SRC_$(1)) \
                       $(call fw_update,$(1))))
fw_elf = $(BUILD)/fw/$(1)/tether-fw.elf

define fw_rules
$(BUILD)/fw/$(1)/obj/%.o: %.c
	@mkdir -p $$(@D)
	$$(FW_CC_$(1)) $$(FW_CFLAGS_$(1)) -MMD -MP -DFW_BUILD_ID=$$(BUILD_ID) \
	    -Iproto -Imcu-firmware/core -Imcu-firmware/port \
	    -Imcu-firmware/port/$(1) -c $$< -o $$@
$(BUILD)/fw/$(1)/obj/%.o: %.S
	@mkdir -p $$(@D)
	$$(FW_CC_$(1)) $$(FW_CFLAGS_$(1)) -MMD -MP -c $$< -o $$@
$(call fw_elf,$(1)): $(call fw_objs,$(1))
	$$(FW_CC_$(1)) $$(FW_CFLAGS_$(1)) $$(FW_LDFLAGS_$(1)) -o $$@ $$^ \
	    $$(FW_LIBS_$(1))
endef
$(foreach p,$(FW_PORTS),$(eval $(call fw_rules,$(p))))

FW_ELFS := $(foreach p,$(FW_PORTS),$(call fw_elf,$(p)))

.PHONY: fw fw-build
fw: deps
	@$(MAKE) --no-print-directory fw-build
fw-build: $(if $(PORT),$(call fw_elf,$(PORT)),$(FW_ELFS))

# Flash and RAM of each image; check-size fails when a budget is exceeded
# (docs/FIRMWARE.md).
.PHONY: size check-size
size: deps
	@$(MAKE) --no-print-directory check-size
check-size: $(FW_ELFS)
	@scripts/fw-size.sh $(BUILD) $(FW_PORTS)

# ---- The ATmega328P image, run in simavr ----
AVR_TEST_SRC := $(wildcard tests/avr/*.c)
AVR_TEST := $(BUILD)/tests/avr
AVR_FW ?= $(call fw_elf,atmega328p)

$(BUILD)/obj/host/tests/avr/%.o: tests/avr/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PROTO_INC) -Imcu-firmware/core \
	    -Imcu-firmware/port/atmega328p \
	    $(shell pkg-config --cflags check simavr) -c $< -o $@

$(AVR_TEST): $(call obj,host,$(AVR_TEST_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check simavr)

# simavr 1.6 leaks a little of its own at every avr_init() and reset; the
# suppressions name those allocation sites only (tests/avr/lsan.supp).
check-avr: $(AVR_TEST) $(AVR_FW)
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/avr/lsan.supp:print_suppressions=0 \
	    TETHER_FW_ATMEGA328P=$(AVR_FW) $(AVR_TEST)

# ---- Firmware update through tetherd and tetherctl (docs/UPDATE.md) ----
INTEG_F := $(BUILD)/tests/integration-flash
INTEG_F_SRC := tests/integration/test_flash.c tests/integration/itest.c \
               tests/integration/simproc.c

$(INTEG_F): $(call obj,host,$(INTEG_F_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check sqlite3 libcjson)

# The OpenOCD of these tests is a stand-in script, not OpenOCD.
check-flash: $(INTEG_F) $(SIM) $(SIM_V2) $(SIM_MUTE) $(TETHERD) $(TETHERCTL)
	TETHER_SIM=$(SIM) TETHER_SIM_V2=$(SIM_V2) TETHER_SIM_MUTE=$(SIM_MUTE) \
	    TETHERD=$(TETHERD) TETHERCTL=$(TETHERCTL) \
	    TETHER_OPENOCD_STANDIN=tests/integration/openocd-standin.sh $(INTEG_F)

# ---- tetherd against the firmware image in QEMU (mps2-an505) ----
INTEG_QEMU_SRC := tests/integration/test_qemu.c tests/integration/qemuproc.c \
                  tests/integration/itest.c tests/integration/simproc.c
INTEG_QEMU := $(BUILD)/tests/integration-qemu
FW_MPS2 := $(call fw_elf,mps2-an505)

$(INTEG_QEMU): $(call obj,host,$(INTEG_QEMU_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check sqlite3 libcjson)

check-qemu: $(INTEG_QEMU) $(FW_MPS2) $(FW_RESETS_mps2-an505) $(SIM) \
            $(TETHERD) $(TETHERCTL)
	TETHER_FW_MPS2=$(FW_MPS2) TETHER_FW_MPS2_RESETS=$(FW_RESETS_mps2-an505) \
	TETHER_QEMU_SH=scripts/qemu.sh TETHER_SIM=$(SIM) TETHERD=$(TETHERD) \
	TETHERCTL=$(TETHERCTL) $(INTEG_QEMU)

# Targets defined above the point where build: is read are added here:
# make expands a rule's prerequisites when it reads the rule.
build: $(FW_ELFS) $(AVR_TEST) $(INTEG_F) $(INTEG_QEMU)

# ---- Tests ----
test: deps
	@$(MAKE) --no-print-directory test-run

# The stress tests run once each: fault injection and the disk-full test
# against the sanitized daemon, the soak (RSS and valgrind mean nothing
# under ASan) and the fuzzers (sanitized already) in the plain pass, socket
# abuse in both (its memory bound holds only without ASan's quarantine).
# The QEMU suite runs in the plain pass only: its host side is tetherd,
# which the sanitized pass covers against tether-sim, and a minute counts.
test-run: build check-unit check-daemon check-ctl check-integration \
          check-flash check-qemu check-wire check-arm check-size check-avr \
          check-u585 check-systemd check-abuse check-soak check-fuzz
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/san SAN=1 check-unit \
	    check-daemon check-ctl check-integration check-flash check-avr \
	    check-u585 check-faults check-diskfull check-abuse
	@echo "make test: all tests passed"

check-unit: $(UNIT)
	TETHER_PROTOCOL_MD=proto/PROTOCOL.md TETHER_TEST_DATA=tests/data $(UNIT)

check-ctl: $(CTL_TEST)
	TETHER_TEST_DATA=tests/data $(CTL_TEST)

check-daemon: $(DAEMON_TEST_BIN) $(SIM)
	@set -e; for t in $(DAEMON_TEST_BIN); do \
	    echo "$$t"; TETHER_SIM=$(SIM) TETHER_TEST_DATA=tests/data $$t; done

check-integration: $(INTEG) $(INTEG_D) $(INTEG_Q) $(SIM) $(TETHERD) \
        $(TETHERCTL)
	TETHER_SIM=$(SIM) $(INTEG)
	TETHER_SIM=$(SIM) TETHERD=$(TETHERD) $(INTEG_D)
	TETHER_SIM=$(SIM) TETHERD=$(TETHERD) TETHERCTL=$(TETHERCTL) $(INTEG_Q)

check-systemd: $(TETHERD) $(TETHERCTL)
	scripts/check-systemd.sh
	@d=$$(mktemp -d) && \
	PREFIX=/usr DESTDIR=$$d BUILD=$(BUILD) scripts/install.sh >/dev/null && \
	for f in usr/bin/tetherd usr/bin/tetherctl etc/tether/tetherd.conf; do \
	    test -e "$$d/$$f" || { echo "install: $$f missing"; exit 1; }; done && \
	grep -q '^ExecStart=/usr/bin/tetherd' $$(find $$d -name tetherd.service) \
	    && rm -rf "$$d" && echo "check-systemd: make install layout ok"

check-wire: $(SIM)
	$(PYTHON) tests/wirecheck.py --doc proto/PROTOCOL.md --sim $(SIM) \
	    --recorded tests/data/sim-seed1.bin tests/data/sim-seed1.chk

# ---- Running ----
run: deps
	@$(MAKE) -s --no-print-directory $(SIM) $(TETHERD) $(TETHERCTL)
	@scripts/run.sh $(BUILD)

# The main job against the emulated Cortex-M33 instead of the simulator.
run-qemu: deps
	@$(MAKE) -s --no-print-directory $(TETHERD) $(TETHERCTL) $(FW_MPS2)
	@scripts/run.sh $(BUILD) --qemu $(FW_MPS2)

# The simulator alone, its frames decoded (no daemon).
run-sim: deps
	@$(MAKE) -s --no-print-directory $(SIM) $(DUMP)
	@scripts/run-sim.sh $(SIM) $(DUMP)

# ---- Benchmarks (not part of make test) ----
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

$(BUILD)/obj/host/bench/%.o: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -D_GNU_SOURCE $(PROTO_INC) -Idaemon $(DAEMON_CFLAGS) \
	    -c $< -o $@

$(BUILD)/bench/%: $(BUILD)/obj/host/bench/%.o $(DAEMON_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LIBS)

bench: deps
	@scripts/deps.sh scripts/packages-bench.txt
	@scripts/peers.sh $(BUILD)/peers || \
	    echo "bench: gpsd and chrony not fetched; their figures are left out"
	@$(MAKE) --no-print-directory $(SIM) $(TETHERD) $(TETHERCTL) $(SIM_V2) \
	    $(SIM_MUTE) $(INTEG_F) $(BENCH_BIN)
	bench/bench.sh $(BUILD)

PREFIX ?= /usr/local
install: build
	PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) BUILD=$(BUILD) scripts/install.sh

fmt:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

.SECONDARY:

# Stress tests (docs/TESTING.md) and fuzzing (docs/FUZZING.md), each in a
# fragment beside its sources.
include tests/integration/faults.mk tests/integration/stress.mk \
        tests/fuzz/fuzz.mk tests/soak/soak.mk

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
