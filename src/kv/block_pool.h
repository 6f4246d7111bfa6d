// Every KV block's metadata: reference counts, the free list, and the prefix cache (which
// full blocks hold which content, and an LRU of cached blocks no sequence references).
// Decides nothing about sequences and never touches K/V bytes (KvStorage owns those).
//
// A block is always in exactly one of three states:
//   free     ref 0, uncached, on the free list
//   cached   ref 0, registered in the prefix cache, on the LRU (evictable, still reusable)
//   in use   ref > 0 (cached or not)
// allocate() takes from the free list and evicts the least recently released cached block
// only when the free list is empty, so cached content survives as long as memory allows.
// Every operation is O(1) (registering and hit lookups also hash/compare one block's tokens).
//
// Not thread-safe: owned by the KvCacheManager on the engine thread. Violated preconditions
// (releasing a free block, retaining an uncached free one) are programming errors and abort.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/block_hash.h"
#include "tensor/kv_layout.h"
#include "util/result.h"

namespace moon {

class BlockPool {
 public:
  // The identity of a full block's content. A lookup by hash only proposes a block: every
  // field must match for it to be reused.
  struct BlockKey {
    BlockHash hash = 0;
    BlockHash parent_hash = kRootBlockHash;
    // cache_id of the parent entry this block was computed after (0 for a first block).
    // Cache ids are never reused, so matching it proves, block by block back to the first,
    // that the whole prefix is the same content, even if another prefix shares a hash.
    uint64_t parent_cache_id = 0;
    uint64_t extra_key = 0;
    std::span<const int32_t> tokens;
  };
  // What the cache stores per cached block to confirm hits (its own copy of the tokens).
  struct CachedKey {
    BlockHash hash = 0;
    BlockHash parent_hash = kRootBlockHash;
    uint64_t parent_cache_id = 0;
    uint64_t extra_key = 0;
    std::vector<int32_t> tokens;
  };

  // Precondition: 0 < num_blocks <= INT32_MAX.
  explicit BlockPool(int64_t num_blocks);

  int64_t num_blocks() const { return static_cast<int64_t>(ref_counts_.size()); }
  // Blocks allocate() can hand out: free plus cached-unreferenced (evictable).
  int64_t num_free() const { return static_cast<int64_t>(free_list_.size()) + num_lru_; }
  int64_t num_cached_free() const { return num_lru_; }
  int64_t num_used() const { return num_blocks() - num_free(); }
  // Blocks registered in the prefix cache, referenced or not.
  int64_t num_cached() const { return static_cast<int64_t>(index_.size()); }

  // One block with ref count 1, uncached; nullopt when every block is in use.
  std::optional<BlockId> allocate();
  // n blocks, or none at all (nothing is evicted when it fails).
  std::optional<std::vector<BlockId>> allocate(int64_t n);

  // ref += 1. A cached block at ref 0 leaves the LRU (a prefix hit revives it).
  // Precondition: the block is in use or cached.
  void retain(BlockId block);
  // ref -= 1. At 0 a cached block goes to the LRU's most-recent end; others to the free list.
  // Precondition: ref > 0.
  void release(BlockId block);
  int32_t ref_count(BlockId block) const { return ref_counts_[static_cast<size_t>(block)]; }

  // --- prefix cache ---
  struct Hit {
    BlockId block;
    uint64_t cache_id;
  };
  // The cached block whose key equals `key` field by field (hash, parent hash, parent cache
  // id, extra key, tokens); nullopt on a miss or a hash collision.
  std::optional<Hit> find(const BlockKey& key) const;
  // Any block registered under `hash`, confirmed or not.
  std::optional<BlockId> find_hash(BlockHash hash) const;
  // Registers an in-use, uncached block under key.hash and returns its new cache id (> 0,
  // never reused). A different block already registered under that hash is uncached first:
  // the newest content wins a collision, and hits still confirm the full key.
  uint64_t register_block(BlockId block, const BlockKey& key);
  // Drops a block from the prefix cache (a cached-free one moves to the free list).
  void uncache(BlockId block);
  // 0 when the block is not cached.
  uint64_t cache_id(BlockId block) const { return cache_ids_[static_cast<size_t>(block)]; }
  // The registered key; precondition: cache_id(block) != 0.
  const CachedKey& cached_key(BlockId block) const { return keys_[static_cast<size_t>(block)]; }

  // Blocks in eviction order (least recently released first); for tests and diagnostics.
  std::vector<BlockId> lru_order() const;

  // Free list, LRU and in-use blocks are disjoint and cover every block; each state's ref
  // counts and cache flags agree; the hash index and the per-block keys agree.
  Status check_invariants() const;

 private:
  static constexpr BlockId kNone = -1;

  void lru_push_back(BlockId block);
  void lru_remove(BlockId block);
  // The block's entry leaves the index; the caller decides where the block goes.
  void drop_from_index(BlockId block);

  std::vector<int32_t> ref_counts_;  // [num_blocks]
  std::vector<BlockId> free_list_;   // stack of free, uncached blocks
  // Intrusive doubly linked LRU over block ids: O(1) push, pop and removal from the middle.
  std::vector<BlockId> lru_prev_, lru_next_;  // [num_blocks]
  BlockId lru_head_ = kNone, lru_tail_ = kNone;
  int64_t num_lru_ = 0;

  std::vector<uint64_t> cache_ids_;  // [num_blocks], 0 = uncached
  std::vector<CachedKey> keys_;      // [num_blocks], meaningful where cached
  std::unordered_map<BlockHash, BlockId> index_;
  uint64_t next_cache_id_ = 1;
};

}  // namespace moon
