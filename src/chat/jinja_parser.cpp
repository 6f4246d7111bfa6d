#include "chat/jinja_parser.h"

#include <fmt/format.h>

#include <initializer_list>

#include "chat/jinja_expr_parser.h"

namespace moon::jinja {
namespace {

class Parser : public ExprParser {
 public:
  using ExprParser::ExprParser;

  std::shared_ptr<const Program> run() {
    auto program = std::make_shared<Program>();
    std::string end_tag = parse_body(program->body, {});
    if (!end_tag.empty()) error(peek(), fmt::format("unexpected '{}'", end_tag));
    return program;
  }

 private:
  // Parses statements until a block tag whose name is in `ends`; returns that name (the tag's
  // `{% name` is consumed, the rest is not) or "" at the end of the template.
  std::string parse_body(Body& body, std::initializer_list<const char*> ends) {
    DepthGuard guard(*this);
    while (true) {
      const Token& t = peek();
      if (t.kind == TokenKind::kEnd) {
        // The last end tag is the closing one ('endfor' rather than 'else').
        if (ends.size() != 0)
          error(t, fmt::format("unexpected end of template, expected '{}'", *(ends.end() - 1)));
        return "";
      }
      if (t.kind == TokenKind::kText) {
        auto stmt = make_stmt(StmtKind::kText, t);
        stmt->text = t.text;
        body.push_back(std::move(stmt));
        next();
        continue;
      }
      if (t.kind == TokenKind::kVarBegin) {
        next();
        auto stmt = make_stmt(StmtKind::kOutput, t);
        stmt->expr = parse_expression();
        if (peek().kind != TokenKind::kVarEnd)
          error(peek(), fmt::format("expected '}}}}', got {}", describe(peek())));
        next();
        body.push_back(std::move(stmt));
        continue;
      }
      if (t.kind != TokenKind::kBlockBegin) error(t, fmt::format("unexpected {}", describe(t)));
      const Token& tag = peek(1);
      if (tag.kind != TokenKind::kName) error(tag, "expected a tag name after '{%'");
      for (const char* end : ends) {
        if (tag.text == end) {
          next();
          next();
          return end;
        }
      }
      next();
      body.push_back(parse_statement());
    }
  }

  StmtPtr make_stmt(StmtKind kind, const Token& at) {
    auto stmt = std::make_unique<Stmt>();
    stmt->kind = kind;
    stmt->line = at.line;
    stmt->column = at.column;
    return stmt;
  }

  StmtPtr parse_statement() {
    const Token& tag = next();
    if (tag.text == "if") return parse_if(tag);
    if (tag.text == "for") return parse_for(tag);
    if (tag.text == "set") return parse_set(tag);
    if (tag.text == "macro") return parse_macro(tag);
    if (tag.text == "break" || tag.text == "continue") {
      auto stmt = make_stmt(tag.text == "break" ? StmtKind::kBreak : StmtKind::kContinue, tag);
      expect_block_end();
      return stmt;
    }
    if (tag.text == "filter") {
      auto stmt = make_stmt(StmtKind::kFilterBlock, tag);
      auto body = std::make_unique<Expr>();
      body->kind = ExprKind::kName;
      body->name = kFilterBody;
      stmt->expr = parse_filter_chain(std::move(body));
      expect_block_end();
      parse_body(stmt->body, {"endfilter"});
      expect_block_end();
      return stmt;
    }
    if (tag.text == "generation") {  // HF's marker for assistant masks: renders its body
      auto stmt = make_stmt(StmtKind::kIf, tag);
      expect_block_end();
      Body body;
      parse_body(body, {"endgeneration"});
      expect_block_end();
      auto always = std::make_unique<Expr>();
      always->kind = ExprKind::kLiteral;
      always->value = Value(true);
      stmt->branches.emplace_back(std::move(always), std::move(body));
      return stmt;
    }
    error(tag, fmt::format("unknown tag '{}'", tag.text));
  }

  StmtPtr parse_if(const Token& tag) {
    auto stmt = make_stmt(StmtKind::kIf, tag);
    while (true) {
      ExprPtr cond = parse_expression();
      expect_block_end();
      Body body;
      std::string end = parse_body(body, {"elif", "else", "endif"});
      stmt->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") continue;
      if (end == "else") {
        expect_block_end();
        parse_body(stmt->else_body, {"endif"});
      }
      expect_block_end();
      return stmt;
    }
  }

  StmtPtr parse_for(const Token& tag) {
    auto stmt = make_stmt(StmtKind::kFor, tag);
    do {
      stmt->targets.push_back(expect_name());
    } while (accept_op(","));
    if (!accept_name("in")) error(peek(), fmt::format("expected 'in', got {}", describe(peek())));
    stmt->expr = parse_or();  // no ternary here: a trailing `if` filters the loop
    if (accept_name("if")) stmt->filter = parse_expression();
    accept_name("recursive");
    expect_block_end();
    std::string end = parse_body(stmt->body, {"else", "endfor"});
    if (end == "else") {
      expect_block_end();
      parse_body(stmt->else_body, {"endfor"});
    }
    expect_block_end();
    return stmt;
  }

  StmtPtr parse_set(const Token& tag) {
    auto stmt = make_stmt(StmtKind::kSet, tag);
    stmt->targets.push_back(expect_name());
    if (accept_op(".")) {
      stmt->target_attr = expect_name();
    } else {
      while (accept_op(",")) stmt->targets.push_back(expect_name());
    }
    if (accept_op("=")) {
      stmt->expr = parse_expression();
      if (is_op(",")) {  // `set a = 1, 2` makes a tuple
        auto tuple = std::make_unique<Expr>();
        tuple->kind = ExprKind::kList;
        tuple->args.push_back(std::move(stmt->expr));
        while (accept_op(",")) tuple->args.push_back(parse_expression());
        stmt->expr = std::move(tuple);
      }
      expect_block_end();
      return stmt;
    }
    if (stmt->targets.size() != 1 || !stmt->target_attr.empty()) error(peek(), "expected '='");
    expect_block_end();
    parse_body(stmt->body, {"endset"});
    expect_block_end();
    return stmt;
  }

  StmtPtr parse_macro(const Token& tag) {
    auto stmt = make_stmt(StmtKind::kMacro, tag);
    stmt->text = expect_name();
    expect_op("(");
    while (!accept_op(")")) {
      std::string param = expect_name();
      ExprPtr default_value;
      if (accept_op("=")) default_value = parse_expression();
      stmt->params.emplace_back(std::move(param), std::move(default_value));
      if (!is_op(")")) expect_op(",");
    }
    expect_block_end();
    parse_body(stmt->body, {"endmacro"});
    if (peek().kind == TokenKind::kName) next();  // {% endmacro name %}
    expect_block_end();
    return stmt;
  }
};

}  // namespace

std::shared_ptr<const Program> parse_template(std::string_view source,
                                              const LexerOptions& options) {
  return Parser(tokenize(source, options)).run();
}

}  // namespace moon::jinja
