#include "grammar/gbnf.h"

#include <fmt/format.h>

#include <optional>

#include "grammar/scanner.h"
#include "util/utf8.h"

namespace moon::grammar {
namespace {

// Longest repetition count accepted: x{m,n} expands into about n rules.
constexpr int kMaxRepeat = 100000;
constexpr int kMaxNesting = 256;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

class Parser : Scanner<Parser> {
 public:
  explicit Parser(std::string_view text) : Scanner(text) {}

  Result<Grammar> parse() {
    for (;;) {
      skip_blank_lines();
      if (at_end()) break;
      if (auto st = parse_rule(); !st) return st.error();
    }
    if (error_) return *error_;
    return b_.build("root");
  }

 private:
  friend class Scanner<Parser>;
  Error error_at(std::string_view what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return make_error("grammar error at line {}, column {}: {}", line, col, what);
  }

  void skip_comment() {
    while (!at_end() && peek() != '\n') ++pos_;
  }
  // Spaces and comments; newlines too when `newlines` (inside a group).
  void skip_space(bool newlines) {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++pos_;
      } else if (c == '#') {
        skip_comment();
      } else {
        break;
      }
    }
  }
  void skip_blank_lines() {
    for (;;) {
      skip_space(true);
      if (at_end() || peek() != '\n') return;
    }
  }
  // At a line break (top level): true when the next non-blank line continues with `|`.
  bool continues_with_bar() {
    size_t p = pos_;
    while (p < text_.size()) {
      const char c = text_[p];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++p;
      } else if (c == '#') {
        while (p < text_.size() && text_[p] != '\n') ++p;
      } else {
        break;
      }
    }
    if (p < text_.size() && text_[p] == '|') {
      pos_ = p;
      return true;
    }
    return false;
  }

  std::string_view parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  Status parse_rule() {
    const std::string_view name = parse_name();
    if (name.empty()) return fail("expected a rule name");
    skip_space(false);
    if (text_.substr(pos_, 3) != "::=") return fail(fmt::format("expected '::=' after '{}'", name));
    pos_ += 3;
    const uint32_t r = b_.rule(name);
    if (b_.is_defined(r)) return fail(fmt::format("rule '{}' is defined twice", name));
    std::vector<GrammarBuilder::Sequence> alts;
    if (auto st = parse_alternatives(false, alts); !st) return st;
    (void)b_.define(r, std::move(alts));
    skip_space(false);
    if (!at_end() && peek() != '\n') return fail("expected the end of the rule");
    return Status::success();
  }

  Status parse_alternatives(bool nested, std::vector<GrammarBuilder::Sequence>& alts) {
    for (;;) {
      GrammarBuilder::Sequence seq;
      if (auto st = parse_sequence(nested, seq); !st) return st;
      alts.push_back(std::move(seq));
      skip_space(nested);
      if (!nested && peek() == '\n' && !continues_with_bar()) return Status::success();
      if (peek() != '|') return Status::success();
      ++pos_;
      skip_space(true);
    }
  }

  // One character of a literal or class, escapes decoded; `pos_` past it.
  Result<uint32_t> parse_char() {
    if (at_end()) return fail("unexpected end of the grammar");
    const char c = peek();
    if (c == '\\') {
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case 'n':
          return uint32_t{'\n'};
        case 'r':
          return uint32_t{'\r'};
        case 't':
          return uint32_t{'\t'};
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
          return uint32_t(e);
        case 'x':
          return parse_hex(2);
        case 'u':
          return parse_hex(4);
        case 'U':
          return parse_hex(8);
        default:
          --pos_;
          return fail(fmt::format("unknown escape '\\{}'", e));
      }
    }
    return utf8_char();
  }
  Result<uint32_t> parse_hex(int digits) {
    auto v = hex(digits);
    if (!v) return v;
    if (*v > 0x10FFFF || (*v >= 0xD800 && *v <= 0xDFFF)) return fail("escape is not a character");
    return v;
  }

  Status parse_sequence(bool nested, GrammarBuilder::Sequence& seq) {
    for (;;) {
      skip_space(nested);
      if (at_end()) return Status::success();
      const char c = peek();
      Symbol sym{};
      if (c == '"') {
        ++pos_;
        GrammarBuilder::Sequence lit;
        while (peek() != '"') {
          if (at_end() || peek() == '\n') return fail("unterminated string literal");
          auto cp = parse_char();
          if (!cp) return cp.error();
          std::string bytes;
          utf8::append_codepoint(bytes, *cp);
          b_.append_literal(lit, bytes);
        }
        ++pos_;
        if (lit.empty()) {
          if (is_repetition(peek())) return fail("an empty literal cannot repeat");
          continue;
        }
        if (lit.size() == 1) {
          sym = lit[0];
        } else {
          const uint32_t r = b_.fresh_rule("lit");
          (void)b_.define(r, {std::move(lit)});
          sym = {Symbol::Kind::kRule, r};
        }
      } else if (c == '[') {
        ++pos_;
        const bool negated = peek() == '^';
        if (negated) ++pos_;
        std::vector<CodepointRange> ranges;
        while (peek() != ']') {
          if (at_end()) return fail("unterminated character class");
          auto lo = parse_char();
          if (!lo) return lo.error();
          uint32_t hi = *lo;
          if (peek() == '-' && peek(1) != ']' && pos_ + 1 < text_.size()) {
            ++pos_;
            auto h = parse_char();
            if (!h) return h.error();
            hi = *h;
            if (hi < *lo) return fail("a character range ends before it starts");
          }
          ranges.push_back({*lo, hi});
        }
        ++pos_;
        auto cls = b_.char_class(std::move(ranges), negated);
        if (!cls) return fail(cls.error().message);
        sym = *cls;
      } else if (c == '.') {
        ++pos_;
        auto cls = b_.char_class({}, true);
        sym = *cls;
      } else if (c == '(') {
        ++pos_;
        // The parser recurses per group; what the regex and schema conversions make nests
        // far less than this.
        if (++depth_ > kMaxNesting) {
          return fail(fmt::format("groups nest deeper than {}", kMaxNesting));
        }
        std::vector<GrammarBuilder::Sequence> alts;
        auto st = parse_alternatives(true, alts);
        --depth_;
        if (!st) return st;
        skip_space(true);
        if (peek() != ')') return fail("expected ')'");
        ++pos_;
        const uint32_t r = b_.fresh_rule("group");
        (void)b_.define(r, std::move(alts));
        sym = {Symbol::Kind::kRule, r};
      } else if (is_name_char(c)) {
        const size_t save = pos_;
        const std::string_view name = parse_name();
        // The next rule's `name ::=` ends this one (a rule on one line with no blank after).
        size_t p = pos_;
        while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t')) ++p;
        if (text_.substr(p, 3) == "::=") {
          pos_ = save;
          return fail(fmt::format("expected a line break before rule '{}'", name));
        }
        sym = {Symbol::Kind::kRule, b_.rule(name)};
      } else {
        return Status::success();  // '|', ')', a line break: the caller decides
      }
      // Repetition.
      skip_space(false);
      const char r = peek();
      if (r == '*' || r == '+' || r == '?') {
        ++pos_;
        sym = b_.repeat(sym, r == '+' ? 1 : 0, r == '?' ? 1 : -1);
      } else if (r == '{') {
        ++pos_;
        skip_space(false);
        auto lo = count(kMaxRepeat);
        if (!lo) return lo.error();
        int hi = *lo;
        skip_space(false);
        if (peek() == ',') {
          ++pos_;
          skip_space(false);
          hi = -1;
          if (peek() != '}') {
            auto h = count(kMaxRepeat);
            if (!h) return h.error();
            hi = *h;
            if (hi < *lo) return fail("a repetition's maximum is below its minimum");
          }
        }
        skip_space(false);
        if (peek() != '}') return fail("expected '}'");
        ++pos_;
        if (hi == 0) continue;  // x{0} matches nothing
        sym = b_.repeat(sym, *lo, hi);
      }
      seq.push_back(sym);
    }
  }

  static bool is_repetition(char c) { return c == '*' || c == '+' || c == '?' || c == '{'; }

  GrammarBuilder b_;
  std::optional<Error> error_;
  int depth_ = 0;
};

}  // namespace

Result<Grammar> parse_gbnf(std::string_view text) {
  return Parser(text).parse();
}

std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    const auto c = static_cast<uint8_t>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02X}", c);
    } else {
      out += ch;  // printable ASCII and UTF-8 as is
    }
  }
  out += '"';
  return out;
}

}  // namespace moon::grammar
