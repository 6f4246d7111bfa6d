// The prompts a benchmark sends: random token ids (vLLM's "random" dataset: lengths drawn
// around --random-input-len / --random-output-len) or text prompts read from a file.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "loadgen/bench_config.h"
#include "util/result.h"

namespace moon::loadgen {

struct BenchPrompt {
  std::vector<int64_t> token_ids;  // sent as the prompt when not empty
  std::string text;                // sent when token_ids is empty
  int64_t prompt_len = 0;          // tokens; 0 when unknown (text prompts: the server says)
  int64_t output_len = 0;          // max_tokens
};

// The smallest token id random prompts use: 1000 for real vocabularies (clear of the special
// and byte tokens), 3 for tiny ones (clear of <unk>, <s>, </s>).
int64_t random_token_floor(int64_t vocab_size);

// `n` lengths uniform in [floor(len*(1-ratio)), ceil(len*(1+ratio))], each at least `min_len`.
std::vector<int64_t> random_lengths(std::mt19937_64& rng, int64_t n, int64_t len, double ratio,
                                    int64_t min_len);

// --num-prompts prompts of random ids in [random_token_floor(vocab), vocab).
Result<std::vector<BenchPrompt>> make_random_dataset(const BenchConfig& config);

// One JSON string per line of `path` (blank lines skipped), cycled up to --num-prompts; each
// asks for --random-output-len tokens.
Result<std::vector<BenchPrompt>> load_prompt_file(const BenchConfig& config);

// The dataset the config names.
Result<std::vector<BenchPrompt>> make_dataset(const BenchConfig& config);

}  // namespace moon::loadgen
