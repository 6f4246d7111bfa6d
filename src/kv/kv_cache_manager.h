// The only KV surface the scheduler sees: which blocks each sequence's tokens live in.
// Pure bookkeeping over a BlockPool; K/V bytes live in KvStorage, which only executes the
// block copies this class asks for.
//
// A sequence (any uint64_t id) owns a block table: token i of the sequence sits in slot
// table[i / block_size] * block_size + i % block_size. The manager tracks num_tokens, the
// tokens that have a slot (computed, or being computed by the step just scheduled), and keeps
// exactly ceil(num_tokens / block_size) blocks, so a sequence wastes less than one block.
//
// Blocks are shared: fork() gives a child every block of its parent (parallel sampling, beam
// search), and match_prefix() attaches full blocks another sequence computed before (prefix
// caching). Shared blocks are never written: when a sequence is about to write into a
// partially filled block someone else also holds, allocate_slots() gives it a private copy
// (copy-on-write) and queues the copy for the storage to run before the next forward.
//
// One step, from the scheduler's side:
//   new sequence:  match_prefix(id, prompt)              -> tokens already cached
//                  num_blocks_needed_for(id, n), can_allocate(blocks) (admission, watermark)
//   every step:    allocate_slots(id, tokens, n)          (false: preempt someone, retry)
//                  storage.copy_blocks(take_pending_copies()); forward
//   after a step:  commit_full_blocks(id, tokens)        (full blocks enter the prefix cache)
//   finished:      free(id)
//
// Not thread-safe: one owner (the engine thread) calls everything. Violated preconditions are
// programming errors and abort; running out of blocks is an ordinary false return.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kv/block_hash.h"
#include "kv/block_pool.h"
#include "tensor/kv_layout.h"
#include "util/result.h"

namespace moon {

struct KvStats {
  int64_t num_blocks_total = 0;
  int64_t num_blocks_free = 0;         // allocatable: never-cached plus cached-free
  int64_t num_blocks_used = 0;         // ref > 0
  int64_t num_blocks_cached = 0;       // in the prefix cache, referenced or not
  int64_t num_blocks_cached_free = 0;  // cached and unreferenced (the LRU; evicted on demand)
  double usage = 0.0;                  // used / total
  int64_t num_sequences = 0;

  int64_t num_prefix_queries = 0;       // match_prefix calls with caching on
  int64_t num_prefix_query_tokens = 0;  // prompt tokens those calls looked up
  int64_t num_prefix_hit_tokens = 0;    // of which were found cached
  double prefix_hit_rate = 0.0;         // hit tokens / query tokens (0 before any query)

  // Waste: slots of used blocks that hold no token (a shared block counts once).
  int64_t num_slots_used = 0;     // used blocks * block_size
  int64_t num_tokens_stored = 0;  // distinct filled slots in used blocks
};

class KvCacheManager {
 public:
  struct Options {
    // Fraction of all blocks can_allocate() keeps free, so that admitted sequences can still
    // grow by a few decode steps before anything must be preempted.
    double watermark = 0.01;
    // The prefix-cache hash; empty = hash_block_tokens (keyed SipHash). Tests inject weak
    // ones to force collisions.
    BlockHashFn hash_fn;
    // A sequence freed with its tokens offers its partially filled last block to the prefix
    // cache too, and match_prefix attaches such a block when a prompt continues it. A
    // request that extends one that ended (beam search's next round, a chat's next turn)
    // then recomputes nothing. The block is shared like any other: the first write into it
    // by a sequence that does not hold it alone is a copy-on-write, and writing in place
    // past its cached tokens leaves those slots as they were.
    bool cache_partial_blocks = false;
  };

  // Preconditions: 0 < num_blocks <= INT32_MAX, block_size > 0, 0 <= watermark < 1.
  KvCacheManager(int64_t num_blocks, int64_t block_size, bool enable_prefix_caching);
  KvCacheManager(int64_t num_blocks, int64_t block_size, bool enable_prefix_caching,
                 Options options);

  int64_t block_size() const { return block_size_; }
  int64_t num_blocks() const { return pool_.num_blocks(); }
  bool prefix_caching_enabled() const { return enable_prefix_caching_; }

  // Starts sequence `seq_id` and attaches the cached blocks that hold its longest cached
  // block-aligned prefix (then, with cache_partial_blocks, a cached partial block that
  // continues it); returns how many leading tokens those cover (they need no recompute). At
  // most (prompt size - 1) tokens match, so the last prompt token is always computed: a fully
  // cached prompt still needs its logits.
  // `extra_key` is part of every block's identity (adapter id, multimodal hash; 0 for none).
  // Always 0 with prefix caching off. Precondition: the sequence is unknown or empty.
  int64_t match_prefix(uint64_t seq_id, std::span<const int32_t> prompt, uint64_t extra_key = 0);

  // Gives the sequence slots for its next num_new_tokens tokens (num_tokens grows by that),
  // copying a shared partially filled last block first (see take_pending_copies). All or
  // nothing: false, with no change at all, when the pool cannot supply the blocks. No
  // watermark: this is for admitted work. An unknown seq_id starts a sequence (extra key 0).
  // Precondition: num_tokens(seq_id) + num_new_tokens <= tokens.size() (the tokens so far,
  // prompt then generated; the new ones included), num_new_tokens >= 0.
  bool allocate_slots(uint64_t seq_id, std::span<const int32_t> tokens, int64_t num_new_tokens);

  // Copy-on-write block copies (src, dst) queued since the last call. The storage must run
  // them, in order, for every layer, before the forward that writes into dst.
  std::vector<std::pair<BlockId, BlockId>> take_pending_copies();

  // After a step has written the K/V of the sequence's tokens: offers every block that has
  // become full to the prefix cache. `tokens` as for allocate_slots. No-op with caching off.
  void commit_full_blocks(uint64_t seq_id, std::span<const int32_t> tokens);

  // child shares every block of parent (and its token count and cache chain).
  // Preconditions: parent exists; child is unknown.
  void fork(uint64_t parent_seq_id, uint64_t child_seq_id);

  // Releases every block of the sequence and forgets it; cached blocks go to the LRU, last
  // block first, so a prefix's tail is evicted before its head. Unknown ids are ignored.
  // With cache_partial_blocks and the sequence's `tokens` (every slotted one computed), its
  // partially filled last block is offered to the cache first.
  void free(uint64_t seq_id, std::span<const int32_t> tokens = {});

  bool has_sequence(uint64_t seq_id) const { return sequences_.contains(seq_id); }
  // Empty for an unknown sequence. The reference lives until free(seq_id).
  const std::vector<BlockId>& block_table(uint64_t seq_id) const;
  int64_t num_tokens(uint64_t seq_id) const;
  // Slot of token `position`; precondition: position < num_tokens(seq_id).
  int64_t slot(uint64_t seq_id, int64_t position) const;

  // Blocks allocate_slots(seq_id, ..., num_new_tokens) would take from the pool, counting a
  // copy-on-write; for an unknown sequence, the blocks num_new_tokens tokens fill.
  int64_t num_blocks_needed_for(uint64_t seq_id, int64_t num_new_tokens) const;
  // Admission check: whether num_blocks can be allocated and still leave the watermark free.
  bool can_allocate(int64_t num_blocks) const;
  int64_t num_free_blocks() const { return pool_.num_free(); }
  int64_t num_watermark_blocks() const { return num_watermark_blocks_; }

  // O(blocks in all tables): fine per step for metrics, not per token.
  KvStats stats() const;
  // Every block's ref count equals the number of tables holding it (nothing leaked or
  // double-freed); each table has ceil(num_tokens / block_size) distinct blocks; pending
  // copies target live blocks; plus BlockPool::check_invariants.
  Status check_invariants() const;

  const BlockPool& pool() const { return pool_; }

 private:
  struct Sequence {
    std::vector<BlockId> blocks;
    int64_t num_tokens = 0;
    uint64_t extra_key = 0;
    // Leading full blocks already offered to the prefix cache.
    int64_t num_blocks_committed = 0;
    // Hash of block num_blocks_committed - 1, and the live cache entry with the same
    // content (this sequence's own block or an identical one another sequence registered):
    // the parent of the next block to register.
    BlockHash chain_hash = kRootBlockHash;
    BlockId chain_block = -1;
    uint64_t chain_cache_id = 0;
    // Some committed block could not be cached, so no later one can be found either.
    bool chain_broken = false;
  };

  Sequence& sequence(uint64_t seq_id);
  const Sequence* find_sequence(uint64_t seq_id) const;
  int64_t num_new_blocks(const Sequence& seq, int64_t num_new_tokens) const;
  bool needs_copy_on_write(const Sequence& seq, int64_t num_new_tokens) const;
  BlockPool::BlockKey key_after(const Sequence& seq, std::span<const int32_t> tokens) const;
  void match_partial_block(Sequence& seq, std::span<const int32_t> prompt);
  void offer_partial_block(const Sequence& seq, std::span<const int32_t> tokens);
  bool is_partial_entry(BlockId block) const {
    return pool_.cache_id(block) != 0 &&
           static_cast<int64_t>(pool_.cached_key(block).tokens.size()) < block_size_;
  }
  BlockHash hash(BlockHash parent, std::span<const int32_t> tokens, uint64_t extra_key) const;

  int64_t block_size_;
  bool enable_prefix_caching_;
  bool cache_partial_blocks_;
  BlockHashFn hash_fn_;
  int64_t num_watermark_blocks_;
  BlockPool pool_;
  std::unordered_map<uint64_t, Sequence> sequences_;
  std::vector<std::pair<BlockId, BlockId>> pending_copies_;
  int64_t num_prefix_queries_ = 0;
  int64_t num_prefix_query_tokens_ = 0;
  int64_t num_prefix_hit_tokens_ = 0;
};

}  // namespace moon
