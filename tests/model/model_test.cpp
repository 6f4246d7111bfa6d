// Model-level validation: a GGUF that parses but cannot be a Llama model is refused with
// an error naming the missing or inconsistent piece.
#include "model/model.h"

#include <gtest/gtest.h>

#include <functional>

#include "gguf/gguf_writer.h"
#include "model/builtin_model.h"

namespace moon {
namespace {

constexpr uint32_t kEmbd = 32, kFf = 64, kHeads = 4, kHeadsKv = 2, kVocab = 16;

struct Spec {
  std::function<void(gguf::GgufWriter&)> extra_metadata;
  std::string skip_key;
  std::string skip_tensor;
  std::string reshape_tensor;  // given one extra column
  DType matrix_type = DType::F32;
};

std::vector<uint8_t> zeros(DType type, uint64_t cols, uint64_t rows) {
  return std::vector<uint8_t>(dtype_row_bytes(type, cols) * rows, 0);
}

Result<std::unique_ptr<Model>> build(const Spec& spec) {
  gguf::GgufWriter w;
  auto u32 = [&](const std::string& key, uint32_t v) {
    if (key != spec.skip_key) w.add_uint32(key, v);
  };
  if (spec.skip_key != "general.architecture") w.add_string("general.architecture", "llama");
  u32("llama.context_length", 64);
  u32("llama.embedding_length", kEmbd);
  u32("llama.feed_forward_length", kFf);
  u32("llama.block_count", 1);
  u32("llama.attention.head_count", kHeads);
  u32("llama.attention.head_count_kv", kHeadsKv);
  u32("llama.vocab_size", kVocab);
  if (spec.extra_metadata) spec.extra_metadata(w);
  const uint32_t kv = kEmbd / kHeads * kHeadsKv;
  auto tensor = [&](const std::string& name, uint64_t cols, uint64_t rows, DType type) {
    if (name == spec.skip_tensor) return;
    if (name == spec.reshape_tensor) cols += 32;
    std::vector<uint64_t> ne =
        rows ? std::vector<uint64_t>{cols, rows} : std::vector<uint64_t>{cols};
    EXPECT_TRUE(w.add_tensor(name, ne, type, zeros(type, cols, rows ? rows : 1)).ok());
  };
  tensor("token_embd.weight", kEmbd, kVocab, spec.matrix_type);
  tensor("output_norm.weight", kEmbd, 0, DType::F32);
  tensor("blk.0.attn_norm.weight", kEmbd, 0, DType::F32);
  tensor("blk.0.attn_q.weight", kEmbd, kEmbd, spec.matrix_type);
  tensor("blk.0.attn_k.weight", kEmbd, kv, spec.matrix_type);
  tensor("blk.0.attn_v.weight", kEmbd, kv, spec.matrix_type);
  tensor("blk.0.attn_output.weight", kEmbd, kEmbd, spec.matrix_type);
  tensor("blk.0.ffn_norm.weight", kEmbd, 0, DType::F32);
  tensor("blk.0.ffn_gate.weight", kEmbd, kFf, spec.matrix_type);
  tensor("blk.0.ffn_up.weight", kEmbd, kFf, spec.matrix_type);
  tensor("blk.0.ffn_down.weight", kFf, kEmbd, spec.matrix_type);
  auto file = gguf::GgufFile::from_bytes(w.serialize(), "test.gguf");
  if (!file.ok()) return file.error();
  return make_model(std::move(file).value());
}

void expect_error(const Spec& spec, const std::string& words) {
  auto model = build(spec);
  ASSERT_FALSE(model.ok()) << "expected an error mentioning: " << words;
  EXPECT_NE(model.error().message.find(words), std::string::npos) << model.error().message;
}

TEST(Model, ValidMinimalModelLoadsWithTiedOutput) {
  auto model = build({});
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_TRUE((*model)->weights.output_tied);
  EXPECT_EQ((*model)->hparams.head_dim, kEmbd / kHeads);
  EXPECT_EQ((*model)->hparams.n_gqa(), 2);
}

TEST(Model, MissingTensorIsNamed) {
  expect_error({.skip_tensor = "blk.0.ffn_up.weight"}, "'blk.0.ffn_up.weight' is missing");
  expect_error({.skip_tensor = "token_embd.weight"}, "'token_embd.weight' is missing");
}

TEST(Model, MissingHyperparameterIsNamed) {
  expect_error({.skip_key = "llama.embedding_length"}, "llama.embedding_length");
  expect_error({.skip_key = "llama.block_count"}, "llama.block_count");
  expect_error({.skip_key = "general.architecture"}, "general.architecture");
}

TEST(Model, ShapeDisagreeingWithHyperparametersIsNamed) {
  expect_error({.reshape_tensor = "blk.0.attn_k.weight"}, "'blk.0.attn_k.weight' has shape");
  expect_error({.reshape_tensor = "output_norm.weight"}, "'output_norm.weight' has shape");
}

TEST(Model, InconsistentHyperparametersAreRefused) {
  expect_error({.extra_metadata =
                    [](gguf::GgufWriter& w) { w.add_uint32("llama.rope.dimension_count", 9); }},
               "rope.dimension_count");
  expect_error({.extra_metadata =
                    [](gguf::GgufWriter& w) {
                      w.add_string("llama.rope.scaling.type", "yarn");
                      w.add_float32("llama.rope.scaling.factor", 4.0f);
                    }},
               "'yarn' is not supported");
}

// llama.cpp applies rope.scaling.factor linearly when no scaling type is given.
TEST(Model, RopeScalingFactorWithoutTypeIsLinear) {
  auto model = build({.extra_metadata = [](gguf::GgufWriter& w) {
    w.add_float32("llama.rope.scaling.factor", 4.0f);
  }});
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_FLOAT_EQ((*model)->hparams.layers[0].rope_freq_scale, 0.25f);
}

TEST(Model, ZeroHyperparameterIsRefused) {
  Spec spec;
  spec.skip_key = "llama.attention.head_count_kv";
  spec.extra_metadata = [](gguf::GgufWriter& w) {
    w.add_uint32("llama.attention.head_count_kv", 0);
  };
  expect_error(spec, "out of range");
}

TEST(Model, WrongArchitectureIsRefused) {
  gguf::GgufWriter w;
  w.add_string("general.architecture", "gpt2");
  auto file = gguf::GgufFile::from_bytes(w.serialize(), "gpt2.gguf");
  ASSERT_TRUE(file.ok());
  auto model = make_model(std::move(file).value());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.error().message.find("'gpt2' is not supported"), std::string::npos);
  // The message lists what moon does run.
  EXPECT_NE(model.error().message.find("llama, qwen2, qwen3, phi3, gemma2, gemma3"),
            std::string::npos)
      << model.error().message;
}

TEST(Model, UnsupportedTensorTypeNamesTensorAndType) {
  gguf::GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_uint32("llama.context_length", 64);
  w.add_uint32("llama.embedding_length", 256);
  w.add_uint32("llama.feed_forward_length", 256);
  w.add_uint32("llama.block_count", 1);
  w.add_uint32("llama.attention.head_count", 2);
  w.add_uint32("llama.vocab_size", 4);
  ASSERT_TRUE(
      w.add_tensor("token_embd.weight", {256, 4}, DType::IQ2_XXS, zeros(DType::IQ2_XXS, 256, 4))
          .ok());
  auto file = gguf::GgufFile::from_bytes(w.serialize(), "k.gguf");
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto model = make_model(std::move(file).value());
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.error().message.find("'token_embd.weight' has type IQ2_XXS"), std::string::npos)
      << model.error().message;
}

TEST(Model, UnknownBuiltinIsAClearError) {
  auto model = load_model("builtin:huge");
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.error().message.find("builtin:tiny"), std::string::npos);
}

TEST(Model, BuiltinTinyIsDeterministicAndLlamaShaped) {
  auto a = builtin_model_gguf("tiny");
  auto b = builtin_model_gguf("tiny");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  auto model = load_model("");  // the default
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_EQ((*model)->file->name(), "builtin:tiny");
  EXPECT_LT((*model)->hparams.n_head_kv, (*model)->hparams.n_head);  // exercises GQA
}

}  // namespace
}  // namespace moon
