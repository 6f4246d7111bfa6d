#include "sampling/rng.h"

#include <random>

#include "util/splitmix64.h"

namespace moon {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // key schedule: golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // and sqrt(3) - 1

inline void mul_hi_lo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo(kMul0, c[0], hi0, lo0);
    mul_hi_lo(kMul1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kWeyl0;
    k[1] += kWeyl1;
  }
  return c;
}

uint64_t RequestRng::bits(uint64_t step, uint32_t draw) const {
  const auto r =
      philox4x32_10({static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32), draw, 0u},
                    {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)});
  return (static_cast<uint64_t>(r[0]) << 32) | r[1];
}

double RequestRng::uniform(uint64_t step, uint32_t draw) const {
  return static_cast<double>(bits(step, draw) >> 11) * 0x1.0p-53;
}

uint64_t sequence_seed(uint64_t seed, uint64_t index) {
  if (index == 0) return seed;
  SplitMix64 mix(seed ^ (index * 0x9E3779B97F4A7C15ull));
  return mix.next();
}

uint64_t random_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) | device();
}

}  // namespace moon
