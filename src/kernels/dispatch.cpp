#include "kernels/dispatch.h"

#include <atomic>

namespace moon::kernels {
namespace {

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(simd_level())};
  return level;
}

}  // namespace

SimdLevel active_simd_level() {
  return static_cast<SimdLevel>(level_storage().load(std::memory_order_relaxed));
}

SimdLevel set_active_simd_level(SimdLevel level) {
  const SimdLevel hardware = hardware_simd_level();
  if (static_cast<int>(level) > static_cast<int>(hardware)) level = hardware;
  level_storage().store(static_cast<int>(level), std::memory_order_relaxed);
  return level;
}

}  // namespace moon::kernels
