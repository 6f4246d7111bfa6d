#include "sampling/logits_processors.h"

#include <algorithm>
#include <limits>

namespace moon {
namespace {

inline bool in_row(std::span<float> logits, int32_t token) {
  return token >= 0 && static_cast<size_t>(token) < logits.size();
}

// vLLM's repetition penalty: shrink a positive logit, push a negative one further down.
inline float repeat_penalized(float logit, float penalty) {
  return logit > 0.0f ? logit / penalty : logit * penalty;
}

}  // namespace

void TokenHistory::set_prompt(std::span<const int32_t> prompt) {
  prompt_.assign(prompt.begin(), prompt.end());
  std::sort(prompt_.begin(), prompt_.end());
  prompt_.erase(std::unique(prompt_.begin(), prompt_.end()), prompt_.end());
}

void TokenHistory::add_output(int32_t token) {
  ++output_[token];
  ++output_length_;
}

void TokenHistory::catch_up(std::span<const int32_t> output) {
  for (size_t i = static_cast<size_t>(output_length_); i < output.size(); ++i)
    add_output(output[i]);
}

bool has_logits_processors(const SamplingParams& p) {
  return !p.logit_bias.empty() || p.min_tokens > 0 || p.repetition_penalty != 1.0f ||
         p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}

void apply_logit_bias(std::span<float> logits, const SamplingParams& p) {
  for (const auto& [token, bias] : p.logit_bias) {
    if (in_row(logits, token)) logits[token] += bias;
  }
}

void mask_stop_tokens(std::span<float> logits, const SamplingParams& p, int64_t n_generated,
                      std::span<const int32_t> eos_ids) {
  if (n_generated >= p.min_tokens) return;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (!p.ignore_eos) {  // with ignore_eos, EOS does not end anything, so it needs no mask
    for (int32_t token : eos_ids) {
      if (in_row(logits, token)) logits[token] = kNegInf;
    }
  }
  for (int32_t token : p.stop_token_ids) {
    if (in_row(logits, token)) logits[token] = kNegInf;
  }
}

void apply_penalties(std::span<float> logits, const SamplingParams& p,
                     const TokenHistory& history) {
  if (p.repetition_penalty != 1.0f) {
    // Every token of the prompt or the output, once.
    for (int32_t token : history.prompt_tokens()) {
      if (in_row(logits, token))
        logits[token] = repeat_penalized(logits[token], p.repetition_penalty);
    }
    for (const auto& [token, count] : history.output_counts()) {
      if (!in_row(logits, token)) continue;
      if (std::binary_search(history.prompt_tokens().begin(), history.prompt_tokens().end(),
                             token)) {
        continue;  // already penalized as a prompt token
      }
      logits[token] = repeat_penalized(logits[token], p.repetition_penalty);
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (const auto& [token, count] : history.output_counts()) {
      if (!in_row(logits, token)) continue;
      logits[token] -= p.frequency_penalty * static_cast<float>(count) + p.presence_penalty;
    }
  }
}

void apply_logits_processors(std::span<float> logits, const SamplingParams& p,
                             const TokenHistory& history, int64_t n_generated,
                             std::span<const int32_t> eos_ids) {
  apply_logit_bias(logits, p);
  mask_stop_tokens(logits, p, n_generated, eos_ids);
  apply_penalties(logits, p, history);
}

}  // namespace moon
