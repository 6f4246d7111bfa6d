#include "chat/jinja_lexer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "chat/jinja_value.h"

namespace moon::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

class Lexer {
 public:
  Lexer(std::string_view source, const LexerOptions& options) : src_(source), options_(options) {
    if (!options_.keep_trailing_newline && !src_.empty() && src_.back() == '\n') {
      src_.remove_suffix(1);
      if (!src_.empty() && src_.back() == '\r') src_.remove_suffix(1);
    }
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool strip_next = false;  // the previous tag ended with '-'
    bool trim_next = false;   // the previous block/comment tag may eat one newline
    while (pos <= src_.size()) {
      size_t tag = find_tag(pos);
      size_t text_begin = pos;
      size_t text_end = tag == std::string_view::npos ? src_.size() : tag;
      if (strip_next) {
        while (text_begin < text_end && is_space(src_[text_begin])) ++text_begin;
      } else if (trim_next && text_begin < text_end) {
        if (src_[text_begin] == '\n') {
          ++text_begin;
        } else if (src_[text_begin] == '\r' && text_begin + 1 < text_end &&
                   src_[text_begin + 1] == '\n') {
          text_begin += 2;
        }
      }
      strip_next = trim_next = false;
      if (tag != std::string_view::npos) {
        char kind = src_[tag + 1];
        char modifier = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
        if (modifier == '-') {
          while (text_end > text_begin && is_space(src_[text_end - 1])) --text_end;
        } else if (modifier != '+' && kind != '{' && options_.lstrip_blocks) {
          // Strip indentation only when the tag is the first thing on its line.
          size_t line_start = tag;
          while (line_start > 0 && src_[line_start - 1] != '\n') --line_start;
          if (line_start >= pos && std::all_of(src_.begin() + line_start, src_.begin() + tag,
                                               [](char c) { return c == ' ' || c == '\t'; })) {
            text_end = std::max(text_begin, line_start);
          }
        }
      }
      if (text_end > text_begin) {
        push(TokenKind::kText, std::string(src_.substr(text_begin, text_end - text_begin)),
             text_begin);
      }
      if (tag == std::string_view::npos) break;
      pos = lex_tag(tag, strip_next, trim_next);
    }
    push(TokenKind::kEnd, "", src_.size());
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string_view::npos;
  }

  [[noreturn]] void error(size_t offset, const std::string& message) const {
    auto [line, column] = position(offset);
    fail(fmt::format("template syntax error at line {}, column {}: {}", line, column, message));
  }

  std::pair<int, int> position(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  void push(TokenKind kind, std::string text, size_t offset) {
    Token token{kind, std::move(text)};
    auto [line, column] = position(offset);
    token.line = line;
    token.column = column;
    tokens_.push_back(std::move(token));
  }

  // Lexes the tag starting at `tag`; returns the offset just past it.
  size_t lex_tag(size_t tag, bool& strip_next, bool& trim_next) {
    char kind = src_[tag + 1];
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    if (kind == '#') {
      size_t end = src_.find("#}", p);
      if (end == std::string_view::npos) error(tag, "unterminated comment");
      strip_next = end > p && src_[end - 1] == '-';
      trim_next = options_.trim_blocks && !(end > p && src_[end - 1] == '+');
      return end + 2;
    }
    const bool block = kind == '%';
    if (block) {
      size_t q = p;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (src_.compare(q, 3, "raw") == 0 && (q + 3 >= src_.size() || !is_ident(src_[q + 3]))) {
        return lex_raw(tag, q + 3, strip_next, trim_next);
      }
    }
    push(block ? TokenKind::kBlockBegin : TokenKind::kVarBegin, block ? "{%" : "{{", tag);
    const char closer = block ? '%' : '}';
    int depth = 0;  // bracket nesting, so that `}}` inside a dict literal is not the end
    while (true) {
      while (p < src_.size() && is_space(src_[p])) ++p;
      if (p >= src_.size()) error(tag, block ? "unterminated '{%' tag" : "unterminated '{{' tag");
      char c = src_[p];
      if (depth == 0 && (c == '-' || c == '+') && p + 2 < src_.size() && src_[p + 1] == closer &&
          src_[p + 2] == '}') {
        strip_next = c == '-';
        trim_next = block && c != '+' && c != '-' && options_.trim_blocks;
        push(block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, block ? "%}" : "}}", p);
        return p + 3;
      }
      if (depth == 0 && c == closer && p + 1 < src_.size() && src_[p + 1] == '}') {
        trim_next = block && options_.trim_blocks;
        push(block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, block ? "%}" : "}}", p);
        return p + 2;
      }
      p = lex_expression_token(p, depth);
    }
  }

  static bool is_ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  // `{% raw %}...{% endraw %}`: the body is literal text, tags and all.
  size_t lex_raw(size_t tag, size_t q, bool& strip_next, bool& trim_next) {
    auto skip_space = [&](size_t i) {
      while (i < src_.size() && is_space(src_[i])) ++i;
      return i;
    };
    q = skip_space(q);
    const bool strip_open = q < src_.size() && src_[q] == '-';
    if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
    if (src_.compare(q, 2, "%}") != 0) error(q, "expected '%}' after 'raw'");
    size_t begin = q + 2;
    if (strip_open) {
      begin = skip_space(begin);
    } else if (options_.trim_blocks && begin < src_.size() && src_[begin] == '\n') {
      ++begin;
    }
    for (size_t at = src_.find("{%", begin); at != std::string_view::npos;
         at = src_.find("{%", at + 2)) {
      size_t r = at + 2;
      const bool strip_close = r < src_.size() && src_[r] == '-';
      if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) ++r;
      r = skip_space(r);
      if (src_.compare(r, 6, "endraw") != 0) continue;
      r = skip_space(r + 6);
      const char modifier = r < src_.size() ? src_[r] : '\0';
      if (modifier == '-' || modifier == '+') ++r;
      if (src_.compare(r, 2, "%}") != 0) continue;
      size_t end = at;
      if (strip_close) {
        while (end > begin && is_space(src_[end - 1])) --end;
      } else if (options_.lstrip_blocks) {
        size_t line_start = end;
        while (line_start > begin && (src_[line_start - 1] == ' ' || src_[line_start - 1] == '\t'))
          --line_start;
        if (line_start == 0 || src_[line_start - 1] == '\n') end = line_start;
      }
      if (end > begin) push(TokenKind::kText, std::string(src_.substr(begin, end - begin)), begin);
      strip_next = modifier == '-';
      trim_next = modifier != '-' && modifier != '+' && options_.trim_blocks;
      return r + 2;
    }
    error(tag, "unterminated raw block, expected '{% endraw %}'");
  }

  size_t lex_expression_token(size_t p, int& depth) {
    const char c = src_[p];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t end = p;
      while (end < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_'))
        ++end;
      push(TokenKind::kName, std::string(src_.substr(p, end - p)), p);
      return end;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(p);
    if (c == '\'' || c == '"') return lex_string(p);
    static const char* const kTwoChar[] = {"**", "//", "==", "!=", "<=", ">="};
    for (const char* op : kTwoChar) {
      if (src_.substr(p, 2) == op) {
        push(TokenKind::kOperator, op, p);
        return p + 2;
      }
    }
    if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos) {
      error(p, fmt::format("unexpected character '{}'", c));
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') depth = std::max(0, depth - 1);
    push(TokenKind::kOperator, std::string(1, c), p);
    return p + 1;
  }

  size_t lex_number(size_t p) {
    size_t end = p;
    auto digits = [&] {
      while (end < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_'))
        ++end;
    };
    digits();
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
      is_float = true;
      ++end;
      digits();
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        is_float = true;
        end = e;
        digits();
      }
    }
    std::string text;
    for (size_t i = p; i < end; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    push(is_float ? TokenKind::kFloat : TokenKind::kInt, text, p);
    try {
      if (is_float) {
        tokens_.back().float_value = std::stod(text);
      } else {
        tokens_.back().int_value = std::stoll(text);
      }
    } catch (const std::exception&) {
      error(p, "number literal out of range");
    }
    return end;
  }

  size_t lex_string(size_t p) {
    const char quote = src_[p];
    std::string value;
    size_t i = p + 1;
    while (true) {
      if (i >= src_.size()) error(p, "unterminated string literal");
      char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) error(p, "unterminated string literal");
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case '0':
          value += '\0';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case '\n':
          break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i + n > src_.size()) error(i - 2, "truncated escape sequence");
          char32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            char h = src_[i + k];
            if (!std::isxdigit(static_cast<unsigned char>(h)))
              error(i - 2, "invalid escape sequence");
            cp = cp * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                     ? h - '0'
                                                     : (std::tolower(h) - 'a' + 10));
          }
          if (cp > 0x10FFFF) error(i - 2, "invalid code point in escape sequence");
          value += utf8_encode(std::u32string(1, cp));
          i += n;
          break;
        }
        default:  // Python keeps unknown escapes verbatim.
          value += '\\';
          value += e;
      }
    }
    push(TokenKind::kString, std::move(value), p);
    return i + 1;
  }

  std::string_view src_;
  LexerOptions options_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexerOptions& options) {
  return Lexer(source, options).run();
}

}  // namespace moon::jinja
