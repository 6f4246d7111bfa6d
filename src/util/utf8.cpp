#include "util/utf8.h"

namespace moon::utf8 {
namespace {

bool is_continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}

// The allowed range of the second byte depends on the lead byte; that is where overlongs,
// surrogates and values past U+10FFFF are excluded.
bool second_byte_ok(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return is_continuation(b);
  }
}

bool lead_ok(uint8_t lead) {
  return (lead >= 0xC2 && lead <= 0xF4);
}

// Checks the first `n` bytes of `s` against the rules for a character of `len` bytes.
bool prefix_ok(std::string_view s, size_t n) {
  const auto lead = static_cast<uint8_t>(s[0]);
  if (n >= 2 && !second_byte_ok(lead, static_cast<uint8_t>(s[1]))) return false;
  for (size_t i = 2; i < n; ++i) {
    if (!is_continuation(static_cast<uint8_t>(s[i]))) return false;
  }
  return true;
}

}  // namespace

size_t valid_char_length(std::string_view s) {
  if (s.empty()) return 0;
  const auto lead = static_cast<uint8_t>(s[0]);
  if (lead < 0x80) return 1;
  if (!lead_ok(lead)) return 0;
  const size_t len = announced_length(lead);
  if (s.size() < len || !prefix_ok(s, len)) return 0;
  return len;
}

bool is_incomplete_prefix(std::string_view s) {
  if (s.empty()) return false;
  const auto lead = static_cast<uint8_t>(s[0]);
  if (lead < 0x80 || !lead_ok(lead)) return false;
  return s.size() < announced_length(lead) && prefix_ok(s, s.size());
}

void append_codepoint(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = valid_char_length(s.substr(i));
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

DecodedChar decode_char(std::string_view s) {
  const size_t n = valid_char_length(s);
  if (n == 0) return {};
  static constexpr uint8_t kLeadBits[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  uint32_t cp = static_cast<uint8_t>(s[0]) & kLeadBits[n];
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[i]) & 0x3F);
  return {cp, n};
}

}  // namespace moon::utf8
