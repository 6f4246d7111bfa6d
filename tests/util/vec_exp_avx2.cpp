// The AVX2 half of vec_exp_levels.h.
#include "util/simd/target.h"

#if MOON_HAVE_X86
#include "util/simd/vec_avx2.h"
#define MOON_SIMD_TARGET MOON_TARGET_AVX2
#include "util/simd/vec_exp.h"
#include "vec_exp_levels.h"

void moon::test::vec_exp_avx2(const float* x, float* y, int64_t n) {
  vec_exp_array<simd::Avx2>(x, y, n);
}
void moon::test::vec_exp2_fraction_avx2(const float* x, float* y, int64_t n) {
  vec_exp2_fraction_array<simd::Avx2>(x, y, n);
}
#endif
