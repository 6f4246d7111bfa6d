// Expression parsing (and the token cursor it shares with the statement parser), following
// Jinja's operator precedence: filters and tests bind tighter than arithmetic, `not` looser
// than comparisons.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace moon::jinja {

// Deeply nested input ("((((((...") must fail cleanly rather than overflow the stack.
constexpr int kMaxNesting = 128;
// Operator chains (`a + b + ...`, `x|f|g...`) are parsed by loops, not recursion, so their
// height is bounded separately: evaluating and destroying the tree recurse over it.
constexpr int kMaxExprHeight = 256;

class ExprParser {
 public:
  explicit ExprParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  ExprPtr parse_expression();
  // An expression without a trailing `if ... else ...` (for `for x in y if cond`).
  ExprPtr parse_or();

 protected:
  struct DepthGuard {
    explicit DepthGuard(ExprParser& p) : parser(p) {
      if (++parser.depth_ > kMaxNesting) parser.error(parser.peek(), "template nested too deeply");
    }
    ~DepthGuard() { --parser.depth_; }
    ExprParser& parser;
  };

  const Token& peek(size_t ahead = 0) const {
    size_t i = std::min(pos_ + ahead, tokens_.size() - 1);
    return tokens_[i];
  }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kOperator && peek(ahead).text == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kName && peek(ahead).text == name;
  }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool accept_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }

  [[noreturn]] void error(const Token& at, const std::string& message) const {
    fail(fmt::format("template syntax error at line {}, column {}: {}", at.line, at.column,
                     message));
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kEnd:
        return "end of template";
      case TokenKind::kBlockEnd:
        return "'%}'";
      case TokenKind::kVarEnd:
        return "'}}'";
      case TokenKind::kString:
        return "string literal";
      default:
        return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) error(peek(), fmt::format("expected '{}', got {}", op, describe(peek())));
  }
  std::string expect_name() {
    if (peek().kind != TokenKind::kName)
      error(peek(), fmt::format("expected a name, got {}", describe(peek())));
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != TokenKind::kBlockEnd)
      error(peek(), fmt::format("expected '%}}', got {}", describe(peek())));
    next();
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;

  // `f(args) | g ...` applied to node, as in `{% filter f | g %}`.
  ExprPtr parse_filter_chain(ExprPtr node);

 private:
  // Records e's height (from its children's) and rejects trees that are too deep.
  ExprPtr seal(ExprPtr e);
  ExprPtr make_expr(ExprKind kind, const Token& at);
  ExprPtr make_binary(const Token& at, std::string op, ExprPtr left, ExprPtr right);
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_binary_level(std::initializer_list<const char*> ops,
                             ExprPtr (ExprParser::*operand)());
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_subscript(const Token& at, ExprPtr node);
  void parse_call_args(Expr& e);
  bool starts_test_argument() const;
  ExprPtr parse_filters(ExprPtr node);
  ExprPtr parse_math1() { return parse_binary_level({"+", "-"}, &ExprParser::parse_concat); }
  ExprPtr parse_concat() { return parse_binary_level({"~"}, &ExprParser::parse_math2); }
  ExprPtr parse_math2() {
    return parse_binary_level({"*", "/", "//", "%"}, &ExprParser::parse_pow);
  }
  ExprPtr parse_pow() { return parse_binary_level({"**"}, &ExprParser::parse_unary_filtered); }
  ExprPtr parse_unary_filtered() { return parse_unary(true); }
};

}  // namespace moon::jinja
