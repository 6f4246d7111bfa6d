// AVX-512 bodies of the element-wise and row-wise kernels. Tails use masked loads and
// stores, so every element goes through the same vector arithmetic wherever it sits.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/ops_impl.h"
#include "kernels/cpu/simd_avx512.h"

namespace moon::kernels::detail {
namespace {

constexpr int64_t kLanes = 16;

MOON_TARGET_AVX512 void rmsnorm_row(const float* x, const float* weight, float* out, int64_t dim,
                                    float eps) {
  // Four accumulators hide the FMA latency; their combination order is fixed.
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 4 * kLanes <= dim; i += 4 * kLanes) {
    for (int a = 0; a < 4; ++a) {
      const __m512 v = _mm512_loadu_ps(x + i + a * kLanes);
      acc[a] = _mm512_fmadd_ps(v, v, acc[a]);
    }
  }
  for (; i < dim; i += kLanes) {
    const __m512 v = _mm512_maskz_loadu_ps(avx512_tail_mask(std::min(kLanes, dim - i)), x + i);
    acc[0] = _mm512_fmadd_ps(v, v, acc[0]);
  }
  const float sum_squares = _mm512_reduce_add_ps(
      _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  const __m512 scale =
      _mm512_set1_ps(1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps));
  for (i = 0; i < dim; i += kLanes) {
    const __mmask16 m = avx512_tail_mask(std::min(kLanes, dim - i));
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 w = _mm512_maskz_loadu_ps(m, weight + i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(v, scale), w));
  }
}

MOON_TARGET_AVX512 void rope_token(float* x, int64_t num_heads, int64_t head_dim, int64_t rot_dim,
                                   const float* cos_dup, const float* sin_signed) {
  for (int64_t h = 0; h < num_heads; ++h) {
    float* head = x + h * head_dim;  // [head_dim]
    for (int64_t i = 0; i < rot_dim; i += kLanes) {
      const __mmask16 m = avx512_tail_mask(std::min(kLanes, rot_dim - i));
      const __m512 v = _mm512_maskz_loadu_ps(m, head + i);
      const __m512 swapped = _mm512_permute_ps(v, 0xB1);  // (x1, x0) per pair
      // Multiply then add, no FMA: the reference's two roundings, so the bits match.
      const __m512 r =
          _mm512_add_ps(_mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, cos_dup + i)),
                        _mm512_mul_ps(swapped, _mm512_maskz_loadu_ps(m, sin_signed + i)));
      _mm512_mask_storeu_ps(head + i, m, r);
    }
  }
}

MOON_TARGET_AVX512 void softmax_row(float* x, int64_t cols) {
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  __m512 vmax = neg_inf;
  for (int64_t i = 0; i < cols; i += kLanes) {
    const __mmask16 m = avx512_tail_mask(std::min(kLanes, cols - i));
    vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(neg_inf, m, x + i));
  }
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t i = 0; i < cols; i += kLanes) {
    const __mmask16 m = avx512_tail_mask(std::min(kLanes, cols - i));
    const __m512 e = avx512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max));
    vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
    _mm512_mask_storeu_ps(x + i, m, e);
  }
  const __m512 sum = _mm512_set1_ps(_mm512_reduce_add_ps(vsum));
  for (int64_t i = 0; i < cols; i += kLanes) {
    const __mmask16 m = avx512_tail_mask(std::min(kLanes, cols - i));
    _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), sum));
  }
}

MOON_TARGET_AVX512 void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = avx512_tail_mask(std::min(kLanes, n - i));
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = avx512_exp(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

MOON_TARGET_AVX512 void add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = avx512_tail_mask(std::min(kLanes, n - i));
    _mm512_mask_storeu_ps(
        out + i, m,
        _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

template <DType T>
MOON_TARGET_AVX512 void dequantize_plain(const uint8_t* src, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = avx512_tail_mask(std::min(kLanes, n - i));
    _mm512_mask_storeu_ps(out + i, m, avx512_load_plain_masked<T>(src, i, m));
  }
}

template <DType T>
MOON_TARGET_AVX512 void dequantize_blocks(const uint8_t* src, float* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    _mm512_storeu_ps(out + 32 * b, avx512_load_block_half<T>(src, b, 0));
    _mm512_storeu_ps(out + 32 * b + kLanes, avx512_load_block_half<T>(src, b, 1));
  }
}

void dequantize_row(DType type, const uint8_t* src, float* out, int64_t n) {
  switch (type) {
    case DType::F32:
      std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16:
      return dequantize_plain<DType::F16>(src, out, n);
    case DType::BF16:
      return dequantize_plain<DType::BF16>(src, out, n);
    case DType::Q8_0:
      return dequantize_blocks<DType::Q8_0>(src, out, n);
    case DType::Q4_0:
      return dequantize_blocks<DType::Q4_0>(src, out, n);
    default:
      return;  // ops.cpp checks the dtype before dispatching
  }
}

}  // namespace

const OpsImpl& ops_avx512() {
  static const OpsImpl impl{&rmsnorm_row, &rope_token, &softmax_row,
                            &silu_mul,    &add,        &dequantize_row};
  return impl;
}

}  // namespace moon::kernels::detail
