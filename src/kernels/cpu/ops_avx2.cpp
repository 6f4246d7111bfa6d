// AVX2 bodies of the element-wise and row-wise kernels. Tails use maskload/maskstore, so
// every element goes through the same vector arithmetic wherever it sits.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/ops_impl.h"
#include "kernels/cpu/simd_avx2.h"

namespace moon::kernels::detail {
namespace {

constexpr int64_t kLanes = 8;

MOON_TARGET_AVX2 inline __m256 load_tail(const float* p, __m256i mask) {
  return _mm256_maskload_ps(p, mask);
}

MOON_TARGET_AVX2 void rmsnorm_row(const float* x, const float* weight, float* out, int64_t dim,
                                  float eps) {
  // Four accumulators hide the FMA latency; their combination order is fixed.
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 4 * kLanes <= dim; i += 4 * kLanes) {
    for (int a = 0; a < 4; ++a) {
      const __m256 v = _mm256_loadu_ps(x + i + a * kLanes);
      acc[a] = _mm256_fmadd_ps(v, v, acc[a]);
    }
  }
  for (; i < dim; i += kLanes) {
    const __m256 v = load_tail(x + i, avx2_tail_mask(std::min(kLanes, dim - i)));
    acc[0] = _mm256_fmadd_ps(v, v, acc[0]);
  }
  const float sum_squares =
      avx2_hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  const __m256 scale =
      _mm256_set1_ps(1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps));
  for (i = 0; i < dim; i += kLanes) {
    const __m256i m = avx2_tail_mask(std::min(kLanes, dim - i));
    const __m256 v = load_tail(x + i, m);
    const __m256 w = load_tail(weight + i, m);
    _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(_mm256_mul_ps(v, scale), w));
  }
}

MOON_TARGET_AVX2 void rope_token(float* x, int64_t num_heads, int64_t head_dim, int64_t rot_dim,
                                 const float* cos_dup, const float* sin_signed) {
  for (int64_t h = 0; h < num_heads; ++h) {
    float* head = x + h * head_dim;  // [head_dim]
    for (int64_t i = 0; i < rot_dim; i += kLanes) {
      const __m256i m = avx2_tail_mask(std::min(kLanes, rot_dim - i));
      const __m256 v = load_tail(head + i, m);
      const __m256 swapped = _mm256_permute_ps(v, 0xB1);  // (x1, x0) per pair
      // Multiply then add, no FMA: the reference's two roundings, so the bits match.
      const __m256 r = _mm256_add_ps(_mm256_mul_ps(v, load_tail(cos_dup + i, m)),
                                     _mm256_mul_ps(swapped, load_tail(sin_signed + i, m)));
      _mm256_maskstore_ps(head + i, m, r);
    }
  }
}

MOON_TARGET_AVX2 void softmax_row(float* x, int64_t cols) {
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  __m256 vmax = neg_inf;
  for (int64_t i = 0; i < cols; i += kLanes) {
    const __m256i m = avx2_tail_mask(std::min(kLanes, cols - i));
    const __m256 v = _mm256_blendv_ps(neg_inf, load_tail(x + i, m), _mm256_castsi256_ps(m));
    vmax = _mm256_max_ps(vmax, v);
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const __m256 max = _mm256_set1_ps(_mm_cvtss_f32(m4));
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t i = 0; i < cols; i += kLanes) {
    const __m256i m = avx2_tail_mask(std::min(kLanes, cols - i));
    const __m256 e = avx2_exp(_mm256_sub_ps(load_tail(x + i, m), max));
    vsum = _mm256_add_ps(vsum, _mm256_and_ps(e, _mm256_castsi256_ps(m)));
    _mm256_maskstore_ps(x + i, m, e);
  }
  const __m256 sum = _mm256_set1_ps(avx2_hsum(vsum));
  for (int64_t i = 0; i < cols; i += kLanes) {
    const __m256i m = avx2_tail_mask(std::min(kLanes, cols - i));
    _mm256_maskstore_ps(x + i, m, _mm256_div_ps(load_tail(x + i, m), sum));
  }
}

MOON_TARGET_AVX2 void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += kLanes) {
    const __m256i m = avx2_tail_mask(std::min(kLanes, n - i));
    const __m256 g = load_tail(gate + i, m);
    const __m256 e = avx2_exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(silu, load_tail(up + i, m)));
  }
}

MOON_TARGET_AVX2 void add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kLanes) {
    const __m256i m = avx2_tail_mask(std::min(kLanes, n - i));
    _mm256_maskstore_ps(out + i, m, _mm256_add_ps(load_tail(a + i, m), load_tail(b + i, m)));
  }
}

template <DType T>
MOON_TARGET_AVX2 void dequantize_plain(const uint8_t* src, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(out + i, avx2_load_plain<T>(src, i));
  if (i < n) {
    _mm256_maskstore_ps(out + i, avx2_tail_mask(n - i), avx2_load_plain_tail<T>(src, i, n - i));
  }
}

template <DType T>
MOON_TARGET_AVX2 void dequantize_blocks(const uint8_t* src, float* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    for (int c = 0; c < 4; ++c) {
      _mm256_storeu_ps(out + 32 * b + kLanes * c, avx2_load_block_quarter<T>(src, b, c));
    }
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

const OpsImpl& ops_avx2() {
  static const OpsImpl impl{&rmsnorm_row, &rope_token, &softmax_row,
                            &silu_mul,    &add,        &dequantize_row};
  return impl;
}

}  // namespace moon::kernels::detail
