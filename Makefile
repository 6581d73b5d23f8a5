# citadel-callout build.
#
#   make              build build/citadel-callout
#   make test         install missing dependencies, then run the whole suite:
#                     unit and integration tests, plain and under ASan+UBSan
#   make check        run the suite once, plain build, no install step
#   make check-sanitize   the same under -fsanitize=address,undefined
#   make demo         install, build and run the loopback demo
#   make install      install the binary (PREFIX, DESTDIR honoured)
#   make bench        build and run the benchmarks in bench/ (see docs/benchmarks.md)
#
# Sources are picked up by wildcard: every src/*.c except main.c goes into the
# library that the binary and the tests link, tests/unit/*.c form the unit test
# binary, tests/integration/*.c the integration test binary, and
# tests/support/*.c is linked into both. Each tools/NAME.c becomes the helper
# program build/tools/NAME (the demo's workload client, for example), and each
# bench/NAME.c the benchmark build/bench/NAME, linked with tests/support.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
BUILD ?= build
PKGS := libnats libjwt jansson libsodium libssl libcrypto

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

OPT ?= -O2 -g
ALL_CFLAGS = $(OPT) -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
          -Iinclude $(PKG_CFLAGS) $(EXTRA_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(EXTRA_LDFLAGS) $(LDFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread -lm

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
SUPPORT_SRC := $(wildcard tests/support/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
INTEGRATION_SRC := $(wildcard tests/integration/*.c)
BENCH_SRC := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB := $(BUILD)/libcitadel.a
BIN := $(BUILD)/citadel-callout
UNIT_BIN := $(BUILD)/tests/unit-tests
INTEGRATION_BIN := $(BUILD)/tests/integration-tests
TOOLS := $(patsubst tools/%.c,$(BUILD)/tools/%,$(wildcard tools/*.c))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

.PHONY: all deps test check check-sanitize unit integration tools demo bench install clean

all: $(BIN) $(TOOLS)

deps:
	@scripts/install-deps.sh

# The sub-makes run after deps, so pkg-config sees the freshly installed packages.
test: deps
	$(MAKE) check
	$(MAKE) check-sanitize

TEST_ENV = CITADEL_BIN=$(abspath $(BIN)) CITADEL_TOOLS=$(abspath $(BUILD)/tools)

check: $(BIN) $(TOOLS) $(UNIT_BIN) $(INTEGRATION_BIN)
	$(TEST_ENV) scripts/run-suite.sh $(UNIT_BIN)
	$(TEST_ENV) scripts/run-suite.sh $(INTEGRATION_BIN)

# Criterion forks a child per test; scripts/run-suite.sh fails the run when any
# child's sanitizer output reports an error or a leak.
check-sanitize:
	$(MAKE) BUILD=build/sanitize OPT="-O1 -g" EXTRA_CFLAGS="$(SANITIZE_FLAGS)" \
	        EXTRA_LDFLAGS="$(SANITIZE_FLAGS)" check

unit: $(BIN) $(UNIT_BIN)
	$(TEST_ENV) scripts/run-suite.sh $(UNIT_BIN)

integration: $(BIN) $(TOOLS) $(INTEGRATION_BIN)
	$(TEST_ENV) scripts/run-suite.sh $(INTEGRATION_BIN)

tools: $(TOOLS)

# Not part of check or test: benchmarks print timings and ratios, they do not pass or fail.
bench: $(BIN) $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $(TEST_ENV) $$b || exit 1; done

demo: deps
	$(MAKE) all
	scripts/demo.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(call obj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN): $(call obj,src/main.c) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(call obj,$(SUPPORT_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BIN): $(call obj,$(UNIT_SRC) $(SUPPORT_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

$(INTEGRATION_BIN): $(call obj,$(INTEGRATION_SRC) $(SUPPORT_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/citadel-callout

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
