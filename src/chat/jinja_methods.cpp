// Methods on strings, dicts and lists (Python's, as templates call them), string helpers, and
// the global functions templates expect (range, namespace, raise_exception, strftime_now).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "chat/jinja_builtins.h"
#include "chat/jinja_operators.h"

namespace moon::jinja {
namespace {

bool is_py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool any_affix(const std::string& s, const Value& affix, bool prefix) {
  auto check = [&](const Value& v) {
    if (!v.is_string())
      fail(fmt::format("{} argument must be a string", prefix ? "startswith" : "endswith"));
    const std::string& a = v.as_string();
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0
                  : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) return std::any_of(affix.as_list().begin(), affix.as_list().end(), check);
  return check(affix);
}

// str.format with {} / {0} / {name} fields.
std::string python_format(const std::string& f, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    char c = f[i];
    if ((c == '{' || c == '}') && i + 1 < f.size() && f[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    size_t close = f.find('}', i);
    if (close == std::string::npos) fail("format string has an unmatched '{'");
    std::string field = f.substr(i + 1, close - i - 1);
    field = field.substr(0, field.find(':'));  // format specs are ignored
    const Value* v = nullptr;
    if (field.empty()) {
      v = args.get(auto_index++, "\x01");
    } else if (std::all_of(field.begin(), field.end(), ::isdigit) && field.size() < 9) {
      v = args.get(static_cast<size_t>(std::stoul(field)), "\x01");
    } else {
      v = args.get(SIZE_MAX, field);
    }
    if (v == nullptr) fail(fmt::format("format: missing argument for field '{{{}}}'", field));
    out += v->to_string();
    i = close;
  }
  return out;
}

Value string_method(const std::string& s, const std::string& name, CallArgs& a) {
  const Value* arg0 = a.get(0, "");
  if (name == "startswith" || name == "endswith") {
    if (arg0 == nullptr) fail(fmt::format("{} needs an argument", name));
    return Value(any_affix(s, *arg0, name == "startswith"));
  }
  if (name == "strip") return Value(strip_chars(s, arg0, true, true));
  if (name == "lstrip") return Value(strip_chars(s, arg0, true, false));
  if (name == "rstrip") return Value(strip_chars(s, arg0, false, true));
  if (name == "upper") return Value(ascii_upper(s));
  if (name == "lower") return Value(ascii_lower(s));
  if (name == "title") return Value(title_case(s));
  if (name == "capitalize") return Value(capitalize(s));
  if (name == "split") {
    const Value* sep = a.get(0, "sep");
    const Value* max_split = a.get(1, "maxsplit");
    return Value::list(split_string(
        s, sep, max_split != nullptr && max_split->is_int() ? max_split->as_int() : -1));
  }
  if (name == "splitlines") {
    List lines;
    size_t start = 0;
    while (start < s.size()) {
      size_t nl = s.find('\n', start);
      if (nl == std::string::npos) nl = s.size();
      std::string line = s.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.emplace_back(std::move(line));
      start = nl + 1;
    }
    return Value::list(std::move(lines));
  }
  if (name == "replace") {
    if (a.positional.size() < 2) fail("replace needs two arguments");
    const Value* count = a.get(2, "count");
    return Value(replace_all(s, a.positional[0].to_string(), a.positional[1].to_string(),
                             count != nullptr && count->is_int() ? count->as_int() : -1));
  }
  if (name == "format") return Value(python_format(s, a));
  if (name == "join") {
    if (arg0 == nullptr) fail("join needs an argument");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(*arg0)) {
      if (!first) out += s;
      first = false;
      out += item.to_string();
      if (out.size() > kMaxValueSize) fail("join result too large");
    }
    return Value(std::move(out));
  }
  if (name == "find" || name == "count" || name == "index") {
    if (arg0 == nullptr || !arg0->is_string())
      fail(fmt::format("{} needs a string argument", name));
    const std::string& sub = arg0->as_string();
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(s) + 1));
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    size_t p = s.find(sub);
    if (p == std::string::npos && name == "index") fail("substring not found");
    return Value(p == std::string::npos ? int64_t{-1}
                                        : static_cast<int64_t>(utf8_length(s.substr(0, p))));
  }
  auto all_chars = [&](auto pred) {
    return Value(!s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
      return pred(static_cast<unsigned char>(c));
    }));
  };
  if (name == "isdigit") return all_chars(::isdigit);
  if (name == "isalpha") return all_chars(::isalpha);
  if (name == "isalnum") return all_chars(::isalnum);
  if (name == "isspace") return all_chars(::isspace);
  if (name == "islower") return Value(ascii_lower(s) == s && ascii_upper(s) != s);
  if (name == "isupper") return Value(ascii_upper(s) == s && ascii_lower(s) != s);
  fail(fmt::format("string has no method '{}'", name));
}

Value dict_method(const Value& self, const std::string& name, CallArgs& a) {
  Dict& d = self.as_dict();
  if (name == "items") {
    List out;
    for (const auto& [key, item] : d.items) out.push_back(Value::list({Value(key), item}));
    return Value::list(std::move(out));
  }
  if (name == "keys" || name == "values") {
    List out;
    for (const auto& [key, item] : d.items) out.push_back(name == "keys" ? Value(key) : item);
    return Value::list(std::move(out));
  }
  if (name == "get" || name == "pop") {
    const Value* key = a.get(0, "key");
    if (key == nullptr) fail(fmt::format("dict.{} needs a key", name));
    const Value* fallback = a.get(1, "default");
    std::string k = key->to_string();
    const Value* found = d.find(k);
    if (found == nullptr) {
      if (fallback != nullptr) return *fallback;
      if (name == "pop") fail(fmt::format("key '{}' not found", k));
      return Value(None{});
    }
    Value result = *found;
    if (name == "pop") {
      d.items.erase(std::find_if(d.items.begin(), d.items.end(),
                                 [&](const auto& kv) { return kv.first == k; }));
    }
    return result;
  }
  if (name == "update") {
    for (const Value& other : a.positional) {
      if (!other.is_dict()) fail("dict.update expects a mapping");
      for (const auto& [key, item] : other.as_dict().items) d.set(key, item);
    }
    for (const auto& [key, item] : a.named) d.set(key, item);
    return Value(None{});
  }
  if (name == "copy") {
    Value copy = Value::dict();
    copy.as_dict() = d;
    return copy;
  }
  fail(fmt::format("dict has no method '{}'", name));
}

Value list_method(const Value& self, const std::string& name, CallArgs& a) {
  List& l = self.as_list();
  const Value* arg0 = a.get(0, "");
  if (name == "append") {
    if (arg0 == nullptr) fail("append needs an argument");
    if (l.size() >= kMaxValueSize) fail("list too large");
    l.push_back(*arg0);
    return Value(None{});
  }
  if (name == "extend") {
    if (arg0 == nullptr) fail("extend needs an argument");
    List more = iterate(*arg0);
    if (l.size() + more.size() > kMaxValueSize) fail("list too large");
    l.insert(l.end(), more.begin(), more.end());
    return Value(None{});
  }
  if (name == "pop") {
    if (l.empty()) fail("pop from empty list");
    int64_t i = arg0 != nullptr && arg0->is_int() ? arg0->as_int() : -1;
    if (i < 0) i += static_cast<int64_t>(l.size());
    if (i < 0 || i >= static_cast<int64_t>(l.size())) fail("pop index out of range");
    Value v = l[static_cast<size_t>(i)];
    l.erase(l.begin() + i);
    return v;
  }
  if (name == "insert") {
    if (a.positional.size() < 2 || !a.positional[0].is_int())
      fail("insert needs an index and a value");
    int64_t n = static_cast<int64_t>(l.size());
    int64_t i = a.positional[0].as_int();
    i = std::clamp<int64_t>(i < 0 ? i + n : i, 0, n);
    l.insert(l.begin() + i, a.positional[1]);
    return Value(None{});
  }
  if (name == "index" || name == "count") {
    if (arg0 == nullptr) fail(fmt::format("{} needs an argument", name));
    auto it = std::find(l.begin(), l.end(), *arg0);
    if (name == "count") return Value(static_cast<int64_t>(std::count(l.begin(), l.end(), *arg0)));
    if (it == l.end()) fail("value not in list");
    return Value(static_cast<int64_t>(it - l.begin()));
  }
  if (name == "copy") return Value::list(l);
  fail(fmt::format("list has no method '{}'", name));
}

bool has_method(const Value& v, const std::string& name) {
  static const char* const kString[] = {
      "startswith", "endswith", "strip",      "lstrip",  "rstrip",  "upper",   "lower",  "title",
      "capitalize", "split",    "splitlines", "replace", "format",  "join",    "find",   "count",
      "index",      "isdigit",  "isalpha",    "isalnum", "isspace", "islower", "isupper"};
  static const char* const kDict[] = {"items", "keys", "values", "get", "pop", "update", "copy"};
  static const char* const kList[] = {"append", "extend", "pop", "insert",
                                      "index",  "count",  "copy"};
  auto in = [&](const auto& names) {
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
  };
  return (v.is_string() && in(kString)) || (v.is_dict() && in(kDict)) || (v.is_list() && in(kList));
}

// "25 Nov 2026" (or "2026-11-25") into a tm; false when it is neither.
bool parse_date(const std::string& text, std::tm& tm) {
  static const char* const kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                        "jul", "aug", "sep", "oct", "nov", "dec"};
  int day = 0, year = 0, month = -1;
  char mon[16] = {0};
  int m = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%d", &year, &m, &day) == 3 && m >= 1 && m <= 12) {
    month = m - 1;
  } else if (std::sscanf(text.c_str(), "%d %15s %d", &day, mon, &year) == 3) {
    std::string lower = ascii_lower(std::string(mon).substr(0, 3));
    for (int i = 0; i < 12; ++i) {
      if (lower == kMonths[i]) month = i;
    }
  }
  if (month < 0 || day < 1 || day > 31 || year < 1 || year > 9999) return false;
  tm = std::tm{};
  tm.tm_mday = day;
  tm.tm_mon = month;
  tm.tm_year = year - 1900;
  tm.tm_hour = 12;
  time_t t = timegm(&tm);  // normalizes and fills in the weekday
  gmtime_r(&t, &tm);
  return true;
}

}  // namespace

std::optional<Value> bound_method(const Value& object, const std::string& name) {
  if (!has_method(object, name)) return std::nullopt;
  return Value::function([object, name](CallArgs& args) -> Value {
    if (object.is_string()) return string_method(object.as_string(), name, args);
    if (object.is_dict()) return dict_method(object, name, args);
    return list_method(object, name, args);
  });
}

void add_global_functions(Dict& globals, const GlobalsOptions& options) {
  const int64_t max_range = options.max_range;
  globals.set("range", Value::function([max_range](CallArgs& a) -> Value {
                int64_t start = 0, stop = 0, step = 1;
                auto num = [](const Value& v) {
                  if (!v.is_int())
                    fail(fmt::format("range expects integers, got {}", v.type_name()));
                  return v.as_int();
                };
                if (a.positional.size() == 1) {
                  stop = num(a.positional[0]);
                } else if (a.positional.size() >= 2) {
                  start = num(a.positional[0]);
                  stop = num(a.positional[1]);
                  if (a.positional.size() >= 3) step = num(a.positional[2]);
                } else {
                  fail("range expects 1 to 3 arguments");
                }
                if (step == 0) fail("range step must not be zero");
                List out;
                for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
                  if (static_cast<int64_t>(out.size()) >= max_range)
                    fail(fmt::format("range larger than {} items", max_range));
                  out.emplace_back(i);
                  if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step))
                    break;
                }
                return Value::list(std::move(out));
              }));
  auto make_dict = [](CallArgs& a) -> Value {
    Value d = Value::dict();
    for (const Value& init : a.positional) {
      if (init.is_dict()) d.as_dict().items = init.as_dict().items;
    }
    for (const auto& [key, item] : a.named) d.as_dict().set(key, item);
    return d;
  };
  globals.set("namespace", Value::function(make_dict));
  globals.set("dict", Value::function(make_dict));
  globals.set("raise_exception", Value::function([](CallArgs& a) -> Value {
                fail(a.positional.empty() ? std::string("raise_exception called")
                                          : a.positional[0].to_string());
              }));
  const std::string date_string = options.date_string;
  globals.set("strftime_now", Value::function([date_string](CallArgs& a) -> Value {
                const Value* format = a.get(0, "format");
                if (format == nullptr || !format->is_string())
                  fail("strftime_now expects a format string");
                if (format->as_string().size() > 256) fail("strftime_now format too long");
                std::tm tm{};
                if (!parse_date(date_string, tm)) {
                  time_t now = std::time(nullptr);
                  localtime_r(&now, &tm);
                }
                char buffer[1024];
                size_t n = std::strftime(buffer, sizeof buffer, format->as_string().c_str(), &tm);
                return Value(std::string(buffer, n));
              }));
}

std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right) {
  bool whitespace = chars == nullptr || chars->is_none() || chars->is_undefined();
  std::string set = whitespace ? "" : chars->to_string();
  auto strip = [&](char c) {
    return whitespace ? is_py_space(c) : set.find(c) != std::string::npos;
  };
  size_t begin = 0, end = s.size();
  if (left) {
    while (begin < end && strip(s[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strip(s[end - 1])) --end;
  }
  return s.substr(begin, end - begin);
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between every character
    std::u32string chars = utf8_decode(s);
    int64_t done = 0;
    for (char32_t c : chars) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += utf8_encode(std::u32string(1, c));
      if (out.size() > kMaxValueSize) fail("replace result too large");
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    if (out.size() > kMaxValueSize) fail("replace result too large");
    pos = hit + from.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

List split_string(const std::string& s, const Value* sep, int64_t max_split) {
  List out;
  if (sep == nullptr || sep->is_none() || sep->is_undefined()) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && is_py_space(s[i])) ++i;
      if (i >= s.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(out.size()) >= max_split) {
        out.emplace_back(strip_chars(s.substr(i), nullptr, false, true));
        break;
      }
      size_t j = i;
      while (j < s.size() && !is_py_space(s[j])) ++j;
      out.emplace_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  if (!sep->is_string() || sep->as_string().empty())
    fail("split separator must be a non-empty string");
  const std::string& d = sep->as_string();
  size_t pos = 0;
  while (max_split < 0 || static_cast<int64_t>(out.size()) < max_split) {
    size_t hit = s.find(d, pos);
    if (hit == std::string::npos) break;
    out.emplace_back(s.substr(pos, hit - pos));
    pos = hit + d.size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

std::string ascii_upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string ascii_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = !(std::isdigit(u) || u >= 0x80);
    }
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string out = ascii_lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

}  // namespace moon::jinja
