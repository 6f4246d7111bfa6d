#include "tokenizer/byte_level.h"

#include <array>

#include "util/utf8.h"

namespace moon::byte_level {
namespace {

struct Tables {
  std::array<std::string, 256> utf8;
  std::array<int16_t, 512> byte_of;  // every alphabet code point is below U+0144

  Tables() {
    byte_of.fill(-1);
    uint32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next_extra++;
      utf8::append_codepoint(utf8[b], cp);
      byte_of[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::string_view byte_to_utf8(uint8_t b) {
  return tables().utf8[b];
}

int codepoint_to_byte(uint32_t cp) {
  return cp < 512 ? tables().byte_of[cp] : -1;
}

std::string encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.utf8[static_cast<uint8_t>(c)];
  return out;
}

bool decode(std::string_view text, std::string& out) {
  bool all_mapped = true;
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = utf8::valid_char_length(text.substr(i));
    int byte = -1;
    if (n == 1) {
      byte = codepoint_to_byte(static_cast<uint8_t>(text[i]));
    } else if (n == 2) {
      const uint32_t cp = ((static_cast<uint8_t>(text[i]) & 0x1F) << 6) |
                          (static_cast<uint8_t>(text[i + 1]) & 0x3F);
      byte = codepoint_to_byte(cp);
    }
    const size_t len = n == 0 ? 1 : n;
    if (byte >= 0) {
      out += static_cast<char>(byte);
    } else {
      out.append(text.substr(i, len));
      all_mapped = false;
    }
    i += len;
  }
  return all_mapped;
}

}  // namespace moon::byte_level
