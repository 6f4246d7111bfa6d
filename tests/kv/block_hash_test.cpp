#include "kv/block_hash.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

namespace moon {
namespace {

// Appendix A of the SipHash paper and the reference implementation's vectors: key bytes
// 00..0f, message bytes 00..(n-1).
TEST(BlockHashTest, SipHashMatchesPublishedVectors) {
  const uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
  uint8_t message[16];
  for (int i = 0; i < 16; ++i) message[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(siphash24(k0, k1, message, 0), 0x726fdb47dd0e0e31ull);
  EXPECT_EQ(siphash24(k0, k1, message, 1), 0x74f839c593dc67fdull);
  EXPECT_EQ(siphash24(k0, k1, message, 2), 0x0d6c8009d9a94f5aull);
  EXPECT_EQ(siphash24(k0, k1, message, 3), 0x85676696d7fb7e2dull);
  EXPECT_EQ(siphash24(k0, k1, message, 4), 0xcf2794e0277187b7ull);
  EXPECT_EQ(siphash24(k0, k1, message, 8), 0x93f5f5799a932462ull);
  EXPECT_EQ(siphash24(k0, k1, message, 15), 0xa129ca6149be45e5ull);
}

TEST(BlockHashTest, DeterministicWithinTheProcess) {
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  EXPECT_EQ(hash_block_tokens(9, tokens, 0), hash_block_tokens(9, tokens, 0));
}

TEST(BlockHashTest, EveryInputChangesTheHash) {
  const std::vector<int32_t> tokens = {1, 2, 3, 4};
  const BlockHash base = hash_block_tokens(kRootBlockHash, tokens, 0);
  std::set<BlockHash> seen = {base};
  EXPECT_TRUE(seen.insert(hash_block_tokens(1, tokens, 0)).second);               // parent
  EXPECT_TRUE(seen.insert(hash_block_tokens(kRootBlockHash, tokens, 1)).second);  // extra key
  const std::vector<int32_t> changed = {1, 2, 3, 5}, swapped = {2, 1, 3, 4}, shorter = {1, 2, 3};
  const std::vector<int32_t> padded = {1, 2, 3, 0}, negative = {1, 2, 3, -4};
  for (const auto* t : {&changed, &swapped, &shorter, &padded, &negative}) {
    EXPECT_TRUE(seen.insert(hash_block_tokens(kRootBlockHash, *t, 0)).second);
  }
}

TEST(BlockHashTest, NoCollisionsAcrossManyBlocks) {
  std::set<BlockHash> seen;
  std::vector<int32_t> tokens(16);
  BlockHash parent = kRootBlockHash;
  for (int32_t i = 0; i < 20000; ++i) {
    for (int32_t j = 0; j < 16; ++j) tokens[j] = i * 16 + j;
    parent = hash_block_tokens(parent, tokens, 0);
    ASSERT_TRUE(seen.insert(parent).second) << i;
  }
}

}  // namespace
}  // namespace moon
