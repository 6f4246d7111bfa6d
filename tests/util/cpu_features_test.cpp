#include "util/cpu_features.h"

#include <gtest/gtest.h>

namespace moon {
namespace {

TEST(CpuFeatures, LevelNamesRoundTrip) {
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    EXPECT_EQ(parse_simd_level(simd_level_name(l)), l);
  }
  EXPECT_FALSE(parse_simd_level("sse2").has_value());
  EXPECT_FALSE(parse_simd_level("").has_value());
}

TEST(CpuFeatures, HardwareLevelFollowsFeatures) {
  const CpuFeatures& f = cpu_features();
  const SimdLevel level = hardware_simd_level();
  if (level >= SimdLevel::kAvx2) {
    EXPECT_TRUE(f.avx2 && f.fma && f.f16c);
  }
  if (level == SimdLevel::kAvx512) {
    EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq);
  }
  // Features imply each other the way CPUs ship them.
  if (f.avx512bw || f.avx512vl || f.avx512_bf16 || f.avx512_vnni) {
    EXPECT_TRUE(f.avx512f);
  }
  // simd_level() never exceeds the hardware, whatever MOON_CPU says.
  EXPECT_LE(simd_level(), level);
  std::printf("hardware level: %s, in use: %s\n", std::string(simd_level_name(level)).c_str(),
              std::string(simd_level_name(simd_level())).c_str());
}

TEST(CpuFeatures, RequestsOnlyLower) {
  EXPECT_EQ(apply_simd_request(SimdLevel::kAvx512, nullptr), SimdLevel::kAvx512);
  EXPECT_EQ(apply_simd_request(SimdLevel::kAvx512, ""), SimdLevel::kAvx512);
  EXPECT_EQ(apply_simd_request(SimdLevel::kAvx512, "scalar"), SimdLevel::kScalar);
  EXPECT_EQ(apply_simd_request(SimdLevel::kAvx512, "avx2"), SimdLevel::kAvx2);
  EXPECT_EQ(apply_simd_request(SimdLevel::kAvx2, "avx512"), SimdLevel::kAvx2);
  EXPECT_EQ(apply_simd_request(SimdLevel::kScalar, "avx2"), SimdLevel::kScalar);
  EXPECT_EQ(apply_simd_request(SimdLevel::kAvx2, "bogus"), SimdLevel::kAvx2);
}

}  // namespace
}  // namespace moon
