// GGUF/ggml's other 32-element block formats: Q4_1 and Q5_1 (a scale and an offset) and
// Q5_0 (a scale and a fifth bit per element), plus Q8_1, the activation blocks llama.cpp
// multiplies Q4_1 and Q5_1 weights with. In every format byte j of qs holds element j in its
// low nibble and element j + 16 in its high nibble; in the 5-bit ones bit j of qh (read as a
// little-endian uint32) is element j's fifth bit.
#pragma once

#include <cstdint>

#include "tensor/le_words.h"

namespace moon {

inline constexpr int kLegacyBlockSize = 32;

struct BlockQ4_1 {  // element = d * q + m, q in [0, 15]
  uint16_t d;       // fp16 scale
  uint16_t m;       // fp16 offset (the block's minimum)
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {  // element = d * (q - 16), q in [0, 31]
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {  // element = d * q + m, q in [0, 31]
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

// Q8_1: Q8_0's quants and scale plus s = d * sum(qs) as fp16 (d before its rounding to
// fp16), so that an offset weight's m multiplies one number per block.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36);

// The weight quant of element k (0..31) of a block, as the integer its scale multiplies.
inline int q4_1_quant(const BlockQ4_1& b, int k) {
  return k < 16 ? b.qs[k] & 0x0F : b.qs[k - 16] >> 4;
}
template <class Block>  // BlockQ5_0 (minus 16 for the signed value) or BlockQ5_1
inline int q5_quant(const Block& b, int k) {
  const int low = k < 16 ? b.qs[k] & 0x0F : b.qs[k - 16] >> 4;
  return low | static_cast<int>((load_u32(b.qh) >> k) & 1) << 4;
}

// Rows of n elements, n a multiple of 32 (callers check), with ggml's arithmetic (d * q + m
// as a multiply then an add), so the floats equal ggml's and gguf-py's bit for bit.
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);

// The inverses, with ggml's reference rounding (so the bytes equal llama-quantize's): Q4_1
// and Q5_1 map the block's minimum to q = 0 and its maximum to the top quant
// (d = (max - min) / 15 or 31, q = trunc((x - min) / d + 0.5)); Q5_0 maps the element of
// largest magnitude to -16 (d = max / -16, q = min(31, trunc(x / d + 16.5))).
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);

}  // namespace moon
