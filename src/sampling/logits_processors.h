// Edits to a row of logits made before the token is chosen: logit bias, the EOS / stop-token
// mask that enforces min_tokens, and the repetition, presence and frequency penalties (in
// that order, as vLLM does). Each touches only the tokens it concerns, never the whole row.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "sampling/sampling_params.h"

namespace moon {

// What the penalties need to know of one sequence: the tokens of its prompt and how often
// each token has appeared in its output so far. An index over the sequence's tokens (which
// the sequence owns), not a second record of them: catch_up reads what it has not seen.
class TokenHistory {
 public:
  void set_prompt(std::span<const int32_t> prompt);
  void add_output(int32_t token);
  // Counts output[output_length(), ...): `output` is the whole output so far.
  void catch_up(std::span<const int32_t> output);

  const std::vector<int32_t>& prompt_tokens() const { return prompt_; }  // sorted, unique
  const std::unordered_map<int32_t, int32_t>& output_counts() const { return output_; }
  int64_t output_length() const { return output_length_; }

 private:
  std::vector<int32_t> prompt_;
  std::unordered_map<int32_t, int32_t> output_;
  int64_t output_length_ = 0;
};

// True when `params` would change any logit (so a row can skip the pass entirely).
bool has_logits_processors(const SamplingParams& params);

// Applies everything to `logits` (one row) in place. `n_generated` is how many tokens the
// sequence has produced so far; `eos_ids` are the model's end-of-generation tokens. Token ids
// outside the row are ignored.
void apply_logits_processors(std::span<float> logits, const SamplingParams& params,
                             const TokenHistory& history, int64_t n_generated,
                             std::span<const int32_t> eos_ids);

// The pieces, for tests and for callers that need only some of them.
void apply_logit_bias(std::span<float> logits, const SamplingParams& params);
void mask_stop_tokens(std::span<float> logits, const SamplingParams& params, int64_t n_generated,
                      std::span<const int32_t> eos_ids);
void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     const TokenHistory& history);

}  // namespace moon
