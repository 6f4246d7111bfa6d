// Hyperparameters of a Llama-architecture model, read from a GGUF file's `<arch>.*` keys.
// Llama-2, Llama-3, TinyLlama, Mistral and llama2.c conversions all use arch "llama".
#pragma once

#include <cstdint>
#include <string>

#include "gguf/gguf_file.h"
#include "util/result.h"

namespace moon {

struct LlamaHparams {
  std::string architecture;  // general.architecture
  std::string name;          // general.name, for display
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;  // context length the model was trained with
  int64_t n_embd = 0;
  int64_t n_ff = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // per-head size of Q and K (and V)
  int64_t n_rot = 0;     // RoPE dimensions per head (<= head_dim)
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  float rms_eps = 1e-5f;

  int64_t n_embd_q() const { return n_head * head_dim; }
  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
  int64_t n_gqa() const { return n_head / n_head_kv; }
};

// Reads and checks the hyperparameters: every value present, positive and consistent
// (heads divide evenly, RoPE dims even and within the head). n_vocab comes from the
// tokenizer's token list when `<arch>.vocab_size` is absent.
Result<LlamaHparams> read_llama_hparams(const gguf::GgufFile& file);

}  // namespace moon
