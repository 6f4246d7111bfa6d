// The AVX-512 half of simd_exp_levels.h.
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512
#include "kernels/cpu/simd.h"
#include "simd_exp_levels.h"

void moon::test::exp_avx512(const float* x, float* y, int64_t n) {
  exp_array<kernels::detail::Avx512>(x, y, n);
}
