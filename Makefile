# The README's entry points. `make test` and `make demo` do all set-up on a fresh Debian 12 machine.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
VIGIL = $(BUILD)/apps/vigil/vigil
DEMO_WS ?= $(CURDIR)/.vigil-demo

.PHONY: all deps configure build test test-unit demo bench format clean

all: build

deps:
	bash scripts/install-deps.sh

configure:
	@test -f $(BUILD)/build.ninja || cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: deps
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1800

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

demo: deps
	$(MAKE) build
	bash scripts/demo.sh $(VIGIL) $(DEMO_WS)

# Regenerates bench/RESULTS.md: every side-by-side benchmark against the Python references (about 30 minutes).
bench: deps
	$(MAKE) build
	bash bench/results.sh $(BUILD)

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
