// Positive controls for the reader's validation: well-formed files, from the GgufWriter and
// built by hand, read back exactly what was written.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "gguf_test_util.h"

namespace moon::gguf {
namespace {

using test::GgufBytes;

std::unique_ptr<GgufFile> open_ok(const std::vector<uint8_t>& bytes,
                                  const ReadLimits& limits = {}) {
  const std::string path = test::write_test_file(bytes);
  auto file = GgufFile::open(path, limits);
  EXPECT_TRUE(file.ok()) << file.error().message;
  if (!file.ok()) return nullptr;
  EXPECT_EQ((*file)->file_size(), bytes.size());
  return std::move(file).value();
}

// The tensor is where it should be: aligned in the file and in memory, with these bytes.
void expect_tensor_data(const GgufFile& f, const TensorInfo& t,
                        const std::vector<uint8_t>& expected) {
  EXPECT_EQ(t.n_bytes, expected.size()) << t.name;
  EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % f.alignment(), 0u) << t.name;
  ASSERT_NE(t.data, nullptr) << t.name;
  EXPECT_EQ(std::memcmp(t.data, expected.data(), expected.size()), 0) << t.name;
}

TEST(GgufRoundTrip, WriterOutputReadsBackValuesAndTensors) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", "");
  w.add_uint32("llama.block_count", 4000000000u);
  w.add_int32("llama.rope.dimension_offset", -7);
  w.add_uint64("llama.context_length", std::numeric_limits<uint64_t>::max());
  w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_bool("tokenizer.ggml.add_eos_token", false);
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "", "h\xc3\xa9llo", std::string(300, 'x')});
  w.add_float32_array("tokenizer.ggml.scores", {0.0f, -1.5f, 3.25f, -1e30f});
  w.add_int32_array("tokenizer.ggml.token_type", {2, 3, 1, -1});
  w.add_int32_array("empty.array", {});

  struct Spec {
    std::string name;
    std::vector<uint64_t> ne;
    DType type;
    size_t n_bytes;
  };
  const std::vector<Spec> specs = {
      {"token_embd.weight", {8, 4}, DType::F32, 8 * 4 * 4},
      {"blk.0.attn_norm.weight", {8}, DType::F32, 8 * 4},  // 32 bytes: no padding after
      {"blk.0.attn_q.weight", {64, 3}, DType::Q8_0, 2 * 3 * 34},
      {"blk.0.ffn_up.weight", {32, 2, 1, 2}, DType::Q4_0, 4 * 18},
      {"blk.0.ffn_down.weight", {3, 5}, DType::F16, 3 * 5 * 2},
      {"output.weight", {256}, DType::Q4_K, 144},
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& s = specs[i];
    ASSERT_TRUE(
        w.add_tensor(s.name, s.ne, s.type, test::pattern_bytes(s.n_bytes, uint8_t(i))).ok());
  }

  auto file = open_ok(w.serialize());
  ASSERT_NE(file, nullptr);
  const GgufFile& f = *file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);

  ASSERT_EQ(f.metadata().size(), 12u);
  EXPECT_EQ(f.metadata()[0].first, "general.architecture");  // file order
  EXPECT_EQ(f.metadata()[11].first, "empty.array");
  EXPECT_EQ(*f.get_string("general.architecture"), "llama");
  EXPECT_EQ(*f.get_string("general.name"), "");
  EXPECT_EQ(*f.get_uint("llama.block_count"), 4000000000u);
  EXPECT_EQ(f.find("llama.block_count")->type(), ValueType::UInt32);
  EXPECT_EQ(*f.get_int("llama.rope.dimension_offset"), -7);
  EXPECT_EQ(f.find("llama.rope.dimension_offset")->type(), ValueType::Int32);
  EXPECT_EQ(*f.get_uint("llama.context_length"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*f.get_float("llama.attention.layer_norm_rms_epsilon"), double(1e-5f));
  EXPECT_EQ(f.find("llama.attention.layer_norm_rms_epsilon")->type(), ValueType::Float32);
  EXPECT_TRUE(*f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_FALSE(*f.get_bool("tokenizer.ggml.add_eos_token"));

  const Value::Array* tokens = f.find("tokenizer.ggml.tokens")->array();
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->element_type, ValueType::String);
  ASSERT_EQ(tokens->strings.size(), 4u);
  EXPECT_EQ(tokens->strings[0], "<unk>");
  EXPECT_EQ(tokens->strings[1], "");
  EXPECT_EQ(tokens->strings[2], "h\xc3\xa9llo");
  EXPECT_EQ(tokens->strings[3], std::string(300, 'x'));
  const Value::Array* scores = f.find("tokenizer.ggml.scores")->array();
  ASSERT_NE(scores, nullptr);
  EXPECT_EQ(scores->element_type, ValueType::Float32);
  EXPECT_EQ(scores->floats, (std::vector<double>{0.0, -1.5, 3.25, double(-1e30f)}));
  const Value::Array* types = f.find("tokenizer.ggml.token_type")->array();
  ASSERT_NE(types, nullptr);
  EXPECT_EQ(types->element_type, ValueType::Int32);
  EXPECT_EQ(types->ints, (std::vector<int64_t>{2, 3, 1, -1}));
  EXPECT_EQ(f.find("empty.array")->array_size(), 0u);

  ASSERT_EQ(f.tensors().size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& s = specs[i];
    const TensorInfo& t = f.tensors()[i];
    EXPECT_EQ(t.name, s.name);
    EXPECT_EQ(f.find_tensor(s.name), &t);
    EXPECT_EQ(t.type, s.type) << s.name;
    EXPECT_EQ(t.n_dims, int(s.ne.size())) << s.name;
    uint64_t n = 1;
    for (int d = 0; d < kMaxDims; ++d) {
      const uint64_t want = d < int(s.ne.size()) ? s.ne[d] : 1;
      EXPECT_EQ(t.ne[d], want) << s.name << " dim " << d;
      n *= want;
    }
    EXPECT_EQ(t.n_elements, n) << s.name;
    expect_tensor_data(f, t, test::pattern_bytes(s.n_bytes, uint8_t(i)));
  }
  EXPECT_EQ(f.find_tensor("no.such.tensor"), nullptr);
}

TEST(GgufRoundTrip, WriterOutputWithCustomAlignmentIsAlignedToIt) {
  GgufWriter w;
  w.set_alignment(256);
  w.add_string("general.architecture", "llama");
  ASSERT_TRUE(w.add_tensor("a", {5}, DType::F32, test::pattern_bytes(20, 1)).ok());
  ASSERT_TRUE(w.add_tensor("b", {3}, DType::F32, test::pattern_bytes(12, 2)).ok());
  auto file = open_ok(w.serialize());
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->alignment(), 256u);
  EXPECT_EQ(*file->get_uint("general.alignment"), 256u);
  expect_tensor_data(*file, *file->find_tensor("a"), test::pattern_bytes(20, 1));
  expect_tensor_data(*file, *file->find_tensor("b"), test::pattern_bytes(12, 2));
  EXPECT_EQ(file->find_tensor("b")->offset, 256u);
}

TEST(GgufRoundTrip, EveryValueTypeReadsBack) {
  auto file = open_ok(test::every_type_file());
  ASSERT_NE(file, nullptr);
  const GgufFile& f = *file;
  ASSERT_EQ(f.metadata().size(), test::kEveryTypeKeyCount);

  auto type_of = [&](const char* key) { return f.find(key)->type(); };
  EXPECT_EQ(type_of("t.u8"), ValueType::UInt8);
  EXPECT_EQ(*f.get_uint("t.u8"), 200u);
  EXPECT_EQ(type_of("t.i8"), ValueType::Int8);
  EXPECT_EQ(*f.get_int("t.i8"), -100);
  EXPECT_EQ(type_of("t.u16"), ValueType::UInt16);
  EXPECT_EQ(*f.get_uint("t.u16"), 60000u);
  EXPECT_EQ(type_of("t.i16"), ValueType::Int16);
  EXPECT_EQ(*f.get_int("t.i16"), -30000);
  EXPECT_EQ(type_of("t.u32"), ValueType::UInt32);
  EXPECT_EQ(*f.get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(type_of("t.i32"), ValueType::Int32);
  EXPECT_EQ(*f.get_int("t.i32"), -2000000000);
  EXPECT_EQ(type_of("t.f32"), ValueType::Float32);
  EXPECT_EQ(*f.get_float("t.f32"), 1.5);
  EXPECT_EQ(type_of("t.bool_true"), ValueType::Bool);
  EXPECT_TRUE(*f.get_bool("t.bool_true"));
  EXPECT_FALSE(*f.get_bool("t.bool_false"));
  EXPECT_EQ(type_of("t.string"), ValueType::String);
  EXPECT_EQ(*f.get_string("t.string"), "hello, world");
  EXPECT_EQ(*f.get_string("t.empty_string"), "");
  EXPECT_EQ(type_of("t.u64"), ValueType::UInt64);
  EXPECT_EQ(*f.get_uint("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(f.get_int("t.u64").ok());  // above INT64_MAX
  EXPECT_EQ(type_of("t.i64"), ValueType::Int64);
  EXPECT_EQ(*f.get_int("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(type_of("t.f64"), ValueType::Float64);
  EXPECT_EQ(*f.get_float("t.f64"), -2.25e300);

  auto array_of = [&](const char* key, ValueType element_type) -> const Value::Array& {
    const Value* v = f.find(key);
    EXPECT_NE(v, nullptr) << key;
    EXPECT_TRUE(v->is_array()) << key;
    EXPECT_EQ(v->array()->element_type, element_type) << key;
    return *v->array();
  };
  using Ints = std::vector<int64_t>;
  EXPECT_EQ(array_of("a.u8", ValueType::UInt8).ints, (Ints{0, 128, 255}));
  EXPECT_EQ(array_of("a.i8", ValueType::Int8).ints, (Ints{-128, 127}));
  EXPECT_EQ(array_of("a.u16", ValueType::UInt16).ints, (Ints{1, 65535}));
  EXPECT_EQ(array_of("a.i16", ValueType::Int16).ints, (Ints{-32768, 32767}));
  EXPECT_EQ(array_of("a.u32", ValueType::UInt32).ints, (Ints{7, 4294967295}));
  EXPECT_EQ(array_of("a.i32", ValueType::Int32).ints, (Ints{-2147483648ll, 5}));
  EXPECT_EQ(array_of("a.u64", ValueType::UInt64).uints,
            (std::vector<uint64_t>{std::numeric_limits<uint64_t>::max(), 3}));
  EXPECT_EQ(array_of("a.i64", ValueType::Int64).ints,
            (Ints{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(array_of("a.f32", ValueType::Float32).floats, (std::vector<double>{0.5, -3.0}));
  EXPECT_EQ(array_of("a.f64", ValueType::Float64).floats, (std::vector<double>{0.125, -1e100}));
  EXPECT_EQ(array_of("a.bool", ValueType::Bool).ints, (Ints{1, 0, 1}));
  EXPECT_EQ(array_of("a.strings", ValueType::String).strings,
            (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_EQ(f.find("a.empty")->array_size(), 0u);
  EXPECT_EQ(array_of("a.empty", ValueType::UInt32).ints.size(), 0u);

  const Value::Array& nested = array_of("a.nested", ValueType::Array);
  ASSERT_EQ(nested.arrays.size(), 2u);
  EXPECT_EQ(nested.arrays[0].array()->element_type, ValueType::String);
  EXPECT_EQ(nested.arrays[0].array()->strings, (std::vector<std::string_view>{"x", "y"}));
  EXPECT_EQ(nested.arrays[1].array_size(), 0u);

  const Value::Array& deep = array_of("a.deep", ValueType::Array);
  ASSERT_EQ(deep.arrays.size(), 1u);
  const Value::Array* middle = deep.arrays[0].array();
  ASSERT_NE(middle, nullptr);
  ASSERT_EQ(middle->arrays.size(), 2u);
  EXPECT_EQ(middle->arrays[0].array()->ints, (Ints{1, 2}));
  EXPECT_EQ(middle->arrays[1].array()->ints, (Ints{3}));

  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo* weights = f.find_tensor("weights");
  ASSERT_NE(weights, nullptr);
  EXPECT_EQ(weights->n_dims, 2);
  EXPECT_EQ(weights->n_rows(), 2u);
  expect_tensor_data(f, *weights, test::every_type_tensor_data(0));
  const TensorInfo* half = f.find_tensor("half");
  ASSERT_NE(half, nullptr);
  EXPECT_EQ(half->type, DType::F16);
  expect_tensor_data(f, *half, test::every_type_tensor_data(1));
}

TEST(GgufRoundTrip, FromBytesReadsTheSameAsOpen) {
  auto file = GgufFile::from_bytes(test::every_type_file(), "in-memory");
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ((*file)->name(), "in-memory");
  EXPECT_EQ((*file)->metadata().size(), test::kEveryTypeKeyCount);
  const TensorInfo* half = (*file)->find_tensor("half");
  ASSERT_NE(half, nullptr);
  auto expected = test::every_type_tensor_data(1);
  EXPECT_EQ(std::memcmp(half->data, expected.data(), expected.size()), 0);
}

TEST(GgufRoundTrip, ArraysNestedExactlyToTheLimitAreRead) {
  // Four levels: [[[[7]]]], the most ReadLimits::max_array_nesting allows by default.
  GgufBytes b;
  b.header(0, 1).key("a.deep", ValueType::Array);
  for (int level = 0; level < 3; ++level) b.array(ValueType::Array, 1);
  b.array(ValueType::UInt8, 1).u8(7);
  auto file = open_ok(b.bytes());
  ASSERT_NE(file, nullptr);
  const Value* v = file->find("a.deep");
  for (int level = 0; level < 3; ++level) {
    ASSERT_EQ(v->array_size(), 1u);
    v = &v->array()->arrays[0];
  }
  EXPECT_EQ(v->array()->ints, (std::vector<int64_t>{7}));
}

TEST(GgufRoundTrip, DeeperNestingIsReadWhenTheLimitAllowsIt) {
  GgufBytes b;
  b.header(0, 1).key("a.deep", ValueType::Array);
  for (int level = 0; level < 4; ++level) b.array(ValueType::Array, 1);
  b.array(ValueType::UInt8, 1).u8(7);
  ReadLimits limits;
  limits.max_array_nesting = 5;
  EXPECT_NE(open_ok(b.bytes(), limits), nullptr);
}

TEST(GgufRoundTrip, Version2FileIsRead) {
  GgufBytes b;
  b.header(1, 1, 2).kv_string("general.architecture", "llama");
  b.tensor("w", {4}, DType::F32, 0).align().zeros(16);
  auto file = open_ok(b.bytes());
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->version(), 2u);
  EXPECT_EQ(file->tensors().size(), 1u);
}

TEST(GgufRoundTrip, MetadataOnlyFileWithoutPaddingIsRead) {
  GgufBytes b;
  b.header(0, 1).kv_string("tokenizer.ggml.model", "llama");
  auto file = open_ok(b.bytes());
  ASSERT_NE(file, nullptr);
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_EQ(*file->get_string("tokenizer.ggml.model"), "llama");
}

TEST(GgufRoundTrip, HeaderOnlyFileIsRead) {
  auto file = open_ok(GgufBytes().header(0, 0).bytes());
  ASSERT_NE(file, nullptr);
  EXPECT_TRUE(file->metadata().empty());
  EXPECT_TRUE(file->tensors().empty());
}

TEST(GgufRoundTrip, TensorsOutOfOrderWithGapsAndTouchingAreRead) {
  // Data offsets need not follow the directory order, may leave gaps, and may touch.
  GgufBytes b;
  b.header(3, 0);
  b.tensor("c", {8}, DType::F32, 128).tensor("a", {8}, DType::F32, 0);
  b.tensor("b", {16}, DType::F32, 32);  // 64 bytes right after "a", then a gap before "c"
  b.align();
  std::vector<uint8_t> bytes = b.bytes();
  const size_t data_start = bytes.size();
  bytes.resize(data_start + 160, 0);
  std::memcpy(bytes.data() + data_start + 128, test::pattern_bytes(32, 3).data(), 32);
  std::memcpy(bytes.data() + data_start + 0, test::pattern_bytes(32, 1).data(), 32);
  std::memcpy(bytes.data() + data_start + 32, test::pattern_bytes(64, 2).data(), 64);
  auto file = open_ok(bytes);
  ASSERT_NE(file, nullptr);
  expect_tensor_data(*file, *file->find_tensor("a"), test::pattern_bytes(32, 1));
  expect_tensor_data(*file, *file->find_tensor("b"), test::pattern_bytes(64, 2));
  expect_tensor_data(*file, *file->find_tensor("c"), test::pattern_bytes(32, 3));
  EXPECT_EQ(file->tensors()[0].name, "c");  // directory order kept
}

TEST(GgufRoundTrip, TensorEndingExactlyAtTheEndOfTheFileIsRead) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {5}, DType::F32, 0).align().zeros(20);  // no trailing padding
  auto file = open_ok(b.bytes());
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->find_tensor("w")->n_bytes, 20u);
}

TEST(GgufRoundTrip, LargeArraysWithinTheLimitsAreRead) {
  // A vocabulary-sized string array and number array.
  constexpr uint64_t kTokens = 200000;
  GgufBytes b;
  b.header(0, 2).key("tokenizer.ggml.tokens", ValueType::Array).array(ValueType::String, kTokens);
  for (uint64_t i = 0; i < kTokens; ++i) b.str("tok" + std::to_string(i));
  b.key("tokenizer.ggml.scores", ValueType::Array).array(ValueType::Float32, kTokens);
  for (uint64_t i = 0; i < kTokens; ++i) b.f32(-float(i));
  auto file = open_ok(b.bytes());
  ASSERT_NE(file, nullptr);
  const Value::Array* tokens = file->find("tokenizer.ggml.tokens")->array();
  ASSERT_EQ(tokens->strings.size(), kTokens);
  EXPECT_EQ(tokens->strings[123456], "tok123456");
  EXPECT_EQ(file->find("tokenizer.ggml.scores")->array()->floats[199999], -199999.0);
}

}  // namespace
}  // namespace moon::gguf
