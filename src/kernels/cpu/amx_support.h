// What the AMX kernels share (matmul_amx.cpp, matmul_amx_super_block.cpp): the tile
// configuration's layout and a per-thread scratch buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace moon::kernels::detail {

// Palette 1's configuration. Kernels keep theirs as a constant in static storage: GCC 12
// drops stores into a local configuration struct that only _tile_loadconfig reads, which
// leaves the tiles unconfigured and the first tile instruction faulting.
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// A 64-byte-aligned buffer of at least `bytes`, kept per thread and grown as needed.
struct ScratchBuffer {
  std::vector<uint8_t> storage;
  uint8_t* get(size_t bytes) {
    if (storage.size() < bytes + 64) storage.resize(bytes + 64);
    const auto address = reinterpret_cast<uintptr_t>(storage.data());
    return storage.data() + ((64 - address % 64) % 64);
  }
};

}  // namespace moon::kernels::detail
