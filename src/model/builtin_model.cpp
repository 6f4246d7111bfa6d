#include "model/builtin_model.h"

#include <cmath>
#include <cstring>
#include <string>

#include "gguf/gguf_writer.h"
#include "util/splitmix64.h"

namespace moon {
namespace {

std::vector<uint8_t> random_f32(SplitMix64& rng, size_t n, float scale) {
  std::vector<uint8_t> bytes(n * sizeof(float));
  for (size_t i = 0; i < n; ++i) {
    float v = rng.uniform(scale);
    std::memcpy(bytes.data() + i * sizeof(float), &v, sizeof(float));
  }
  return bytes;
}

std::vector<uint8_t> ones_f32(size_t n) {
  std::vector<uint8_t> bytes(n * sizeof(float));
  const float one = 1.0f;
  for (size_t i = 0; i < n; ++i) std::memcpy(bytes.data() + i * sizeof(float), &one, sizeof(float));
  return bytes;
}

Result<std::vector<uint8_t>> make_tiny() {
  constexpr uint32_t kEmbd = 128, kFf = 344, kLayers = 4, kHeads = 8, kHeadsKv = 4, kCtx = 2048;
  constexpr uint32_t kHeadDim = kEmbd / kHeads;

  // Token types as GGUF numbers them: 1 normal, 2 unknown, 3 control, 6 byte.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", b);
    tokens.emplace_back(piece);
    types.push_back(6);
  }
  tokens.emplace_back("\xE2\x96\x81");  // "▁", SentencePiece's space
  types.push_back(1);
  for (char c = '!'; c <= '~'; ++c) {
    tokens.emplace_back(1, c);
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  const uint32_t n_vocab = static_cast<uint32_t>(tokens.size());

  gguf::GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", "moon builtin tiny (random weights)");
  w.add_uint32("llama.context_length", kCtx);
  w.add_uint32("llama.embedding_length", kEmbd);
  w.add_uint32("llama.feed_forward_length", kFf);
  w.add_uint32("llama.block_count", kLayers);
  w.add_uint32("llama.attention.head_count", kHeads);
  w.add_uint32("llama.attention.head_count_kv", kHeadsKv);
  w.add_uint32("llama.rope.dimension_count", kHeadDim);
  w.add_float32("llama.rope.freq_base", 10000.0f);
  w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_uint32("llama.vocab_size", n_vocab);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_float32_array("tokenizer.ggml.scores", scores);
  w.add_int32_array("tokenizer.ggml.token_type", types);
  w.add_uint32("tokenizer.ggml.unknown_token_id", 0);
  w.add_uint32("tokenizer.ggml.bos_token_id", 1);
  w.add_uint32("tokenizer.ggml.eos_token_id", 2);
  w.add_bool("tokenizer.ggml.add_bos_token", true);

  SplitMix64 rng(0x6D6F6F6E);  // "moon"
  // Scale like a trained model's init (about 1/sqrt(fan_in)) so activations stay O(1).
  auto matrix = [&](const std::string& name, uint32_t cols, uint32_t rows) {
    return w.add_tensor(name, {cols, rows}, DType::F32,
                        random_f32(rng, size_t{cols} * rows, 1.0f / std::sqrt(float(cols))));
  };
  MOON_TRY(matrix("token_embd.weight", kEmbd, n_vocab));
  MOON_TRY(w.add_tensor("output_norm.weight", {kEmbd}, DType::F32, ones_f32(kEmbd)));
  // Output rows of the printable tokens are scaled up and those of control and byte tokens
  // down, so that the meaningless text is at least readable ASCII rather than stray bytes.
  std::vector<uint8_t> output =
      random_f32(rng, size_t{kEmbd} * n_vocab, 1.0f / std::sqrt(float(kEmbd)));
  for (uint32_t t = 0; t < n_vocab; ++t) {
    const float scale = types[t] == 1 ? 6.0f : 0.1f;
    auto* row = reinterpret_cast<float*>(output.data()) + size_t{t} * kEmbd;
    for (uint32_t i = 0; i < kEmbd; ++i) row[i] *= scale;
  }
  MOON_TRY(w.add_tensor("output.weight", {kEmbd, n_vocab}, DType::F32, std::move(output)));
  for (uint32_t l = 0; l < kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    MOON_TRY(w.add_tensor(p + "attn_norm.weight", {kEmbd}, DType::F32, ones_f32(kEmbd)));
    MOON_TRY(matrix(p + "attn_q.weight", kEmbd, kEmbd));
    MOON_TRY(matrix(p + "attn_k.weight", kEmbd, kHeadsKv * kHeadDim));
    MOON_TRY(matrix(p + "attn_v.weight", kEmbd, kHeadsKv * kHeadDim));
    MOON_TRY(matrix(p + "attn_output.weight", kEmbd, kEmbd));
    MOON_TRY(w.add_tensor(p + "ffn_norm.weight", {kEmbd}, DType::F32, ones_f32(kEmbd)));
    MOON_TRY(matrix(p + "ffn_gate.weight", kEmbd, kFf));
    MOON_TRY(matrix(p + "ffn_up.weight", kEmbd, kFf));
    MOON_TRY(matrix(p + "ffn_down.weight", kFf, kEmbd));
  }
  return w.serialize();
}

}  // namespace

Result<std::vector<uint8_t>> builtin_model_gguf(std::string_view name) {
  if (name == "tiny") return make_tiny();
  return make_error("unknown built-in model 'builtin:{}' (available: builtin:tiny)", name);
}

}  // namespace moon
