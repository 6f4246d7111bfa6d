// The syntax tree. One generic node type per category keeps the parser and interpreter small;
// `kind` says which fields are meaningful.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace moon::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;
using KeywordArgs = std::vector<std::pair<std::string, ExprPtr>>;

enum class ExprKind {
  kLiteral,  // value
  kName,     // name
  kList,     // args
  kDict,     // args as key, value, key, value, ...
  kGetAttr,  // args[0] . name
  kGetItem,  // args[0] [ args[1] ]
  kSlice,    // args[0] [ args[1] : args[2] : args[3] ] (null parts allowed)
  kCall,     // args[0] ( args[1..], kwargs )
  kFilter,   // args[0] | name ( args[1..], kwargs )
  kTest,     // args[0] is [not] name ( args[1..] )
  kUnary,    // name ("not", "-", "+") args[0]
  kBinary,   // args[0] name args[1]; name is the operator, "and"/"or"/"in"/"not in" included
  kTernary,  // args[0] if args[1] else args[2] (args[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0;
  int column = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  KeywordArgs kwargs;
  bool negated = false;
  int height = 1;  // longest path to a leaf, bounded by the parser
};

enum class StmtKind {
  kText,    // text
  kOutput,  // {{ expr }}
  kIf,      // branches (cond, body); else_body
  kFor,     // targets in expr [if filter]; body; else_body
  kSet,     // targets (or target_attr on targets[0]) = expr, or a block body
  kMacro,   // name(params) body
  kBreak,
  kContinue,
  kFilterBlock,  // {% filter f %}body{% endfilter %}: expr applies f to the name kFilterBody
};

// The variable a filter block's expression reads its rendered body from; not a valid
// identifier, so templates cannot touch it.
inline constexpr const char* kFilterBody = " filter body";

struct Stmt {
  StmtKind kind;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string target_attr;  // `set ns.attr = ...`
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  KeywordArgs params;  // macro parameters with optional defaults
};

struct Program {
  Body body;
};

}  // namespace moon::jinja
