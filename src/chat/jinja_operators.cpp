#include "chat/jinja_operators.h"

#include <fmt/format.h>

#include <cmath>

#include "chat/jinja_builtins.h"

namespace moon::jinja {

void undefined_error(const Value& value) {
  if (value.undefined_name().empty()) fail("undefined value used in an expression");
  fail(fmt::format("'{}' is undefined", value.undefined_name()));
}

namespace {
thread_local BuildBudget* t_budget = nullptr;
}  // namespace

BuildBudget::BuildBudget(size_t limit) : limit_(limit), previous_(t_budget) {
  t_budget = this;
}
BuildBudget::~BuildBudget() {
  t_budget = previous_;
}

void BuildBudget::charge(size_t bytes) {
  if (t_budget == nullptr) return;
  t_budget->used_ += bytes;
  if (t_budget->used_ > t_budget->limit_) {
    fail(fmt::format("template built more than {} bytes of strings and lists", t_budget->limit_));
  }
}

namespace {

void check_size(size_t size) {
  if (size > kMaxValueSize) fail("value too large (template output or string size limit)");
  BuildBudget::charge(size);
}

Value repeat(const Value& seq, const Value& count) {
  int64_t n = count.is_bool() ? count.as_bool() : count.as_int();
  if (n <= 0) return seq.is_string() ? Value("") : Value::list();
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty())
      check_size(static_cast<size_t>(n) > kMaxValueSize / s.size() ? kMaxValueSize + 1
                                                                   : s.size() * n);
    std::string out;
    for (int64_t i = 0; i < n && !s.empty(); ++i) out += s;
    return Value(std::move(out));
  }
  const List& items = seq.as_list();
  if (!items.empty())
    check_size(static_cast<size_t>(n) > kMaxValueSize / items.size() ? kMaxValueSize + 1
                                                                     : items.size() * n);
  List out;
  for (int64_t i = 0; i < n && !items.empty(); ++i)
    out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out));
}

bool is_integral(const Value& v) {
  return v.is_int() || v.is_bool();
}
int64_t integral(const Value& v) {
  return v.is_bool() ? v.as_bool() : v.as_int();
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      check_size(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      check_size(a.as_list().size() + b.as_list().size());
      List out = a.as_list();
      out.insert(out.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(out));
    }
  }
  if (op == "%" && a.is_string()) {  // printf-style: "%s: %s" % (a, b)
    CallArgs args;
    if (b.is_list()) {
      args.positional = b.as_list();
    } else {
      args.positional.push_back(b);
    }
    return apply_filter("format", a, args);
  }
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && is_integral(b)) return repeat(a, b);
    if ((b.is_string() || b.is_list()) && is_integral(a)) return repeat(b, a);
  }
  const bool numbers = (a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool());
  if (!numbers) {
    fail(fmt::format("unsupported operand types for {}: {} and {}", op, a.type_name(),
                     b.type_name()));
  }
  if (is_integral(a) && is_integral(b) && op != "/") {
    int64_t x = integral(a), y = integral(b);
    int64_t r = 0;
    if (op == "+" && !__builtin_add_overflow(x, y, &r)) return Value(r);
    if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return Value(r);
    if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return Value(r);
    if (op == "//" || op == "%") {
      if (y == 0) fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) fail("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward negative infinity
        --q;
        m += y;
      }
      return op == "//" ? Value(q) : Value(m);
    }
    if (op == "**" && y >= 0) {
      int64_t result = 1;
      bool overflow = false;
      for (int64_t i = 0; i < y && !overflow; ++i) {
        overflow = __builtin_mul_overflow(result, x, &result);
        if (x == 0 || x == 1 || (x == -1 && i > 1)) {
          result = x == 0 ? 0 : (x == 1 ? 1 : (y % 2 ? -1 : 1));
          break;
        }
      }
      if (!overflow) return Value(result);
    }
    if (op != "**") fail(fmt::format("integer overflow in {}", op));
  }
  double x = a.as_number(), y = b.as_number();
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "/" || op == "//" || op == "%") {
    if (y == 0) fail("division by zero");
    if (op == "/") return Value(x / y);
    if (op == "//") return Value(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value(m);
  }
  if (op == "**") return Value(std::pow(x, y));
  fail(fmt::format("unknown operator {}", op));
}

int compare(const Value& a, const Value& b, const std::string& op) {
  if ((a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool())) {
    if (is_integral(a) && is_integral(b))
      return integral(a) < integral(b) ? -1 : integral(a) > integral(b);
    double x = a.as_number(), y = b.as_number();
    return x < y ? -1 : x > y;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0;
  }
  if (a.is_list() && b.is_list()) {
    const List& x = a.as_list();
    const List& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!(x[i] == y[i])) return compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size();
  }
  fail(fmt::format("'{}' not supported between {} and {}", op, a.type_name(), b.type_name()));
}

// Python index normalization: negative counts from the end; returns -1 when out of range.
int64_t normalize_index(int64_t i, size_t size) {
  int64_t n = static_cast<int64_t>(size);
  if (i < 0) i += n;
  return (i < 0 || i >= n) ? -1 : i;
}

}  // namespace

Value binary_op(const std::string& op, const Value& left, const Value& right) {
  if (op == "==") return Value(left == right);
  if (op == "!=") return Value(!(left == right));
  if (op == "~") {
    std::string out = left.to_string();
    out += right.to_string();
    check_size(out.size());
    return Value(std::move(out));
  }
  if (left.is_undefined()) undefined_error(left);
  if (right.is_undefined()) undefined_error(right);
  if (op == "<") return Value(compare(left, right, op) < 0);
  if (op == ">") return Value(compare(left, right, op) > 0);
  if (op == "<=") return Value(compare(left, right, op) <= 0);
  if (op == ">=") return Value(compare(left, right, op) >= 0);
  return arithmetic(op, left, right);
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string())
      fail(fmt::format("'in <string>' requires a string, not {}", item.type_name()));
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_list()) {
    for (const Value& v : container.as_list()) {
      if (v == item) return true;
    }
    return false;
  }
  if (container.is_dict())
    return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
  // Jinja's Undefined iterates as empty, so `x in undefined` is simply false.
  if (container.is_undefined()) return false;
  fail(fmt::format("argument of type {} is not iterable", container.type_name()));
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_dict()) {
    if (key.is_string()) {
      const Value* found = object.as_dict().find(key.as_string());
      if (found != nullptr) return *found;
      return get_attr(object, key.as_string());
    }
    if (is_integral(key)) {
      const Value* found = object.as_dict().find(std::to_string(integral(key)));
      if (found != nullptr) return *found;
    }
    return Value::undefined("");
  }
  if ((object.is_list() || object.is_string()) && is_integral(key)) {
    if (object.is_list()) {
      int64_t i = normalize_index(integral(key), object.as_list().size());
      return i < 0 ? Value::undefined("") : object.as_list()[static_cast<size_t>(i)];
    }
    const std::string& s = object.as_string();
    if (utf8_length(s) == s.size()) {
      int64_t i = normalize_index(integral(key), s.size());
      return i < 0 ? Value::undefined("") : Value(std::string(1, s[static_cast<size_t>(i)]));
    }
    std::u32string chars = utf8_decode(s);
    int64_t i = normalize_index(integral(key), chars.size());
    return i < 0 ? Value::undefined("")
                 : Value(utf8_encode(chars.substr(static_cast<size_t>(i), 1)));
  }
  if (key.is_string()) return get_attr(object, key.as_string());
  if (object.is_undefined()) return Value::undefined(object.undefined_name());
  return Value::undefined("");
}

Value get_attr(const Value& object, const std::string& name) {
  if (object.is_dict()) {
    const Value* found = object.as_dict().find(name);
    if (found != nullptr) return *found;
  }
  if (object.is_undefined() || object.is_none()) {
    // Lenient like Hugging Face's renderer: `a.b.c` on a missing `a` is simply undefined.
    return Value::undefined(name);
  }
  std::optional<Value> method = bound_method(object, name);
  if (method) return *method;
  return Value::undefined(name);
}

Value slice(const Value& object, const Value& start_v, const Value& stop_v, const Value& step_v) {
  auto opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!is_integral(v))
      fail(fmt::format("slice {} must be an integer, got {}", what, v.type_name()));
    return integral(v);
  };
  std::optional<int64_t> start = opt(start_v, "start"), stop = opt(stop_v, "stop");
  int64_t step = opt(step_v, "step").value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  std::u32string chars;
  size_t size = 0;
  if (object.is_list()) {
    size = object.as_list().size();
  } else if (object.is_string()) {
    chars = utf8_decode(object.as_string());
    size = chars.size();
  } else {
    if (object.is_undefined()) undefined_error(object);
    fail(fmt::format("cannot slice a {}", object.type_name()));
  }
  const int64_t n = static_cast<int64_t>(size);
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t i = *v < 0 ? *v + n : *v;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t from = clamp(start, step > 0 ? 0 : n - 1);
  int64_t to = clamp(stop, step > 0 ? n : -1);
  std::vector<size_t> picked;
  for (int64_t i = from; step > 0 ? i < to : i > to; i += step)
    picked.push_back(static_cast<size_t>(i));
  if (object.is_list()) {
    List out;
    out.reserve(picked.size());
    for (size_t i : picked) out.push_back(object.as_list()[i]);
    return Value::list(std::move(out));
  }
  std::u32string out;
  for (size_t i : picked) out += chars[i];
  return Value(utf8_encode(out));
}

List iterate(const Value& value) {
  if (value.is_list()) return value.as_list();
  if (value.is_dict()) {
    List keys;
    for (const auto& [key, item] : value.as_dict().items) keys.emplace_back(key);
    return keys;
  }
  if (value.is_string()) {
    List chars;
    for (char32_t c : utf8_decode(value.as_string()))
      chars.emplace_back(utf8_encode(std::u32string(1, c)));
    return chars;
  }
  if (value.is_undefined() || value.is_none()) return {};  // lenient: looping over nothing
  fail(fmt::format("{} is not iterable", value.type_name()));
}

}  // namespace moon::jinja
