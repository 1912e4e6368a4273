# healthd — top-level Makefile. `make` builds healthd and healthctl; the
# Debian packages they need are installed first by scripts/deps.sh.

PREFIX  ?= /usr/local
DESTDIR ?=
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
CC      ?= cc
PKGS    := libuv libcurl libnl-3.0 libnl-genl-3.0 yaml-0.1 jansson libmicrohttpd libsystemd \
           sqlite3 gnutls libcares
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

ifdef SANITIZE
BUILD   := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# Any report ends the process with a failure, unit tests and healthd alike.
export ASAN_OPTIONS ?= halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1
export UBSAN_OPTIONS ?= halt_on_error=1:abort_on_error=1:print_stacktrace=1
else
BUILD   := build/std
SANFLAGS :=
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
WARN    := -Wall -Wextra -Wmissing-prototypes -Wshadow -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(CPPFLAGS) $(CFLAGS) $(WARN) $(SANFLAGS) -I. $(PKG_CFLAGS) -DHEALTHD_VERSION='"$(VERSION)"' -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

LIB_SRC  := $(wildcard config/*.c checks/*.c bird-glue/*.c http/*.c import/*.c) \
            $(filter-out healthd/main.c healthd/healthctl.c,$(wildcard healthd/*.c)) \
            $(filter-out mesh/meshctl.c,$(wildcard mesh/*.c)) \
            $(filter-out meshd/main.c,$(wildcard meshd/*.c)) \
            $(filter-out lg/main.c,$(wildcard lg/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/bootstrap.o
TLIB_SRC := $(wildcard tests/lib/*.c)
TLIB_OBJ := $(TLIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.SECONDARY:
.PHONY: all deps build check unit integration demo demo-node install deb clean bench valgrind fuzz
all: deps
	@$(MAKE) --no-print-directory build

deps:
	@scripts/deps.sh build

build: $(BUILD)/healthd $(BUILD)/healthctl $(BUILD)/meshctl $(BUILD)/meshd $(BUILD)/meshlg

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# mesh/bootstrap.sh as a C array, for meshctl cloud-init's user-data (od and
# awk: nothing beyond coreutils).
$(BUILD)/gen/bootstrap.c: mesh/bootstrap.sh
	@mkdir -p $(dir $@)
	{ echo '/* generated from $< by the Makefile: edit that file instead */'; \
	  echo '#include "mesh/mesh.h"'; \
	  echo 'const char mesh_bootstrap_script[] = {'; \
	  od -An -v -tx1 $< | awk '{ s = "\t"; for (i = 1; i <= NF; i++) s = s "0x" $$i ","; print s }'; \
	  echo '0 };'; \
	  echo 'const size_t mesh_bootstrap_script_len = sizeof(mesh_bootstrap_script) - 1;'; \
	} >$@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/bootstrap.o: $(BUILD)/gen/bootstrap.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libhealthd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/healthd: $(BUILD)/obj/healthd/main.o $(BUILD)/libhealthd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/healthctl: $(BUILD)/obj/healthd/healthctl.o $(BUILD)/libhealthd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/meshctl: $(BUILD)/obj/mesh/meshctl.o $(BUILD)/libhealthd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/meshd: $(BUILD)/obj/meshd/main.o $(BUILD)/libhealthd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/meshlg: $(BUILD)/obj/lg/main.o $(BUILD)/libhealthd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TLIB_OBJ) $(BUILD)/libhealthd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcriterion -lm

# Runs in a qemu guest against the kernel's WireGuard (t_wg_kernel.sh), so
# only the libraries it uses are linked: they are copied into the initramfs.
$(BUILD)/kernel/wg_kernel_probe: $(BUILD)/obj/tests/kernel/wg_kernel_probe.o $(BUILD)/libhealthd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -Wl,--as-needed -o $@ $^ $(PKG_LIBS) -lm

# LD_PRELOAD fault injection for t_slow_disk.sh; never sanitized (it is
# loaded into a sanitized healthd beside the sanitizer's runtime).
$(BUILD)/tests/slowfsync.so: tests/shim/slowfsync.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g $(WARN) -fPIC -shared -o $@ $< -ldl

# The whole suite: unit tests, then integration tests in network namespaces.
check:
	@scripts/deps.sh all
	@$(MAKE) --no-print-directory unit integration

unit: $(BUILD)/healthd $(BUILD)/healthctl $(BUILD)/meshctl $(BUILD)/meshd $(BUILD)/meshlg $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

integration: $(BUILD)/healthd $(BUILD)/healthctl $(BUILD)/meshctl $(BUILD)/meshd $(BUILD)/meshlg $(BUILD)/kernel/wg_kernel_probe $(BUILD)/tests/slowfsync.so
	@HEALTHD_BUILD=$(BUILD) tests/integration/run.sh

# The unit suites under valgrind memcheck: any error or leak fails.
valgrind: $(UNIT_BIN)
	@scripts/deps.sh hardening
	@tests/valgrind.sh $(UNIT_BIN)

# libFuzzer targets (clang), each run FUZZ_SECONDS from seeds of the tests.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=gnu11 -D_GNU_SOURCE -O1 -g $(WARN) $(FUZZ_SAN) -I. $(PKG_CFLAGS) -DHEALTHD_VERSION='"$(VERSION)"' -MMD -MP
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/obj/gen/bootstrap.o: $(BUILD)/gen/bootstrap.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libhealthd.a: $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/gen/bootstrap.o
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libhealthd.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lm

fuzz:
	@scripts/deps.sh hardening
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BIN)

# Speed and memory: writes bench/results.md (bench/bench.py); ~14 minutes.
bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@python3 bench/bench.py --build $(BUILD)

# The four-region mesh in namespaces, rendered by meshctl: failover and return.
demo: deps
	@scripts/deps.sh all
	@$(MAKE) --no-print-directory build
	@HEALTHD_BUILD=$(BUILD) scripts/mesh-demo.sh

# One node, one upstream: withdrawal and re-announce.
demo-node: deps
	@scripts/deps.sh all
	@$(MAKE) --no-print-directory build
	@HEALTHD_BUILD=$(BUILD) scripts/demo.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/doc/healthd/examples
	install -m 0755 $(BUILD)/healthd $(DESTDIR)$(PREFIX)/sbin/healthd
	install -m 0755 $(BUILD)/healthctl $(DESTDIR)$(PREFIX)/sbin/healthctl
	install -m 0755 $(BUILD)/meshctl $(DESTDIR)$(PREFIX)/sbin/meshctl
	install -m 0755 $(BUILD)/meshd $(DESTDIR)$(PREFIX)/sbin/meshd
	install -m 0755 $(BUILD)/meshlg $(DESTDIR)$(PREFIX)/sbin/meshlg
	install -m 0644 config/examples/* $(DESTDIR)$(PREFIX)/share/doc/healthd/examples/
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(BASHCOMPDIR)
	install -m 0644 man/healthd.yaml.5 $(DESTDIR)$(MANDIR)/man5/healthd.yaml.5
	install -m 0644 man/healthd.8 man/healthctl.8 man/meshctl.8 man/meshd.8 man/meshlg.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|/usr/sbin/|$(PREFIX)/sbin/|g' contrib/systemd/healthd.service > $(DESTDIR)$(UNITDIR)/healthd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/healthd.service
	sed 's|/usr/sbin/|$(PREFIX)/sbin/|g' contrib/systemd/meshd.service > $(DESTDIR)$(UNITDIR)/meshd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/meshd.service
	sed 's|/usr/sbin/|$(PREFIX)/sbin/|g' contrib/systemd/meshlg.service > $(DESTDIR)$(UNITDIR)/meshlg.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/meshlg.service
	sed 's|/usr/sbin/|$(PREFIX)/sbin/|g' contrib/systemd/healthd-withdraw.service > $(DESTDIR)$(UNITDIR)/healthd-withdraw.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/healthd-withdraw.service
	install -m 0644 contrib/systemd/healthd.sysusers $(DESTDIR)$(SYSUSERSDIR)/healthd.conf
	install -m 0644 contrib/systemd/healthd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/healthd.conf
	install -m 0644 contrib/bash-completion/healthctl $(DESTDIR)$(BASHCOMPDIR)/healthctl

# The Debian package, built by dpkg-buildpackage in a copy of the tree
# (scripts/deb.sh): build/deb/healthd_VERSION_ARCH.deb, lintian-clean.
deb:
	@scripts/deb.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
