// AVX2 + FMA as a vector type for the kernels written once over an instruction set
// (kernels/cpu/simd.h says how): 8 fp32 lanes and the few operations the kernels need, each
// one or two intrinsics. Every function carries the AVX2 target attribute so it inlines into
// its callers, which must be AVX2 (or AVX-512) functions too.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"

namespace moon::kernels::detail {

struct Avx2 {
  using Vec = __m256;    // kLanes fp32 values
  using Half = __m128i;  // kLanes 16-bit values (F16 or BF16 bits)
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
  // (x1, x0, x3, x2, ...): each adjacent pair swapped.
  MOON_TARGET_AVX2 static Vec swap_pairs(Vec v) { return _mm256_permute_ps(v, 0xB1); }
  MOON_TARGET_AVX2 static Vec round(Vec v) {
    return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }

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
