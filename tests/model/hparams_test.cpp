// The per-family switches read_hparams derives from metadata alone, for the cases the tiny
// arch/ files do not reach: Gemma 2's published defaults when its keys are absent, the 27B
// models' query scale, Gemma 3's local/global pattern and RoPE split, and refusals.
#include "model/hparams.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "gguf/gguf_writer.h"

namespace moon {
namespace {

Result<ModelHparams> hparams(const std::string& arch, uint32_t layers,
                             const std::function<void(gguf::GgufWriter&)>& extra = nullptr) {
  gguf::GgufWriter w;
  w.add_string("general.architecture", arch);
  const std::string p = arch + ".";
  w.add_uint32(p + "context_length", 8192);
  w.add_uint32(p + "embedding_length", 4608);
  w.add_uint32(p + "feed_forward_length", 36864);
  w.add_uint32(p + "block_count", layers);
  w.add_uint32(p + "attention.head_count", 32);
  w.add_uint32(p + "attention.head_count_kv", 16);
  w.add_uint32(p + "attention.key_length", 128);
  w.add_uint32(p + "attention.value_length", 128);
  w.add_uint32(p + "vocab_size", 256000);
  if (extra) extra(w);
  auto file = gguf::GgufFile::from_bytes(w.serialize(), arch + ".gguf");
  if (!file.ok()) return file.error();
  return read_hparams(**file);
}

TEST(FamilyHparams, Gemma2DefaultsAreItsPublishedConfiguration) {
  auto hp = hparams("gemma2", 42);
  ASSERT_TRUE(hp.ok()) << hp.error().message;
  EXPECT_EQ(hp->attn_softcap, 50.0f);
  EXPECT_EQ(hp->final_softcap, 30.0f);
  EXPECT_TRUE(hp->rope_neox && hp->post_norms);
  EXPECT_EQ(hp->ffn_act, FfnActivation::kGeluTanh);
  EXPECT_FLOAT_EQ(hp->embd_scale, std::sqrt(4608.0f));
  EXPECT_FLOAT_EQ(hp->attn_scale, 1.0f / std::sqrt(128.0f));  // the head size
  ASSERT_EQ(hp->layers.size(), 42u);
  for (size_t l = 0; l < 42; ++l) EXPECT_EQ(hp->layers[l].window, l % 2 == 0 ? 4096 : 0) << l;
}

TEST(FamilyHparams, Gemma27BScalesQueriesByWidthOverHeads) {
  // 4608 / 32 = 144, not the head size of 128 (Gemma 2 27B's query_pre_attn_scalar).
  auto g2 = hparams("gemma2", 46);
  ASSERT_TRUE(g2.ok()) << g2.error().message;
  EXPECT_FLOAT_EQ(g2->attn_scale, 1.0f / 12.0f);
  auto g3 = hparams("gemma3", 62);
  ASSERT_TRUE(g3.ok()) << g3.error().message;
  EXPECT_FLOAT_EQ(g3->attn_scale, 1.0f / 12.0f);
}

TEST(FamilyHparams, Gemma3HasFiveLocalLayersToOneGlobal) {
  auto hp = hparams("gemma3", 12, [](gguf::GgufWriter& w) {
    w.add_uint32("gemma3.attention.sliding_window", 1024);
    w.add_float32("gemma3.rope.freq_base", 1e6f);
    w.add_string("gemma3.rope.scaling.type", "linear");
    w.add_float32("gemma3.rope.scaling.factor", 8.0f);
  });
  ASSERT_TRUE(hp.ok()) << hp.error().message;
  EXPECT_EQ(hp->attn_softcap, 0.0f);
  EXPECT_EQ(hp->final_softcap, 0.0f);
  for (size_t l = 0; l < 12; ++l) {
    const bool global = l % 6 == 5;
    EXPECT_EQ(hp->layers[l].window, global ? 0 : 1024) << l;
    EXPECT_EQ(hp->layers[l].rope_freq_base, global ? 1e6f : 1e4f) << l;
    EXPECT_EQ(hp->layers[l].rope_freq_scale, global ? 0.125f : 1.0f) << l;
  }
  // Without a window every layer is global.
  auto dense = hparams("gemma3", 12);
  ASSERT_TRUE(dense.ok());
  EXPECT_FALSE(dense->has_sliding_window());
}

TEST(FamilyHparams, QwenAndPhiUseNeoxRopeAndLlamaDoesNot) {
  for (const char* arch : {"qwen2", "qwen3", "phi3"}) {
    auto hp = hparams(arch, 2);
    ASSERT_TRUE(hp.ok()) << hp.error().message;
    EXPECT_TRUE(hp->rope_neox) << arch;
    EXPECT_FALSE(hp->has_sliding_window()) << arch;
    EXPECT_EQ(hp->ffn_act, FfnActivation::kSilu) << arch;
  }
  auto llama = hparams("llama", 2);
  ASSERT_TRUE(llama.ok());
  EXPECT_FALSE(llama->rope_neox);
  // Phi-3's sliding window is ignored, as llama.cpp ignores it.
  auto phi = hparams(
      "phi3", 2, [](gguf::GgufWriter& w) { w.add_uint32("phi3.attention.sliding_window", 2047); });
  ASSERT_TRUE(phi.ok());
  EXPECT_FALSE(phi->has_sliding_window());
}

TEST(FamilyHparams, NonsenseSoftCapsAreRefused) {
  auto hp = hparams("gemma2", 2, [](gguf::GgufWriter& w) {
    w.add_float32("gemma2.attn_logit_softcapping", -1.0f);
  });
  ASSERT_FALSE(hp.ok());
  EXPECT_NE(hp.error().message.find("attn_logit_softcapping"), std::string::npos)
      << hp.error().message;
}

TEST(FamilyHparams, Phi3LongRopeFilesAreRefusedByName) {
  auto hp = hparams("phi3", 2, [](gguf::GgufWriter& w) {
    EXPECT_TRUE(
        w.add_tensor("rope_factors_long.weight", {64}, DType::F32, std::vector<uint8_t>(64 * 4, 0))
            .ok());
  });
  ASSERT_FALSE(hp.ok());
  EXPECT_NE(hp.error().message.find("LongRoPE"), std::string::npos) << hp.error().message;
}

}  // namespace
}  // namespace moon
