// Q8_0 and Q4_0: blocks worked out by hand from the format definition, byte for byte, and
// quantize -> dequantize error bounds on random data.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/convert.h"
#include "tensor/half.h"
#include "tensor/quant_q4_0.h"
#include "tensor/quant_q8_0.h"

namespace moon {
namespace {

TEST(Q8_0, HandBlockWithUnitScale) {
  // amax = 127 makes d = 1 exactly, so q = round(x), halves away from zero (ggml's roundf).
  float x[32] = {-127.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 126.6f, 3.49f};
  BlockQ8_0 b;
  quantize_row_q8_0(x, &b, 32);
  uint8_t bytes[34];
  std::memcpy(bytes, &b, 34);
  const uint8_t expected_head[10] = {0x00, 0x3C,  // d = 1.0 in fp16, little-endian
                                     0x81, 0x01, 0xFF, 0x02, 0x03, 0xFD, 0x7F, 0x03};
  EXPECT_EQ(0, std::memcmp(bytes, expected_head, sizeof(expected_head)));
  for (int j = 8; j < 32; ++j) EXPECT_EQ(bytes[2 + j], 0) << j;

  float back[32];
  dequantize_row_q8_0(&b, back, 32);
  EXPECT_EQ(back[0], -127.0f);
  EXPECT_EQ(back[1], 1.0f);
  EXPECT_EQ(back[5], -3.0f);
}

TEST(Q8_0, HandBlockWithInexactScale) {
  // x = 0..31: d = 31/127 = 0.2440944..., which fp16 stores as 2000/8192 = 0.244140625
  // (exponent 12, mantissa 976: bits 0x33D0). q_j = round(j * 127 / 31), no ties possible.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j);
  BlockQ8_0 b;
  quantize_row_q8_0(x, &b, 32);
  EXPECT_EQ(b.d, 0x33D0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], (j * 127 * 2 + 31) / 62) << j;
  float back[32];
  dequantize_row_q8_0(&b, back, 32);
  EXPECT_EQ(back[31], 127 * 0.244140625f);
}

TEST(Q8_0, ZeroBlock) {
  const float x[32] = {};
  BlockQ8_0 b;
  std::memset(&b, 0xAB, sizeof(b));
  quantize_row_q8_0(x, &b, 32);
  EXPECT_EQ(b.d, 0);
  for (int8_t q : b.qs) EXPECT_EQ(q, 0);
}

TEST(Q4_0, HandBlockWithUnitScale) {
  // The element of largest magnitude is -8, so d = -8 / -8 = 1 and q = min(15, trunc(x + 8.5)).
  const float x[32] = {-8, 7, 7.4f, 7.6f, 0.4f, -0.6f, 0.5f, -0.5f, 1,  2, 3,     4,
                       5,  6, -1,   -2,   -3,   -4,    -5,   -6,    -7, 0, 0.49f, 0.51f};
  BlockQ4_0 b;
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(b.d, 0x3C00);
  // Byte j: element j in the low nibble, element j + 16 in the high nibble.
  const uint8_t expected[16] = {0x50, 0x4F, 0x3F, 0x2F, 0x18, 0x87, 0x89, 0x98,
                                0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x87, 0x86};
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], expected[j]) << j;

  float back[32];
  dequantize_row_q4_0(&b, back, 32);
  const float expected_values[32] = {-8, 7, 7,  7,  0,  -1, 1,  0,  1,  2, 3, 4,
                                     5,  6, -1, -2, -3, -4, -5, -6, -7, 0, 0, 1};
  for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], expected_values[j]) << j;
}

TEST(Q4_0, PositiveMaximumFlipsTheScale) {
  // Largest magnitude +16: d = 16 / -8 = -2 (fp16 0xC000), so +16 -> nibble 0, and -16
  // would need nibble 16, clamped to 15 -> value -2 * 7 = -14.
  float x[32] = {16, -16, 3, -3};
  BlockQ4_0 b;
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(b.d, 0xC000);
  EXPECT_EQ(b.qs[0] & 0x0F, 0);
  EXPECT_EQ(b.qs[1] & 0x0F, 15);
  EXPECT_EQ(b.qs[2] & 0x0F, 7);   // 3 / -2 + 8.5 = 7
  EXPECT_EQ(b.qs[3] & 0x0F, 10);  // -3 / -2 + 8.5 = 10
  float back[32];
  dequantize_row_q4_0(&b, back, 32);
  EXPECT_EQ(back[0], 16.0f);
  EXPECT_EQ(back[1], -14.0f);
  EXPECT_EQ(back[2], 2.0f);
  EXPECT_EQ(back[3], -4.0f);
}

TEST(Q4_0, FirstOfEqualMagnitudesWins) {
  float x[32] = {4, -4};
  BlockQ4_0 b;
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(fp16_to_fp32(b.d), -0.5f);
  float y[32] = {-4, 4};
  quantize_row_q4_0(y, &b, 32);
  EXPECT_EQ(fp16_to_fp32(b.d), 0.5f);
}

TEST(Q4_0, ZeroBlock) {
  const float x[32] = {};
  BlockQ4_0 b;
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(b.d, 0x8000);                     // 0 / -8 is -0, and ggml stores it as such
  for (uint8_t q : b.qs) EXPECT_EQ(q, 0x88);  // nibble 8 means 0
}

// Per block: |x - dequant(x)| <= d/2 for Q8_0, plus what rounding d to fp16 costs on the
// largest quant; Q4_0 is d/2 except for the clamped +8 side, which can be off by d.
TEST(Quant, RandomRowsStayWithinTheirBounds) {
  std::mt19937 rng(5);
  for (float scale : {1e-3f, 1.0f, 300.0f}) {
    std::normal_distribution<float> dist(0.0f, scale);
    const int64_t n = 32 * 64;
    std::vector<float> x(n), back(n);
    for (float& v : x) v = dist(rng);
    for (DType type : {DType::Q8_0, DType::Q4_0}) {
      std::vector<uint8_t> bytes(dtype_row_bytes(type, n));
      quantize_row(type, x.data(), bytes.data(), n);
      dequantize_row(type, bytes.data(), back.data(), n);
      for (int64_t blk = 0; blk < n / 32; ++blk) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[blk * 32 + j]));
        const double d = type == DType::Q8_0 ? amax / 127.0 : amax / 8.0;
        // The stored scale is d rounded to fp16 (subnormal for tiny blocks); every quant
        // carries that difference, up to 127 (or 8) times.
        uint16_t d16;
        std::memcpy(&d16, bytes.data() + blk * dtype_row_bytes(type, 32), 2);
        const double stored_error = std::fabs(std::fabs(fp16_to_fp32(d16)) - d);
        const double bound = type == DType::Q8_0 ? 0.5 * d + 127 * stored_error + 1e-6 * d
                                                 : 1.0 * d + 8 * stored_error + 1e-6 * d;
        for (int j = 0; j < 32; ++j) {
          const int64_t i = blk * 32 + j;
          ASSERT_LE(std::fabs(x[i] - back[i]), bound) << dtype_name(type) << " i=" << i;
        }
      }
    }
  }
}

TEST(Convert, PlainTypesRoundTrip) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> dist(-100, 100);
  std::vector<float> x(173), back(173);
  for (float& v : x) v = dist(rng);
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<uint8_t> bytes(dtype_row_bytes(type, x.size()));
    quantize_row(type, x.data(), bytes.data(), 173);
    dequantize_row(type, bytes.data(), back.data(), 173);
    const float rel = type == DType::F32 ? 0.0f : type == DType::F16 ? 0x1p-11f : 0x1p-8f;
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_LE(std::fabs(back[i] - x[i]), rel * std::fabs(x[i]));
  }
  EXPECT_TRUE(is_row_convertible(DType::Q4_0));
  EXPECT_FALSE(is_row_convertible(DType::IQ2_XXS));
}

}  // namespace
}  // namespace moon
