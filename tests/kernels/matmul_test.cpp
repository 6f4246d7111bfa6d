// matmul against matmul_ref on a grid of shapes, per dtype and per instruction-set level,
// plus the batch-invariance guarantee: a row's output bits never depend on the batch.
#include "kernels/cpu/matmul.h"

#include <cmath>
#include <cstring>

#include "kernel_test_util.h"
#include "kernels/ref/ref_kernels.h"

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
          std::vector<float> y(static_cast<size_t>(m * n_dim), NAN);
          std::vector<float> y_ref(y.size());
          kernels::matmul(x.data(), m, w.view, y.data(), &pool);
          kernels::ref::matmul_ref(x.data(), m, w.view, y_ref.data());
          expect_close_to_ref(x, m, w, y, y_ref);
          if (HasFatalFailure()) return;
        }
      }
    }
  });
}

#if !defined(__FMA__)
// Built without FMA contraction, the scalar level sums in exactly the reference's order.
TEST(Matmul, ScalarLevelIsBitwiseReference) {
  std::mt19937 rng(99);
  ScopedLevel scoped(SimdLevel::kScalar);
  for (DType type : kAllTypes) {
    SCOPED_TRACE(dtype_str(type));
    const int64_t k_dim = is_block_type(type) ? 96 : 172;
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
    std::vector<float> y(3), y_ref(3);
    kernels::matmul(x.data(), 1, w.view, y.data(), &pool);
    kernels::ref::matmul_ref(x.data(), 1, w.view, y_ref.data());
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
