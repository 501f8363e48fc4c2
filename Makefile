# Two commands do all set-up on a fresh Debian 12 machine:
#   make run   installs missing packages, builds, starts ila-server on localhost:50051
#   make test  installs missing packages, builds, runs the whole test suite
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
LISTEN ?= localhost:50051
DATA_DIR ?= var/ila
CTEST_ARGS ?=

.PHONY: all deps configure build run test clean format

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

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
