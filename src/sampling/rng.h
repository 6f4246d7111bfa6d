// Per-request random numbers that depend only on (seed, step, draw): a counter-based
// generator (Philox4x32-10, Salmon et al., SC'11) instead of a stateful one, so that a
// request's draws are the same whether it runs alone or in any batch, in any order, on any
// thread. The step is the index of the token being sampled in that sequence.
#pragma once

#include <array>
#include <cstdint>

namespace moon {

// One Philox4x32-10 block: 128 random bits for a 128-bit counter under a 64-bit key.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

class RequestRng {
 public:
  explicit RequestRng(uint64_t seed) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  // Uniform in [0, 1) with 53 random bits: draw `draw` of step `step`.
  double uniform(uint64_t step, uint32_t draw = 0) const;
  // 64 random bits, likewise.
  uint64_t bits(uint64_t step, uint32_t draw = 0) const;

 private:
  uint64_t seed_;
};

// The seed of sequence `index` of a request with seed `seed` (n > 1): a distinct stream,
// with sequence 0 keeping the request's own.
uint64_t sequence_seed(uint64_t seed, uint64_t index);

// A fresh seed for a request that gave none (from the OS's entropy source).
uint64_t random_seed();

}  // namespace moon
