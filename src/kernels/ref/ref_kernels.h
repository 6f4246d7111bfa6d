// Reference kernels: plain scalar fp32 loops written to be read, the oracle every optimized
// kernel in kernels/cpu is tested against. Single-threaded and slow on purpose; never used
// by the engine's hot path.
//
// All buffers are contiguous row-major fp32 unless stated; shapes are given as [rows, cols].
#pragma once

#include <cstdint>

#include "kernels/rope_params.h"
#include "tensor/tensor_view.h"

namespace moon::kernels::ref {

// y[m, n] = sum_k x[m, k] * w[n, k], with K = w.cols and N = w.rows. Each weight row is
// dequantized to fp32 (F32, F16, BF16, Q8_0, Q4_0) and the dot product accumulates in fp32
// in increasing k. x: [m, K], y: [m, N].
void matmul_ref(const float* x, int64_t m, const WeightView& w, float* y);

// out[r, i] = x[r, i] / sqrt(mean_i(x[r, i]^2) + eps) * weight[i]. x, out: [rows, dim]
// (out may alias x), weight: [dim].
void rmsnorm_ref(const float* x, const float* weight, float* out, int64_t rows, int64_t dim,
                 float eps);

// Rotates x in place, token t at positions[t] (see RopeParams). x: [num_tokens, num_heads,
// head_dim], positions: [num_tokens]. Angles are computed in double: this is the oracle.
void rope_ref(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
              const int32_t* positions, const RopeParams& params);

// Row-wise softmax in place, shifted by the row max for stability. x: [rows, cols].
// A row of all -inf is left as NaN, as the math says; callers never mask a whole row.
void softmax_ref(float* x, int64_t rows, int64_t cols);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). All [n]; out may alias either.
void silu_mul_ref(const float* gate, const float* up, float* out, int64_t n);

// The tanh approximation of GELU that Gemma uses, and its constants.
inline constexpr float kGeluSqrt2OverPi = 0.7978845608028654f;
inline constexpr float kGeluCubic = 0.044715f;
// out[i] = gelu(gate[i]) * up[i], gelu(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))).
// All [n]; out may alias either.
void gelu_tanh_mul_ref(const float* gate, const float* up, float* out, int64_t n);

// x[i] = cap * tanh(x[i] / cap) in place (Gemma 2's logit soft cap). x: [n], cap > 0.
void softcap_ref(float* x, int64_t n, float cap);

// out[i] = a[i] + b[i]. All [n]; out may alias either.
void add_ref(const float* a, const float* b, float* out, int64_t n);

// out = row `row` of w, dequantized. out: [w.cols].
void get_row_ref(const WeightView& w, int64_t row, float* out);

}  // namespace moon::kernels::ref
