// Dequantization of every block format against llama.cpp's files: each of the 12 quantized
// kquants/ models (all 12 block types between them, mixed as llama-quantize mixes them)
// dequantized tensor by tensor must equal its -dequant-f32.gguf twin bit for bit (gguf-py's
// values, checked identical to ggml's own C), and the JSON's first values and sums.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/test_data.h"
#include "gguf/gguf_file.h"
#include "tensor/convert.h"

namespace moon {
namespace {

const char* const kFileTags[] = {"q4_k_m", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k",
                                 "iq4_xs", "q8_0",   "q4_0",   "q4_1", "q5_0",   "q5_1"};

class DequantizeOracle : public ::testing::TestWithParam<const char*> {};

TEST_P(DequantizeOracle, EveryTensorEqualsLlamaCppsDequantization) {
  const std::string tag = GetParam();
  MOON_REQUIRE_TEST_FILE(quantized_path, "models/kquants/kq-llama-" + tag + ".gguf");
  MOON_REQUIRE_TEST_FILE(twin_path, "models/kquants/kq-llama-" + tag + "-dequant-f32.gguf");
  MOON_REQUIRE_TEST_FILE(json_path, "models/kquants/kq-llama-" + tag + "-dequant.json");
  auto quantized = gguf::GgufFile::open(quantized_path);
  ASSERT_TRUE(quantized.ok()) << quantized.error().message;
  auto twin = gguf::GgufFile::open(twin_path);
  ASSERT_TRUE(twin.ok()) << twin.error().message;
  const nlohmann::json oracle = nlohmann::json::parse(test::read_file(json_path));

  int checked = 0;
  std::set<std::string> types;
  for (const gguf::TensorInfo& t : (*quantized)->tensors()) {
    SCOPED_TRACE(t.name + " (" + std::string(dtype_name(t.type)) + ")");
    ASSERT_TRUE(is_row_convertible(t.type));
    const gguf::TensorInfo* want = (*twin)->find_tensor(t.name);
    ASSERT_NE(want, nullptr);
    ASSERT_EQ(want->type, DType::F32);
    ASSERT_EQ(want->n_elements, t.n_elements);
    const nlohmann::json& info = oracle["tensors"][t.name];
    EXPECT_EQ(info["type"].get<std::string>(), dtype_name(t.type));

    const int64_t cols = static_cast<int64_t>(t.ne[0]);
    const int64_t rows = static_cast<int64_t>(t.n_rows());
    const size_t row_bytes = dtype_row_bytes(t.type, cols);
    std::vector<float> values(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(t.type, t.data + r * row_bytes, values.data() + r * cols, cols);
    }
    std::vector<float> expected(values.size());
    std::memcpy(expected.data(), want->data, expected.size() * sizeof(float));
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(values[i]), std::bit_cast<uint32_t>(expected[i]))
          << "element " << i << ": " << values[i] << " vs " << expected[i];
    }
    // The JSON's independent summary: the sum (here in long double, well within 1e-9) and,
    // for the sampled tensors, the first 64 values exactly.
    long double sum = 0.0L;
    for (float v : values) sum += v;
    const double want_sum = info["sum_f64"].get<double>();
    EXPECT_NEAR(static_cast<double>(sum), want_sum, 1e-9 * std::max(1.0, std::fabs(want_sum)));
    if (oracle["samples"].contains(t.name)) {
      const auto first = oracle["samples"][t.name]["first_64"].get<std::vector<double>>();
      ASSERT_EQ(first.size(), 64u);
      for (size_t i = 0; i < first.size(); ++i) {
        EXPECT_EQ(values[i], static_cast<float>(first[i])) << "first_64[" << i << "]";
      }
    }
    types.insert(std::string(dtype_name(t.type)));
    ++checked;
  }
  EXPECT_EQ(checked, 12);  // token_embd, 2 norms, 7 layer matrices, output_norm, output
  std::set<std::string> want_types;
  for (const auto& name : oracle["tensor_types_present"])
    want_types.insert(name.get<std::string>());
  EXPECT_EQ(types, want_types);
}

INSTANTIATE_TEST_SUITE_P(KQuants, DequantizeOracle, ::testing::ValuesIn(kFileTags),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace moon
