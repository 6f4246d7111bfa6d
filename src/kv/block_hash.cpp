#include "kv/block_hash.h"

#include <bit>
#include <random>

namespace moon {
namespace {

// SipHash-2-4 (Aumasson and Bernstein), written from the paper's description: four 64-bit
// lanes, two compression rounds per 8-byte word, four finalization rounds.
class SipHasher {
 public:
  SipHasher(uint64_t k0, uint64_t k1)
      : v0_(k0 ^ 0x736f6d6570736575ull),
        v1_(k1 ^ 0x646f72616e646f6dull),
        v2_(k0 ^ 0x6c7967656e657261ull),
        v3_(k1 ^ 0x7465646279746573ull) {}

  // One little-endian 8-byte word of the message.
  void word(uint64_t m) {
    v3_ ^= m;
    round();
    round();
    v0_ ^= m;
    num_bytes_ += 8;
  }

  // The last 0..7 bytes (little-endian in `tail`), then the digest.
  uint64_t finish(uint64_t tail, size_t num_tail_bytes) {
    num_bytes_ += num_tail_bytes;
    const uint64_t b = (static_cast<uint64_t>(num_bytes_ & 0xff) << 56) | tail;
    v3_ ^= b;
    round();
    round();
    v0_ ^= b;
    v2_ ^= 0xff;
    for (int i = 0; i < 4; ++i) round();
    return v0_ ^ v1_ ^ v2_ ^ v3_;
  }

 private:
  void round() {
    v0_ += v1_;
    v1_ = std::rotl(v1_, 13);
    v1_ ^= v0_;
    v0_ = std::rotl(v0_, 32);
    v2_ += v3_;
    v3_ = std::rotl(v3_, 16);
    v3_ ^= v2_;
    v0_ += v3_;
    v3_ = std::rotl(v3_, 21);
    v3_ ^= v0_;
    v2_ += v1_;
    v1_ = std::rotl(v1_, 17);
    v1_ ^= v2_;
    v2_ = std::rotl(v2_, 32);
  }

  uint64_t v0_, v1_, v2_, v3_;
  size_t num_bytes_ = 0;
};

uint64_t load_le64(const unsigned char* p, size_t n) {
  uint64_t value = 0;
  for (size_t i = 0; i < n; ++i) value |= static_cast<uint64_t>(p[i]) << (8 * i);
  return value;
}

struct ProcessKey {
  uint64_t k0, k1;
};

// Drawn once, lazily: hashes are only compared within one process, never persisted.
const ProcessKey& process_key() {
  static const ProcessKey key = [] {
    std::random_device device;
    auto draw = [&device] {
      return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
    };
    return ProcessKey{draw(), draw()};
  }();
  return key;
}

}  // namespace

uint64_t siphash24(uint64_t k0, uint64_t k1, const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  SipHasher hasher(k0, k1);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) hasher.word(load_le64(bytes + i, 8));
  return hasher.finish(load_le64(bytes + i, size - i), size - i);
}

BlockHash hash_block_tokens(BlockHash parent, std::span<const int32_t> tokens, uint64_t extra_key) {
  const ProcessKey& key = process_key();
  // The same bytes as SipHash of parent | extra_key | tokens, each little-endian, without
  // building the buffer: tokens go in two per word.
  SipHasher hasher(key.k0, key.k1);
  hasher.word(parent);
  hasher.word(extra_key);
  size_t i = 0;
  for (; i + 2 <= tokens.size(); i += 2) {
    hasher.word(static_cast<uint64_t>(static_cast<uint32_t>(tokens[i])) |
                (static_cast<uint64_t>(static_cast<uint32_t>(tokens[i + 1])) << 32));
  }
  if (i < tokens.size()) return hasher.finish(static_cast<uint32_t>(tokens[i]), 4);
  return hasher.finish(0, 0);
}

}  // namespace moon
