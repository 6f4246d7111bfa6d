// Quantizing kquants/kq-llama-f32.gguf tensor by tensor into the type llama-quantize chose
// for it gives llama-quantize's bytes, for every block format in the 12 files.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/test_data.h"
#include "gguf/gguf_file.h"
#include "tensor/convert.h"

namespace moon {
namespace {

const char* const kFileTags[] = {"q4_k_m", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k",
                                 "iq4_xs", "q8_0",   "q4_0",   "q4_1", "q5_0",   "q5_1"};

class QuantizeOracle : public ::testing::TestWithParam<const char*> {};

TEST_P(QuantizeOracle, EveryTensorHasLlamaQuantizesBytes) {
  const std::string tag = GetParam();
  MOON_REQUIRE_TEST_FILE(source_path, "models/kquants/kq-llama-f32.gguf");
  MOON_REQUIRE_TEST_FILE(quantized_path, "models/kquants/kq-llama-" + tag + ".gguf");
  auto source = gguf::GgufFile::open(source_path);
  ASSERT_TRUE(source.ok()) << source.error().message;
  auto quantized = gguf::GgufFile::open(quantized_path);
  ASSERT_TRUE(quantized.ok()) << quantized.error().message;
  int compared = 0;
  for (const gguf::TensorInfo& want : (*quantized)->tensors()) {
    if (want.type == DType::F32) continue;
    SCOPED_TRACE(want.name + " as " + std::string(dtype_name(want.type)));
    const gguf::TensorInfo* src = (*source)->find_tensor(want.name);
    ASSERT_NE(src, nullptr);
    ASSERT_EQ(src->type, DType::F32);
    const auto cols = static_cast<int64_t>(src->ne[0]);
    const size_t row_bytes = dtype_row_bytes(want.type, cols);
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<uint8_t> got(row_bytes);
    size_t differing_rows = 0;
    for (uint64_t r = 0; r < src->n_rows(); ++r) {
      std::memcpy(row.data(), src->data + r * cols * sizeof(float), cols * sizeof(float));
      quantize_row(want.type, row.data(), got.data(), cols);
      differing_rows += std::memcmp(got.data(), want.data + r * row_bytes, row_bytes) != 0;
    }
    EXPECT_EQ(differing_rows, 0u) << "of " << src->n_rows() << " rows";
    ++compared;
  }
  EXPECT_GE(compared, 8);
}

INSTANTIATE_TEST_SUITE_P(KQuants, QuantizeOracle, ::testing::ValuesIn(kFileTags),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace moon
