// Q8_0, GGUF/ggml's 8-bit block format: 32 elements share one fp16 scale d, and element j
// of a block is d * qs[j]. 34 bytes per 32 elements.
#pragma once

#include <cstdint>

namespace moon {

inline constexpr int kQ8_0BlockSize = 32;

struct BlockQ8_0 {
  uint16_t d;                 // fp16 scale
  int8_t qs[kQ8_0BlockSize];  // quants
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 blocks are packed, as in GGUF files");

// n must be a multiple of 32 (callers check). Quantization follows ggml's reference
// (d = amax / 127 rounded to fp16, q = round-half-away(x / d) computed as x * (1/d)), so the
// bytes equal what llama.cpp's quantizer writes for the same floats.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);    // x: [n], y: [n / 32]
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);  // x: [n / 32], y: [n]

}  // namespace moon
