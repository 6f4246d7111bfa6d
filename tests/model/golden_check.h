// Holding moon to llama.cpp's golden files (../shared/models/{kquants,arch}/golden-*.jsonl,
// fields described in that README): prompt token ids exactly; then, fed llama.cpp's own
// continuation (teacher forcing), the top-10 logits of steps 0-3 within a tolerance (entries
// may swap only where their logits are within twice the tolerance) and, at all 32 steps,
// llama.cpp's greedy token as moon's argmax wherever llama.cpp's top-1/top-2 margin is at
// least twice the tolerance.
#pragma once

#include <string>

#include "model/model.h"

namespace moon::test {

struct GoldenResult {
  double worst = 0.0;  // largest |logit - golden| over the top-10s (infinity on failure)
  int lines = 0;
  int checked_steps = 0;  // greedy steps with a margin wide enough to compare
};

// The engine's paged forward on `model_file` against `golden_file` (both under the test
// data root, which the caller has checked). Prompts are tokenized with the line's
// add_special and parse_special flags.
GoldenResult expect_engine_follows_golden(const std::string& model_file,
                                          const std::string& golden_file, float tolerance);

// The reference forward on the same, over the top-10 logits of steps 0-3 only (it is slow).
GoldenResult expect_reference_follows_golden(const Model& model, const std::string& golden_file,
                                             float tolerance);

}  // namespace moon::test
