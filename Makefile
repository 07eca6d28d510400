# edge-apiserver. `make` builds bin/edge-apiserver; `make test` runs every
# test (unit tests under AddressSanitizer and UBSan, then end-to-end);
# `make run` serves locally. Both install missing Debian packages first.
# `make fuzz` runs each libFuzzer target for FUZZ_SECONDS (needs clang).
# `make image` builds the container image (Dockerfile) with docker or podman.

CC      ?= cc
CFLAGS  := -std=c11 -Wall -Wextra -Werror -g -O2 -D_GNU_SOURCE -pthread $(EXTRA_CFLAGS)
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LIBS    := -lmicrohttpd -lgnutls -ljansson -lyaml -llmdb -lcurl -lssl -lcrypto -lz -lpthread
TLIBS   := $(LIBS) -lcmocka

# Library sources: every module but main.
MAIN    := aggregator/main.c
SRC     := $(filter-out $(MAIN),$(wildcard lib/*.c lib/json/*.c storage/*.c apimachinery/*.c registry/*.c authz/*.c \
             aggregator/*.c controllers/*.c apiservice/*.c))
UNIT    := $(patsubst test/unit/%.c,%,$(wildcard test/unit/test_*.c))
BENCH   := $(patsubst test/bench/%.c,%,$(wildcard test/bench/bench_*.c))
FUZZ    := $(patsubst test/fuzz/%.c,%,$(wildcard test/fuzz/fuzz_*.c))
HDRS    := $(wildcard */*.h */*/*.h)

REL_OBJ := $(patsubst %.c,build/rel/%.o,$(SRC))
SAN_OBJ := $(patsubst %.c,build/san/%.o,$(SRC))
FUZZ_OBJ:= $(patsubst %.c,build/fuzz/%.o,$(SRC))
SAN_BIN := $(addprefix build/san/,$(UNIT) $(FUZZ))
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.SECONDARY:
.PHONY: all deps deps-build test unit e2e lint asan bench run fuzz fuzz-deps image clean
all: deps-build bin/edge-apiserver $(SAN_BIN)

deps:
	@hack/install-deps.sh
deps-build:
	@hack/install-deps.sh --build

build/rel/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
# The sanitizer build carries the test hooks (EDGE_TEST_*: a slow start-up
# on demand, a ServiceAccount directory of the test's) that the release
# binary does not have.
build/san/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -DEDGE_TEST_HOOKS -c $< -o $@

bin/edge-apiserver: build/rel/$(MAIN:.c=.o) $(REL_OBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

# Every unit test links the shared fixtures (a store in a temporary
# directory, the registry, the authorizer, users: test/unit/fixture.h; an
# etcd on loopback: test/unit/etcd_fixture.h).
FIXTURE := test/unit/fixture.c test/unit/etcd_fixture.c
build/san/test_%: test/unit/test_%.c $(FIXTURE) $(SAN_OBJ) $(HDRS)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $< $(FIXTURE) $(SAN_OBJ) $(TLIBS)

# A fuzz target with a main that replays files, to run its corpus in `unit`.
build/san/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/replay.c $(SAN_OBJ) $(HDRS)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $< test/fuzz/replay.c $(SAN_OBJ) $(LIBS)

build/rel/bench_%: test/bench/bench_%.c $(REL_OBJ) $(HDRS)
	$(CC) $(CFLAGS) -o $@ $< $(REL_OBJ) $(LIBS) -lm

asan: deps $(SAN_BIN)

# Unit tests fail on any sanitizer report (halt_on_error, exit code); then
# the fuzz targets replay their committed corpora.
unit: asan
	@set -e; for t in $(UNIT); do echo "== $$t"; \
	  $(SAN_ENV) CMOCKA_MESSAGE_OUTPUT=stdout timeout 600 build/san/$$t; done
	@fail=; for t in $(FUZZ); do echo "== $$t corpus"; $(SAN_ENV) timeout 60 \
	  build/san/$$t test/fuzz/corpus/$${t#fuzz_} || fail="$$fail $$t"; done; \
	  [ -z "$$fail" ] || { echo "corpus replay failed:$$fail"; exit 1; }

# The server under AddressSanitizer and UBSan, with the test hooks, for
# the end-to-end tests.
build/san/edge-apiserver: $(MAIN) $(SAN_OBJ) $(HDRS)
	$(CC) $(CFLAGS) -O1 $(SAN) -DEDGE_TEST_HOOKS -o $@ $(MAIN) $(SAN_OBJ) $(LIBS)

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
	@hack/check-layering.sh
	@cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -D_GNU_SOURCE --inline-suppr lib storage apimachinery registry aggregator authz \
	  controllers apiservice test

test: deps lint unit e2e

bench: deps bin/edge-apiserver $(addprefix build/rel/,$(BENCH))
	@test/bench/run.sh

# Fuzzing: clang's libFuzzer, one target at a time, each on its committed
# seeds (test/fuzz/corpus/<name>) and a scratch corpus in build/fuzz that
# keeps what it finds; a crash is saved in build/fuzz/artifacts and fails.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
build/fuzz/%.o: %.c $(HDRS) | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) -O1 $(SAN) -fsanitize=fuzzer-no-link -c $< -o $@
build/fuzz/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_OBJ) $(HDRS)
	$(FUZZ_CC) $(CFLAGS) -O1 $(SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LIBS)
fuzz-deps:
	@hack/install-deps.sh --fuzz || true
	@echo 'int LLVMFuzzerTestOneInput(void) { return 0; }' | \
	  $(FUZZ_CC) -fsanitize=fuzzer -x c - -o /dev/null || { echo "make fuzz needs" \
	  "clang and libFuzzer (Debian: apt-get install clang libclang-rt-14-dev)"; exit 1; }

fuzz: fuzz-deps $(addprefix build/fuzz/,$(FUZZ))
	@fail=; for t in $(FUZZ); do n=$${t#fuzz_}; echo "== $$t"; \
	  mkdir -p build/fuzz/corpus/$$n build/fuzz/artifacts/$$n; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/artifacts/$$n/ build/fuzz/corpus/$$n \
	    test/fuzz/corpus/$$n || fail="$$fail $$t"; done; \
	  [ -z "$$fail" ] || { echo "fuzz: failed:$$fail"; exit 1; }

run: deps bin/edge-apiserver
	@hack/run-local.sh

# The image builds from the sources inside the engine; fails with what is
# missing when neither docker nor podman answers (IMAGE sets the tag).
image:
	@hack/build-image.sh

clean:
	rm -rf build bin
