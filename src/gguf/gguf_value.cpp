#include "gguf/gguf_value.h"

#include <fmt/format.h>

#include <limits>

namespace moon::gguf {

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::UInt8:
      return "uint8";
    case ValueType::Int8:
      return "int8";
    case ValueType::UInt16:
      return "uint16";
    case ValueType::Int16:
      return "int16";
    case ValueType::UInt32:
      return "uint32";
    case ValueType::Int32:
      return "int32";
    case ValueType::Float32:
      return "float32";
    case ValueType::Bool:
      return "bool";
    case ValueType::String:
      return "string";
    case ValueType::Array:
      return "array";
    case ValueType::UInt64:
      return "uint64";
    case ValueType::Int64:
      return "int64";
    case ValueType::Float64:
      return "float64";
  }
  return "unknown";
}

Value Value::make_int(ValueType type, int64_t v) {
  return Value(type, v);
}
Value Value::make_uint64(uint64_t v) {
  return Value(ValueType::UInt64, v);
}
Value Value::make_float(ValueType type, double v) {
  return Value(type, v);
}
Value Value::make_bool(bool v) {
  return Value(ValueType::Bool, v);
}
Value Value::make_string(std::string_view v) {
  return Value(ValueType::String, v);
}
Value Value::make_array(Array array) {
  return Value(ValueType::Array, std::move(array));
}

std::optional<int64_t> Value::as_int() const {
  if (const auto* i = std::get_if<int64_t>(&v_); i && type_ != ValueType::Bool) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v_)) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> Value::as_uint() const {
  if (const auto* u = std::get_if<uint64_t>(&v_)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v_); i && type_ != ValueType::Bool && *i >= 0) {
    return static_cast<uint64_t>(*i);
  }
  return std::nullopt;
}

std::optional<double> Value::as_float() const {
  if (const auto* d = std::get_if<double>(&v_)) return *d;
  if (auto i = as_int()) return static_cast<double>(*i);
  if (auto u = as_uint()) return static_cast<double>(*u);
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (const auto* b = std::get_if<bool>(&v_)) return *b;
  return std::nullopt;
}

std::optional<std::string_view> Value::as_string() const {
  if (const auto* s = std::get_if<std::string_view>(&v_)) return *s;
  return std::nullopt;
}

const Value::Array* Value::array() const {
  return std::get_if<Array>(&v_);
}

size_t Value::array_size() const {
  const Array* a = array();
  if (!a) return 0;
  return a->ints.size() + a->uints.size() + a->floats.size() + a->strings.size() + a->arrays.size();
}

std::string Value::to_string(size_t max_items) const {
  if (const Array* a = array()) {
    std::string out = fmt::format("[{} x {}]", array_size(), value_type_name(a->element_type));
    size_t shown = 0;
    auto add = [&](const std::string& item) {
      if (shown < max_items) out += (shown == 0 ? " " : ", ") + item;
      ++shown;
    };
    for (int64_t v : a->ints) add(std::to_string(v));
    for (uint64_t v : a->uints) add(std::to_string(v));
    for (double v : a->floats) add(fmt::format("{}", v));
    for (std::string_view v : a->strings) add(fmt::format("\"{}\"", v));
    for (const Value& v : a->arrays) add(v.to_string(max_items));
    if (shown > max_items) out += ", ...";
    return out;
  }
  if (auto b = as_bool()) return *b ? "true" : "false";
  if (auto s = as_string()) {
    constexpr size_t kMaxChars = 120;
    if (s->size() > kMaxChars) return fmt::format("\"{}...\"", s->substr(0, kMaxChars));
    return fmt::format("\"{}\"", *s);
  }
  if (const auto* d = std::get_if<double>(&v_)) return fmt::format("{}", *d);
  if (auto u = as_uint()) return std::to_string(*u);
  if (auto i = as_int()) return std::to_string(*i);
  return "?";
}

}  // namespace moon::gguf
