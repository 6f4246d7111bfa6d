// Shared by the sampling tests: rows of logits with chosen shapes, and the plain two-pass
// reference the fused greedy pass is held to.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "sampling/sampler.h"
#include "util/splitmix64.h"

namespace moon::test {

inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Roughly normal(0, scale): the sum of four uniforms.
inline float normalish(SplitMix64& rng, float scale) {
  float s = 0.0f;
  for (int i = 0; i < 4; ++i) s += rng.uniform(1.0f);
  return s * scale * 0.866f;
}

inline std::vector<float> normal_row(uint64_t seed, int64_t n, float scale = 3.0f) {
  SplitMix64 rng(seed);
  std::vector<float> row(static_cast<size_t>(n));
  for (float& v : row) v = normalish(rng, scale);
  return row;
}

struct ReferenceGreedy {
  int32_t id = 0;
  double logprob = 0.0;
  double max = 0.0;
  double log_sum_exp = 0.0;  // ln Σ exp(x - max)
};

// Two plain passes in double: the argmax (first of the largest; NaN never wins), then the
// log-sum-exp. +inf logits share the probability; a row with no finite value and no +inf
// gives the lowest non-NaN id with logprob -inf.
inline ReferenceGreedy reference_greedy(std::span<const float> row) {
  ReferenceGreedy r;
  double m = -kInf;
  int64_t first = -1, first_non_nan = -1;
  for (size_t i = 0; i < row.size(); ++i) {
    if (std::isnan(row[i])) continue;
    if (first_non_nan < 0) first_non_nan = static_cast<int64_t>(i);
    if (row[i] > m) {
      m = row[i];
      first = static_cast<int64_t>(i);
    }
  }
  r.max = m;
  if (m == -kInf) {
    r.id = static_cast<int32_t>(std::max<int64_t>(first_non_nan, 0));
    r.logprob = -kInf;
    return r;
  }
  r.id = static_cast<int32_t>(first);
  double s = 0.0;
  for (float v : row) {
    if (m == kInf) {
      s += v == kInf;
    } else if (v > -kInf) {
      s += std::exp(static_cast<double>(v) - m);
    }
  }
  r.log_sum_exp = std::log(s);
  r.logprob = -r.log_sum_exp;
  return r;
}

// The reference log-probability of one logit in a row summarized by `r`.
inline double reference_logprob(const ReferenceGreedy& r, float v) {
  if (std::isnan(v)) return -kInf;
  if (r.max == kInf) return v == kInf ? -r.log_sum_exp : -kInf;
  return static_cast<double>(v) - r.max - r.log_sum_exp;
}

// The ids of the n best logits (higher first, then lower id), NaN and -inf excluded.
inline std::vector<int32_t> reference_top_ids(std::span<const float> row, int n) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < row.size(); ++i) {
    if (row[i] > -kInf) ids.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  if (ids.size() > static_cast<size_t>(n)) ids.resize(static_cast<size_t>(n));
  return ids;
}

// A sequence as the engine keeps one, for driving the sampler alone: its sampling state and
// the tokens it has generated so far. take() appends a sampled token, the scheduler's part.
struct TestSequence {
  SequenceState state;
  std::vector<int32_t> output;

  SamplingRow row() { return {&state, output}; }
  void take(const SampleOutput& o) { output.push_back(o.id); }
  int64_t step() const { return static_cast<int64_t>(output.size()); }
  const TokenHistory& history() { return state.history(output); }
};

}  // namespace moon::test
