#include "kv/block_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <string>

#include "util/check.h"

namespace moon {
namespace {}  // namespace

BlockPool::BlockPool(int64_t num_blocks) {
  MOON_CHECK(num_blocks > 0 && num_blocks <= std::numeric_limits<BlockId>::max(),
             "BlockPool: num_blocks {} out of range", num_blocks);
  const auto n = static_cast<size_t>(num_blocks);
  ref_counts_.assign(n, 0);
  lru_prev_.assign(n, kNone);
  lru_next_.assign(n, kNone);
  cache_ids_.assign(n, 0);
  keys_.resize(n);
  free_list_.reserve(n);
  // Popped from the back: low ids first, which keeps small runs readable in tests and dumps.
  for (int64_t i = num_blocks - 1; i >= 0; --i) free_list_.push_back(static_cast<BlockId>(i));
}

std::optional<BlockId> BlockPool::allocate() {
  BlockId block;
  if (!free_list_.empty()) {
    block = free_list_.back();
    free_list_.pop_back();
  } else if (lru_head_ != kNone) {
    block = lru_head_;
    lru_remove(block);
    drop_from_index(block);
  } else {
    return std::nullopt;
  }
  ref_counts_[static_cast<size_t>(block)] = 1;
  return block;
}

std::optional<std::vector<BlockId>> BlockPool::allocate(int64_t n) {
  if (n < 0 || n > num_free()) return std::nullopt;
  std::vector<BlockId> blocks;
  blocks.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) blocks.push_back(*allocate());
  return blocks;
}

void BlockPool::retain(BlockId block) {
  int32_t& ref = ref_counts_.at(static_cast<size_t>(block));
  if (ref == 0) {
    MOON_CHECK(cache_id(block) != 0, "BlockPool: retain of free block {}", block);
    lru_remove(block);
  }
  ++ref;
}

void BlockPool::release(BlockId block) {
  int32_t& ref = ref_counts_.at(static_cast<size_t>(block));
  MOON_CHECK(ref > 0, "BlockPool: release of unreferenced block {} (double free)", block);
  if (--ref > 0) return;
  if (cache_id(block) != 0) {
    lru_push_back(block);
  } else {
    free_list_.push_back(block);
  }
}

std::optional<BlockPool::Hit> BlockPool::find(const BlockKey& key) const {
  const auto it = index_.find(key.hash);
  if (it == index_.end()) return std::nullopt;
  const CachedKey& stored = cached_key(it->second);
  if (stored.parent_hash != key.parent_hash || stored.parent_cache_id != key.parent_cache_id ||
      stored.extra_key != key.extra_key ||
      !std::equal(stored.tokens.begin(), stored.tokens.end(), key.tokens.begin(),
                  key.tokens.end())) {
    return std::nullopt;
  }
  return Hit{it->second, cache_id(it->second)};
}

std::optional<BlockId> BlockPool::find_hash(BlockHash hash) const {
  const auto it = index_.find(hash);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

uint64_t BlockPool::register_block(BlockId block, const BlockKey& key) {
  MOON_CHECK(ref_count(block) > 0 && cache_id(block) == 0,
             "BlockPool: register of block {} that is not in use or already cached", block);
  if (const auto other = find_hash(key.hash)) uncache(*other);
  const uint64_t id = next_cache_id_++;
  cache_ids_[static_cast<size_t>(block)] = id;
  index_.emplace(key.hash, block);
  CachedKey& stored = keys_[static_cast<size_t>(block)];
  stored.hash = key.hash;
  stored.parent_hash = key.parent_hash;
  stored.parent_cache_id = key.parent_cache_id;
  stored.extra_key = key.extra_key;
  stored.tokens.assign(key.tokens.begin(), key.tokens.end());
  return id;
}

void BlockPool::uncache(BlockId block) {
  if (cache_id(block) == 0) return;
  drop_from_index(block);
  if (ref_count(block) == 0) {
    lru_remove(block);
    free_list_.push_back(block);
  }
}

void BlockPool::drop_from_index(BlockId block) {
  auto& key = keys_[static_cast<size_t>(block)];
  index_.erase(key.hash);
  key.tokens.clear();  // keeps the capacity for the block's next registration
  key.hash = key.parent_hash = key.parent_cache_id = key.extra_key = 0;
  cache_ids_[static_cast<size_t>(block)] = 0;
}

void BlockPool::lru_push_back(BlockId block) {
  const auto b = static_cast<size_t>(block);
  lru_prev_[b] = lru_tail_;
  lru_next_[b] = kNone;
  if (lru_tail_ != kNone) {
    lru_next_[static_cast<size_t>(lru_tail_)] = block;
  } else {
    lru_head_ = block;
  }
  lru_tail_ = block;
  ++num_lru_;
}

void BlockPool::lru_remove(BlockId block) {
  const auto b = static_cast<size_t>(block);
  const BlockId prev = lru_prev_[b], next = lru_next_[b];
  if (prev != kNone) {
    lru_next_[static_cast<size_t>(prev)] = next;
  } else {
    lru_head_ = next;
  }
  if (next != kNone) {
    lru_prev_[static_cast<size_t>(next)] = prev;
  } else {
    lru_tail_ = prev;
  }
  lru_prev_[b] = lru_next_[b] = kNone;
  --num_lru_;
}

std::vector<BlockId> BlockPool::lru_order() const {
  std::vector<BlockId> order;
  for (BlockId b = lru_head_; b != kNone; b = lru_next_[static_cast<size_t>(b)]) {
    order.push_back(b);
  }
  return order;
}

Status BlockPool::check_invariants() const {
  const int64_t n = num_blocks();
  enum class Where : uint8_t { kNowhere, kFree, kLru };
  std::vector<Where> where(static_cast<size_t>(n), Where::kNowhere);
  for (const BlockId b : free_list_) {
    if (b < 0 || b >= n) return make_error("free list holds invalid block {}", b);
    if (where[static_cast<size_t>(b)] != Where::kNowhere) {
      return make_error("block {} is on the free list twice", b);
    }
    where[static_cast<size_t>(b)] = Where::kFree;
  }
  int64_t num_walked = 0;
  BlockId prev = kNone;
  for (BlockId b = lru_head_; b != kNone; b = lru_next_[static_cast<size_t>(b)]) {
    if (b < 0 || b >= n) return make_error("LRU holds invalid block {}", b);
    if (where[static_cast<size_t>(b)] != Where::kNowhere) {
      return make_error("block {} is on the LRU and also on the free list or the LRU", b);
    }
    if (lru_prev_[static_cast<size_t>(b)] != prev) {
      return make_error("LRU back link of block {} is broken", b);
    }
    where[static_cast<size_t>(b)] = Where::kLru;
    prev = b;
    if (++num_walked > n) return make_error("LRU has a cycle");
  }
  if (prev != lru_tail_) return make_error("LRU tail {} is not its last block {}", lru_tail_, prev);
  if (num_walked != num_lru_) {
    return make_error("LRU holds {} blocks but counts {}", num_walked, num_lru_);
  }
  for (int64_t i = 0; i < n; ++i) {
    const auto b = static_cast<size_t>(i);
    const int32_t ref = ref_counts_[b];
    const bool cached = cache_ids_[b] != 0;
    if (ref < 0) return make_error("block {} has negative ref count {}", i, ref);
    if (ref > 0 && where[b] != Where::kNowhere) {
      return make_error("block {} has ref count {} but is also free or on the LRU", i, ref);
    }
    if (ref == 0 && where[b] == Where::kNowhere) return make_error("block {} leaked", i);
    if (where[b] == Where::kFree && cached) {
      return make_error("cached block {} is on the free list", i);
    }
    if (where[b] == Where::kLru && !cached) return make_error("uncached block {} is on the LRU", i);
    if (cached) {
      const auto it = index_.find(keys_[b].hash);
      if (it == index_.end() || it->second != i) {
        return make_error("cached block {} is not indexed under its hash", i);
      }
      if (cache_ids_[b] >= next_cache_id_) return make_error("block {} has a future cache id", i);
    }
  }
  for (const auto& [hash, block] : index_) {
    if (block < 0 || block >= n || cache_ids_[static_cast<size_t>(block)] == 0 ||
        keys_[static_cast<size_t>(block)].hash != hash) {
      return make_error("prefix index entry {:#x} -> {} is stale", hash, block);
    }
  }
  return Status::success();
}

}  // namespace moon
