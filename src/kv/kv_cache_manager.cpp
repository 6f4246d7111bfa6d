#include "kv/kv_cache_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "util/check.h"

namespace moon {
namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

int64_t checked_block_size(int64_t block_size) {
  MOON_CHECK(block_size > 0, "KvCacheManager: block_size {} must be positive", block_size);
  return block_size;
}

}  // namespace

KvCacheManager::KvCacheManager(int64_t num_blocks, int64_t block_size, bool enable_prefix_caching)
    : KvCacheManager(num_blocks, block_size, enable_prefix_caching, Options{}) {}

KvCacheManager::KvCacheManager(int64_t num_blocks, int64_t block_size, bool enable_prefix_caching,
                               Options options)
    : block_size_(checked_block_size(block_size)),
      enable_prefix_caching_(enable_prefix_caching),
      cache_partial_blocks_(enable_prefix_caching && options.cache_partial_blocks),
      hash_fn_(std::move(options.hash_fn)),
      num_watermark_blocks_(0),
      pool_(num_blocks) {
  MOON_CHECK(options.watermark >= 0.0 && options.watermark < 1.0,
             "KvCacheManager: watermark {} must be in [0, 1)", options.watermark);
  num_watermark_blocks_ = static_cast<int64_t>(options.watermark * static_cast<double>(num_blocks));
}

BlockHash KvCacheManager::hash(BlockHash parent, std::span<const int32_t> tokens,
                               uint64_t extra_key) const {
  return hash_fn_ ? hash_fn_(parent, tokens, extra_key)
                  : hash_block_tokens(parent, tokens, extra_key);
}

KvCacheManager::Sequence& KvCacheManager::sequence(uint64_t seq_id) {
  const auto it = sequences_.find(seq_id);
  MOON_CHECK(it != sequences_.end(), "KvCacheManager: unknown sequence {}", seq_id);
  return it->second;
}

const KvCacheManager::Sequence* KvCacheManager::find_sequence(uint64_t seq_id) const {
  const auto it = sequences_.find(seq_id);
  return it == sequences_.end() ? nullptr : &it->second;
}

int64_t KvCacheManager::match_prefix(uint64_t seq_id, std::span<const int32_t> prompt,
                                     uint64_t extra_key) {
  Sequence& seq = sequences_[seq_id];
  MOON_CHECK(seq.blocks.empty() && seq.num_tokens == 0,
             "KvCacheManager: match_prefix on sequence {} that already has tokens", seq_id);
  seq = Sequence{};
  seq.extra_key = extra_key;
  if (!enable_prefix_caching_) return 0;

  ++num_prefix_queries_;
  num_prefix_query_tokens_ += static_cast<int64_t>(prompt.size());
  const int64_t max_blocks =
      prompt.empty() ? 0 : (static_cast<int64_t>(prompt.size()) - 1) / block_size_;
  for (int64_t j = 0; j < max_blocks; ++j) {
    BlockPool::BlockKey key;
    key.tokens =
        prompt.subspan(static_cast<size_t>(j * block_size_), static_cast<size_t>(block_size_));
    key.parent_hash = seq.chain_hash;
    key.parent_cache_id = seq.chain_cache_id;
    key.extra_key = extra_key;
    key.hash = hash(key.parent_hash, key.tokens, extra_key);
    const auto hit = pool_.find(key);
    if (!hit) break;
    pool_.retain(hit->block);
    seq.blocks.push_back(hit->block);
    seq.chain_hash = key.hash;
    seq.chain_block = hit->block;
    seq.chain_cache_id = hit->cache_id;
  }
  seq.num_blocks_committed = static_cast<int64_t>(seq.blocks.size());
  seq.num_tokens = seq.num_blocks_committed * block_size_;
  if (cache_partial_blocks_) match_partial_block(seq, prompt);
  num_prefix_hit_tokens_ += seq.num_tokens;
  return seq.num_tokens;
}

// The key of the block after the sequence's committed chain, holding `tokens`.
BlockPool::BlockKey KvCacheManager::key_after(const Sequence& seq,
                                              std::span<const int32_t> tokens) const {
  BlockPool::BlockKey key;
  key.tokens = tokens;
  key.parent_hash = seq.chain_hash;
  key.parent_cache_id = seq.chain_cache_id;
  key.extra_key = seq.extra_key;
  key.hash = hash(key.parent_hash, key.tokens, key.extra_key);
  return key;
}

void KvCacheManager::match_partial_block(Sequence& seq, std::span<const int32_t> prompt) {
  // A partial entry holds exactly the tokens its sequence had computed, so only a length
  // that is in the prompt can match; the longest is tried first.
  const int64_t start = seq.num_tokens;
  const int64_t limit =
      std::min<int64_t>(block_size_ - 1, static_cast<int64_t>(prompt.size()) - 1 - start);
  for (int64_t k = limit; k >= 1; --k) {
    const auto hit = pool_.find(
        key_after(seq, prompt.subspan(static_cast<size_t>(start), static_cast<size_t>(k))));
    if (!hit) continue;
    pool_.retain(hit->block);
    seq.blocks.push_back(hit->block);
    seq.num_tokens = start + k;
    return;
  }
}

void KvCacheManager::offer_partial_block(const Sequence& seq, std::span<const int32_t> tokens) {
  const int64_t k = seq.num_tokens % block_size_;
  const int64_t num_full = seq.num_tokens / block_size_;
  // Its key names the chain of full blocks before it, which must all be in the cache still.
  if (k == 0 || seq.chain_broken || seq.num_blocks_committed != num_full ||
      static_cast<int64_t>(tokens.size()) < seq.num_tokens) {
    return;
  }
  if (seq.chain_cache_id != 0 && pool_.cache_id(seq.chain_block) != seq.chain_cache_id) return;
  const BlockId block = seq.blocks.back();
  if (pool_.cache_id(block) != 0) {
    if (pool_.ref_count(block) > 1) return;  // others hold it as it is cached
    pool_.uncache(block);                    // the entry it was attached by: this one is longer
  }
  pool_.register_block(block,
                       key_after(seq, tokens.subspan(static_cast<size_t>(num_full * block_size_),
                                                     static_cast<size_t>(k))));
}

int64_t KvCacheManager::num_new_blocks(const Sequence& seq, int64_t num_new_tokens) const {
  return ceil_div(seq.num_tokens + num_new_tokens, block_size_) -
         static_cast<int64_t>(seq.blocks.size());
}

bool KvCacheManager::needs_copy_on_write(const Sequence& seq, int64_t num_new_tokens) const {
  // Only a partially filled last block is ever written again; full blocks are immutable.
  return num_new_tokens > 0 && seq.num_tokens % block_size_ != 0 &&
         pool_.ref_count(seq.blocks.back()) > 1;
}

bool KvCacheManager::allocate_slots(uint64_t seq_id, std::span<const int32_t> tokens,
                                    int64_t num_new_tokens) {
  const auto [it, created] = sequences_.try_emplace(seq_id);
  Sequence& seq = it->second;
  MOON_CHECK(
      num_new_tokens >= 0 && seq.num_tokens + num_new_tokens <= static_cast<int64_t>(tokens.size()),
      "KvCacheManager: allocate_slots(seq {}, {} tokens known, {} new) with {} already slotted",
      seq_id, tokens.size(), num_new_tokens, seq.num_tokens);
  const bool copy = needs_copy_on_write(seq, num_new_tokens);
  const int64_t num_fresh = num_new_blocks(seq, num_new_tokens);
  auto blocks = pool_.allocate(num_fresh + (copy ? 1 : 0));
  if (!blocks) {
    if (created) sequences_.erase(it);
    return false;
  }

  auto next = blocks->begin();
  if (copy) {
    const BlockId shared = seq.blocks.back();
    pending_copies_.emplace_back(shared, *next);
    seq.blocks.back() = *next++;
    pool_.release(shared);
  }
  seq.blocks.insert(seq.blocks.end(), next, blocks->end());
  seq.num_tokens += num_new_tokens;
  return true;
}

std::vector<std::pair<BlockId, BlockId>> KvCacheManager::take_pending_copies() {
  return std::exchange(pending_copies_, {});
}

void KvCacheManager::commit_full_blocks(uint64_t seq_id, std::span<const int32_t> tokens) {
  Sequence& seq = sequence(seq_id);
  MOON_CHECK(seq.num_tokens <= static_cast<int64_t>(tokens.size()),
             "KvCacheManager: commit_full_blocks(seq {}) with {} tokens but {} slotted", seq_id,
             tokens.size(), seq.num_tokens);
  const int64_t num_full = seq.num_tokens / block_size_;
  if (!enable_prefix_caching_ || seq.chain_broken) {
    seq.num_blocks_committed = num_full;
    return;
  }
  for (int64_t j = seq.num_blocks_committed; j < num_full; ++j) {
    // The parent entry may have been evicted or displaced since: then this block's key
    // could never be matched, so stop caching this sequence.
    if (seq.chain_cache_id != 0 && pool_.cache_id(seq.chain_block) != seq.chain_cache_id) {
      seq.chain_broken = true;
      break;
    }
    const BlockId block = seq.blocks[static_cast<size_t>(j)];
    BlockPool::BlockKey key;
    key.tokens =
        tokens.subspan(static_cast<size_t>(j * block_size_), static_cast<size_t>(block_size_));
    key.parent_hash = seq.chain_hash;
    key.parent_cache_id = seq.chain_cache_id;
    key.extra_key = seq.extra_key;
    key.hash = hash(key.parent_hash, key.tokens, key.extra_key);
    uint64_t cache_id;
    if (const auto hit = pool_.find(key)) {
      // This block itself (a forked sibling registered it) or an identical one computed by
      // another sequence: either way the chain continues from the cached entry, and a
      // duplicate stays uncached.
      seq.chain_block = hit->block;
      cache_id = hit->cache_id;
    } else if (pool_.cache_id(block) == 0 || is_partial_entry(block)) {
      // A block attached as a cached partial block and filled in place: its entry named
      // fewer tokens than it now holds.
      if (pool_.cache_id(block) != 0) pool_.uncache(block);
      cache_id = pool_.register_block(block, key);
      seq.chain_block = block;
    } else {
      // Cached under another chain (a sibling's, since displaced): leave it alone.
      seq.chain_broken = true;
      break;
    }
    seq.chain_hash = key.hash;
    seq.chain_cache_id = cache_id;
  }
  seq.num_blocks_committed = num_full;
}

void KvCacheManager::fork(uint64_t parent_seq_id, uint64_t child_seq_id) {
  MOON_CHECK(parent_seq_id != child_seq_id && !sequences_.contains(child_seq_id),
             "KvCacheManager: fork into existing sequence {}", child_seq_id);
  Sequence child = sequence(parent_seq_id);
  for (const BlockId block : child.blocks) pool_.retain(block);
  sequences_.emplace(child_seq_id, std::move(child));
}

void KvCacheManager::free(uint64_t seq_id, std::span<const int32_t> tokens) {
  const auto it = sequences_.find(seq_id);
  if (it == sequences_.end()) return;
  if (cache_partial_blocks_ && !tokens.empty()) offer_partial_block(it->second, tokens);
  const std::vector<BlockId>& blocks = it->second.blocks;
  for (auto block = blocks.rbegin(); block != blocks.rend(); ++block) pool_.release(*block);
  sequences_.erase(it);
  // A copy into a block nobody holds any more is wasted work, and the block may be handed out
  // again before the copies run.
  std::erase_if(pending_copies_,
                [this](const auto& copy) { return pool_.ref_count(copy.second) == 0; });
}

const std::vector<BlockId>& KvCacheManager::block_table(uint64_t seq_id) const {
  static const std::vector<BlockId> kEmpty;
  const Sequence* seq = find_sequence(seq_id);
  return seq ? seq->blocks : kEmpty;
}

int64_t KvCacheManager::num_tokens(uint64_t seq_id) const {
  const Sequence* seq = find_sequence(seq_id);
  return seq ? seq->num_tokens : 0;
}

int64_t KvCacheManager::slot(uint64_t seq_id, int64_t position) const {
  const Sequence* seq = find_sequence(seq_id);
  MOON_CHECK(seq && position >= 0 && position < seq->num_tokens,
             "KvCacheManager: slot of position {} in sequence {} outside its tokens", position,
             seq_id);
  return static_cast<int64_t>(seq->blocks[static_cast<size_t>(position / block_size_)]) *
             block_size_ +
         position % block_size_;
}

int64_t KvCacheManager::num_blocks_needed_for(uint64_t seq_id, int64_t num_new_tokens) const {
  const Sequence* seq = find_sequence(seq_id);
  if (!seq) return ceil_div(num_new_tokens, block_size_);
  return num_new_blocks(*seq, num_new_tokens) + (needs_copy_on_write(*seq, num_new_tokens) ? 1 : 0);
}

bool KvCacheManager::can_allocate(int64_t num_blocks) const {
  return pool_.num_free() - num_blocks >= num_watermark_blocks_;
}

KvStats KvCacheManager::stats() const {
  KvStats s;
  s.num_blocks_total = pool_.num_blocks();
  s.num_blocks_free = pool_.num_free();
  s.num_blocks_used = pool_.num_used();
  s.num_blocks_cached = pool_.num_cached();
  s.num_blocks_cached_free = pool_.num_cached_free();
  s.usage = static_cast<double>(s.num_blocks_used) / static_cast<double>(s.num_blocks_total);
  s.num_sequences = static_cast<int64_t>(sequences_.size());
  s.num_prefix_queries = num_prefix_queries_;
  s.num_prefix_query_tokens = num_prefix_query_tokens_;
  s.num_prefix_hit_tokens = num_prefix_hit_tokens_;
  if (num_prefix_query_tokens_ > 0) {
    s.prefix_hit_rate =
        static_cast<double>(num_prefix_hit_tokens_) / static_cast<double>(num_prefix_query_tokens_);
  }
  s.num_slots_used = s.num_blocks_used * block_size_;
  // Sharers of a block agree on its leading tokens, so its fill is the largest any has.
  std::vector<int32_t> filled(static_cast<size_t>(pool_.num_blocks()), 0);
  for (const auto& [id, seq] : sequences_) {
    for (size_t j = 0; j < seq.blocks.size(); ++j) {
      const int64_t in_block =
          std::min<int64_t>(block_size_, seq.num_tokens - static_cast<int64_t>(j) * block_size_);
      int32_t& f = filled[static_cast<size_t>(seq.blocks[j])];
      f = std::max(f, static_cast<int32_t>(in_block));
    }
  }
  for (const int32_t f : filled) s.num_tokens_stored += f;
  return s;
}

Status KvCacheManager::check_invariants() const {
  MOON_TRY(pool_.check_invariants());
  std::vector<int32_t> holders(static_cast<size_t>(pool_.num_blocks()), 0);
  for (const auto& [id, seq] : sequences_) {
    if (seq.num_tokens < 0) return make_error("sequence {} has {} tokens", id, seq.num_tokens);
    const int64_t expected = ceil_div(seq.num_tokens, block_size_);
    if (static_cast<int64_t>(seq.blocks.size()) != expected) {
      return make_error("sequence {} has {} tokens in {} blocks, expected {}", id, seq.num_tokens,
                        seq.blocks.size(), expected);
    }
    if (seq.num_blocks_committed > seq.num_tokens / block_size_) {
      return make_error("sequence {} committed {} blocks but has {} full", id,
                        seq.num_blocks_committed, seq.num_tokens / block_size_);
    }
    for (const BlockId block : seq.blocks) {
      if (block < 0 || block >= pool_.num_blocks()) {
        return make_error("sequence {} holds invalid block {}", id, block);
      }
      ++holders[static_cast<size_t>(block)];
    }
    std::vector<BlockId> sorted = seq.blocks;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return make_error("sequence {} holds a block twice", id);
    }
  }
  for (BlockId b = 0; b < pool_.num_blocks(); ++b) {
    if (pool_.ref_count(b) != holders[static_cast<size_t>(b)]) {
      return make_error("block {} has ref count {} but {} tables hold it", b, pool_.ref_count(b),
                        holders[static_cast<size_t>(b)]);
    }
  }
  for (const auto& [src, dst] : pending_copies_) {
    if (src == dst || pool_.ref_count(dst) == 0) {
      return make_error("pending copy {} -> {} targets a free block", src, dst);
    }
  }
  if (!enable_prefix_caching_ && pool_.num_cached() != 0) {
    return make_error("{} blocks cached with prefix caching off", pool_.num_cached());
  }
  return Status::success();
}

}  // namespace moon
