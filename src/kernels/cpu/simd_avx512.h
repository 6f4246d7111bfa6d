// AVX-512 building blocks shared by the AVX-512 kernels: weight loaders that widen each
// stored dtype to fp32, and a vector exp. Each carries the AVX-512 target attribute so it
// inlines into its callers, which must be AVX-512 functions too.
#pragma once

// GCC 12's AVX-512 intrinsics pass _mm*_undefined_* values that trip -Wuninitialized once
// inlined. Diagnostic state follows source locations, so silencing the header's own lines
// works, provided this is the translation unit's first include of <immintrin.h>.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/dispatch.h"
#include "tensor/dtype.h"
#include "tensor/quant_q4_0.h"
#include "tensor/quant_q8_0.h"

namespace moon::kernels::detail {

// 16 elements of a plain-dtype (F32, F16, BF16) row starting at element k, as fp32.
template <DType T>
MOON_TARGET_AVX512 inline __m512 avx512_load_plain(const uint8_t* row, int64_t k) {
  if constexpr (T == DType::F32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (T == DType::F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  } else {  // BF16: the upper half of an fp32
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// The same for a partial vector: lanes outside `mask` are zero and are not read.
template <DType T>
MOON_TARGET_AVX512 inline __m512 avx512_load_plain_masked(const uint8_t* row, int64_t k,
                                                          __mmask16 mask) {
  if constexpr (T == DType::F32) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + k);
  } else if constexpr (T == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row + 2 * k));
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, row + 2 * k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// Half `h` (elements 16h..16h+15) of block `block` of a Q8_0 or Q4_0 row, dequantized to
// exactly the values dequantize_row gives (d * q, one fp32 rounding).
template <DType T>
MOON_TARGET_AVX512 inline __m512 avx512_load_block_half(const uint8_t* row, int64_t block, int h) {
  if constexpr (T == DType::Q8_0) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + block;
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(b->d));
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs + 16 * h));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d);
  } else {  // Q4_0: a permute looks each nibble up in a table of (q - 8) values
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + block;
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(b->d));
    const __m512 values = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs)));
    if (h == 1) q = _mm512_srli_epi32(q, 4);  // the permute reads only the low 4 bits
    return _mm512_mul_ps(_mm512_permutexvar_ps(q, values), d);
  }
}

// The first `count` of 16 lanes (0 <= count <= 16).
MOON_TARGET_AVX512 inline __mmask16 avx512_tail_mask(int64_t count) {
  return static_cast<__mmask16>((1u << count) - 1);
}

// e^x per lane, within 2 ulp; overflows to +inf, underflows to 0, keeps NaN. Range
// reduction x = n ln2 + r with ln2 split in two (Cody-Waite), then a degree-6 polynomial
// for e^r on |r| <= ln2 / 2 (the Cephes expf coefficients).
MOON_TARGET_AVX512 inline __m512 avx512_exp(__m512 x) {
  // max/min return their second operand for NaN, so NaN passes through the clamp.
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);  // p * 2^n, one rounding, saturating to inf or 0
}

}  // namespace moon::kernels::detail
