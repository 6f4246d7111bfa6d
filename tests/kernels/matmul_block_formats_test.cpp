// The int8 path for the block formats beyond Q8_0 and Q4_0 (Q4_1, Q5_0, Q5_1, the K-quants,
// IQ4_XS) on random weights covering every bit pattern: the activation quantizers against
// the rules written plainly, each level's matmul against a float64 dot product of the
// dequantized weights (tensor/, checked bit for bit against llama.cpp's) and the quantized
// activations, and every level giving the scalar level's bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "kernel_test_util.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_tiles.h"
#include "tensor/half.h"
#include "util/cpu_features.h"

namespace moon::test {
namespace {

constexpr DType kFormats[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,  DType::Q3_K,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS};

int64_t block_size(DType t) {
  return dtype_traits(t).block_size;
}

// The Q8_K rule written plainly: the first element of largest magnitude maps to -127.
void expect_q8_k_rule(const float* x, const BlockQ8_K& b) {
  float amax = 0.0f, max = 0.0f;
  for (int k = 0; k < 256; ++k) {
    if (std::fabs(x[k]) > amax) amax = std::fabs(x[k]), max = x[k];
  }
  if (amax == 0.0f) {
    EXPECT_EQ(b.d, 0.0f);
    for (int k = 0; k < 256; ++k) ASSERT_EQ(b.qs[k], 0);
    return;
  }
  const float iscale = -127.0f / max;
  EXPECT_EQ(b.d, 1.0f / iscale);
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int k = 16 * g; k < 16 * g + 16; ++k) {
      const float v = iscale * x[k];
      const int want = std::min(127, static_cast<int>(std::nearbyint(v)));
      ASSERT_EQ(b.qs[k], want) << "element " << k << " scaled " << v;
      sum += want;
    }
    EXPECT_EQ(b.bsums[g], sum) << "group " << g;
  }
}

TEST(MatmulBlockFormats, ActivationQuantizersFollowThePlainRules) {
  std::mt19937 rng(5);
  std::vector<float> x = random_floats(rng, 3 * 512, -2.0f, 2.0f);
  for (int k = 0; k < 256; ++k) x[k] = static_cast<float>(k % 7) - 3.0f;  // ties, max = -3
  for (int k = 256; k < 512; ++k) x[k] = 0.0f;                            // an all-zero block
  x[700] = 50.0f;                                                         // a lone large value
  for_each_level([&] {
    kernels::QuantizedRows q;
    kernels::quantize_rows(x.data(), 3, 512, &q, nullptr, kernels::ActivationBlocks::kQ8_K);
    ASSERT_EQ(q.row_blocks(), 2);
    for (int b = 0; b < 6; ++b) {
      SCOPED_TRACE("Q8_K block " + std::to_string(b));
      expect_q8_k_rule(x.data() + 256 * b, q.blocks_q8_k[b]);
    }
    // Q8_1: Q8_0's bytes plus s = d * sum(q) with d = max|x| / 127 unrounded.
    kernels::QuantizedRows q0, q1;
    kernels::quantize_rows(x.data(), 3, 512, &q0, nullptr, kernels::ActivationBlocks::kQ8_0);
    kernels::quantize_rows(x.data(), 3, 512, &q1, nullptr, kernels::ActivationBlocks::kQ8_1);
    for (int b = 0; b < 48; ++b) {
      ASSERT_EQ(q1.blocks_q8_1[b].d, q0.blocks[b].d);
      ASSERT_EQ(0, std::memcmp(q1.blocks_q8_1[b].qs, q0.blocks[b].qs, 32));
      float max = 0.0f;
      int sum = 0;
      for (int k = 0; k < 32; ++k) {
        max = std::max(max, std::fabs(x[32 * b + k]));
        sum += q0.blocks[b].qs[k];
      }
      EXPECT_EQ(q1.blocks_q8_1[b].s, fp32_to_fp16(max / 127.0f * static_cast<float>(sum)));
    }
  });
}

// What the int8 path computes, in float64: the dequantized weights times the quantized
// activations (d_x * q_x), plus for Q4_1 and Q5_1 the offset times the difference between
// the stored s_x and the exact sum of the block's activations (llama.cpp's rounding of s).
std::vector<double> reference(const kernels::QuantizedRows& q, const TestWeights& w) {
  const int64_t m = q.rows, k_dim = q.cols, n_dim = w.view.rows;
  const bool q8_1 = q.format == kernels::ActivationBlocks::kQ8_1;
  std::vector<double> x(static_cast<size_t>(m * k_dim)), s_error;
  for (int64_t i = 0; i < m * k_dim; ++i) {
    const int64_t b = i / block_size(w.view.type);
    if (q.format == kernels::ActivationBlocks::kQ8_K) {
      x[i] = static_cast<double>(q.blocks_q8_k[b].d) * q.blocks_q8_k[b].qs[i % 256];
    } else if (q8_1) {
      x[i] = static_cast<double>(fp16_to_fp32(q.blocks_q8_1[b].d)) * q.blocks_q8_1[b].qs[i % 32];
    } else {
      x[i] = static_cast<double>(fp16_to_fp32(q.blocks[b].d)) * q.blocks[b].qs[i % 32];
    }
  }
  std::vector<double> y(static_cast<size_t>(m * n_dim));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t n = 0; n < n_dim; ++n) {
      double sum = 0.0;
      for (int64_t k = 0; k < k_dim; ++k) sum += x[i * k_dim + k] * w.values[n * k_dim + k];
      if (q8_1) {
        for (int64_t b = 0; b < k_dim / 32; ++b) {
          const uint8_t* block = w.view.row(n) + b * dtype_traits(w.view.type).block_bytes;
          uint16_t m_bits;
          std::memcpy(&m_bits, block + 2, 2);
          double exact = 0.0;
          for (int k = 0; k < 32; ++k) exact += x[i * k_dim + 32 * b + k];
          const BlockQ8_1& xb = q.blocks_q8_1[i * (k_dim / 32) + b];
          sum += fp16_to_fp32(m_bits) * (fp16_to_fp32(xb.s) - exact);
        }
      }
      y[i * n_dim + n] = sum;
    }
  }
  return y;
}

TEST(MatmulBlockFormats, EveryLevelMatchesTheFloat64Reference) {
  std::mt19937 rng(21);
  ThreadPool pool(2);
  for (DType type : kFormats) {
    SCOPED_TRACE(dtype_str(type));
    for (int64_t k_dim : {256, 512, 2048}) {
      const int64_t n_dim = 11;
      const TestWeights w = make_random_block_weights(rng, type, n_dim, k_dim);
      for (int64_t m : {1, 2, 5, 17}) {
        SCOPED_TRACE("M=" + std::to_string(m) + " K=" + std::to_string(k_dim));
        const std::vector<float> x = random_floats(rng, m * k_dim);
        kernels::QuantizedRows q;
        kernels::quantize_rows(x.data(), m, k_dim, &q, nullptr, kernels::activation_blocks(type));
        const std::vector<double> want = reference(q, w);
        for_each_level([&] {
          std::vector<float> y(static_cast<size_t>(m * n_dim), NAN);
          kernels::matmul(x.data(), m, w.view, y.data(), &pool);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t n = 0; n < n_dim; ++n) {
              // fp32 rounding of a sum of K terms: well under 1e-5 * sqrt(K) * sum of |terms|.
              double magnitude = 0.0;
              for (int64_t k = 0; k < k_dim; ++k) {
                magnitude += std::fabs(x[i * k_dim + k] * w.values[n * k_dim + k]);
              }
              const double tol = 1e-6 * std::sqrt(static_cast<double>(k_dim)) * magnitude + 1e-6;
              ASSERT_NEAR(y[i * n_dim + n], want[i * n_dim + n], tol)
                  << "row " << i << " col " << n;
            }
          }
        });
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(MatmulBlockFormats, EveryLevelGivesTheScalarLevelsBits) {
  std::mt19937 rng(22);
  ThreadPool pool(2);
  for (DType type : kFormats) {
    SCOPED_TRACE(dtype_str(type));
    for (const auto& shape :
         {std::pair<int64_t, int64_t>{1, 2048}, {2, 256}, {3, 512}, {9, 1024}}) {
      const int64_t m = shape.first, k_dim = shape.second;  // plain names: lambdas capture them
      const int64_t n_dim = 13;
      const TestWeights w = make_random_block_weights(rng, type, n_dim, k_dim);
      const std::vector<float> x = random_floats(rng, m * k_dim);
      std::vector<float> want(static_cast<size_t>(m * n_dim));
      {
        ScopedLevel scalar(SimdLevel::kScalar);
        kernels::matmul(x.data(), m, w.view, want.data(), nullptr);
      }
      for_each_level([&] {
        std::vector<float> y(want.size(), NAN);
        kernels::matmul(x.data(), m, w.view, y.data(), &pool);
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * 4))
            << "M=" << m << " K=" << k_dim;
      });
      if (HasFatalFailure()) return;
    }
  }
}

// The AMX kernel for the K-quants (Q2_K to Q6_K) and IQ4_XS gives the super-block tiles' bits:
// called directly on whole panels, and through matmul on batches with leftover rows and columns.
// Skipped, saying so, where the CPU or OS has no AMX-INT8.
TEST(MatmulBlockFormats, AmxGivesTheScalarLevelsBits) {
  if (!set_amx_enabled(true)) {
    GTEST_SKIP() << "no AMX-INT8 on this CPU (or Linux refused the tile state): the AMX "
                    "super-block kernel is not tested here";
  }
  std::mt19937 rng(23);
  ThreadPool pool(2);
  for (DType type :
       {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS}) {
    SCOPED_TRACE(dtype_str(type));
    for (int64_t k_dim : {256, 1024}) {
      for (int64_t m : {16, 17, 32, 45}) {
        for (int64_t n_dim : {16, 37, 64}) {
          SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n_dim << " K=" << k_dim);
          const TestWeights w = make_random_block_weights(rng, type, n_dim, k_dim);
          std::vector<float> x = random_floats(rng, m * k_dim);
          std::fill(x.begin(), x.begin() + 256, 0.0f);  // an all-zero super-block
          std::vector<float> want(static_cast<size_t>(m * n_dim));
          {
            ScopedLevel scalar(SimdLevel::kScalar);
            ASSERT_FALSE(amx_int8_enabled());
            kernels::matmul(x.data(), m, w.view, want.data(), nullptr);
          }
          kernels::QuantizedRows q;
          kernels::quantize_rows(x.data(), m, k_dim, &q, nullptr, kernels::ActivationBlocks::kQ8_K);
          const int64_t panels = n_dim / kernels::detail::kAmxSuperBlockPanelRows;
          const int64_t m_tiles = m / 16 * 16;
          std::vector<float> y(want.size(), NAN);
          ASSERT_TRUE(kernels::detail::amx_super_block_columns(
              type, q.blocks_q8_k.data(), m_tiles, q.row_blocks(), w.view.data, w.view.row_bytes,
              panels, y.data(), n_dim));
          EXPECT_TRUE(same_leading_columns(y, want, m_tiles, n_dim,
                                           panels * kernels::detail::kAmxSuperBlockPanelRows));
          EXPECT_TRUE(matmul_gives(q, w.view, want, &pool));
        }
      }
    }
  }
}

// The VNNI panel kernel for Q2_K to Q6_K gives the super-block tiles' bits: called directly on
// whole panels for batch sizes around its register block of 8, and through matmul with
// leftover rows and columns. IQ4_XS is refused and stays on the tiles. Skipped, saying so,
// where the CPU has no AVX-512 VNNI.
TEST(MatmulBlockFormats, VnniPanelsGiveTheScalarLevelsBits) {
  if (!cpu_features().avx512_vnni) {
    GTEST_SKIP() << "no AVX-512 VNNI on this CPU: the VNNI super-block panel kernel is not "
                    "tested here";
  }
  ScopedLevel avx512(SimdLevel::kAvx512);
  const bool amx_was = amx_int8_enabled();
  set_amx_enabled(false);  // else matmul takes AMX for m >= 16
  std::mt19937 rng(29);
  ThreadPool pool(2);
  for (DType type : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    SCOPED_TRACE(dtype_str(type));
    for (int64_t k_dim : {256, 1024}) {
      for (int64_t m : {1, 7, 8, 9, 17, 40}) {
        for (int64_t n_dim : {16, 37}) {
          SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n_dim << " K=" << k_dim);
          const TestWeights w = make_random_block_weights(rng, type, n_dim, k_dim);
          std::vector<float> x = random_floats(rng, m * k_dim);
          std::fill(x.begin(), x.begin() + 256, 0.0f);  // an all-zero super-block
          std::vector<float> want(static_cast<size_t>(m * n_dim));
          {
            ScopedLevel scalar(SimdLevel::kScalar);
            kernels::matmul(x.data(), m, w.view, want.data(), nullptr);
          }
          kernels::QuantizedRows q;
          kernels::quantize_rows(x.data(), m, k_dim, &q, nullptr, kernels::ActivationBlocks::kQ8_K);
          const int64_t panels = n_dim / kernels::detail::kVnniPanelRows;
          std::vector<float> y(want.size(), NAN);
          ASSERT_TRUE(kernels::detail::vnni_super_block_columns(
              type, q.blocks_q8_k.data(), m, q.row_blocks(), w.view.data, w.view.row_bytes, panels,
              y.data(), n_dim));
          EXPECT_TRUE(
              same_leading_columns(y, want, m, n_dim, panels * kernels::detail::kVnniPanelRows));
          EXPECT_TRUE(matmul_gives(q, w.view, want, &pool));
        }
      }
    }
  }
  float y = 0;
  EXPECT_FALSE(kernels::detail::vnni_super_block_columns(DType::IQ4_XS, nullptr, 0, 0, nullptr, 0,
                                                         0, &y, 0));
  set_amx_enabled(amx_was);
}

}  // namespace
}  // namespace moon::test
