# edge-apiserver. `make` builds bin/edge-apiserver; `make test` runs every
# test (unit tests under AddressSanitizer and UBSan, then end-to-end);
# `make run` serves locally. Both install missing Debian packages first.

CC      ?= cc
CFLAGS  := -std=c11 -Wall -Wextra -Werror -g -O2 -D_GNU_SOURCE -pthread $(EXTRA_CFLAGS)
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LIBS    := -lmicrohttpd -lgnutls -ljansson -lyaml -llmdb -lcurl -lssl -lcrypto -lpthread
TLIBS   := $(LIBS) -lcmocka

# Library sources: every module but main.
MAIN    := aggregator/main.c
SRC     := $(filter-out $(MAIN),$(wildcard storage/*.c registry/*.c authz/*.c \
             aggregator/*.c controllers/*.c apiservice/*.c))
UNIT    := $(patsubst test/unit/%.c,%,$(wildcard test/unit/test_*.c))
BENCH   := $(patsubst test/bench/%.c,%,$(wildcard test/bench/bench_*.c))
HDRS    := $(wildcard */*.h)

REL_OBJ := $(patsubst %.c,build/rel/%.o,$(SRC))
SAN_OBJ := $(patsubst %.c,build/san/%.o,$(SRC))

.SECONDARY:
.PHONY: all deps deps-build test unit e2e lint asan bench run clean
all: deps-build bin/edge-apiserver $(addprefix build/san/,$(UNIT))

deps:
	@hack/install-deps.sh
deps-build:
	@hack/install-deps.sh --build

build/rel/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
build/san/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -c $< -o $@

bin/edge-apiserver: build/rel/$(MAIN:.c=.o) $(REL_OBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

build/san/test_%: test/unit/test_%.c $(SAN_OBJ) $(HDRS)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $< $(SAN_OBJ) $(TLIBS)

build/rel/bench_%: test/bench/bench_%.c $(REL_OBJ) $(HDRS)
	$(CC) $(CFLAGS) -o $@ $< $(REL_OBJ) $(LIBS) -lm

asan: deps $(addprefix build/san/,$(UNIT))

# Unit tests fail on any sanitizer report (halt_on_error, exit code).
unit: asan
	@set -e; for t in $(UNIT); do \
	  echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  CMOCKA_MESSAGE_OUTPUT=stdout timeout 600 build/san/$$t; done

# The server under AddressSanitizer and UBSan, for the end-to-end tests.
build/san/edge-apiserver: $(MAIN) $(SAN_OBJ) $(HDRS)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $(MAIN) $(SAN_OBJ) $(LIBS)

# End-to-end tests drive the sanitizer build of the server; any report it
# writes (memory errors, undefined behaviour, leaks at exit) fails the run.
SANLOGS := $(CURDIR)/build/san-logs
e2e: deps bin/edge-apiserver build/san/edge-apiserver
	@rm -rf $(SANLOGS) && mkdir -p $(SANLOGS)
	@BIN=$(CURDIR)/build/san/edge-apiserver \
	  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:log_path=$(SANLOGS)/asan \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(SANLOGS)/ubsan \
	  test/e2e/run.sh
	@if ls $(SANLOGS)/* >/dev/null 2>&1; then cat $(SANLOGS)/*; \
	  echo "e2e: the server reported sanitizer errors"; exit 1; fi

# No warnings from cppcheck, as from the compiler.
lint:
	@cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -D_GNU_SOURCE --inline-suppr storage registry aggregator authz \
	  controllers apiservice test

test: deps lint unit e2e

bench: deps bin/edge-apiserver $(addprefix build/rel/,$(BENCH))
	@test/bench/run.sh

run: deps bin/edge-apiserver
	@hack/run-local.sh

clean:
	rm -rf build bin
