// AVX2 versions of the sampler's kernels (see kernels.h): the traits that kernels_simd.h's
// loops run on, simd::Avx2's plain operations plus 2^u around the shared polynomial
// (util/simd/vec_exp.h), its power of two built from the exponent bits.
#include <cmath>

#include "sampling/kernels.h"
#include "util/simd/target.h"

#if MOON_HAVE_X86
#include "util/simd/vec_avx2.h"

#define MOON_SIMD_TARGET MOON_TARGET_AVX2
#include "sampling/kernels_simd.h"

namespace moon::sampling_internal {
namespace {

struct Avx2 : simd::Avx2 {
  using Top = CollectorTop;
  static constexpr int kBlockVecs = 8;  // one block: 64 logits, loaded once, kept in registers
  static constexpr float kExpArgMin = -87.0f;

  // 2^(v - 1/2) for v <= 1/2 (or a little above); NaN and -inf give 2^-126.5 (nothing a sum
  // of probabilities can notice). The clamp keeps 2^floor(v) a normal float so that it can be
  // built from exponent bits.
  MOON_TARGET_AVX2 static Vec exp2_shifted(Vec v) {
    const Exp2 e = exp2_parts(v);
    return _mm256_mul_ps(e.fraction, e.pow2);
  }
  // acc + 2^(v - 1/2). Multiplying by the power of two is exact, so one FMA gives the same
  // bits as a multiply and an add.
  MOON_TARGET_AVX2 static Vec add_exp2_shifted(Vec acc, Vec v) {
    const Exp2 e = exp2_parts(v);
    return _mm256_fmadd_ps(e.fraction, e.pow2, acc);
  }
  struct Exp2 {
    Vec fraction;  // 2^(v - floor(v) - 1/2)
    Vec pow2;      // 2^floor(v)
  };
  MOON_TARGET_AVX2 static Exp2 exp2_parts(Vec v) {
    v = _mm256_max_ps(v, _mm256_set1_ps(-126.0f));  // NaN -> -126 (second operand)
    const Vec fl = floor(v);
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fl), _mm256_set1_epi32(127)), 23);
    return {exp2_fraction<Avx2>(_mm256_sub_ps(v, fl)), _mm256_castsi256_ps(e)};
  }

  MOON_TARGET_AVX2 static Vec keep_ge(Vec v, Vec min, Vec e) {
    return _mm256_and_ps(_mm256_cmp_ps(v, min, _CMP_GE_OQ), e);
  }
};

}  // namespace

void fused_segment_avx2(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out) {
  fused_segment<Avx2>(x, n, base, top_n, out);
}

MOON_TARGET_AVX2 double exp_weights_avx2(const float* x, int64_t n, float max, float inv_temp,
                                         float min_logit, float* w, float* block_sums) {
  return exp_weights<Avx2>(x, n, max, inv_temp, min_logit, w, block_sums);
}

MOON_TARGET_AVX2 uint64_t above_mask_avx2(const float* x, float bar) {
  return above_mask<Avx2>(x, bar);
}

}  // namespace moon::sampling_internal

#endif  // MOON_HAVE_X86 (elsewhere kernels_scalar.cpp never picks this file's kernels)
