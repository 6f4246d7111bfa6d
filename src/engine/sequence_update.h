// What the engine reports after each step: the tokens each sequence gained, how each ended,
// and the logprobs asked for. Every front end (the server, `moon generate`, the beam search
// driver) reads the engine through these.
#pragma once

#include <vector>

#include "engine/sequence.h"
#include "sampling/greedy_pass.h"

namespace moon {

// One prompt token's log-probability under the model, and the most likely alternatives.
struct PromptLogprob {
  TokenLogprob token;
  std::vector<TokenLogprob> top;  // params.prompt_logprobs of them, best first
};

// What one sequence gained in one step.
struct SequenceUpdate {
  RequestId request_id = 0;
  int index = 0;       // which of the request's n sequences
  TokenId token = -1;  // the new token; -1 when the step only finished it
  // Log-probability of `token` under the model's distribution after logit bias and
  // penalties, before temperature and truncation (what a greedy request sees).
  float logprob = 0.0f;
  // The params.top_logprobs most likely tokens of the same distribution, best first; empty
  // unless asked for.
  std::vector<TokenLogprob> top_logprobs;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  // With params.prompt_logprobs: the prompt tokens whose logits this step computed (from
  // the second prompt token on, in order; a chunked prompt reports over several steps,
  // in updates with no token), each exactly once.
  std::vector<PromptLogprob> prompt_logprobs;
};

}  // namespace moon
