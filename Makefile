# troupe — an actor runtime for C.
#   make run     build everything, start the demo     make test    run every test
#   make bench   run the benchmark suite              make deps    check/install packages
#   make micro   the data-structure micro benchmarks (bench/micro)
#   make install PREFIX=/usr/local DESTDIR=           make clean
#   SAN=address (ASan+UBSan) or SAN=thread (TSan) build into their own folders.

CC      ?= cc
SAN     ?=
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   := build/$(if $(SAN),$(SAN),release)$(if $(DEBUG),-debug)$(if $(findstring clang,$(CC)),-clang)

CPPFLAGS := -Iinclude -D_GNU_SOURCE
CFLAGS   := -std=c11 -g -Wall -Wextra -Werror -fPIC -pthread
LDLIBS   := -lck -lmsgpackc -pthread

# Debug assertions (base/debug.h): in every SAN= build, or with DEBUG=1.
ifneq ($(SAN)$(DEBUG),)
  CPPFLAGS += -DTR_DEBUG
endif

ifeq ($(SAN),)
  CFLAGS += -O2
else ifeq ($(SAN),address)
  CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SAN),thread)
  # ck_pr's inline assembly is invisible to TSan; support/tsan/ck_pr.h puts
  # the same operations on compiler atomics so that TSan can follow them.
  CPPFLAGS := -Isupport/tsan $(CPPFLAGS)
  CFLAGS   += -O1 -fsanitize=thread
  LDFLAGS  += -fsanitize=thread
else
  $(error SAN must be empty, address or thread)
endif

LIB_SRC  := $(wildcard actors/*.c mailbox/*.c sched/*.c reactor/*.c net/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_A    := $(BUILD)/libtroupe.a
LIB_SO   := $(BUILD)/libtroupe.so

EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
MICRO    := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/micro/*.c))
TEST_SRC := $(wildcard tests/*.c)
TEST_BIN := $(BUILD)/tests/run

.PHONY: all lib deps run test bench micro install clean
# Keep the programs' objects: the device script links them again, statically.
.SECONDARY:
all: lib $(EXAMPLES) $(BENCHES) $(MICRO) $(TEST_BIN)
lib: $(LIB_A) $(LIB_SO)

deps:
	@sh support/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(LIB_SO): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lm

# The tests count the library's send calls (tests/util.c, tt_send_calls).
$(TEST_BIN): $(TEST_SRC:%.c=$(BUILD)/obj/%.o) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -Wl,--wrap=send,--wrap=sendmsg -o $@ $^ -lcunit $(LDLIBS)

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/examples/chat 7000

SAN_ENV := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/support/tsan/suppressions.txt" \
           ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# The tests, then a smoke run of every benchmark at small sizes: their
# self-checks must pass (no figures are judged here).
test: deps
	@$(MAKE) --no-print-directory $(TEST_BIN) $(BENCHES) $(EXAMPLES)
	$(SAN_ENV) BUILD=$(BUILD) $(TEST_BIN)
	$(SAN_ENV) BUILD=$(BUILD) BENCH_SCALE=small BENCH_OUT=$(BUILD)/bench-results sh bench/run.sh

bench: deps
	@$(MAKE) --no-print-directory $(BENCHES)
	BUILD=$(BUILD) sh bench/run.sh

# make micro: each micro benchmark of bench/micro (one internal structure,
# case by case, one result line per case) at its default sizes. They are
# built by the $(BUILD)/bench/% rule above, into $(BUILD)/bench/micro/.
micro: deps
	@$(MAKE) --no-print-directory $(MICRO)
	@for m in $(MICRO); do echo "$$m"; $$m || exit 1; done

# make fuzz: the framer (net/frame.c) under libFuzzer with ASan+UBSan, for
# FUZZ_RUNS executions from the seed corpus in fuzz/corpus (regenerate it with
# fuzz/make_corpus.py); new inputs go to build/fuzz/corpus, crashes to
# build/fuzz/. Needs clang with libFuzzer; not part of `all`.
FUZZ_CC   ?= clang
FUZZ_RUNS ?= 200000
FUZZ_BIN  := build/fuzz/frame_fuzz

.PHONY: fuzz
fuzz: $(FUZZ_BIN)
	@mkdir -p build/fuzz/corpus
	$(FUZZ_BIN) -runs=$(FUZZ_RUNS) -max_len=8192 -artifact_prefix=build/fuzz/ \
	    build/fuzz/corpus fuzz/corpus

$(FUZZ_BIN): fuzz/frame_fuzz.c net/frame.c net/frame.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -Iinclude -D_GNU_SOURCE -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $@ fuzz/frame_fuzz.c net/frame.c -lmsgpackc

install: lib
	install -d $(DESTDIR)$(PREFIX)/include/troupe $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/troupe.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/troupe/*.h $(DESTDIR)$(PREFIX)/include/troupe/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' support/troupe.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/troupe.pc

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
