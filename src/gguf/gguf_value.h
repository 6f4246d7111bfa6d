// One metadata value of a GGUF file. Strings and string arrays point into the file's
// memory (which the owning GgufFile keeps mapped); numeric arrays are copied out, since
// the file gives no alignment guarantee for them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace moon::gguf {

enum class ValueType : uint32_t {
  UInt8 = 0,
  Int8 = 1,
  UInt16 = 2,
  Int16 = 3,
  UInt32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  UInt64 = 10,
  Int64 = 11,
  Float64 = 12,
};

std::string_view value_type_name(ValueType type);

class Value {
 public:
  struct Array {
    ValueType element_type = ValueType::UInt8;
    // Exactly one of these is filled, chosen by element_type.
    std::vector<int64_t> ints;    // every signed/unsigned integer type and Bool
    std::vector<uint64_t> uints;  // UInt64 only, so that values above INT64_MAX survive
    std::vector<double> floats;   // Float32 and Float64
    std::vector<std::string_view> strings;
    std::vector<Value> arrays;  // arrays of arrays
  };

  Value() = default;
  static Value make_int(ValueType type, int64_t v);
  static Value make_uint64(uint64_t v);
  static Value make_float(ValueType type, double v);
  static Value make_bool(bool v);
  static Value make_string(std::string_view v);
  static Value make_array(Array array);

  ValueType type() const { return type_; }
  bool is_array() const { return type_ == ValueType::Array; }

  // Scalar access. Integers of any width convert when the value fits; nullopt otherwise.
  std::optional<int64_t> as_int() const;
  std::optional<uint64_t> as_uint() const;
  std::optional<double> as_float() const;  // floats, and integers
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;

  // Array access; nullptr when this is not an array.
  const Array* array() const;
  size_t array_size() const;

  // Short human-readable rendering, for `moon inspect` and error messages.
  std::string to_string(size_t max_items = 8) const;

 private:
  using Storage = std::variant<int64_t, uint64_t, double, bool, std::string_view, Array>;
  Value(ValueType type, Storage v) : type_(type), v_(std::move(v)) {}

  ValueType type_ = ValueType::UInt8;
  Storage v_;
};

}  // namespace moon::gguf
