// Helpers shared by the kernel tests: random data, weights in every dtype, and running a
// test body once per instruction-set level the machine supports.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "tensor/convert.h"
#include "tensor/half.h"
#include "tensor/tensor_view.h"
#include "util/cpu_features.h"
#include "util/simd/target.h"

namespace moon::test {

inline std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (static_cast<int>(l) <= static_cast<int>(hardware_simd_level())) levels.push_back(l);
  }
  return levels;
}

// Switches the kernels' level for one scope (and names it in failure messages).
class ScopedLevel {
 public:
  explicit ScopedLevel(SimdLevel level)
      : previous_(simd_level()),
        trace_(__FILE__, __LINE__, std::string("level ") + std::string(simd_level_name(level))) {
    set_simd_level(level);
  }
  ~ScopedLevel() { set_simd_level(previous_); }

 private:
  SimdLevel previous_;
  ::testing::ScopedTrace trace_;
};

// Runs body() once per level in supported_levels(), with that level active; stops after a
// fatal failure, as an ASSERT in a plain loop over the levels would.
template <class Body>
void for_each_level(Body&& body) {
  for (SimdLevel level : supported_levels()) {
    ScopedLevel scoped(level);
    body();
    if (::testing::Test::HasFatalFailure()) return;
  }
}

inline std::vector<float> random_floats(std::mt19937& rng, int64_t n, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = dist(rng);
  return v;
}

// A random [rows, cols] weight matrix stored as `type`, plus its exact fp32 values.
struct TestWeights {
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // [rows, cols], dequantized from bytes
  WeightView view;
};

inline TestWeights make_weights(std::mt19937& rng, DType type, int64_t rows, int64_t cols) {
  TestWeights w;
  const size_t row_bytes = dtype_row_bytes(type, static_cast<size_t>(cols));
  w.bytes.resize(row_bytes * static_cast<size_t>(rows));
  w.values.resize(static_cast<size_t>(rows * cols));
  const std::vector<float> source = random_floats(rng, rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(type, source.data() + r * cols, w.bytes.data() + r * row_bytes, cols);
    dequantize_row(type, w.bytes.data() + r * row_bytes, w.values.data() + r * cols, cols);
  }
  w.view = make_weight_view(type, w.bytes.data(), rows, cols);
  return w;
}

// A random [rows, cols] matrix in a block format moon only reads (Q4_1, Q5_0, Q5_1, the
// K-quants, IQ4_XS): random bytes, with every fp16 scale (d, and the offset or dmin where the
// format has one) set to a sane random value, so that all bit patterns of the quants and of
// the packed sub-block scales occur.
inline TestWeights make_random_block_weights(std::mt19937& rng, DType type, int64_t rows,
                                             int64_t cols) {
  struct Layout {
    DType type;
    int d, second;  // byte offsets of the fp16 scale and of the offset / dmin (-1: none)
  };
  static constexpr Layout kLayouts[] = {
      {DType::Q4_1, 0, 2},   {DType::Q5_0, 0, -1},   {DType::Q5_1, 0, 2},
      {DType::Q2_K, 80, 82}, {DType::Q3_K, 108, -1}, {DType::Q4_K, 0, 2},
      {DType::Q5_K, 0, 2},   {DType::Q6_K, 208, -1}, {DType::IQ4_XS, 0, -1}};
  const Layout* layout = nullptr;
  for (const Layout& l : kLayouts) layout = l.type == type ? &l : layout;
  EXPECT_NE(layout, nullptr) << "no random layout for " << dtype_name(type);
  TestWeights w;
  const DTypeTraits& traits = dtype_traits(type);
  const size_t row_bytes = dtype_row_bytes(type, static_cast<size_t>(cols));
  w.bytes.resize(row_bytes * static_cast<size_t>(rows));
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : w.bytes) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(0.001f, 0.02f), offset(-0.3f, 0.1f);
  for (size_t at = 0; layout != nullptr && at < w.bytes.size(); at += traits.block_bytes) {
    const uint16_t d = fp32_to_fp16(scale(rng));
    std::memcpy(&w.bytes[at + layout->d], &d, 2);
    if (layout->second >= 0) {
      const uint16_t m =
          fp32_to_fp16(type == DType::Q4_1 || type == DType::Q5_1 ? offset(rng) : scale(rng));
      std::memcpy(&w.bytes[at + layout->second], &m, 2);
    }
  }
  w.values.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(type, w.bytes.data() + r * row_bytes, w.values.data() + r * cols, cols);
  }
  w.view = make_weight_view(type, w.bytes.data(), rows, cols);
  return w;
}

// A panel kernel's output y against want (both [rows, n_dim]): the first `cols` columns of
// every row are the same bits.
inline ::testing::AssertionResult same_leading_columns(const std::vector<float>& y,
                                                       const std::vector<float>& want, int64_t rows,
                                                       int64_t n_dim, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    if (std::memcmp(y.data() + i * n_dim, want.data() + i * n_dim, cols * 4) != 0) {
      return ::testing::AssertionFailure() << "row " << i << " differs";
    }
  }
  return ::testing::AssertionSuccess();
}

// matmul on quantized rows, with the pool and without, gives want's bits.
inline ::testing::AssertionResult matmul_gives(const kernels::QuantizedRows& q, const WeightView& w,
                                               const std::vector<float>& want, ThreadPool* pool) {
  for (ThreadPool* p : {pool, static_cast<ThreadPool*>(nullptr)}) {
    std::vector<float> y(want.size(), NAN);
    kernels::matmul(q, w, y.data(), p);
    if (std::memcmp(y.data(), want.data(), y.size() * 4) != 0) {
      return ::testing::AssertionFailure() << "matmul " << (p ? "with" : "without") << " the pool";
    }
  }
  return ::testing::AssertionSuccess();
}

inline std::string dtype_str(DType t) {
  return std::string(dtype_name(t));
}

}  // namespace moon::test
