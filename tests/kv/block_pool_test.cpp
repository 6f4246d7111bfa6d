#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

namespace moon {
namespace {

void expect_ok(const BlockPool& pool) {
  const Status status = pool.check_invariants();
  EXPECT_TRUE(status.ok()) << status.error().message;
}

// A key whose only content is one token, enough to tell blocks apart in these tests.
struct TestKey {
  explicit TestKey(BlockHash hash, int32_t token = 0) : tokens{token} {
    key.hash = hash;
    key.tokens = tokens;
  }
  std::vector<int32_t> tokens;
  BlockPool::BlockKey key;
};

TEST(BlockPoolTest, AllocatesEveryBlockOnceThenRunsOut) {
  BlockPool pool(8);
  EXPECT_EQ(pool.num_free(), 8);
  std::set<BlockId> seen;
  for (int i = 0; i < 8; ++i) {
    const auto block = pool.allocate();
    ASSERT_TRUE(block.has_value());
    EXPECT_TRUE(seen.insert(*block).second);
    EXPECT_EQ(pool.ref_count(*block), 1);
  }
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(pool.num_used(), 8);
  EXPECT_FALSE(pool.allocate().has_value());
  EXPECT_FALSE(pool.allocate(1).has_value());
  expect_ok(pool);
}

TEST(BlockPoolTest, BatchAllocationIsAllOrNothing) {
  BlockPool pool(5);
  ASSERT_TRUE(pool.allocate(2).has_value());
  EXPECT_FALSE(pool.allocate(4).has_value());
  EXPECT_EQ(pool.num_free(), 3);  // nothing taken by the failed call
  const auto rest = pool.allocate(3);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(rest->size(), 3u);
  EXPECT_TRUE(pool.allocate(0).has_value());
  EXPECT_FALSE(pool.allocate(-1).has_value());
  expect_ok(pool);
}

TEST(BlockPoolTest, RefCountsReturnBlocksAtZero) {
  BlockPool pool(2);
  const BlockId block = *pool.allocate();
  pool.retain(block);
  pool.retain(block);
  EXPECT_EQ(pool.ref_count(block), 3);
  pool.release(block);
  pool.release(block);
  EXPECT_EQ(pool.num_free(), 1);
  pool.release(block);
  EXPECT_EQ(pool.ref_count(block), 0);
  EXPECT_EQ(pool.num_free(), 2);
  expect_ok(pool);
}

TEST(BlockPoolDeathTest, DoubleReleaseAborts) {
  BlockPool pool(2);
  const BlockId block = *pool.allocate();
  pool.release(block);
  EXPECT_DEATH(pool.release(block), "double free");
  EXPECT_DEATH(pool.retain(block), "retain of free block");
}

TEST(BlockPoolTest, ReleasedCachedBlocksWaitOnTheLruAndCountAsFree) {
  BlockPool pool(4);
  const BlockId a = *pool.allocate(), b = *pool.allocate();
  TestKey ka(100, 1), kb(200, 2);
  EXPECT_GT(pool.register_block(a, ka.key), 0u);
  pool.register_block(b, kb.key);
  EXPECT_EQ(pool.num_cached(), 2);
  pool.release(b);
  pool.release(a);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.num_cached_free(), 2);
  EXPECT_EQ(pool.lru_order(), (std::vector<BlockId>{b, a}));
  // Still findable while unreferenced.
  EXPECT_EQ(pool.find(ka.key)->block, a);
  expect_ok(pool);

  // The two uncached blocks go first; cached content is evicted only after.
  const BlockId c = *pool.allocate(), d = *pool.allocate();
  EXPECT_NE(c, a);
  EXPECT_NE(d, b);
  EXPECT_EQ(pool.num_cached(), 2);
  const BlockId e = *pool.allocate();  // least recently released: b
  EXPECT_EQ(e, b);
  EXPECT_EQ(pool.cache_id(b), 0u);
  EXPECT_FALSE(pool.find(kb.key).has_value());
  EXPECT_TRUE(pool.find(ka.key).has_value());
  expect_ok(pool);
}

TEST(BlockPoolTest, LruEvictsLeastRecentlyReleasedFirst) {
  BlockPool pool(6);
  std::vector<BlockId> blocks = *pool.allocate(6);
  std::vector<TestKey> keys;
  for (int i = 0; i < 6; ++i) keys.emplace_back(1000 + i, i);
  for (int i = 0; i < 6; ++i) pool.register_block(blocks[i], keys[i].key);
  const std::vector<int> release_order = {3, 0, 5, 1, 4, 2};
  for (const int i : release_order) pool.release(blocks[i]);
  // Reviving block 5 from the middle, then releasing it again, moves it to the back.
  pool.retain(blocks[5]);
  EXPECT_EQ(pool.ref_count(blocks[5]), 1);
  EXPECT_EQ(pool.num_cached_free(), 5);
  pool.release(blocks[5]);
  const std::vector<int> expected = {3, 0, 1, 4, 2, 5};
  for (const int i : expected) {
    EXPECT_EQ(*pool.allocate(), blocks[i]);
    expect_ok(pool);
  }
  EXPECT_EQ(pool.num_cached(), 0);
  EXPECT_FALSE(pool.allocate().has_value());
}

TEST(BlockPoolTest, FindConfirmsEveryFieldNotJustTheHash) {
  BlockPool pool(2);
  const BlockId block = *pool.allocate();
  const std::vector<int32_t> tokens = {7, 8, 9};
  BlockPool::BlockKey key;
  key.hash = 42;
  key.parent_hash = 41;
  key.parent_cache_id = 0;
  key.extra_key = 5;
  key.tokens = tokens;
  const uint64_t id = pool.register_block(block, key);
  ASSERT_TRUE(pool.find(key).has_value());
  EXPECT_EQ(pool.find(key)->cache_id, id);

  const std::vector<int32_t> other_tokens = {7, 8, 10}, shorter = {7, 8};
  auto mismatch = [&](auto change) {
    BlockPool::BlockKey k = key;
    change(k);
    return !pool.find(k).has_value();
  };
  EXPECT_TRUE(mismatch([&](auto& k) { k.tokens = other_tokens; }));
  EXPECT_TRUE(mismatch([&](auto& k) { k.tokens = shorter; }));
  EXPECT_TRUE(mismatch([](auto& k) { k.parent_hash = 40; }));
  EXPECT_TRUE(mismatch([](auto& k) { k.parent_cache_id = 99; }));
  EXPECT_TRUE(mismatch([](auto& k) { k.extra_key = 6; }));
  EXPECT_TRUE(mismatch([](auto& k) { k.hash = 43; }));
}

TEST(BlockPoolTest, RegisteringUnderATakenHashDisplacesTheOldEntry) {
  BlockPool pool(3);
  const BlockId a = *pool.allocate(), b = *pool.allocate();
  TestKey ka(7, 1), kb(7, 2);  // same hash, different content
  const uint64_t id_a = pool.register_block(a, ka.key);
  pool.release(a);  // cached-free
  const uint64_t id_b = pool.register_block(b, kb.key);
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(pool.cache_id(a), 0u);  // displaced: back on the plain free list
  EXPECT_EQ(pool.num_cached_free(), 0);
  EXPECT_FALSE(pool.find(ka.key).has_value());
  EXPECT_EQ(pool.find(kb.key)->block, b);
  expect_ok(pool);
  pool.uncache(b);  // in use: stays in use, just leaves the cache
  EXPECT_EQ(pool.ref_count(b), 1);
  EXPECT_EQ(pool.num_cached(), 0);
  expect_ok(pool);
}

// Operations from the middle of a long LRU stay O(1): with O(n) removal this would take
// tens of billions of steps.
TEST(BlockPoolTest, LargePoolOperationsAreConstantTime) {
  constexpr int64_t kBlocks = 200'000;
  BlockPool pool(kBlocks);
  const std::vector<BlockId> blocks = *pool.allocate(kBlocks);
  std::vector<int32_t> token(1, 0);
  for (const BlockId b : blocks) {
    BlockPool::BlockKey key;
    key.hash = static_cast<BlockHash>(b) * 2654435761u + 1;
    key.tokens = token;
    pool.register_block(b, key);
    pool.release(b);
  }
  EXPECT_EQ(pool.num_cached_free(), kBlocks);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < kBlocks; i += 2) pool.retain(blocks[static_cast<size_t>(i)]);
  for (int64_t i = 0; i < kBlocks; i += 2) pool.release(blocks[static_cast<size_t>(i)]);
  for (int64_t i = 0; i < kBlocks; ++i) ASSERT_TRUE(pool.allocate().has_value());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
  EXPECT_EQ(pool.num_cached(), 0);
  expect_ok(pool);
}

}  // namespace
}  // namespace moon
