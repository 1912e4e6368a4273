# healthd — top-level Makefile. `make` builds healthd and healthctl; the
# Debian packages they need are installed first by scripts/deps.sh.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS    := libuv libcurl libnl-3.0 libnl-genl-3.0 yaml-0.1 jansson libmicrohttpd libsystemd
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

ifdef SANITIZE
BUILD   := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   := build/std
SANFLAGS :=
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
WARN    := -Wall -Wextra -Wmissing-prototypes -Wshadow -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(CFLAGS) $(WARN) $(SANFLAGS) -I. $(PKG_CFLAGS) -DHEALTHD_VERSION='"$(VERSION)"' -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

LIB_SRC  := $(wildcard config/*.c checks/*.c bird-glue/*.c) \
            $(filter-out healthd/main.c healthd/healthctl.c,$(wildcard healthd/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TLIB_SRC := $(wildcard tests/lib/*.c)
TLIB_OBJ := $(TLIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.SECONDARY:
.PHONY: all deps build check unit integration demo install clean bench
all: deps
	@$(MAKE) --no-print-directory build

deps:
	@scripts/deps.sh build

build: $(BUILD)/healthd $(BUILD)/healthctl

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libhealthd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/healthd: $(BUILD)/obj/healthd/main.o $(BUILD)/libhealthd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/healthctl: $(BUILD)/obj/healthd/healthctl.o $(BUILD)/libhealthd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TLIB_OBJ) $(BUILD)/libhealthd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcriterion -lm

# The whole suite: unit tests, then integration tests in network namespaces.
check:
	@scripts/deps.sh all
	@$(MAKE) --no-print-directory unit integration

unit: $(BUILD)/healthd $(BUILD)/healthctl $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

integration: $(BUILD)/healthd $(BUILD)/healthctl
	@HEALTHD_BUILD=$(BUILD) tests/integration/run.sh

demo: deps
	@scripts/deps.sh all
	@$(MAKE) --no-print-directory build
	@HEALTHD_BUILD=$(BUILD) scripts/demo.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/doc/healthd/examples
	install -m 0755 $(BUILD)/healthd $(DESTDIR)$(PREFIX)/sbin/healthd
	install -m 0755 $(BUILD)/healthctl $(DESTDIR)$(PREFIX)/sbin/healthctl
	install -m 0644 config/examples/* $(DESTDIR)$(PREFIX)/share/doc/healthd/examples/

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
