# The soak of tetherd (tests/soak/soak.c, docs/TESTING.md "Soak"): tetherd
# at tether-sim's full rate with query traffic, its resident memory and
# descriptors sampled every second, then a shorter run under valgrind's
# memcheck.  Included at the end of the top-level Makefile.  Both targets
# run the plain build's tetherd and tether-sim from $(BUILD); valgrind
# cannot run a sanitizer build, so neither belongs in the SAN=1 pass.
#
#   make soak          SOAK_SECONDS (default 600) at full ingest, then
#                      VALGRIND_SECONDS (default 60) under valgrind
#   make check-soak    the form for make test: 60 s (tetherd with smaller
#                      bounds so that it warms up in time) and 20 s

SOAK_SECONDS ?= 600
VALGRIND_SECONDS ?= 60
SOAK := $(BUILD)/tests/soak
SOAK_SRC := tests/soak/soak.c tests/integration/itest.c \
            tests/integration/simproc.c
SOAK_ENV = TETHER_SIM=$(SIM) TETHERD=$(TETHERD) \
           VALGRIND=$$(command -v valgrind)

$(BUILD)/obj/host/tests/soak/%.o: tests/soak/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PROTO_INC) -Itests/integration \
	    $(shell pkg-config --cflags check libcjson sqlite3) -c $< -o $@

$(SOAK): $(call obj,host,$(SOAK_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ \
	    $(shell pkg-config --libs check sqlite3 libcjson) -lm

.PHONY: soak soak-run check-soak soak-no-san
soak: deps
	@$(MAKE) --no-print-directory soak-run

soak-run: soak-no-san $(SOAK) $(SIM) $(TETHERD)
	$(SOAK_ENV) SOAK_SECONDS=$(SOAK_SECONDS) \
	    VALGRIND_SECONDS=$(VALGRIND_SECONDS) $(SOAK)

check-soak: soak-no-san $(SOAK) $(SIM) $(TETHERD)
	$(SOAK_ENV) SOAK_SECONDS=60 VALGRIND_SECONDS=20 $(SOAK)

soak-no-san:
	@if [ -n "$(SAN)" ]; then \
	    echo "soak: needs the plain build (valgrind cannot run a" \
	         "sanitizer build); run it without SAN=1"; exit 1; fi
