// GGUF/ggml's 256-element super-block formats: the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// the non-linear IQ4_XS, and Q8_K, the activation blocks llama.cpp multiplies them with.
//
// Every one of the weight formats reads as 16 groups of 16 elements: element k of a super-
// block is (d * scale[k / 16]) * q[k], minus dmin * min[k / 16] in the formats with minimums
// (Q2_K, Q4_K, Q5_K), with small integers q, scale and min packed differently per format.
// `unpack` turns a block into that common form; dequantization and the scalar int8 dot
// products are both written on it, so one decoder per format serves both.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/le_words.h"

namespace moon {

inline constexpr int kSuperBlockSize = 256;
inline constexpr int kSuperBlockGroups = 16;  // groups of 16 elements sharing scale and min

struct BlockQ2_K {     // q in [0, 3]; a 4-bit scale and a 4-bit min per group of 16
  uint8_t scales[16];  // low nibble scale, high nibble min
  uint8_t qs[64];
  uint16_t d, dmin;  // fp16
};
struct BlockQ3_K {     // q in [-4, 3]; a 6-bit scale (minus 32) per group of 16
  uint8_t hmask[32];   // the third bit of each q, set meaning "no -4"
  uint8_t qs[64];      // the low two bits
  uint8_t scales[12];  // 16 x 6 bits
  uint16_t d;
};
struct BlockQ4_K {  // q in [0, 15]; a 6-bit scale and min per 32 elements
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct BlockQ5_K {  // q in [0, 31]; scales and mins as Q4_K
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct BlockQ6_K {  // q in [-32, 31]; an int8 scale per group of 16
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
struct BlockIQ4_XS {  // q one of 16 fixed values; a 6-bit scale (minus 32) per 32 elements
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};
struct BlockQ8_K {  // element = d * qs[k]; bsums[g] = the sum of group g's qs
  float d;
  int8_t qs[kSuperBlockSize];
  int16_t bsums[kSuperBlockGroups];
};
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockIQ4_XS) == 136 &&
              sizeof(BlockQ8_K) == 292);

// IQ4_XS's (and IQ4_NL's) 16 values, a non-uniform grid denser near zero.
inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};

// The packed scales, decoded. Kernels call these per super-block, so they work on 32-bit
// words, four values at once; the layouts are the formats' own.

// Q4_K and Q5_K: 8 six-bit scales and mins (per 32 elements) in 12 bytes. Sub-blocks 0-3
// keep theirs in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 have their low 4
// bits in the nibbles of bytes 8-11 and their top 2 bits in the spare top bits of bytes 0-7.
inline void decode_scales_k4(const uint8_t s[12], uint8_t scales[8], uint8_t mins[8]) {
  const uint32_t w0 = load_u32(s), w1 = load_u32(s + 4), w2 = load_u32(s + 8);
  store_u32(scales, w0 & 0x3F3F3F3Fu);
  store_u32(mins, w1 & 0x3F3F3F3Fu);
  store_u32(scales + 4, (w2 & 0x0F0F0F0Fu) | ((w0 >> 6) & 0x03030303u) << 4);
  store_u32(mins + 4, ((w2 >> 4) & 0x0F0F0F0Fu) | ((w1 >> 6) & 0x03030303u) << 4);
}

// Q3_K: 16 six-bit scales (per 16 elements, stored plus 32) in 12 bytes: the low 4 bits in
// the nibbles of bytes 0-7 (low nibbles are scales 0-7), the top 2 bits in bytes 8-11
// (bits 2t..2t+1 of byte 8 + i are scale 4t + i's).
inline void decode_scales_q3_k(const uint8_t s[12], int8_t scales[16]) {
  const uint32_t w0 = load_u32(s), w1 = load_u32(s + 4), w2 = load_u32(s + 8);
  uint8_t raw[16];
  store_u32(raw, (w0 & 0x0F0F0F0Fu) | (w2 & 0x03030303u) << 4);
  store_u32(raw + 4, (w1 & 0x0F0F0F0Fu) | ((w2 >> 2) & 0x03030303u) << 4);
  store_u32(raw + 8, ((w0 >> 4) & 0x0F0F0F0Fu) | ((w2 >> 4) & 0x03030303u) << 4);
  store_u32(raw + 12, ((w1 >> 4) & 0x0F0F0F0Fu) | ((w2 >> 6) & 0x03030303u) << 4);
  for (int i = 0; i < 16; ++i) scales[i] = static_cast<int8_t>(raw[i] - 32);
}

// IQ4_XS: 8 six-bit scales (per 32 elements, stored plus 32): the low 4 bits are nibble ib
// of scales_l, the top 2 bits are bits 2 ib..2 ib + 1 of scales_h.
inline void decode_scales_iq4_xs(const BlockIQ4_XS& b, int8_t scales[8]) {
  const uint32_t low = load_u32(b.scales_l);
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((low >> (4 * ib)) & 0x0F) | ((b.scales_h >> (2 * ib)) & 3) << 4;
    scales[ib] = static_cast<int8_t>(ls - 32);
  }
}

// A super-block in the common form described above (min all zero and dmin 0 where the
// format has none).
struct SuperBlock {
  float d = 0.0f, dmin = 0.0f;
  int8_t q[kSuperBlockSize];
  int16_t scale[kSuperBlockGroups];
  int16_t min[kSuperBlockGroups];
};

// Whether `type` is one of the super-block weight formats above (not Q8_K).
bool is_super_block_type(DType type);
// Whether its elements subtract dmin * min (Q2_K, Q4_K, Q5_K).
bool has_group_mins(DType type);

// Unpacks super-block `index` of a row of `type` starting at `row`.
void unpack(DType type, const uint8_t* row, int64_t index, SuperBlock* out);

// A row of n elements (n a multiple of 256), with ggml's arithmetic and order, so the floats
// equal ggml's and gguf-py's bit for bit.
void dequantize_row_super_block(DType type, const void* x, float* y, int64_t n);

// The inverse for the weight formats, with ggml's reference algorithms (tensor/
// quantize_k.cpp), so the bytes equal llama-quantize's without an importance matrix.
void quantize_row_super_block(DType type, const float* x, void* y, int64_t n);

// Activations for the super-block formats, as ggml's reference quantizes them: the element
// of largest magnitude x_max (the first on ties) maps to -127, iscale = -127 / x_max,
// q = min(127, round-half-even(iscale * x)), d = 1 / iscale; an all-zero block is all
// zeros. n a multiple of 256.
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n);

}  // namespace moon
