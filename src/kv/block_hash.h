// Prefix-cache identity of one FULL KV block: a 64-bit hash of (parent block's hash, the
// block's token ids, an extra key). A block's K/V depend on every token before it, so the
// parent hash chains each block to its whole prefix; the extra key covers anything else that
// changes the content for the same tokens (a LoRA adapter id, a multimodal input hash).
//
// The hash is keyed SipHash-2-4 with a key drawn once per process from the OS: a client who
// chooses prompts cannot steer two prefixes onto one hash. Even so a hash is never trusted on
// its own: the cache keeps each block's tokens and parent and confirms them on every hit (see
// BlockPool::CachedKey), so a collision costs a miss, never a wrong block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

namespace moon {

using BlockHash = uint64_t;

// The parent hash of a sequence's first block.
inline constexpr BlockHash kRootBlockHash = 0;

// How a block's hash is computed; tests inject weak functions to force collisions.
using BlockHashFn =
    std::function<BlockHash(BlockHash parent, std::span<const int32_t> tokens, uint64_t extra_key)>;

// The production hash: keyed SipHash-2-4 over (parent, extra_key, tokens) with the process key.
// Thread-safe.
BlockHash hash_block_tokens(BlockHash parent, std::span<const int32_t> tokens, uint64_t extra_key);

// SipHash-2-4 of `size` bytes under a 128-bit key (k0 = key bytes 0..7 little-endian, k1 =
// bytes 8..15). Exposed so tests can check it against the published test vectors.
uint64_t siphash24(uint64_t k0, uint64_t k1, const void* data, size_t size);

}  // namespace moon
