#include "chat/jinja_interpreter.h"

#include <fmt/format.h>

#include "chat/jinja_builtins.h"
#include "chat/jinja_operators.h"

namespace moon::jinja {
namespace {

// An error already tagged with its template position, so outer statements do not re-tag it.
class LocatedError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

class DepthGuard {
 public:
  DepthGuard(int& depth, int limit) : depth_(depth) {
    if (++depth_ > limit) {
      --depth_;
      fail(fmt::format("template evaluation nested deeper than {} levels", limit));
    }
  }
  ~DepthGuard() { --depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  int& depth_;
};

}  // namespace

Value* Scope::find(const std::string& name) {
  for (Scope* s = this; s != nullptr; s = s->parent_.get()) {
    auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(std::shared_ptr<const Program> program, Limits limits)
    : program_(std::move(program)), limits_(limits) {}

std::string Interpreter::render(const Dict& globals) {
  ContainerArena arena;  // declared first: it empties the render's containers last
  auto globals_scope = std::make_shared<Scope>(nullptr);
  for (const auto& [key, value] : globals.items) globals_scope->set(key, value);
  root_ = std::make_shared<Scope>(globals_scope);
  BuildBudget budget(limits_.max_built_bytes);
  std::string out;
  exec_body(program_->body, root_, out);
  root_.reset();
  return out;
}

void Interpreter::append(std::string& out, const std::string& text) const {
  if (out.size() + text.size() > limits_.max_output_bytes) {
    fail(fmt::format("template output exceeds {} bytes", limits_.max_output_bytes));
  }
  out += text;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope,
                                         std::string& out) {
  for (const StmtPtr& stmt : body) {
    Flow flow = exec(*stmt, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  try {
    DepthGuard guard(eval_depth_, limits_.max_eval_depth);
    switch (stmt.kind) {
      case StmtKind::kText:
        append(out, stmt.text);
        return Flow::kNormal;
      case StmtKind::kOutput:
        append(out, eval(*stmt.expr, scope).to_string());
        return Flow::kNormal;
      case StmtKind::kIf:
        for (const auto& [cond, body] : stmt.branches) {
          if (eval(*cond, scope).truthy()) return exec_body(body, scope, out);
        }
        return exec_body(stmt.else_body, scope, out);
      case StmtKind::kFor:
        return exec_for(stmt, scope, out);
      case StmtKind::kSet:
        exec_set(stmt, scope);
        return Flow::kNormal;
      case StmtKind::kMacro:
        scope->set(stmt.text, make_macro(stmt, scope));
        return Flow::kNormal;
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kFilterBlock: {
        auto inner = std::make_shared<Scope>(scope);
        std::string captured;
        exec_body(stmt.body, inner, captured);
        inner->set(kFilterBody, Value(std::move(captured)));
        append(out, eval(*stmt.expr, inner).to_string());
        return Flow::kNormal;
      }
    }
  } catch (const LocatedError&) {
    throw;
  } catch (const TemplateError& e) {
    throw LocatedError(fmt::format("line {}, column {}: {}", stmt.line, stmt.column, e.what()));
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  List all = iterate(eval(*stmt.expr, scope));
  auto bind = [&](Scope& target, const Value& item) {
    if (stmt.targets.size() == 1) {
      target.set(stmt.targets[0], item);
      return;
    }
    List parts = iterate(item);
    if (parts.size() != stmt.targets.size()) {
      fail(fmt::format("cannot unpack {} values into {} loop variables", parts.size(),
                       stmt.targets.size()));
    }
    for (size_t i = 0; i < parts.size(); ++i) target.set(stmt.targets[i], parts[i]);
  };
  // `for x in xs if cond` filters before loop.index/length are computed, as in Jinja.
  List items;
  if (stmt.filter) {
    for (const Value& item : all) {
      auto probe = std::make_shared<Scope>(scope);
      bind(*probe, item);
      if (eval(*stmt.filter, probe).truthy()) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  if (items.empty()) return exec_body(stmt.else_body, scope, out);
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    if (++iterations_ > limits_.max_loop_iterations) {
      fail(fmt::format("template exceeded {} loop iterations", limits_.max_loop_iterations));
    }
    auto body_scope = std::make_shared<Scope>(scope);
    bind(*body_scope, items[static_cast<size_t>(i)]);
    Value loop = Value::dict();
    Dict& d = loop.as_dict();
    d.set("index", Value(i + 1));
    d.set("index0", Value(i));
    d.set("revindex", Value(n - i));
    d.set("revindex0", Value(n - i - 1));
    d.set("first", Value(i == 0));
    d.set("last", Value(i == n - 1));
    d.set("length", Value(n));
    d.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("previtem"));
    d.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("nextitem"));
    d.set("depth", Value(1));
    d.set("depth0", Value(0));
    d.set("cycle", Value::function([i](CallArgs& a) -> Value {
            if (a.positional.empty()) fail("loop.cycle needs arguments");
            return a.positional[static_cast<size_t>(i) % a.positional.size()];
          }));
    body_scope->set("loop", loop);
    Flow flow = exec_body(stmt.body, body_scope, out);
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::exec_set(const Stmt& stmt, const ScopePtr& scope) {
  Value value;
  if (stmt.expr) {
    value = eval(*stmt.expr, scope);
  } else {
    std::string captured;
    exec_body(stmt.body, scope, captured);
    value = Value(std::move(captured));
  }
  if (!stmt.target_attr.empty()) {
    Value* target = scope->find(stmt.targets[0]);
    if (target == nullptr || !target->is_dict()) {
      fail(fmt::format("cannot assign attribute '{}' on '{}': it is not a namespace",
                       stmt.target_attr, stmt.targets[0]));
    }
    target->as_dict().set(stmt.target_attr, std::move(value));
    return;
  }
  if (stmt.targets.size() == 1) {
    scope->set(stmt.targets[0], std::move(value));
    return;
  }
  List parts = iterate(value);
  if (parts.size() != stmt.targets.size()) {
    fail(fmt::format("cannot unpack {} values into {} names", parts.size(), stmt.targets.size()));
  }
  for (size_t i = 0; i < parts.size(); ++i) scope->set(stmt.targets[i], parts[i]);
}

Value Interpreter::make_macro(const Stmt& stmt, const ScopePtr& scope) {
  // The macro holds its defining scope weakly: the scope usually holds the macro, and a strong
  // reference both ways would leak. The interpreter outlives every call made while rendering.
  std::weak_ptr<Scope> defining = scope;
  const Stmt* macro = &stmt;
  return Value::function([this, macro, defining](CallArgs& args) -> Value {
    if (call_depth_ >= limits_.max_call_depth) {
      fail(fmt::format("macro recursion deeper than {} calls", limits_.max_call_depth));
    }
    ScopePtr parent = defining.lock();
    auto local = std::make_shared<Scope>(parent ? parent : root_);
    for (size_t i = 0; i < macro->params.size(); ++i) {
      const auto& [name, default_value] = macro->params[i];
      const Value* given = args.get(i, name);
      if (given != nullptr) {
        local->set(name, *given);
      } else if (default_value) {
        local->set(name, eval(*default_value, local));
      } else {
        local->set(name, Value::undefined(name));
      }
    }
    ++call_depth_;
    std::string out;
    try {
      exec_body(macro->body, local, out);
    } catch (...) {
      --call_depth_;
      throw;
    }
    --call_depth_;
    return Value(std::move(out));
  });
}

Value Interpreter::eval(const Expr& expr, const ScopePtr& scope) {
  DepthGuard guard(eval_depth_, limits_.max_eval_depth);
  switch (expr.kind) {
    case ExprKind::kLiteral:
      return expr.value;
    case ExprKind::kName: {
      Value* found = scope->find(expr.name);
      return found != nullptr ? *found : Value::undefined(expr.name);
    }
    case ExprKind::kList: {
      List items;
      items.reserve(expr.args.size());
      for (const ExprPtr& e : expr.args) items.push_back(eval(*e, scope));
      return Value::list(std::move(items));
    }
    case ExprKind::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < expr.args.size(); i += 2) {
        Value key = eval(*expr.args[i], scope);
        if (!key.is_string() && !key.is_int())
          fail(fmt::format("dict keys must be strings, got {}", key.type_name()));
        d.as_dict().set(key.to_string(), eval(*expr.args[i + 1], scope));
      }
      return d;
    }
    case ExprKind::kGetAttr:
      return get_attr(eval(*expr.args[0], scope), expr.name);
    case ExprKind::kGetItem:
      return get_item(eval(*expr.args[0], scope), eval(*expr.args[1], scope));
    case ExprKind::kSlice: {
      Value object = eval(*expr.args[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) {
        if (expr.args[i + 1]) parts[i] = eval(*expr.args[i + 1], scope);
      }
      return slice(object, parts[0], parts[1], parts[2]);
    }
    case ExprKind::kCall:
      return eval_call(expr, scope);
    case ExprKind::kFilter: {
      Value input = eval(*expr.args[0], scope);
      CallArgs args = eval_args(expr, 1, scope);
      return apply_filter(expr.name, input, args);
    }
    case ExprKind::kTest: {
      Value input = eval(*expr.args[0], scope);
      CallArgs args = eval_args(expr, 1, scope);
      return Value(apply_test(expr.name, input, args) != expr.negated);
    }
    case ExprKind::kUnary: {
      Value v = eval(*expr.args[0], scope);
      if (expr.name == "not") return Value(!v.truthy());
      if (v.is_undefined()) undefined_error(v);
      if (expr.name == "-") {
        if (v.is_int() && v.as_int() != INT64_MIN) return Value(-v.as_int());
        if (v.is_number() || v.is_bool()) return Value(-v.as_number());
        fail(fmt::format("bad operand type for unary -: {}", v.type_name()));
      }
      if (!v.is_number() && !v.is_bool())
        fail(fmt::format("bad operand type for unary +: {}", v.type_name()));
      return v;
    }
    case ExprKind::kBinary:
      return eval_binary(expr, scope);
    case ExprKind::kTernary:
      if (eval(*expr.args[1], scope).truthy()) return eval(*expr.args[0], scope);
      return expr.args[2] ? eval(*expr.args[2], scope) : Value::undefined("");
  }
  fail("unknown expression");
}

Value Interpreter::eval_binary(const Expr& expr, const ScopePtr& scope) {
  const std::string& op = expr.name;
  Value left = eval(*expr.args[0], scope);
  // Python's and/or return an operand, not a bool, and short-circuit.
  if (op == "and") return left.truthy() ? eval(*expr.args[1], scope) : left;
  if (op == "or") return left.truthy() ? left : eval(*expr.args[1], scope);
  Value right = eval(*expr.args[1], scope);
  if (op == "in") return Value(contains(right, left));
  if (op == "not in") return Value(!contains(right, left));
  return binary_op(op, left, right);
}

CallArgs Interpreter::eval_args(const Expr& expr, size_t first, const ScopePtr& scope) {
  CallArgs args;
  for (size_t i = first; i < expr.args.size(); ++i)
    args.positional.push_back(eval(*expr.args[i], scope));
  for (const auto& [name, value] : expr.kwargs) args.named.emplace_back(name, eval(*value, scope));
  return args;
}

Value Interpreter::eval_call(const Expr& expr, const ScopePtr& scope) {
  Value callee = eval(*expr.args[0], scope);
  if (!callee.is_function()) {
    const Expr& target = *expr.args[0];
    std::string what = target.kind == ExprKind::kName || target.kind == ExprKind::kGetAttr
                           ? "'" + target.name + "'"
                           : "value";
    if (callee.is_undefined()) fail(fmt::format("{} is undefined and cannot be called", what));
    fail(fmt::format("{} of type {} is not callable", what, callee.type_name()));
  }
  CallArgs args = eval_args(expr, 1, scope);
  return callee.as_function()(args);
}

}  // namespace moon::jinja
