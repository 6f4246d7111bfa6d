// The matrix multiply the engine runs: activations in fp32 times a weight matrix in its
// stored dtype, dequantized on the fly inside the dot products (activations are never
// quantized, so results track the fp32 reference to rounding error).
#pragma once

#include <cstdint>

#include "tensor/tensor_view.h"
#include "util/thread_pool.h"

namespace moon::kernels {

// y[m, n] = sum_k x[m, k] * w[n, k], with K = w.cols and N = w.rows; w.type is one of F32,
// F16, BF16, Q8_0, Q4_0 (K a multiple of 32 for the block types). x: [m, K], y: [m, N];
// y must not overlap x. Output rows are split across `pool` (null: the calling thread).
//
// Batch invariant: y[i, n] is bitwise the same whatever m is, whatever other rows x holds,
// and whatever the pool's thread count, because every output element is one dot product
// reduced in a fixed order (only the SIMD level, fixed per process, changes that order).
void matmul(const float* x, int64_t m, const WeightView& w, float* y, ThreadPool* pool = nullptr);

}  // namespace moon::kernels
