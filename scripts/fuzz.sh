#!/usr/bin/env bash
# Builds moon's libFuzzer targets (scripts/asan-build.sh: clang, AddressSanitizer +
# UndefinedBehaviorSanitizer, in build-asan/) and runs each for SECONDS (default 60) on its
# seed corpus in tests/fuzz/corpus/<target>/, plus the shared chat templates for the Jinja
# target. Prints each target's executions and peak memory; exits 1, printing the failing
# input in base64, if any target crashes, hangs or leaks. Test data: $MOON_TEST_DATA
# (default ../shared).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
targets=(gguf tokenizer request jinja grammar)
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
./scripts/asan-build.sh "${targets[@]/#/fuzz_}"
data=${MOON_TEST_DATA:-../shared}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"  # new inputs go here; the seed corpus in the repository stays as it is
  extra=()
  if [ "$t" = jinja ] && [ -d "$data/chat-templates" ]; then extra=("$data/chat-templates"); fi
  if ! MOON_TEST_DATA="$data" "build-asan/tests/fuzz/fuzz_$t" -max_total_time="$seconds" \
      -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/$t-" "$work/$t" "tests/fuzz/corpus/$t" "${extra[@]}" \
      >"$work/$t.log" 2>&1; then
    echo "FUZZ FAILURE in $t:"
    tail -40 "$work/$t.log"
    for f in "$work/$t-"*; do
      [ -f "$f" ] || continue
      echo "input $(basename "$f") (base64):"
      base64 -w0 "$f"
      echo
    done
    failed=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo 0)
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz_$t: ${runs} executions in ${seconds} s, peak RSS ${rss} MB"
done
exit "$failed"
