// Where each cached key and value lives in the paged KV pool. Shared by the KV storage
// (which owns the bytes), the paged attention kernel (which reads them through block
// tables) and the model runner (which writes new tokens' K and V into their slots).
//
// Per layer, K and V are each one array of blocks:
//   [num_blocks][num_kv_heads][block_size][head_dim]   in `dtype` (F32, F16 or BF16)
// so that one block of one head is a contiguous [block_size][head_dim] tile: attention
// streams a sequence's keys block by block, head by head.
// A token's slot is block_id * block_size + offset_in_block.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace moon {

using BlockId = int32_t;

struct KvLayout {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;  // tokens per block
  int64_t num_blocks = 0;
  DType dtype = DType::F32;  // F32, F16 or BF16

  size_t element_bytes() const { return dtype == DType::F32 ? 4 : 2; }
  // Elements in one block of one layer (all heads) of K (or of V).
  int64_t block_elements() const { return num_kv_heads * block_size * head_dim; }
  size_t block_bytes() const { return static_cast<size_t>(block_elements()) * element_bytes(); }
  // Bytes of K (or of V) for one layer.
  size_t layer_bytes() const { return block_bytes() * static_cast<size_t>(num_blocks); }
  // Bytes of one token's K and V over every layer: what one cached token costs.
  size_t bytes_per_token() const {
    return 2 * static_cast<size_t>(num_layers * num_kv_heads * head_dim) * element_bytes();
  }
  // Element offset, within one layer's K (or V) array, of (slot, kv_head, dim 0).
  int64_t element_offset(int64_t slot, int64_t kv_head) const {
    const int64_t block = slot / block_size, offset = slot % block_size;
    return ((block * num_kv_heads + kv_head) * block_size + offset) * head_dim;
  }
};

}  // namespace moon
