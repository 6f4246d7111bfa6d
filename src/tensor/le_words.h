// Little-endian 32-bit words read from and written to the byte arrays of the block formats
// (Q5_0/Q5_1's high bits, the K-quants' packed scales), whatever the host's alignment rules.
#pragma once

#include <cstdint>

namespace moon {

inline uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
inline void store_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace moon
