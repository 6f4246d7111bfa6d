// Q4_0, GGUF/ggml's 4-bit block format: 32 elements share one fp16 scale d; byte j of qs
// holds element j in its low nibble and element j + 16 in its high nibble, and an element
// with nibble q is d * (q - 8). 18 bytes per 32 elements.
#pragma once

#include <cstdint>

namespace moon {

inline constexpr int kQ4_0BlockSize = 32;

struct BlockQ4_0 {
  uint16_t d;                      // fp16 scale
  uint8_t qs[kQ4_0BlockSize / 2];  // nibbles: low = elements 0..15, high = 16..31
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 blocks are packed, as in GGUF files");

// n must be a multiple of 32 (callers check). Quantization follows ggml's reference: the
// element of largest magnitude, with its sign, maps to -8 (d = max / -8 rounded to fp16),
// and q = min(15, trunc(x / d + 8.5)), so the bytes equal what llama.cpp writes.
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);    // x: [n], y: [n / 32]
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);  // x: [n / 32], y: [n]

}  // namespace moon
