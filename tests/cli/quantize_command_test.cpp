// `moon quantize`: the real binary on stories260K, checked against llama.cpp's own Q8_0
// conversion of the same F32 file (byte for byte), against the input's metadata (key for key)
// and against llama.cpp's greedy continuation; plus the metadata re-emitter in-process.
#include "cli/quantize_command.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_command.h"
#include "common/test_data.h"
#include "gguf/gguf_file.h"
#include "tensor/convert.h"

namespace moon {
namespace {

using test::RunResult;

RunResult run_moon(const std::vector<std::string>& args) {
  return test::run_command(MOON_BINARY_PATH, args);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// Quantizes `input` to `type` into a fresh temp file and returns its path ("" on failure,
// with the failure recorded).
std::string quantize(const std::string& input, const std::string& type) {
  const std::string out =
      test::temp_dir() + "/" + std::filesystem::path(input).stem().string() + "-" + type + ".gguf";
  std::filesystem::remove(out);
  const RunResult r = run_moon({"quantize", "--model", input, "--output", out, "--type", type});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto in = gguf::GgufFile::open(input);
  const std::string last = in.ok() ? "tensor " + std::to_string((*in)->tensors().size()) + "/" +
                                         std::to_string((*in)->tensors().size())
                                   : "tensor 48/48";
  EXPECT_NE(r.err.find(last), std::string::npos) << "no progress output:\n" << r.err;
  EXPECT_NE(r.err.find("MiB -> "), std::string::npos) << "no summary:\n" << r.err;
  return r.exit_code == 0 ? out : std::string();
}

std::unique_ptr<gguf::GgufFile> open_or_fail(const std::string& path) {
  auto file = gguf::GgufFile::open(path);
  EXPECT_TRUE(file.ok()) << (file.ok() ? "" : file.error().message);
  return file.ok() ? std::move(file).value() : nullptr;
}

// Exact equality of two metadata values: same GGUF type, same element type, same elements.
bool same_value(const gguf::Value& a, const gguf::Value& b) {
  if (a.type() != b.type()) return false;
  if (!a.is_array()) {
    return a.as_int() == b.as_int() && a.as_uint() == b.as_uint() && a.as_float() == b.as_float() &&
           a.as_bool() == b.as_bool() && a.as_string() == b.as_string();
  }
  const gguf::Value::Array &x = *a.array(), &y = *b.array();
  if (x.element_type != y.element_type || x.ints != y.ints || x.uints != y.uints ||
      x.floats != y.floats || x.strings != y.strings || x.arrays.size() != y.arrays.size()) {
    return false;
  }
  for (size_t i = 0; i < x.arrays.size(); ++i) {
    if (!same_value(x.arrays[i], y.arrays[i])) return false;
  }
  return true;
}

// Every key of `want`, in the same order, with the same value; `except` may differ.
void expect_same_metadata(const gguf::GgufFile& got, const gguf::GgufFile& want,
                          const std::string& except = "") {
  ASSERT_EQ(got.metadata().size(), want.metadata().size());
  for (size_t i = 0; i < want.metadata().size(); ++i) {
    const auto& [key, value] = want.metadata()[i];
    EXPECT_EQ(got.metadata()[i].first, key) << "key #" << i;
    if (key == except) continue;
    EXPECT_TRUE(same_value(got.metadata()[i].second, value))
        << key << ": " << got.metadata()[i].second.to_string() << " vs " << value.to_string();
  }
}

TEST(QuantizeCommand, Q8_0IsByteIdenticalToLlamaCppQuantize) {
  MOON_REQUIRE_TEST_FILE(f32, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(llama_cpp_q8, "models/stories260K-q8_0.gguf");
  const std::string ours_path = quantize(f32, "Q8_0");
  ASSERT_FALSE(ours_path.empty());
  auto ours = open_or_fail(ours_path), theirs = open_or_fail(llama_cpp_q8);
  ASSERT_TRUE(ours && theirs);
  ASSERT_EQ(ours->tensors().size(), theirs->tensors().size());
  int q8 = 0, f16 = 0, f32_kept = 0;
  for (const gguf::TensorInfo& want : theirs->tensors()) {
    const gguf::TensorInfo* got = ours->find_tensor(want.name);
    ASSERT_NE(got, nullptr) << want.name;
    // llama.cpp's rule for rows that are not whole Q8_0 blocks (ffn_down, 172 wide) is F16.
    ASSERT_EQ(dtype_name(got->type), dtype_name(want.type)) << want.name;
    ASSERT_EQ(got->n_bytes, want.n_bytes) << want.name;
    EXPECT_EQ(0, std::memcmp(got->data, want.data, want.n_bytes)) << want.name;
    q8 += want.type == DType::Q8_0;
    f16 += want.type == DType::F16;
    f32_kept += want.type == DType::F32;
  }
  EXPECT_EQ(q8, 32);        // 5 layers x 6 matrices, embedding and output
  EXPECT_EQ(f16, 5);        // every ffn_down
  EXPECT_EQ(f32_kept, 11);  // the norms
}

// The whole command on the kquants/ source, for every file type llama-quantize made there:
// the same tensor types and the same bytes as llama.cpp's file (file types spelled in lower
// case, as users type them).
TEST(QuantizeCommand, EveryFileTypeIsByteIdenticalToLlamaQuantize) {
  MOON_REQUIRE_TEST_FILE(f32, "models/kquants/kq-llama-f32.gguf");
  for (const char* tag : {"q4_k_m", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k", "iq4_xs", "q8_0",
                          "q4_0", "q4_1", "q5_0", "q5_1"}) {
    SCOPED_TRACE(tag);
    MOON_REQUIRE_TEST_FILE(theirs_path, std::string("models/kquants/kq-llama-") + tag + ".gguf");
    const std::string path = quantize(f32, tag);
    ASSERT_FALSE(path.empty());
    auto ours = open_or_fail(path);
    auto theirs = open_or_fail(theirs_path);
    ASSERT_TRUE(ours && theirs);
    ASSERT_EQ(ours->tensors().size(), theirs->tensors().size());
    for (const gguf::TensorInfo& a : ours->tensors()) {  // llama.cpp orders tensors its own way
      const gguf::TensorInfo* found = theirs->find_tensor(a.name);
      ASSERT_NE(found, nullptr) << a.name;
      const gguf::TensorInfo& b = *found;
      ASSERT_EQ(dtype_name(a.type), dtype_name(b.type)) << a.name;
      ASSERT_EQ(a.n_bytes, b.n_bytes) << a.name;
      EXPECT_EQ(0, std::memcmp(a.data, b.data, a.n_bytes)) << a.name;
    }
    EXPECT_EQ(*ours->get_uint("general.file_type"), *theirs->get_uint("general.file_type"));
  }
}

TEST(QuantizeCommand, OutputsHaveTheExpectedTypesAndTheInputsMetadata) {
  MOON_REQUIRE_TEST_FILE(f32, "models/stories260K-f32.gguf");
  auto input = open_or_fail(f32);
  ASSERT_TRUE(input);
  for (DType target : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(std::string(dtype_name(target)));
    const std::string path = quantize(f32, std::string(dtype_name(target)));
    ASSERT_FALSE(path.empty());
    auto out = open_or_fail(path);
    ASSERT_TRUE(out);
    // The input has no general.file_type, so nothing is updated: every key is verbatim.
    expect_same_metadata(*out, *input);
    ASSERT_EQ(out->tensors().size(), input->tensors().size());
    for (size_t i = 0; i < input->tensors().size(); ++i) {
      const gguf::TensorInfo& src = input->tensors()[i];
      const gguf::TensorInfo& dst = out->tensors()[i];
      ASSERT_EQ(dst.name, src.name);  // the order is kept too
      EXPECT_EQ(dst.ne, src.ne) << src.name;
      const bool ffn_down = src.name.find("ffn_down") != std::string::npos;
      DType want = target;
      if (src.n_dims == 1)
        want = DType::F32;
      else if (ffn_down && dtype_traits(target).block_size > 1)
        want = DType::F16;
      else if (src.name == "output.weight" && target == DType::Q4_0)
        want = DType::Q8_0;  // llama.cpp's Q6_K for the output, whose 64-wide rows need Q8_0
      EXPECT_EQ(dtype_name(dst.type), dtype_name(want)) << src.name;
      // The values are the input's, to the precision of the type.
      const int64_t n = static_cast<int64_t>(src.ne[0]);
      std::vector<float> a(n), b(n);
      float max_err = 0.0f, max_abs = 0.0f;
      for (uint64_t r = 0; r < src.n_rows(); ++r) {
        dequantize_row(src.type, src.data + r * (src.n_bytes / src.n_rows()), a.data(), n);
        dequantize_row(dst.type, dst.data + r * (dst.n_bytes / dst.n_rows()), b.data(), n);
        for (int64_t c = 0; c < n; ++c) {
          max_err = std::max(max_err, std::fabs(a[c] - b[c]));
          max_abs = std::max(max_abs, std::fabs(a[c]));
        }
      }
      const float rel = want == DType::Q4_0   ? 0.13f
                        : want == DType::Q8_0 ? 0.0079f
                        : want == DType::BF16 ? 0.004f
                        : want == DType::F16  ? 0.0005f
                                              : 0.0f;
      EXPECT_LE(max_err, rel * max_abs) << src.name;
    }
  }
}

TEST(QuantizeCommand, F16KeepsLlamaCppGreedyContinuation) {
  MOON_REQUIRE_TEST_FILE(f32, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  nlohmann::json golden;
  for (const nlohmann::json& record : test::read_jsonl(golden_path)) {
    if (record["prompt"] == "Once upon a time") golden = record;
  }
  ASSERT_EQ(golden["prompt"], "Once upon a time");
  const std::string f16 = quantize(f32, "F16");
  ASSERT_FALSE(f16.empty());
  const RunResult r = run_moon({"generate", "--model", f16, "--prompt", "Once upon a time",
                                "--max-tokens", std::to_string(golden["n_predict"].get<int>()),
                                "--output-format", "json", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["prompt_token_ids"], golden["prompt_token_ids"]);
  EXPECT_EQ(out["output_token_ids"], golden["output_token_ids"]);
}

TEST(QuantizeCommand, SameTypeRewritesTheFileUnchanged) {
  // Tensors already of the target type are copied, not requantized, and the writer lays the
  // file out as llama.cpp does: the F32 file comes back byte for byte, and llama.cpp's Q8_0 file
  // too up to the zero padding llama.cpp appends after the last tensor.
  MOON_REQUIRE_TEST_FILE(f32, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(q8, "models/stories260K-q8_0.gguf");
  const std::string f32_again = quantize(f32, "F32");
  ASSERT_FALSE(f32_again.empty());
  EXPECT_TRUE(read_bytes(f32_again) == read_bytes(f32));
  const std::string q8_again = quantize(q8, "Q8_0");
  ASSERT_FALSE(q8_again.empty());
  const std::vector<uint8_t> got = read_bytes(q8_again), want = read_bytes(q8);
  ASSERT_LE(got.size(), want.size());
  EXPECT_LT(want.size() - got.size(), 32u);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin()));
  EXPECT_TRUE(std::all_of(want.begin() + got.size(), want.end(), [](uint8_t b) { return b == 0; }));
}

TEST(QuantizeCommand, FileTypeIsUpdatedWhenPresent) {
  MOON_REQUIRE_TEST_FILE(q8, "models/stories260K-q8_0.gguf");
  const std::string path = quantize(q8, "F16");
  ASSERT_FALSE(path.empty());
  auto in = open_or_fail(q8), out = open_or_fail(path);
  ASSERT_TRUE(in && out);
  expect_same_metadata(*out, *in, "general.file_type");
  const gguf::Value* ftype = out->find("general.file_type");
  ASSERT_NE(ftype, nullptr);
  EXPECT_EQ(ftype->type(), gguf::ValueType::UInt32);
  EXPECT_EQ(ftype->as_uint(), 1u);  // LLAMA_FTYPE_MOSTLY_F16
  for (const gguf::TensorInfo& t : out->tensors()) {
    EXPECT_EQ(dtype_name(t.type), t.n_dims == 1 ? "F32" : "F16") << t.name;
  }
}

TEST(QuantizeCommand, BuiltinModelQuantizesAndGenerates) {
  const std::string path = test::temp_dir() + "/builtin-tiny-q4_0.gguf";
  const RunResult q =
      run_moon({"quantize", "--model", "builtin:tiny", "--output", path, "--type", "q4_0"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const RunResult g = run_moon({"generate", "--model", path, "--prompt", "Hi", "--max-tokens", "4",
                                "--output-format", "json"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_LE(nlohmann::json::parse(g.out)["output_token_ids"].size(), 4u);
}

TEST(QuantizeCommand, BadUsageIsAClearError) {
  const std::string out = test::temp_dir() + "/never-written.gguf";
  std::filesystem::remove(out);
  RunResult r =
      run_moon({"quantize", "--model", "/nonexistent/x.gguf", "--output", out, "--type", "Q8_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot open '/nonexistent/x.gguf'"), std::string::npos) << r.err;

  // Not a model moon runs (a vocabulary-only file of an unsupported architecture, and one
  // with no weights): refused before anything is written.
  MOON_REQUIRE_TEST_FILE(gpt2, "models/vocab/ggml-vocab-gpt-2.gguf");
  r = run_moon({"quantize", "--model", gpt2, "--output", out, "--type", "Q8_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("architecture 'gpt2' is not supported"), std::string::npos) << r.err;
  MOON_REQUIRE_TEST_FILE(spm, "models/vocab/ggml-vocab-llama-spm.gguf");
  r = run_moon({"quantize", "--model", spm, "--output", out, "--type", "Q8_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'token_embd.weight' is missing"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));

  MOON_REQUIRE_TEST_FILE(f32, "models/stories260K-f32.gguf");
  r = run_moon(
      {"quantize", "--model", f32, "--output", "/nonexistent-dir/x.gguf", "--type", "F16"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot create '/nonexistent-dir/x.gguf'"), std::string::npos) << r.err;
  r = run_moon({"quantize", "--model", f32, "--output", f32, "--type", "F16"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is the input file"), std::string::npos) << r.err;

  EXPECT_NE(run_moon({"quantize", "--model", f32, "--output", out, "--type", "Q4_K"}).exit_code, 0);
  EXPECT_NE(run_moon({"quantize", "--model", f32, "--output", out}).exit_code, 0);
  EXPECT_NE(run_moon({"quantize", "--model", f32, "--type", "F16"}).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(QuantizeMetadata, EveryWritableTypeIsReEmittedByteForByte) {
  gguf::GgufWriter w;
  w.add_uint32("u32", 4000000000u);
  w.add_int32("i32", -7);
  w.add_uint64("u64", 0xFFFFFFFFFFFFFFFFull);
  w.add_float32("f32", 1e-5f);
  w.add_bool("yes", true);
  w.add_bool("no", false);
  w.add_string("s", std::string("with\0nul and \xE2\x96\x81", 16));
  w.add_string("empty", "");
  w.add_string_array("sa", {"a", "", "\xF0\x9F\x8C\x99"});
  w.add_string_array("sa0", {});
  w.add_float32_array("fa", {0.1f, -0.0f, 3.4e38f, 1e-45f});
  w.add_int32_array("ia", {INT32_MIN, -1, 0, INT32_MAX});
  const std::vector<uint8_t> bytes = w.serialize();
  auto file = gguf::GgufFile::from_bytes(bytes, "metadata");
  ASSERT_TRUE(file.ok()) << file.error().message;
  gguf::GgufWriter again;
  for (const auto& [key, value] : (*file)->metadata()) {
    ASSERT_TRUE(add_metadata_value(again, key, value).ok()) << key;
  }
  EXPECT_TRUE(again.serialize() == bytes);
}

TEST(QuantizeMetadata, TypesTheWriterCannotExpressAreNamedErrors) {
  using gguf::Value;
  using gguf::ValueType;
  gguf::Value::Array u8s;
  u8s.element_type = ValueType::UInt8;
  u8s.ints = {1, 2};
  gguf::Value::Array nested;
  nested.element_type = ValueType::Array;
  nested.arrays.push_back(Value::make_array(u8s));
  const std::pair<std::string, Value> cases[] = {
      {"k.u8", Value::make_int(ValueType::UInt8, 1)},
      {"k.i64", Value::make_int(ValueType::Int64, -1)},
      {"k.f64", Value::make_float(ValueType::Float64, 0.5)},
      {"k.u8s", Value::make_array(u8s)},
      {"k.nested", Value::make_array(nested)},
  };
  for (const auto& [key, value] : cases) {
    gguf::GgufWriter w;
    const Status s = add_metadata_value(w, key, value);
    ASSERT_FALSE(s.ok()) << key;
    EXPECT_NE(s.error().message.find("'" + key + "'"), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace moon
