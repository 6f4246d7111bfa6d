// AVX2 + FMA as a vector type: 8 fp32 lanes and the plain operations on them, each one or two
// intrinsics, for code written once over an instruction set (kernels/cpu/simd.h,
// sampling/kernels_simd.h). Libraries derive their own struct from this one to add what only
// they need (the kernels' dtype conversions, the sampler's exp2). Every function carries the
// AVX2 target attribute (util/simd/target.h) so it inlines into its callers, which must be
// AVX2 (or AVX-512) functions too.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "util/simd/target.h"

namespace moon::simd {

struct Avx2 {
  using Vec = __m256;  // kLanes fp32 values
  // kLanes 32-bit integers as the compiler's vector extensions, which take C operators.
  using U32 = uint32_t __attribute__((vector_size(32)));
  using I32 = int32_t __attribute__((vector_size(32)));
  static constexpr int kLanes = 8;

  // The first `count` lanes of a vector (0 <= count <= kLanes), for the last, partial vector
  // of a row: masked loads zero the other lanes and read nothing there, masked stores leave
  // them alone. AVX2 has no 16-bit masked load or store, so those use the count.
  struct Tail {
    __m256i mask;
    int64_t count;
  };
  MOON_TARGET_AVX2 static Tail tail(int64_t count) {
    return {_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
            count};
  }

  MOON_TARGET_AVX2 static Vec zero() { return _mm256_setzero_ps(); }
  MOON_TARGET_AVX2 static Vec set1(float x) { return _mm256_set1_ps(x); }
  MOON_TARGET_AVX2 static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  MOON_TARGET_AVX2 static Vec load(const float* p, Tail t) { return _mm256_maskload_ps(p, t.mask); }
  // Lanes outside the tail hold `fill` instead of zero.
  MOON_TARGET_AVX2 static Vec load_or(const float* p, Tail t, Vec fill) {
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, t.mask), _mm256_castsi256_ps(t.mask));
  }
  MOON_TARGET_AVX2 static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  MOON_TARGET_AVX2 static void store(float* p, Tail t, Vec v) { _mm256_maskstore_ps(p, t.mask, v); }
  MOON_TARGET_AVX2 static float first(Vec v) { return _mm256_cvtss_f32(v); }

  MOON_TARGET_AVX2 static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  MOON_TARGET_AVX2 static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  MOON_TARGET_AVX2 static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  MOON_TARGET_AVX2 static Vec div(Vec a, Vec b) { return _mm256_div_ps(a, b); }
  // min and max return their second operand when either is NaN.
  MOON_TARGET_AVX2 static Vec min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
  MOON_TARGET_AVX2 static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  MOON_TARGET_AVX2 static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  MOON_TARGET_AVX2 static Vec fmsub(Vec a, Vec b, Vec c) { return _mm256_fmsub_ps(a, b, c); }
  MOON_TARGET_AVX2 static Vec fnmadd(Vec a, Vec b, Vec c) { return _mm256_fnmadd_ps(a, b, c); }
  // acc + x and max(acc, x) in the tail's lanes; the other lanes add zero and take the max
  // with -inf, which leaves them as they were.
  MOON_TARGET_AVX2 static Vec mask_add(Vec acc, Tail t, Vec x) {
    return _mm256_add_ps(acc, _mm256_and_ps(x, _mm256_castsi256_ps(t.mask)));
  }
  MOON_TARGET_AVX2 static Vec mask_max(Vec acc, Tail t, Vec x) {
    return _mm256_max_ps(
        acc, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), x, _mm256_castsi256_ps(t.mask)));
  }
  // Whether a > b in some lane (false where either is NaN).
  MOON_TARGET_AVX2 static bool any_gt(Vec a, Vec b) {
    return _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ)) != 0;
  }
  // Bit i set where a > b in lane i (clear where either is NaN).
  MOON_TARGET_AVX2 static uint32_t gt_mask(Vec a, Vec b) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ)));
  }
  // (x1, x0, x3, x2, ...): each adjacent pair swapped.
  MOON_TARGET_AVX2 static Vec swap_pairs(Vec v) { return _mm256_permute_ps(v, 0xB1); }
  MOON_TARGET_AVX2 static Vec round(Vec v) {
    return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  MOON_TARGET_AVX2 static Vec floor(Vec v) { return _mm256_floor_ps(v); }

  // Sum and maximum of the lanes, always in the same order (so equal inputs give equal bits).
  MOON_TARGET_AVX2 static float reduce_add(Vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  MOON_TARGET_AVX2 static float reduce_max(Vec v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }

  // p * 2^n for whole-number n in [-150, 129], rounding once (as AVX-512's scalef does). 2^n
  // alone may not be a normal float, so it is applied as two factors 2^a * 2^b with a and b
  // halves of n: p * 2^a is exact and only the final * 2^b rounds.
  MOON_TARGET_AVX2 static Vec scale_pow2(Vec p, Vec n) {
    const __m256i e = _mm256_cvtps_epi32(n);
    const __m256i a = _mm256_srai_epi32(e, 1);
    const __m256i b = _mm256_sub_epi32(e, a);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 scale_a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
    const __m256 scale_b = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, scale_a), scale_b);
  }
};

}  // namespace moon::simd
