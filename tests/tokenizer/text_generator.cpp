#include "text_generator.h"

#include <array>
#include <iterator>
#include <string_view>

#include "util/utf8.h"

namespace moon::test {
namespace {

constexpr std::string_view kWords[] = {
    "the",       "Hello",   "world",  "tokenizer", "I'm",      "you'll",
    "they're",   "DON'T",   "naïve",  "café",      "Straße",   "über",
    "日本語",    "中文",    "한국어", "русский",   "Ελληνικά", "עברית",
    "العربية",   "हिन्दी",   "ไทย",    "🦙",      "👍🏽", "👨‍👩‍👧‍👦",
    "🇫🇷",        "☃",       "∑",      "x²",        "½",
    "e\xCC\x81",  // e + combining acute
    "<s>",       "</s>",    "<unk>",  "<0x41>",    "▁",        "▁▁x",
    "[INST]",    "<<SYS>>", "...",    "—",
};

constexpr std::array<std::string_view, 14> kCode = {
    "for (int i = 0; i < n; ++i) {\n",
    "    return x;\n}\n",
    "def f(x):\n\treturn x ** 2\n",
    "#include <stdio.h>\n",
    "if (a && b || !c) { printf(\"%d\\n\", a); }",
    "const auto& [k, v] = *it;",
    "SELECT * FROM t WHERE id = 42;",
    "<div class=\"x\">&nbsp;</div>",
    "x = [1, 2, 3]  # comment",
    "fn main() -> Result<(), Box<dyn Error>> {",
    "$ ls -la /tmp | grep foo",
    "{\"key\": [true, null, 1.5e-3]}",
    "    \t  indented",
    "a\r\nb\r\n",
};

constexpr std::string_view kPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
constexpr std::array<std::string_view, 10> kSpaces = {" ",    "  ",   "   ",  "\t",    "\n",
                                                      "\n\n", "\r\n", " \n ", "\t\t ", "        "};

// Script blocks to draw characters from: [first, last].
constexpr std::array<std::pair<uint32_t, uint32_t>, 14> kBlocks = {{
    {0x0041, 0x007A},    // Latin letters and a few punctuation
    {0x00C0, 0x024F},    // Latin-1 supplement, Latin extended
    {0x0370, 0x03FF},    // Greek
    {0x0400, 0x04FF},    // Cyrillic
    {0x0590, 0x06FF},    // Hebrew, Arabic
    {0x0900, 0x097F},    // Devanagari
    {0x0E00, 0x0E7F},    // Thai
    {0x1780, 0x17FF},    // Khmer
    {0x3040, 0x30FF},    // Hiragana, Katakana
    {0x4E00, 0x9FFF},    // CJK ideographs
    {0xAC00, 0xD7A3},    // Hangul syllables
    {0x1F300, 0x1FAFF},  // emoji and pictographs
    {0x2000, 0x2BFF},    // punctuation, symbols, arrows, math
    {0xFF00, 0xFFEF},    // full-width forms
}};

}  // namespace

uint32_t TextGenerator::any_codepoint() {
  switch (below(4)) {
    case 0:
      return 0x80 + below(0x800 - 0x80);
    case 1: {
      uint32_t cp = 0x800 + below(0x10000 - 0x800);
      return cp >= 0xD800 && cp <= 0xDFFF ? cp + 0x800 : cp;
    }
    default:
      return 0x10000 + below(0x110000 - 0x10000);
  }
}

void TextGenerator::add_invalid(std::string& out) {
  static constexpr std::array<std::string_view, 12> kInvalid = {
      "\x80",     "\xBF\x80",     "\xC3",         "\xE2\x82",         "\xF0\x9F\xA6",
      "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
      "\xFE",     "\xFF\xFF",
  };
  out += kInvalid[below(kInvalid.size())];
}

void TextGenerator::add_part(std::string& out, bool allow_invalid) {
  switch (below(allow_invalid ? 12 : 11)) {
    case 0:
    case 1:
      out += kWords[below(std::size(kWords))];
      break;
    case 2:
      out += kSpaces[below(kSpaces.size())];
      break;
    case 3:
      out += kCode[below(kCode.size())];
      break;
    case 4: {
      const uint32_t n = 1 + below(12);
      for (uint32_t i = 0; i < n; ++i) out += static_cast<char>('0' + below(10));
      break;
    }
    case 5: {
      const uint32_t n = 1 + below(4);
      for (uint32_t i = 0; i < n; ++i) out += kPunct[below(kPunct.size())];
      break;
    }
    case 6:
    case 7: {
      const auto [first, last] = kBlocks[below(kBlocks.size())];
      const uint32_t n = 1 + below(6);
      for (uint32_t i = 0; i < n; ++i) utf8::append_codepoint(out, first + below(last - first + 1));
      break;
    }
    case 8:
      utf8::append_codepoint(out, any_codepoint());
      break;
    case 9: {  // ASCII letters, including long runs
      const uint32_t n = 1 + below(below(8) == 0 ? 60 : 10);
      for (uint32_t i = 0; i < n; ++i) {
        out += static_cast<char>((below(2) ? 'a' : 'A') + below(26));
      }
      break;
    }
    case 10:
      out += static_cast<char>(below(32));
      break;  // control characters, NUL included
    default:
      add_invalid(out);
      break;
  }
}

std::string TextGenerator::text(int max_parts, bool allow_invalid) {
  std::string out;
  const uint32_t parts = 1 + below(static_cast<uint32_t>(max_parts));
  for (uint32_t i = 0; i < parts; ++i) {
    add_part(out, allow_invalid);
    if (below(3) == 0) out += ' ';
  }
  return out;
}

}  // namespace moon::test
