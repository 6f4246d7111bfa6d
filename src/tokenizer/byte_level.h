// GPT-2's byte-level alphabet: each of the 256 byte values stands as one printable Unicode
// character, so that byte-level BPE vocabularies are text. Printable Latin-1 bytes stand for
// themselves; the rest (controls, space, DEL, NBSP, soft hyphen...) take U+0100 onwards in
// byte order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace moon::byte_level {

// UTF-8 of the character that stands for byte `b`.
std::string_view byte_to_utf8(uint8_t b);

// The byte that code point `cp` stands for, or -1 when it is not in the alphabet.
int codepoint_to_byte(uint32_t cp);

// Maps raw bytes to their byte-level text.
std::string encode(std::string_view bytes);

// Maps byte-level text back to raw bytes. Characters outside the alphabet (or invalid UTF-8)
// are copied through unchanged and make the result false.
bool decode(std::string_view text, std::string& out);

}  // namespace moon::byte_level
