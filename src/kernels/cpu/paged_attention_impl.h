// Internals shared by the per-instruction-set paged attention files: the work item one
// body computes and the helpers every level uses. Not part of the kernel's interface.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/paged_attention.h"
#include "tensor/dtype.h"

namespace moon::kernels {

namespace detail {

// Keys per softmax tile: each query's online softmax rescales once per tile.
inline constexpr int64_t kKeyTile = 64;
// Queries one work item computes together, sharing every K and V row it loads.
inline constexpr int64_t kMaxItemQueries = 32;
// How many tiles ahead of the one being computed K and V rows are prefetched.
inline constexpr int64_t kPrefetchTiles = 1;

// One work item for a per-level body: queries that share one KV head of one sequence,
// ordered so that num_keys never decreases (tokens in order, then heads).
struct AttendTask {
  DType dtype = DType::F32;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  float scale = 0.0f;
  float softcap = 0.0f;
  const uint8_t* k_cache = nullptr;  // the layer's K bytes
  const uint8_t* v_cache = nullptr;
  const BlockId* block_table = nullptr;  // the sequence's row
  size_t block_bytes = 0;                // one block of one layer, all heads
  size_t head_bytes = 0;                 // offset of this KV head inside a block
  size_t row_bytes = 0;                  // one position of one head

  int64_t num_queries = 0;
  const float* q[kMaxItemQueries];     // each [head_dim]
  float* out[kMaxItemQueries];         // each [head_dim]
  int64_t num_keys[kMaxItemQueries];   // position + 1: keys before it are visible...
  int64_t first_key[kMaxItemQueries];  // ...from this one on (0 without a sliding window)
};

// The tile that holds query j's first visible key is its first: it starts its running max.
inline bool is_first_tile(const AttendTask& task, int64_t j, int64_t start) {
  return start <= task.first_key[j];
}

// Query j's scores over keys start .. start + n - 1 become -inf before its window (so that
// they weigh nothing).
inline void mask_before_window(const AttendTask& task, int64_t j, int64_t start, float* s,
                               int64_t n) {
  for (int64_t t = 0; t < std::min(n, task.first_key[j] - start); ++t) s[t] = -INFINITY;
}

// The K and V rows of positions first .. first + count - 1 of the task's sequence and head.
inline void gather_rows(const AttendTask& task, int64_t first, int64_t count,
                        const uint8_t** k_rows, const uint8_t** v_rows) {
  int64_t block = first / task.block_size, offset = first % task.block_size;
  for (int64_t i = 0; i < count; ++i) {
    const size_t at = static_cast<size_t>(task.block_table[block]) * task.block_bytes +
                      task.head_bytes + static_cast<size_t>(offset) * task.row_bytes;
    k_rows[i] = task.k_cache + at;
    v_rows[i] = task.v_cache + at;
    if (++offset == task.block_size) offset = 0, ++block;
  }
}

// Asks for a K or V row's cache lines ahead of use: blocks sit at random places in the
// pool, so the hardware prefetchers cannot see the next one coming. Locality 1 (into L2)
// measured faster on Zen 4 than into L1, which two tiles of rows would overflow.
inline void prefetch_row(const uint8_t* row, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(row + b, 0, 1);
}

// Prefetches positions first .. first + count - 1 (at most a tile) all at once: for the
// first tiles of a task, which nothing before could prefetch.
inline void prefetch_tile(const AttendTask& task, int64_t first, int64_t count) {
  const uint8_t* k_rows[kKeyTile];
  const uint8_t* v_rows[kKeyTile];
  gather_rows(task, first, count, k_rows, v_rows);
  for (int64_t i = 0; i < count; ++i) {
    prefetch_row(k_rows[i], task.row_bytes);
    prefetch_row(v_rows[i], task.row_bytes);
  }
}

// Calls fn.template operator()<T>() with the cache dtype `type` (F32, F16 or BF16, checked
// by paged_attention.cpp) as the template argument T.
template <class Fn>
void with_kv_dtype(DType type, Fn&& fn) {
  switch (type) {
    case DType::F16:
      return fn.template operator()<DType::F16>();
    case DType::BF16:
      return fn.template operator()<DType::BF16>();
    default:
      return fn.template operator()<DType::F32>();
  }
}

// The per-level bodies paged_attention.cpp dispatches to.
struct PagedAttentionImpl {
  // Writes out[j] = softmax(scale * q[j].K) V for every query of the task.
  void (*attend)(const AttendTask& task);
  // dst = src converted to `type` (F32, F16 or BF16). src: [n]; dst: n elements.
  void (*store_row)(DType type, const float* src, uint8_t* dst, int64_t n);
};

const PagedAttentionImpl& paged_attention_scalar();
const PagedAttentionImpl& paged_attention_avx2();
const PagedAttentionImpl& paged_attention_avx512();

}  // namespace detail

}  // namespace moon::kernels
