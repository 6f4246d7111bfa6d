// Internal to the matmul kernel: the register tiles each instruction-set level provides.
//
// A tile computes a small block of outputs, rows x columns, each as one full dot product
// over K. Every output element gets its own accumulator and the same sequence of
// operations in every tile shape, which is what makes matmul batch invariant: a row's
// result cannot depend on which tile (or thread) computed it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "tensor/dtype.h"
#include "tensor/quant_k.h"
#include "tensor/quant_legacy.h"
#include "tensor/quant_q8_0.h"

namespace moon::kernels::detail {

// y[i * ldy + j] = dot(x row i, weight row j) for i < tile rows, j < tile columns.
// x: [rows, k_dim] contiguous; weight row j starts at w + j * w_row_bytes.
using MatmulTileFn = void (*)(const float* x, int64_t k_dim, const uint8_t* w, size_t w_row_bytes,
                              float* y, int64_t ldy);

// The int8 path's tile: the same, with x quantized (see QuantizedRows in matmul.h), row i's
// blocks at x + i * x_row_blocks.
using Int8TileFn = void (*)(const BlockQ8_0* x, int64_t x_row_blocks, const uint8_t* w,
                            size_t w_row_bytes, float* y, int64_t ldy);

// The same for the other activation blocks: Q8_1 for Q4_1 and Q5_1 weights, Q8_K for the
// super-block formats (matmul.h states their rules).
using Q8_1TileFn = void (*)(const BlockQ8_1* x, int64_t x_row_blocks, const uint8_t* w,
                            size_t w_row_bytes, float* y, int64_t ldy);
using SuperBlockTileFn = void (*)(const BlockQ8_K* x, int64_t x_row_blocks, const uint8_t* w,
                                  size_t w_row_bytes, float* y, int64_t ldy);

inline constexpr int kMaxTileRows = 4;

template <class Fn>
struct Tiles {
  int rows = 0;                      // activation rows of a full tile (<= kMaxTileRows)
  int cols = 0;                      // weight rows of a wide tile
  Fn wide[kMaxTileRows + 1] = {};    // [r]: r x cols tile, r in 1..rows
  Fn narrow[kMaxTileRows + 1] = {};  // [r]: r x 1 tile, for leftover weight rows
};
using MatmulTiles = Tiles<MatmulTileFn>;
using Int8Tiles = Tiles<Int8TileFn>;
using Q8_1Tiles = Tiles<Q8_1TileFn>;
using SuperBlockTiles = Tiles<SuperBlockTileFn>;

// The fp32 tiles for weight dtype `type` at each level; false when the level lacks that
// dtype.
bool matmul_tiles_scalar(DType type, MatmulTiles* tiles);
bool matmul_tiles_avx2(DType type, MatmulTiles* tiles);
bool matmul_tiles_avx512(DType type, MatmulTiles* tiles);

// The int8 tiles for a Q8_0, Q4_0 or Q5_0 weight at each level, and the matching activation
// quantizer (one row of n values, n a multiple of 32, to n / 32 blocks). Every level's tiles
// give the same bits (see matmul.h).
bool int8_tiles_scalar(DType type, Int8Tiles* tiles);
bool int8_tiles_avx2(DType type, Int8Tiles* tiles);
bool int8_tiles_avx512(DType type, Int8Tiles* tiles);
bool int8_tiles_avx512_vnni(DType type, Int8Tiles* tiles);  // CPUs with AVX-512 VNNI
// Wider tiles for one or two activation rows (decode): eight weight rows streaming at once
// measured 11-20% faster than four from DRAM, and slower than 4 x 4 on batches.
inline constexpr int64_t kDecodeMaxRows = 2;
bool int8_decode_tiles_avx512(DType type, Int8Tiles* tiles);
bool int8_decode_tiles_avx512_vnni(DType type, Int8Tiles* tiles);

// The AMX kernel (matmul_amx.cpp; only where amx_int8_enabled()): y rows [0, m) x columns
// [0, 32 * panels) for weight rows [0, 32 * panels) of a Q8_0 or Q4_0 weight, m a multiple of
// 16; the same bits as the int8 tiles. False for other dtypes.
inline constexpr int64_t kAmxPanelRows = 32;
inline constexpr int64_t kAmxMinRows = 16;
bool amx_int8_columns(DType type, const BlockQ8_0* x, int64_t m, int64_t row_blocks,
                      const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y, int64_t ldy);
// The VNNI batch kernel (matmul_vnni_panels.cpp; for CPUs with AVX-512 VNNI and no AMX):
// y rows [0, m) x columns [0, 16 * panels) for weight rows [0, 16 * panels) of a Q8_0, Q4_0
// or Q5_0 weight, any m; the same bits as the int8 tiles. False for other dtypes. Used from
// kVnniMinRows activation rows: below, the decode tiles stream the weights faster.
inline constexpr int kVnniPanelRows = 16;
inline constexpr int64_t kVnniMinRows = 8;
bool vnni_int8_columns(DType type, const BlockQ8_0* x, int64_t m, int64_t row_blocks,
                       const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y, int64_t ldy);
// The same for the super-block formats Q2_K to Q6_K (matmul_vnni_panels.cpp too),
// with nsb super-blocks per row; false for IQ4_XS, which stays on the tiles.
bool vnni_super_block_columns(DType type, const BlockQ8_K* x, int64_t m, int64_t nsb,
                              const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                              int64_t ldy);
// Q4_1 and Q5_1 weights (one level: files of these types are rare).
bool q8_1_tiles_scalar(DType type, Q8_1Tiles* tiles);
// The super-block formats.
bool super_block_tiles_scalar(DType type, SuperBlockTiles* tiles);
bool super_block_tiles_avx2(DType type, SuperBlockTiles* tiles);
bool super_block_tiles_avx512(DType type, SuperBlockTiles* tiles);
// For at most kDecodeMaxRows activation rows: the VNNI decode tiles where the CPU has VNNI
// and the format has them (Q4_K, Q5_K, Q6_K), else the AVX-512 tiles.
bool super_block_decode_tiles_avx512(DType type, SuperBlockTiles* tiles);
bool super_block_decode_tiles_avx512_vnni(DType type, SuperBlockTiles* tiles);
// The AMX kernel for the K-quants, Q2_K to Q6_K, and IQ4_XS (matmul_amx_super_block.cpp; only where
// amx_int8_enabled()): y rows [0, m) x columns [0, 16 * panels) for weight rows
// [0, 16 * panels), m a multiple of 16, nsb super-blocks per row; the super-block tiles'
// bits. False for other dtypes.
inline constexpr int64_t kAmxSuperBlockPanelRows = 16;
bool amx_super_block_columns(DType type, const BlockQ8_K* x, int64_t m, int64_t nsb,
                             const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                             int64_t ldy);
void quantize_row_scalar(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_avx2(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_avx512(const float* x, BlockQ8_0* y, int64_t n);

// Calls fill.template operator()<T>() with `type` as the template argument T, for the
// dtypes the fp32 tiles take; false for any other.
template <class Fill>
bool for_weight_dtype(DType type, Fill&& fill) {
  const auto any_of = [&]<DType... T>() {
    return ((type == T && (fill.template operator()<T>(), true)) || ...);
  };
  return any_of.template operator()<DType::F32, DType::F16, DType::BF16>();
}

// The same for the int8 tiles' weight dtypes.
template <class Fill>
bool for_int8_weight_dtype(DType type, Fill&& fill) {
  const auto any_of = [&]<DType... T>() {
    return ((type == T && (fill.template operator()<T>(), true)) || ...);
  };
  return any_of.template operator()<DType::Q8_0, DType::Q4_0, DType::Q5_0>();
}

// The same for the super-block formats.
template <class Fill>
bool for_super_block_dtype(DType type, Fill&& fill) {
  const auto any_of = [&]<DType... T>() {
    return ((type == T && (fill.template operator()<T>(), true)) || ...);
  };
  return any_of.template
  operator()<DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS>();
}

// A level's tile set: Rows x Cols wide tiles and Rows x 1 narrow ones, with wide[r] =
// make.template operator()<r, Cols>() and narrow[r] = make.template operator()<r, 1>() for
// every r in 1..Rows.
template <int Rows, int Cols, class Fn, class Make>
void set_tiles(Tiles<Fn>* tiles, Make&& make) {
  static_assert(Rows >= 1 && Rows <= kMaxTileRows);
  tiles->rows = Rows;
  tiles->cols = Cols;
  const auto set = [&]<int... I>(std::integer_sequence<int, I...>) {
    ((tiles->wide[I + 1] = make.template operator()<I + 1, Cols>()), ...);
    ((tiles->narrow[I + 1] = make.template operator()<I + 1, 1>()), ...);
  };
  set(std::make_integer_sequence<int, Rows>{});
}

}  // namespace moon::kernels::detail
