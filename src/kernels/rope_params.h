// Parameters of rotary position embedding shared by the reference and optimized kernels.
#pragma once

#include <cstdint>

namespace moon::kernels {

// Rotary position embedding: within each head, pair i (i < rot_dim / 2) rotates by angle
//   theta_i = (pos / linear_scale) * freq_base^(-2i / rot_dim) / freq_factors[i]
// and elements from rot_dim to head_dim pass through unchanged. "Normal" RoPE, as GGUF Llama
// files expect it, pairs adjacent elements (x[2i], x[2i+1]); NEOX RoPE (Qwen, Phi-3, Gemma)
// pairs the halves (x[i], x[i + rot_dim/2]).
struct RopeParams {
  int64_t rot_dim = 0;  // even, <= head_dim (GGUF rope.dimension_count)
  bool neox = false;
  float freq_base = 10000.0f;           // GGUF rope.freq_base
  float linear_scale = 1.0f;            // GGUF rope.scaling.factor for linear scaling, else 1
  const float* freq_factors = nullptr;  // [rot_dim / 2] or null (Llama 3's rope_freqs tensor)
};

}  // namespace moon::kernels
