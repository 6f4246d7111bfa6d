// Hyperparameters of a decoder-only transformer, read from a GGUF file's
// `general.architecture` and its `<arch>.*` keys. One description covers every supported
// family: each family is the Llama block with some of the switches below set, so the
// forward passes read switches, never architecture names.
//
// Families (GGUF architecture names): llama (Llama 1-3, TinyLlama, Mistral, llama2.c
// conversions), qwen2 (Qwen2, Qwen2.5), qwen3, phi3, gemma2, gemma3.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "util/result.h"

namespace moon {

enum class Arch { kLlama, kQwen2, kQwen3, kPhi3, kGemma2, kGemma3 };

// The gated feed-forward's activation: down(act(gate) * up).
enum class FfnActivation { kSilu, kGeluTanh };

// What differs between layers of one model (Gemma alternates local and global attention).
struct LayerAttention {
  int64_t window = 0;  // 0: attends to every earlier position; W: only the last W (q - k < W)
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
};

struct ModelHparams {
  Arch arch = Arch::kLlama;
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
  float rms_eps = 1e-5f;

  // RoPE pairing: Llama files rotate adjacent pairs (2i, 2i+1); the others ("NEOX") rotate
  // (i, i + n_rot/2) of each head.
  bool rope_neox = false;
  float attn_scale = 0.0f;     // multiplies q.k; 1/sqrt(head_dim) unless the family says
  float attn_softcap = 0.0f;   // 0: none; else scores -> c * tanh(scores / c) (Gemma 2)
  float final_softcap = 0.0f;  // the same on the logits
  float embd_scale = 1.0f;     // the embedding row is multiplied by it (Gemma: sqrt(n_embd))
  FfnActivation ffn_act = FfnActivation::kSilu;
  bool post_norms = false;  // RMS norms on the attention and FFN outputs before the residual
  std::vector<LayerAttention> layers;  // [n_layer]

  int64_t n_embd_q() const { return n_head * head_dim; }
  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
  int64_t n_gqa() const { return n_head / n_head_kv; }
  bool has_sliding_window() const;  // some layer attends to a window only
};

// The architectures read_hparams accepts, for messages: "llama, qwen2, ...".
std::string supported_architectures();

// Reads and checks the hyperparameters: every value present, positive and consistent
// (heads divide evenly, RoPE dims even and within the head). n_vocab comes from the
// tokenizer's token list when `<arch>.vocab_size` is absent. An architecture moon does not
// run is an error naming it and the supported ones.
Result<ModelHparams> read_hparams(const gguf::GgufFile& file);

}  // namespace moon
