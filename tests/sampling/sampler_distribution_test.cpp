// Sampled frequencies against the exact distribution each filter defines, by a chi-square
// test at a fixed seed (so the outcome is deterministic), plus negative controls showing
// that the test does catch a distribution that is off.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "sampling/sampler.h"
#include "sampling/sampling_test_util.h"

namespace moon {
namespace {

// The distribution SamplingParams define over `logits`, computed the plain way: full sorts,
// no shortcuts (temperature, then min-p, top-k, top-p, as the sampler documents).
std::vector<double> expected_distribution(const std::vector<float>& x, const SamplingParams& p) {
  const size_t n = x.size();
  std::vector<double> q(n, 0.0);
  const double m = *std::max_element(x.begin(), x.end());
  for (size_t i = 0; i < n; ++i) q[i] = std::exp((x[i] - m) / p.temperature);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] > x[b]; });
  std::vector<size_t> kept;
  for (size_t i : order) {
    if (q[i] >= p.min_p) kept.push_back(i);  // q_max is 1
  }
  if (p.top_k > 0 && kept.size() > size_t(p.top_k)) kept.resize(size_t(p.top_k));
  double total = 0.0;
  for (size_t i : kept) total += q[i];
  if (p.top_p < 1.0f) {
    double acc = 0.0;
    size_t m_keep = 0;
    while (m_keep < kept.size()) {
      acc += q[kept[m_keep++]];
      if (acc >= p.top_p * total) break;
    }
    kept.resize(m_keep);
  }
  std::vector<double> probs(n, 0.0);
  total = 0.0;
  for (size_t i : kept) total += q[i];
  for (size_t i : kept) probs[i] = q[i] / total;
  return probs;
}

// Draws `draws` tokens from one row through the batched sampler (a fresh copy of the row each
// step, since processors edit it) and counts them. Without a history each draw is the
// sequence's next step; with one (prompt and output tokens for the penalties), every draw
// sees that same history, from a sequence of its own seed.
struct History {
  std::vector<int32_t> prompt, output;
};
std::vector<int> draw_counts(const std::vector<float>& row, const SamplingParams& p, int draws,
                             const History* history = nullptr) {
  Sampler sampler;
  test::TestSequence seq{SequenceState(p, /*seed=*/20240611)};
  std::vector<int> counts(row.size(), 0);
  std::vector<float> logits(row.size());
  SampleOutput out[1];
  for (int i = 0; i < draws; ++i) {
    if (history != nullptr) {
      seq = {SequenceState(p, 20240611 + static_cast<uint64_t>(i), history->prompt),
             history->output};
    }
    logits = row;
    const SamplingRow rows[] = {seq.row()};
    sampler.sample(logits, static_cast<int64_t>(row.size()), rows, out);
    EXPECT_GE(out[0].id, 0);
    EXPECT_LT(out[0].id, static_cast<int32_t>(row.size()));
    ++counts[out[0].id];
    seq.take(out[0]);
  }
  return counts;
}

struct ChiSquare {
  double statistic = 0.0;
  int dof = 0;
  int impossible_hits = 0;  // draws of tokens with probability 0
};

// Bins with an expected count under 5 are pooled into one.
ChiSquare chi_square(const std::vector<int>& counts, const std::vector<double>& probs) {
  ChiSquare r;
  int draws = 0;
  for (int c : counts) draws += c;
  double pooled_expected = 0.0, pooled_observed = 0.0;
  int bins = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = probs[i] * draws;
    if (probs[i] == 0.0) {
      r.impossible_hits += counts[i];
      continue;
    }
    if (e < 5.0) {
      pooled_expected += e;
      pooled_observed += counts[i];
      continue;
    }
    r.statistic += (counts[i] - e) * (counts[i] - e) / e;
    ++bins;
  }
  if (pooled_expected > 0.0) {
    r.statistic +=
        (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / pooled_expected;
    ++bins;
  }
  r.dof = std::max(1, bins - 1);
  return r;
}

// The chi-square value a correct sampler exceeds with probability 1e-4 (Wilson-Hilferty).
double critical_value(int dof) {
  const double a = 2.0 / (9.0 * dof), z = 3.719;
  return dof * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

constexpr int kDraws = 20000;

std::vector<float> test_row() {
  return test::normal_row(5, 40, 1.5f);
}

struct FilterCase {
  const char* name;
  SamplingParams params;
};

std::vector<FilterCase> filter_cases() {
  std::vector<FilterCase> cases;
  auto add = [&](const char* name, auto set) {
    SamplingParams p;
    set(p);
    cases.push_back({name, p});
  };
  add("temperature 1", [](SamplingParams&) {});
  add("temperature 0.5", [](SamplingParams& p) { p.temperature = 0.5f; });
  add("temperature 2", [](SamplingParams& p) { p.temperature = 2.0f; });
  add("top_k 5", [](SamplingParams& p) { p.top_k = 5; });
  add("top_p 0.7", [](SamplingParams& p) { p.top_p = 0.7f; });
  add("min_p 0.2", [](SamplingParams& p) { p.min_p = 0.2f; });
  add("all together", [](SamplingParams& p) {
    p.temperature = 1.5f;
    p.top_k = 12;
    p.top_p = 0.9f;
    p.min_p = 0.05f;
  });
  return cases;
}

TEST(SamplerDistribution, EachFilterMatchesItsExactDistribution) {
  const std::vector<float> row = test_row();
  for (const FilterCase& c : filter_cases()) {
    const std::vector<double> probs = expected_distribution(row, c.params);
    const ChiSquare chi = chi_square(draw_counts(row, c.params, kDraws), probs);
    EXPECT_EQ(chi.impossible_hits, 0) << c.name;
    EXPECT_LT(chi.statistic, critical_value(chi.dof)) << c.name << ", dof " << chi.dof;
  }
}

TEST(SamplerDistribution, NegativeControlsAreDetected) {
  const std::vector<float> row = test_row();
  SamplingParams drawn, assumed;
  // Temperature 1 draws judged as if they came from temperature 1.15: a small error.
  assumed.temperature = 1.15f;
  ChiSquare chi = chi_square(draw_counts(row, drawn, kDraws), expected_distribution(row, assumed));
  EXPECT_GT(chi.statistic, critical_value(chi.dof));
  // An unfiltered sampler judged against top-p 0.9: the tail shows up where it must not.
  assumed = SamplingParams{};
  assumed.top_p = 0.9f;
  chi = chi_square(draw_counts(row, drawn, kDraws), expected_distribution(row, assumed));
  EXPECT_GT(chi.impossible_hits, 0);
  // Top-k 6 draws judged as top-k 5.
  drawn.top_k = 6;
  assumed = SamplingParams{};
  assumed.top_k = 5;
  chi = chi_square(draw_counts(row, drawn, kDraws), expected_distribution(row, assumed));
  EXPECT_GT(chi.impossible_hits, 0);
}

TEST(SamplerDistribution, PenaltiesAndBiasShapeTheDistribution) {
  const std::vector<float> row = test_row();
  SamplingParams p;
  p.repetition_penalty = 1.3f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  p.logit_bias = {{3, 2.0f}, {7, -100.0f}};
  const History history{{1, 2, 3}, {2, 5, 5, 9}};
  // The processed row, by hand: bias, then repetition (prompt or output), then
  // presence + frequency (output).
  std::vector<float> processed = row;
  processed[3] += 2.0f;
  processed[7] -= 100.0f;
  for (int32_t t : {1, 2, 3, 5, 9}) {
    processed[t] = processed[t] > 0 ? processed[t] / 1.3f : processed[t] * 1.3f;
  }
  processed[2] -= 0.5f + 0.25f * 1;
  processed[5] -= 0.5f + 0.25f * 2;
  processed[9] -= 0.5f + 0.25f * 1;
  const ChiSquare chi =
      chi_square(draw_counts(row, p, kDraws, &history), expected_distribution(processed, p));
  EXPECT_EQ(chi.impossible_hits, 0);
  EXPECT_LT(chi.statistic, critical_value(chi.dof));
}

// A real vocabulary size, through the vectorized weights and the top-p quickselect: a few
// likely tokens, binned individually, and the long tail as one bin.
TEST(SamplerDistribution, LargeVocabularyTopPAndFullDistribution) {
  std::vector<float> row = test::normal_row(11, 32000, 1.0f);
  for (int k = 0; k < 10; ++k) row[k * 3001] = 9.0f - 0.3f * k;
  for (float top_p : {1.0f, 0.8f}) {
    SamplingParams p;
    p.top_p = top_p;
    const std::vector<double> probs = expected_distribution(row, p);
    const std::vector<int> counts = draw_counts(row, p, 4000);
    std::vector<int> binned_counts(11, 0);
    std::vector<double> binned_probs(11, 0.0);
    int impossible = 0;
    for (size_t i = 0; i < row.size(); ++i) {
      const int bin = i % 3001 == 0 && i / 3001 < 10 ? int(i / 3001) : 10;
      binned_counts[bin] += counts[i];
      binned_probs[bin] += probs[i];
      if (probs[i] == 0.0) impossible += counts[i];
    }
    EXPECT_EQ(impossible, 0) << "top_p " << top_p;
    const ChiSquare chi = chi_square(binned_counts, binned_probs);
    EXPECT_LT(chi.statistic, critical_value(chi.dof)) << "top_p " << top_p;
  }
}

}  // namespace
}  // namespace moon
