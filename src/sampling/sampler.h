// Turns one row of logits into a token. This is the first cut used by `moon generate`:
// greedy (argmax, ties to the lowest id) and temperature sampling from a per-request seeded
// generator. The fused greedy+logprob pass and the full filter stack extend this file's
// neighbours in src/sampling/.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace moon {

struct SampledToken {
  int32_t id = -1;
  float logprob = 0.0f;  // log-softmax of the chosen token under the unscaled logits
};

// Argmax with ties going to the lowest id; NaN logits never win. Also returns the chosen
// token's log-probability. The row must be non-empty.
SampledToken sample_greedy(std::span<const float> logits);

class Sampler {
 public:
  // temperature 0 means greedy; `seed` makes the sequence of draws reproducible.
  Sampler(float temperature, uint64_t seed);
  SampledToken sample(std::span<const float> logits);

 private:
  float temperature_;
  std::mt19937_64 rng_;
};

}  // namespace moon
