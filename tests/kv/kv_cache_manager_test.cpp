#include "kv/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <numeric>
#include <utility>
#include <vector>

namespace moon {
namespace {

using Copies = std::vector<std::pair<BlockId, BlockId>>;

void expect_ok(const KvCacheManager& kv) {
  const Status status = kv.check_invariants();
  EXPECT_TRUE(status.ok()) << status.error().message;
}

std::vector<int32_t> iota_tokens(int n, int32_t first = 1) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

// Gives sequence 1 the first n of `tokens`, then forks it into sequence 2, which shares all
// its blocks. False if the allocation failed.
bool allocate_and_fork(KvCacheManager& kv, const std::vector<int32_t>& tokens, int64_t n) {
  if (!kv.allocate_slots(1, tokens, n)) return false;
  kv.fork(1, 2);
  return true;
}

TEST(KvCacheManagerTest, TableHoldsCeilTokensOverBlockSize) {
  KvCacheManager kv(16, 4, false);
  const auto tokens = iota_tokens(13);
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 10));
  EXPECT_EQ(kv.block_table(1).size(), 3u);
  EXPECT_EQ(kv.num_tokens(1), 10);
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 2));
  EXPECT_EQ(kv.block_table(1).size(), 3u);
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 1));
  EXPECT_EQ(kv.block_table(1).size(), 4u);
  const auto& table = kv.block_table(1);
  for (int64_t p = 0; p < 13; ++p) {
    EXPECT_EQ(kv.slot(1, p), table[static_cast<size_t>(p / 4)] * 4 + p % 4);
  }
  EXPECT_TRUE(kv.allocate_slots(1, tokens, 0));
  expect_ok(kv);
  kv.free(1);
  EXPECT_FALSE(kv.has_sequence(1));
  EXPECT_EQ(kv.num_free_blocks(), 16);
  kv.free(1);  // unknown ids are ignored
  expect_ok(kv);
}

TEST(KvCacheManagerTest, AllocationIsAllOrNothing) {
  KvCacheManager kv(4, 4, false);
  const auto tokens = iota_tokens(20);
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 10));  // 3 blocks
  EXPECT_FALSE(kv.allocate_slots(2, tokens, 8));  // needs 2, 1 free
  EXPECT_FALSE(kv.has_sequence(2));
  EXPECT_EQ(kv.num_free_blocks(), 1);
  EXPECT_FALSE(kv.allocate_slots(1, tokens, 7));  // needs 2 more
  EXPECT_EQ(kv.num_tokens(1), 10);
  EXPECT_EQ(kv.block_table(1).size(), 3u);
  EXPECT_TRUE(kv.allocate_slots(1, tokens, 6));  // fills the 4th block exactly
  EXPECT_EQ(kv.num_free_blocks(), 0);
  expect_ok(kv);
}

TEST(KvCacheManagerTest, ForkThenAppendCopiesTheSharedLastBlockOnceForTheWriter) {
  KvCacheManager kv(8, 4, false);
  auto parent_tokens = iota_tokens(6);
  ASSERT_TRUE(allocate_and_fork(kv, parent_tokens, 6));  // blocks [b0, b1], b1 half full
  const std::vector<BlockId> shared = kv.block_table(1);
  EXPECT_EQ(kv.block_table(2), shared);
  EXPECT_EQ(kv.pool().ref_count(shared[1]), 2);
  EXPECT_EQ(kv.num_blocks_needed_for(1, 1), 1);  // the copy
  expect_ok(kv);

  auto child_tokens = parent_tokens;
  parent_tokens.push_back(100);
  child_tokens.push_back(200);
  ASSERT_TRUE(kv.allocate_slots(1, parent_tokens, 1));
  const BlockId copy = kv.block_table(1)[1];
  EXPECT_NE(copy, shared[1]);
  EXPECT_EQ(kv.block_table(1)[0], shared[0]);  // the full block stays shared
  EXPECT_EQ(kv.pool().ref_count(shared[0]), 2);
  EXPECT_EQ(kv.pool().ref_count(shared[1]), 1);
  EXPECT_EQ(kv.num_blocks_needed_for(2, 1), 0);  // the child now owns b1 alone
  ASSERT_TRUE(kv.allocate_slots(2, child_tokens, 1));
  EXPECT_EQ(kv.block_table(2), shared);
  EXPECT_EQ(kv.take_pending_copies(), (Copies{{shared[1], copy}}));
  EXPECT_TRUE(kv.take_pending_copies().empty());
  expect_ok(kv);
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.num_free_blocks(), 8);
  expect_ok(kv);
}

TEST(KvCacheManagerTest, ForkAtABlockBoundaryCopiesNothing) {
  KvCacheManager kv(8, 4, false);
  const auto tokens = iota_tokens(9);
  ASSERT_TRUE(allocate_and_fork(kv, tokens, 8));
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 1));
  ASSERT_TRUE(kv.allocate_slots(2, tokens, 1));
  EXPECT_TRUE(kv.take_pending_copies().empty());
  EXPECT_EQ(kv.stats().num_blocks_used, 4);  // 2 shared + 1 each
  expect_ok(kv);
}

TEST(KvCacheManagerTest, CopiesIntoFreedBlocksAreDropped) {
  KvCacheManager kv(8, 4, false);
  const auto tokens = iota_tokens(8);
  ASSERT_TRUE(allocate_and_fork(kv, tokens, 6));
  ASSERT_TRUE(kv.allocate_slots(2, tokens, 1));  // the child copies
  kv.free(2);                                    // aborted before the step ran
  EXPECT_TRUE(kv.take_pending_copies().empty());
  expect_ok(kv);
}

TEST(KvCacheManagerTest, WatermarkKeepsBlocksFreeAtAdmission) {
  KvCacheManager::Options options;
  options.watermark = 0.05;
  KvCacheManager kv(100, 16, false, options);
  EXPECT_EQ(kv.num_watermark_blocks(), 5);
  EXPECT_TRUE(kv.can_allocate(95));
  EXPECT_FALSE(kv.can_allocate(96));
  EXPECT_EQ(kv.num_blocks_needed_for(7, 33), 3);  // unknown sequence: 33 tokens
  EXPECT_EQ(kv.num_blocks_needed_for(7, 0), 0);
}

class PrefixCacheTest : public ::testing::Test {
 protected:
  // Runs a whole prompt through: match, allocate the rest, commit.
  int64_t prefill(KvCacheManager& kv, uint64_t id, const std::vector<int32_t>& prompt,
                  uint64_t extra_key = 0) {
    const int64_t hit = kv.match_prefix(id, prompt, extra_key);
    EXPECT_TRUE(kv.allocate_slots(id, prompt, static_cast<int64_t>(prompt.size()) - hit));
    kv.commit_full_blocks(id, prompt);
    expect_ok(kv);
    return hit;
  }
};

TEST_F(PrefixCacheTest, SecondSequenceReusesFullBlocksAndCountsTheHitRate) {
  KvCacheManager kv(16, 4, true);
  const auto prompt = iota_tokens(10);
  EXPECT_EQ(prefill(kv, 1, prompt), 0);
  EXPECT_EQ(kv.stats().num_blocks_cached, 2);  // the two full blocks
  const std::vector<BlockId> first = kv.block_table(1);
  kv.free(1);
  EXPECT_EQ(kv.stats().num_blocks_cached_free, 2);

  EXPECT_EQ(kv.match_prefix(2, prompt), 8);
  EXPECT_EQ(kv.num_tokens(2), 8);
  EXPECT_EQ(kv.block_table(2), (std::vector<BlockId>{first[0], first[1]}));
  EXPECT_EQ(kv.stats().num_blocks_cached_free, 0);  // revived from the LRU
  ASSERT_TRUE(kv.allocate_slots(2, prompt, 2));
  expect_ok(kv);

  const KvStats stats = kv.stats();
  EXPECT_EQ(stats.num_prefix_queries, 2);
  EXPECT_EQ(stats.num_prefix_query_tokens, 20);
  EXPECT_EQ(stats.num_prefix_hit_tokens, 8);
  EXPECT_DOUBLE_EQ(stats.prefix_hit_rate, 0.4);
}

TEST_F(PrefixCacheTest, AFullyCachedPromptStillRecomputesItsLastToken) {
  KvCacheManager kv(16, 4, true);
  const auto prompt = iota_tokens(8);
  prefill(kv, 1, prompt);
  EXPECT_EQ(kv.stats().num_blocks_cached, 2);
  EXPECT_EQ(kv.match_prefix(2, prompt), 4);  // not 8: block 2 holds the last token
  auto longer = prompt;
  longer.push_back(9);
  EXPECT_EQ(kv.match_prefix(3, longer), 8);
  EXPECT_EQ(kv.match_prefix(4, std::vector<int32_t>{}), 0);
  EXPECT_EQ(kv.match_prefix(5, std::vector<int32_t>{1}), 0);
  expect_ok(kv);
}

TEST_F(PrefixCacheTest, DifferentTokensParentOrExtraKeyMiss) {
  KvCacheManager kv(32, 4, true);
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  prefill(kv, 1, prompt);
  // Block 1 alike, block 0 (its parent) different: nothing matches.
  EXPECT_EQ(kv.match_prefix(2, std::vector<int32_t>{1, 2, 3, 0, 5, 6, 7, 8, 9}), 0);
  EXPECT_EQ(kv.match_prefix(3, std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 0, 9}), 4);
  EXPECT_EQ(kv.match_prefix(4, prompt, /*extra_key=*/77), 0);  // another adapter
  EXPECT_EQ(kv.match_prefix(5, prompt), 8);
  expect_ok(kv);
}

TEST_F(PrefixCacheTest, ACollidingHashNeverReusesTheWrongBlock) {
  KvCacheManager::Options options;
  options.hash_fn = [](BlockHash, std::span<const int32_t>, uint64_t) -> BlockHash { return 7; };
  KvCacheManager kv(32, 4, true, options);
  const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8, 0};
  prefill(kv, 1, a);
  // Every block hashes to 7, so the index holds one; confirmation rejects all the others.
  EXPECT_EQ(kv.match_prefix(2, std::vector<int32_t>{9, 9, 9, 9, 9}), 0);
  // The entry under 7 holds tokens 5..8 as a *second* block: same tokens as a first block
  // but another parent, so still no hit.
  EXPECT_EQ(kv.match_prefix(3, std::vector<int32_t>{5, 6, 7, 8, 0}), 0);
  expect_ok(kv);
}

// A weak hash collides two different first blocks; a second block computed after the first
// of them has the same hash, tokens and parent hash under either. Only the parent's cache id
// tells them apart.
TEST_F(PrefixCacheTest, ACollidingParentNeverReusesTheWrongChild) {
  KvCacheManager::Options options;
  options.hash_fn = [](BlockHash parent, std::span<const int32_t> tokens, uint64_t) {
    return parent * 31 + static_cast<BlockHash>(tokens[0]);
  };
  KvCacheManager kv(32, 4, true, options);
  const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8, 0};
  prefill(kv, 1, a);
  kv.free(1);
  // P' = {1, 9, 9, 9} hashes like P = {1, 2, 3, 4} and displaces it.
  const std::vector<int32_t> c = {1, 9, 9, 9, 0};
  EXPECT_EQ(prefill(kv, 2, c), 0);
  kv.free(2);
  const std::vector<int32_t> b = {1, 9, 9, 9, 5, 6, 7, 8, 0};
  EXPECT_EQ(kv.match_prefix(3, b), 4);  // P' only; a's second block was computed after P
  expect_ok(kv);
}

TEST_F(PrefixCacheTest, DuplicatesStayUncachedAndTheChainContinuesThroughTheOriginal) {
  KvCacheManager kv(32, 4, true);
  const auto prompt = iota_tokens(9);
  prefill(kv, 1, prompt);
  // Sequence 2 computes the same prompt itself (it started before 1 committed).
  ASSERT_TRUE(kv.allocate_slots(2, prompt, 9));
  kv.commit_full_blocks(2, prompt);
  EXPECT_EQ(kv.stats().num_blocks_cached, 2);
  auto longer = iota_tokens(13);
  ASSERT_TRUE(kv.allocate_slots(2, longer, 4));
  kv.commit_full_blocks(2, longer);  // block 2 registers after 1's block 1
  EXPECT_EQ(kv.stats().num_blocks_cached, 3);
  kv.free(1);
  longer.push_back(99);
  EXPECT_EQ(kv.match_prefix(3, longer), 12);
  EXPECT_EQ(kv.block_table(3)[2], kv.block_table(2)[2]);
  expect_ok(kv);
}

TEST_F(PrefixCacheTest, ForkedSiblingsCommittingTheSameBlocksRegisterThemOnce) {
  KvCacheManager kv(32, 4, true);
  auto tokens = iota_tokens(10);
  ASSERT_TRUE(allocate_and_fork(kv, tokens, 10));
  kv.commit_full_blocks(1, tokens);
  kv.commit_full_blocks(2, tokens);
  EXPECT_EQ(kv.stats().num_blocks_cached, 2);
  auto t1 = tokens, t2 = tokens;
  t1.insert(t1.end(), {50, 51});
  t2.insert(t2.end(), {60, 61});
  ASSERT_TRUE(kv.allocate_slots(1, t1, 2));
  ASSERT_TRUE(kv.allocate_slots(2, t2, 2));
  kv.commit_full_blocks(1, t1);
  kv.commit_full_blocks(2, t2);
  EXPECT_EQ(kv.stats().num_blocks_cached, 4);  // two different third blocks
  EXPECT_EQ(kv.take_pending_copies().size(), 1u);
  t2.push_back(0);
  EXPECT_EQ(kv.match_prefix(3, t2), 12);
  expect_ok(kv);
}

TEST_F(PrefixCacheTest, FreedSequencesAreEvictedTailFirst) {
  KvCacheManager kv(4, 4, true);
  const auto prompt = iota_tokens(12);
  prefill(kv, 1, prompt);  // 3 full blocks, all cached
  const std::vector<BlockId> table = kv.block_table(1);
  kv.free(1);
  EXPECT_EQ(kv.pool().lru_order(), (std::vector<BlockId>{table[2], table[1], table[0]}));
  // One plain free block, then the tail of the prefix goes; its head survives.
  ASSERT_TRUE(kv.allocate_slots(2, prompt, 8));
  EXPECT_EQ(kv.stats().num_blocks_cached, 2);
  kv.free(2);
  EXPECT_EQ(kv.match_prefix(3, prompt), 8);
  expect_ok(kv);
}

TEST_F(PrefixCacheTest, DisabledCachingNeverCachesOrCounts) {
  KvCacheManager kv(16, 4, false);
  const auto prompt = iota_tokens(10);
  prefill(kv, 1, prompt);
  kv.free(1);
  EXPECT_EQ(kv.match_prefix(2, prompt), 0);
  const KvStats stats = kv.stats();
  EXPECT_EQ(stats.num_blocks_cached, 0);
  EXPECT_EQ(stats.num_prefix_queries, 0);
  EXPECT_EQ(stats.prefix_hit_rate, 0.0);
}

TEST_F(PrefixCacheTest, APromptThatContinuesAFreedSequenceGetsItsPartialBlockBack) {
  KvCacheManager kv(16, 4, true, {.cache_partial_blocks = true});
  const auto tokens = iota_tokens(10);
  prefill(kv, 1, tokens);  // 2 full blocks and 2 tokens in a third
  const BlockId partial = kv.block_table(1)[2];
  kv.free(1, tokens);
  EXPECT_EQ(kv.stats().num_blocks_cached_free, 3);

  // The next round of a beam: the same tokens and one more. Only that one is computed.
  auto longer = tokens;
  longer.push_back(11);
  EXPECT_EQ(kv.match_prefix(2, longer), 10);
  EXPECT_EQ(kv.block_table(2)[2], partial);
  // Two continuations at once: the second to write copies the block, the first writes in
  // place past the cached tokens.
  auto other = tokens;
  other.push_back(12);
  EXPECT_EQ(kv.match_prefix(3, other), 10);
  ASSERT_TRUE(kv.allocate_slots(2, longer, 1));
  EXPECT_EQ(kv.take_pending_copies().size(), 1u);  // shared: 2 copies, 3 keeps the original
  ASSERT_TRUE(kv.allocate_slots(3, other, 1));
  EXPECT_TRUE(kv.take_pending_copies().empty());
  EXPECT_EQ(kv.block_table(3)[2], partial);
  expect_ok(kv);

  // A prompt that differs inside the partial block, or is no longer than it, does not match
  // it; nor does one whose full blocks differ.
  auto differs = tokens;
  differs[9] = 99;
  differs.push_back(11);
  EXPECT_EQ(kv.match_prefix(4, differs), 8);
  EXPECT_EQ(kv.match_prefix(5, tokens), 8);  // its last token must be computed
  EXPECT_EQ(kv.match_prefix(6, std::vector<int32_t>{9, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}), 0);
  expect_ok(kv);
}

TEST_F(PrefixCacheTest, APartialBlockFilledInPlaceIsCachedAsAFullBlock) {
  KvCacheManager kv(16, 4, true, {.cache_partial_blocks = true});
  auto tokens = iota_tokens(6);
  prefill(kv, 1, tokens);
  kv.free(1, tokens);
  tokens.push_back(7);
  tokens.push_back(8);
  tokens.push_back(9);
  EXPECT_EQ(kv.match_prefix(2, tokens), 6);
  ASSERT_TRUE(kv.allocate_slots(2, tokens, 3));
  kv.commit_full_blocks(2, tokens);  // block 2 is now full: its full key replaces the partial one
  kv.free(2, tokens);
  expect_ok(kv);
  auto next = tokens;
  next.push_back(10);
  EXPECT_EQ(kv.match_prefix(3, next), 9);  // two full blocks and the new partial one
  expect_ok(kv);
}

TEST_F(PrefixCacheTest, WithoutTokensOrTheOptionFreeOffersNoPartialBlock) {
  const auto tokens = iota_tokens(10);
  auto longer = tokens;
  longer.push_back(11);
  KvCacheManager plain(16, 4, true);
  prefill(plain, 1, tokens);
  plain.free(1, tokens);
  EXPECT_EQ(plain.match_prefix(2, longer), 8);
  KvCacheManager partial(16, 4, true, {.cache_partial_blocks = true});
  prefill(partial, 1, tokens);
  partial.free(1);  // e.g. aborted before its forward: its last slots hold nothing yet
  EXPECT_EQ(partial.match_prefix(2, longer), 8);
}

TEST(KvCacheManagerTest, StatsCountSharedBlocksOnceForWaste) {
  KvCacheManager kv(16, 4, false);
  const auto tokens = iota_tokens(20);
  ASSERT_TRUE(allocate_and_fork(kv, tokens, 6));  // 2 blocks, 6 tokens, shared by 1 and 2
  ASSERT_TRUE(kv.allocate_slots(3, tokens, 13));  // 4 blocks, 13 tokens
  const KvStats stats = kv.stats();
  EXPECT_EQ(stats.num_blocks_total, 16);
  EXPECT_EQ(stats.num_blocks_used, 6);
  EXPECT_EQ(stats.num_blocks_free, 10);
  EXPECT_DOUBLE_EQ(stats.usage, 6.0 / 16.0);
  EXPECT_EQ(stats.num_sequences, 3);
  EXPECT_EQ(stats.num_slots_used, 24);
  EXPECT_EQ(stats.num_tokens_stored, 19);
}

}  // namespace
}  // namespace moon
