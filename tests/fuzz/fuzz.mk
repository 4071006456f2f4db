# libFuzzer targets (docs/FUZZING.md), included at the end of the top-level
# Makefile.  Each tests/fuzz/fuzz_<name>.c is linked with proto/ and the
# daemon's modules compiled again by clang with the fuzzer's coverage
# instrumentation and the sanitizers, into $(BUILD)/libfuzzer/: the gcc
# objects of the other rules carry no coverage and are never mixed in.
#
#   make fuzz        build every target and run each for FUZZ_SECONDS
#                    (default 300), two at a time, from a copy of its seed
#                    corpus; a crash fails and names its reproducer
#   make check-fuzz  the short form for make test: the inputs of
#                    tests/fuzz/regress/ and the seed corpora replayed once,
#                    then each target for FUZZ_CHECK_SECONDS (default 25)
#   make fuzz-seeds  rewrite the generated seeds (gen-*) of the corpora

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 300
FUZZ_CHECK_SECONDS ?= 25
FUZZ_TARGETS := deframer msg query config image
FUZZ_DIR := $(BUILD)/libfuzzer
FUZZ_SAN := -fsanitize=address,undefined,float-cast-overflow \
            -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 $(WARN) -O1 -g -MMD -MP $(FUZZ_SAN)
# Everything linked into a target gets coverage; only the link adds
# libFuzzer's main().
FUZZ_INSTR := -fsanitize=fuzzer-no-link

FUZZ_PROTO_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(PROTO_SRC))
FUZZ_DAEMON_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(DAEMON_SRC))
FUZZ_PROTO_LIB := $(FUZZ_DIR)/libtether-proto.a
FUZZ_DAEMON_LIB := $(FUZZ_DIR)/libtetherd.a
FUZZ_BIN := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_SEEDS := $(FUZZ_DIR)/fuzz-seeds

# The targets that need the daemon's modules and its libraries.
FUZZ_DAEMON_TARGETS := query config image

$(FUZZ_DIR)/obj/proto/%.o: proto/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INSTR) $(PROTO_INC) -c $< -o $@

$(FUZZ_DIR)/obj/daemon/%.o: daemon/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INSTR) -D_GNU_SOURCE $(PROTO_INC) \
	    $(DAEMON_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/obj/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INSTR) -D_GNU_SOURCE $(PROTO_INC) \
	    -Idaemon -Itests/fuzz $(DAEMON_CFLAGS) -c $< -o $@

$(FUZZ_PROTO_LIB): $(FUZZ_PROTO_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_DAEMON_LIB): $(FUZZ_DAEMON_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_deframer $(FUZZ_DIR)/fuzz_msg: $(FUZZ_DIR)/fuzz_%: \
        $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_PROTO_LIB)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^

# fuzz_query gets a flash.c of its own whose open() is the harness's
# fuzz_query_open(): requests name the image files the flash reads, and the
# harness maps those names onto images of its scratch directory, so no
# input makes it open a file of the machine.  Linked before the archive,
# this object is the flash the target uses.
$(FUZZ_DIR)/obj/query/daemon/flash.o: daemon/flash.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INSTR) -D_GNU_SOURCE $(PROTO_INC) \
	    $(DAEMON_CFLAGS) -Dopen=fuzz_query_open -c $< -o $@

$(FUZZ_DIR)/fuzz_query: $(FUZZ_DIR)/obj/query/daemon/flash.o

$(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_DAEMON_TARGETS)): $(FUZZ_DIR)/fuzz_%: \
        $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DAEMON_LIB) \
        $(FUZZ_PROTO_LIB)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $(filter %.o,$^) \
	    $(filter %.a,$^) $(DAEMON_LIBS)

# The seed generator is a plain program: proto/'s encoders write real
# frames and images.
$(FUZZ_SEEDS): tests/fuzz/seeds.c $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PROTO_INC) -o $@ $^

.PHONY: fuzz fuzz-build fuzz-run check-fuzz fuzz-seeds
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory fuzz-run

fuzz-build: $(FUZZ_BIN)

fuzz-run: $(FUZZ_BIN)
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh run $(FUZZ_DIR) \
	    $(FUZZ_TARGETS)

check-fuzz: $(FUZZ_BIN)
	scripts/fuzz.sh replay $(FUZZ_DIR) $(FUZZ_TARGETS)
	FUZZ_SECONDS=$(FUZZ_CHECK_SECONDS) scripts/fuzz.sh run $(FUZZ_DIR) \
	    $(FUZZ_TARGETS)

fuzz-seeds: $(FUZZ_SEEDS)
	$(FUZZ_SEEDS) tests/fuzz/corpus
