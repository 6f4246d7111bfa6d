// AVX2 + FMA as a vector type for the kernels written once over an instruction set
// (kernels/cpu/simd.h says how): the plain 8-lane operations of simd::Avx2
// (util/simd/vec_avx2.h) and what only the kernels need on top, the stored dtypes' loads and
// conversions. Every function carries the AVX2 target attribute so it inlines into its
// callers, which must be AVX2 (or AVX-512) functions too.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "util/cpu_features.h"
#include "util/simd/target.h"
#include "util/simd/vec_avx2.h"

namespace moon::kernels::detail {

struct Avx2 : simd::Avx2 {
  using Half = __m128i;  // kLanes 16-bit values (F16 or BF16 bits)

  // 16-bit storage types. Without 16-bit masked moves, a tail goes through a small stack copy.
  MOON_TARGET_AVX2 static Half load_u16(const uint8_t* p) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  }
  MOON_TARGET_AVX2 static Half load_u16(const uint8_t* p, Tail t) {
    uint16_t part[kLanes] = {};
    std::memcpy(part, p, static_cast<size_t>(t.count) * 2);
    return load_u16(reinterpret_cast<const uint8_t*>(part));
  }
  MOON_TARGET_AVX2 static void store_u16(uint8_t* p, Half h) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
  }
  MOON_TARGET_AVX2 static void store_u16(uint8_t* p, Tail t, Half h) {
    uint16_t part[kLanes];
    store_u16(reinterpret_cast<uint8_t*>(part), h);
    std::memcpy(p, part, static_cast<size_t>(t.count) * 2);
  }
  MOON_TARGET_AVX2 static Vec from_f16(Half h) { return _mm256_cvtph_ps(h); }
  MOON_TARGET_AVX2 static Half to_f16(Vec x) {
    return _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // BF16 is the upper half of an fp32.
  MOON_TARGET_AVX2 static Vec from_bf16(Half h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  // The low 16 bits of each 32-bit lane, for lanes below 2^16 (the pack saturates).
  MOON_TARGET_AVX2 static Half pack_u16(U32 lanes) {
    const __m256i v = reinterpret_cast<__m256i>(lanes);
    return _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  }

  // kLanes whole numbers in [-128, 127] (as S::round leaves them) stored as signed bytes.
  MOON_TARGET_AVX2 static void store_i8(int8_t* p, Vec v) {
    const __m256i i = _mm256_cvtps_epi32(v);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi16(w, w));
  }

  // Quant blocks (32 values): kLanes signed bytes as fp32, and part `part` (values
  // 8 part .. 8 part + 7) of a Q4_0 block's nibbles as q - 8: parts 0 and 1 are the low
  // nibbles of bytes 0..15, parts 2 and 3 the high ones.
  MOON_TARGET_AVX2 static Vec load_i8(const int8_t* p) {
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  }
  MOON_TARGET_AVX2 static Vec q4_0_values(const uint8_t* qs, int part) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(qs + 8 * (part & 1)));
    __m256i q = _mm256_cvtepu8_epi32(bytes);
    if (part >= 2) q = _mm256_srli_epi32(q, 4);
    q = _mm256_sub_epi32(_mm256_and_si256(q, _mm256_set1_epi32(0x0F)), _mm256_set1_epi32(8));
    return _mm256_cvtepi32_ps(q);
  }
};

}  // namespace moon::kernels::detail
