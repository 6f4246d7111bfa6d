// The matrix multiply the engine runs: activations times a weight matrix in its stored dtype.
//
// Two paths, by weight dtype:
// - F32, F16, BF16: activations stay fp32 and weights are widened to fp32 inside the dot
//   products, so results track the fp32 reference to rounding error.
// - Q8_0, Q4_0 (the int8 path): each activation row is quantized once to Q8_0 blocks (32
//   values with one fp16 scale d = max|x| / 127, q = x * 127 / max|x| rounded to nearest
//   even, which is how llama.cpp quantizes activations for these weights), and each block
//   pair is an exact integer dot product scaled by the two block scales: per output,
//   acc = fma(float(block sum), d_x * d_w, acc) block after block. The quantization adds an
//   error of at most d / 2 per activation element. Batches of 16 rows or more run on AMX
//   tiles where the CPU has them (util/cpu_features.h), with the same bits.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/quant_q8_0.h"
#include "tensor/tensor_view.h"
#include "util/thread_pool.h"

namespace moon::kernels {

// Activation rows quantized for the int8 path: [rows, cols / 32] blocks, row-major.
// Quantizing once and reusing it saves a pass when one input feeds several matrices (the
// Q, K and V projections; gate and up).
struct QuantizedRows {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<BlockQ8_0> blocks;

  int64_t row_blocks() const { return cols / kQ8_0BlockSize; }
  const BlockQ8_0* row(int64_t i) const { return blocks.data() + i * row_blocks(); }
};

// Whether weights of this dtype take the int8 path (and so a QuantizedRows operand).
bool uses_int8_path(DType weight_type);

// Quantizes x [m, k] (k a multiple of 32) into *out, reusing its storage; rows are split
// across `pool` (null: the calling thread). The bytes are the same at every SIMD level.
void quantize_rows(const float* x, int64_t m, int64_t k, QuantizedRows* out,
                   ThreadPool* pool = nullptr);

// y[m, n] = sum_k x[m, k] * w[n, k], with K = w.cols and N = w.rows; w.type is one of F32,
// F16, BF16, Q8_0, Q4_0 (K a multiple of 32 for the block types, whose activations this
// quantizes first). x: [m, K], y: [m, N]; y must not overlap x. Output rows are split
// across `pool` (null: the calling thread).
//
// Batch invariant: y[i, n] is bitwise the same whatever m is, whatever other rows x holds,
// and whatever the pool's thread count, because every output element is one dot product
// reduced in a fixed order. On the fp32 path only the SIMD level, fixed per process, changes
// that order; the int8 path gives the same bits at every level.
void matmul(const float* x, int64_t m, const WeightView& w, float* y, ThreadPool* pool = nullptr);

// The int8 path on rows already quantized: y [x.rows, N]. w.type must be Q8_0 or Q4_0 with
// w.cols == x.cols.
void matmul(const QuantizedRows& x, const WeightView& w, float* y, ThreadPool* pool = nullptr);

}  // namespace moon::kernels
