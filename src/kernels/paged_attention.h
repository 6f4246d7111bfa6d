// Attention over the paged KV cache (kv/kv_layout.h): storing new tokens' K and V into
// their slots, and causal GQA attention for a whole batch of sequences in one call, each
// with any number of new query tokens (decode: 1; prefill or a prefill chunk: many).
//
// Batch invariance: the output of one (query token, head) depends only on that query, its
// position and the cache contents it sees, never on the other sequences or tokens in the
// batch, the thread count, how a prompt was split into chunks, which blocks hold the keys,
// or even the block size. Each query reduces over its keys in fixed tiles of kKeyTile
// positions (0..63, 64..127, ...), in the same order and with the same operations whatever
// else is computed alongside it. Results do differ between SIMD levels.
#pragma once

#include <cstdint>

#include "kv/kv_layout.h"
#include "util/thread_pool.h"

namespace moon::kernels {

// Writes the K and V of `num_tokens` new tokens into one layer's cache, converting to
// layout.dtype (F16 and BF16 round to nearest even, bit-identical to fp32_to_fp16 /
// fp32_to_bf16 in tensor/half.h). Token t goes to slot slot_mapping[t]; a negative slot
// (padding) is skipped. k_layer, v_layer: [num_blocks][num_kv_heads][block_size][head_dim]
// of layout.dtype; k_new, v_new: [num_tokens, num_kv_heads * head_dim]; slot_mapping:
// [num_tokens].
void kv_write(const KvLayout& layout, void* k_layer, void* v_layer, const float* k_new,
              const float* v_new, const int64_t* slot_mapping, int64_t num_tokens);

// One layer's attention for a batch of sequences. The new tokens' K and V must already be
// in the cache (kv_write). Sequence s owns query rows query_start[s] .. query_start[s+1]-1;
// with n_s = that count, its row i sits at position context_len[s] - n_s + i and attends
// to cached positions 0 ..= that position. Query head h reads KV head
// h / (num_heads / layout.num_kv_heads).
struct PagedAttentionBatch {
  const float* q = nullptr;  // [num_tokens, num_heads * head_dim], rows indexed by query_start
  float* out = nullptr;      // [num_tokens, num_heads * head_dim]; must not alias q
  int64_t num_heads = 0;     // query heads, a multiple of layout.num_kv_heads
  float scale = 0.0f;        // applied to q.k, usually 1 / sqrt(head_dim)

  int64_t num_seqs = 0;
  const int64_t* query_start = nullptr;  // [num_seqs + 1], non-decreasing
  const int64_t* context_len = nullptr;  // [num_seqs]: positions cached after this step
  // [num_seqs, block_table_stride]: row s lists the blocks of sequence s in position
  // order; the first ceil(context_len[s] / block_size) entries are read.
  const BlockId* block_tables = nullptr;
  int64_t block_table_stride = 0;

  KvLayout layout;  // head_dim, num_kv_heads, block_size and dtype
  const void* k_cache =
      nullptr;  // this layer's K: [num_blocks][num_kv_heads][block_size][head_dim]
  const void* v_cache = nullptr;  // this layer's V, the same shape
};

// Computes out for every query row of the batch. `pool` may be null (run on the calling
// thread). Aborts with a message on malformed input (unsupported dtype, head counts that
// do not divide, more queries than context, a block table too short).
void paged_attention(const PagedAttentionBatch& batch, ThreadPool* pool = nullptr);

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
  const uint8_t* k_cache = nullptr;  // the layer's K bytes
  const uint8_t* v_cache = nullptr;
  const BlockId* block_table = nullptr;  // the sequence's row
  size_t block_bytes = 0;                // one block of one layer, all heads
  size_t head_bytes = 0;                 // offset of this KV head inside a block
  size_t row_bytes = 0;                  // one position of one head

  int64_t num_queries = 0;
  const float* q[kMaxItemQueries];    // each [head_dim]
  float* out[kMaxItemQueries];        // each [head_dim]
  int64_t num_keys[kMaxItemQueries];  // position + 1: keys 0 .. num_keys - 1 are visible
};

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
// pool, so the hardware prefetchers cannot see the next one coming.
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
