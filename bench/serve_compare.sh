#!/usr/bin/env bash
# Serving throughput and latency of `moon serve` against llama.cpp's `llama-server` on the
# same GGUF, one after the other on this machine, measured by the same `moon bench` run.
#
#   LLAMA_SERVER=/path/to/llama-server bench/serve_compare.sh [MODEL] [-- extra moon bench flags]
#
# llama-server is not built here: build llama.cpp from source outside this tree. Both servers
# get the same threads, the same number of sequences (llama-server's slots) and the same
# context per sequence. MODEL defaults to the shared stories260K F32 file.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${LLAMA_SERVER:?set LLAMA_SERVER to a llama-server binary}"
data="${MOON_TEST_DATA:-../shared}"
model="$data/models/stories260K-f32.gguf"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  model="$1"
  shift
fi
[ "${1:-}" = "--" ] && shift
threads="${THREADS:-$(nproc)}"
seqs="${SEQS:-16}"   # concurrent requests and server-side sequences
ctx="${CTX:-512}"    # tokens per sequence
vocab="${VOCAB:-512}"
port=8093

bench_flags=(--port "$port" --num-prompts "${PROMPTS:-200}" --random-input-len "${INPUT_LEN:-64}"
  --random-output-len "${OUTPUT_LEN:-64}" --max-concurrency "$seqs" --vocab-size "$vocab"
  --seed 0 --disable-tqdm "$@")

wait_healthy() {
  for _ in $(seq 1 120); do
    curl -sf "localhost:$port/health" > /dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "server on :$port did not become healthy" >&2
  return 1
}

run_one() {
  local name="$1"
  shift
  "$@" > "/tmp/serve_compare_$name.log" 2>&1 &
  local pid=$!
  if wait_healthy; then
    echo "=== $name"
    ./build/moon bench "${bench_flags[@]}"
  fi
  kill "$pid"
  wait "$pid" 2> /dev/null || true
}

run_one moon ./build/moon serve --model "$model" --port "$port" --threads "$threads" \
  --max-num-seqs "$seqs" --max-model-len "$ctx"
run_one llama.cpp "$LLAMA_SERVER" -m "$model" --port "$port" -t "$threads" -np "$seqs" \
  -c "$((seqs * ctx))" --no-webui
