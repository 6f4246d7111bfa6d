// The file-type recipes: on the kquants/ model, every tensor gets the type llama-quantize gave
// it in each of the 12 files; on a 22-layer TinyLlama-shaped directory, the K-quant mixtures
// single out the layers llama.cpp's rules name (worked out by hand below); and the fallbacks
// for rows that are no whole block.
#include "cli/quantize_recipe.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/test_data.h"
#include "gguf/gguf_file.h"

namespace moon {
namespace {

gguf::TensorInfo matrix(const std::string& name, uint64_t cols, uint64_t rows) {
  gguf::TensorInfo t;
  t.name = name;
  t.n_dims = 2;
  t.ne = {cols, rows, 1, 1};
  t.type = DType::F32;
  return t;
}

TEST(QuantizeRecipe, NamesParseInAnyCase) {
  ASSERT_NE(find_file_type("q4_k_m"), nullptr);
  EXPECT_EQ(find_file_type("q4_k_m")->name, "Q4_K_M");
  EXPECT_EQ(find_file_type("Q4_K_M")->llama_ftype, 15u);
  EXPECT_EQ(find_file_type("iq4_xs")->llama_ftype, 30u);
  EXPECT_EQ(find_file_type("Q8_0")->llama_ftype, 7u);
  EXPECT_EQ(find_file_type("bf16")->llama_ftype, 32u);
  EXPECT_EQ(find_file_type("Q4_K"), nullptr);  // llama-quantize has no such file type either
  EXPECT_EQ(find_file_type(""), nullptr);
}

TEST(QuantizeRecipe, EveryKQuantsFileGetsLlamaQuantizesTensorTypes) {
  MOON_REQUIRE_TEST_FILE(source_path, "models/kquants/kq-llama-f32.gguf");
  auto source = gguf::GgufFile::open(source_path);
  ASSERT_TRUE(source.ok()) << source.error().message;
  const RecipeContext ctx{1, 2, true};  // 1 layer, 8 heads over 4 KV heads, untied output
  const std::map<std::string, std::string> ftypes = {
      {"q4_k_m", "Q4_K_M"}, {"q5_k_m", "Q5_K_M"}, {"q5_k_s", "Q5_K_S"}, {"q6_k", "Q6_K"},
      {"q3_k_m", "Q3_K_M"}, {"q2_k", "Q2_K"},     {"iq4_xs", "IQ4_XS"}, {"q8_0", "Q8_0"},
      {"q4_0", "Q4_0"},     {"q4_1", "Q4_1"},     {"q5_0", "Q5_0"},     {"q5_1", "Q5_1"}};
  for (const auto& [tag, name] : ftypes) {
    SCOPED_TRACE(name);
    MOON_REQUIRE_TEST_FILE(path, "models/kquants/kq-llama-" + tag + ".gguf");
    auto file = gguf::GgufFile::open(path);
    ASSERT_TRUE(file.ok()) << file.error().message;
    const FileType* ft = find_file_type(name);
    ASSERT_NE(ft, nullptr);
    for (const gguf::TensorInfo& want : (*file)->tensors()) {
      const gguf::TensorInfo* src = (*source)->find_tensor(want.name);
      ASSERT_NE(src, nullptr);
      EXPECT_EQ(dtype_name(recipe_tensor_type(*ft, *src, ctx)), dtype_name(want.type)) << want.name;
    }
  }
}

TEST(QuantizeRecipe, MixturesSingleOutLlamaCppsLayersOnTinyLlama) {
  // 22 layers: use_more_bits holds for i < 22/8 = 2, i >= 7*22/8 = 19, and (i - 2) % 3 == 2.
  const RecipeContext ctx{22, 8, true};  // 32 query heads over 4 KV heads
  const std::string more_bits = "0,1,4,7,10,13,16,19,20,21,";
  const auto layers_with = [&](const char* ftype, const char* tensor, DType type) {
    std::string out;
    for (int i = 0; i < 22; ++i) {
      const auto t = matrix("blk." + std::to_string(i) + "." + tensor, 2048, 256);
      if (recipe_tensor_type(*find_file_type(ftype), t, ctx) == type)
        out += std::to_string(i) + ",";
    }
    return out;
  };
  EXPECT_EQ(layers_with("Q4_K_M", "attn_v.weight", DType::Q6_K), more_bits);
  EXPECT_EQ(layers_with("Q4_K_M", "ffn_down.weight", DType::Q6_K), more_bits);
  EXPECT_EQ(layers_with("Q5_K_M", "ffn_down.weight", DType::Q6_K), more_bits);
  const std::string all = "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,";
  EXPECT_EQ(layers_with("Q4_K_M", "attn_q.weight", DType::Q4_K), all);
  EXPECT_EQ(layers_with("Q4_K_S", "attn_v.weight", DType::Q5_K), "0,1,2,3,");
  EXPECT_EQ(layers_with("Q4_K_S", "ffn_down.weight", DType::Q5_K), "0,1,");
  EXPECT_EQ(layers_with("Q3_K_M", "attn_v.weight", DType::Q5_K), "0,1,");
  EXPECT_EQ(layers_with("Q3_K_M", "ffn_down.weight", DType::Q5_K), "0,");  // i < 22 / 16
  EXPECT_EQ(layers_with("IQ4_XS", "attn_v.weight", DType::Q5_K), all);     // n_gqa 8 >= 4
  EXPECT_EQ(layers_with("Q2_K", "attn_v.weight", DType::Q4_K), all);
  EXPECT_EQ(layers_with("IQ4_XS", "ffn_down.weight", DType::Q5_K), "0,1,");
  // Phi-3's fused QKV: a size up in every layer for the _M types and Q3_K_L.
  EXPECT_EQ(layers_with("Q4_K_M", "attn_qkv.weight", DType::Q5_K), all);
  EXPECT_EQ(layers_with("Q5_K_M", "attn_qkv.weight", DType::Q6_K), all);
  EXPECT_EQ(layers_with("Q3_K_M", "attn_qkv.weight", DType::Q4_K), all);
  EXPECT_EQ(layers_with("Q4_K_S", "attn_qkv.weight", DType::Q4_K), all);
  const FileType& q4km = *find_file_type("Q4_K_M");
  EXPECT_EQ(recipe_tensor_type(q4km, matrix("output.weight", 2048, 32000), ctx), DType::Q6_K);
  EXPECT_EQ(recipe_tensor_type(q4km, matrix("token_embd.weight", 2048, 32000), ctx), DType::Q4_K);
  // Tied: the embedding is the output and gets its type.
  EXPECT_EQ(recipe_tensor_type(q4km, matrix("token_embd.weight", 2048, 32000), {22, 8, false}),
            DType::Q6_K);
}

TEST(QuantizeRecipe, RowsThatAreNoWholeBlockFallBack) {
  const RecipeContext ctx{1, 1, true};
  const auto type_of = [&](const char* ftype, uint64_t cols, DType source = DType::F32) {
    auto t = matrix("blk.0.attn_q.weight", cols, 8);
    t.type = source;
    return recipe_tensor_type(*find_file_type(ftype), t, ctx);
  };
  EXPECT_EQ(type_of("Q4_K_M", 96), DType::Q5_0);
  EXPECT_EQ(type_of("Q5_K_S", 96), DType::Q5_1);
  EXPECT_EQ(type_of("Q6_K", 96), DType::Q8_0);
  EXPECT_EQ(type_of("Q2_K", 96), DType::Q4_0);
  EXPECT_EQ(type_of("IQ4_XS", 96), DType::Q4_0);
  EXPECT_EQ(type_of("Q4_K_M", 172), DType::F16);  // not even 32-wide: F16, as llama.cpp
  EXPECT_EQ(type_of("Q8_0", 172), DType::F16);
  EXPECT_EQ(type_of("Q8_0", 172, DType::BF16), DType::BF16);  // 16-bit already: kept
  EXPECT_EQ(type_of("F16", 172), DType::F16);
  auto norm = matrix("blk.0.attn_norm.weight", 256, 1);
  norm.n_dims = 1;
  EXPECT_EQ(recipe_tensor_type(*find_file_type("Q4_K_M"), norm, ctx), DType::F32);
  // The output's rows fit no 256-block: Q8_0, as llama.cpp's output rule says.
  EXPECT_EQ(recipe_tensor_type(*find_file_type("Q4_0"), matrix("output.weight", 64, 512), ctx),
            DType::Q8_0);
}

}  // namespace
}  // namespace moon
