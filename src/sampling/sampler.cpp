#include "sampling/sampler.h"

#include <cmath>
#include <limits>
#include <vector>

namespace moon {
namespace {

// log(sum(exp(logits))) with the max subtracted for stability; non-finite values skipped
// so that a NaN logit cannot poison every probability.
double log_sum_exp(std::span<const float> logits, float max) {
  double sum = 0.0;
  for (float v : logits) {
    if (std::isfinite(v)) sum += std::exp(static_cast<double>(v) - max);
  }
  return static_cast<double>(max) + std::log(sum);
}

}  // namespace

SampledToken sample_greedy(std::span<const float> logits) {
  int32_t best = 0;
  float best_value = -std::numeric_limits<float>::infinity();
  bool found = false;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (!std::isnan(v) && (!found || v > best_value)) {
      best = static_cast<int32_t>(i);
      best_value = v;
      found = true;
    }
  }
  SampledToken out;
  out.id = best;
  if (!std::isfinite(best_value)) {
    out.logprob = best_value > 0 ? 0.0f : -std::numeric_limits<float>::infinity();
    return out;
  }
  out.logprob = static_cast<float>(best_value - log_sum_exp(logits, best_value));
  return out;
}

Sampler::Sampler(float temperature, uint64_t seed) : temperature_(temperature), rng_(seed) {}

SampledToken Sampler::sample(std::span<const float> logits) {
  if (temperature_ <= 0.0f) return sample_greedy(logits);
  const SampledToken greedy = sample_greedy(logits);
  const float max = logits[greedy.id];
  // Probabilities at the given temperature; non-finite logits get zero mass.
  std::vector<double> weights(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    weights[i] = std::isfinite(v) ? std::exp((static_cast<double>(v) - max) / temperature_) : 0.0;
    total += weights[i];
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  int32_t chosen = greedy.id;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] > 0.0 && r < weights[i]) {
      chosen = static_cast<int32_t>(i);
      break;
    }
    r -= weights[i];
  }
  SampledToken out;
  out.id = chosen;
  out.logprob = static_cast<float>(logits[chosen] - log_sum_exp(logits, max));
  return out;
}

}  // namespace moon
