# Stress tests of tetherd against tether-sim (docs/TESTING.md): a database
# that fills up (integration-diskfull) and a query socket under abuse
# (integration-abuse).  Included at the end of the top-level Makefile, whose
# variables and object rules it uses.
#
#   make check-diskfull check-abuse              about 20 s together
#   make BUILD=build/san SAN=1 check-diskfull check-abuse

INTEG_DISKFULL := $(BUILD)/tests/integration-diskfull
INTEG_ABUSE := $(BUILD)/tests/integration-abuse
INTEG_DISKFULL_SRC := tests/integration/test_diskfull.c \
                      tests/integration/itest.c tests/integration/simproc.c
INTEG_ABUSE_SRC := tests/integration/test_abuse.c tests/integration/itest.c \
                   tests/integration/simproc.c

$(INTEG_DISKFULL): $(call obj,host,$(INTEG_DISKFULL_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check sqlite3 libcjson)

$(INTEG_ABUSE): $(call obj,host,$(INTEG_ABUSE_SRC)) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ \
	    $(shell pkg-config --libs check sqlite3 libcjson) -lpthread

.PHONY: check-diskfull check-abuse
build: $(INTEG_DISKFULL) $(INTEG_ABUSE)

check-diskfull: $(INTEG_DISKFULL) $(SIM) $(TETHERD)
	TETHER_SIM=$(SIM) TETHERD=$(TETHERD) $(INTEG_DISKFULL)

check-abuse: $(INTEG_ABUSE) $(SIM) $(TETHERD)
	TETHER_SIM=$(SIM) TETHERD=$(TETHERD) $(INTEG_ABUSE)
