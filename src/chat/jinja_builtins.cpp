// Filters and tests. Semantics follow Jinja's documentation; where @huggingface/jinja (the
// renderer of the golden files) differs, the golden renders win.
#include "chat/jinja_builtins.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "chat/jinja_operators.h"

namespace moon::jinja {
namespace {

const Value& arg_or(const CallArgs& args, size_t pos, std::string_view name,
                    const Value& fallback) {
  const Value* v = args.get(pos, name);
  return v != nullptr ? *v : fallback;
}

const std::string& require_string(const Value& v, const char* what) {
  if (!v.is_string()) {
    if (v.is_undefined()) undefined_error(v);
    fail(fmt::format("{} expects a string, got {}", what, v.type_name()));
  }
  return v.as_string();
}

// Follows a dotted attribute path ("function.name"), as Jinja's attribute= arguments do.
Value attribute_path(const Value& v, const std::string& path) {
  Value current = v;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric =
        !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit) && part.size() < 18;
    current = numeric ? get_item(current, Value(static_cast<int64_t>(std::stoll(part))))
                      : get_attr(current, part);
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

// The test and its arguments for select/reject(test, args...) starting at `first`.
bool run_test_from(const CallArgs& args, size_t first, const Value& item) {
  if (args.positional.size() <= first) return item.truthy();
  const Value& test = args.positional[first];
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(first) + 1,
                              args.positional.end());
  return apply_test(require_string(test, "select test name"), item, test_args);
}

Value select_items(const Value& input, const CallArgs& args, bool by_attribute, bool keep) {
  List out;
  for (const Value& item : iterate(input)) {
    bool passed;
    if (by_attribute) {
      if (args.positional.empty()) fail("selectattr/rejectattr need an attribute name");
      Value attr = attribute_path(item, require_string(args.positional[0], "attribute name"));
      passed = run_test_from(args, 1, attr);
    } else {
      passed = run_test_from(args, 0, item);
    }
    if (passed == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value map_items(const Value& input, CallArgs& args) {
  List out;
  const Value* attribute = args.get(SIZE_MAX, "attribute");
  for (const Value& item : iterate(input)) {
    if (attribute != nullptr) {
      Value v = attribute_path(item, attribute->to_string());
      const Value* fallback = args.get(SIZE_MAX, "default");
      out.push_back(v.is_undefined() && fallback != nullptr ? *fallback : v);
    } else {
      if (args.positional.empty()) fail("map needs a filter name or attribute=");
      CallArgs rest;
      rest.positional.assign(args.positional.begin() + 1, args.positional.end());
      out.push_back(
          apply_filter(require_string(args.positional[0], "map filter name"), item, rest));
    }
  }
  return Value::list(std::move(out));
}

int64_t to_int(const Value& v, const Value& fallback) {
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool();
  if (v.is_float()) {
    double d = v.as_float();
    if (std::isfinite(d) && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
  }
  if (v.is_string()) {
    std::string s = strip_chars(v.as_string(), nullptr, true, true);
    try {
      size_t used = 0;
      int64_t i = std::stoll(s, &used);
      if (used == s.size()) return i;
      double d = std::stod(s, &used);
      if (used == s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18)
        return static_cast<int64_t>(d);
    } catch (const std::exception&) {
    }
  }
  return fallback.is_int() ? fallback.as_int() : 0;
}

double to_float(const Value& v, double fallback) {
  if (v.is_number() || v.is_bool()) return v.as_number();
  if (v.is_string()) {
    try {
      size_t used = 0;
      std::string s = strip_chars(v.as_string(), nullptr, true, true);
      double d = std::stod(s, &used);
      if (used == s.size()) return d;
    } catch (const std::exception&) {
    }
  }
  return fallback;
}

Value sorted(const Value& input, const CallArgs& args) {
  List items = iterate(input);
  bool reverse = arg_or(args, 0, "reverse", Value(false)).truthy();
  const Value* attribute = args.get(SIZE_MAX, "attribute");
  auto key = [&](const Value& v) {
    return attribute ? attribute_path(v, attribute->to_string()) : v;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    Value ka = key(a), kb = key(b);
    if (ka.is_string() && kb.is_string() &&
        !arg_or(args, 1, "case_sensitive", Value(false)).truthy()) {
      ka = Value(ascii_lower(ka.as_string()));
      kb = Value(ascii_lower(kb.as_string()));
    }
    return binary_op("<", reverse ? kb : ka, reverse ? ka : kb).as_bool();
  });
  return Value::list(std::move(items));
}

std::string indent_text(const std::string& s, const Value& width, bool first, bool blank) {
  std::string pad =
      width.is_string()
          ? width.as_string()
          : std::string(static_cast<size_t>(std::clamp<int64_t>(to_int(width, Value(4)), 0, 256)),
                        ' ');
  std::string out;
  size_t start = 0;
  bool is_first = true;
  while (start <= s.size()) {
    size_t nl = s.find('\n', start);
    std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    bool indent = is_first ? first : (blank || !line.empty());
    if (indent) out += pad;
    out += line;
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
    is_first = false;
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

Value apply_filter(const std::string& name, const Value& input, CallArgs& args) {
  static const Value kUndefined;
  if (name == "safe") return input;
  if (name == "trim")
    return Value(strip_chars(input.to_string(), args.get(0, "chars"), true, true));
  if (name == "upper") return Value(ascii_upper(input.to_string()));
  if (name == "lower") return Value(ascii_lower(input.to_string()));
  if (name == "capitalize") return Value(capitalize(input.to_string()));
  if (name == "title") return Value(title_case(input.to_string()));
  if (name == "string") return Value(input.to_string());
  if (name == "e" || name == "escape" || name == "forceescape")
    return Value(html_escape(input.to_string()));
  if (name == "pprint") return Value(input.repr());
  if (name == "tojson") {
    const Value& indent = arg_or(args, 0, "indent", kUndefined);
    return Value(to_json_text(
        input,
        indent.is_int() ? static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64)) : 0));
  }
  if (name == "length" || name == "count") {
    if (input.is_string()) return Value(static_cast<int64_t>(utf8_length(input.as_string())));
    if (input.is_list()) return Value(static_cast<int64_t>(input.as_list().size()));
    if (input.is_dict()) return Value(static_cast<int64_t>(input.as_dict().items.size()));
    if (input.is_undefined()) return Value(0);
    fail(fmt::format("object of type {} has no length", input.type_name()));
  }
  if (name == "replace") {
    if (args.positional.size() < 2) fail("replace needs two arguments");
    const Value& count = arg_or(args, 2, "count", kUndefined);
    return Value(replace_all(input.to_string(), args.positional[0].to_string(),
                             args.positional[1].to_string(), count.is_int() ? count.as_int() : -1));
  }
  if (name == "join") {
    std::string sep = arg_or(args, 0, "d", Value("")).to_string();
    const Value* attribute = args.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(input)) {
      if (!first) out += sep;
      first = false;
      out += (attribute ? attribute_path(item, attribute->to_string()) : item).to_string();
      if (out.size() > kMaxValueSize) fail("join result too large");
    }
    return Value(std::move(out));
  }
  if (name == "default" || name == "d") {
    bool boolean = arg_or(args, 1, "boolean", Value(false)).truthy();
    if (input.is_undefined() || (boolean && !input.truthy()))
      return arg_or(args, 0, "default_value", Value(""));
    return input;
  }
  if (name == "first" || name == "last") {
    List items = iterate(input);
    if (items.empty()) return Value::undefined("");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::list(iterate(input));
  if (name == "int") return Value(to_int(input, arg_or(args, 0, "default", Value(0))));
  if (name == "float")
    return Value(to_float(input, to_float(arg_or(args, 0, "default", Value(0.0)), 0.0)));
  if (name == "abs") {
    if (input.is_int())
      return Value(input.as_int() == INT64_MIN ? input.as_int() : std::abs(input.as_int()));
    return Value(std::fabs(input.as_number()));
  }
  if (name == "round") {
    double precision = static_cast<double>(
        std::clamp<int64_t>(to_int(arg_or(args, 0, "precision", Value(0)), Value(0)), 0, 15));
    std::string method = arg_or(args, 1, "method", Value("common")).to_string();
    double scale = std::pow(10.0, precision), x = input.as_number() * scale;
    double r = method == "floor" ? std::floor(x) : method == "ceil" ? std::ceil(x) : std::round(x);
    return Value(r / scale);
  }
  if (name == "items") {
    if (input.is_undefined()) return Value::list();
    if (!input.is_dict())
      fail(fmt::format("items filter expects a mapping, got {}", input.type_name()));
    List out;
    for (const auto& [key, item] : input.as_dict().items)
      out.push_back(Value::list({Value(key), item}));
    return Value::list(std::move(out));
  }
  if (name == "dictsort") {
    if (!input.is_dict()) fail("dictsort expects a mapping");
    Value pairs = apply_filter("items", input, args);
    List& items = pairs.as_list();
    std::stable_sort(items.begin(), items.end(), [](const Value& a, const Value& b) {
      return binary_op("<", a.as_list()[0], b.as_list()[0]).as_bool();
    });
    return pairs;
  }
  if (name == "selectattr" || name == "rejectattr")
    return select_items(input, args, true, name == "selectattr");
  if (name == "select" || name == "reject")
    return select_items(input, args, false, name == "select");
  if (name == "map") return map_items(input, args);
  if (name == "attr") return get_attr(input, arg_or(args, 0, "name", Value("")).to_string());
  if (name == "sort") return sorted(input, args);
  if (name == "reverse") {
    if (input.is_string()) {
      std::u32string chars = utf8_decode(input.as_string());
      std::reverse(chars.begin(), chars.end());
      return Value(utf8_encode(chars));
    }
    List items = iterate(input);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (name == "unique") {
    List out;
    for (const Value& item : iterate(input)) {
      if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    }
    return Value::list(std::move(out));
  }
  if (name == "sum") {
    const Value* attribute = args.get(SIZE_MAX, "attribute");
    Value total = arg_or(args, 1, "start", Value(0));
    for (const Value& item : iterate(input)) {
      total =
          binary_op("+", total, attribute ? attribute_path(item, attribute->to_string()) : item);
    }
    return total;
  }
  if (name == "min" || name == "max") {
    List items = iterate(input);
    if (items.empty()) return Value::undefined("");
    Value best = items[0];
    for (const Value& item : items) {
      if (binary_op(name == "min" ? "<" : ">", item, best).as_bool()) best = item;
    }
    return best;
  }
  if (name == "indent") {
    return Value(indent_text(input.to_string(), arg_or(args, 0, "width", Value(4)),
                             arg_or(args, 1, "first", Value(false)).truthy(),
                             arg_or(args, 2, "blank", Value(false)).truthy()));
  }
  if (name == "wordcount")
    return Value(static_cast<int64_t>(split_string(input.to_string(), nullptr, -1).size()));
  if (name == "format") {
    // printf-style with %s only, which is all chat templates use.
    std::string fmt_str = input.to_string(), out;
    size_t next = 0;
    for (size_t i = 0; i < fmt_str.size(); ++i) {
      if (fmt_str[i] == '%' && i + 1 < fmt_str.size()) {
        char spec = fmt_str[++i];
        if (spec == '%') {
          out += '%';
        } else {
          if (next >= args.positional.size()) fail("not enough arguments for format string");
          out += args.positional[next++].to_string();
        }
      } else {
        out += fmt_str[i];
      }
    }
    return Value(std::move(out));
  }
  fail(fmt::format("unknown filter '{}'", name));
}

bool apply_test(const std::string& name, const Value& input, CallArgs& args) {
  static const Value kUndefined;
  const Value& arg = arg_or(args, 0, "", kUndefined);
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return input.is_none();
  if (name == "string") return input.is_string();
  if (name == "number") return input.is_number();
  if (name == "integer") return input.is_int();
  if (name == "float") return input.is_float();
  if (name == "boolean") return input.is_bool();
  if (name == "true") return input.is_bool() && input.as_bool();
  if (name == "false") return input.is_bool() && !input.as_bool();
  if (name == "mapping") return input.is_dict();
  if (name == "iterable") return input.is_list() || input.is_dict() || input.is_string();
  if (name == "sequence") return input.is_list() || input.is_dict() || input.is_string();
  if (name == "callable") return input.is_function();
  if (name == "equalto" || name == "eq" || name == "==") return input == arg;
  if (name == "ne" || name == "!=") return !(input == arg);
  if (name == "sameas") {
    if (input.kind() != arg.kind()) return false;
    if (input.is_list() || input.is_dict()) return input == arg;  // identity is not tracked
    return input == arg;
  }
  if (name == "gt" || name == ">" || name == "greaterthan")
    return binary_op(">", input, arg).as_bool();
  if (name == "ge" || name == ">=") return binary_op(">=", input, arg).as_bool();
  if (name == "lt" || name == "<" || name == "lessthan")
    return binary_op("<", input, arg).as_bool();
  if (name == "le" || name == "<=") return binary_op("<=", input, arg).as_bool();
  if (name == "in") return contains(arg, input);
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (!input.is_int())
      fail(fmt::format("test '{}' expects an integer, got {}", name, input.type_name()));
    int64_t divisor = name == "divisibleby" ? (arg.is_int() ? arg.as_int() : 0) : 2;
    if (divisor == 0) fail("divisibleby needs a non-zero integer");
    int64_t m = input.as_int() % divisor;
    return name == "odd" ? m != 0 : m == 0;
  }
  if (name == "lower")
    return input.is_string() && ascii_lower(input.as_string()) == input.as_string();
  if (name == "upper")
    return input.is_string() && ascii_upper(input.as_string()) == input.as_string();
  if (name == "escaped") return false;
  fail(fmt::format("unknown test '{}'", name));
}

}  // namespace moon::jinja
