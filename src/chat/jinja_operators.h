// Python semantics for Jinja's operators, subscripts and attribute lookup.
#pragma once

#include <string>

#include "chat/jinja_value.h"

namespace moon::jinja {

// Caps any single string or list a template builds, so `'x' * 10**12` or repeated doubling
// fails cleanly instead of exhausting memory.
constexpr size_t kMaxValueSize = size_t{1} << 26;

// Caps the bytes one render builds with + * ~ over its whole run: values parked in lists or
// namespaces escape the per-value cap, so without this a loop could still eat all memory.
// Installed by the interpreter for the duration of a render, on the rendering thread.
class BuildBudget {
 public:
  explicit BuildBudget(size_t limit);
  ~BuildBudget();
  BuildBudget(const BuildBudget&) = delete;
  BuildBudget& operator=(const BuildBudget&) = delete;
  // Fails once the current render's total exceeds its limit; no-op outside a render.
  static void charge(size_t bytes);

 private:
  size_t limit_;
  size_t used_ = 0;
  BuildBudget* previous_;
};

// Arithmetic, comparison and `~`: op is one of + - * / // % ** ~ == != < > <= >=.
Value binary_op(const std::string& op, const Value& left, const Value& right);
// Python's `item in container`.
bool contains(const Value& container, const Value& item);
// Jinja's getattr/getitem: dict keys, list/string indices (negative from the end), and bound
// methods; missing entries are Undefined, as in Jinja.
Value get_item(const Value& object, const Value& key);
Value get_attr(const Value& object, const std::string& name);
Value slice(const Value& object, const Value& start, const Value& stop, const Value& step);
// Items a `for` loop visits: list elements, dict keys, string characters.
List iterate(const Value& value);
// Raises the "x is undefined" error that using an Undefined in an operation gets.
[[noreturn]] void undefined_error(const Value& value);

}  // namespace moon::jinja
