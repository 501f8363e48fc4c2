# Two commands do all set-up on a fresh Debian 12 machine:
#   make run   installs missing packages, builds, starts ila-server on localhost:50051
#   make test  installs missing packages, builds, runs the whole test suite
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
LISTEN ?= localhost:50051
DATA_DIR ?= var/ila
CTEST_ARGS ?=

ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps configure build run test test-asan fuzz clean format

all: build

deps:
	@bash cmake/install-deps.sh

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR)

run: build
	@mkdir -p $(DATA_DIR)
	@echo "ila-server: try it from another shell: $(BUILD_DIR)/bin/ilactl task register web/1 --locator 2001:db8:100:0 && $(BUILD_DIR)/bin/ilactl list"
	$(BUILD_DIR)/bin/ila-server --listen $(LISTEN) --data-dir $(DATA_DIR)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j2 $(CTEST_ARGS)

# The whole suite built with clang under ASan + UBSan (its own build
# directory; .ci/run runs it after `make test`). Leak checking is on.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DILA_SANITIZE=ON
	cmake --build $(ASAN_BUILD_DIR)
	cd $(ASAN_BUILD_DIR) && \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j2 $(CTEST_ARGS)

# Every libFuzzer target (tests/fuzz) for FUZZ_SECONDS each, from the
# checked-in corpora; fails on the first crash (its input is saved under
# $(FUZZ_BUILD_DIR)/fuzz/).
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DILA_FUZZ=ON
	cmake --build $(FUZZ_BUILD_DIR) --target fuzz_all
	bash tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
