// The AVX2 half of simd_exp_levels.h.
#include "kernels/cpu/simd_avx2.h"
#define MOON_SIMD_TARGET MOON_TARGET_AVX2
#include "kernels/cpu/simd.h"
#include "simd_exp_levels.h"

void moon::test::exp_avx2(const float* x, float* y, int64_t n) {
  exp_array<kernels::detail::Avx2>(x, y, n);
}
