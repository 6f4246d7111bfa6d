// Paged attention bodies for plain x86-64 (or any CPU): the same tiles and online softmax
// as the vector levels, one query and one element at a time.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/paged_attention_impl.h"
#include "tensor/half.h"

namespace moon::kernels::detail {
namespace {

template <DType T>
inline float load_element(const uint8_t* row, int64_t d) {
  if constexpr (T == DType::F32) {
    float f;
    std::memcpy(&f, row + 4 * d, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * d, 2);
    return T == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
  }
}

template <DType T>
void attend_typed(const AttendTask& task) {
  const int64_t hd = task.head_dim, nq = task.num_queries;
  float p[kKeyTile];  // one query's scores, then its softmax weights, over the tile
  float m[kMaxItemQueries], l[kMaxItemQueries];  // running max and sum per query
  const uint8_t* k_rows[kKeyTile];
  const uint8_t* v_rows[kKeyTile];
  for (int64_t j = 0; j < nq; ++j) std::fill(task.out[j], task.out[j] + hd, 0.0f);

  const int64_t total = task.num_keys[nq - 1];
  for (int64_t start = task.first_key[0] / kKeyTile * kKeyTile; start < total; start += kKeyTile) {
    const int64_t len = std::min(kKeyTile, total - start);
    gather_rows(task, start, len, k_rows, v_rows);
    for (int64_t j = 0; j < nq; ++j) {
      const int64_t n = std::min(len, task.num_keys[j] - start);
      if (n <= 0 || task.first_key[j] >= start + len) continue;
      const float* q = task.q[j];
      for (int64_t t = 0; t < n; ++t) {
        float dot = 0.0f;
        for (int64_t d = 0; d < hd; ++d) dot += q[d] * load_element<T>(k_rows[t], d);
        p[t] = dot * task.scale;
      }
      if (task.softcap > 0.0f) {
        for (int64_t t = 0; t < n; ++t) p[t] = task.softcap * std::tanh(p[t] / task.softcap);
      }
      mask_before_window(task, j, start, p, n);
      float tile_max = -INFINITY;
      for (int64_t t = 0; t < n; ++t) tile_max = std::max(tile_max, p[t]);
      const bool first_tile = is_first_tile(task, j, start);
      const float m_new = first_tile ? tile_max : std::max(m[j], tile_max);
      float tile_sum = 0.0f;
      for (int64_t t = 0; t < n; ++t) {
        p[t] = std::exp(p[t] - m_new);
        tile_sum += p[t];
      }
      float* out = task.out[j];
      if (first_tile) {
        l[j] = tile_sum;
      } else if (m_new > m[j]) {  // earlier tiles were weighted against a smaller max
        const float correction = std::exp(m[j] - m_new);
        l[j] = l[j] * correction + tile_sum;
        for (int64_t d = 0; d < hd; ++d) out[d] *= correction;
      } else {
        l[j] += tile_sum;
      }
      m[j] = m_new;
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t d = 0; d < hd; ++d) out[d] += p[t] * load_element<T>(v_rows[t], d);
      }
    }
  }
  for (int64_t j = 0; j < nq; ++j) {
    const float inv = 1.0f / l[j];
    for (int64_t d = 0; d < hd; ++d) task.out[j][d] *= inv;
  }
}

void attend(const AttendTask& task) {
  with_kv_dtype(task.dtype, [&]<DType T>() { attend_typed<T>(task); });
}

void store_row(DType type, const float* src, uint8_t* dst, int64_t n) {
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = type == DType::F16 ? fp32_to_fp16(src[i]) : fp32_to_bf16(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

}  // namespace

const PagedAttentionImpl& paged_attention_scalar() {
  static const PagedAttentionImpl impl{attend, store_row};
  return impl;
}

}  // namespace moon::kernels::detail
