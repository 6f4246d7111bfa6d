// The sampling flags of `moon generate`, named after vLLM's SamplingParams fields
// (--temperature, --top-k, --top-p, --min-p, the penalties, --stop, --logprobs, ...).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "sampling/sampling_params.h"
#include "util/result.h"

namespace moon {

struct SamplingOptions {
  SamplingParams params{.temperature = 0.0f, .max_tokens = 128};  // greedy unless asked
  CLI::Option* seed_option = nullptr;                             // set: params.seed is given
  uint64_t seed = 0;
  std::vector<std::string> logit_bias;  // "TOKEN=BIAS"
  int logprobs = -1;                    // -1: none; k: the chosen token and the k best
};

void add_sampling_options(CLI::App& cmd, SamplingOptions& options);

// The parameters the engine takes, checked (the message names the flag's field).
Result<SamplingParams> make_sampling_params(const SamplingOptions& options);

}  // namespace moon
