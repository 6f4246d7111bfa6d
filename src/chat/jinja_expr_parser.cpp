#include "chat/jinja_expr_parser.h"

#include <fmt/format.h>

#include <algorithm>

namespace moon::jinja {

ExprPtr ExprParser::seal(ExprPtr e) {
  int height = 0;
  for (const ExprPtr& arg : e->args) {
    if (arg) height = std::max(height, arg->height);
  }
  for (const auto& [name, arg] : e->kwargs) height = std::max(height, arg->height);
  e->height = height + 1;
  if (e->height > kMaxExprHeight) error(peek(), "expression nested too deeply");
  return e;
}

ExprPtr ExprParser::make_expr(ExprKind kind, const Token& at) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = at.line;
  e->column = at.column;
  return e;
}
ExprPtr ExprParser::make_binary(const Token& at, std::string op, ExprPtr left, ExprPtr right) {
  auto e = make_expr(ExprKind::kBinary, at);
  e->name = std::move(op);
  e->args.push_back(std::move(left));
  e->args.push_back(std::move(right));
  return seal(std::move(e));
}

ExprPtr ExprParser::parse_expression() {
  DepthGuard guard(*this);
  ExprPtr value = parse_or();
  if (is_name("if")) {
    const Token& at = next();
    auto e = make_expr(ExprKind::kTernary, at);
    e->args.push_back(std::move(value));
    e->args.push_back(parse_or());
    if (accept_name("else")) {
      e->args.push_back(parse_expression());
    } else {
      e->args.push_back(nullptr);
    }
    return seal(std::move(e));
  }
  return value;
}

ExprPtr ExprParser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    const Token& at = next();
    left = make_binary(at, "or", std::move(left), parse_and());
  }
  return left;
}

ExprPtr ExprParser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    const Token& at = next();
    left = make_binary(at, "and", std::move(left), parse_not());
  }
  return left;
}

ExprPtr ExprParser::parse_not() {
  if (is_name("not")) {
    DepthGuard guard(*this);
    const Token& at = next();
    auto e = make_expr(ExprKind::kUnary, at);
    e->name = "not";
    e->args.push_back(parse_not());
    return seal(std::move(e));
  }
  return parse_compare();
}

ExprPtr ExprParser::parse_compare() {
  ExprPtr left = parse_math1();
  while (true) {
    const Token& at = peek();
    std::string op;
    if (at.kind == TokenKind::kOperator && (at.text == "==" || at.text == "!=" || at.text == "<" ||
                                            at.text == ">" || at.text == "<=" || at.text == ">=")) {
      op = at.text;
      next();
    } else if (is_name("in")) {
      op = "in";
      next();
    } else if (is_name("not") && is_name("in", 1)) {
      op = "not in";
      next();
      next();
    } else {
      return left;
    }
    left = make_binary(at, op, std::move(left), parse_math1());
  }
}

ExprPtr ExprParser::parse_binary_level(std::initializer_list<const char*> ops,
                                       ExprPtr (ExprParser::*operand)()) {
  ExprPtr left = (this->*operand)();
  while (true) {
    const char* matched = nullptr;
    for (const char* op : ops) {
      if (is_op(op)) matched = op;
    }
    if (matched == nullptr) return left;
    const Token& at = next();
    left = make_binary(at, matched, std::move(left), (this->*operand)());
  }
}

ExprPtr ExprParser::parse_unary(bool with_filter) {
  DepthGuard guard(*this);
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    const Token& at = next();
    node = make_expr(ExprKind::kUnary, at);
    node->name = at.text;
    node->args.push_back(parse_unary(false));
  } else {
    node = parse_postfix(parse_primary());
  }
  if (with_filter) return parse_filters(std::move(node));
  return seal(std::move(node));
}

ExprPtr ExprParser::parse_primary() {
  DepthGuard guard(*this);
  const Token& t = peek();
  switch (t.kind) {
    case TokenKind::kName: {
      next();
      auto e = make_expr(ExprKind::kLiteral, t);
      if (t.text == "true" || t.text == "True") {
        e->value = Value(true);
      } else if (t.text == "false" || t.text == "False") {
        e->value = Value(false);
      } else if (t.text == "none" || t.text == "None") {
        e->value = Value(None{});
      } else {
        e->kind = ExprKind::kName;
        e->name = t.text;
      }
      return e;
    }
    case TokenKind::kString: {
      auto e = make_expr(ExprKind::kLiteral, t);
      std::string s;
      while (peek().kind == TokenKind::kString) s += next().text;  // "a" "b" concatenates
      e->value = Value(std::move(s));
      return e;
    }
    case TokenKind::kInt:
    case TokenKind::kFloat: {
      next();
      auto e = make_expr(ExprKind::kLiteral, t);
      e->value = t.kind == TokenKind::kInt ? Value(t.int_value) : Value(t.float_value);
      return e;
    }
    case TokenKind::kOperator:
      if (t.text == "(") {
        next();
        if (accept_op(")")) return make_expr(ExprKind::kList, t);  // empty tuple
        ExprPtr inner = parse_expression();
        if (is_op(",")) {
          auto tuple = make_expr(ExprKind::kList, t);
          tuple->args.push_back(std::move(inner));
          while (accept_op(",")) {
            if (is_op(")")) break;
            tuple->args.push_back(parse_expression());
          }
          inner = std::move(tuple);
        }
        expect_op(")");
        return seal(std::move(inner));
      }
      if (t.text == "[") {
        next();
        auto e = make_expr(ExprKind::kList, t);
        while (!accept_op("]")) {
          e->args.push_back(parse_expression());
          if (!is_op("]")) expect_op(",");
        }
        return seal(std::move(e));
      }
      if (t.text == "{") {
        next();
        auto e = make_expr(ExprKind::kDict, t);
        while (!accept_op("}")) {
          e->args.push_back(parse_expression());
          expect_op(":");
          e->args.push_back(parse_expression());
          if (!is_op("}")) expect_op(",");
        }
        return seal(std::move(e));
      }
      break;
    default:
      break;
  }
  error(t, fmt::format("unexpected {}", describe(t)));
}

ExprPtr ExprParser::parse_postfix(ExprPtr node) {
  while (true) {
    const Token& at = peek();
    if (accept_op(".")) {
      auto e = make_expr(ExprKind::kGetAttr, at);
      if (peek().kind == TokenKind::kInt) {  // `x.0` is `x[0]`
        e->kind = ExprKind::kGetItem;
        e->args.push_back(std::move(node));
        auto index = make_expr(ExprKind::kLiteral, peek());
        index->value = Value(next().int_value);
        e->args.push_back(std::move(index));
      } else {
        e->name = expect_name();
        e->args.push_back(std::move(node));
      }
      node = seal(std::move(e));
    } else if (accept_op("[")) {
      node = parse_subscript(at, std::move(node));
    } else if (is_op("(")) {
      auto e = make_expr(ExprKind::kCall, at);
      e->args.push_back(std::move(node));
      parse_call_args(*e);
      node = seal(std::move(e));
    } else {
      return node;
    }
  }
}

ExprPtr ExprParser::parse_subscript(const Token& at, ExprPtr node) {
  ExprPtr parts[3];
  int part = 0;
  bool is_slice = false;
  while (!accept_op("]")) {
    if (accept_op(":")) {
      if (++part > 2) error(peek(), "too many ':' in slice");
      is_slice = true;
      continue;
    }
    if (parts[part]) error(peek(), fmt::format("expected ']', got {}", describe(peek())));
    parts[part] = parse_expression();
  }
  auto e = make_expr(is_slice ? ExprKind::kSlice : ExprKind::kGetItem, at);
  e->args.push_back(std::move(node));
  if (!is_slice && !parts[0]) error(at, "empty subscript");
  e->args.push_back(std::move(parts[0]));
  if (is_slice) {
    e->args.push_back(std::move(parts[1]));
    e->args.push_back(std::move(parts[2]));
  }
  return seal(std::move(e));
}

// Parses `(a, b, name=c)` into e.args (appended) and e.kwargs.
void ExprParser::parse_call_args(Expr& e) {
  expect_op("(");
  while (!accept_op(")")) {
    if (peek().kind == TokenKind::kName && is_op("=", 1)) {
      std::string name = next().text;
      next();
      e.kwargs.emplace_back(std::move(name), parse_expression());
    } else {
      e.args.push_back(parse_expression());
    }
    if (!is_op(")")) expect_op(",");
  }
}

ExprPtr ExprParser::parse_filters(ExprPtr node) {
  while (true) {
    const Token& at = peek();
    if (accept_op("|")) {
      auto e = make_expr(ExprKind::kFilter, at);
      e->name = expect_name();
      e->args.push_back(std::move(node));
      if (is_op("(")) parse_call_args(*e);
      node = seal(std::move(e));
    } else if (is_name("is")) {
      next();
      auto e = make_expr(ExprKind::kTest, at);
      e->negated = accept_name("not");
      e->name = expect_name();
      e->args.push_back(std::move(node));
      if (is_op("(")) {
        parse_call_args(*e);
      } else if (starts_test_argument()) {
        e->args.push_back(parse_unary(false));
      }
      node = seal(std::move(e));
    } else {
      return node;
    }
  }
}

ExprPtr ExprParser::parse_filter_chain(ExprPtr node) {
  do {
    auto e = make_expr(ExprKind::kFilter, peek());
    e->name = expect_name();
    e->args.push_back(std::move(node));
    if (is_op("(")) parse_call_args(*e);
    node = seal(std::move(e));
  } while (accept_op("|"));
  return node;
}

// `x is equalto 3`, `x is sameas none`: a test may take one argument without parentheses.
bool ExprParser::starts_test_argument() const {
  const Token& t = peek();
  if (t.kind == TokenKind::kString || t.kind == TokenKind::kInt || t.kind == TokenKind::kFloat)
    return true;
  if (t.kind == TokenKind::kOperator) return t.text == "[" || t.text == "{";
  if (t.kind != TokenKind::kName) return false;
  for (const char* stop : {"else", "or", "and", "if", "in", "not", "is"}) {
    if (t.text == stop) return false;
  }
  return true;
}

}  // namespace moon::jinja
