#!/usr/bin/env bash
# Installs what is missing, builds moon in Release and runs every test; runs the
# multi-threaded parts under ThreadSanitizer; then builds again with AddressSanitizer +
# UndefinedBehaviorSanitizer (clang) and runs every test there too, and last each fuzz target
# from that build for a short time.
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
# Two lanes, one per core: the server tests (12 of the 20 minutes this took in one lane) in
# two shards, one per lane, and the rest beside them. Tensor parallelism runs with ranks as
# threads; the mpirun script runs in the other builds (Open MPI's own threads are not
# instrumented, so TSan would judge them blind).
tsan_lane() {
  local shard=$1
  shift
  GTEST_TOTAL_SHARDS=2 GTEST_SHARD_INDEX=$shard TSAN_OPTIONS=halt_on_error=1 \
    build-tsan/tests/test_server --gtest_brief=1 || return 1
  for t in "$@"; do
    TSAN_OPTIONS=halt_on_error=1 "build-tsan/tests/$t" --gtest_brief=1 \
      --gtest_filter=-TensorParallelScript.* || return 1
  done
}
tsan_lane 0 test_engine test_util > build-tsan/lane0.log 2>&1 &
lane0=$!
tsan_lane 1 test_kernels test_dist > build-tsan/lane1.log 2>&1 &
lane1=$!
tsan_failed=0
wait "$lane0" || tsan_failed=1
wait "$lane1" || tsan_failed=1
cat build-tsan/lane0.log build-tsan/lane1.log
if [ "$tsan_failed" != 0 ]; then
  echo "ThreadSanitizer tests failed"
  exit 1
fi

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build (clang; the fuzz targets too)"
./scripts/asan-build.sh
echo "== Sanitizer tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

echo "== Fuzzing: each libFuzzer target for a bounded time (scripts/fuzz.sh, same build)"
./scripts/fuzz.sh "${MOON_FUZZ_SECONDS:-15}"
