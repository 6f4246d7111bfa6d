#!/usr/bin/env bash
# Installs what is missing, builds moon in Release and runs every test; runs the
# multi-threaded parts under ThreadSanitizer; then builds again with AddressSanitizer +
# UndefinedBehaviorSanitizer and runs every test there too.
# Test data comes from $MOON_TEST_DATA (default: ../shared beside the project root).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

# CI builds a fresh clone in a new folder each time: paths relative to the project root let
# ccache reuse what an earlier clone compiled.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
# The tests' precompiled header: ccache caches what uses it only with these.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime

# The end-to-end tests' npm packages (the official openai client), pinned by package-lock.json.
if [ -f tests/e2e/package-lock.json ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

jobs=$(nproc)
echo "== Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
echo "== Release tests"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== ThreadSanitizer: the multi-threaded parts (engine thread, thread pool, kernels, the"
echo "   server: its I/O thread, request worker and engine thread, in a TSan-built moon; and"
echo "   tensor-parallel ranks as threads)"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMOON_SANITIZE=thread -DMOON_BUILD_BENCH=OFF
cmake --build build-tsan -j "$jobs" --target test_engine test_util test_kernels test_server test_dist moon
for t in test_engine test_util test_kernels test_server; do
  TSAN_OPTIONS=halt_on_error=1 "build-tsan/tests/$t" --gtest_brief=1
done
# Tensor parallelism with ranks as threads; the mpirun script runs in the other builds (Open
# MPI's own threads are not instrumented, so TSan would judge them blind).
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_dist --gtest_brief=1 \
  --gtest_filter=-TensorParallelScript.*

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMOON_SANITIZE=address,undefined -DMOON_BUILD_BENCH=OFF
cmake --build build-asan -j "$jobs"
echo "== Sanitizer tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

echo "== Fuzzing: each libFuzzer target for a bounded time (scripts/fuzz.sh)"
./scripts/fuzz.sh "${MOON_FUZZ_SECONDS:-30}"
