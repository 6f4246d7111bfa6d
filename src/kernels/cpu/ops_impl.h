// Internal to kernels/cpu/ops.cpp: the per-level single-thread bodies it dispatches to.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace moon::kernels::detail {

// One set of bodies per instruction-set level (AVX2, AVX-512); the scalar level uses the
// reference kernels directly.
struct OpsImpl {
  // One row: out[i] = x[i] * scale * weight[i], scale from the row's mean square.
  void (*rmsnorm_row)(const float* x, const float* weight, float* out, int64_t dim, float eps);
  // All heads of one token; cos_dup = [c0, c0, c1, c1, ...], sin_signed = [-s0, s0, -s1, ...],
  // both [rot_dim]. x: [num_heads, head_dim].
  void (*rope_token)(float* x, int64_t num_heads, int64_t head_dim, int64_t rot_dim,
                     const float* cos_dup, const float* sin_signed);
  // NEOX pairs (i, i + rot_dim/2): cos and sin are [rot_dim / 2].
  void (*rope_neox_token)(float* x, int64_t num_heads, int64_t head_dim, int64_t rot_dim,
                          const float* cos, const float* sin);
  void (*softmax_row)(float* x, int64_t cols);
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n);
  void (*gelu_tanh_mul)(const float* gate, const float* up, float* out, int64_t n);
  void (*softcap)(float* x, int64_t n, float cap);
  void (*add)(const float* a, const float* b, float* out, int64_t n);
  // F32, F16, BF16, Q8_0, Q4_0 (n a multiple of 32 for the block types).
  void (*dequantize_row)(DType type, const uint8_t* src, float* out, int64_t n);
};

const OpsImpl& ops_avx2();
const OpsImpl& ops_avx512();

}  // namespace moon::kernels::detail
