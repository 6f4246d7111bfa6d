// The vector exp of each level over an array, for simd_exp_test.cpp. exp is written once
// (util/simd/vec_exp.h, which kernels/cpu/simd.h brings in) and needs its level's target attribute, so as in src/kernels each
// level compiles it in a file of its own (simd_exp_avx2.cpp, simd_exp_avx512.cpp).
#pragma once

#include <cstdint>

namespace moon::test {

// y[i] = e^x[i] for i < n; n a multiple of 16.
void exp_avx2(const float* x, float* y, int64_t n);
void exp_avx512(const float* x, float* y, int64_t n);

#ifdef MOON_SIMD_TARGET  // in those two files
template <class S>
MOON_SIMD_TARGET void exp_array(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += S::kLanes) {
    S::store(y + i, kernels::detail::exp<S>(S::load(x + i)));
  }
}
#endif

}  // namespace moon::test
