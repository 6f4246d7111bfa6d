// util/simd/vec_exp.h, the one exponential of the kernels and the sampler, at every vector
// level this CPU has, against double-precision exp over its whole range and past both clamps.
#include "util/simd/vec_exp.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "util/cpu_features.h"
#include "util/simd/target.h"
#include "vec_exp_levels.h"

#if MOON_HAVE_X86

namespace moon::test {
namespace {

// The bound vec_exp.h states, for exp where e^x is a normal float and for the polynomial on
// [0, 1]. Measured over every float in range: exp 2.01e-7 (the same bits at both levels), the
// polynomial 1.65e-7 with FMAs and 1.85e-7 without.
constexpr double kMaxRelError = 2.1e-7;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr double kFltMax = std::numeric_limits<float>::max();
constexpr double kFltMin = std::numeric_limits<float>::min();

struct Level {
  std::string name;
  VecFn exp;
  VecFn exp2_fraction;
};

std::vector<Level> levels() {
  std::vector<Level> out;
  if (hardware_simd_level() >= SimdLevel::kAvx2) {
    out.push_back({"avx2", &vec_exp_avx2, &vec_exp2_fraction_avx2});
  }
  if (hardware_simd_level() >= SimdLevel::kAvx512) {
    out.push_back({"avx512", &vec_exp_avx512, &vec_exp2_fraction_avx512});
  }
  return out;
}

std::vector<float> apply(VecFn fn, std::vector<float> x) {
  const size_t n = x.size();
  x.resize((n + 15) / 16 * 16, 0.0f);
  std::vector<float> y(x.size());
  fn(x.data(), y.data(), static_cast<int64_t>(x.size()));
  y.resize(n);
  return y;
}

TEST(VecExp, WithinItsRelativeErrorOverTheWholeRangeAndSaturatesPastIt) {
  if (levels().empty()) GTEST_SKIP() << "no AVX2 on this CPU";
  // A step of 2^-13 from below the lower clamp (-104) to above the upper one (89), random
  // points between, and the floats around each threshold.
  std::vector<float> x;
  for (double v = -110.0; v <= 95.0; v += 1.0 / 8192) x.push_back(static_cast<float>(v));
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-88.0f, 89.0f);
  for (int i = 0; i < (1 << 20); ++i) x.push_back(dist(rng));
  for (float edge : {-104.0f, -103.97f, -87.3365f, 0.0f, 88.7228f, 89.0f}) {
    float v = edge;
    for (int k = 0; k < 64; ++k) v = std::nextafter(v, -kInf);
    for (int k = 0; k < 128; ++k, v = std::nextafter(v, kInf)) x.push_back(v);
  }

  std::vector<float> first;
  for (const Level& level : levels()) {
    SCOPED_TRACE(level.name);
    const std::vector<float> y = apply(level.exp, x);
    double worst = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double truth = std::exp(static_cast<double>(x[i]));
      if (truth >= kFltMin && truth * (1.0 + kMaxRelError) <= kFltMax) {
        const double rel = std::fabs(y[i] - truth) / truth;
        worst = std::max(worst, rel);
        ASSERT_LE(rel, kMaxRelError) << "x = " << x[i] << ", e^x = " << y[i];
      } else if (truth < kFltMin) {
        // Subnormal or below: the polynomial's error, then one rounding onto the subnormal
        // grid (0 below the clamp).
        ASSERT_LE(std::fabs(y[i] - truth), kMaxRelError * truth + 0x1p-150) << "x = " << x[i];
      } else if (truth > kFltMax * (1.0 + 0x1p-24)) {
        ASSERT_EQ(y[i], kInf) << "x = " << x[i];  // what the float of e^x is, too
      } else {
        ASSERT_TRUE(y[i] == kInf || std::fabs(y[i] - truth) / truth <= kMaxRelError);
      }
    }
    std::printf("[ measured ] %s: max relative error %.3g (bound %.3g) over %zu points\n",
                level.name.c_str(), worst, kMaxRelError, x.size());
    // The levels give the same bits, so kernels' results do not depend on the CPU.
    if (first.empty()) {
      first = y;
    } else {
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(first[i])) << x[i];
      }
    }
  }
}

TEST(VecExp, SpecialValuesAreWhatTheCallersNeed) {
  if (levels().empty()) GTEST_SKIP() << "no AVX2 on this CPU";
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float max = std::numeric_limits<float>::max();
  const std::vector<float> x = {0.0f, -0.0f, -kInf,  -105.0f, -1e30f, -max,
                                kInf, 89.0f, 100.0f, max,     nan,    -nan};
  for (const Level& level : levels()) {
    SCOPED_TRACE(level.name);
    const std::vector<float> y = apply(level.exp, x);
    // Exactly 1: softmax's maximum and attention's unchanged running max weigh exactly 1.
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], 1.0f);
    // Exactly +0: masked attention scores and -inf logits carry no weight at all.
    for (int i = 2; i <= 5; ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(y[i]), 0u) << "x = " << x[i];
    }
    // +inf, never NaN: softcap's 1 - 2 / (e + 1) then saturates to 1, silu's g / (1 + e) to 0.
    for (int i = 6; i <= 9; ++i) EXPECT_EQ(y[i], kInf) << "x = " << x[i];
    // NaN stays NaN, so a broken input shows instead of turning into a weight.
    EXPECT_TRUE(std::isnan(y[10]));
    EXPECT_TRUE(std::isnan(y[11]));
  }
}

TEST(VecExp, ThePolynomialAndItsScalarTwinAgreeAndAreOneAtTheMidpoint) {
  std::vector<float> t;
  for (int i = 0; i <= (1 << 20); ++i) t.push_back(static_cast<float>(i) / (1 << 20));
  // exp(0) == 1 rests on exp2_fraction(1/2) == 1, in the scalar form as in the vector one.
  EXPECT_EQ(simd::exp2_fraction(0.5f), 1.0f);
  double worst = 0.0;
  for (float v : t) {
    const double truth = std::exp2(static_cast<double>(v) - 0.5);
    const double rel = std::fabs(simd::exp2_fraction(v) - truth) / truth;
    worst = std::max(worst, rel);
    ASSERT_LE(rel, kMaxRelError) << "t = " << v;
  }
  std::printf("[ measured ] scalar polynomial: max relative error %.3g\n", worst);
  for (const Level& level : levels()) {
    SCOPED_TRACE(level.name);
    const std::vector<float> y = apply(level.exp2_fraction, t);
    EXPECT_EQ(y[t.size() / 2], 1.0f);
    for (size_t i = 0; i < t.size(); ++i) {
      // FMAs against separate multiplies and adds: a few roundings apart at most.
      const float scalar = simd::exp2_fraction(t[i]);
      ASSERT_LE(std::fabs(y[i] - scalar), 2 * 0x1p-23) << "t = " << t[i];
    }
  }
}

}  // namespace
}  // namespace moon::test

#endif  // MOON_HAVE_X86
