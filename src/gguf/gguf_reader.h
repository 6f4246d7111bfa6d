// The bounds-checked reading under GgufFile::parse, internal to src/gguf: a cursor whose
// every read names what it was reading (so a truncated file reports the field where it
// ended), and the metadata value reader with its memory budget. Kept apart from the file's
// structure (header, tensor infos, data section) that gguf_file.cpp walks.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "gguf/gguf_file.h"

namespace moon::gguf::detail {

// A name read from the file, made safe to put in an error message: control and non-ASCII
// bytes are escaped and a long name is cut short, so a hostile name cannot flood or garble
// the message.
inline std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 96;
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= kMaxShown) {
      out += fmt::format("... ({} bytes)", s.size());
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// What a read is reading, for error messages: a string, or a callable building one. The
// callable form keeps the hot paths (arrays of millions of elements) free of string
// building, which is only done once a read has failed.
template <typename What>
inline std::string describe(const What& what) {
  if constexpr (std::is_invocable_v<const What&>) {
    return what();
  } else {
    return std::string(what);
  }
}

// Bounds-checked little-endian cursor over the file. Every read says what it was reading,
// so a truncated file reports the field where it ended.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <typename T, typename What>
  Result<T> read(const What& what) {
    if (remaining() < sizeof(T)) {
      return make_error("file is truncated: it ends at byte {} while reading {}", size_,
                        describe(what));
    }
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  template <typename What>
  Result<std::string_view> read_string(const What& what, uint64_t max_bytes) {
    if (remaining() < sizeof(uint64_t)) {
      return make_error("file is truncated: it ends at byte {} while reading the length of {}",
                        size_, describe(what));
    }
    uint64_t length;
    std::memcpy(&length, data_ + pos_, sizeof(length));
    pos_ += sizeof(length);
    if (length > remaining()) {
      return make_error(
          "{} claims a length of {} bytes, past the end of the file ({} bytes left at byte {}); "
          "the file is truncated or corrupt",
          describe(what), length, remaining(), pos_);
    }
    if (length > max_bytes) {
      return make_error("{} has an absurd length of {} bytes (limit {})", describe(what), length,
                        max_bytes);
    }
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Smallest encoding of one value of `type`, used to reject counts the file cannot hold.
inline uint64_t min_encoded_size(ValueType type) {
  switch (type) {
    case ValueType::UInt8:
    case ValueType::Int8:
    case ValueType::Bool:
      return 1;
    case ValueType::UInt16:
    case ValueType::Int16:
      return 2;
    case ValueType::UInt32:
    case ValueType::Int32:
    case ValueType::Float32:
      return 4;
    case ValueType::UInt64:
    case ValueType::Int64:
    case ValueType::Float64:
    case ValueType::String:
      return 8;
    case ValueType::Array:
      return 12;
  }
  return 1;
}

// Memory one decoded array element takes, charged against ReadLimits::max_metadata_bytes.
inline uint64_t decoded_size(ValueType type) {
  switch (type) {
    case ValueType::String:
      return sizeof(std::string_view);
    case ValueType::Array:
      return sizeof(Value);
    default:
      return sizeof(int64_t);
  }
}

inline bool known_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(ValueType::Float64);
}

constexpr uint64_t kNotAnElement = ~0ull;

// Reads metadata values. Errors name the key (and the array element, inside an array), and
// what the values take in memory is charged against ReadLimits::max_metadata_bytes, so that
// no file, however crafted, makes the reader allocate without bound.
class MetadataReader {
 public:
  MetadataReader(Cursor& cur, const ReadLimits& limits) : cur_(cur), limits_(limits) {}

  // Charges `bytes` of memory, failing once the metadata as a whole passes its limit.
  Status charge(std::string_view key, uint64_t bytes) {
    if (bytes > limits_.max_metadata_bytes - used_) return over_budget(key);
    used_ += bytes;
    return Status::success();
  }

  Result<Value> read(std::string_view key, ValueType type) {
    key_ = key;
    if (type == ValueType::Array) return read_array(0, kNotAnElement);
    return read_scalar(type, kNotAnElement);
  }

 private:
  Error over_budget(std::string_view key) const {
    return make_error(
        "metadata key '{}' takes the metadata past its memory limit of {} bytes "
        "(ReadLimits::max_metadata_bytes)",
        printable(key), limits_.max_metadata_bytes);
  }

  // "key 'k'", or "element 5 of key 'k'" inside an array.
  std::string where(uint64_t element) const {
    if (element == kNotAnElement) return fmt::format("metadata key '{}'", printable(key_));
    return fmt::format("element {} of metadata key '{}'", element, printable(key_));
  }

  template <typename T>
  Result<T> read_raw(uint64_t element) {
    return cur_.read<T>([&] { return "the value of " + where(element); });
  }

  // Any integer type, widened; UInt64 goes through read_raw<uint64_t> instead.
  Result<int64_t> read_integer(ValueType type, uint64_t element) {
    switch (type) {
      case ValueType::UInt8:
        return widen<uint8_t>(element);
      case ValueType::Int8:
        return widen<int8_t>(element);
      case ValueType::UInt16:
        return widen<uint16_t>(element);
      case ValueType::Int16:
        return widen<int16_t>(element);
      case ValueType::UInt32:
        return widen<uint32_t>(element);
      case ValueType::Int32:
        return widen<int32_t>(element);
      case ValueType::Int64:
        return widen<int64_t>(element);
      default:
        break;
    }
    return make_error("{} is not an integer type", where(element));
  }

  template <typename T>
  Result<int64_t> widen(uint64_t element) {
    MOON_ASSIGN_OR_RETURN(T v, read_raw<T>(element));
    return static_cast<int64_t>(v);
  }

  Result<bool> read_bool(uint64_t element) {
    MOON_ASSIGN_OR_RETURN(uint8_t v, read_raw<uint8_t>(element));
    if (v > 1) return make_error("{} holds a bool of value {} (must be 0 or 1)", where(element), v);
    return v != 0;
  }

  Result<std::string_view> read_string(uint64_t element) {
    return cur_.read_string([&] { return "the string value of " + where(element); },
                            limits_.max_string_bytes);
  }

  Result<Value> read_scalar(ValueType type, uint64_t element) {
    switch (type) {
      case ValueType::UInt64: {
        MOON_ASSIGN_OR_RETURN(uint64_t v, read_raw<uint64_t>(element));
        return Value::make_uint64(v);
      }
      case ValueType::Float32: {
        MOON_ASSIGN_OR_RETURN(float v, read_raw<float>(element));
        return Value::make_float(type, v);
      }
      case ValueType::Float64: {
        MOON_ASSIGN_OR_RETURN(double v, read_raw<double>(element));
        return Value::make_float(type, v);
      }
      case ValueType::Bool: {
        MOON_ASSIGN_OR_RETURN(bool v, read_bool(element));
        return Value::make_bool(v);
      }
      case ValueType::String: {
        MOON_ASSIGN_OR_RETURN(std::string_view s, read_string(element));
        return Value::make_string(s);
      }
      case ValueType::Array:
        break;  // read_array
      default: {
        MOON_ASSIGN_OR_RETURN(int64_t v, read_integer(type, element));
        return Value::make_int(type, v);
      }
    }
    return make_error("{} has unexpected value type {}", where(element), value_type_name(type));
  }

  Result<Value> read_array(int depth, uint64_t element) {
    if (depth >= limits_.max_array_nesting) {
      return make_error("metadata key '{}' nests arrays more than {} deep", printable(key_),
                        limits_.max_array_nesting);
    }
    MOON_ASSIGN_OR_RETURN(uint32_t raw_type, cur_.read<uint32_t>([&] {
      return "the element type of the array in " + where(element);
    }));
    if (!known_value_type(raw_type)) {
      return make_error("{} is an array of unknown value type {}", where(element), raw_type);
    }
    const auto type = static_cast<ValueType>(raw_type);
    MOON_ASSIGN_OR_RETURN(uint64_t count, cur_.read<uint64_t>([&] {
      return "the length of the array in " + where(element);
    }));
    if (count > limits_.max_array_elements) {
      return make_error("{} has an absurd array length of {} (limit {})", where(element), count,
                        limits_.max_array_elements);
    }
    if (count > cur_.remaining() / min_encoded_size(type)) {
      return make_error(
          "{} claims {} array elements of type {}, more than the {} bytes left in the file can "
          "hold; the file is truncated or corrupt",
          where(element), count, value_type_name(type), cur_.remaining());
    }
    if (count > limits_.max_metadata_bytes / decoded_size(type)) return over_budget(key_);
    MOON_TRY(charge(key_, count * decoded_size(type)));

    Value::Array array;
    array.element_type = type;
    switch (type) {
      case ValueType::String:
        array.strings.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          MOON_ASSIGN_OR_RETURN(std::string_view s, read_string(i));
          array.strings.push_back(s);
        }
        break;
      case ValueType::Array:
        array.arrays.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          MOON_ASSIGN_OR_RETURN(Value v, read_array(depth + 1, i));
          array.arrays.push_back(std::move(v));
        }
        break;
      case ValueType::Float32:
      case ValueType::Float64:
        array.floats.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          if (type == ValueType::Float32) {
            MOON_ASSIGN_OR_RETURN(float v, read_raw<float>(i));
            array.floats.push_back(v);
          } else {
            MOON_ASSIGN_OR_RETURN(double v, read_raw<double>(i));
            array.floats.push_back(v);
          }
        }
        break;
      case ValueType::UInt64:
        array.uints.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          MOON_ASSIGN_OR_RETURN(uint64_t v, read_raw<uint64_t>(i));
          array.uints.push_back(v);
        }
        break;
      case ValueType::Bool:
        array.ints.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          MOON_ASSIGN_OR_RETURN(bool v, read_bool(i));
          array.ints.push_back(v ? 1 : 0);
        }
        break;
      default:
        array.ints.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          MOON_ASSIGN_OR_RETURN(int64_t v, read_integer(type, i));
          array.ints.push_back(v);
        }
        break;
    }
    return Value::make_array(std::move(array));
  }

  Cursor& cur_;
  const ReadLimits& limits_;
  std::string_view key_;
  uint64_t used_ = 0;
};

// Multiplies dims, failing on overflow of 2^63 (sizes must stay representable as int64).
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  if (p > static_cast<unsigned __int128>(INT64_MAX)) return false;
  *out = static_cast<uint64_t>(p);
  return true;
}

inline uint32_t byte_swap(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

}  // namespace moon::gguf::detail
