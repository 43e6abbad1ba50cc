# pullwatch: watched container image pulls. `make`, `make check`, `make demo`, `make bench`.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR    ?=
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1)

CC      ?= cc
PKGS    := libcurl jansson libsystemd yaml-0.1 libprotobuf-c libnghttp2
# pkg-config name -> Debian package, for the one-line error below
DEB_libcurl       := libcurl4-openssl-dev
DEB_jansson       := libjansson-dev
DEB_libsystemd    := libsystemd-dev
DEB_yaml-0.1      := libyaml-dev
DEB_libprotobuf-c := libprotobuf-c-dev
DEB_libnghttp2    := libnghttp2-dev
DEB_cmocka        := libcmocka-dev

BUILD := build
ifeq ($(SANITIZE),1)
BUILD := build/san
endif

# Everything but check/deps/clean needs the libraries; say which Debian package is missing, once.
NEED_PKGS := $(filter-out deps clean distclean help uninstall,$(or $(MAKECMDGOALS),all))
ifneq ($(NEED_PKGS),)
ifeq ($(filter deps,$(MAKECMDGOALS)),)
MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
ifneq ($(MISSING),)
ifeq ($(filter check demo bench,$(MAKECMDGOALS)),)
$(error missing $(firstword $(MISSING)): apt-get install $(DEB_$(firstword $(MISSING))) (or run: make deps))
endif
endif
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= -O2 -g
CFLAGS  += -include $(BUILD)/gen/version.h -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 \
           -D_GNU_SOURCE -I. -I$(BUILD)/gen $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lm
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

PROTOS   := $(wildcard probes/proto/*.proto)
GEN_C    := $(patsubst probes/proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H    := $(GEN_C:.c=.h)
LIB_SRCS := $(filter-out daemon/cli/main.c,$(wildcard basic/*.c config/*.c probes/*/*.c daemon/*/*.c))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(GEN_C:.c=.o)
# What only tests and the bench use (the replay of recorded pulls, the peer policy model): not shipped.
TESTLIB_SRCS := tests/bench/replay.c tests/bench/peer_policy.c
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TESTLIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

all: $(BUILD)/pullwatch

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: probes/proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=probes/proto --c_out=$(BUILD)/gen $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(BUILD)/gen/version.h
	$(CC) $(filter-out -Wshadow,$(CFLAGS)) -c -o $@ $<

# The version lives in a header rewritten only when it changes, so objects that use it rebuild then.
$(BUILD)/gen/version.h: FORCE
	@mkdir -p $(@D)
	@echo '#define PULLWATCH_VERSION "$(VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

$(BUILD)/obj/%.o: %.c $(GEN_H) $(BUILD)/gen/version.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libpullwatch.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/libtest.a: $(TESTLIB_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/pullwatch: $(BUILD)/obj/daemon/cli/main.o $(BUILD)/libpullwatch.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libtest.a $(BUILD)/libpullwatch.a $(BUILD)/gen/version.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< $(BUILD)/libtest.a $(BUILD)/libpullwatch.a \
		$(LDLIBS) $(shell pkg-config --libs cmocka)

unit: $(UNIT_BINS)

deps:
	@scripts/deps.sh

# check: installs what it needs, builds, runs unit + integration tests, ends with "N passed, N failed".
check: deps
	@$(MAKE) --no-print-directory all unit SANITIZE=$(SANITIZE)
	@BUILD=$(BUILD) tests/run-all.sh

# check-deps: basic <- config <- probes <- daemon, no circles between files (also a test in build.bats).
check-deps: all
	@python3 scripts/check-deps.py $(BUILD)

check-unit: all unit
	@BUILD=$(BUILD) tests/run-all.sh --unit-only

$(BUILD)/bench_%: tests/bench/bench_%.c $(BUILD)/libtest.a $(BUILD)/libpullwatch.a $(BUILD)/gen/version.h
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libtest.a $(BUILD)/libpullwatch.a $(LDLIBS)

# bench: measured side by side in one run on the bed, written to bench/results.md.
bench: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench_policies $(BUILD)/bench_probes $(BUILD)/bench_fleet $(BUILD)/bench_peers
	@BUILD=$(BUILD) tests/bench/run.sh

# image: an OCI image of pullwatch FROM scratch (the binary and the shared objects ldd names), tagged
# with the version, as a tarball that `docker load` and `ctr images import` accept.
IMAGE_NAME ?= pullwatch
image: all
	@python3 scripts/image.py $(BUILD)/pullwatch $(BUILD)/pullwatch-image.tar $(IMAGE_NAME):$(VERSION) \
		| jq -r '"\(.tarball): \(.ref) (manifest \(.manifest), \(.files | length) files)"'

# bench-fleet: only the fleet model (seconds, no bed), its section of bench/results.md replaced in place.
bench-fleet: $(BUILD)/bench_fleet
	@BUILD=$(BUILD) tests/bench/fleet.sh --update

# demo: a throwaway bed and pullwatch on it; see scripts/demo.sh.
demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo.sh

# fuzz: libFuzzer harnesses (tests/fuzz/) on the library built by clang with ASan+UBSan into build/fuzz/,
# each run FUZZ_SECONDS; fails on any crash, leak or failed check.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_OBJS    := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRCS) $(GEN_C))
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

build/fuzz/obj/$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(BUILD)/gen/version.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -Wshadow,$(CFLAGS)) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/obj/%.o: %.c $(GEN_H) $(BUILD)/gen/version.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

build/fuzz/libpullwatch.a: $(FUZZ_OBJS)
	$(AR) rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h build/fuzz/libpullwatch.a
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< build/fuzz/libpullwatch.a $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BINS)

# valgrind: every unit test under memcheck (build/, not build/san/); definite or indirect leaks fail.
VALGRIND ?= valgrind -q --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite,indirect \
            --trace-children=no
valgrind:
	@$(MAKE) --no-print-directory unit SANITIZE=
	@fail=; for t in $(patsubst tests/unit/%.c,build/tests/%,$(UNIT_SRCS)); do \
		if $(VALGRIND) --log-file=$$t.valgrind $$t >/dev/null 2>&1; then echo "ok   $$t"; \
		else fail="$$fail $${t##*/}"; echo "FAIL $$t:"; head -40 $$t.valgrind; fi; done; \
		[ -z "$$fail" ] || { echo "valgrind failed:$$fail"; exit 1; }

clean:
	rm -rf build

.PHONY: all unit deps check check-deps check-unit bench bench-fleet image demo clean FORCE fuzz fuzz-build valgrind
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(FUZZ_OBJS:.o=.d)

include mk/install.mk
