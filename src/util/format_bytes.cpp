#include "util/format_bytes.h"

#include <fmt/format.h>

#include <array>
#include <string_view>

namespace moon {

std::string format_bytes(uint64_t bytes, int decimals) {
  constexpr std::array<std::string_view, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.{}f} {}", value, decimals, kUnits[unit]);
}

}  // namespace moon
