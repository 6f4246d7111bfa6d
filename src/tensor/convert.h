// Whole-row conversion between fp32 and every dtype the kernels compute with. These are
// the plain, obviously-correct versions (used by reference kernels, tests and the
// quantizer); the hot paths dequantize inside the SIMD kernels instead.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace moon {

// dst[0..n) = the n elements of a row stored as `type` at src, for every type
// is_row_convertible accepts; for the block types n must be a multiple of the block size
// (callers check). Any other type is a programming error: it aborts.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// The inverse, writing dtype_row_bytes(type, n) bytes: F32 (a copy), F16, BF16 (round to
// nearest even), and the block formats with ggml's reference rounding and search (byte-identical
// to llama-quantize without an importance matrix).
void quantize_row(DType type, const float* src, void* dst, int64_t n);

// Whether quantize_row and dequantize_row handle `type`: F32, F16, BF16, Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, Q2_K to Q6_K and IQ4_XS.
bool is_row_convertible(DType type);

}  // namespace moon
