// What a request asks of the sampler, with the conventions of OpenAI's and vLLM's APIs, and
// the checks that turn a bad value into a clear error before any token is generated.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/result.h"

namespace moon {

namespace grammar {
class GrammarAutomaton;
}

struct SamplingParams {
  int n = 1;                        // sequences per request, each with its own seed
  float temperature = 1.0f;         // 0 is greedy (argmax)
  int top_k = 0;                    // keep the k most likely; 0 or -1 disable
  float top_p = 1.0f;               // smallest set with this much probability, in (0, 1]
  float min_p = 0.0f;               // drop tokens below min_p times the top probability, [0, 1]
  float repetition_penalty = 1.0f;  // > 0; divides positive / multiplies negative logits
                                    // of tokens in the prompt or output; 1 disables
  float presence_penalty = 0.0f;    // [-2, 2], subtracted once per token seen in the output
  float frequency_penalty = 0.0f;   // [-2, 2], subtracted per occurrence in the output
  std::vector<std::pair<int32_t, float>> logit_bias;  // token, bias in [-100, 100]
  std::optional<uint64_t> seed;  // same seed and inputs, same tokens, whatever the batch
  bool logprobs = false;         // return the chosen token's log-probability
  int top_logprobs = 0;          // and this many most likely tokens', [0, kMaxTopLogprobs]
  // -1: none; k >= 0: each prompt token's log-probability under the model (raw logits, from
  // the second token on) and its k most likely alternatives, [0, kMaxTopLogprobs].
  int prompt_logprobs = -1;
  std::vector<int32_t> stop_token_ids;  // end generation (not part of the text)
  std::vector<std::string> stop;        // end generation; not part of the text unless...
  bool include_stop_str_in_output = false;
  int max_tokens = 16;      // >= 1
  int min_tokens = 0;       // EOS and stop tokens are masked until this many, <= max_tokens
  bool ignore_eos = false;  // keep going past EOS (it is still not part of the text)
  // Beam search of width n instead of sampling (vLLM's extension): the n best hypotheses
  // by cum_logprob / length^length_penalty, best first, when the request finishes.
  // Temperature, truncation and penalties do not apply to it.
  bool use_beam_search = false;
  float length_penalty = 1.0f;
  // Constrained decoding: every token must keep the text a prefix of a sentence of this
  // grammar, and the end-of-generation tokens wait until it is a whole one. Compiled for the
  // model's vocabulary and shared by every sequence that uses the same grammar.
  std::shared_ptr<grammar::GrammarAutomaton> grammar;

  // Greedy: the argmax is the only possible token (so no random draw is made).
  bool greedy() const { return temperature == 0.0f || top_k == 1; }

  // Every field in range; with vocab_size > 0, every token id too. The message names the
  // field and the accepted range.
  Status validate(int64_t vocab_size = 0) const;
};

}  // namespace moon
