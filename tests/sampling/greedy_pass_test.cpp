// The fused greedy pass against the plain two-pass reference, at every SIMD level the
// machine has, over row shapes that stress its blocks, segments and special values.
#include "sampling/greedy_pass.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>

#include "sampling/sampling_test_util.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

using test::kInf;
using test::kNaN;

std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (l <= hardware_simd_level()) out.push_back(l);
  }
  return out;
}

// Sizes around the vector widths (8, 16), blocks (64), segments (16384) and the real
// vocabularies.
const std::vector<int64_t> kSizes = {1,     2,     7,     8,     15,    16,    17,
                                     63,    64,    65,    127,   129,   512,   1000,
                                     16383, 16384, 16385, 32000, 32771, 50257, 128256};

struct Pattern {
  std::string name;
  std::function<std::vector<float>(int64_t n, uint64_t seed)> make;
};

std::vector<Pattern> patterns() {
  return {
      {"normal", [](int64_t n, uint64_t s) { return test::normal_row(s, n); }},
      {"ties",
       [](int64_t n, uint64_t s) {  // few distinct values: many ties for the max
         auto row = test::normal_row(s, n, 2.0f);
         for (float& v : row) v = std::round(v);
         return row;
       }},
      {"all_equal", [](int64_t n, uint64_t) { return std::vector<float>(n, 0.25f); }},
      {"masked",
       [](int64_t n, uint64_t s) {  // most logits -inf, as with a grammar mask
         auto row = test::normal_row(s, n);
         SplitMix64 rng(s + 1);
         for (float& v : row) {
           if (rng.below(10) < 8) v = -kInf;
         }
         return row;
       }},
      {"huge",
       [](int64_t n, uint64_t s) {
         auto row = test::normal_row(s, n);
         for (float& v : row) v *= 1e30f;
         return row;
       }},
      {"tiny",
       [](int64_t n, uint64_t s) {  // subnormal and tiny: effectively all equal
         auto row = test::normal_row(s, n);
         for (float& v : row) v *= 1e-40f;
         return row;
       }},
      {"large_offset",
       [](int64_t n, uint64_t s) {  // logits near 1000: exp would overflow
         auto row = test::normal_row(s, n);
         for (float& v : row) v += 1000.0f;
         return row;
       }},
      {"flt_max",
       [](int64_t n, uint64_t s) {
         auto row = test::normal_row(s, n);
         row[s % n] = std::numeric_limits<float>::max();
         row[(s * 7) % n] = std::numeric_limits<float>::lowest();
         return row;
       }},
      {"max_last",
       [](int64_t n, uint64_t s) {
         auto row = test::normal_row(s, n);
         row[n - 1] = 100.0f;
         return row;
       }},
      {"nan",
       [](int64_t n, uint64_t s) {
         auto row = test::normal_row(s, n);
         SplitMix64 rng(s + 2);
         for (float& v : row) {
           if (rng.below(7) == 0) v = kNaN;
         }
         row[0] = kNaN;  // NaN first must not win either
         return row;
       }},
      {"pos_inf",
       [](int64_t n, uint64_t s) {
         auto row = test::normal_row(s, n);
         row[(s * 3) % n] = kInf;
         row[(s * 11) % n] = kInf;
         return row;
       }},
      {"all_neg_inf", [](int64_t n, uint64_t) { return std::vector<float>(n, -kInf); }},
      {"all_nan", [](int64_t n, uint64_t) { return std::vector<float>(n, kNaN); }},
      {"nan_and_neg_inf",
       [](int64_t n, uint64_t) {
         std::vector<float> row(n, kNaN);
         row[n / 2] = -kInf;
         return row;
       }},
  };
}

// The references for one row, computed once for every level and top_n it is checked at (the
// tests' code is unoptimized, and under the sanitizers recomputing them was most of this
// test's time).
struct RowReference {
  test::ReferenceGreedy greedy;
  std::map<int, std::vector<int32_t>> top_ids;  // by top_n
};

RowReference reference_for(std::span<const float> row, std::initializer_list<int> top_ns) {
  RowReference r{test::reference_greedy(row), {}};
  for (int top_n : top_ns) r.top_ids[top_n] = test::reference_top_ids(row, top_n);
  return r;
}

void expect_matches_reference(std::span<const float> row, const RowReference& ref,
                              const GreedyResult& got, int top_n, const std::string& where) {
  const test::ReferenceGreedy& want = ref.greedy;
  ASSERT_EQ(got.id, want.id) << where;
  ASSERT_GE(got.id, 0) << where;
  ASSERT_LT(got.id, static_cast<int64_t>(row.size())) << where;
  if (std::isinf(want.logprob)) {
    EXPECT_EQ(got.logprob, want.logprob) << where;
  } else {
    EXPECT_NEAR(got.logprob, want.logprob, 2e-6 + 1e-6 * std::fabs(want.logprob)) << where;
  }
  if (top_n == 0) return;
  const std::vector<int32_t>& ids = ref.top_ids.at(top_n);
  ASSERT_EQ(got.n_top, static_cast<int>(ids.size())) << where;
  for (int k = 0; k < got.n_top; ++k) {
    ASSERT_EQ(got.top[k].id, ids[k]) << where << " rank " << k;
    // In float, as returned: -FLT_MAX - FLT_MAX is -inf there.
    const double lp = static_cast<float>(test::reference_logprob(want, row[ids[k]]));
    if (std::isinf(lp)) {
      EXPECT_EQ(got.top[k].logprob, lp) << where << " rank " << k;
    } else {
      EXPECT_NEAR(got.top[k].logprob, lp, 2e-6 + 1e-6 * std::fabs(lp)) << where << " rank " << k;
    }
  }
}

TEST(GreedyPass, MatchesTwoPassReferenceOnEveryShape) {
  for (const Pattern& pattern : patterns()) {
    for (int64_t n : kSizes) {
      const uint64_t seed = static_cast<uint64_t>(n) * 31 + pattern.name.size();
      const std::vector<float> row = pattern.make(n, seed);
      const RowReference ref = reference_for(row, {1, 5, 20});
      for (SimdLevel level : levels()) {
        for (int top_n : {0, 1, 5, 20}) {
          const std::string where = std::string(simd_level_name(level)) + " " + pattern.name +
                                    " n=" + std::to_string(n) + " top=" + std::to_string(top_n);
          expect_matches_reference(row, ref, greedy_pass(row, top_n, level), top_n, where);
        }
      }
    }
  }
}

TEST(GreedyPass, TiesGoToTheLowestIdAcrossLanesBlocksAndSegments) {
  for (SimdLevel level : levels()) {
    for (int64_t n : {100, 5000, 40000}) {
      for (int64_t first : {int64_t{0}, int64_t{1}, int64_t{17}, int64_t{63}, n / 2, n - 2}) {
        std::vector<float> row = test::normal_row(static_cast<uint64_t>(n + first), n);
        row[first] = 50.0f;
        for (int64_t later : {first + 1, first + 16, first + 64, first + 16384, n - 1}) {
          if (later > first && later < n) row[later] = 50.0f;
        }
        EXPECT_EQ(greedy_pass(row, 3, level).id, first)
            << simd_level_name(level) << " n=" << n << " first=" << first;
      }
    }
  }
}

TEST(GreedyPass, LogprobIsTheTrueLogSoftmaxNotTheRawLogit) {
  const std::vector<float> row = {1.0f, 3.0f, 2.0f};
  const GreedyResult r = greedy_pass(row);
  EXPECT_EQ(r.id, 1);
  const double want = 3.0 - std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0));
  EXPECT_NEAR(r.logprob, want, 1e-6);
  EXPECT_NEAR(logprob_of(r, 2.0f), want - 1.0, 1e-6);
}

bool same_result(const GreedyResult& a, const GreedyResult& b) {
  if (a.id != b.id || std::memcmp(&a.logprob, &b.logprob, sizeof(float)) != 0) return false;
  if (a.n_top != b.n_top) return false;
  for (int k = 0; k < a.n_top; ++k) {
    if (a.top[k].id != b.top[k].id ||
        std::memcmp(&a.top[k].logprob, &b.top[k].logprob, sizeof(float)) != 0) {
      return false;
    }
  }
  return true;
}

TEST(GreedyPass, BatchAndThreadsGiveBitIdenticalResults) {
  ThreadPool pool(2);
  for (int64_t vocab : {512, 32000, 128256}) {
    for (int64_t rows : {1, 3, 8}) {
      std::vector<float> logits;
      for (int64_t r = 0; r < rows; ++r) {
        const auto row = test::normal_row(static_cast<uint64_t>(vocab + r), vocab);
        logits.insert(logits.end(), row.begin(), row.end());
      }
      std::vector<GreedyResult> batched(rows), threaded(rows);
      greedy_pass_batch(logits.data(), rows, vocab, 4, batched.data(), nullptr);
      greedy_pass_batch(logits.data(), rows, vocab, 4, threaded.data(), &pool);
      for (int64_t r = 0; r < rows; ++r) {
        const GreedyResult alone = greedy_pass({logits.data() + r * vocab, size_t(vocab)}, 4);
        EXPECT_TRUE(same_result(alone, batched[r])) << "vocab " << vocab << " row " << r;
        EXPECT_TRUE(same_result(alone, threaded[r])) << "vocab " << vocab << " row " << r;
      }
    }
  }
}

TEST(GreedyPass, SimdLevelsAgreeClosely) {
  const auto row = test::normal_row(99, 128256);
  const GreedyResult scalar = greedy_pass(row, 5, SimdLevel::kScalar);
  for (SimdLevel level : levels()) {
    const GreedyResult r = greedy_pass(row, 5, level);
    EXPECT_EQ(r.id, scalar.id);
    EXPECT_NEAR(r.logprob, scalar.logprob, 1e-6);
  }
}

}  // namespace
}  // namespace moon
