// The vector exp used by softmax and silu, checked directly against double-precision exp.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernel_test_util.h"
#include "simd_exp_levels.h"

namespace moon::test {
namespace {

// Distance in representable floats (both finite and of the same sign here).
int64_t ulps(float a, float b) {
  return std::abs(static_cast<int64_t>(std::bit_cast<int32_t>(a)) - std::bit_cast<int32_t>(b));
}

void check_exp(void (*fn)(const float*, float*, int64_t)) {
  std::vector<float> x;
  for (float v = -87.0f; v < 88.5f; v += 0.000377f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.72f, -87.33f}) x.push_back(v);
  while (x.size() % 16 != 0) x.push_back(1.0f);
  std::vector<float> y(x.size());
  fn(x.data(), y.data(), static_cast<int64_t>(x.size()));
  int64_t worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float truth = static_cast<float>(std::exp(static_cast<double>(x[i])));
    worst = std::max(worst, ulps(y[i], truth));
  }
  EXPECT_LE(worst, 2) << "max ulp error";

  // Saturation and special values.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> special = {-inf, inf, 100.0f, 89.0f, -104.0f, -200.0f, std::nanf(""), 0.0f};
  special.resize(16, 0.0f);
  std::vector<float> out(16);
  fn(special.data(), out.data(), 16);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], inf);
  EXPECT_EQ(out[2], inf);
  EXPECT_EQ(out[3], inf);
  EXPECT_LT(out[4], 1e-44f);
  EXPECT_EQ(out[5], 0.0f);
  EXPECT_TRUE(std::isnan(out[6]));
  EXPECT_EQ(out[7], 1.0f);
}

TEST(SimdExp, Avx2WithinTwoUlp) {
  if (hardware_simd_level() < SimdLevel::kAvx2) GTEST_SKIP() << "no AVX2 on this CPU";
  check_exp(&exp_avx2);
}

TEST(SimdExp, Avx512WithinTwoUlp) {
  if (hardware_simd_level() < SimdLevel::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  check_exp(&exp_avx512);
}

TEST(SimdExp, LevelsAgreeBitwise) {
  if (hardware_simd_level() < SimdLevel::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(9);
  const std::vector<float> x = random_floats(rng, 1 << 16, -110.0f, 95.0f);
  std::vector<float> a(x.size()), b(x.size());
  exp_avx2(x.data(), a.data(), static_cast<int64_t>(x.size()));
  exp_avx512(x.data(), b.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << x[i];
}

}  // namespace
}  // namespace moon::test
