#include "sampling/sampling_params.h"

#include <cmath>

#include "sampling/greedy_pass.h"

namespace moon {
namespace {

bool in_range(float v, float lo, float hi) {
  return v >= lo && v <= hi;
}  // NaN: false

}  // namespace

Status SamplingParams::validate(int64_t vocab_size) const {
  if (n < 1) return make_error("n must be at least 1, got {}", n);
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    return make_error("temperature must be a finite number >= 0, got {}", temperature);
  }
  if (top_k < -1) return make_error("top_k must be -1 or 0 (disabled) or >= 1, got {}", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return make_error("top_p must be in (0, 1], got {}", top_p);
  }
  if (!in_range(min_p, 0.0f, 1.0f)) return make_error("min_p must be in [0, 1], got {}", min_p);
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    return make_error("repetition_penalty must be a finite number > 0, got {}", repetition_penalty);
  }
  if (!in_range(presence_penalty, -2.0f, 2.0f)) {
    return make_error("presence_penalty must be in [-2, 2], got {}", presence_penalty);
  }
  if (!in_range(frequency_penalty, -2.0f, 2.0f)) {
    return make_error("frequency_penalty must be in [-2, 2], got {}", frequency_penalty);
  }
  for (const auto& [token, bias] : logit_bias) {
    if (token < 0 || (vocab_size > 0 && token >= vocab_size)) {
      return make_error("logit_bias names token {}, outside the vocabulary of {}", token,
                        vocab_size);
    }
    if (!in_range(bias, -100.0f, 100.0f)) {
      return make_error("logit_bias for token {} must be in [-100, 100], got {}", token, bias);
    }
  }
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs) {
    return make_error("top_logprobs must be in [0, {}], got {}", kMaxTopLogprobs, top_logprobs);
  }
  if (prompt_logprobs < -1 || prompt_logprobs > kMaxTopLogprobs) {
    return make_error("prompt_logprobs must be in [0, {}] (or -1 for none), got {}",
                      kMaxTopLogprobs, prompt_logprobs);
  }
  for (int32_t token : stop_token_ids) {
    if (token < 0 || (vocab_size > 0 && token >= vocab_size)) {
      return make_error("stop_token_ids has token {}, outside the vocabulary of {}", token,
                        vocab_size);
    }
  }
  for (const std::string& s : stop) {
    if (s.empty()) return make_error("stop strings must not be empty");
  }
  if (max_tokens < 1) return make_error("max_tokens must be at least 1, got {}", max_tokens);
  if (min_tokens < 0 || min_tokens > max_tokens) {
    return make_error("min_tokens must be in [0, max_tokens = {}], got {}", max_tokens, min_tokens);
  }
  if (!std::isfinite(length_penalty)) {
    return make_error("length_penalty must be a finite number, got {}", length_penalty);
  }
  // Each round asks the sampler for every beam's 2w best next tokens.
  if (use_beam_search && 2 * n > kMaxTopLogprobs) {
    return make_error("beam search takes at most {} beams (n), got {}", kMaxTopLogprobs / 2, n);
  }
  if (use_beam_search && grammar) {
    return make_error(
        "structured output (a grammar, JSON schema, regex or choice) is not supported with beam "
        "search");
  }
  if (use_beam_search && !stop.empty()) {
    return make_error("stop strings are not supported with beam search");
  }
  return Status::success();
}

}  // namespace moon
