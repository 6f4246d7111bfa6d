#!/usr/bin/env bash
# Two moon binaries side by side on the same model: wall time of `moon generate` for greedy
# decoding, parallel sampling (n = 4) and beam search (width 3), each case run REPS times with
# the two binaries interleaved, so that a noisy neighbour hits both alike. Prints one line per
# case: the mean of each binary and their ratio.
#
#   bench/compare_engine.sh OLD_MOON NEW_MOON MODEL.gguf [REPS] [THREADS]
set -euo pipefail
old=$1 new=$2 model=$3 reps=${4:-3} threads=${5:-2}

prompts=$(mktemp)
trap 'rm -f "$prompts"' EXIT
for i in $(seq 1 32); do echo "\"Once upon a time, story number $i, there was\""; done >"$prompts"

run() {  # binary, then generate's arguments; prints seconds
  local bin=$1
  shift
  local start end
  start=$(date +%s.%N)
  "$bin" generate --model "$model" --prompts-file "$prompts" --output-format json \
    --threads "$threads" "$@" >/dev/null
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}

case_line() {  # name, then generate's arguments
  local name=$1
  shift
  local sum_old=0 sum_new=0
  for _ in $(seq 1 "$reps"); do
    sum_old=$(awk -v s="$sum_old" -v t="$(run "$old" "$@")" 'BEGIN { print s + t }')
    sum_new=$(awk -v s="$sum_new" -v t="$(run "$new" "$@")" 'BEGIN { print s + t }')
  done
  awk -v name="$name" -v o="$sum_old" -v n="$sum_new" -v r="$reps" \
    'BEGIN { printf "%-34s old %6.3f s  new %6.3f s  new/old %.2f\n", name, o / r, n / r, n / o }'
}

case_line "greedy, 128 tokens" --max-tokens 128 --temperature 0
case_line "n = 4 sampling, 64 tokens" --max-tokens 64 --n 4 --temperature 0.8 --seed 1
case_line "beam search, width 3, 48 tokens" --max-tokens 48 --n 3 --use-beam-search
