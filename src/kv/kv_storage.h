// The bytes of the paged KV cache: for every layer one K and one V array laid out as
// kv_layout.h says ([num_blocks][num_kv_heads][block_size][head_dim] of F32, F16 or BF16),
// each 64-byte aligned. Decides nothing: the KvCacheManager says which blocks a sequence
// uses and which copies to make; the model runner writes K/V into slots; attention reads them.
//
// Thread safety: the arrays are plain memory; concurrent writers must touch disjoint slots
// (the forward's threads do). copy_block must not overlap a forward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "tensor/kv_layout.h"
#include "util/result.h"

namespace moon {

// Whether `layout` describes a cache KvStorage can hold: positive sizes, dtype F32, F16 or
// BF16, block ids that fit BlockId, byte sizes that fit size_t.
Status validate_kv_layout(const KvLayout& layout);

// `shape` (layers, heads, head_dim, block_size, dtype) with as many blocks as budget_bytes
// holds: budget / (block_size * bytes_per_token), capped at the largest BlockId. An error that
// names both sizes when the budget holds less than one block.
Result<KvLayout> kv_layout_for_budget(const KvLayout& shape, uint64_t budget_bytes);

// Bytes of `shape`'s blocks that hold `num_sequences` sequences of `tokens_each` tokens with
// nothing shared (each rounded up to whole blocks); saturates at UINT64_MAX.
uint64_t kv_bytes_for_sequences(const KvLayout& shape, int64_t num_sequences, int64_t tokens_each);

class KvStorage {
 public:
  static constexpr size_t kAlignment = 64;

  // Zeroed arrays for `layout` (mapped lazily: pages cost memory once written).
  static Result<KvStorage> create(const KvLayout& layout);

  KvStorage(KvStorage&& other) noexcept;
  KvStorage& operator=(KvStorage&& other) noexcept;
  KvStorage(const KvStorage&) = delete;
  KvStorage& operator=(const KvStorage&) = delete;
  ~KvStorage();

  const KvLayout& layout() const { return layout_; }
  size_t num_bytes() const { return num_bytes_; }

  // Layer `layer`'s K (or V): [num_blocks][num_kv_heads][block_size][head_dim] of dtype.
  void* k(int64_t layer) { return array(2 * layer); }
  void* v(int64_t layer) { return array(2 * layer + 1); }
  const void* k(int64_t layer) const { return array(2 * layer); }
  const void* v(int64_t layer) const { return array(2 * layer + 1); }

  // dst's K and V in every layer become src's. Precondition: both are valid block ids.
  void copy_block(BlockId src, BlockId dst);
  // In order, as KvCacheManager::take_pending_copies() returns them.
  void copy_blocks(std::span<const std::pair<BlockId, BlockId>> copies);

 private:
  KvStorage(const KvLayout& layout, std::byte* base, size_t num_bytes, size_t array_stride);
  std::byte* array(int64_t index) const;

  KvLayout layout_;
  std::byte* base_ = nullptr;  // mmap'd, num_bytes_ long
  size_t num_bytes_ = 0;
  size_t array_stride_ = 0;  // layer_bytes rounded up to kAlignment
};

}  // namespace moon
