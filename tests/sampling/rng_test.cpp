#include "sampling/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

namespace moon {
namespace {

// Known-answer vectors of the Philox4x32-10 reference implementation (Random123).
TEST(Philox, MatchesReferenceVectors) {
  using A = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (A{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}),
            (A{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (A{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(RequestRng, DrawsDependOnlyOnSeedStepAndDraw) {
  const RequestRng a(42), b(42), c(43);
  for (uint64_t step : {0ull, 1ull, 1000ull, 1ull << 40}) {
    EXPECT_EQ(a.bits(step), b.bits(step));
    EXPECT_NE(a.bits(step), c.bits(step));
    EXPECT_NE(a.bits(step, 0), a.bits(step, 1));
  }
  // Order of calls does not matter: there is no state.
  const double later = a.uniform(7);
  (void)a.uniform(3);
  EXPECT_EQ(a.uniform(7), later);
}

TEST(RequestRng, UniformIsInRangeAndEvenlySpread) {
  const RequestRng rng(7);
  constexpr int kBins = 20, kDraws = 200000;
  std::vector<int> counts(kBins);
  for (int i = 0; i < kDraws; ++i) {
    const double u = rng.uniform(static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++counts[static_cast<int>(u * kBins)];
  }
  double chi2 = 0.0;
  const double expected = static_cast<double>(kDraws) / kBins;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 43.8);  // 19 degrees of freedom, p = 0.001
}

TEST(RequestRng, SequenceSeedsAreDistinctAndSequenceZeroKeepsTheSeed) {
  EXPECT_EQ(sequence_seed(123, 0), 123u);
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < 64; ++i) seen.insert(sequence_seed(123, i));
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_NE(random_seed(), random_seed());  // 2^-64 chance of a false failure
}

}  // namespace
}  // namespace moon
