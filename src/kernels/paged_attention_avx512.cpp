// Paged attention bodies for AVX-512: 16 lanes along head_dim, K and V widened to fp32 as
// they are loaded. Up to kBlock queries share each loaded K or V vector; every query's own
// chain of operations is the same whichever block it lands in, so sharing never changes
// its bits.
//
// simd_avx512.h comes first: it silences GCC 12's false warnings about its own
// <immintrin.h>, which works only for the translation unit's first include of it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/simd_avx512.h"  // NOLINT(build/include_order)
#include "kernels/paged_attention_impl.h"

namespace moon::kernels::detail {
namespace {

constexpr int64_t kBlock = 4;  // queries per register block

// Lane sums and maxima in one fixed order, so equal inputs always give equal bits.
MOON_TARGET_AVX512 inline float hsum(__m512 v) {
  const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

MOON_TARGET_AVX512 inline float hmax(__m512 v) {
  const __m256 a = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

// Lanes d .. d+15 of a K or V row (or the `tail` lanes of the last partial vector).
template <DType T, bool kTail>
MOON_TARGET_AVX512 inline __m512 load_lanes(const uint8_t* row, int64_t d, __mmask16 tail) {
  if constexpr (kTail) {
    return avx512_load_plain_masked<T>(row, d, tail);
  } else {
    return avx512_load_plain<T>(row, d);
  }
}

// scores[j * kKeyTile] = q[j] . k for NB queries; each K vector is loaded once for all.
template <DType T, int NB>
MOON_TARGET_AVX512 void dot_block(const uint8_t* k, const float* const* q, int64_t hd,
                                  __mmask16 tail, float* scores) {
  __m512 acc[NB];
  for (int j = 0; j < NB; ++j) acc[j] = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + 16 <= hd; d += 16) {
    const __m512 kv = avx512_load_plain<T>(k, d);
    for (int j = 0; j < NB; ++j) acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(q[j] + d), kv, acc[j]);
  }
  if (d < hd) {
    const __m512 kv = avx512_load_plain_masked<T>(k, d, tail);
    for (int j = 0; j < NB; ++j) {
      acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, q[j] + d), kv, acc[j]);
    }
  }
  for (int j = 0; j < NB; ++j) scores[j * kKeyTile] = hsum(acc[j]);
}

// out[j][d .. d+15] += sum_t p[j][t] * v[t][d .. d+15] over t < n[j], in increasing t.
// n[0] is the block's smallest count: up to it all NB queries share each V vector.
template <DType T, int NB, bool kTail>
MOON_TARGET_AVX512 void accumulate_lanes(const uint8_t* const* v_rows, const float* const* p,
                                         float* const* out, const int64_t* n, int64_t d,
                                         __mmask16 tail) {
  __m512 acc[NB];
  for (int j = 0; j < NB; ++j) {
    acc[j] = kTail ? _mm512_maskz_loadu_ps(tail, out[j] + d) : _mm512_loadu_ps(out[j] + d);
  }
  for (int64_t t = 0; t < n[0]; ++t) {
    const __m512 v = load_lanes<T, kTail>(v_rows[t], d, tail);
    for (int j = 0; j < NB; ++j) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(p[j][t]), v, acc[j]);
  }
  for (int j = 1; j < NB; ++j) {
    for (int64_t t = n[0]; t < n[j]; ++t) {
      acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(p[j][t]), load_lanes<T, kTail>(v_rows[t], d, tail),
                               acc[j]);
    }
  }
  for (int j = 0; j < NB; ++j) {
    if constexpr (kTail) {
      _mm512_mask_storeu_ps(out[j] + d, tail, acc[j]);
    } else {
      _mm512_storeu_ps(out[j] + d, acc[j]);
    }
  }
}

template <DType T, int NB>
MOON_TARGET_AVX512 void accumulate_block(const uint8_t* const* v_rows, const float* const* p,
                                         float* const* out, const int64_t* n, int64_t hd,
                                         __mmask16 tail) {
  int64_t d = 0;
  for (; d + 16 <= hd; d += 16) accumulate_lanes<T, NB, false>(v_rows, p, out, n, d, tail);
  if (d < hd) accumulate_lanes<T, NB, true>(v_rows, p, out, n, d, tail);
}

MOON_TARGET_AVX512 void scale_row(float* x, int64_t n, float factor) {
  const __m512 f = _mm512_set1_ps(factor);
  for (int64_t d = 0; d < n; d += 16) {
    const __mmask16 mask = avx512_tail_mask(std::min<int64_t>(16, n - d));
    _mm512_mask_storeu_ps(x + d, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + d), f));
  }
}

// Turns one query's n raw dot products s into softmax weights against the running max m,
// folding the tile into the running sum l and rescaling out (the weighted V so far).
MOON_TARGET_AVX512 void softmax_tile(float* s, int64_t n, float scale, bool first_tile, float& m,
                                     float& l, float* out, int64_t hd) {
  const __m512 vscale = _mm512_set1_ps(scale);
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t c = 0; c < n; c += 16) {
    const __mmask16 mask = avx512_tail_mask(std::min<int64_t>(16, n - c));
    const __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, s + c), vscale);
    _mm512_mask_storeu_ps(s + c, mask, x);
    vmax = _mm512_mask_max_ps(vmax, mask, vmax, x);
  }
  const float tile_max = hmax(vmax);
  const float m_new = first_tile ? tile_max : std::max(m, tile_max);
  const __m512 vm = _mm512_set1_ps(m_new);
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t c = 0; c < n; c += 16) {
    const __mmask16 mask = avx512_tail_mask(std::min<int64_t>(16, n - c));
    const __m512 p = avx512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + c), vm));
    _mm512_mask_storeu_ps(s + c, mask, p);
    vsum = _mm512_mask_add_ps(vsum, mask, vsum, p);
  }
  const float tile_sum = hsum(vsum);
  if (first_tile) {
    l = tile_sum;
  } else if (m_new > m) {  // earlier tiles were weighted against a smaller max
    const float correction = _mm512_cvtss_f32(avx512_exp(_mm512_set1_ps(m - m_new)));
    l = l * correction + tile_sum;
    scale_row(out, hd, correction);
  } else {
    l += tile_sum;
  }
  m = m_new;
}

template <DType T>
MOON_TARGET_AVX512 void attend_typed(const AttendTask& task) {
  const int64_t hd = task.head_dim, nq = task.num_queries;
  const __mmask16 tail = avx512_tail_mask(hd % 16);
  // [query][key in tile]: raw dot products, then softmax weights
  alignas(64) float scores[kMaxItemQueries][kKeyTile];
  float m[kMaxItemQueries], l[kMaxItemQueries];  // running max and sum per query
  int64_t n[kMaxItemQueries];                    // keys each query sees in this tile
  const float* p[kMaxItemQueries];
  const uint8_t* k_rows[kKeyTile];  // [key in tile]
  const uint8_t* v_rows[kKeyTile];
  const uint8_t* k_ahead[kKeyTile];  // [key in the tile kPrefetchTiles ahead]
  const uint8_t* v_ahead[kKeyTile];
  for (int64_t j = 0; j < nq; ++j) {
    std::memset(task.out[j], 0, static_cast<size_t>(hd) * 4);
    p[j] = scores[j];
  }

  const int64_t total = task.num_keys[nq - 1];
  for (int64_t start = 0; start < total && start < kPrefetchTiles * kKeyTile; start += kKeyTile) {
    prefetch_tile(task, start, std::min(kKeyTile, total - start));
  }
  for (int64_t start = 0; start < total; start += kKeyTile) {
    const int64_t len = std::min(kKeyTile, total - start);
    gather_rows(task, start, len, k_rows, v_rows);
    const int64_t ahead = start + kPrefetchTiles * kKeyTile;
    const int64_t ahead_len = std::clamp(total - ahead, int64_t{0}, kKeyTile);
    gather_rows(task, ahead, ahead_len, k_ahead, v_ahead);
    int64_t first = 0;  // queries before it see no key of this tile
    while (task.num_keys[first] <= start) ++first;
    for (int64_t j = first; j < nq; ++j) n[j] = std::min(len, task.num_keys[j] - start);

    // Key-major, so each K row is read once for every query that sees it.
    int64_t active = first;
    for (int64_t t = 0; t < len; ++t) {
      while (n[active] <= t) ++active;
      if (t < ahead_len) {  // spread over the tile so that the requests trickle out
        prefetch_row(k_ahead[t], task.row_bytes);
        prefetch_row(v_ahead[t], task.row_bytes);
      }
      for (int64_t j = active; j < nq; j += kBlock) {
        const uint8_t* k = k_rows[t];
        float* s = &scores[j][t];
        switch (std::min(kBlock, nq - j)) {
          case 1:
            dot_block<T, 1>(k, task.q + j, hd, tail, s);
            break;
          case 2:
            dot_block<T, 2>(k, task.q + j, hd, tail, s);
            break;
          case 3:
            dot_block<T, 3>(k, task.q + j, hd, tail, s);
            break;
          default:
            dot_block<T, 4>(k, task.q + j, hd, tail, s);
            break;
        }
      }
    }
    for (int64_t j = first; j < nq; ++j) {
      softmax_tile(scores[j], n[j], task.scale, start == 0, m[j], l[j], task.out[j], hd);
    }
    for (int64_t j = first; j < nq; j += kBlock) {
      float* const* out = task.out + j;
      switch (std::min(kBlock, nq - j)) {
        case 1:
          accumulate_block<T, 1>(v_rows, p + j, out, n + j, hd, tail);
          break;
        case 2:
          accumulate_block<T, 2>(v_rows, p + j, out, n + j, hd, tail);
          break;
        case 3:
          accumulate_block<T, 3>(v_rows, p + j, out, n + j, hd, tail);
          break;
        default:
          accumulate_block<T, 4>(v_rows, p + j, out, n + j, hd, tail);
          break;
      }
    }
  }
  for (int64_t j = 0; j < nq; ++j) scale_row(task.out[j], hd, 1.0f / l[j]);
}

MOON_TARGET_AVX512 void attend(const AttendTask& task) {
  switch (task.dtype) {
    case DType::F16:
      return attend_typed<DType::F16>(task);
    case DType::BF16:
      return attend_typed<DType::BF16>(task);
    default:
      return attend_typed<DType::F32>(task);
  }
}

// fp32 -> bf16, round to nearest even, exactly as fp32_to_bf16 (NaN stays a quiet NaN).
// Not vcvtneps2bf16: that one flushes subnormal inputs to zero.
MOON_TARGET_AVX512 inline __m256i to_bf16(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(
      _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
  return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

MOON_TARGET_AVX512 void store_row(DType type, const float* src, uint8_t* dst, int64_t n) {
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
    return;
  }
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = avx512_tail_mask(std::min<int64_t>(16, n - i));
    const __m512 x = _mm512_maskz_loadu_ps(mask, src + i);
    const __m256i h = type == DType::F16
                          ? _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
                          : to_bf16(x);
    _mm256_mask_storeu_epi16(dst + 2 * i, mask, h);
  }
}

}  // namespace

const PagedAttentionImpl& paged_attention_avx512() {
  static const PagedAttentionImpl impl{attend, store_row};
  return impl;
}

}  // namespace moon::kernels::detail
