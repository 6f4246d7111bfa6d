// util/simd/vec_exp.h's vector functions at each level, over arrays, for vec_exp_test.cpp.
// They need their level's target attribute, so as in src each level compiles them in a file of
// its own (vec_exp_avx2.cpp, vec_exp_avx512.cpp).
#pragma once

#include <cstdint>

namespace moon::test {

// y[i] = f(x[i]) for i < n; n a multiple of 16.
using VecFn = void (*)(const float* x, float* y, int64_t n);
void vec_exp_avx2(const float* x, float* y, int64_t n);
void vec_exp_avx512(const float* x, float* y, int64_t n);
void vec_exp2_fraction_avx2(const float* x, float* y, int64_t n);
void vec_exp2_fraction_avx512(const float* x, float* y, int64_t n);

#ifdef MOON_SIMD_TARGET  // in those two files
template <class V>
MOON_SIMD_TARGET void vec_exp_array(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += V::kLanes) V::store(y + i, simd::exp<V>(V::load(x + i)));
}
template <class V>
MOON_SIMD_TARGET void vec_exp2_fraction_array(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += V::kLanes) {
    V::store(y + i, simd::exp2_fraction<V>(V::load(x + i)));
  }
}
#endif

}  // namespace moon::test
