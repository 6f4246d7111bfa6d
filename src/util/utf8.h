// UTF-8 helpers shared by the tokenizers and the decoders.
//
// Validity follows Unicode (and SentencePiece's DecodeUTF8): no overlong forms, no surrogates,
// nothing above U+10FFFF. Where text must be repaired, every byte that does not begin a valid
// character becomes one U+FFFD, which is what SentencePiece does both when it normalizes input
// and when it decodes byte pieces, so repaired output can be compared with it byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moon::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the character a lead byte announces: 1 for ASCII and for bytes that cannot lead.
inline size_t announced_length(uint8_t lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return lead < 0xF8 ? 4 : 1;
}

// Length of the valid character at the start of `s`, or 0 when the bytes there do not form one
// (including when `s` ends before the character does).
size_t valid_char_length(std::string_view s);

// True when `s`, shorter than the character its first byte announces, could still become a
// valid character once more bytes arrive.
bool is_incomplete_prefix(std::string_view s);

// The code point of the valid character at the start of `s` and its length in bytes; length 0
// when the bytes there do not form one.
struct DecodedChar {
  uint32_t cp = 0;
  size_t length = 0;
};
DecodedChar decode_char(std::string_view s);

// Appends code point `cp` (assumed valid) in UTF-8.
void append_codepoint(std::string& out, uint32_t cp);

// `s` with every byte that does not start a valid character replaced by U+FFFD.
std::string sanitize(std::string_view s);

}  // namespace moon::utf8
