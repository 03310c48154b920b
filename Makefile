# Scout — build, run and test. Everything a newcomer needs is here: flags in one place,
# pkg-config for every library, sanitizer builds as a variant of the same rules.

CC       ?= gcc
PKGS     := libmicrohttpd jansson sqlite3 libsodium
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
            -pthread -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS   := $(shell pkg-config --libs $(PKGS)) -lm -pthread
PYTHON   := /usr/bin/python3

# BUILD selects the variant: build/ (release) or build-asan/ (ASan+UBSan).
BUILD    ?= build
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS     := $(shell find src -name '*.c' | sort)
OBJS     := $(SRCS:%.c=$(BUILD)/obj/%.o)
LIBOBJS  := $(filter-out $(BUILD)/obj/src/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test unit integration asan bench fuzz clean

all: $(BUILD)/scoutd

$(BUILD)/scoutd: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

-include $(OBJS:.o=.d)

run: $(BUILD)/scoutd
	$(BUILD)/scoutd --data-dir ./data

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BUILD)/scoutd
	SCOUTD=$(abspath $(BUILD)/scoutd) $(PYTHON) -m pytest -q tests/integration

# The whole suite again with ASan+UBSan: same rules, another build directory.
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g $(SAN)" unit integration

test: unit integration asan

bench: $(BUILD)/scoutd
	bench/run.sh $(BUILD)/scoutd

clean:
	rm -rf build build-asan
