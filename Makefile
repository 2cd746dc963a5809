# Entry points: `make run` builds and starts the admin node; `make test` builds with sanitizers and
# runs every test. Both install the Debian packages they need first.
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)

.PHONY: all deps deps-test build run test bench clean format

all: build

deps:
	@scripts/install-deps.sh runtime

deps-test:
	@scripts/install-deps.sh test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/cmd/mockarty/mockarty

test: deps-test
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMK_SANITIZE=ON >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	bench/serve.sh

# Opt-in (downloads a Debian base, builds for minutes): the Dockerfile built with buildah and checked.
.PHONY: image-test
image-test:
	@scripts/install-deps.sh image
	packaging/image_test.sh

# libFuzzer harnesses (clang, ASan+UBSan), each run SECONDS seconds: docs/fuzzing.md.
SECONDS ?= 60
.PHONY: fuzz
fuzz:
	fuzz/run.sh $(SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
