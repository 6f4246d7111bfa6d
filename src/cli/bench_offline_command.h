// `moon bench latency` and `moon bench throughput`: offline benchmarks of the engine in this
// process (no server), like llama.cpp's `llama-bench` and `llama-batched-bench` and vLLM's
// `vllm bench latency|throughput`, so that one table can compare moon and llama.cpp on the
// same GGUF file. Prompts are random token ids; generation is greedy with ignore_eos, so every
// run computes exactly the tokens asked for.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "cli/engine_options.h"

namespace moon {

// llama-bench's two tests, each repeated: pp (prefill of --n-prompt tokens, measured as
// n_prompt / time to the first token) and tg (--n-gen decode steps of one sequence, measured
// as n_gen / time from the first token to the last).
struct LatencyBenchOptions {
  EngineOptions engine;
  int64_t n_prompt = -1;  // -1: 512, lowered to fit --max-model-len
  int64_t n_gen = -1;     // -1: 128, lowered to fit --max-model-len
  int64_t repetitions = 5;
  int64_t warmup = 1;
  std::string output_format = "text";
  uint64_t seed = 0;
};

// llama-batched-bench's measurement: --batch-size sequences of --input-len random prompt
// tokens and --output-len generated tokens, all added at once.
struct ThroughputBenchOptions {
  EngineOptions engine;
  int64_t batch_size = 32;
  int64_t input_len = 128;
  int64_t output_len = 128;
  int64_t repetitions = 3;
  int64_t warmup = 1;
  std::string output_format = "text";
  uint64_t seed = 0;
};

// Register `latency` and `throughput` under `bench`; return them so the caller can tell
// which ran.
CLI::App* add_bench_latency_command(CLI::App& bench, LatencyBenchOptions& options);
CLI::App* add_bench_throughput_command(CLI::App& bench, ThroughputBenchOptions& options);

// Run the benchmark, print the table (or JSON) to stdout and progress to stderr; return the
// process exit code.
int run_bench_latency(LatencyBenchOptions options);
int run_bench_throughput(const ThroughputBenchOptions& options);

}  // namespace moon
