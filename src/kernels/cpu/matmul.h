// The matrix multiply the engine runs: activations times a weight matrix in its stored dtype.
//
// Two paths, by weight dtype:
// - F32, F16, BF16: activations stay fp32 and weights are widened to fp32 inside the dot
//   products, so results track the fp32 reference to rounding error.
// - The block formats (the int8 path): each activation row is quantized once into 8-bit
//   blocks of the kind llama.cpp multiplies that format with (activation_blocks below), and
//   each block pair is an exact integer dot product scaled by the block scales:
//   - Q8_0, Q4_0, Q5_0 weights take Q8_0 blocks (32 values, one fp16 scale d = max|x| / 127,
//     q = x * 127 / max|x| rounded to nearest even); per output,
//     acc = fma(float(block sum), d_x * d_w, acc) block after block;
//   - Q4_1, Q5_1 (weights d_w * q + m_w) take Q8_1 blocks, Q8_0's plus s_x = d_x * sum(q_x),
//     and each block then adds acc = fma(m_w, s_x, acc);
//   - the super-block formats (Q2_K to Q6_K, IQ4_XS) take Q8_K blocks (256 values, an fp32
//     scale, tensor/quant_k.h), and per super-block the two exact integers
//     S = sum over groups of scale_g * (group's sum of q_w * q_x) and M = sum of min_g *
//     (group's sum of q_x) give acc = fma(float(S), d_x * d_w, acc), then, in the formats
//     with minimums, acc = fma(float(M), -(d_x * dmin_w), acc).
//   Quantizing adds an error of at most d / 2 per activation element. Batches of 16 rows or
//   more of the Q8_0 kind, and of Q4_K and Q5_K, run on AMX tiles where the CPU has them
//   (util/cpu_features.h), with the same bits.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/quant_k.h"
#include "tensor/quant_legacy.h"
#include "tensor/quant_q8_0.h"
#include "tensor/tensor_view.h"
#include "util/thread_pool.h"

namespace moon::kernels {

// The activation blocks a weight dtype's int8 path multiplies (kNone: the fp32 path).
enum class ActivationBlocks { kNone, kQ8_0, kQ8_1, kQ8_K };
ActivationBlocks activation_blocks(DType weight_type);
// Whether weights of this dtype take the int8 path (and so a QuantizedRows operand).
inline bool uses_int8_path(DType weight_type) {
  return activation_blocks(weight_type) != ActivationBlocks::kNone;
}

// Activation rows quantized for the int8 path: [rows, cols / block size] blocks of `format`,
// row-major, in the one vector that format uses. Quantizing once and reusing it saves a pass
// when one input feeds several matrices (the Q, K and V projections; gate and up).
struct QuantizedRows {
  ActivationBlocks format = ActivationBlocks::kQ8_0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<BlockQ8_0> blocks;  // kQ8_0
  std::vector<BlockQ8_1> blocks_q8_1;
  std::vector<BlockQ8_K> blocks_q8_k;

  int64_t row_blocks() const {
    return cols / (format == ActivationBlocks::kQ8_K ? kSuperBlockSize : kQ8_0BlockSize);
  }
};

// Quantizes x [m, k] (k a multiple of the block size) into *out as `format` blocks, reusing
// its storage; rows are split across `pool` (null: the calling thread). The bytes are the
// same at every SIMD level.
void quantize_rows(const float* x, int64_t m, int64_t k, QuantizedRows* out,
                   ThreadPool* pool = nullptr, ActivationBlocks format = ActivationBlocks::kQ8_0);

// y[m, n] = sum_k x[m, k] * w[n, k], with K = w.cols and N = w.rows; w.type is F32, F16,
// BF16 or a block format of the int8 path (K a multiple of its block size; the activations
// are quantized first). x: [m, K], y: [m, N]; y must not overlap x. Output rows are split
// across `pool` (null: the calling thread).
//
// Batch invariant: y[i, n] is bitwise the same whatever m is, whatever other rows x holds,
// and whatever the pool's thread count, because every output element is one dot product
// reduced in a fixed order. On the fp32 path only the SIMD level, fixed per process, changes
// that order; the int8 path gives the same bits at every level.
void matmul(const float* x, int64_t m, const WeightView& w, float* y, ThreadPool* pool = nullptr);

// The int8 path on rows already quantized: y [x.rows, N]. x.format must be
// activation_blocks(w.type), and w.cols == x.cols.
void matmul(const QuantizedRows& x, const WeightView& w, float* y, ThreadPool* pool = nullptr);

}  // namespace moon::kernels
