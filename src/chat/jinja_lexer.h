// Splits a template into text and tag tokens, applying Jinja's whitespace control
// ({%- -%} {{- -}} {#- -#}) and Hugging Face's trim_blocks/lstrip_blocks settings up front so
// that the parser and interpreter never think about whitespace.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moon::jinja {

enum class TokenKind {
  kText,
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,
  kInt,
  kFloat,
  kOperator,
  kEnd,
};

struct Token {
  TokenKind kind;
  std::string text;  // text, name, operator, or the decoded string literal
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  // Jinja drops one trailing newline of the source unless keep_trailing_newline is set.
  bool keep_trailing_newline = false;
};

// Throws TemplateError with line and column on malformed input.
std::vector<Token> tokenize(std::string_view source, const LexerOptions& options = {});

}  // namespace moon::jinja
