// Paged attention bodies for AVX2: the AVX-512 bodies' structure with 8 lanes. Up to
// kBlock queries share each loaded K or V vector; every query's own chain of operations is
// the same whichever block it lands in, so sharing never changes its bits.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/simd_avx2.h"
#include "kernels/paged_attention_impl.h"
#include "tensor/half.h"

namespace moon::kernels::detail {
namespace {

constexpr int64_t kBlock = 4;  // queries per register block

MOON_TARGET_AVX2 inline float hmax(__m256 v) {
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

// Lanes d .. d+7 of a K or V row, or its last `rest` (< 8) elements zero-filled.
template <DType T, bool kTail>
MOON_TARGET_AVX2 inline __m256 load_lanes(const uint8_t* row, int64_t d, int64_t rest) {
  if constexpr (kTail) {
    return avx2_load_plain_tail<T>(row, d, rest);
  } else {
    return avx2_load_plain<T>(row, d);
  }
}

// scores[j * kKeyTile] = q[j] . k for NB queries; each K vector is loaded once for all.
template <DType T, int NB>
MOON_TARGET_AVX2 void dot_block(const uint8_t* k, const float* const* q, int64_t hd,
                                float* scores) {
  __m256 acc[NB];
  for (int j = 0; j < NB; ++j) acc[j] = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= hd; d += 8) {
    const __m256 kv = avx2_load_plain<T>(k, d);
    for (int j = 0; j < NB; ++j) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q[j] + d), kv, acc[j]);
  }
  if (d < hd) {
    const __m256 kv = avx2_load_plain_tail<T>(k, d, hd - d);
    const __m256i mask = avx2_tail_mask(hd - d);
    for (int j = 0; j < NB; ++j) {
      acc[j] = _mm256_fmadd_ps(_mm256_maskload_ps(q[j] + d, mask), kv, acc[j]);
    }
  }
  for (int j = 0; j < NB; ++j) scores[j * kKeyTile] = avx2_hsum(acc[j]);
}

// out[j][d .. d+7] += sum_t p[j][t] * v[t][d .. d+7] over t < n[j], in increasing t.
// n[0] is the block's smallest count: up to it all NB queries share each V vector.
template <DType T, int NB, bool kTail>
MOON_TARGET_AVX2 void accumulate_lanes(const uint8_t* const* v_rows, const float* const* p,
                                       float* const* out, const int64_t* n, int64_t d,
                                       int64_t rest) {
  const __m256i mask = avx2_tail_mask(rest);
  __m256 acc[NB];
  for (int j = 0; j < NB; ++j) {
    acc[j] = kTail ? _mm256_maskload_ps(out[j] + d, mask) : _mm256_loadu_ps(out[j] + d);
  }
  for (int64_t t = 0; t < n[0]; ++t) {
    const __m256 v = load_lanes<T, kTail>(v_rows[t], d, rest);
    for (int j = 0; j < NB; ++j) acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(p[j][t]), v, acc[j]);
  }
  for (int j = 1; j < NB; ++j) {
    for (int64_t t = n[0]; t < n[j]; ++t) {
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(p[j][t]), load_lanes<T, kTail>(v_rows[t], d, rest),
                               acc[j]);
    }
  }
  for (int j = 0; j < NB; ++j) {
    if constexpr (kTail) {
      _mm256_maskstore_ps(out[j] + d, mask, acc[j]);
    } else {
      _mm256_storeu_ps(out[j] + d, acc[j]);
    }
  }
}

template <DType T, int NB>
MOON_TARGET_AVX2 void accumulate_block(const uint8_t* const* v_rows, const float* const* p,
                                       float* const* out, const int64_t* n, int64_t hd) {
  int64_t d = 0;
  for (; d + 8 <= hd; d += 8) accumulate_lanes<T, NB, false>(v_rows, p, out, n, d, 8);
  if (d < hd) accumulate_lanes<T, NB, true>(v_rows, p, out, n, d, hd - d);
}

MOON_TARGET_AVX2 void scale_row(float* x, int64_t n, float factor) {
  const __m256 f = _mm256_set1_ps(factor);
  for (int64_t d = 0; d < n; d += 8) {
    const __m256i mask = avx2_tail_mask(std::min<int64_t>(8, n - d));
    _mm256_maskstore_ps(x + d, mask, _mm256_mul_ps(_mm256_maskload_ps(x + d, mask), f));
  }
}

// Turns one query's n raw dot products s into softmax weights against the running max m,
// folding the tile into the running sum l and rescaling out (the weighted V so far).
MOON_TARGET_AVX2 void softmax_tile(float* s, int64_t n, float scale, bool first_tile, float& m,
                                   float& l, float* out, int64_t hd) {
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  __m256 vmax = neg_inf;
  for (int64_t c = 0; c < n; c += 8) {
    const __m256i mask = avx2_tail_mask(std::min<int64_t>(8, n - c));
    const __m256 x = _mm256_mul_ps(_mm256_maskload_ps(s + c, mask), vscale);
    _mm256_maskstore_ps(s + c, mask, x);
    vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(neg_inf, x, _mm256_castsi256_ps(mask)));
  }
  const float tile_max = hmax(vmax);
  const float m_new = first_tile ? tile_max : std::max(m, tile_max);
  const __m256 vm = _mm256_set1_ps(m_new);
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t c = 0; c < n; c += 8) {
    const __m256i mask = avx2_tail_mask(std::min<int64_t>(8, n - c));
    const __m256 p = avx2_exp(_mm256_sub_ps(_mm256_maskload_ps(s + c, mask), vm));
    _mm256_maskstore_ps(s + c, mask, p);
    vsum = _mm256_add_ps(vsum, _mm256_and_ps(p, _mm256_castsi256_ps(mask)));
  }
  const float tile_sum = avx2_hsum(vsum);
  if (first_tile) {
    l = tile_sum;
  } else if (m_new > m) {  // earlier tiles were weighted against a smaller max
    const float correction = _mm256_cvtss_f32(avx2_exp(_mm256_set1_ps(m - m_new)));
    l = l * correction + tile_sum;
    scale_row(out, hd, correction);
  } else {
    l += tile_sum;
  }
  m = m_new;
}

template <DType T>
MOON_TARGET_AVX2 void attend_typed(const AttendTask& task) {
  const int64_t hd = task.head_dim, nq = task.num_queries;
  // [query][key in tile]: raw dot products, then softmax weights
  alignas(32) float scores[kMaxItemQueries][kKeyTile];
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
            dot_block<T, 1>(k, task.q + j, hd, s);
            break;
          case 2:
            dot_block<T, 2>(k, task.q + j, hd, s);
            break;
          case 3:
            dot_block<T, 3>(k, task.q + j, hd, s);
            break;
          default:
            dot_block<T, 4>(k, task.q + j, hd, s);
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
          accumulate_block<T, 1>(v_rows, p + j, out, n + j, hd);
          break;
        case 2:
          accumulate_block<T, 2>(v_rows, p + j, out, n + j, hd);
          break;
        case 3:
          accumulate_block<T, 3>(v_rows, p + j, out, n + j, hd);
          break;
        default:
          accumulate_block<T, 4>(v_rows, p + j, out, n + j, hd);
          break;
      }
    }
  }
  for (int64_t j = 0; j < nq; ++j) scale_row(task.out[j], hd, 1.0f / l[j]);
}

MOON_TARGET_AVX2 void attend(const AttendTask& task) {
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
// Returns the 8 results in the low 16 bits of each 32-bit lane.
MOON_TARGET_AVX2 inline __m256i to_bf16_lanes(__m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF)),
                                         _mm256_set1_epi32(0x7F800000));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

MOON_TARGET_AVX2 void store_row(DType type, const float* src, uint8_t* dst, int64_t n) {
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
    return;
  }
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(src + i);
    __m128i h;
    if (type == DType::F16) {
      h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    } else {  // values fit 16 bits, so the saturating pack is exact
      const __m256i lanes = to_bf16_lanes(x);
      h = _mm_packus_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), h);
  }
  for (; i < n; ++i) {  // the last few, through the exact scalar converters
    const uint16_t h = type == DType::F16 ? fp32_to_fp16(src[i]) : fp32_to_bf16(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

}  // namespace

const PagedAttentionImpl& paged_attention_avx2() {
  static const PagedAttentionImpl impl{attend, store_row};
  return impl;
}

}  // namespace moon::kernels::detail
