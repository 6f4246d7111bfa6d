#include "server/api_key.h"

#include <cctype>
#include <cstdint>

namespace moon::server {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the longer string entirely; the length difference is folded into the result.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  uint8_t diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t x = i < a.size() ? static_cast<uint8_t>(a[i]) : 0;
    const uint8_t y = i < b.size() ? static_cast<uint8_t>(b[i]) : 0;
    diff |= static_cast<uint8_t>(x ^ y);
  }
  return diff == 0;
}

bool authorized(std::string_view header, const std::string& key) {
  if (key.empty()) return true;
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() < kBearer.size()) return false;
  // The scheme is case-insensitive (RFC 7235); the key itself is not.
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kBearer[i]))) {
      return false;
    }
  }
  return constant_time_equal(header.substr(kBearer.size()), key);
}

}  // namespace moon::server
