// matmul against matmul_ref on a grid of shapes, per dtype and per instruction-set level,
// plus the batch-invariance guarantee: a row's output bits never depend on the batch.
// Q8_0 and Q4_0 weights take the int8 path, whose reference is matmul_ref on the
// activations rounded through Q8_0 blocks by the plain rule below.
#include "kernels/cpu/matmul.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "kernel_test_util.h"
#include "kernels/cpu/matmul_tiles.h"
#include "kernels/ref/ref_kernels.h"
#include "tensor/half.h"
#include "util/cpu_features.h"

namespace moon::test {
namespace {

constexpr DType kAllTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

// Runs body(type) for each of kAllTypes at each supported level (both named in failures);
// stops after a fatal failure.
template <class Body>
void for_each_level_and_type(Body&& body) {
  for_each_level([&] {
    for (DType type : kAllTypes) {
      SCOPED_TRACE(dtype_str(type));
      body(type);
      if (::testing::Test::HasFatalFailure()) return;
    }
  });
}

bool is_block_type(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0;
}

// The int8 path's activation rule, written plainly: per block of 32, d = max|x| / 127 as an
// fp16, q = x * (127 / max|x|) rounded to nearest even.
std::vector<BlockQ8_0> quantize_plainly(const std::vector<float>& x) {
  std::vector<BlockQ8_0> blocks(x.size() / 32);
  for (size_t b = 0; b < blocks.size(); ++b) {
    float max = 0.0f;
    for (size_t i = 0; i < 32; ++i) max = std::max(max, std::fabs(x[32 * b + i]));
    blocks[b].d = fp32_to_fp16(max / 127.0f);
    for (size_t i = 0; i < 32; ++i) {
      blocks[b].qs[i] =
          static_cast<int8_t>(max == 0.0f ? 0 : std::nearbyint(x[32 * b + i] * (127.0f / max)));
    }
  }
  return blocks;
}

// x as the int8 path multiplies it: the plain rule's d * q.
std::vector<float> rounded_activations(const std::vector<float>& x) {
  const std::vector<BlockQ8_0> blocks = quantize_plainly(x);
  std::vector<float> out(x.size());
  for (size_t k = 0; k < x.size(); ++k) {
    out[k] = fp16_to_fp32(blocks[k / 32].d) * static_cast<float>(blocks[k / 32].qs[k % 32]);
  }
  return out;
}

// What matmul should be compared with: matmul_ref on the activations the path multiplies.
std::vector<float> reference_input(DType type, const std::vector<float>& x) {
  return is_block_type(type) ? rounded_activations(x) : x;
}

// K values: plain types include lengths that are no multiple of 8 or 16 (172 is the
// stories260K FFN width); block types need multiples of 32.
std::vector<int64_t> k_values(DType t) {
  if (is_block_type(t)) return {32, 64, 160, 4096};
  return {1, 7, 16, 64, 172, 255, 4099};
}

// Compares y against the reference with a tolerance scaled to fp32 reordering error: the
// difference between two summation orders of K products grows like
// eps * sqrt(K) * ||x .* w||_2, so 1e-6 * sqrt(K) * ||x .* w||_2 leaves a wide margin
// while still catching any wrong element, dequantization or indexing.
void expect_close_to_ref(const std::vector<float>& x, int64_t m, const TestWeights& w,
                         const std::vector<float>& y, const std::vector<float>& y_ref) {
  const int64_t k_dim = w.view.cols;
  const int64_t n_dim = w.view.rows;
  double worst = 0.0;  // largest error / tolerance
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t n = 0; n < n_dim; ++n) {
      double norm = 0.0;
      for (int64_t k = 0; k < k_dim; ++k) {
        const double p = static_cast<double>(x[i * k_dim + k]) * w.values[n * k_dim + k];
        norm += p * p;
      }
      const double tol = 1e-6 * std::sqrt(static_cast<double>(k_dim)) * std::sqrt(norm) + 1e-30;
      const double err = std::fabs(static_cast<double>(y[i * n_dim + n]) - y_ref[i * n_dim + n]);
      worst = std::max(worst, err / tol);
      ASSERT_LE(err, tol) << "m=" << i << " n=" << n << " y=" << y[i * n_dim + n]
                          << " ref=" << y_ref[i * n_dim + n];
    }
  }
  EXPECT_LE(worst, 1.0);
}

TEST(Matmul, MatchesReferenceOnShapeGrid) {
  std::mt19937 rng(1234);
  ThreadPool pool(2);
  for_each_level_and_type([&](DType type) {
    for (int64_t k_dim : k_values(type)) {
      for (int64_t n_dim : {1, 5, 67}) {
        const TestWeights w = make_weights(rng, type, n_dim, k_dim);
        for (int64_t m : {1, 2, 3, 7, 16, 33}) {
          SCOPED_TRACE("M=" + std::to_string(m) + " N=" + std::to_string(n_dim) +
                       " K=" + std::to_string(k_dim));
          const std::vector<float> x = random_floats(rng, m * k_dim);
          const std::vector<float> x_ref = reference_input(type, x);
          std::vector<float> y(static_cast<size_t>(m * n_dim), NAN);
          std::vector<float> y_ref(y.size());
          kernels::matmul(x.data(), m, w.view, y.data(), &pool);
          kernels::ref::matmul_ref(x_ref.data(), m, w.view, y_ref.data());
          expect_close_to_ref(x_ref, m, w, y, y_ref);
          if (HasFatalFailure()) return;
        }
      }
    }
  });
}

#if !defined(__FMA__)
// Built without FMA contraction, the scalar level's fp32 tiles sum in exactly the
// reference's order.
TEST(Matmul, ScalarLevelIsBitwiseReference) {
  std::mt19937 rng(99);
  ScopedLevel scoped(SimdLevel::kScalar);
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    SCOPED_TRACE(dtype_str(type));
    const int64_t k_dim = 172;
    const TestWeights w = make_weights(rng, type, 9, k_dim);
    const std::vector<float> x = random_floats(rng, 5 * k_dim);
    std::vector<float> y(5 * 9), y_ref(5 * 9);
    kernels::matmul(x.data(), 5, w.view, y.data(), nullptr);
    kernels::ref::matmul_ref(x.data(), 5, w.view, y_ref.data());
    EXPECT_EQ(0, std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)));
  }
}
#endif

TEST(Matmul, LargeRowsAreUnbiased) {
  // A systematic error (a dropped block, a wrong scale) shows up as a relative error far
  // above rounding when all products are positive.
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for_each_level_and_type([&](DType type) {
    const int64_t k_dim = 4096;
    TestWeights w = make_weights(rng, type, 3, k_dim);
    std::vector<float> source = random_floats(rng, 3 * k_dim, 0.5f, 1.0f);
    const size_t row_bytes = w.view.row_bytes;
    for (int64_t r = 0; r < 3; ++r) {
      quantize_row(type, source.data() + r * k_dim, w.bytes.data() + r * row_bytes, k_dim);
      dequantize_row(type, w.bytes.data() + r * row_bytes, w.values.data() + r * k_dim, k_dim);
    }
    const std::vector<float> x = random_floats(rng, k_dim, 0.5f, 1.0f);
    const std::vector<float> x_ref = reference_input(type, x);
    std::vector<float> y(3), y_ref(3);
    kernels::matmul(x.data(), 1, w.view, y.data(), &pool);
    kernels::ref::matmul_ref(x_ref.data(), 1, w.view, y_ref.data());
    for (int r = 0; r < 3; ++r) EXPECT_NEAR(y[r], y_ref[r], 1e-5 * std::fabs(y_ref[r]));
  });
}

// Row i of a batch, computed alone, in another batch or with another thread count, must
// give the same bits.
TEST(Matmul, BatchInvariant) {
  std::mt19937 rng(42);
  ThreadPool pool1(1), pool2(2), pool3(3), pool5(5);
  ThreadPool* pools[] = {&pool1, &pool2, &pool3, &pool5, nullptr};
  for_each_level_and_type([&](DType type) {
    for (int64_t k_dim :
         is_block_type(type) ? std::vector<int64_t>{64, 4096} : std::vector<int64_t>{172, 4099}) {
      constexpr int64_t kM = 33;
      const int64_t n_dim = 71;
      const TestWeights w = make_weights(rng, type, n_dim, k_dim);
      const std::vector<float> x = random_floats(rng, kM * k_dim);
      std::vector<float> y_batch(kM * n_dim);
      kernels::matmul(x.data(), kM, w.view, y_batch.data(), &pool2);

      for (ThreadPool* pool : pools) {
        std::vector<float> y_again(kM * n_dim);
        kernels::matmul(x.data(), kM, w.view, y_again.data(), pool);
        ASSERT_EQ(0, std::memcmp(y_again.data(), y_batch.data(), y_batch.size() * 4))
            << "thread count changed the bits, K=" << k_dim;
      }
      for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{17}, kM - 1}) {
        std::vector<float> y_one(n_dim);
        for (ThreadPool* pool : pools) {
          kernels::matmul(x.data() + i * k_dim, 1, w.view, y_one.data(), pool);
          ASSERT_EQ(0, std::memcmp(y_one.data(), y_batch.data() + i * n_dim, n_dim * 4))
              << "row " << i << " alone differs, K=" << k_dim;
        }
        // The same row at position 2 of a batch of 6 unrelated rows.
        std::vector<float> x_other = random_floats(rng, 6 * k_dim);
        std::memcpy(x_other.data() + 2 * k_dim, x.data() + i * k_dim, k_dim * 4);
        std::vector<float> y_other(6 * n_dim);
        kernels::matmul(x_other.data(), 6, w.view, y_other.data(), &pool3);
        ASSERT_EQ(0, std::memcmp(y_other.data() + 2 * n_dim, y_batch.data() + i * n_dim, n_dim * 4))
            << "row " << i << " in another batch differs, K=" << k_dim;
      }
    }
  });
}

// The activation quantizer at every level writes the plain rule's bytes, including exact
// ties (which round to even), all-zero blocks, a lone value and negative maxima.
TEST(MatmulInt8, QuantizedActivationsFollowThePlainRule) {
  std::mt19937 rng(3);
  ThreadPool pool(2);
  std::vector<float> x = random_floats(rng, 7 * 256, -3.0f, 3.0f);
  // Row 0: max 127 makes the scale 1, so halves are exact ties.
  for (int i = 0; i < 32; ++i) x[i] = -15.5f + static_cast<float>(i);
  x[5] = 127.0f;
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;                                   // an all-zero block
  for (int i = 64; i < 96; ++i) x[i] = i == 70 ? -1e-3f : 0.0f;                // one negative value
  for (int i = 96; i < 128; ++i) x[i] = 1e-30f * static_cast<float>(i - 100);  // subnormal scale
  const std::vector<BlockQ8_0> want = quantize_plainly(x);
  for_each_level([&] {
    for (ThreadPool* p : {&pool, static_cast<ThreadPool*>(nullptr)}) {
      kernels::QuantizedRows q;
      kernels::quantize_rows(x.data(), 7, 256, &q, p);
      ASSERT_EQ(q.rows, 7);
      ASSERT_EQ(q.row_blocks(), 8);
      for (size_t b = 0; b < want.size(); ++b) {
        ASSERT_EQ(q.blocks[b].d, want[b].d) << "block " << b;
        ASSERT_EQ(0, std::memcmp(q.blocks[b].qs, want[b].qs, 32)) << "block " << b;
      }
    }
  });
  EXPECT_EQ(want[0].qs[0], -16);  // -15.5 -> -16 (even)
  EXPECT_EQ(want[0].qs[1], -14);  // -14.5 -> -14
  EXPECT_EQ(want[2].qs[6], -127);
}

// The int8 tiles give the same bits at every level (exact integer block sums, the float
// work in one fixed order), and quantizing once then multiplying equals the one-call form.
TEST(MatmulInt8, EveryLevelGivesTheSameBits) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(dtype_str(type));
    // m = 1 and 2 take the decode tiles, 9 the batch ones.
    for (const auto& shape :
         {std::pair<int64_t, int64_t>{1, 2048}, {2, 96}, {9, 32}, {9, 96}, {9, 2048}}) {
      const int64_t m = shape.first, k_dim = shape.second;  // plain names: lambdas capture them
      const int64_t n_dim = 13;
      const TestWeights w = make_weights(rng, type, n_dim, k_dim);
      const std::vector<float> x = random_floats(rng, m * k_dim);
      std::vector<float> want(m * n_dim);
      {
        ScopedLevel scalar(SimdLevel::kScalar);
        kernels::matmul(x.data(), m, w.view, want.data(), nullptr);
      }
      for_each_level([&] {
        std::vector<float> y(m * n_dim, NAN);
        kernels::matmul(x.data(), m, w.view, y.data(), &pool);
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * 4)) << "K=" << k_dim;
        kernels::QuantizedRows q;
        kernels::quantize_rows(x.data(), m, k_dim, &q, &pool);
        std::fill(y.begin(), y.end(), NAN);
        kernels::matmul(q, w.view, y.data(), &pool);
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * 4)) << "K=" << k_dim;
      });
    }
  }
}

// The AMX kernel gives the vector tiles' bits: called directly (so it surely runs) on whole
// panels, and through matmul on batches with leftover rows and columns, with and without the
// pool. Skipped, saying so, where the CPU or OS has no AMX-INT8.
TEST(MatmulInt8, AmxGivesTheSameBitsAsTheVectorTiles) {
  if (!set_amx_enabled(true)) {
    GTEST_SKIP() << "no AMX-INT8 on this CPU (or Linux refused the tile state): the AMX "
                    "kernel is not tested here";
  }
  std::mt19937 rng(17);
  ThreadPool pool(2);
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q5_0}) {
    SCOPED_TRACE(dtype_str(type));
    for (int64_t k_dim : {32, 96, 2048}) {
      for (int64_t m : {16, 17, 31, 32, 48, 100}) {
        for (int64_t n_dim : {1, 32, 45, 96}) {
          SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n_dim << " K=" << k_dim);
          TestWeights w = type == DType::Q5_0 ? make_random_block_weights(rng, type, n_dim, k_dim)
                                              : make_weights(rng, type, n_dim, k_dim);
          if (type == DType::Q8_0 && n_dim > 1) {  // a -128 weight, which the format allows
            reinterpret_cast<BlockQ8_0*>(w.bytes.data())[1].qs[3] = -128;
          }
          std::vector<float> x = random_floats(rng, m * k_dim);
          std::fill(x.begin(), x.begin() + std::min<int64_t>(k_dim, 64), 0.0f);  // zero blocks
          std::vector<float> want(m * n_dim);
          {
            ScopedLevel scalar(SimdLevel::kScalar);
            ASSERT_FALSE(amx_int8_enabled());
            kernels::matmul(x.data(), m, w.view, want.data(), nullptr);
          }
          kernels::QuantizedRows q;
          kernels::quantize_rows(x.data(), m, k_dim, &q, nullptr);
          const int64_t panels = n_dim / kernels::detail::kAmxPanelRows;
          const int64_t m_tiles = m / kernels::detail::kAmxMinRows * kernels::detail::kAmxMinRows;
          if (panels > 0) {
            std::vector<float> y(m * n_dim, NAN);
            ASSERT_TRUE(kernels::detail::amx_int8_columns(
                type, q.blocks.data(), m_tiles, q.row_blocks(), w.view.data, w.view.row_bytes,
                panels, y.data(), n_dim));
            EXPECT_TRUE(same_leading_columns(y, want, m_tiles, n_dim,
                                             panels * kernels::detail::kAmxPanelRows));
          }
          EXPECT_TRUE(matmul_gives(q, w.view, want, &pool));
        }
      }
    }
  }
}

// The VNNI batch kernel on packed panels gives the scalar tiles' bits: called directly on
// whole panels for every count of activation rows around its register block of 8, and
// through matmul with leftover weight rows, with and without the pool. Skipped, saying so,
// where the CPU has no AVX-512 VNNI.
TEST(MatmulInt8, VnniPanelsGiveTheSameBitsAsTheVectorTiles) {
  if (!cpu_features().avx512_vnni) {
    GTEST_SKIP() << "no AVX-512 VNNI on this CPU: the VNNI panel kernel is not tested here";
  }
  ScopedLevel avx512(SimdLevel::kAvx512);
  const bool amx_was = amx_int8_enabled();
  set_amx_enabled(false);  // else matmul takes AMX for m >= 16
  std::mt19937 rng(23);
  ThreadPool pool(2);
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q5_0}) {
    SCOPED_TRACE(dtype_str(type));
    for (int64_t k_dim : {32, 96, 2048}) {
      for (int64_t m : {1, 7, 8, 9, 16, 23, 64}) {
        for (int64_t n_dim : {16, 45, 96}) {
          SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n_dim << " K=" << k_dim);
          TestWeights w = type == DType::Q5_0 ? make_random_block_weights(rng, type, n_dim, k_dim)
                                              : make_weights(rng, type, n_dim, k_dim);
          if (type == DType::Q8_0) {  // -128 and 127 weights, which the format allows
            reinterpret_cast<BlockQ8_0*>(w.bytes.data())[1].qs[3] = -128;
            reinterpret_cast<BlockQ8_0*>(w.bytes.data())[0].qs[7] = 127;
          }
          std::vector<float> x = random_floats(rng, m * k_dim);
          std::fill(x.begin(), x.begin() + std::min<int64_t>(k_dim, 64), 0.0f);  // zero blocks
          std::vector<float> want(m * n_dim);
          {
            ScopedLevel scalar(SimdLevel::kScalar);
            kernels::matmul(x.data(), m, w.view, want.data(), nullptr);
          }
          kernels::QuantizedRows q;
          kernels::quantize_rows(x.data(), m, k_dim, &q, nullptr);
          const int64_t panels = n_dim / kernels::detail::kVnniPanelRows;
          std::vector<float> y(m * n_dim, NAN);
          ASSERT_TRUE(kernels::detail::vnni_int8_columns(type, q.blocks.data(), m, q.row_blocks(),
                                                         w.view.data, w.view.row_bytes, panels,
                                                         y.data(), n_dim));
          EXPECT_TRUE(
              same_leading_columns(y, want, m, n_dim, panels * kernels::detail::kVnniPanelRows));
          EXPECT_TRUE(matmul_gives(q, w.view, want, &pool));
        }
      }
    }
  }
  set_amx_enabled(amx_was);
}

// Against the fp32 product of the unrounded activations, the int8 path's error stays within
// its rounding bound: d / 2 per activation element, times |w|, plus fp32 reordering.
TEST(MatmulInt8, ErrorAgainstFp32IsWithinTheRoundingBound) {
  std::mt19937 rng(5);
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(dtype_str(type));
    const int64_t m = 4, n_dim = 9, k_dim = 1024;
    const TestWeights w = make_weights(rng, type, n_dim, k_dim);
    const std::vector<float> x = random_floats(rng, m * k_dim, -2.0f, 2.0f);
    const std::vector<BlockQ8_0> blocks = quantize_plainly(x);
    std::vector<float> y(m * n_dim), y_fp32(m * n_dim);
    kernels::matmul(x.data(), m, w.view, y.data(), nullptr);
    kernels::ref::matmul_ref(x.data(), m, w.view, y_fp32.data());
    double total_err = 0.0, total_bound = 0.0;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t n = 0; n < n_dim; ++n) {
        double bound = 0.0, scale = 0.0;
        for (int64_t k = 0; k < k_dim; ++k) {
          const double d = fp16_to_fp32(blocks[(i * k_dim + k) / 32].d);
          // fp16 rounding of d moves each value by up to |q| * d * 2^-11 more.
          bound += (0.5 * d + 127.0 * d / 2048.0) * std::fabs(w.values[n * k_dim + k]);
          scale += std::fabs(x[i * k_dim + k] * w.values[n * k_dim + k]);
        }
        const double err = std::fabs(static_cast<double>(y[i * n_dim + n]) - y_fp32[i * n_dim + n]);
        EXPECT_LE(err, bound + 1e-5 * scale) << "m=" << i << " n=" << n;
        total_err += err;
        total_bound += bound;
      }
    }
    // Rounding errors mostly cancel: far below the worst case, yet not zero.
    EXPECT_GT(total_err, 0.0);
    EXPECT_LT(total_err, 0.25 * total_bound);
  }
}

// A Q8_0 file may hold -128 (llama.cpp's quantizer never writes it, but the format allows
// it), the one weight whose magnitude does not fit a signed byte.
TEST(MatmulInt8, ExtremeQuantsAreExact) {
  const int64_t k_dim = 64, n_dim = 3;
  std::vector<BlockQ8_0> wb(n_dim * 2);
  for (size_t b = 0; b < wb.size(); ++b) {
    wb[b].d = fp32_to_fp16(0.25f);
    for (int i = 0; i < 32; ++i)
      wb[b].qs[i] = static_cast<int8_t>(b % 2 ? -128 : (i % 2 ? 127 : -127));
  }
  const WeightView w =
      make_weight_view(DType::Q8_0, reinterpret_cast<const uint8_t*>(wb.data()), n_dim, k_dim);
  std::vector<float> x(k_dim);
  for (int64_t k = 0; k < k_dim; ++k) x[k] = k % 3 == 0 ? -1.0f : 1.0f;  // max 1: q = +-127
  std::vector<float> want(n_dim);
  const std::vector<float> x_ref = rounded_activations(x);
  kernels::ref::matmul_ref(x_ref.data(), 1, w, want.data());
  for_each_level([&] {
    std::vector<float> y(n_dim, NAN);
    kernels::matmul(x.data(), 1, w, y.data(), nullptr);
    for (int64_t n = 0; n < n_dim; ++n) EXPECT_NEAR(y[n], want[n], 1e-3 * std::fabs(want[n])) << n;
  });
}

TEST(Matmul, EmptyShapes) {
  std::mt19937 rng(1);
  const TestWeights w = make_weights(rng, DType::F32, 4, 16);
  float y = 123.0f;
  kernels::matmul(nullptr, 0, w.view, &y, nullptr);  // no rows: nothing written
  EXPECT_EQ(y, 123.0f);
  const WeightView empty = make_weight_view(DType::F32, nullptr, 3, 0);
  float y3[2 * 3] = {1, 2, 3, 4, 5, 6};
  kernels::matmul(nullptr, 2, empty, y3, nullptr);  // K = 0: every dot product is 0
  for (float v : y3) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace moon::test
