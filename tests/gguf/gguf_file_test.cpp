// Reading real GGUF files produced by llama.cpp.
#include "gguf/gguf_file.h"

#include <gtest/gtest.h>

#include "common/test_data.h"

namespace moon::gguf {
namespace {

TEST(GgufFile, ReadsStories260KF32) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(*f.get_string("general.architecture"), "llama");
  EXPECT_EQ(*f.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(*f.get_uint("llama.block_count"), 5u);
  EXPECT_EQ(*f.get_uint("llama.attention.head_count_kv"), 4u);
  EXPECT_NEAR(*f.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  const Value* tokens = f.find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_NE(tokens->array(), nullptr);
  ASSERT_EQ(tokens->array()->strings.size(), 512u);
  EXPECT_EQ(tokens->array()->strings[1], "<s>");
  // 5 layers x 9 tensors + embedding, output norm, output.
  EXPECT_EQ(f.tensors().size(), 48u);
  const TensorInfo* embd = f.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, DType::F32);
  EXPECT_EQ(embd->ne[0], 64u);
  EXPECT_EQ(embd->ne[1], 512u);
  EXPECT_EQ(embd->n_bytes, 64u * 512u * 4u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(embd->data) % f.alignment(), 0u);
}

TEST(GgufFile, ReadsMixedTypesOfQ8File) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-q8_0.gguf");
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ((*file)->find_tensor("blk.0.attn_q.weight")->type, DType::Q8_0);
  // FFN rows of 172 are not a multiple of 32, so llama.cpp kept ffn_down in another type.
  EXPECT_NE((*file)->find_tensor("blk.0.ffn_down.weight")->type, DType::Q8_0);
  EXPECT_EQ((*file)->find_tensor("blk.0.attn_q.weight")->n_bytes, 64u / 32u * 34u * 64u);
}

TEST(GgufFile, ReadsVocabularyOnlyFiles) {
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "phi-3", "gpt-2", "deepseek-coder"}) {
    MOON_REQUIRE_TEST_FILE(path, std::string("models/vocab/ggml-vocab-") + name + ".gguf");
    auto file = GgufFile::open(path);
    ASSERT_TRUE(file.ok()) << file.error().message;
    EXPECT_TRUE((*file)->tensors().empty());
    EXPECT_NE((*file)->find("tokenizer.ggml.tokens"), nullptr) << name;
  }
}

TEST(GgufFile, TypedGettersNameTheKey) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok());
  auto missing = (*file)->get_uint("llama.no_such_key");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("llama.no_such_key"), std::string::npos);
  auto wrong = (*file)->get_string("llama.block_count");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("should be a string"), std::string::npos);
  EXPECT_EQ(*(*file)->get_uint_or("llama.no_such_key", 7), 7u);
}

TEST(GgufFile, MissingFileIsAClearError) {
  auto file = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.error().message.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace moon::gguf
