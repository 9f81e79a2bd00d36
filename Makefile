# blk - one non-recursive Makefile (git style).  `make` builds build/blk-img
# and build/blk-io; `make check` runs every test; `make demo` shows the tools.
# BUILD and SAN may be overridden to build sanitizer trees side by side.

ifeq ($(wildcard config.mk),)
$(shell ./configure >&2)
endif
include config.mk

BUILD ?= build
WARN = -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS = -std=gnu11 $(OPT) $(SAN) $(WARN) -D_GNU_SOURCE -I. -I$(BUILD)/gen $(DEP_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS = $(SAN) $(EXTRA_LDFLAGS)
LIBS = $(DEP_LIBS)

notest = $(foreach f,$(1),$(if $(findstring /test-,$(f)),,$(f)))
LIB_SRC := $(call notest,$(wildcard util/*.c keyval/*.c block/*.c block/qcow2/*.c))
IMG_SRC := $(wildcard cmd/blk-img/*.c)
IO_SRC := $(wildcard cmd/blk-io/*.c)
TEST_SRC := $(wildcard util/test-*.c keyval/test-*.c block/test-*.c block/qcow2/test-*.c)
SCHEMA_JSON := $(sort $(wildcard schema/*.json))
GEN_SCHEMA := $(BUILD)/gen/schema-data.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJ := $(call obj,$(LIB_SRC)) $(BUILD)/obj/gen/schema-data.o
LIBBLK := $(BUILD)/libblk.a
TESTS := $(patsubst %.c,$(BUILD)/t/%,$(TEST_SRC))
TEST_HELPERS := $(call notest,$(wildcard tests/unit/*.c))

MAN_POD := $(wildcard man/*.pod)
MAN_OUT := $(patsubst man/%.pod,$(BUILD)/man/%,$(MAN_POD))

all: $(BUILD)/blk-img $(BUILD)/blk-io $(MAN_OUT)

$(BUILD)/obj/%.o: %.c config.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/gen/schema-data.o: $(GEN_SCHEMA)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(GEN_SCHEMA): $(SCHEMA_JSON) scripts/embed-schema
	@mkdir -p $(@D)
	scripts/embed-schema $(SCHEMA_JSON) > $@.tmp && mv $@.tmp $@

$(LIBBLK): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/blk-img: $(call obj,$(IMG_SRC)) $(LIBBLK)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/blk-io: $(call obj,$(IO_SRC)) $(LIBBLK)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/t/%: $(BUILD)/obj/%.o $(call obj,$(TEST_HELPERS)) $(LIBBLK)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The fuzz entry point without libFuzzer: replays tests/fuzz/corpus (make check).
$(BUILD)/fuzz-replay: $(call obj,tests/fuzz/replay.c tests/fuzz/fuzz-keyval.c) $(LIBBLK)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# bench/keyval.sh: parse/validate timings for big option strings.
$(BUILD)/bench-keyval: $(call obj,bench/keyval.c) $(LIBBLK)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# bench/bitmap.sh: what recording dirty bitmaps cost writes; dumping a 1 TiB bitmap.
$(BUILD)/bench-bitmap: $(call obj,bench/bitmap.c) $(LIBBLK)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/man/%: man/%.pod
	@mkdir -p $(@D)
	pod2man --center="blk" --release="blk $$(sed -n 's/.*BLK_VERSION "\(.*\)"/\1/p' config.h)" \
	    --section=$(subst .,,$(suffix $*)) --name=$(basename $*) $< > $@

unit-build: $(TESTS)

unit: $(TESTS)
	@scripts/run-unit $(TESTS)

# ---- the test suite -------------------------------------------------------
SAN_ASAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_TSAN = -fsanitize=thread -fno-omit-frame-pointer

deps:
	@scripts/install-deps

JOBS := -j$(shell nproc 2>/dev/null || echo 2)

check: deps
	@$(MAKE) $(JOBS) --no-print-directory all unit-build
	@$(MAKE) $(JOBS) --no-print-directory BUILD=build/asan SAN="$(SAN_ASAN)" OPT="-O1 -g" unit-build build/asan/fuzz-replay
	@$(MAKE) $(JOBS) --no-print-directory BUILD=build/tsan SAN="$(SAN_TSAN)" OPT="-O1 -g" unit-build
	@scripts/check

check-quick: all unit-build
	@scripts/check --quick

demo:
	@scripts/install-deps --build-only
	@$(MAKE) $(JOBS) --no-print-directory all
	@scripts/demo

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BUILD)/blk-img $(BUILD)/blk-io $(DESTDIR)$(PREFIX)/bin/
	for m in $(MAN_OUT); do \
	    s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done

fuzz:
	@$(MAKE) --no-print-directory -f tests/fuzz/Makefile

clean:
	rm -rf build

distclean: clean
	rm -f config.mk config.h

.PHONY: all unit unit-build check check-quick demo install clean distclean deps fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
