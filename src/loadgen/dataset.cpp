#include "loadgen/dataset.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

namespace moon::loadgen {

int64_t random_token_floor(int64_t vocab_size) {
  return vocab_size > 2000 ? 1000 : 3;
}

std::vector<int64_t> random_lengths(std::mt19937_64& rng, int64_t n, int64_t len, double ratio,
                                    int64_t min_len) {
  const auto lo = std::max(min_len, static_cast<int64_t>(std::floor(len * (1.0 - ratio))));
  const auto hi = std::max(lo, static_cast<int64_t>(std::ceil(len * (1.0 + ratio))));
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (auto& v : out) v = dist(rng);
  return out;
}

Result<std::vector<BenchPrompt>> make_random_dataset(const BenchConfig& c) {
  if (c.num_prompts < 1) return make_error("--num-prompts must be at least 1");
  if (c.random_input_len < 1 || c.random_output_len < 1) {
    return make_error("--random-input-len and --random-output-len must be at least 1");
  }
  if (c.random_range_ratio < 0.0 || c.random_range_ratio >= 1.0) {
    return make_error("--random-range-ratio must be in [0, 1)");
  }
  const int64_t floor = random_token_floor(c.vocab_size);
  if (c.vocab_size <= floor) return make_error("--vocab-size must be above {}", floor);
  std::mt19937_64 rng(c.seed);
  const auto in_lens =
      random_lengths(rng, c.num_prompts, c.random_input_len, c.random_range_ratio, 1);
  const auto out_lens =
      random_lengths(rng, c.num_prompts, c.random_output_len, c.random_range_ratio, 1);
  std::uniform_int_distribution<int64_t> token(floor, c.vocab_size - 1);
  std::vector<BenchPrompt> prompts(static_cast<size_t>(c.num_prompts));
  for (size_t i = 0; i < prompts.size(); ++i) {
    prompts[i].token_ids.resize(static_cast<size_t>(in_lens[i]));
    for (auto& id : prompts[i].token_ids) id = token(rng);
    prompts[i].prompt_len = in_lens[i];
    prompts[i].output_len = out_lens[i];
  }
  return prompts;
}

Result<std::vector<BenchPrompt>> load_prompt_file(const BenchConfig& c) {
  std::ifstream in(c.dataset_path);
  if (!in) return make_error("cannot open --dataset-path '{}'", c.dataset_path);
  std::vector<std::string> texts;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_string()) {
      return make_error("{}:{}: each line must be one JSON string", c.dataset_path, line_no);
    }
    texts.push_back(j.get<std::string>());
  }
  if (texts.empty()) return make_error("--dataset-path '{}' holds no prompts", c.dataset_path);
  if (c.num_prompts < 1) return make_error("--num-prompts must be at least 1");
  std::vector<BenchPrompt> prompts(static_cast<size_t>(c.num_prompts));
  for (size_t i = 0; i < prompts.size(); ++i) {
    prompts[i].text = texts[i % texts.size()];
    prompts[i].output_len = c.random_output_len;
  }
  return prompts;
}

Result<std::vector<BenchPrompt>> make_dataset(const BenchConfig& c) {
  if (!c.dataset_path.empty()) return load_prompt_file(c);
  if (c.dataset_name != "random") {
    return make_error("--dataset-name '{}' needs --dataset-path", c.dataset_name);
  }
  return make_random_dataset(c);
}

}  // namespace moon::loadgen
