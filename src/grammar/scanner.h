// The scanning the GBNF and regular-expression parsers share: a position in the text,
// decimal counts, hexadecimal escapes and whole UTF-8 characters. Each parser says how an
// error names its place (`error_at`: a line and column, or an offset).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string_view>

#include "util/result.h"
#include "util/utf8.h"

namespace moon::grammar {

template <typename Parser>
class Scanner {
 protected:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  Error fail(std::string_view what) const {
    return static_cast<const Parser*>(this)->error_at(what);
  }

  // A decimal count of at most `max` (repetition bounds).
  Result<int> count(int max) {
    int v = 0;
    const size_t start = pos_;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > max) return fail(fmt::format("repetition counts stop at {}", max));
      ++pos_;
    }
    if (pos_ == start) return fail("expected a number");
    return v;
  }

  Result<uint32_t> hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char c = peek();
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return fail("expected a hexadecimal digit");
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    return v;
  }

  // The character at the cursor, which must be valid UTF-8.
  Result<uint32_t> utf8_char() {
    const utf8::DecodedChar c = utf8::decode_char(text_.substr(pos_));
    if (c.length == 0) return fail("not valid UTF-8");
    pos_ += c.length;
    return c.cp;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace moon::grammar
