// AVX-512 as a vector type for the kernels written once over an instruction set
// (kernels/cpu/simd.h says how): the plain 16-lane operations of simd::Avx512
// (util/simd/vec_avx512.h) and, as in Avx2 (simd_avx2.h), the stored dtypes' loads and
// conversions on native masks. Every function carries the AVX-512 target attribute so it
// inlines into its callers, which must be AVX-512 functions too.
#pragma once

#include <cstdint>

#include "util/cpu_features.h"
#include "util/simd/target.h"
#include "util/simd/vec_avx512.h"

namespace moon::kernels::detail {

struct Avx512 : simd::Avx512 {
  using Half = __m256i;  // kLanes 16-bit values (F16 or BF16 bits)

  // 16-bit storage types.
  MOON_TARGET_AVX512 static Half load_u16(const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  MOON_TARGET_AVX512 static Half load_u16(const uint8_t* p, Tail t) {
    return _mm256_maskz_loadu_epi16(t, p);
  }
  MOON_TARGET_AVX512 static void store_u16(uint8_t* p, Half h) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), h);
  }
  MOON_TARGET_AVX512 static void store_u16(uint8_t* p, Tail t, Half h) {
    _mm256_mask_storeu_epi16(p, t, h);
  }
  MOON_TARGET_AVX512 static Vec from_f16(Half h) { return _mm512_cvtph_ps(h); }
  MOON_TARGET_AVX512 static Half to_f16(Vec x) {
    return _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // BF16 is the upper half of an fp32.
  MOON_TARGET_AVX512 static Vec from_bf16(Half h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  // The low 16 bits of each 32-bit lane.
  MOON_TARGET_AVX512 static Half pack_u16(U32 lanes) {
    return _mm512_cvtepi32_epi16(reinterpret_cast<__m512i>(lanes));
  }

  // kLanes whole numbers in [-128, 127] (as S::round leaves them) stored as signed bytes.
  MOON_TARGET_AVX512 static void store_i8(int8_t* p, Vec v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
  }

  // Quant blocks (32 values): kLanes signed bytes as fp32, and part `part` (values
  // 16 part .. 16 part + 15) of a Q4_0 block's nibbles as q - 8, looked up by a permute in a
  // table of the 16 possible values.
  MOON_TARGET_AVX512 static Vec load_i8(const int8_t* p) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
  }
  MOON_TARGET_AVX512 static Vec q4_0_values(const uint8_t* qs, int part) {
    const __m512 values = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    if (part == 1) q = _mm512_srli_epi32(q, 4);  // the permute reads only the low 4 bits
    return _mm512_permutexvar_ps(q, values);
  }
};

}  // namespace moon::kernels::detail
