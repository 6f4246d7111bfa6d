// The element-wise and row-wise kernels of a Llama forward pass, vectorized and threaded.
// Each has the reference twin of the same name plus _ref in kernels/ref/ref_kernels.h and
// the same contract; `pool` may be null (the default: run on the calling thread). Results never
// depend on the pool's thread count.
#pragma once

#include <cstdint>

#include "kernels/rope_params.h"
#include "tensor/tensor_view.h"
#include "util/thread_pool.h"

namespace moon::kernels {

// out[r, i] = x[r, i] / sqrt(mean_i(x[r, i]^2) + eps) * weight[i]. x, out: [rows, dim]
// (out may alias x), weight: [dim].
void rmsnorm(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, float eps,
             ThreadPool* pool = nullptr);

// Rotates x in place, token t at positions[t] (see RopeParams). x: [num_tokens, num_heads,
// head_dim], positions: [num_tokens]. The angles are the reference's (computed in double),
// so this matches rope_ref bit for bit.
void rope(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
          const int32_t* positions, const RopeParams& params, ThreadPool* pool = nullptr);

// Row-wise softmax in place, shifted by the row max. x: [rows, cols].
void softmax(float* x, int64_t rows, int64_t cols, ThreadPool* pool = nullptr);

// out[i] = silu(gate[i]) * up[i]. All [n]; out may alias either input.
void silu_mul(const float* gate, const float* up, float* out, int64_t n,
              ThreadPool* pool = nullptr);

// out[i] = gelu(gate[i]) * up[i] with the tanh approximation of GELU (Gemma's FFN). All [n];
// out may alias either input.
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n,
                   ThreadPool* pool = nullptr);
// x[i] = cap * tanh(x[i] / cap) in place, cap > 0 (Gemma's soft-capped logits). x: [n].
void softcap(float* x, int64_t n, float cap, ThreadPool* pool = nullptr);
// out[i] = a[i] + b[i] (the residual add). All [n]; out may alias either input.
void add(const float* a, const float* b, float* out, int64_t n, ThreadPool* pool = nullptr);

// out = row `row` of w dequantized to fp32, bit-identical to get_row_ref (embedding
// lookup). out: [w.cols].
void get_row(const WeightView& w, int64_t row, float* out);

}  // namespace moon::kernels
