// The reference Llama forward pass: scalar fp32, one sequence, contiguous KV cache, every
// step in the order the Llama papers describe it. It is deliberately plain: it is the
// oracle that every optimized path (kernels, batched engine forward, paged attention) is
// tested against, so it shares no kernel code with them. Only weight dequantization, a
// format definition, is shared. The int8 path's activation quantization (Q8_0, Q4_0 and Q5_0
// weights multiply activations rounded to Q8_0 blocks, as llama.cpp does) is part of the
// model's arithmetic, so the reference repeats it in plain code before those matrices.
// Before the other block formats' matrices (Q8_1 and Q8_K activations) it keeps fp32
// activations: there it is the fp32-activation forward over the quantized weights.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace moon::reference {

struct Matrix {
  std::vector<float> values;  // row-major [out][in]
  bool int8_input = false;    // the input is rounded through Q8_0 blocks first
};

class ReferenceForward {
 public:
  // Dequantizes every weight matrix to fp32 up front; `model` must outlive this object.
  explicit ReferenceForward(const Model& model);

  // Feeds `token` at position `pos` (positions must be fed in order from 0) and returns the
  // logits for the next token. // [n_vocab]
  const std::vector<float>& forward(int32_t token, int64_t pos);

  // Logits for every position of `tokens`, fed from position 0. // [n_tokens][n_vocab]
  std::vector<std::vector<float>> forward_all(const std::vector<int32_t>& tokens);

 private:
  struct Layer {
    Matrix wq, wk, wv, wo, w_gate, w_up, w_down;
  };

  const ModelHparams& hp_;
  const ModelWeights& w_;
  std::vector<float> token_embd_;  // [n_vocab][n_embd]
  Matrix output_;                  // [n_vocab][n_embd]
  std::vector<Layer> layers_;

  // Activations for one token.
  std::vector<float> x_;        // [n_embd] residual stream
  std::vector<float> xb_;       // [n_embd] normed input
  std::vector<float> q_;        // [n_head * head_dim]
  std::vector<float> k_;        // [n_head_kv * head_dim]
  std::vector<float> v_;        // [n_head_kv * head_dim]
  std::vector<float> att_out_;  // [n_head * head_dim]
  std::vector<float> scores_;   // [n_ctx]
  std::vector<float> hb_;       // [n_ff]
  std::vector<float> hb2_;      // [n_ff]
  std::vector<float> tmp_;      // [n_embd]
  std::vector<float> logits_;   // [n_vocab]
  // KV cache: [n_layer][pos][n_head_kv * head_dim]
  std::vector<std::vector<float>> key_cache_;
  std::vector<std::vector<float>> value_cache_;
};

}  // namespace moon::reference
