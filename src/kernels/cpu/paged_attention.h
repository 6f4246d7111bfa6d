// Attention over the paged KV cache (tensor/kv_layout.h): storing new tokens' K and V into
// their slots, and causal GQA attention for a whole batch of sequences in one call, each
// with any number of new query tokens (decode: 1; prefill or a prefill chunk: many).
//
// Batch invariance: the output of one (query token, head) depends only on that query, its
// position and the cache contents it sees, never on the other sequences or tokens in the
// batch, the thread count, how a prompt was split into chunks, which blocks hold the keys,
// or even the block size. Each query reduces over its keys in fixed tiles of kKeyTile
// positions (0..63, 64..127, ...), in the same order and with the same operations whatever
// else is computed alongside it. Results do differ between SIMD levels (and with `scale`).
#pragma once

#include <cstdint>

#include "tensor/kv_layout.h"
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
// to cached positions 0 ..= that position (with a sliding window W, only the last W of
// them: position - W < key <= position). Query head h reads KV head
// h / (num_heads / layout.num_kv_heads).
struct PagedAttentionBatch {
  const float* q = nullptr;  // [num_tokens, num_heads * head_dim], rows indexed by query_start
  float* out = nullptr;      // [num_tokens, num_heads * head_dim]; must not alias q
  int64_t num_heads = 0;     // query heads, a multiple of layout.num_kv_heads
  float scale = 0.0f;        // applied to q.k, usually 1 / sqrt(head_dim)
  float softcap = 0.0f;      // 0: none; else scores become softcap * tanh(scores / softcap)
  int64_t window = 0;        // 0: every earlier position; else the sliding window W

  int64_t num_seqs = 0;
  const int64_t* query_start = nullptr;  // [num_seqs + 1], non-decreasing
  const int64_t* context_len = nullptr;  // [num_seqs]: positions cached after this step
  // [num_seqs, block_table_stride]: row s lists the blocks of sequence s in position
  // order; the first ceil(context_len[s] / block_size) entries are read.
  const BlockId* block_tables = nullptr;
  int64_t block_table_stride = 0;

  KvLayout layout;  // head_dim, num_kv_heads, block_size and dtype
  // This layer's K and V: [num_blocks][num_kv_heads][block_size][head_dim] each.
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
};

// Computes out for every query row of the batch. `pool` may be null (run on the calling
// thread). Aborts with a message on malformed input (unsupported dtype, head counts that
// do not divide, more queries than context, a block table too short).
void paged_attention(const PagedAttentionBatch& batch, ThreadPool* pool = nullptr);

}  // namespace moon::kernels
