// The element-wise and row-wise kernels against their reference twins, per level.
#include "kernels/cpu/ops.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "kernel_test_util.h"
#include "kernels/ref/ref_kernels.h"

namespace moon::test {
namespace {

constexpr int64_t kLengths[] = {1, 3, 8, 15, 16, 17, 64, 172, 1000, 4096};

TEST(Rmsnorm, MatchesReference) {
  std::mt19937 rng(1);
  ThreadPool pool(2);
  for_each_level([&] {
    for (int64_t dim : kLengths) {
      for (int64_t rows : {1, 3, 17}) {
        SCOPED_TRACE("dim=" + std::to_string(dim) + " rows=" + std::to_string(rows));
        const std::vector<float> x = random_floats(rng, rows * dim, -3.0f, 3.0f);
        const std::vector<float> weight = random_floats(rng, dim, 0.5f, 1.5f);
        std::vector<float> out(x.size()), out_ref(x.size());
        kernels::rmsnorm(x.data(), weight.data(), out.data(), rows, dim, 1e-5f, &pool);
        kernels::ref::rmsnorm_ref(x.data(), weight.data(), out_ref.data(), rows, dim, 1e-5f);
        // Only the sum of squares is reordered: relative error ~ eps * sqrt(dim).
        for (size_t i = 0; i < x.size(); ++i) {
          ASSERT_NEAR(out[i], out_ref[i], 2e-6 * std::fabs(out_ref[i]) + 1e-30) << "i=" << i;
        }
        // In place gives the same bits as out of place.
        std::vector<float> in_place = x;
        kernels::rmsnorm(in_place.data(), weight.data(), in_place.data(), rows, dim, 1e-5f, &pool);
        ASSERT_EQ(0, std::memcmp(in_place.data(), out.data(), out.size() * 4));
      }
    }
  });
}

struct RopeCase {
  int64_t num_heads, head_dim, rot_dim;
  float linear_scale;
  bool freq_factors;
};

TEST(Rope, MatchesReferenceBitwise) {
  std::mt19937 rng(2);
  ThreadPool pool(3);
  const RopeCase cases[] = {
      {8, 8, 8, 1.0f, false},                                // stories260K
      {4, 64, 64, 1.0f, false},  {2, 128, 128, 1.0f, true},  // Llama 3 style factors
      {3, 64, 32, 1.0f, false},                              // partial rotation
      {2, 10, 6, 2.0f, false},                               // odd vector tails, linear scaling
      {1, 256, 200, 4.0f, true},
  };
  for_each_level([&] {
    for (const RopeCase& c : cases) {
      for (bool neox : {false, true}) {
        SCOPED_TRACE("head_dim=" + std::to_string(c.head_dim) +
                     " rot_dim=" + std::to_string(c.rot_dim) + (neox ? " neox" : ""));
        const std::vector<float> factors = random_floats(rng, c.rot_dim / 2, 1.0f, 8.0f);
        kernels::RopeParams params;
        params.rot_dim = c.rot_dim;
        params.neox = neox;
        params.freq_base = c.head_dim == 128 ? 500000.0f : 10000.0f;
        params.linear_scale = c.linear_scale;
        params.freq_factors = c.freq_factors ? factors.data() : nullptr;
        const std::vector<int32_t> positions = {0, 1, 2, 7, 100, 511, 4095, 65535, 3};
        const int64_t tokens = static_cast<int64_t>(positions.size());
        const std::vector<float> x =
            random_floats(rng, tokens * c.num_heads * c.head_dim, -2.0f, 2.0f);
        std::vector<float> y = x, y_ref = x;
        kernels::rope(y.data(), tokens, c.num_heads, c.head_dim, positions.data(), params, &pool);
        kernels::ref::rope_ref(y_ref.data(), tokens, c.num_heads, c.head_dim, positions.data(),
                               params);
        ASSERT_EQ(0, std::memcmp(y.data(), y_ref.data(), y.size() * 4));
        // Position 0 is the identity, and the tail past rot_dim is untouched.
        for (int64_t i = 0; i < c.num_heads * c.head_dim; ++i) ASSERT_EQ(y[i], x[i]);
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t h = 0; h < c.num_heads; ++h) {
            for (int64_t d = c.rot_dim; d < c.head_dim; ++d) {
              const int64_t idx = (t * c.num_heads + h) * c.head_dim + d;
              ASSERT_EQ(y[idx], x[idx]);
            }
          }
        }
      }
    }
  });
}

TEST(Rope, RotatesAdjacentPairsByTheta) {
  // Independent of the reference: one pair (1, 0) at position p rotates to (cos, sin) of
  // p * base^(-2i/d), for pair i.
  kernels::RopeParams params;
  params.rot_dim = 4;
  params.freq_base = 100.0f;
  std::vector<float> x = {1, 0, 1, 0};
  const int32_t pos = 3;
  kernels::rope(x.data(), 1, 1, 4, &pos, params, nullptr);
  EXPECT_NEAR(x[0], std::cos(3.0), 1e-6);
  EXPECT_NEAR(x[1], std::sin(3.0), 1e-6);
  EXPECT_NEAR(x[2], std::cos(3.0 / 10.0), 1e-6);  // 100^(-2/4) = 1/10
  EXPECT_NEAR(x[3], std::sin(3.0 / 10.0), 1e-6);
}

TEST(Rope, NeoxRotatesTheHalvesOfEachHead) {
  // Pair i is (x[i], x[i + rot_dim/2]); with rot_dim 4 of a 6-wide head, the last two
  // elements pass through.
  kernels::RopeParams params;
  params.rot_dim = 4;
  params.freq_base = 100.0f;
  params.neox = true;
  for_each_level([&] {
    std::vector<float> x = {1, 1, 0, 0, 5, 6};
    const int32_t pos = 3;
    kernels::rope(x.data(), 1, 1, 6, &pos, params, nullptr);
    EXPECT_NEAR(x[0], std::cos(3.0), 1e-6);
    EXPECT_NEAR(x[2], std::sin(3.0), 1e-6);
    EXPECT_NEAR(x[1], std::cos(3.0 / 10.0), 1e-6);
    EXPECT_NEAR(x[3], std::sin(3.0 / 10.0), 1e-6);
    EXPECT_EQ(x[4], 5.0f);
    EXPECT_EQ(x[5], 6.0f);
  });
}

TEST(Softmax, MatchesReference) {
  std::mt19937 rng(3);
  ThreadPool pool(2);
  for_each_level([&] {
    for (int64_t cols : kLengths) {
      for (float spread : {1.0f, 30.0f, 1000.0f}) {
        SCOPED_TRACE("cols=" + std::to_string(cols) + " spread=" + std::to_string(spread));
        const int64_t rows = 5;
        std::vector<float> x = random_floats(rng, rows * cols, -spread, spread);
        if (cols > 2) x[1] = -std::numeric_limits<float>::infinity();  // a masked score
        std::vector<float> y = x, y_ref = x;
        kernels::softmax(y.data(), rows, cols, &pool);
        kernels::ref::softmax_ref(y_ref.data(), rows, cols);
        for (size_t i = 0; i < x.size(); ++i) {
          ASSERT_NEAR(y[i], y_ref[i], 4e-6 * y_ref[i] + 1e-12) << "i=" << i;
        }
        for (int64_t r = 0; r < rows; ++r) {
          double sum = 0;
          for (int64_t i = 0; i < cols; ++i) sum += y[r * cols + i];
          ASSERT_NEAR(sum, 1.0, 1e-5);
        }
      }
    }
  });
}

TEST(SiluMul, MatchesReference) {
  std::mt19937 rng(4);
  ThreadPool pool(2);
  for_each_level([&] {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{172}, int64_t{100003}}) {
      std::vector<float> gate = random_floats(rng, n, -20.0f, 20.0f);
      const std::vector<float> up = random_floats(rng, n, -2.0f, 2.0f);
      if (n > 5) {  // the extremes: saturation and exp overflow inside silu
        gate[0] = 0.0f;
        gate[1] = -100.0f;
        gate[2] = 100.0f;
        gate[3] = -88.5f;
        gate[4] = 1e-20f;
      }
      std::vector<float> out(n), out_ref(n);
      kernels::silu_mul(gate.data(), up.data(), out.data(), n, &pool);
      kernels::ref::silu_mul_ref(gate.data(), up.data(), out_ref.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(out[i], out_ref[i], 2e-6 * std::fabs(out_ref[i]) + 1e-37)
            << "i=" << i << " gate=" << gate[i];
      }
    }
  });
}

TEST(GeluTanhMul, MatchesReferenceAndTheFormula) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for_each_level([&] {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{384}, int64_t{100003}}) {
      std::vector<float> gate = random_floats(rng, n, -12.0f, 12.0f);
      const std::vector<float> up = random_floats(rng, n, -2.0f, 2.0f);
      if (n > 5) {  // saturation at both ends, and tiny inputs
        gate[0] = 0.0f;
        gate[1] = -100.0f;
        gate[2] = 100.0f;
        gate[3] = -30.0f;
        gate[4] = 1e-20f;
      }
      std::vector<float> out(n), out_ref(n);
      kernels::gelu_tanh_mul(gate.data(), up.data(), out.data(), n, &pool);
      kernels::ref::gelu_tanh_mul_ref(gate.data(), up.data(), out_ref.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double g = gate[i];
        const double exact =
            0.5 * g * (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g))) * up[i];
        // 1 + tanh(u) cancels for negative g, so the reference's error is relative to g * up
        // (a few float epsilons of it); the vector form, g * sigmoid(2u), is relative.
        const double floor = 2e-7 * std::fabs(g * up[i]);
        ASSERT_NEAR(out_ref[i], exact, 1e-6 * std::fabs(exact) + floor) << "g=" << g;
        ASSERT_NEAR(out[i], exact, 4e-6 * std::fabs(exact) + floor) << "g=" << g;
      }
    }
  });
}

TEST(Softcap, MatchesTanh) {
  std::mt19937 rng(8);
  ThreadPool pool(2);
  for_each_level([&] {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{70001}}) {
      for (float cap : {1.0f, 30.0f}) {
        std::vector<float> x = random_floats(rng, n, -100.0f, 100.0f);
        if (n > 4) x[0] = 0.0f, x[1] = 1e-30f, x[2] = -1e4f, x[3] = 1e4f;
        std::vector<float> y = x, y_ref = x;
        kernels::softcap(y.data(), n, cap, &pool);
        kernels::ref::softcap_ref(y_ref.data(), n, cap);
        for (int64_t i = 0; i < n; ++i) {
          const double exact = cap * std::tanh(static_cast<double>(x[i]) / cap);
          ASSERT_NEAR(y_ref[i], exact, 2e-7 * cap) << "x=" << x[i];
          // 1 - 2 / (e + 1) cancels near 0: an absolute error of a few ulp of cap.
          ASSERT_NEAR(y[i], exact, 4e-7 * cap) << "x=" << x[i];
          ASSERT_LE(std::fabs(y[i]), cap);
        }
      }
    }
  });
}

TEST(Add, IsExact) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  for_each_level([&] {
    for (int64_t n : {int64_t{1}, int64_t{9}, int64_t{4096}, int64_t{70001}}) {
      const std::vector<float> a = random_floats(rng, n), b = random_floats(rng, n);
      std::vector<float> out(n), out_ref(n);
      kernels::add(a.data(), b.data(), out.data(), n, &pool);
      kernels::ref::add_ref(a.data(), b.data(), out_ref.data(), n);
      ASSERT_EQ(0, std::memcmp(out.data(), out_ref.data(), n * 4));
      std::vector<float> in_place = a;  // the residual stream updates in place
      kernels::add(in_place.data(), b.data(), in_place.data(), n, &pool);
      ASSERT_EQ(0, std::memcmp(in_place.data(), out_ref.data(), n * 4));
    }
  });
}

TEST(GetRow, MatchesReferenceBitwise) {
  std::mt19937 rng(6);
  for_each_level([&] {
    for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
      for (int64_t cols : {int64_t{32}, int64_t{64}, int64_t{288}, int64_t{4096}}) {
        const TestWeights w = make_weights(rng, type, 3, type == DType::F16 ? cols + 5 : cols);
        std::vector<float> out(w.view.cols), out_ref(w.view.cols);
        kernels::get_row(w.view, 2, out.data());
        kernels::ref::get_row_ref(w.view, 2, out_ref.data());
        ASSERT_EQ(0, std::memcmp(out.data(), out_ref.data(), out.size() * 4)) << dtype_str(type);
      }
    }
  });
}

}  // namespace
}  // namespace moon::test
