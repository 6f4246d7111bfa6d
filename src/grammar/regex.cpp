#include "grammar/regex.h"

#include <fmt/format.h>

#include <algorithm>

#include "grammar/gbnf.h"
#include "grammar/scanner.h"
#include "util/utf8.h"

namespace moon::grammar {
namespace {

constexpr int kMaxRepeat = 10000;
constexpr int kMaxNesting = 100;  // groups inside groups

std::string class_char(uint32_t cp) {
  if (cp == '\\' || cp == ']' || cp == '-' || cp == '^' || cp == '[' || cp == '"') {
    return std::string("\\") + static_cast<char>(cp);
  }
  if (cp < 0x20 || cp == 0x7F) return fmt::format("\\x{:02X}", cp);
  if (cp < 0x80) return std::string(1, static_cast<char>(cp));
  return cp <= 0xFFFF ? fmt::format("\\u{:04X}", cp) : fmt::format("\\U{:08X}", cp);
}

// The characters a JSON string cannot hold unescaped.
const std::vector<CodepointRange> kJsonSpecial = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};

std::vector<CodepointRange> subtract(std::vector<CodepointRange> ranges,
                                     const std::vector<CodepointRange>& cut) {
  for (const CodepointRange& c : cut) {
    std::vector<CodepointRange> out;
    for (const CodepointRange& r : ranges) {
      if (c.hi < r.lo || c.lo > r.hi) {
        out.push_back(r);
        continue;
      }
      if (r.lo < c.lo) out.push_back({r.lo, c.lo - 1});
      if (r.hi > c.hi) out.push_back({c.hi + 1, r.hi});
    }
    ranges = std::move(out);
  }
  return ranges;
}

bool contains(const std::vector<CodepointRange>& ranges, uint32_t cp) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const CodepointRange& r) { return r.lo <= cp && cp <= r.hi; });
}

// Half a surrogate pair is no character, and no UTF-8 text (so no GBNF) can hold it.
constexpr bool is_surrogate(uint32_t cp) {
  return cp >= 0xD800 && cp <= 0xDFFF;
}

std::string lone_surrogate(uint32_t cp) {
  return fmt::format("U+{:04X} is half of a UTF-16 surrogate pair, not a character", cp);
}

std::string json_escape(uint32_t cp) {
  switch (cp) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    default:
      return fmt::format("\\u{:04x}", cp);
  }
}

class RegexParser : Scanner<RegexParser> {
 public:
  RegexParser(std::string_view p, RegexContext c) : Scanner(p), ctx_(c) {}

  Result<std::string> parse() {
    if (peek() == '^') ++pos_;
    auto r = alternation();
    if (!r) return r;
    if (pos_ < text_.size()) {
      if (peek() == ')') return fail("unbalanced ')'");
      return fail("unexpected character");
    }
    return r;
  }

 private:
  friend class Scanner<RegexParser>;
  Error error_at(std::string_view what) const {
    return make_error("regular expression error at offset {}: {}", pos_, what);
  }

  Result<std::string> alternation() {
    std::vector<std::string> alts;
    for (;;) {
      auto s = sequence();
      if (!s) return s;
      alts.push_back(*s);
      if (peek() != '|') break;
      ++pos_;
    }
    if (alts.size() == 1) return alts[0];
    std::string out = "(";
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
    return out + ")";
  }

  Result<std::string> sequence() {
    std::string out;
    while (!at_end() && peek() != '|' && peek() != ')') {
      if (peek() == '$' && pos_ + 1 == text_.size()) {
        ++pos_;
        break;
      }
      auto a = atom();
      if (!a) return a;
      auto q = quantifier(*a);
      if (!q) return q;
      if (!q->empty()) out += (out.empty() ? "" : " ") + *q;
    }
    return out.empty() ? std::string("\"\"") : out;
  }

  Result<std::string> quantifier(const std::string& atom) {
    int lo = 1, hi = 1;
    const char c = peek();
    if (c == '*') {
      lo = 0, hi = -1, ++pos_;
    } else if (c == '+') {
      lo = 1, hi = -1, ++pos_;
    } else if (c == '?') {
      lo = 0, hi = 1, ++pos_;
    } else if (c == '{' && std::isdigit(static_cast<unsigned char>(peek(1)))) {
      ++pos_;
      auto a = count(kMaxRepeat);
      if (!a) return a.error();
      lo = hi = *a;
      if (peek() == ',') {
        ++pos_;
        hi = -1;
        if (peek() != '}') {
          auto b = count(kMaxRepeat);
          if (!b) return b.error();
          hi = *b;
        }
      }
      if (peek() != '}') return fail("expected '}'");
      ++pos_;
      if (hi >= 0 && hi < lo) return fail("a repetition's maximum is below its minimum");
    } else {
      return atom;
    }
    if (peek() == '?' || peek() == '+') ++pos_;  // lazy / possessive: the same language
    if (hi == 0) return std::string();
    const std::string x = "(" + atom + ")";
    if (lo == 0 && hi == -1) return x + "*";
    if (lo == 1 && hi == -1) return x + "+";
    if (lo == 0 && hi == 1) return x + "?";
    if (hi < 0) return fmt::format("{}{{{},}}", x, lo);
    return fmt::format("{}{{{},{}}}", x, lo, hi);
  }

  // After a backslash: a class shorthand (into `ranges`, with `negated`) or one character.
  Result<bool> escape(std::vector<CodepointRange>& ranges, bool& negated, uint32_t& cp) {
    const char e = peek();
    ++pos_;
    negated = false;
    switch (e) {
      case 'd':
      case 'D':
        ranges = {{'0', '9'}};
        negated = e == 'D';
        return true;
      case 'w':
      case 'W':
        ranges = {{'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {'_', '_'}};
        negated = e == 'W';
        return true;
      case 's':
      case 'S':
        ranges = {{' ', ' '}, {'\t', '\r'}};
        negated = e == 'S';
        return true;
      case 'n':
        cp = '\n';
        return false;
      case 'r':
        cp = '\r';
        return false;
      case 't':
        cp = '\t';
        return false;
      case 'f':
        cp = '\f';
        return false;
      case 'v':
        cp = '\v';
        return false;
      case '0':
        cp = 0;
        return false;
      case 'x': {
        if (peek() == '{') {  // \x{h...}: any code point
          ++pos_;
          uint32_t v = 0;
          int digits = 0;
          for (; peek() != '}'; ++digits) {
            auto d = hex(1);
            if (!d) return d.error();
            v = v * 16 + *d;
            if (v > 0x10FFFF) return fail("code point above U+10FFFF");
          }
          if (digits == 0) return fail("expected a hexadecimal digit");
          ++pos_;
          if (is_surrogate(v)) return fail(lone_surrogate(v));
          cp = v;
          return false;
        }
        auto v = hex(2);
        if (!v) return v.error();
        cp = *v;
        return false;
      }
      case 'u': {
        auto v = hex(4);
        if (!v) return v.error();
        cp = *v;
        // JavaScript writes a character above U+FFFF as two escapes, a UTF-16 surrogate pair.
        if (cp >= 0xD800 && cp <= 0xDBFF && peek() == '\\' && peek(1) == 'u') {
          const size_t high_end = pos_;
          pos_ += 2;
          auto low = hex(4);
          if (low && *low >= 0xDC00 && *low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (*low - 0xDC00);
            return false;
          }
          pos_ = high_end;
        }
        if (is_surrogate(cp)) return fail(lone_surrogate(cp));
        return false;
      }
      case 'b':
      case 'B':
        --pos_;
        return fail("word boundaries (\\b) are not supported");
      default:
        if (e >= '1' && e <= '9') {
          --pos_;
          return fail("backreferences are not supported");
        }
        if (std::isalnum(static_cast<unsigned char>(e))) {
          --pos_;
          return fail(fmt::format("unknown escape '\\{}'", e));
        }
        cp = static_cast<uint8_t>(e);
        return false;
    }
  }

  // A class of code points, as the context allows it.
  std::string cls(std::vector<CodepointRange> ranges, bool negated) {
    if (ctx_ == RegexContext::kPlain) return gbnf_class(ranges, negated);
    if (negated) {
      ranges.insert(ranges.end(), kJsonSpecial.begin(), kJsonSpecial.end());
      return gbnf_class(ranges, true);
    }
    std::vector<std::string> alts;
    const auto plain = subtract(ranges, kJsonSpecial);
    if (!plain.empty()) alts.push_back(gbnf_class(plain, false));
    for (uint32_t cp = 0; cp < 0x20; ++cp) {
      if (contains(ranges, cp)) alts.push_back(gbnf_literal(json_escape(cp)));
    }
    for (uint32_t cp : {uint32_t{'"'}, uint32_t{'\\'}}) {
      if (contains(ranges, cp)) alts.push_back(gbnf_literal(json_escape(cp)));
    }
    if (alts.size() == 1) return alts[0];
    std::string out = "(";
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
    return out + ")";
  }

  std::string literal(uint32_t cp) {
    std::string s;
    if (ctx_ == RegexContext::kJsonString && (cp < 0x20 || cp == '"' || cp == '\\')) {
      s = json_escape(cp);
    } else {
      utf8::append_codepoint(s, cp);
    }
    return gbnf_literal(s);
  }

  Result<std::string> atom() {
    const char c = peek();
    if (c == '(') {
      ++pos_;
      if (peek() == '?') {
        if (peek(1) == ':') {
          pos_ += 2;
        } else if (peek(1) == '<' && peek(2) != '=' && peek(2) != '!') {
          pos_ += 2;  // a named group: (?<name>...)
          while (!at_end() && peek() != '>') ++pos_;
          if (at_end()) return fail("unterminated group name");
          ++pos_;
        } else {
          return fail("lookaround and inline flags are not supported");
        }
      }
      // The parser recurses per group: a bound keeps a hostile pattern from the stack's end
      // (found by fuzz_request: a few hundred '(' overflowed it).
      if (++depth_ > kMaxNesting)
        return fail(fmt::format("groups nest deeper than {}", kMaxNesting));
      auto inner = alternation();
      --depth_;
      if (!inner) return inner;
      if (peek() != ')') return fail("expected ')'");
      ++pos_;
      return "(" + *inner + ")";
    }
    if (c == '[') return char_class();
    if (c == '.') {
      ++pos_;
      return cls({{'\n', '\n'}, {'\r', '\r'}}, true);
    }
    if (c == '^' || c == '$') return fail("anchors are only supported at the ends of the pattern");
    if (c == '*' || c == '+' || c == '?' || c == '{') {
      if (c == '{' && !std::isdigit(static_cast<unsigned char>(peek(1)))) {
        ++pos_;
        return literal('{');
      }
      return fail("a quantifier follows nothing");
    }
    if (c == '\\') {
      ++pos_;
      if (at_end()) return fail("a pattern cannot end with '\\'");
      std::vector<CodepointRange> ranges;
      bool negated = false;
      uint32_t cp = 0;
      auto is_class = escape(ranges, negated, cp);
      if (!is_class) return is_class.error();
      return *is_class ? cls(ranges, negated) : literal(cp);
    }
    auto cp = utf8_char();
    if (!cp) return cp.error();
    return literal(*cp);
  }

  Result<std::string> char_class() {
    ++pos_;  // '['
    bool negated = false;
    if (peek() == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodepointRange> ranges;
    bool first = true;
    while (at_end() || peek() != ']' || first) {
      if (at_end()) return fail("unterminated character class");
      first = false;
      uint32_t lo = 0;
      if (peek() == '\\') {
        ++pos_;
        std::vector<CodepointRange> sub;
        bool sub_negated = false;
        auto is_class = escape(sub, sub_negated, lo);
        if (!is_class) return is_class.error();
        if (*is_class) {
          if (sub_negated) return fail("negated shorthands inside a class are not supported");
          ranges.insert(ranges.end(), sub.begin(), sub.end());
          continue;
        }
      } else {
        auto cp = utf8_char();
        if (!cp) return cp.error();
        lo = *cp;
      }
      uint32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && pos_ + 1 < text_.size()) {
        ++pos_;
        if (peek() == '\\') {
          ++pos_;
          std::vector<CodepointRange> sub;
          bool sub_negated = false;
          auto is_class = escape(sub, sub_negated, hi);
          if (!is_class) return is_class.error();
          if (*is_class) return fail("a range cannot end in a class shorthand");
        } else {
          auto cp = utf8_char();
          if (!cp) return cp.error();
          hi = *cp;
        }
        if (hi < lo) return fail("a character range ends before it starts");
      }
      ranges.push_back({lo, hi});
    }
    ++pos_;  // ']'
    return cls(ranges, negated);
  }

  RegexContext ctx_;
  int depth_ = 0;
};

}  // namespace

std::string gbnf_class(const std::vector<CodepointRange>& ranges, bool negated) {
  std::string out = negated ? "[^" : "[";
  for (const CodepointRange& r : ranges) {
    out += class_char(r.lo);
    if (r.hi != r.lo) {
      out += '-';
      out += class_char(r.hi);
    }
  }
  return out + "]";
}

Result<std::string> regex_to_gbnf(std::string_view pattern, RegexContext context) {
  return RegexParser(pattern, context).parse();
}

}  // namespace moon::grammar
