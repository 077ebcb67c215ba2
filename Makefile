# troupe — an actor runtime for C.
#   make run     build everything, start the demo (chat, /metrics on 9100)
#   make test    run every test
#   (both build with every CPU, unless -j is given)
#   make bench   run the benchmark suite              make deps    check/install packages
#   make sim-check  the simulation sweeps (sim-race found and replayed, determinism,
#                the chat's protocol scenarios over 1,000 seeds each)
#   make micro   the data-structure micro benchmarks (bench/micro)
#   make install PREFIX=/usr/local DESTDIR=           make clean
#   SAN=address (ASan+UBSan) or SAN=thread (TSan) build into their own folders.

CC      ?= cc
# make's own default is g++; ours is the system's C++ compiler, like cc.
ifeq ($(origin CXX),default)
  CXX := c++
endif
SAN     ?=
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   := build/$(if $(SAN),$(SAN),release)$(if $(DEBUG),-debug)$(if $(findstring clang,$(CC)),-clang)

# ei (erlang-dev) encodes and decodes Erlang's external term format for
# dist/; Debian installs it under a versioned erl_interface folder. nettle
# gives the MD5 of the distribution handshake.
EI_DIR   := $(firstword $(wildcard /usr/lib/erlang/lib/erl_interface-*))
CPPFLAGS := -Iinclude -D_GNU_SOURCE -I$(EI_DIR)/include
CFLAGS   := -std=c11 -g -Wall -Wextra -Werror -fPIC -pthread
CXXFLAGS := -std=c++17 -g -Wall -Wextra -Werror -pthread
LDLIBS   := -lck -lmsgpackc -lhttp_parser $(EI_DIR)/lib/libei.a -lnettle -pthread

# Debug assertions (base/debug.h): in every SAN= build, or with DEBUG=1.
ifneq ($(SAN)$(DEBUG),)
  CPPFLAGS += -DTR_DEBUG
endif

ifeq ($(SAN),)
  OPTFLAGS := -O2
else ifeq ($(SAN),address)
  # TR__UBSAN: UBSan is on (mailbox/msg.h: the TLS model it needs).
  CPPFLAGS += -DTR__UBSAN
  OPTFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
  LDFLAGS  += -fsanitize=address,undefined
else ifeq ($(SAN),thread)
  # ck_pr's inline assembly is invisible to TSan; support/tsan/ck_pr.h puts
  # the same operations on compiler atomics so that TSan can follow them.
  CPPFLAGS := -Isupport/tsan $(CPPFLAGS)
  OPTFLAGS := -O1 -fsanitize=thread
  LDFLAGS  += -fsanitize=thread
else
  $(error SAN must be empty, address or thread)
endif
CFLAGS   += $(OPTFLAGS)
CXXFLAGS += $(OPTFLAGS)

# The version lives in include/troupe/version.h alone; the shared library's
# names and troupe.pc take it from there.
version_of = $(shell awk '$$2 == "TROUPE_VERSION_$(1)" { print $$3 }' include/troupe/version.h)
MAJOR   := $(call version_of,MAJOR)
VERSION := $(MAJOR).$(call version_of,MINOR).$(call version_of,PATCH)
ifneq ($(words $(subst ., ,$(VERSION))),3)
  $(error cannot read the version from include/troupe/version.h)
endif
SONAME  := libtroupe.so.$(MAJOR)

LIB_SRC  := $(wildcard base/*.c sys/*.c actors/*.c mailbox/*.c sched/*.c reactor/*.c net/*.c dist/*.c observe/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_A    := $(BUILD)/libtroupe.a
LIB_SO   := $(BUILD)/libtroupe.so
LIB_REAL := $(BUILD)/libtroupe.so.$(VERSION)

EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
# The tutorial's programs (docs/guide.md): built like the examples, and run
# by `make test`, each checking itself (exit 0 when it worked).
GUIDE    := $(patsubst docs/guide/%.c,$(BUILD)/guide/%,$(wildcard docs/guide/*.c))
# Programs for users of a running troupe program (troupe-top), installed
# by make install; they speak to it over its sockets, not through the library.
TOOLS    := $(patsubst tools/%.c,$(BUILD)/tools/%,$(wildcard tools/*.c))
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
MICRO    := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/micro/*.c))
TEST_SRC := $(wildcard tests/*.c)
TEST_BIN := $(BUILD)/tests/run
CHAT_MAIN := $(BUILD)/obj/tests/chat_example_main.o
CXX_TEST := $(BUILD)/tests/cxx/hello

.PHONY: all lib deps run test bench micro install clean cxx-test check-exports sim-check
# Keep the programs' objects: the device script links them again, statically.
.SECONDARY:
all: lib $(EXAMPLES) $(GUIDE) $(TOOLS) $(BENCHES) $(MICRO) $(TEST_BIN) $(CXX_TEST)
lib: $(LIB_A) $(LIB_SO)

deps:
	@sh support/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# Only what include/ marks TR_API is exported (troupe/api.h).
$(LIB_OBJ): CFLAGS += -fvisibility=hidden

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(LIB_REAL): $(LIB_OBJ)
	@mkdir -p $(@D)
	@# ei's own names stay inside (only tr_ is exported: check-exports.sh).
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--exclude-libs,ALL -o $@ $^ $(LDLIBS)

# libtroupe.so for the linker, libtroupe.so.MAJOR (the SONAME) for the loader.
$(LIB_SO): $(LIB_REAL)
	ln -sf $(notdir $<) $(@D)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/guide/%: $(BUILD)/obj/docs/guide/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tools/%.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lm

# The tests count the library's send calls (tests/util.c, tt_send_calls).
# -rdynamic: the watchdog and the trace name behaviours with dladdr, which
# sees only exported symbols (tests/test_watchdog.c, test_trace.c).
$(TEST_BIN): $(TEST_SRC:%.c=$(BUILD)/obj/%.o) $(CHAT_MAIN) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -rdynamic -Wl,--wrap=send,--wrap=sendmsg,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc,--wrap=strdup,--wrap=pthread_create,--wrap=accept4 -o $@ $^ -lcunit $(LDLIBS)

# The sim_chat suite runs examples/chat.c's unchanged main inside the test
# runner (tests/sim_chat_util.h): the same source, its main renamed.
$(CHAT_MAIN): examples/chat.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Dmain=tr_chat_example_main -MMD -MP -c $< -o $@

# The C++ test: troupe.h compiles as C++ and a C++ program can use it;
# first, each public header alone compiles as C11 and as C++17, so that each
# includes what it needs and carries its own extern "C".
HEADERS    := include/troupe.h $(wildcard include/troupe/*.h)
HEADERS_OK := $(BUILD)/tests/cxx/headers.ok
$(HEADERS_OK): $(HEADERS)
	@mkdir -p $(@D)
	@# Each header included alone, as a user includes it (compiled as the
	@# main file, clang would count its static inline helpers as unused).
	@for h in $(HEADERS); do \
	    printf '#include <%s>\n' "$${h#include/}" | \
	        $(CC) -Iinclude -std=c11 -Wall -Wextra -Werror -fsyntax-only -x c - && \
	    printf '#include <%s>\n' "$${h#include/}" | \
	        $(CXX) -Iinclude -std=c++17 -Wall -Wextra -Werror -fsyntax-only -x c++ - || exit 1; \
	done
	@touch $@

$(CXX_TEST): tests/cxx/hello.cc $(LIB_A) | $(HEADERS_OK)
	@mkdir -p $(@D)
	$(CXX) -Iinclude $(CXXFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

cxx-test: $(CXX_TEST)
	$(CXX_TEST)

check-exports: $(LIB_SO)
	sh support/check-exports.sh $(LIB_SO) include

# The sub-makes of run, test, bench and micro build with every CPU unless
# the user chose: in a recipe, MAKEFLAGS holds -jN (or a bare j among the
# one-letter flags) when make was given -j.
USER_JOBS = $(filter -j%,$(MAKEFLAGS))$(findstring j,$(filter-out -%,$(firstword $(MAKEFLAGS))))
JOBS = $(if $(USER_JOBS),,-j$(shell nproc))

# The chat server, with /metrics on 9100 for Prometheus or troupe-top.
run: deps
	@$(MAKE) $(JOBS) --no-print-directory all
	@echo "run: the chat on 127.0.0.1:7000 (nc 127.0.0.1 7000), its metrics on" \
	    "http://127.0.0.1:9100/metrics; watch it from another terminal with:"
	@echo "    $(BUILD)/tools/troupe-top 127.0.0.1:9100"
	$(BUILD)/examples/chat 7000 --metrics 9100

SAN_ENV := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/support/tsan/suppressions.txt" \
           ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# The tests, the guide's programs (each checks itself), then a smoke run of
# every benchmark at small sizes: their self-checks must pass (no figures
# are judged here).
test: deps
	@$(MAKE) $(JOBS) --no-print-directory $(TEST_BIN) $(BENCHES) $(EXAMPLES) $(GUIDE) $(TOOLS) $(CXX_TEST) $(LIB_SO)
	$(SAN_ENV) BUILD=$(BUILD) $(TEST_BIN)
	@for g in $(GUIDE); do echo "$$g"; $(SAN_ENV) $$g || exit 1; done
	@# The examples that end by themselves (the servers are run elsewhere:
	@# chat and udp-echo by the test suites chat_* and udp, echo by the
	@# benchmark pass below).
	@for e in hello pingpong supervisor; do \
	    echo "$(BUILD)/examples/$$e"; $(SAN_ENV) $(BUILD)/examples/$$e > /dev/null || exit 1; \
	done
	$(SAN_ENV) $(CXX_TEST)
	sh support/check-exports.sh $(LIB_SO) include
	sh support/check-layers.sh
	sh support/check-includes.sh
	$(SAN_ENV) BUILD=$(BUILD) BENCH_SCALE=small BENCH_OUT=$(BUILD)/bench-results sh bench/run.sh

# make sim-check: the simulator's sweeps (docs/simulation.md), too long for
# `make test`: troupe-sim must find examples/sim-race's lost update within
# SIM_SEEDS seeds, uniform and PCT, and replay it; TROUPE_SIM_CHECK must see
# the same trace hashes twice for hello and pingpong; the chat's protocol
# scenarios (tests/test_sim_chat.c) pass over seeds 1-1000 each (`make
# test` runs 20 each). The steps are in support/sim-check.sh.
SIM_SEEDS ?= 10000
sim-check: deps
	@$(MAKE) $(JOBS) --no-print-directory $(BUILD)/tools/troupe-sim $(TEST_BIN) \
	    $(BUILD)/examples/sim-race $(BUILD)/examples/hello $(BUILD)/examples/pingpong
	$(SAN_ENV) BUILD=$(BUILD) SIM_SEEDS=$(SIM_SEEDS) sh support/sim-check.sh

# The servers of the network workloads are examples (echo, chat, http).
bench: deps
	@$(MAKE) $(JOBS) --no-print-directory $(BENCHES) $(EXAMPLES)
	BUILD=$(BUILD) sh bench/run.sh

# make micro: each micro benchmark of bench/micro (one internal structure,
# case by case, one result line per case) at its default sizes. They are
# built by the $(BUILD)/bench/% rule above, into $(BUILD)/bench/micro/.
micro: deps
	@$(MAKE) $(JOBS) --no-print-directory $(MICRO)
	@for m in $(MICRO); do echo "$$m"; $$m || exit 1; done

# make fuzz: the framer (net/frame.c) under libFuzzer with ASan+UBSan, for
# FUZZ_RUNS executions from the seed corpus in fuzz/corpus (regenerate it with
# fuzz/make_corpus.py); new inputs go to build/fuzz/corpus, crashes to
# build/fuzz/. Then the HTTP framing (net/http.c) the same way, from
# fuzz/http-corpus into build/fuzz/http-corpus, and the distribution's
# decoders (dist_fuzz: handshake, frames, control messages, distribution
# headers and fragments, EPMD replies)
# from fuzz/dist-corpus. Needs clang with libFuzzer; not part of `all`.
FUZZ_CC   ?= clang
FUZZ_RUNS ?= 200000
FUZZ_BIN  := build/fuzz/frame_fuzz
FUZZ_HTTP := build/fuzz/http_fuzz
FUZZ_DIST := build/fuzz/dist_fuzz

.PHONY: fuzz
fuzz: $(FUZZ_BIN) $(FUZZ_HTTP) $(FUZZ_DIST)
	@mkdir -p build/fuzz/corpus build/fuzz/http-corpus build/fuzz/dist-corpus
	$(FUZZ_BIN) -runs=$(FUZZ_RUNS) -max_len=8192 -artifact_prefix=build/fuzz/ \
	    build/fuzz/corpus fuzz/corpus
	$(FUZZ_HTTP) -runs=$(FUZZ_RUNS) -max_len=8192 -artifact_prefix=build/fuzz/http- \
	    build/fuzz/http-corpus fuzz/http-corpus
	$(FUZZ_DIST) -runs=$(FUZZ_RUNS) -max_len=8192 -artifact_prefix=build/fuzz/dist- \
	    build/fuzz/dist-corpus fuzz/dist-corpus

$(FUZZ_DIST): fuzz/dist_fuzz.c dist/proto.c dist/term.c dist/proto.h dist/frag_rx.c dist/frag_rx.h \
              actors/ask.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -Iinclude -I$(EI_DIR)/include -D_GNU_SOURCE -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $@ fuzz/dist_fuzz.c dist/proto.c dist/term.c dist/frag_rx.c \
	    $(EI_DIR)/lib/libei.a -lnettle -pthread

$(FUZZ_HTTP): fuzz/http_fuzz.c net/http.c net/http.h net/frame.c net/frame.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -Iinclude -D_GNU_SOURCE -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $@ fuzz/http_fuzz.c net/http.c net/frame.c -lhttp_parser -lmsgpackc

$(FUZZ_BIN): fuzz/frame_fuzz.c net/frame.c net/frame.h net/http.c net/http.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -Iinclude -D_GNU_SOURCE -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $@ fuzz/frame_fuzz.c net/frame.c net/http.c -lmsgpackc -lhttp_parser

install: lib $(TOOLS)
	install -d $(DESTDIR)$(PREFIX)/include/troupe $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 include/troupe.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/troupe/*.h $(DESTDIR)$(PREFIX)/include/troupe/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(LIB_REAL)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libtroupe.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' support/troupe.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/troupe.pc

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
