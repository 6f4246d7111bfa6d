// fp16 / bf16 conversions: decoding checked exhaustively against an independent ldexp
// formula, encoding against round-trips, hand-picked ties, and the CPU's own converters.
// GCC 12's AVX-512 headers trip -Wuninitialized when inlined; the pragma must come first.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "tensor/half.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "util/cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moon {
namespace {

// IEEE binary16 value of bits h, from the format definition alone.
double fp16_by_formula(uint16_t h) {
  const int sign = h >> 15;
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  double v;
  if (exponent == 0) {
    v = std::ldexp(static_cast<double>(mantissa), -24);
  } else if (exponent == 31) {
    v = mantissa == 0 ? std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = std::ldexp(static_cast<double>(1024 + mantissa), exponent - 25);
  }
  return sign ? -v : v;
}

double bf16_by_formula(uint16_t h) {
  const int sign = h >> 15;
  const int exponent = (h >> 7) & 0xFF;
  const int mantissa = h & 0x7F;
  double v;
  if (exponent == 0) {
    v = std::ldexp(static_cast<double>(mantissa), -133);
  } else if (exponent == 255) {
    v = mantissa == 0 ? std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = std::ldexp(static_cast<double>(128 + mantissa), exponent - 134);
  }
  return sign ? -v : v;
}

TEST(Half, Fp16DecodeAllPatterns) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = fp16_to_fp32(h);
    const double expected = fp16_by_formula(h);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << i;
      // The payload moves up intact, sign included.
      ASSERT_EQ(std::bit_cast<uint32_t>(f), (static_cast<uint32_t>(h & 0x8000) << 16) |
                                                0x7F800000u |
                                                (static_cast<uint32_t>(h & 0x3FF) << 13));
    } else {
      ASSERT_EQ(static_cast<double>(f), expected) << std::hex << i;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << i;
    }
  }
}

TEST(Half, Bf16DecodeAllPatterns) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = bf16_to_fp32(h);
    const double expected = bf16_by_formula(h);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << i;
    } else {
      ASSERT_EQ(static_cast<double>(f), expected) << std::hex << i;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << i;
    }
  }
}

TEST(Half, RoundTripEveryPattern) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    if (std::isnan(fp16_to_fp32(h))) {
      ASSERT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(fp16_to_fp32(h))))) << std::hex << i;
    } else {
      ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(h)), h) << std::hex << i;
    }
    if (std::isnan(bf16_to_fp32(h))) {
      ASSERT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(bf16_to_fp32(h))))) << std::hex << i;
    } else {
      ASSERT_EQ(fp32_to_bf16(bf16_to_fp32(h)), h) << std::hex << i;
    }
  }
}

// Between two neighbouring finite halves, the exact midpoint (representable in fp32) rounds
// to the even one, and anything off the midpoint rounds to the nearer one.
TEST(Half, Fp16RoundsToNearestEven) {
  for (uint32_t i = 0; i < 0x7BFF; ++i) {  // positive finite, up to the one below 65504
    const uint16_t lo = static_cast<uint16_t>(i), hi = static_cast<uint16_t>(i + 1);
    const double a = fp16_by_formula(lo), b = fp16_by_formula(hi);
    const float mid = static_cast<float>((a + b) / 2);
    ASSERT_EQ(static_cast<double>(mid), (a + b) / 2);
    const uint16_t even = (lo & 1) ? hi : lo;
    ASSERT_EQ(fp32_to_fp16(mid), even) << std::hex << i;
    ASSERT_EQ(fp32_to_fp16(-mid), even | 0x8000) << std::hex << i;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 0.0f)), lo) << std::hex << i;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 1e9f)), hi) << std::hex << i;
  }
}

TEST(Half, Fp16EdgeCases) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // the tie above the largest half overflows
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(inf), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-inf), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // half of it: tie to even (0)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: tie to even (2)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up into the normals
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie, 1.0 is even
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // tie, up to even
  const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  // A signalling NaN whose payload lives only in the low bits must not become infinity.
  EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(std::bit_cast<float>(0x7F800001u)))));
}

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, stays even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, up to even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F807FFFu)), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // FLT_MAX -> inf
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00008000u)), 0x0000);  // subnormal tie
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(0x7F800001u)))));
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(0xFFFFFFFFu)))));
  // Exhaustively over the neighbourhood structure: every midpoint of two bf16 neighbours.
  for (uint32_t i = 0; i < 0x7F7F; ++i) {
    const uint32_t mid = (i << 16) | 0x8000u;
    const uint16_t even = (i & 1) ? static_cast<uint16_t>(i + 1) : static_cast<uint16_t>(i);
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(mid)), even) << std::hex << i;
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(mid - 1)), i) << std::hex << i;
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(mid + 1)), i + 1) << std::hex << i;
  }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t hardware_fp16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("avx512bf16,avx512f,avx512vl"))) uint16_t hardware_bf16(float f) {
  return std::bit_cast<uint16_t>(_mm_cvtness_sbh(f));
}

// The CPU's converters are an independent implementation of the same rounding.
TEST(Half, MatchesHardwareConverters) {
  const bool f16c = cpu_features().f16c;
  const bool bf16 = cpu_features().avx512_bf16 && cpu_features().avx512vl;
  if (!f16c && !bf16) GTEST_SKIP() << "no F16C or AVX512_BF16 on this CPU";
  std::mt19937 rng(11);
  for (int i = 0; i < (1 << 22); ++i) {
    // Random bit patterns cover everything; a second draw concentrates on the half range.
    uint32_t bits = rng();
    if (i & 1) bits = (bits & 0x87FFFFFFu) | 0x30000000u;
    const float f = std::bit_cast<float>(bits);
    if (std::isnan(f)) continue;
    if (f16c) {
      ASSERT_EQ(fp32_to_fp16(f), hardware_fp16(f)) << std::hex << bits;
    }
    // vcvtneps2bf16 flushes subnormal inputs to zero; compare on normals only.
    if (bf16 && std::isnormal(f)) {
      ASSERT_EQ(fp32_to_bf16(f), hardware_bf16(f)) << std::hex << bits;
    }
  }
}
#endif

}  // namespace
}  // namespace moon
