# The README's two commands: `make run` and `make test`. Everything else is
# Meson; this file only sets up and calls it.

PREFIX ?= /usr/local
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 10000000
MESON_RELEASE = --buildtype=release
MESON_ASAN = --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all

.PHONY: all setup run test unit e2e multihost fuzz fuzz-nightly install clean bench check

all: setup build/build.ninja
	ninja -C build

setup:
	@./scripts/setup.sh

build/build.ninja:
	meson setup build $(MESON_RELEASE) --prefix=$(abspath $(PREFIX)) --libdir=lib

build-asan/build.ninja:
	meson setup build-asan $(MESON_ASAN)

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz --buildtype=debug -Dfuzz=true -Dtests=false \
		-Db_sanitize=address -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link

# The build's output goes to $(RUN_DIR)/build.log (shown only when it fails), so
# that what serve prints last is the block that says what to do next.
# RUN_DIR and RUN_LISTEN move the data and the port: make run RUN_LISTEN=127.0.0.1:8081
RUN_DIR ?= var
RUN_LISTEN ?= 127.0.0.1:8080
run:
	@mkdir -p -m 0700 $(RUN_DIR)
	@echo "building fluxhook (the output goes to $(RUN_DIR)/build.log) ..."
	@$(MAKE) --no-print-directory all >$(RUN_DIR)/build.log 2>&1 || \
		{ cat $(RUN_DIR)/build.log; echo "make run: the build failed (above)"; exit 1; }
	@exec ./build/fluxhook serve --dev --listen $(RUN_LISTEN) --db sqlite:$(RUN_DIR)/fluxhook.db

test:
	@./scripts/setup.sh --test
	@$(MAKE) --no-print-directory build/build.ninja build-asan/build.ninja build-fuzz/build.ninja
	ninja -C build
	ninja -C build-asan
	ninja -C build-fuzz
	python3 tests/run.py

unit: build-asan/build.ninja
	ninja -C build-asan
	python3 tests/run.py --only unit

e2e: build-asan/build.ninja
	ninja -C build-asan
	python3 tests/run.py --only e2e

multihost: build-asan/build.ninja
	ninja -C build-asan
	python3 tests/run.py --only multihost

# The kill -9 loop of make test (10 cycles), for 200 cycles.
soak: build-asan/build.ninja
	ninja -C build-asan
	FLUXHOOK_CRASH_CYCLES=200 python3 tests/run.py --only e2e --store both \
		--e2e 'test_deliver_crash_loop.py'

# Every target of fuzz/ replays its seed corpus (fuzz/corpus/NAME/), then fuzzes for
# FUZZ_SECONDS, two at a time; `make test` gives each 30 s. Runs and exec/s per target
# land in tests/artifacts/fuzz.txt; new inputs stay in tests/artifacts/fuzz/NAME/ and
# are replayed by the next run.
fuzz: build-fuzz/build.ninja
	ninja -C build-fuzz
	python3 tests/run.py --only fuzz --fuzz-seconds $(FUZZ_SECONDS)

# The nightly budget: FUZZ_RUNS (10 M) inputs per target, each run as
# `build-fuzz/fuzz/fuzz_NAME -runs=10000000 tests/artifacts/fuzz/fuzz_NAME fuzz/corpus/NAME`.
# About half an hour on two cores at the rates of a 10 s run (see tests/artifacts/fuzz.txt).
fuzz-nightly: build-fuzz/build.ninja
	ninja -C build-fuzz
	python3 tests/run.py --only fuzz --fuzz-runs $(FUZZ_RUNS)

# STYLE §10: the format check, clang-tidy and cppcheck (scripts/check.sh), then
# the unit and end-to-end tests, all against the ASan build.
check: build-asan/build.ninja
	@./scripts/setup.sh --check
	ninja -C build-asan
	./scripts/check.sh build-asan
	python3 tests/run.py --only unit
	python3 tests/run.py --only e2e

bench: all
	@./scripts/setup.sh --bench
	python3 bench/run.py

# The prefix is set again on every install, so `make install PREFIX=DIR`
# honours DIR even when build/ was set up with another one.
install: all
	meson configure build --prefix=$(abspath $(PREFIX)) --libdir=lib
	meson install -C build --destdir "$(DESTDIR)"

clean:
	rm -rf build build-asan build-fuzz tests/artifacts
