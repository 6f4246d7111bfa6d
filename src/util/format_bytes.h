// Byte counts for people: the largest binary unit that keeps the number >= 1, e.g.
// "6.9 GiB", "512.0 MiB", "12 B" (whole bytes are shown as they are).
#pragma once

#include <cstdint>
#include <string>

namespace moon {

std::string format_bytes(uint64_t bytes, int decimals = 1);

}  // namespace moon
