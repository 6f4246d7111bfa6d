// AVX2 versions of the sampler's kernels (see kernels.h): the traits that kernels_simd.h's
// loops run on, with blends for masks and the power of two built from the exponent bits.
#include <cmath>

#include "sampling/kernels.h"
#include "util/simd/target.h"

#if MOON_HAVE_X86
#include <immintrin.h>

#define MOON_SIMD_TARGET MOON_TARGET_AVX2
#include "sampling/kernels_simd.h"

namespace moon::sampling_internal {
namespace {

struct Avx2 {
  using Vec = __m256;
  using Tail = __m256i;  // all-ones in the lanes to touch
  using Top = CollectorTop;
  static constexpr int kLanes = 8;
  static constexpr int kBlockVecs = 8;  // one block: 64 logits, loaded once, kept in registers
  static constexpr float kExpArgMin = -87.0f;

  MOON_TARGET_AVX2 static Vec set1(float v) { return _mm256_set1_ps(v); }
  MOON_TARGET_AVX2 static Vec zero() { return _mm256_setzero_ps(); }
  MOON_TARGET_AVX2 static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  MOON_TARGET_AVX2 static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  MOON_TARGET_AVX2 static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  MOON_TARGET_AVX2 static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  MOON_TARGET_AVX2 static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  MOON_TARGET_AVX2 static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  MOON_TARGET_AVX2 static Vec fmsub(Vec a, Vec b, Vec c) { return _mm256_fmsub_ps(a, b, c); }
  MOON_TARGET_AVX2 static bool any_gt(Vec a, Vec b) {
    return _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ)) != 0;
  }

  // 2^u for u <= 0 (or a little above); NaN and -inf give 2^-126 (nothing a sum of
  // probabilities can notice). The clamp keeps 2^floor(u) a normal float so that it can be
  // built from exponent bits.
  MOON_TARGET_AVX2 static Vec exp2_nonpositive(Vec u) {
    const Exp2 e = exp2_parts(u);
    return _mm256_mul_ps(e.fraction, e.pow2);
  }
  // acc + 2^u. Multiplying by the power of two is exact, so one FMA gives the same bits as a
  // multiply and an add.
  MOON_TARGET_AVX2 static Vec add_exp2_nonpositive(Vec acc, Vec u) {
    const Exp2 e = exp2_parts(u);
    return _mm256_fmadd_ps(e.fraction, e.pow2, acc);
  }
  struct Exp2 {
    Vec fraction;  // 2^(u - floor(u))
    Vec pow2;      // 2^floor(u)
  };
  MOON_TARGET_AVX2 static Exp2 exp2_parts(Vec u) {
    u = _mm256_max_ps(u, _mm256_set1_ps(-126.0f));  // NaN -> -126 (second operand)
    const Vec fl = _mm256_floor_ps(u);
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fl), _mm256_set1_epi32(127)), 23);
    return {exp2_fraction<Avx2>(_mm256_sub_ps(u, fl)), _mm256_castsi256_ps(e)};
  }

  MOON_TARGET_AVX2 static __m128 max_to_128(Vec v) {
    return _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  }
  MOON_TARGET_AVX2 static __m128 add_to_128(Vec v) {
    return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  }

  MOON_TARGET_AVX2 static Tail tail(int64_t left) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(left)), lane);
  }
  MOON_TARGET_AVX2 static Vec load_padded(const float* x, int64_t left) {
    if (left >= kLanes) return _mm256_loadu_ps(x);
    const Tail t = tail(left);
    return _mm256_blendv_ps(_mm256_set1_ps(kNegInf), _mm256_maskload_ps(x, t),
                            _mm256_castsi256_ps(t));
  }
  MOON_TARGET_AVX2 static Vec load_tail(const float* x, int64_t left, Tail t) {
    return left >= kLanes ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, t);
  }
  MOON_TARGET_AVX2 static Vec keep_ge(Vec v, Vec min, Tail t, Vec e) {
    const Vec keep = _mm256_and_ps(_mm256_cmp_ps(v, min, _CMP_GE_OQ), _mm256_castsi256_ps(t));
    return _mm256_and_ps(keep, e);
  }
  MOON_TARGET_AVX2 static void store_tail(float* w, int64_t left, Tail t, Vec e) {
    if (left >= kLanes) {
      _mm256_storeu_ps(w, e);
    } else {
      _mm256_maskstore_ps(w, t, e);
    }
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

}  // namespace moon::sampling_internal

#endif  // MOON_HAVE_X86 (elsewhere kernels_scalar.cpp never picks this file's kernels)
