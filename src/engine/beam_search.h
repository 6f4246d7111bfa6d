// The decisions of beam search, kept apart from the driver that runs the rounds
// (beam_search_driver.h) so they can be read (and tested) on their own. Each round every
// live beam offers its 2w most likely next tokens; the w best continuations overall (by
// cumulative log-probability) become the next beams, and continuations that end the text
// (a stop token) become finished hypotheses instead.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "engine/sequence.h"

namespace moon {

struct BeamCandidate {
  SequenceId beam = 0;
  TokenId token = -1;
  float logprob = 0.0f;  // of `token` after the beam
  double score = 0.0;    // the beam's cumulative log-probability plus `logprob`
};

struct BeamHypothesis {
  std::vector<TokenId> tokens;  // generated tokens (a final stop token included)
  std::vector<float> logprobs;  // one per token
  double cum_logprob = 0.0;
  FinishReason reason = FinishReason::kLength;
};

// Length-normalized score that ranks finished hypotheses: cum_logprob / length^penalty
// (penalty 0: raw log-probability; > 0 favours longer texts).
double beam_score(double cum_logprob, int64_t length, float length_penalty);

struct BeamSelection {
  std::vector<BeamCandidate> next;      // at most `width`, best first
  std::vector<BeamCandidate> finished;  // stop-token continuations ranked above the cut
};

// Orders all candidates by score (ties: lower beam id, then lower token) and walks down
// them: a stop token ends a hypothesis, anything else continues a beam, until `width`
// beams continue.
BeamSelection select_beams(std::vector<BeamCandidate> candidates, int width,
                           const std::function<bool(TokenId)>& is_stop);

}  // namespace moon
