# Pith — the two commands that matter are `make demo` and `make test`.
# Both install whatever is missing first (scripts/install-deps.sh).

SWIFT ?= swift
RELEASE_BIN := .build/release/pith

.PHONY: all deps build release demo test test-asan fuzz fuzz-build fuzz-corpus check-architecture format lint bench fixtures regenerate-proto clean

all: build

deps:
	@scripts/install-deps.sh

build:
	@scripts/install-deps.sh --build
	$(SWIFT) build

# The Swift runtime and Foundation linked in: the binary runs without a Swift toolchain and starts
# in about 16 ms instead of 24 (fewer libraries for the dynamic loader to resolve).
release:
	@scripts/install-deps.sh --build
	$(SWIFT) build -c release --static-swift-stdlib --product pith

# Runs the bundled LeNet-300-100 (ONNX and Keras 2 .h5) through everything Pith has so far.
demo: deps release
	@scripts/demo.sh $(RELEASE_BIN)

# Every test: the architecture rules and the format, the Swift suites, then the interop tests against
# onnx / h5py / real models and the tests of the project's scripts. They run on a debug build
# (testable imports, preconditions and overflow checks as always) compiled with -O, in a folder of its
# own (.build/test) so that `swift build`'s unoptimized one is left alone: the data-aware passes and the
# evaluator run 20-30x faster optimized, which lets the tests calibrate real models (a GPTQ run on
# PP-OCRv4 rec: 12 s instead of 5 minutes).
TEST_BUILD := --build-path $(CURDIR)/.build/test -Xswiftc -O
TEST_BIN := $(CURDIR)/.build/test/debug/pith
test: deps check-architecture lint
	$(SWIFT) build --build-tests $(TEST_BUILD)
	$(SWIFT) test --skip-build --disable-xctest --quiet $(TEST_BUILD)
	$(SWIFT) build --product pith $(TEST_BUILD)
	$(SWIFT) build --product pith-library-example $(TEST_BUILD)
	PITH_BINARY=$(TEST_BIN) python3 -m pytest -q -rs Tests/interop Tests/scripts
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) FUZZ_CORPUS_PITH=$(TEST_BIN)

# The Swift suites once under AddressSanitizer, in a build folder of their own (.build/asan), so
# that the ordinary debug build is left alone. ASAN_OPTIONS: see docs/architecture.md, "Sanitizers".
ASAN_BUILD := --build-path .build/asan -Xswiftc -sanitize=address
test-asan: deps
	$(SWIFT) build --build-tests $(ASAN_BUILD)
	SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=$(ASAN_OPTIONS_TEST) $(SWIFT) test --skip-build --disable-xctest $(ASAN_BUILD)
ASAN_OPTIONS_TEST := detect_leaks=0:allocator_may_return_null=1:handle_abort=1

# Fuzzing (Fuzz/, a package of its own that depends on this one by path, so `swift build` here
# never builds it): libFuzzer targets for the container reader, the Huffman decoder, the ONNX reader
# and the HDF5 reader, in release mode with AddressSanitizer and coverage, in .build/fuzz.
# `make fuzz FUZZ_SECONDS=N [FUZZ_JOBS=J]` runs each target N seconds, J targets at a time;
# `make test` runs each FUZZ_TEST_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 25
FUZZ_JOBS ?= 1
FUZZER_LIBRARY = $(firstword $(wildcard $(dir $(realpath $(shell which $(SWIFT))))../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-$(shell uname -m).a))
FUZZ_BUILD = -c release --build-path $(CURDIR)/.build/fuzz -Xswiftc -sanitize=address \
	-Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table -Xlinker $(FUZZER_LIBRARY) -Xlinker -lstdc++
fuzz-build: deps
	@test -n "$(FUZZER_LIBRARY)" || { echo "libFuzzer (libclang_rt.fuzzer_no_main) is not in this Swift toolchain"; exit 1; }
	cd Fuzz && $(SWIFT) build $(FUZZ_BUILD)

# Seeds the corpora again only when a fixture or the script changed (corpus files found earlier stay).
FUZZ_SEEDED := .build/fuzz/corpus/.seeded
# FUZZ_CORPUS_PITH: a pith binary already built (make test passes its own); otherwise the debug one is built.
$(FUZZ_SEEDED): scripts/fuzz_corpus.py $(shell find Fixtures -type f -not -name '*.py' 2>/dev/null)
	$(if $(FUZZ_CORPUS_PITH),,$(SWIFT) build --product pith)
	python3 scripts/fuzz_corpus.py --pith $(or $(FUZZ_CORPUS_PITH),$(CURDIR)/.build/debug/pith) --out .build/fuzz/corpus
	touch $@

fuzz-corpus: $(FUZZ_SEEDED)

fuzz: fuzz-build fuzz-corpus
	python3 scripts/fuzz.py --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) $(FUZZ_ARGS)

# The rules of docs/architecture.md (imports, C call sites, hand-written C, file names).
check-architecture:
	python3 scripts/check_architecture.py

# The Swift sources in the layout of .swift-format (swift-format ships with the toolchain):
# `make format` rewrites them, `make lint` (part of `make test`) fails on any difference.
format:
	$(SWIFT) format -i -r --parallel Sources Tests Package.swift Fuzz/Sources Fuzz/Package.swift

lint:
	$(SWIFT) format lint --strict -r --parallel Sources Tests Package.swift Fuzz/Sources Fuzz/Package.swift

# Benchmarks (not tests): writes docs/benchmarks.md sections from measured numbers.
bench: deps release
	@python3 -c "import sklearn" 2>/dev/null || python3 -m pip install -q scikit-learn
	python3 scripts/bench_inspect.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_kmeans.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_huffman.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_lossless.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_restore.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_eval.py --pith $(RELEASE_BIN) --write
	python3 scripts/onnx_conformance.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_svd.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_keras_restore.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_compact.py --pith $(RELEASE_BIN) --write
	python3 scripts/wheel_models.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_data_aware.py --pith $(RELEASE_BIN) --write
	python3 scripts/bench_auto.py --pith $(RELEASE_BIN) --write

# Regenerates the fixtures (needs tensorflow, tf_keras and keras; not part of CI).
fixtures:
	python3 Fixtures/generate/make_lenet.py
	python3 Fixtures/generate/make_onnx_fixtures.py
	python3 Fixtures/generate/make_keras_fixtures.py
	python3 Fixtures/generate/make_broken.py
	python3 Fixtures/generate/make_golden.py --build
	python3 Fixtures/generate/make_broken_containers.py
	python3 Fixtures/generate/make_reference_tables.py

regenerate-proto:
	scripts/regenerate-onnx-proto.sh

clean:
	rm -rf .build
