// UTF-8 validity rules and GPT-2's byte-level alphabet.
#include <gtest/gtest.h>

#include <string>

#include "tokenizer/byte_level.h"
#include "util/utf8.h"

namespace moon {
namespace {

TEST(Utf8, ValidCharLength) {
  EXPECT_EQ(utf8::valid_char_length("a"), 1u);
  EXPECT_EQ(utf8::valid_char_length(std::string_view("\0", 1)), 1u);
  EXPECT_EQ(utf8::valid_char_length("\xC3\xA9x"), 2u);         // é
  EXPECT_EQ(utf8::valid_char_length("\xE2\x82\xAC"), 3u);      // €
  EXPECT_EQ(utf8::valid_char_length("\xF0\x9F\xA6\x99"), 4u);  // 🦙
  EXPECT_EQ(utf8::valid_char_length("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
  EXPECT_EQ(utf8::valid_char_length("\xEF\xBF\xBD"), 3u);      // U+FFFD itself
  EXPECT_EQ(utf8::valid_char_length("\x80"), 0u);              // stray continuation
  EXPECT_EQ(utf8::valid_char_length("\xC3"), 0u);              // truncated
  EXPECT_EQ(utf8::valid_char_length("\xC3x"), 0u);
  EXPECT_EQ(utf8::valid_char_length("\xC0\xAF"), 0u);  // overlong '/'
  EXPECT_EQ(utf8::valid_char_length("\xC1\xBF"), 0u);
  EXPECT_EQ(utf8::valid_char_length("\xE0\x80\xAF"), 0u);      // overlong
  EXPECT_EQ(utf8::valid_char_length("\xED\xA0\x80"), 0u);      // surrogate D800
  EXPECT_EQ(utf8::valid_char_length("\xED\x9F\xBF"), 3u);      // U+D7FF
  EXPECT_EQ(utf8::valid_char_length("\xF0\x8F\xBF\xBF"), 0u);  // overlong
  EXPECT_EQ(utf8::valid_char_length("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(utf8::valid_char_length("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(utf8::valid_char_length("\xFF"), 0u);
}

TEST(Utf8, DecodeCharInvertsAppendCodepointForEveryCharacter) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    utf8::append_codepoint(s, cp);
    const utf8::DecodedChar c = utf8::decode_char(s + "x");
    ASSERT_EQ(c.cp, cp);
    ASSERT_EQ(c.length, s.size()) << cp;
  }
  for (const char* bad : {"\x80", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", ""}) {
    EXPECT_EQ(utf8::decode_char(bad).length, 0u) << bad;
  }
}

TEST(Utf8, IncompletePrefix) {
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xC3"));
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xE2\x82"));
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xF0\x9F\xA6"));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xE2\x82\xAC"));  // complete
  EXPECT_FALSE(utf8::is_incomplete_prefix("a"));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\x80"));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xE0\x80"));  // can only be overlong
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xED\xA0"));  // can only be a surrogate
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xF4\x90"));  // can only pass U+10FFFF
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xC3x"));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xF8"));
}

TEST(Utf8, SanitizeReplacesEachBadByte) {
  EXPECT_EQ(utf8::sanitize("ok"), "ok");
  EXPECT_EQ(utf8::sanitize("a\xFF"
                           "b"),
            "a\xEF\xBF\xBD"
            "b");
  // SentencePiece's rule: one U+FFFD per byte, not per maximal bad subsequence.
  EXPECT_EQ(utf8::sanitize("\xE2\x82x"), "\xEF\xBF\xBD\xEF\xBF\xBDx");
  EXPECT_EQ(utf8::sanitize("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(ByteLevel, Gpt2Alphabet) {
  EXPECT_EQ(byte_level::byte_to_utf8(' '), "\xC4\xA0");   // Ġ U+0120
  EXPECT_EQ(byte_level::byte_to_utf8('\n'), "\xC4\x8A");  // Ċ U+010A
  EXPECT_EQ(byte_level::byte_to_utf8(0), "\xC4\x80");     // U+0100
  EXPECT_EQ(byte_level::byte_to_utf8('A'), "A");
  EXPECT_EQ(byte_level::byte_to_utf8('~'), "~");
  EXPECT_EQ(byte_level::byte_to_utf8(0x7F), "\xC4\xA1");  // DEL -> U+0121
  EXPECT_EQ(byte_level::byte_to_utf8(0xA1), "\xC2\xA1");  // ¡ stands for itself
  EXPECT_EQ(byte_level::byte_to_utf8(0xAD), "\xC5\x83");  // soft hyphen -> U+0143
  EXPECT_EQ(byte_level::byte_to_utf8(0xFF), "\xC3\xBF");  // ÿ
}

TEST(ByteLevel, RoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string encoded = byte_level::encode(all);
  std::string decoded;
  EXPECT_TRUE(byte_level::decode(encoded, decoded));
  EXPECT_EQ(decoded, all);
  // Each byte has its own character.
  for (int a = 0; a < 256; ++a) {
    for (int b = a + 1; b < 256; ++b) {
      ASSERT_NE(byte_level::byte_to_utf8(a), byte_level::byte_to_utf8(b));
    }
  }
}

TEST(ByteLevel, DecodeKeepsForeignCharacters) {
  std::string out;
  EXPECT_FALSE(byte_level::decode("a\xE4\xB8\xAD", out));  // 中 is not in the alphabet
  EXPECT_EQ(out, "a\xE4\xB8\xAD");
}

}  // namespace
}  // namespace moon
