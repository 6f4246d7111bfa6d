#include "chat/jinja_value.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "util/utf8.h"

namespace moon::jinja {

void fail(const std::string& message) {
  throw TemplateError(message);
}

namespace {
thread_local ContainerArena* current_arena = nullptr;

// Bounds the recursion of repr, to_json and == over nested containers: a container that
// holds itself (`{% set ns.me = ns %}`) would otherwise recurse until the stack overflows.
class NestingGuard {
 public:
  NestingGuard() {
    if (depth_ >= kMaxDepth) {
      fail(fmt::format("value nested more than {} deep (a list or dict that contains itself?)",
                       kMaxDepth));
    }
    ++depth_;
  }
  ~NestingGuard() { --depth_; }
  NestingGuard(const NestingGuard&) = delete;
  NestingGuard& operator=(const NestingGuard&) = delete;

 private:
  static constexpr int kMaxDepth = 512;  // as tojson's own bound
  static thread_local int depth_;
};
thread_local int NestingGuard::depth_ = 0;
}  // namespace

ContainerArena::ContainerArena() : previous_(current_arena) {
  current_arena = this;
}

ContainerArena::~ContainerArena() {
  current_arena = previous_;
  // Emptied from owned references, so that what a container's items free (other containers
  // of this arena among them) goes while this loop still holds what it visits.
  for (const std::weak_ptr<List>& weak : lists_) {
    if (ListPtr list = weak.lock()) List().swap(*list);
  }
  for (const std::weak_ptr<Dict>& weak : dicts_) {
    if (DictPtr dict = weak.lock()) decltype(dict->items)().swap(dict->items);
  }
}

void ContainerArena::prune() {
  if (lists_.size() + dicts_.size() < prune_at_) return;
  std::erase_if(lists_, [](const auto& w) { return w.expired(); });
  std::erase_if(dicts_, [](const auto& w) { return w.expired(); });
  prune_at_ = std::max<size_t>(1024, 2 * (lists_.size() + dicts_.size()));
}

void ContainerArena::note(const ListPtr& list) {
  if (current_arena == nullptr) return;
  current_arena->lists_.push_back(list);
  current_arena->prune();
}

void ContainerArena::note(const DictPtr& dict) {
  if (current_arena == nullptr) return;
  current_arena->dicts_.push_back(dict);
  current_arena->prune();
}

Value Value::list(List items) {
  auto list = std::make_shared<List>(std::move(items));
  ContainerArena::note(list);
  return Value(std::move(list));
}
Value Value::dict() {
  auto dict = std::make_shared<Dict>();
  ContainerArena::note(dict);
  return Value(std::move(dict));
}
Value Value::function(Function f) {
  return Value(std::make_shared<Function>(std::move(f)));
}

Value Value::from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value(None{});
    case nlohmann::ordered_json::value_t::boolean:
      return Value(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(json.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value result = dict();
      for (const auto& [key, item] : json.items()) result.as_dict().set(key, from_json(item));
      return result;
    }
    default:
      return Value(None{});
  }
}

double Value::as_number() const {
  if (is_int()) return static_cast<double>(as_int());
  if (is_float()) return as_float();
  if (is_bool()) return as_bool() ? 1.0 : 0.0;
  fail(fmt::format("expected a number, got {}", type_name()));
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return as_bool();
    case Kind::kInt:
      return as_int() != 0;
    case Kind::kFloat:
      return as_float() != 0.0;
    case Kind::kString:
      return !as_string().empty();
    case Kind::kList:
      return !as_list().empty();
    case Kind::kDict:
      return !as_dict().items.empty();
    case Kind::kFunction:
      return true;
  }
  return false;
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

static std::string repr_string(const std::string& s) {
  // Python prefers single quotes unless the string contains one and no double quote.
  char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, quote);
  for (char c : s) {
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

std::string Value::to_string() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return as_bool() ? "True" : "False";
    case Kind::kInt:
      return std::to_string(as_int());
    case Kind::kFloat:
      return format_float(as_float());
    case Kind::kString:
      return as_string();
    default:
      return repr();
  }
}

std::string Value::repr() const {
  switch (kind()) {
    case Kind::kString:
      return repr_string(as_string());
    case Kind::kList: {
      const NestingGuard nested;
      std::string out = "[";
      bool first = true;
      for (const Value& item : as_list()) {
        if (!first) out += ", ";
        first = false;
        out += item.repr();
      }
      return out + "]";
    }
    case Kind::kDict: {
      const NestingGuard nested;
      std::string out = "{";
      bool first = true;
      for (const auto& [key, item] : as_dict().items) {
        if (!first) out += ", ";
        first = false;
        out += repr_string(key) + ": " + item.repr();
      }
      return out + "}";
    }
    case Kind::kFunction:
      return "<function>";
    default:
      return to_string();
  }
}

std::string Value::type_name() const {
  static const char* const kNames[] = {"undefined", "none", "boolean", "integer", "float",
                                       "string",    "list", "dict",    "function"};
  return kNames[static_cast<int>(kind())];
}

nlohmann::ordered_json Value::to_json() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
    case Kind::kFunction:
      return nullptr;
    case Kind::kBool:
      return as_bool();
    case Kind::kInt:
      return as_int();
    case Kind::kFloat:
      return as_float();
    case Kind::kString:
      return as_string();
    case Kind::kList: {
      const NestingGuard nested;
      auto out = nlohmann::ordered_json::array();
      for (const Value& item : as_list()) out.push_back(item.to_json());
      return out;
    }
    case Kind::kDict: {
      const NestingGuard nested;
      auto out = nlohmann::ordered_json::object();
      for (const auto& [key, item] : as_dict().items) out[key] = item.to_json();
      return out;
    }
  }
  return nullptr;
}

bool Value::operator==(const Value& other) const {
  if (is_number() || is_bool()) {
    if (!(other.is_number() || other.is_bool())) return false;
    if (is_int() && other.is_int()) return as_int() == other.as_int();
    return as_number() == other.as_number();
  }
  if (kind() != other.kind()) return false;
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return as_string() == other.as_string();
    case Kind::kList: {
      const NestingGuard nested;
      return as_list() == other.as_list();
    }
    case Kind::kDict: {
      const NestingGuard nested;
      const Dict& a = as_dict();
      const Dict& b = other.as_dict();
      if (a.items.size() != b.items.size()) return false;
      for (const auto& [key, item] : a.items) {
        const Value* found = b.find(key);
        if (found == nullptr || !(*found == item)) return false;
      }
      return true;
    }
    case Kind::kFunction:
      return std::get<FunctionPtr>(data_) == std::get<FunctionPtr>(other.data_);
    default:
      return false;
  }
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(const std::string& key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

const Value* CallArgs::get(size_t position, std::string_view name) const {
  for (const auto& [k, v] : named) {
    if (k == name) return &v;
  }
  return position < positional.size() ? &positional[position] : nullptr;
}

static void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

static void json_write(std::string& out, const Value& v, int indent, int depth) {
  if (depth > 512) fail("tojson: value nested too deeply");
  const bool pretty = indent > 0;
  auto newline = [&](int level) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * level, ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kString:
      json_string(out, v.as_string());
      return;
    case Value::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat: {
      double d = v.as_float();
      out += std::isfinite(d) ? format_float(d)
                              : (std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity"));
      return;
    }
    case Value::Kind::kList: {
      const List& items = v.as_list();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += pretty ? "," : ", ";
        if (pretty) newline(depth + 1);
        json_write(out, items[i], indent, depth + 1);
      }
      if (pretty) newline(depth);
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      const auto& items = v.as_dict().items;
      if (items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += pretty ? "," : ", ";
        if (pretty) newline(depth + 1);
        json_string(out, items[i].first);
        out += ": ";
        json_write(out, items[i].second, indent, depth + 1);
      }
      if (pretty) newline(depth);
      out += '}';
      return;
    }
    default:
      out += "null";
  }
}

std::string to_json_text(const Value& value, int indent) {
  std::string out;
  json_write(out, value, indent, 0);
  return out;
}

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80           ? 0
                : (c >> 5) == 0x6  ? 1
                : (c >> 4) == 0xE  ? 2
                : (c >> 3) == 0x1E ? 3
                                   : -1;
    if (extra < 0 || i + extra >= s.size()) {
      // Invalid or truncated sequences pass through one byte at a time.
      out += static_cast<char32_t>(c);
      ++i;
      continue;
    }
    char32_t cp = extra == 0 ? c : (c & (0x3F >> extra));
    bool valid = true;
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) valid = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!valid) {
      out += static_cast<char32_t>(c);
      ++i;
      continue;
    }
    out += cp;
    i += extra + 1;
  }
  return out;
}

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) utf8::append_codepoint(out, static_cast<uint32_t>(cp));
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace moon::jinja
