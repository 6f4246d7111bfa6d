// The weights of a model as views into the (mapped) GGUF file, checked against the
// hyperparameters: every required tensor present, of a supported type, of the right shape.
// Matrices stay in the file's dtype and are used in place; the small norm and bias vectors
// are converted to fp32 once. Fused tensors (Phi-3's attn_qkv and gate/up ffn_up) become
// views of their row ranges, so the forward sees the same separate matrices as for Llama.
// An empty vector is a tensor the family does not have.
#pragma once

#include <memory>
#include <vector>

#include "gguf/gguf_file.h"
#include "model/hparams.h"
#include "tensor/tensor_view.h"
#include "util/result.h"

namespace moon {

struct LayerWeights {
  std::vector<float> attn_norm;            // [n_embd]
  WeightView wq;                           // [n_embd_q rows, n_embd cols]
  WeightView wk;                           // [n_embd_kv, n_embd]
  WeightView wv;                           // [n_embd_kv, n_embd]
  std::vector<float> bq, bk, bv;           // [n_embd_q], [n_embd_kv] x 2 (Qwen2) or empty
  std::vector<float> q_norm, k_norm;       // [head_dim] per-head RMS norms (Qwen3, Gemma 3)
  WeightView wo;                           // [n_embd, n_embd_q]
  std::vector<float> post_attention_norm;  // [n_embd] (Gemma)
  std::vector<float> ffn_norm;             // [n_embd]
  WeightView w_gate;                       // [n_ff, n_embd]
  WeightView w_up;                         // [n_ff, n_embd]
  WeightView w_down;                       // [n_embd, n_ff]
  std::vector<float> post_ffw_norm;        // [n_embd] (Gemma)
};

struct ModelWeights {
  WeightView token_embd;           // [n_vocab rows, n_embd cols]
  std::vector<float> output_norm;  // [n_embd]
  WeightView output;  // [n_vocab, n_embd]; the embedding itself when the file ties them
  bool output_tied = false;
  std::vector<float> rope_freqs;  // [n_rot / 2] per-pair frequency divisors (Llama 3.1), or empty
  std::vector<LayerWeights> layers;
  // Copies of matrices the file stored at addresses too odd for their element type (legal
  // with general.alignment 1); the views above point here instead of into the file.
  std::vector<std::unique_ptr<uint64_t[]>> realigned;
  // A tensor-parallel rank's slices of the matrices it splits (dist/shard.h).
  std::vector<std::unique_ptr<uint64_t[]>> slices;
};

// Views into `file`, which must outlive the result.
Result<ModelWeights> read_weights(const gguf::GgufFile& file, const ModelHparams& hp);

}  // namespace moon
