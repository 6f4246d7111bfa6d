// Broken and hostile GGUF files: each test writes one bad file of its own and checks that
// GgufFile::open rejects it with one clear message naming the problem (and the key or
// tensor concerned), never a crash, hang or huge allocation.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "gguf/gguf_file.h"
#include "gguf_test_util.h"

namespace moon::gguf {
namespace {

using test::GgufBytes;
using test::open_error;

constexpr uint64_t kHuge = 1ull << 60;

// One F32 tensor named "w" of `ne`, with `data_bytes` bytes of data section after it.
GgufBytes one_tensor_file(const std::vector<uint64_t>& ne, uint32_t type_id, uint64_t offset = 0,
                          size_t data_bytes = 64) {
  GgufBytes b;
  b.header(1, 0).tensor("w", ne, type_id, offset).align().zeros(data_bytes);
  return b;
}

GgufBytes one_tensor_file(const std::vector<uint64_t>& ne, DType type = DType::F32,
                          uint64_t offset = 0, size_t data_bytes = 64) {
  return one_tensor_file(ne, static_cast<uint32_t>(type), offset, data_bytes);
}

// A file whose only key is general.alignment, written by `put_value`, and one tensor.
template <typename F>
GgufBytes alignment_file(ValueType type, F put_value) {
  GgufBytes b;
  b.header(1, 1).key("general.alignment", type);
  put_value(b);
  b.tensor("w", {8}, DType::F32, 0).align().zeros(32);
  return b;
}

// ---- Header ----

TEST(GgufBadFile, EmptyFileIsNotAGgufFile) {
  EXPECT_MENTIONS(open_error(std::vector<uint8_t>{}), "not a GGUF file", "empty");
}

TEST(GgufBadFile, FileShorterThanMagicIsNotAGgufFile) {
  EXPECT_MENTIONS(open_error(std::vector<uint8_t>{'G', 'G', 'U'}), "not a GGUF file", "3 bytes");
}

TEST(GgufBadFile, BadMagicIsReported) {
  GgufBytes b;
  b.raw("GGML").u32(3).u64(0).u64(0);
  EXPECT_MENTIONS(open_error(b), "bad magic", "not a GGUF file");
}

TEST(GgufBadFile, Version1IsUnsupported) {
  EXPECT_MENTIONS(open_error(GgufBytes().header(0, 0, 1)), "unsupported GGUF version 1");
}

TEST(GgufBadFile, Version4IsUnsupported) {
  EXPECT_MENTIONS(open_error(GgufBytes().header(0, 0, 4)), "unsupported GGUF version 4");
}

TEST(GgufBadFile, Version0xFFFFFFFFIsUnsupported) {
  EXPECT_MENTIONS(open_error(GgufBytes().header(0, 0, 0xFFFFFFFFu)),
                  "unsupported GGUF version 4294967295");
}

TEST(GgufBadFile, BigEndianFileIsRecognizedAsSuch) {
  EXPECT_MENTIONS(open_error(GgufBytes().header(0, 0, 0x03000000u)), "unsupported GGUF version",
                  "big-endian");
}

TEST(GgufBadFile, TruncatedInsideHeader) {
  const auto full = test::small_writer_file();
  EXPECT_MENTIONS(open_error(test::truncated(full, 12)), "truncated", "tensor count");
}

TEST(GgufBadFile, TruncatedInsideVersion) {
  const auto full = test::small_writer_file();
  EXPECT_MENTIONS(open_error(test::truncated(full, 6)), "truncated", "version");
}

TEST(GgufBadFile, AbsurdTensorCount) {
  EXPECT_MENTIONS(open_error(GgufBytes().header(kHuge, 0).zeros(64)), "absurd tensor count",
                  "1152921504606846976");
}

TEST(GgufBadFile, AbsurdMetadataCount) {
  EXPECT_MENTIONS(open_error(GgufBytes().header(0, kHuge).zeros(64)),
                  "absurd metadata key/value count", "1152921504606846976");
}

TEST(GgufBadFile, TensorCountLargerThanTheFileHolds) {
  GgufBytes b;
  b.header(1000, 0).tensor("w", {8}, DType::F32, 0);
  EXPECT_MENTIONS(open_error(b), "truncated", "tensor #1");
}

TEST(GgufBadFile, MetadataCountLargerThanTheFileHolds) {
  GgufBytes b;
  b.header(0, 1000).kv_u32("a.key", 1);
  EXPECT_MENTIONS(open_error(b), "truncated", "metadata key #1");
}

TEST(GgufBadFile, MetadataCountOverTheReadLimit) {
  GgufBytes b;
  b.header(0, 3).kv_u32("a", 1).kv_u32("b", 2).kv_u32("c", 3);
  ReadLimits limits;
  limits.max_kv_pairs = 2;
  EXPECT_MENTIONS(open_error(b, limits), "absurd metadata key/value count 3", "limit 2");
}

TEST(GgufBadFile, TensorCountOverTheReadLimit) {
  GgufBytes b;
  b.header(3, 0).tensor("a", {8}, DType::F32, 0).tensor("b", {8}, DType::F32, 32);
  b.tensor("c", {8}, DType::F32, 64).align().zeros(96);
  ReadLimits limits;
  limits.max_tensors = 2;
  EXPECT_MENTIONS(open_error(b, limits), "absurd tensor count 3", "limit 2");
}

// ---- Metadata keys and values ----

TEST(GgufBadFile, TruncatedInsideAKeyName) {
  const auto full = test::small_writer_file();
  const size_t cut = test::find_bytes(full, "tokenizer.ggml.tokens") + 5;
  EXPECT_MENTIONS(open_error(test::truncated(full, cut)), "truncated", "metadata key #2");
}

TEST(GgufBadFile, TruncatedInsideAScalarValue) {
  const auto full = test::small_writer_file();
  // llama.block_count: name, then a 4-byte type, then a 4-byte value cut after 2 bytes.
  const size_t cut = test::find_bytes(full, "llama.block_count") + 17 + 4 + 2;
  EXPECT_MENTIONS(open_error(test::truncated(full, cut)), "truncated", "'llama.block_count'");
}

TEST(GgufBadFile, TruncatedInsideAStringArray) {
  const auto full = test::small_writer_file();
  const size_t cut = test::find_bytes(full, "hello") + 2;
  EXPECT_MENTIONS(open_error(test::truncated(full, cut)), "truncated", "element 3",
                  "'tokenizer.ggml.tokens'");
}

TEST(GgufBadFile, TruncatedInsideANumberArray) {
  const auto full = test::small_writer_file();
  // Name, type, element type, length, then 6 of the 20 bytes of floats.
  const size_t cut = test::find_bytes(full, "tokenizer.ggml.scores") + 21 + 4 + 4 + 8 + 6;
  EXPECT_MENTIONS(open_error(test::truncated(full, cut)), "truncated", "'tokenizer.ggml.scores'",
                  "5 array elements");
}

TEST(GgufBadFile, KeyNameLengthPastTheEnd) {
  GgufBytes b;
  b.header(0, 1).u64(1000).raw("general.name").type(ValueType::UInt32).u32(0);
  EXPECT_MENTIONS(open_error(b), "name of metadata key #0", "length of 1000 bytes", "past the end");
}

TEST(GgufBadFile, StringValueLengthPastTheEnd) {
  GgufBytes b;
  b.header(0, 1).key("general.name", ValueType::String).u64(1ull << 40).raw("tiny");
  EXPECT_MENTIONS(open_error(b), "'general.name'", "length of 1099511627776 bytes", "past the end");
}

TEST(GgufBadFile, StringValueLengthOfUint64MaxIsPastTheEnd) {
  GgufBytes b;
  b.header(0, 1).key("general.name", ValueType::String).u64(UINT64_MAX).raw("tiny");
  EXPECT_MENTIONS(open_error(b), "'general.name'", "past the end");
}

TEST(GgufBadFile, AbsurdStringLengthOverTheReadLimit) {
  GgufBytes b;
  b.header(0, 1).kv_string("general.description", std::string(100, 'x'));
  ReadLimits limits;
  limits.max_string_bytes = 64;
  EXPECT_MENTIONS(open_error(b, limits), "'general.description'", "absurd length of 100 bytes",
                  "limit 64");
}

TEST(GgufBadFile, AbsurdKeyNameLengthOverTheReadLimit) {
  GgufBytes b;
  b.header(0, 1).kv_u32(std::string(100, 'k'), 1);
  ReadLimits limits;
  limits.max_string_bytes = 64;
  EXPECT_MENTIONS(open_error(b, limits), "name of metadata key #0", "absurd length of 100");
}

TEST(GgufBadFile, ArrayLengthPastTheEnd) {
  GgufBytes b;
  b.header(0, 1).key("a.numbers", ValueType::Array).array(ValueType::UInt32, 1000).u32(1).u32(2);
  EXPECT_MENTIONS(open_error(b), "'a.numbers'", "1000 array elements", "bytes left");
}

TEST(GgufBadFile, StringArrayLengthPastTheEnd) {
  GgufBytes b;
  b.header(0, 1).key("tokenizer.ggml.tokens", ValueType::Array).array(ValueType::String, 1000);
  b.str("a").str("b");
  EXPECT_MENTIONS(open_error(b), "'tokenizer.ggml.tokens'", "1000 array elements", "bytes left");
}

TEST(GgufBadFile, AbsurdArrayLength) {
  GgufBytes b;
  b.header(0, 1).key("a.numbers", ValueType::Array).array(ValueType::UInt8, 1ull << 62).u8(1);
  EXPECT_MENTIONS(open_error(b), "'a.numbers'", "absurd array length", "4611686018427387904");
}

TEST(GgufBadFile, ArrayLengthOverTheReadLimit) {
  GgufBytes b;
  b.header(0, 1).key("a.numbers", ValueType::Array).array(ValueType::UInt8, 20).zeros(20);
  ReadLimits limits;
  limits.max_array_elements = 10;
  EXPECT_MENTIONS(open_error(b, limits), "'a.numbers'", "absurd array length of 20", "limit 10");
}

TEST(GgufBadFile, MetadataOverTheMemoryLimit) {
  // 100K one-byte elements widen to 800 KB in memory.
  GgufBytes b;
  b.header(0, 1).key("a.bytes", ValueType::Array).array(ValueType::UInt8, 100000).zeros(100000);
  ReadLimits limits;
  limits.max_metadata_bytes = 500000;
  EXPECT_MENTIONS(open_error(b, limits), "'a.bytes'", "memory limit of 500000 bytes");
}

TEST(GgufBadFile, ArrayOfEmptyArraysOverTheMemoryLimit) {
  // Each 12-byte empty array decodes to a whole Value: the limit must catch the blow-up.
  GgufBytes b;
  b.header(0, 1).key("a.arrays", ValueType::Array).array(ValueType::Array, 10000);
  for (int i = 0; i < 10000; ++i) b.array(ValueType::UInt8, 0);
  ReadLimits limits;
  limits.max_metadata_bytes = 100000;
  EXPECT_MENTIONS(open_error(b, limits), "'a.arrays'", "memory limit");
}

TEST(GgufBadFile, UnknownMetadataValueType) {
  GgufBytes b;
  b.header(0, 1).str("general.odd").u32(13).u32(0);
  EXPECT_MENTIONS(open_error(b), "'general.odd'", "unknown value type 13");
}

TEST(GgufBadFile, MetadataValueTypeOfUint32Max) {
  GgufBytes b;
  b.header(0, 1).str("general.odd").u32(0xFFFFFFFFu).u32(0);
  EXPECT_MENTIONS(open_error(b), "'general.odd'", "unknown value type 4294967295");
}

TEST(GgufBadFile, UnknownArrayElementType) {
  GgufBytes b;
  b.header(0, 1).key("a.odd", ValueType::Array).u32(13).u64(1).u32(0);
  EXPECT_MENTIONS(open_error(b), "'a.odd'", "array of unknown value type 13");
}

TEST(GgufBadFile, ArraysNestedTooDeep) {
  // Five levels of arrays, one more than ReadLimits::max_array_nesting (4) allows.
  GgufBytes b;
  b.header(0, 1).key("a.deep", ValueType::Array);
  for (int level = 0; level < 4; ++level) b.array(ValueType::Array, 1);
  b.array(ValueType::UInt8, 1).u8(7);
  EXPECT_MENTIONS(open_error(b), "'a.deep'", "nests arrays more than 4 deep");
}

TEST(GgufBadFile, ArraysNestedAHundredThousandDeepFailWithoutRecursingThatFar) {
  GgufBytes b;
  b.header(0, 1).key("a.deep", ValueType::Array);
  for (int level = 0; level < 100000; ++level) b.array(ValueType::Array, 1);
  b.array(ValueType::UInt8, 0);
  EXPECT_MENTIONS(open_error(b), "'a.deep'", "nests arrays more than 4 deep");
}

TEST(GgufBadFile, BoolValueOtherThanZeroOrOne) {
  GgufBytes b;
  b.header(0, 1).key("general.flag", ValueType::Bool).u8(2);
  EXPECT_MENTIONS(open_error(b), "'general.flag'", "bool of value 2");
}

TEST(GgufBadFile, BoolArrayElementOtherThanZeroOrOne) {
  GgufBytes b;
  b.header(0, 1).key("a.flags", ValueType::Array).array(ValueType::Bool, 3).u8(1).u8(0).u8(255);
  EXPECT_MENTIONS(open_error(b), "element 2 of metadata key 'a.flags'", "bool of value 255");
}

TEST(GgufBadFile, DuplicateMetadataKey) {
  GgufBytes b;
  b.header(0, 3).kv_u32("llama.block_count", 1).kv_u32("llama.context_length", 2);
  b.kv_u32("llama.block_count", 3);
  EXPECT_MENTIONS(open_error(b), "duplicate metadata key 'llama.block_count'");
}

TEST(GgufBadFile, EmptyKeyName) {
  GgufBytes b;
  b.header(0, 2).kv_u32("llama.block_count", 1).kv_u32("", 2);
  EXPECT_MENTIONS(open_error(b), "metadata key #1 has an empty name");
}

TEST(GgufBadFile, HostileKeyNameIsEscapedAndShortenedInTheMessage) {
  std::string name = "evil\n\x1b[31mkey";
  name += std::string(100000, 'A');
  GgufBytes b;
  b.header(0, 2).kv_u32(name, 1).kv_u32(name, 2);
  const std::string message = open_error(b);  // checks one line, short
  EXPECT_MENTIONS(message, "duplicate metadata key 'evil\\x0a\\x1b[31mkeyAAA",
                  std::to_string(name.size()) + " bytes");
}

TEST(GgufBadFile, LongKeyWithLongArrayIsParsedInLinearTime) {
  // A 1 MB key over a 2M-element array: building the key into a description per element
  // would copy terabytes. The last element is a bad bool so the error names its index.
  const std::string name(1 << 20, 'k');
  constexpr uint64_t kCount = 2'000'000;
  GgufBytes b;
  b.header(0, 1).key(name, ValueType::Array).array(ValueType::Bool, kCount).zeros(kCount - 1);
  b.u8(9);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_MENTIONS(open_error(b), "element 1999999 of metadata key 'kkk", "bool of value 9");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

// ---- general.alignment ----

TEST(GgufBadFile, AlignmentOfZero) {
  auto b = alignment_file(ValueType::UInt32, [](GgufBytes& b) { b.u32(0); });
  EXPECT_MENTIONS(open_error(b), "general.alignment", "power-of-two", "got 0");
}

TEST(GgufBadFile, AlignmentNotAPowerOfTwo) {
  auto b = alignment_file(ValueType::UInt32, [](GgufBytes& b) { b.u32(48); });
  EXPECT_MENTIONS(open_error(b), "general.alignment", "power-of-two", "got 48");
}

TEST(GgufBadFile, AlignmentOfTypeUint64) {
  auto b = alignment_file(ValueType::UInt64, [](GgufBytes& b) { b.u64(32); });
  EXPECT_MENTIONS(open_error(b), "general.alignment", "uint32", "(uint64)");
}

TEST(GgufBadFile, AlignmentOfTypeInt32) {
  auto b = alignment_file(ValueType::Int32, [](GgufBytes& b) { b.i32(32); });
  EXPECT_MENTIONS(open_error(b), "general.alignment", "uint32", "(int32)");
}

TEST(GgufBadFile, AlignmentOfTypeString) {
  auto b = alignment_file(ValueType::String, [](GgufBytes& b) { b.str("32"); });
  EXPECT_MENTIONS(open_error(b), "general.alignment", "uint32", "(string)");
}

TEST(GgufBadFile, AlignmentOfTypeArray) {
  auto b =
      alignment_file(ValueType::Array, [](GgufBytes& b) { b.array(ValueType::UInt32, 1).u32(32); });
  EXPECT_MENTIONS(open_error(b), "general.alignment", "uint32", "(array)");
}

TEST(GgufBadFile, HugeAlignmentPutsTheDataSectionPastTheEnd) {
  auto b = alignment_file(ValueType::UInt32, [](GgufBytes& b) { b.u32(1u << 31); });
  EXPECT_MENTIONS(open_error(b), "truncated", "data section");
}

// ---- Tensor infos ----

TEST(GgufBadFile, TruncatedInsideATensorInfo) {
  const auto full = test::small_writer_file();
  // The name, the dimension count, then half of dimension 0.
  const size_t cut = test::find_bytes(full, "blk.0.attn_q.weight") + 19 + 4 + 4;
  EXPECT_MENTIONS(open_error(test::truncated(full, cut)), "truncated",
                  "dimension 0 of tensor 'blk.0.attn_q.weight'");
}

TEST(GgufBadFile, TruncatedInsideATensorOffset) {
  const auto full = test::small_writer_file();
  // The name, the dimension count, one dimension, the type, then half the offset.
  const size_t cut = test::find_bytes(full, "output_norm.weight") + 18 + 4 + 8 + 4 + 4;
  EXPECT_MENTIONS(open_error(test::truncated(full, cut)), "truncated",
                  "data offset of tensor 'output_norm.weight'");
}

TEST(GgufBadFile, TensorNameLengthPastTheEnd) {
  GgufBytes b;
  b.header(1, 0).u64(1ull << 50).raw("w").u32(1).u64(8).u32(0).u64(0).zeros(32);
  EXPECT_MENTIONS(open_error(b), "name of tensor #0", "past the end");
}

TEST(GgufBadFile, ZeroDimensions) {
  EXPECT_MENTIONS(open_error(one_tensor_file({}, DType::F32)), "tensor 'w' has 0 dimensions");
}

TEST(GgufBadFile, FiveDimensions) {
  EXPECT_MENTIONS(open_error(one_tensor_file({2, 2, 2, 2, 2}, DType::F32)),
                  "tensor 'w' has 5 dimensions", "1 to 4");
}

TEST(GgufBadFile, DimensionCountOfUint32Max) {
  GgufBytes b;
  b.header(1, 0).str("w").u32(0xFFFFFFFFu).u64(8).zeros(64);
  EXPECT_MENTIONS(open_error(b), "tensor 'w' has 4294967295 dimensions");
}

TEST(GgufBadFile, ZeroSizedDimension) {
  EXPECT_MENTIONS(open_error(one_tensor_file({8, 0, 2}, DType::F32)),
                  "tensor 'w' has a zero-sized dimension 1");
}

TEST(GgufBadFile, ElementCountOverflows) {
  EXPECT_MENTIONS(open_error(one_tensor_file({1ull << 32, 1ull << 32}, DType::F32)), "tensor 'w'",
                  "element count that overflows");
}

TEST(GgufBadFile, ElementCountOverflowsAcrossFourDimensions) {
  EXPECT_MENTIONS(open_error(one_tensor_file({1 << 16, 1 << 16, 1 << 16, 1 << 16}, DType::F32)),
                  "tensor 'w'", "element count that overflows");
}

TEST(GgufBadFile, ByteSizeOverflows) {
  // 2^62 elements fit in an int64; their 2^64 bytes as F32 do not.
  EXPECT_MENTIONS(open_error(one_tensor_file({1ull << 62}, DType::F32)), "tensor 'w'",
                  "byte size that overflows");
}

TEST(GgufBadFile, UnknownTensorTypeId31) {
  EXPECT_MENTIONS(open_error(one_tensor_file({8}, 31u)), "tensor 'w' has unknown type id 31");
}

TEST(GgufBadFile, UnknownTensorTypeId99) {
  EXPECT_MENTIONS(open_error(one_tensor_file({8}, 99u)), "tensor 'w' has unknown type id 99");
}

TEST(GgufBadFile, RemovedTensorTypeId4) {
  // ggml's Q4_2, long gone: no known block layout.
  EXPECT_MENTIONS(open_error(one_tensor_file({32}, 4u)), "tensor 'w' has unknown type id 4");
}

TEST(GgufBadFile, RowNotAMultipleOfTheQuantBlockSize) {
  EXPECT_MENTIONS(open_error(one_tensor_file({33, 2}, DType::Q8_0, 0, 128)), "tensor 'w'", "Q8_0",
                  "row of 33 elements", "block size 32");
}

TEST(GgufBadFile, RowNotAMultipleOfTheKQuantBlockSize) {
  EXPECT_MENTIONS(open_error(one_tensor_file({128}, DType::Q4_K, 0, 256)), "tensor 'w'",
                  "row of 128 elements", "block size 256");
}

TEST(GgufBadFile, TensorOffsetUnaligned) {
  EXPECT_MENTIONS(open_error(one_tensor_file({8}, DType::F32, 4)), "tensor 'w' has offset 4",
                  "not a multiple of the alignment 32");
}

TEST(GgufBadFile, TensorOffsetUnalignedForACustomAlignment) {
  GgufBytes b;
  b.header(1, 1).kv_u32("general.alignment", 64).tensor("w", {8}, DType::F32, 32);
  b.align(64).zeros(128);
  EXPECT_MENTIONS(open_error(b), "tensor 'w' has offset 32", "alignment 64");
}

TEST(GgufBadFile, TensorOffsetPastTheEnd) {
  EXPECT_MENTIONS(open_error(one_tensor_file({8}, DType::F32, 1ull << 40)), "tensor 'w'",
                  "data offset 1099511627776", "past the end");
}

TEST(GgufBadFile, TensorOffsetNearUint64MaxDoesNotWrapAround) {
  EXPECT_MENTIONS(open_error(one_tensor_file({8}, DType::F32, UINT64_MAX - 31)), "tensor 'w'",
                  "past the end");
}

TEST(GgufBadFile, TensorDataRunsPastTheEnd) {
  // 16 F32 = 64 bytes, but the data section holds 32.
  EXPECT_MENTIONS(open_error(one_tensor_file({16}, DType::F32, 0, 32)), "tensor 'w'",
                  "64 bytes at data offset 0", "past the end", "holds 32 bytes");
}

TEST(GgufBadFile, HugeTensorRunsPastTheEnd) {
  // 2^40 F32 elements: a representable size, far beyond the file.
  EXPECT_MENTIONS(open_error(one_tensor_file({1ull << 20, 1ull << 20}, DType::F32)), "tensor 'w'",
                  "past the end");
}

TEST(GgufBadFile, TruncatedInsideTheDataSection) {
  const auto full = test::small_writer_file();
  EXPECT_MENTIONS(open_error(test::truncated(full, full.size() - 5)), "truncated",
                  "tensor 'output_norm.weight'");
}

TEST(GgufBadFile, TruncatedBeforeTheDataSection) {
  const auto full = test::small_writer_file();
  // Right after the last tensor info, before the padding and the data.
  const size_t cut = test::find_bytes(full, "output_norm.weight") + 18 + 4 + 8 + 4 + 8;
  EXPECT_MENTIONS(open_error(test::truncated(full, cut)), "truncated", "data section");
}

TEST(GgufBadFile, OverlappingTensors) {
  GgufBytes b;
  b.header(2, 0).tensor("a", {16}, DType::F32, 0).tensor("b", {16}, DType::F32, 32);
  b.align().zeros(128);
  EXPECT_MENTIONS(open_error(b), "tensors 'a' (64 bytes at data offset 0)",
                  "'b' (at data offset 32) overlap");
}

TEST(GgufBadFile, TensorsAtTheSameOffset) {
  GgufBytes b;
  b.header(2, 0).tensor("a", {8}, DType::F32, 64).tensor("b", {8}, DType::F32, 64);
  b.align().zeros(128);
  EXPECT_MENTIONS(open_error(b), "overlap", "'a'", "'b'");
}

TEST(GgufBadFile, DuplicateTensorName) {
  GgufBytes b;
  b.header(2, 0).tensor("w", {8}, DType::F32, 0).tensor("w", {8}, DType::F32, 32);
  b.align().zeros(64);
  EXPECT_MENTIONS(open_error(b), "duplicate tensor name 'w'");
}

TEST(GgufBadFile, EmptyTensorName) {
  GgufBytes b;
  b.header(2, 0).tensor("w", {8}, DType::F32, 0).tensor("", {8}, DType::F32, 32);
  b.align().zeros(64);
  EXPECT_MENTIONS(open_error(b), "tensor #1 has an empty name");
}

// ---- Not a file ----

TEST(GgufBadFile, DirectoryIsNotARegularFile) {
  const std::string dir = moon::test::temp_dir() + "/a-directory.gguf";
  std::filesystem::create_directories(dir);
  auto file = GgufFile::open(dir);
  ASSERT_FALSE(file.ok());
  EXPECT_MENTIONS(file.error().message, dir, "not a regular file");
}

// ---- Every truncation ----

TEST(GgufBadFile, EveryTruncationOfAValidFileIsAnError) {
  const auto full = test::small_writer_file();
  ASSERT_TRUE(GgufFile::from_bytes(full, "full").ok());
  for (size_t size = 0; size < full.size(); ++size) {
    auto file = GgufFile::from_bytes(test::truncated(full, size), "cut");
    ASSERT_FALSE(file.ok()) << "accepted the first " << size << " bytes";
    const std::string& message = file.error().message;
    if (size == 0) {
      EXPECT_MENTIONS(message, "empty");
    } else if (size < 4) {
      EXPECT_MENTIONS(message, "shorter than its 4-byte magic");
    } else {
      EXPECT_NE(message.find("truncated"), std::string::npos)
          << "cut at " << size << ": " << message;
    }
  }
}

}  // namespace
}  // namespace moon::gguf
