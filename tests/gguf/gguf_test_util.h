// Helpers shared by the GGUF reader tests: a raw little-endian byte builder for files the
// GgufWriter cannot produce (wrong counts, bad types, broken offsets), and a way to write
// bytes to a file of the test's own and expect GgufFile::open to reject it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/test_data.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_value.h"
#include "gguf/gguf_writer.h"

namespace moon::gguf::test {

// Builds GGUF bytes field by field, with no validation at all.
class GgufBytes {
 public:
  template <typename T>
  GgufBytes& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  GgufBytes& u8(uint8_t v) { return put(v); }
  GgufBytes& i8(int8_t v) { return put(v); }
  GgufBytes& u16(uint16_t v) { return put(v); }
  GgufBytes& i16(int16_t v) { return put(v); }
  GgufBytes& u32(uint32_t v) { return put(v); }
  GgufBytes& i32(int32_t v) { return put(v); }
  GgufBytes& u64(uint64_t v) { return put(v); }
  GgufBytes& i64(int64_t v) { return put(v); }
  GgufBytes& f32(float v) { return put(v); }
  GgufBytes& f64(double v) { return put(v); }
  GgufBytes& type(ValueType t) { return u32(static_cast<uint32_t>(t)); }
  // A GGUF string: u64 length, then the bytes.
  GgufBytes& str(std::string_view s) {
    u64(s.size());
    return raw(s);
  }
  GgufBytes& raw(std::string_view s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    bytes_.resize(bytes_.size() + n, 0);
    return *this;
  }
  // Zero padding up to a multiple of `alignment`.
  GgufBytes& align(uint64_t alignment = kDefaultAlignment) {
    bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, 0);
    return *this;
  }

  // Magic, version, tensor count, key/value count.
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return u32(kMagic).u32(version).u64(n_tensors).u64(n_kv);
  }
  // A key and its value type; the caller adds the value.
  GgufBytes& key(std::string_view name, ValueType t) { return str(name).type(t); }
  // An array's element type and length; the caller adds the elements.
  GgufBytes& array(ValueType element_type, uint64_t count) { return type(element_type).u64(count); }
  GgufBytes& kv_u32(std::string_view name, uint32_t v) {
    return key(name, ValueType::UInt32).u32(v);
  }
  GgufBytes& kv_string(std::string_view name, std::string_view v) {
    return key(name, ValueType::String).str(v);
  }
  // A tensor info: name, dimension count, dimensions, type id, data offset.
  GgufBytes& tensor(std::string_view name, const std::vector<uint64_t>& ne, uint32_t type_id,
                    uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type_id).u64(offset);
  }
  GgufBytes& tensor(std::string_view name, const std::vector<uint64_t>& ne, DType type,
                    uint64_t offset) {
    return tensor(name, ne, static_cast<uint32_t>(type), offset);
  }

  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

inline std::string current_test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

// Writes `bytes` to a file in the test temp dir named after the running test (plus `suffix`)
// and returns its path.
inline std::string write_test_file(const std::vector<uint8_t>& bytes,
                                   const std::string& suffix = "") {
  const std::string path = moon::test::temp_dir() + "/" + current_test_name() + suffix + ".gguf";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(f.good()) << "cannot write " << path;
  return path;
}

// Writes `bytes` to a file of the test's own, opens it, and expects it to be rejected with
// one message: a single line that starts with the file's path. Returns the message ("" and a
// test failure when the file was accepted).
inline std::string open_error(const std::vector<uint8_t>& bytes, const ReadLimits& limits = {},
                              const std::string& suffix = "") {
  const std::string path = write_test_file(bytes, suffix);
  auto file = GgufFile::open(path, limits);
  if (file.ok()) {
    ADD_FAILURE() << path << " was accepted; expected an error";
    return "";
  }
  const std::string& message = file.error().message;
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u)
      << "message does not start with the path: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "message spans lines: " << message;
  EXPECT_LT(message.size(), 600u) << "message is not short: " << message;
  return message;
}

inline std::string open_error(const GgufBytes& b, const ReadLimits& limits = {},
                              const std::string& suffix = "") {
  return open_error(b.bytes(), limits, suffix);
}

// EXPECT that `message` contains every one of `words`.
#define EXPECT_MENTIONS(message, ...)                                                       \
  do {                                                                                      \
    const std::string moon_message_ = (message);                                            \
    for (const std::string& moon_word_ : std::initializer_list<std::string>{__VA_ARGS__}) { \
      EXPECT_NE(moon_message_.find(moon_word_), std::string::npos)                          \
          << "expected \"" << moon_word_ << "\" in the message: " << moon_message_;         \
    }                                                                                       \
  } while (0)

// Bytes of `n` counting up from `seed`, to tell tensors' data apart.
inline std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

// A small well-formed model-like file from the GgufWriter: four metadata keys (a string, a
// uint32, a string array, a float array) and three tensors (F32, Q8_0, F32).
inline std::vector<uint8_t> small_writer_file() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_uint32("llama.block_count", 2);
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "hello", "world"});
  w.add_float32_array("tokenizer.ggml.scores", {0.0f, -1.0f, -2.0f, -3.5f, -4.25f});
  EXPECT_TRUE(w.add_tensor("token_embd.weight", {8, 5}, DType::F32, pattern_bytes(160, 1)).ok());
  EXPECT_TRUE(w.add_tensor("blk.0.attn_q.weight", {32, 2}, DType::Q8_0, pattern_bytes(68, 2)).ok());
  EXPECT_TRUE(w.add_tensor("output_norm.weight", {8}, DType::F32, pattern_bytes(32, 3)).ok());
  return w.serialize();
}

// Position of the first occurrence of `needle` in `bytes` (a test failure when absent).
inline size_t find_bytes(const std::vector<uint8_t>& bytes, std::string_view needle) {
  auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  EXPECT_NE(it, bytes.end()) << "'" << needle << "' not found";
  return static_cast<size_t>(it - bytes.begin());
}

inline std::vector<uint8_t> truncated(std::vector<uint8_t> bytes, size_t size) {
  bytes.resize(size);
  return bytes;
}

// A well-formed file built by hand with one key of every value type, including arrays of
// every element type, arrays of arrays and empty ones, and two tensors: "weights" (F32, 3x2,
// at data offset 0) and "half" (F16, 32, at data offset 32), whose data is
// every_type_tensor_data(0) and (1).
inline constexpr uint64_t kEveryTypeKeyCount = 29;

inline std::vector<uint8_t> every_type_tensor_data(int i) {
  return i == 0 ? pattern_bytes(4 * 6, 11) : pattern_bytes(2 * 32, 12);
}

inline std::vector<uint8_t> every_type_file() {
  GgufBytes b;
  b.header(2, kEveryTypeKeyCount);
  b.key("t.u8", ValueType::UInt8).u8(200);
  b.key("t.i8", ValueType::Int8).i8(-100);
  b.key("t.u16", ValueType::UInt16).u16(60000);
  b.key("t.i16", ValueType::Int16).i16(-30000);
  b.key("t.u32", ValueType::UInt32).u32(4000000000u);
  b.key("t.i32", ValueType::Int32).i32(-2000000000);
  b.key("t.f32", ValueType::Float32).f32(1.5f);
  b.key("t.bool_true", ValueType::Bool).u8(1);
  b.key("t.bool_false", ValueType::Bool).u8(0);
  b.key("t.string", ValueType::String).str("hello, world");
  b.key("t.empty_string", ValueType::String).str("");
  b.key("t.u64", ValueType::UInt64).u64(UINT64_MAX);
  b.key("t.i64", ValueType::Int64).i64(INT64_MIN);
  b.key("t.f64", ValueType::Float64).f64(-2.25e300);
  b.key("a.u8", ValueType::Array).array(ValueType::UInt8, 3).u8(0).u8(128).u8(255);
  b.key("a.i8", ValueType::Array).array(ValueType::Int8, 2).i8(-128).i8(127);
  b.key("a.u16", ValueType::Array).array(ValueType::UInt16, 2).u16(1).u16(65535);
  b.key("a.i16", ValueType::Array).array(ValueType::Int16, 2).i16(-32768).i16(32767);
  b.key("a.u32", ValueType::Array).array(ValueType::UInt32, 2).u32(7).u32(UINT32_MAX);
  b.key("a.i32", ValueType::Array).array(ValueType::Int32, 2).i32(INT32_MIN).i32(5);
  b.key("a.u64", ValueType::Array).array(ValueType::UInt64, 2).u64(UINT64_MAX).u64(3);
  b.key("a.i64", ValueType::Array).array(ValueType::Int64, 2).i64(INT64_MIN).i64(INT64_MAX);
  b.key("a.f32", ValueType::Array).array(ValueType::Float32, 2).f32(0.5f).f32(-3.0f);
  b.key("a.f64", ValueType::Array).array(ValueType::Float64, 2).f64(0.125).f64(-1e100);
  b.key("a.bool", ValueType::Array).array(ValueType::Bool, 3).u8(1).u8(0).u8(1);
  b.key("a.strings", ValueType::Array).array(ValueType::String, 3).str("a").str("").str("ccc");
  b.key("a.empty", ValueType::Array).array(ValueType::UInt32, 0);
  // [["x", "y"], []]
  b.key("a.nested", ValueType::Array).array(ValueType::Array, 2);
  b.array(ValueType::String, 2).str("x").str("y");
  b.array(ValueType::String, 0);
  // [[[1, 2], [3]]]
  b.key("a.deep", ValueType::Array).array(ValueType::Array, 1);
  b.array(ValueType::Array, 2);
  b.array(ValueType::UInt32, 2).u32(1).u32(2);
  b.array(ValueType::UInt32, 1).u32(3);
  b.tensor("weights", {3, 2}, DType::F32, 0);
  b.tensor("half", {32}, DType::F16, 32);
  b.align();
  std::vector<uint8_t> out = b.bytes();
  const size_t data_start = out.size();
  for (int i = 0; i < 2; ++i) {
    auto data = every_type_tensor_data(i);
    out.resize(data_start + 32 * i, 0);
    out.insert(out.end(), data.begin(), data.end());
  }
  return out;
}

}  // namespace moon::gguf::test
