// AVX2 building blocks shared by the AVX2 kernels: weight loaders that widen each stored
// dtype to fp32, a vector exp and reductions. Each carries the AVX2 target attribute so it
// inlines into its callers, which must be AVX2 functions too.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "tensor/dtype.h"
#include "tensor/quant_q4_0.h"
#include "tensor/quant_q8_0.h"

namespace moon::kernels::detail {

// A maskload/maskstore mask selecting the first `count` of 8 lanes (0 <= count <= 8).
MOON_TARGET_AVX2 inline __m256i avx2_tail_mask(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Sum of the 8 lanes, always in the same order (so equal inputs give equal bits).
MOON_TARGET_AVX2 inline float avx2_hsum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// 8 elements of a plain-dtype (F32, F16, BF16) row starting at element k, as fp32.
template <DType T>
MOON_TARGET_AVX2 inline __m256 avx2_load_plain(const uint8_t* row, int64_t k) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (T == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  } else {  // BF16: the upper half of an fp32
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// The first `count` (< 8) elements from k, zero-filled, reading nothing past them. AVX2
// has no 16-bit masked load, so the 16-bit types go through a small stack copy.
template <DType T>
MOON_TARGET_AVX2 inline __m256 avx2_load_plain_tail(const uint8_t* row, int64_t k, int64_t count) {
  if constexpr (T == DType::F32) {
    return _mm256_maskload_ps(reinterpret_cast<const float*>(row) + k, avx2_tail_mask(count));
  } else {
    uint16_t part[8] = {};
    std::memcpy(part, row + 2 * k, static_cast<size_t>(count) * 2);
    return avx2_load_plain<T>(reinterpret_cast<const uint8_t*>(part), 0);
  }
}

// Quarter `c` (elements 8c..8c+7) of block `block` of a Q8_0 or Q4_0 row, dequantized to
// exactly the values dequantize_row gives (d * q, one fp32 rounding).
template <DType T>
MOON_TARGET_AVX2 inline __m256 avx2_load_block_quarter(const uint8_t* row, int64_t block, int c) {
  if constexpr (T == DType::Q8_0) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + block;
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(b->d));
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b->qs + 8 * c));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
  } else {  // Q4_0: quarters 0, 1 are the low nibbles of bytes 0..15; 2, 3 the high ones
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + block;
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(b->d));
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b->qs + 8 * (c & 1)));
    __m256i q = _mm256_cvtepu8_epi32(bytes);
    if (c >= 2) q = _mm256_srli_epi32(q, 4);
    q = _mm256_sub_epi32(_mm256_and_si256(q, _mm256_set1_epi32(0x0F)), _mm256_set1_epi32(8));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(q), d);
  }
}

// e^x per lane, the same algorithm as avx512_exp (and the same results): 2^n is applied
// as two exact power-of-two factors, since 2^n alone may not be representable.
MOON_TARGET_AVX2 inline __m256 avx2_exp(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n in [-150, 129]: halves of it are normal exponents, so p * 2^a is exact and the
  // final * 2^b rounds once, as scalef does.
  const __m256i e = _mm256_cvtps_epi32(n);
  const __m256i a = _mm256_srai_epi32(e, 1);
  const __m256i b = _mm256_sub_epi32(e, a);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 scale_a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
  const __m256 scale_b = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, scale_a), scale_b);
}

}  // namespace moon::kernels::detail
