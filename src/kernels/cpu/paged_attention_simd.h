// Paged attention bodies written once over a vector type S (see kernels/cpu/simd.h for how
// a level's .cpp instantiates them): S::kLanes lanes along head_dim, K and V widened to fp32
// as they are loaded. Up to kBlock queries share each loaded K or V vector; every query's
// own chain of operations is the same whichever block it lands in, so sharing never changes
// its bits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/paged_attention_impl.h"
#include "kernels/cpu/simd.h"

namespace moon::kernels::detail {
namespace {

constexpr int64_t kBlock = 4;  // queries per register block

// Lanes d .. d + kLanes - 1 of a K or V row (or the `tail` lanes of the last partial vector).
template <class S, DType T, bool kTail>
MOON_SIMD_TARGET inline typename S::Vec load_lanes(const uint8_t* row, int64_t d,
                                                   typename S::Tail tail) {
  if constexpr (kTail) {
    return load_plain<S, T>(row, d, tail);
  } else {
    return load_plain<S, T>(row, d);
  }
}

// scores[j * kKeyTile] = q[j] . k for NB queries; each K vector is loaded once for all.
template <class S, DType T, int NB>
MOON_SIMD_TARGET void dot_block(const uint8_t* k, const float* const* q, int64_t hd,
                                typename S::Tail tail, float* scores) {
  using Vec = typename S::Vec;
  Vec acc[NB];
  for (int j = 0; j < NB; ++j) acc[j] = S::zero();
  int64_t d = 0;
  for (; d + S::kLanes <= hd; d += S::kLanes) {
    const Vec kv = load_plain<S, T>(k, d);
    for (int j = 0; j < NB; ++j) acc[j] = S::fmadd(S::load(q[j] + d), kv, acc[j]);
  }
  if (d < hd) {
    const Vec kv = load_plain<S, T>(k, d, tail);
    for (int j = 0; j < NB; ++j) acc[j] = S::fmadd(S::load(q[j] + d, tail), kv, acc[j]);
  }
  for (int j = 0; j < NB; ++j) scores[j * kKeyTile] = S::reduce_add(acc[j]);
}

// out[j][d ..] += sum_t p[j][t] * v[t][d ..] over t < n[j], in increasing t, for one
// vector of lanes. n[0] is the block's smallest count: up to it all NB queries share each V
// vector.
template <class S, DType T, int NB, bool kTail>
MOON_SIMD_TARGET void accumulate_lanes(const uint8_t* const* v_rows, const float* const* p,
                                       float* const* out, const int64_t* n, int64_t d,
                                       typename S::Tail tail) {
  using Vec = typename S::Vec;
  Vec acc[NB];
  for (int j = 0; j < NB; ++j) acc[j] = kTail ? S::load(out[j] + d, tail) : S::load(out[j] + d);
  for (int64_t t = 0; t < n[0]; ++t) {
    const Vec v = load_lanes<S, T, kTail>(v_rows[t], d, tail);
    for (int j = 0; j < NB; ++j) acc[j] = S::fmadd(S::set1(p[j][t]), v, acc[j]);
  }
  for (int j = 1; j < NB; ++j) {
    for (int64_t t = n[0]; t < n[j]; ++t) {
      acc[j] = S::fmadd(S::set1(p[j][t]), load_lanes<S, T, kTail>(v_rows[t], d, tail), acc[j]);
    }
  }
  for (int j = 0; j < NB; ++j) {
    if constexpr (kTail) {
      S::store(out[j] + d, tail, acc[j]);
    } else {
      S::store(out[j] + d, acc[j]);
    }
  }
}

template <class S, DType T, int NB>
MOON_SIMD_TARGET void accumulate_block(const uint8_t* const* v_rows, const float* const* p,
                                       float* const* out, const int64_t* n, int64_t hd,
                                       typename S::Tail tail) {
  int64_t d = 0;
  for (; d + S::kLanes <= hd; d += S::kLanes) {
    accumulate_lanes<S, T, NB, false>(v_rows, p, out, n, d, tail);
  }
  if (d < hd) accumulate_lanes<S, T, NB, true>(v_rows, p, out, n, d, tail);
}

template <class S>
MOON_SIMD_TARGET void scale_row(float* x, int64_t n, float factor) {
  const typename S::Vec f = S::set1(factor);
  for (int64_t d = 0; d < n; d += S::kLanes) {
    const typename S::Tail mask = S::tail(std::min<int64_t>(S::kLanes, n - d));
    S::store(x + d, mask, S::mul(S::load(x + d, mask), f));
  }
}

// Turns query j's n raw dot products s over the tile at `start` into softmax weights
// against the running max m, folding the tile into the running sum l and rescaling out (the
// weighted V so far).
template <class S>
MOON_SIMD_TARGET void softmax_tile(const AttendTask& task, int64_t j, int64_t start, float* s,
                                   int64_t n, float& m, float& l, float* out, int64_t hd) {
  using Vec = typename S::Vec;
  const bool first_tile = is_first_tile(task, j, start);
  const bool plain = task.softcap == 0.0f && task.first_key[j] <= start;
  const Vec vscale = S::set1(task.scale);
  Vec vmax = S::set1(-INFINITY);
  for (int64_t c = 0; c < n; c += S::kLanes) {
    const typename S::Tail mask = S::tail(std::min<int64_t>(S::kLanes, n - c));
    const Vec x = S::mul(S::load(s + c, mask), vscale);
    S::store(s + c, mask, x);
    if (plain) vmax = S::mask_max(vmax, mask, x);
  }
  if (!plain) {
    if (task.softcap > 0.0f) {  // cap * tanh(x / cap), as cap * (1 - 2 / (e^(2x / cap) + 1))
      const Vec cap = S::set1(task.softcap), two_over_cap = S::set1(2.0f / task.softcap);
      const Vec one = S::set1(1.0f), two = S::set1(2.0f);
      for (int64_t c = 0; c < n; c += S::kLanes) {
        const typename S::Tail mask = S::tail(std::min<int64_t>(S::kLanes, n - c));
        const Vec e = exp<S>(S::mul(S::load(s + c, mask), two_over_cap));
        const Vec tanh = S::sub(one, S::div(two, S::add(e, one)));
        S::store(s + c, mask, S::mul(cap, tanh));
      }
    }
    mask_before_window(task, j, start, s, n);
    for (int64_t c = 0; c < n; c += S::kLanes) {
      const typename S::Tail mask = S::tail(std::min<int64_t>(S::kLanes, n - c));
      vmax = S::mask_max(vmax, mask, S::load(s + c, mask));
    }
  }
  const float tile_max = S::reduce_max(vmax);
  const float m_new = first_tile ? tile_max : std::max(m, tile_max);
  const Vec vm = S::set1(m_new);
  Vec vsum = S::zero();
  for (int64_t c = 0; c < n; c += S::kLanes) {
    const typename S::Tail mask = S::tail(std::min<int64_t>(S::kLanes, n - c));
    const Vec p = exp<S>(S::sub(S::load(s + c, mask), vm));
    S::store(s + c, mask, p);
    vsum = S::mask_add(vsum, mask, p);
  }
  const float tile_sum = S::reduce_add(vsum);
  if (first_tile) {
    l = tile_sum;
  } else if (m_new > m) {  // earlier tiles were weighted against a smaller max
    const float correction = S::first(exp<S>(S::set1(m - m_new)));
    l = l * correction + tile_sum;
    scale_row<S>(out, hd, correction);
  } else {
    l += tile_sum;
  }
  m = m_new;
}

template <class S, DType T>
MOON_SIMD_TARGET void attend_typed(const AttendTask& task) {
  const int64_t hd = task.head_dim, nq = task.num_queries;
  const typename S::Tail tail = S::tail(hd % S::kLanes);
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
  // Tiles stay at multiples of kKeyTile whatever the window, so that a query's reduction
  // never depends on which other queries share its task.
  const int64_t begin = task.first_key[0] / kKeyTile * kKeyTile;
  for (int64_t start = begin; start < total && start < begin + kPrefetchTiles * kKeyTile;
       start += kKeyTile) {
    prefetch_tile(task, start, std::min(kKeyTile, total - start));
  }
  for (int64_t start = begin; start < total; start += kKeyTile) {
    const int64_t len = std::min(kKeyTile, total - start);
    gather_rows(task, start, len, k_rows, v_rows);
    const int64_t ahead = start + kPrefetchTiles * kKeyTile;
    const int64_t ahead_len = std::clamp(total - ahead, int64_t{0}, kKeyTile);
    gather_rows(task, ahead, ahead_len, k_ahead, v_ahead);
    // Queries [first, last) see keys of this tile: those before have passed their last key,
    // those after have windows that start later.
    int64_t first = 0, last = nq;
    while (task.num_keys[first] <= start) ++first;
    while (last > first && task.first_key[last - 1] >= start + len) --last;
    for (int64_t j = first; j < last; ++j) n[j] = std::min(len, task.num_keys[j] - start);

    // Key-major, so each K row is read once for every query that sees it.
    int64_t active = first;
    for (int64_t t = 0; t < len; ++t) {
      while (active < last && n[active] <= t) ++active;
      if (t < ahead_len) {  // spread over the tile so that the requests trickle out
        prefetch_row(k_ahead[t], task.row_bytes);
        prefetch_row(v_ahead[t], task.row_bytes);
      }
      for (int64_t j = active; j < last; j += kBlock) {
        const uint8_t* k = k_rows[t];
        float* s = &scores[j][t];
        switch (std::min(kBlock, last - j)) {
          case 1:
            dot_block<S, T, 1>(k, task.q + j, hd, tail, s);
            break;
          case 2:
            dot_block<S, T, 2>(k, task.q + j, hd, tail, s);
            break;
          case 3:
            dot_block<S, T, 3>(k, task.q + j, hd, tail, s);
            break;
          default:
            dot_block<S, T, 4>(k, task.q + j, hd, tail, s);
            break;
        }
      }
    }
    for (int64_t j = first; j < last; ++j) {
      softmax_tile<S>(task, j, start, scores[j], n[j], m[j], l[j], task.out[j], hd);
    }
    for (int64_t j = first; j < last; j += kBlock) {
      float* const* out = task.out + j;
      switch (std::min(kBlock, last - j)) {
        case 1:
          accumulate_block<S, T, 1>(v_rows, p + j, out, n + j, hd, tail);
          break;
        case 2:
          accumulate_block<S, T, 2>(v_rows, p + j, out, n + j, hd, tail);
          break;
        case 3:
          accumulate_block<S, T, 3>(v_rows, p + j, out, n + j, hd, tail);
          break;
        default:
          accumulate_block<S, T, 4>(v_rows, p + j, out, n + j, hd, tail);
          break;
      }
    }
  }
  for (int64_t j = 0; j < nq; ++j) scale_row<S>(task.out[j], hd, 1.0f / l[j]);
}

template <class S>
void attend(const AttendTask& task) {
  with_kv_dtype(task.dtype, [&]<DType T>() { attend_typed<S, T>(task); });
}

// dst = src converted to `type`: F16 and BF16 round to nearest even, bit-identical to
// fp32_to_fp16 / fp32_to_bf16.
template <class S>
MOON_SIMD_TARGET void store_row(DType type, const float* src, uint8_t* dst, int64_t n) {
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
    return;
  }
  int64_t i = 0;
  for (; i + S::kLanes <= n; i += S::kLanes) {
    const typename S::Vec x = S::load(src + i);
    S::store_u16(dst + 2 * i, type == DType::F16 ? S::to_f16(x) : to_bf16<S>(x));
  }
  if (i < n) {
    const typename S::Tail tail = S::tail(n - i);
    const typename S::Vec x = S::load(src + i, tail);
    S::store_u16(dst + 2 * i, tail, type == DType::F16 ? S::to_f16(x) : to_bf16<S>(x));
  }
}

// The table paged_attention.cpp dispatches to for level S.
template <class S>
const PagedAttentionImpl& simd_paged_attention() {
  static const PagedAttentionImpl impl{&attend<S>, &store_row<S>};
  return impl;
}

}  // namespace
}  // namespace moon::kernels::detail
