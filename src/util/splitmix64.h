// splitmix64: a tiny, fully specified pseudo-random generator, so that anything built from
// "random" numbers (the built-in model's weights, mutation tests) is the same on every
// platform and standard library, unlike std:: distributions.
#pragma once

#include <cstdint>

namespace moon {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 when n is 0. (Modulo bias is irrelevant at the sizes used here.)
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  // Uniform in [-scale, scale).
  float uniform(float scale) {
    const double u = static_cast<double>(next() >> 11) * 0x1.0p-53;
    return static_cast<float>((2.0 * u - 1.0) * scale);
  }

 private:
  uint64_t state_;
};

}  // namespace moon
