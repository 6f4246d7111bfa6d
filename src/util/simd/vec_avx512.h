// AVX-512 as a vector type: 16 fp32 lanes, the same operations as simd::Avx2 (vec_avx2.h) on
// native masks. Libraries derive their own struct from this one to add what only they need.
// Every function carries the AVX-512 target attribute (util/simd/target.h) so it inlines into
// its callers, which must be AVX-512 functions too.
#pragma once

// GCC 12's AVX-512 intrinsics pass _mm*_undefined_* values that trip -Wuninitialized once
// inlined. Diagnostic state follows source locations, so silencing the header's own lines
// works, provided this is the translation unit's first include of <immintrin.h>.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // clang has no such warning, and warns about the name
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "util/simd/target.h"
#include "util/simd/vec_avx2.h"  // the reductions finish on 8 lanes

namespace moon::simd {

struct Avx512 {
  using Vec = __m512;  // kLanes fp32 values
  // kLanes 32-bit integers as the compiler's vector extensions, which take C operators.
  using U32 = uint32_t __attribute__((vector_size(64)));
  using I32 = int32_t __attribute__((vector_size(64)));
  static constexpr int kLanes = 16;

  // The first `count` lanes (0 <= count <= kLanes), for the last, partial vector of a row:
  // masked loads zero the other lanes and read nothing there, masked stores leave them alone.
  using Tail = __mmask16;
  MOON_TARGET_AVX512 static Tail tail(int64_t count) {
    return static_cast<__mmask16>((1u << count) - 1);
  }

  MOON_TARGET_AVX512 static Vec zero() { return _mm512_setzero_ps(); }
  MOON_TARGET_AVX512 static Vec set1(float x) { return _mm512_set1_ps(x); }
  MOON_TARGET_AVX512 static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  MOON_TARGET_AVX512 static Vec load(const float* p, Tail t) { return _mm512_maskz_loadu_ps(t, p); }
  // Lanes outside the tail hold `fill` instead of zero.
  MOON_TARGET_AVX512 static Vec load_or(const float* p, Tail t, Vec fill) {
    return _mm512_mask_loadu_ps(fill, t, p);
  }
  MOON_TARGET_AVX512 static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  MOON_TARGET_AVX512 static void store(float* p, Tail t, Vec v) { _mm512_mask_storeu_ps(p, t, v); }
  MOON_TARGET_AVX512 static float first(Vec v) { return _mm512_cvtss_f32(v); }

  MOON_TARGET_AVX512 static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  MOON_TARGET_AVX512 static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  MOON_TARGET_AVX512 static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  MOON_TARGET_AVX512 static Vec div(Vec a, Vec b) { return _mm512_div_ps(a, b); }
  // min and max return their second operand when either is NaN.
  MOON_TARGET_AVX512 static Vec min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
  MOON_TARGET_AVX512 static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  MOON_TARGET_AVX512 static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  MOON_TARGET_AVX512 static Vec fmsub(Vec a, Vec b, Vec c) { return _mm512_fmsub_ps(a, b, c); }
  MOON_TARGET_AVX512 static Vec fnmadd(Vec a, Vec b, Vec c) { return _mm512_fnmadd_ps(a, b, c); }
  // acc + x and max(acc, x) in the tail's lanes; the other lanes keep acc.
  MOON_TARGET_AVX512 static Vec mask_add(Vec acc, Tail t, Vec x) {
    return _mm512_mask_add_ps(acc, t, acc, x);
  }
  MOON_TARGET_AVX512 static Vec mask_max(Vec acc, Tail t, Vec x) {
    return _mm512_mask_max_ps(acc, t, acc, x);
  }
  // Whether a > b in some lane (false where either is NaN).
  MOON_TARGET_AVX512 static bool any_gt(Vec a, Vec b) {
    return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) != 0;
  }
  // Bit i set where a > b in lane i (clear where either is NaN).
  MOON_TARGET_AVX512 static uint32_t gt_mask(Vec a, Vec b) {
    return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ);
  }
  // (x1, x0, x3, x2, ...): each adjacent pair swapped.
  MOON_TARGET_AVX512 static Vec swap_pairs(Vec v) { return _mm512_permute_ps(v, 0xB1); }
  MOON_TARGET_AVX512 static Vec round(Vec v) {
    return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  MOON_TARGET_AVX512 static Vec floor(Vec v) {
    return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  }

  // Sum and maximum of the lanes in one fixed order (halves first), so equal inputs always
  // give equal bits. Spelled out rather than _mm512_reduce_*_ps, whose order is the
  // compiler's choice (and which trip GCC 12's -Wmaybe-uninitialized).
  MOON_TARGET_AVX512 static float reduce_add(Vec v) {
    return Avx2::reduce_add(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
  }
  MOON_TARGET_AVX512 static float reduce_max(Vec v) {
    return Avx2::reduce_max(_mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
  }

  // p * 2^n for whole-number n, one rounding, saturating to inf or 0.
  MOON_TARGET_AVX512 static Vec scale_pow2(Vec p, Vec n) { return _mm512_scalef_ps(p, n); }
};

}  // namespace moon::simd
