# The two commands: `make demo` and `make test`. Everything else is a step
# they run: install missing Debian packages, configure, build (-j2).
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo bench fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) > $(BUILD).configure.log 2>&1 \
	  || (cat $(BUILD).configure.log; exit 1)

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# Starts every server the tests need on loopback (free ports), runs ctest,
# stops the servers whatever happens. A failed test is run once more, and
# ctest lists every test that needed it; one that fails twice fails the run.
test: build
	@bash scripts/with-servers.sh ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) --timeout 600 \
	  --repeat until-pass:2

demo: build
	@$(BUILD)/examples/orders/orders_demo

bench: build
	@bash scripts/with-servers.sh bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD).configure.log

# Bad input and sanitizers (docs/reliability.md). `fuzz` builds the libFuzzer
# targets with clang in build-fuzz/ and runs each for FUZZ_SECONDS;
# `fuzz-smoke` runs each for a few seconds. test-asan / test-tsan build the
# unit and conformance suites with a sanitizer in build-asan/ / build-tsan/.
FUZZ_SECONDS ?= 60
.PHONY: fuzz-smoke test-asan test-tsan test-asan-core
fuzz: deps
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke: deps
	@bash scripts/fuzz.sh 4

test-asan: deps
	@JOBS=$(JOBS) bash scripts/test-sanitizers.sh asan

test-tsan: deps
	@JOBS=$(JOBS) bash scripts/test-sanitizers.sh tsan

# The part of test-asan that CI runs after `make test` (about 6 minutes on
# 2 cores): the core library, its unit and policy tests and the inproc
# conformance suite under ASan + UBSan, and the gRPC transport's Send stream
# (its reactors' lifetimes) and wire tests.
ASAN_CORE_TARGETS = clock_test envelope_test envelope_pool_test future_test executor_test trace_context_test config_test \
  inproc_transport_test node_test rollout_test policies_unit_test inproc_conformance_test \
  grpc_wire_test grpc_send_stream_test
test-asan-core: deps
	@JOBS=$(JOBS) TARGETS="$(ASAN_CORE_TARGETS)" bash scripts/test-sanitizers.sh asan -L "unit|conformance|integration"
