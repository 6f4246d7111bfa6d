// select_top_k's block compare at every SIMD level against the scalar one, and select_top_k
// itself switched between levels in one process: the mask decides which logits are looked at,
// so a level that dropped a lane (or let NaN in) would silently change top-k.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "sampling/kernels.h"
#include "sampling/sampling_test_util.h"
#include "sampling/top_k_top_p.h"
#include "util/cpu_features.h"

namespace moon {
namespace {

using sampling_internal::kScanBlock;

std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (l <= hardware_simd_level()) out.push_back(l);
  }
  return out;
}

TEST(AboveMask, EveryLevelGivesTheScalarBits) {
  std::vector<float> row = test::normal_row(5, 64 * kScanBlock);
  SplitMix64 rng(6);
  for (float& v : row) {
    const uint64_t r = rng.below(16);
    if (r == 0) v = test::kNaN;
    if (r == 1) v = -test::kInf;
    if (r == 2) v = test::kInf;
    if (r == 3) v = 1.5f;  // ties with one of the bars
  }
  const auto scalar = sampling_internal::above_mask_for(SimdLevel::kScalar);
  for (SimdLevel level : levels()) {
    const auto fn = sampling_internal::above_mask_for(level);
    for (float bar : {-test::kInf, -2.0f, 0.0f, 1.5f, 4.0f, test::kInf, test::kNaN}) {
      for (size_t b = 0; b + kScanBlock <= row.size(); b += kScanBlock) {
        ASSERT_EQ(fn(&row[b], bar), scalar(&row[b], bar))
            << simd_level_name(level) << " block " << b / kScanBlock << " bar " << bar;
      }
    }
  }
}

TEST(AboveMask, SelectTopKIsTheSameAtEveryLevel) {
  const SimdLevel before = simd_level();
  std::vector<float> row = test::normal_row(7, 32000);
  for (size_t i = 0; i < row.size(); i += 97) row[i] = test::kNaN;
  for (size_t i = 0; i < row.size(); i += 89) row[i] = std::round(row[i]);  // ties
  std::vector<std::vector<int32_t>> want;
  for (SimdLevel level : levels()) {
    set_simd_level(level);
    std::vector<std::vector<int32_t>> got;
    for (int64_t k : {1, 50, 64, 1000}) {
      std::vector<Candidate> c;
      select_top_k(row, k, -test::kInf, c);
      std::vector<int32_t> ids;
      for (const Candidate& x : c) ids.push_back(x.id);
      std::sort(ids.begin(), ids.end());
      got.push_back(ids);
    }
    if (want.empty()) {
      want = got;
    } else {
      EXPECT_EQ(got, want) << simd_level_name(level);
    }
  }
  set_simd_level(before);
}

}  // namespace
}  // namespace moon
