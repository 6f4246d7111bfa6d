// Tree-walking evaluation of a parsed template against a dict of variables.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "chat/jinja_ast.h"

namespace moon::jinja {

// Guards against runaway templates: all are hard errors, never truncation.
struct Limits {
  int max_call_depth = 64;  // nested macro calls
  // Nested statements and expressions being evaluated, macro bodies included: keeps the C++
  // stack bounded whatever the template's shape.
  int max_eval_depth = 500;
  int64_t max_loop_iterations = 1'000'000;  // over the whole render
  size_t max_output_bytes = size_t{32} << 20;
  size_t max_built_bytes = size_t{512} << 20;  // strings/lists made by + * ~, summed
};

class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
  // The innermost binding of `name`, or nullptr.
  Value* find(const std::string& name);
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  std::shared_ptr<Scope> parent_;
  std::unordered_map<std::string, Value> vars_;
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
 public:
  Interpreter(std::shared_ptr<const Program> program, Limits limits);
  // Throws TemplateError; messages carry the line and column of the failing statement.
  std::string render(const Dict& globals);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  Flow exec_for(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  void exec_set(const Stmt& stmt, const ScopePtr& scope);
  Value make_macro(const Stmt& stmt, const ScopePtr& scope);
  void append(std::string& out, const std::string& text) const;

  Value eval(const Expr& expr, const ScopePtr& scope);
  Value eval_binary(const Expr& expr, const ScopePtr& scope);
  Value eval_call(const Expr& expr, const ScopePtr& scope);
  CallArgs eval_args(const Expr& expr, size_t first, const ScopePtr& scope);

  std::shared_ptr<const Program> program_;
  Limits limits_;
  ScopePtr root_;
  int call_depth_ = 0;
  int eval_depth_ = 0;
  int64_t iterations_ = 0;
};

}  // namespace moon::jinja
