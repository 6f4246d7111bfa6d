// Filters, tests, methods of strings/dicts/lists, and global functions.
#pragma once

#include <optional>
#include <string>

#include "chat/jinja_value.h"

namespace moon::jinja {

// `value | name(args)`; unknown filters are an error.
Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
// `value is name(args)`; unknown tests are an error.
bool apply_test(const std::string& name, const Value& input, CallArgs& args);
// `object.name` as a callable bound to object (str.split, dict.items, list.append, ...).
std::optional<Value> bound_method(const Value& object, const std::string& name);

struct GlobalsOptions {
  // "25 Nov 2026"-style date the template should see as today (strftime_now); empty: clock.
  std::string date_string;
  int64_t max_range = 1'000'000;
};
// Adds range, namespace, dict, raise_exception and strftime_now to `globals`.
void add_global_functions(Dict& globals, const GlobalsOptions& options);

// Helpers shared by filters and methods.
std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right);
std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count);
List split_string(const std::string& s, const Value* sep, int64_t max_split);
std::string ascii_upper(std::string s);
std::string ascii_lower(std::string s);
std::string title_case(const std::string& s);
std::string capitalize(const std::string& s);

}  // namespace moon::jinja
