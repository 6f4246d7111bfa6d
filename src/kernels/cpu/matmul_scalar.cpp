// Portable matmul tiles for CPUs without AVX2.
//
// The fp32 tiles: each output accumulates in fp32 in increasing k, exactly like the
// reference, but a tile dequantizes each 32-element piece of a weight row once and uses it
// for all of its activation rows.
//
// The int8 tiles state the rule every int8 kernel (SIMD, AMX) follows to the bit: per
// output one fp32 accumulator, and for each block in increasing order
// acc = fma(float(exact integer block sum), d_x * d_w, acc).
#include <algorithm>
#include <cmath>

#include "kernels/cpu/matmul_tiles.h"
#include "tensor/convert.h"
#include "tensor/half.h"
#include "tensor/quant_k.h"
#include "tensor/quant_legacy.h"
#include "tensor/quant_q4_0.h"
#include "util/cpu_features.h"
#include "util/simd/target.h"

namespace moon::kernels::detail {
namespace {

constexpr int kPiece = 32;  // one quant block; any length works for the plain types
constexpr int kTileRows = 4;
constexpr int kTileCols = 4;

template <int R, int C>
MOON_NO_FP_CONTRACT void tile(DType type, const float* x, int64_t k_dim, const uint8_t* w,
                              size_t w_row_bytes, float* y, int64_t ldy) {
  const DTypeTraits& traits = dtype_traits(type);
  float acc[R][C] = {};
  float piece[C][kPiece];  // dequantized weights [C, 32]
  for (int64_t k0 = 0; k0 < k_dim; k0 += kPiece) {
    const int len = static_cast<int>(std::min<int64_t>(kPiece, k_dim - k0));
    const size_t offset = static_cast<size_t>(k0 / traits.block_size) * traits.block_bytes;
    for (int j = 0; j < C; ++j) dequantize_row(type, w + j * w_row_bytes + offset, piece[j], len);
    for (int i = 0; i < R; ++i) {
      const float* xk = x + i * k_dim + k0;  // [len]
      for (int j = 0; j < C; ++j) {
        float sum = acc[i][j];
        for (int kk = 0; kk < len; ++kk) sum += xk[kk] * piece[j][kk];
        acc[i][j] = sum;
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) y[i * ldy + j] = acc[i][j];
  }
}

template <DType T, int R, int C>
void typed_tile(const float* x, int64_t k_dim, const uint8_t* w, size_t w_row_bytes, float* y,
                int64_t ldy) {
  tile<R, C>(T, x, k_dim, w, w_row_bytes, y, ldy);
}

// Element k of block b of a Q8_0, Q4_0 or Q5_0 weight row, as its integer.
template <DType T>
int weight_quant(const uint8_t* row, int64_t b, int k) {
  if constexpr (T == DType::Q8_0) {
    return reinterpret_cast<const BlockQ8_0*>(row)[b].qs[k];
  } else if constexpr (T == DType::Q4_0) {
    const uint8_t byte = reinterpret_cast<const BlockQ4_0*>(row)[b].qs[k % 16];
    return (k < 16 ? byte & 0x0F : byte >> 4) - 8;
  } else {
    return q5_quant(reinterpret_cast<const BlockQ5_0*>(row)[b], k) - 16;
  }
}

template <DType T>
float weight_scale(const uint8_t* row, int64_t b) {
  if constexpr (T == DType::Q8_0) {
    return fp16_to_fp32(reinterpret_cast<const BlockQ8_0*>(row)[b].d);
  } else if constexpr (T == DType::Q4_0) {
    return fp16_to_fp32(reinterpret_cast<const BlockQ4_0*>(row)[b].d);
  } else {
    return fp16_to_fp32(reinterpret_cast<const BlockQ5_0*>(row)[b].d);
  }
}

template <DType T, int R, int C>
MOON_NO_FP_CONTRACT void int8_tile(const BlockQ8_0* x, int64_t x_row_blocks, const uint8_t* w,
                                   size_t w_row_bytes, float* y, int64_t ldy) {
  float acc[R][C] = {};
  for (int64_t b = 0; b < x_row_blocks; ++b) {
    for (int j = 0; j < C; ++j) {
      const uint8_t* row = w + j * w_row_bytes;
      int wq[kQ8_0BlockSize];
      for (int k = 0; k < kQ8_0BlockSize; ++k) wq[k] = weight_quant<T>(row, b, k);
      const float wd = weight_scale<T>(row, b);
      for (int i = 0; i < R; ++i) {
        const BlockQ8_0& xb = x[i * x_row_blocks + b];
        int32_t sum = 0;
        for (int k = 0; k < kQ8_0BlockSize; ++k) sum += wq[k] * xb.qs[k];
        acc[i][j] = std::fma(static_cast<float>(sum), fp16_to_fp32(xb.d) * wd, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) y[i * ldy + j] = acc[i][j];
  }
}

// Q4_1 and Q5_1 weights d * q + m against Q8_1 blocks: the block rule, then the offset's
// m * s_x.
template <DType T, int R, int C>
MOON_NO_FP_CONTRACT void q8_1_tile(const BlockQ8_1* x, int64_t x_row_blocks, const uint8_t* w,
                                   size_t w_row_bytes, float* y, int64_t ldy) {
  float acc[R][C] = {};
  for (int64_t b = 0; b < x_row_blocks; ++b) {
    for (int j = 0; j < C; ++j) {
      int wq[kQ8_0BlockSize];
      float wd, wm;
      if constexpr (T == DType::Q4_1) {
        const BlockQ4_1& block = reinterpret_cast<const BlockQ4_1*>(w + j * w_row_bytes)[b];
        for (int k = 0; k < kQ8_0BlockSize; ++k) wq[k] = q4_1_quant(block, k);
        wd = fp16_to_fp32(block.d);
        wm = fp16_to_fp32(block.m);
      } else {
        const BlockQ5_1& block = reinterpret_cast<const BlockQ5_1*>(w + j * w_row_bytes)[b];
        for (int k = 0; k < kQ8_0BlockSize; ++k) wq[k] = q5_quant(block, k);
        wd = fp16_to_fp32(block.d);
        wm = fp16_to_fp32(block.m);
      }
      for (int i = 0; i < R; ++i) {
        const BlockQ8_1& xb = x[i * x_row_blocks + b];
        int32_t sum = 0;
        for (int k = 0; k < kQ8_0BlockSize; ++k) sum += wq[k] * xb.qs[k];
        acc[i][j] = std::fma(static_cast<float>(sum), fp16_to_fp32(xb.d) * wd, acc[i][j]);
        acc[i][j] = std::fma(wm, fp16_to_fp32(xb.s), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) y[i * ldy + j] = acc[i][j];
  }
}

// The super-block rule of matmul.h on the common form of tensor/quant_k.h.
template <DType T, int R, int C>
MOON_NO_FP_CONTRACT void super_block_tile(const BlockQ8_K* x, int64_t x_row_blocks,
                                          const uint8_t* w, size_t w_row_bytes, float* y,
                                          int64_t ldy) {
  float acc[R][C] = {};
  SuperBlock sb;
  for (int64_t b = 0; b < x_row_blocks; ++b) {
    for (int j = 0; j < C; ++j) {
      unpack(T, w + j * w_row_bytes, b, &sb);
      for (int i = 0; i < R; ++i) {
        const BlockQ8_K& xb = x[i * x_row_blocks + b];
        int32_t s = 0, mins = 0;
        for (int g = 0; g < kSuperBlockGroups; ++g) {
          int32_t group = 0;
          for (int k = 16 * g; k < 16 * g + 16; ++k) group += sb.q[k] * xb.qs[k];
          s += sb.scale[g] * group;
          mins += sb.min[g] * xb.bsums[g];
        }
        acc[i][j] = std::fma(static_cast<float>(s), xb.d * sb.d, acc[i][j]);
        if constexpr (T == DType::Q2_K || T == DType::Q4_K || T == DType::Q5_K) {
          acc[i][j] = std::fma(static_cast<float>(mins), -(xb.d * sb.dmin), acc[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) y[i * ldy + j] = acc[i][j];
  }
}

}  // namespace

void quantize_row_scalar(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ8_0BlockSize; ++b) {
    const float* xb = x + b * kQ8_0BlockSize;
    float max = 0.0f;
    for (int k = 0; k < kQ8_0BlockSize; ++k) max = std::fmax(max, std::fabs(xb[k]));
    const float scale = max != 0.0f ? 127.0f / max : 0.0f;
    y[b].d = fp32_to_fp16(max / 127.0f);
    for (int k = 0; k < kQ8_0BlockSize; ++k) {
      const float q = std::nearbyint(xb[k] * scale);  // ties to even, as the SIMD round
      // NaN (from an infinite input) becomes -128, as the SIMD conversion makes it.
      y[b].qs[k] = static_cast<int8_t>(q >= -128.0f && q <= 127.0f ? static_cast<int>(q) : -128);
    }
  }
}

bool int8_tiles_scalar(DType type, Int8Tiles* tiles) {
  return for_int8_weight_dtype(type, [&]<DType T>() {
    set_tiles<kTileRows, kTileCols>(tiles, []<int R, int C>() { return &int8_tile<T, R, C>; });
  });
}

bool q8_1_tiles_scalar(DType type, Q8_1Tiles* tiles) {
  const auto fill = [&]<DType T>() {
    set_tiles<kTileRows, kTileCols>(tiles, []<int R, int C>() { return &q8_1_tile<T, R, C>; });
  };
  if (type == DType::Q4_1) return fill.template operator()<DType::Q4_1>(), true;
  if (type == DType::Q5_1) return fill.template operator()<DType::Q5_1>(), true;
  return false;
}

bool super_block_tiles_scalar(DType type, SuperBlockTiles* tiles) {
  return for_super_block_dtype(type, [&]<DType T>() {
    set_tiles<kTileRows, kTileCols>(tiles,
                                    []<int R, int C>() { return &super_block_tile<T, R, C>; });
  });
}

bool matmul_tiles_scalar(DType type, MatmulTiles* tiles) {
  return for_weight_dtype(type, [&]<DType T>() {
    set_tiles<kTileRows, kTileCols>(tiles, []<int R, int C>() { return &typed_tile<T, R, C>; });
  });
}

}  // namespace moon::kernels::detail
