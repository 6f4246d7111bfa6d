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

// Activations for the super-block formats, as ggml's reference quantizes them: the element
// of largest magnitude x_max (the first on ties) maps to -127, iscale = -127 / x_max,
// q = min(127, round-half-even(iscale * x)), d = 1 / iscale; an all-zero block is all
// zeros. n a multiple of 256.
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n);

}  // namespace moon
