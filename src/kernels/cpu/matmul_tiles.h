// Internal to the matmul kernel: the register tiles each instruction-set level provides.
//
// A tile computes a small block of outputs, rows x columns, each as one full dot product
// over K. Every output element gets its own accumulator and the same sequence of
// operations in every tile shape, which is what makes matmul batch invariant: a row's
// result cannot depend on which tile (or thread) computed it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace moon::kernels::detail {

// y[i * ldy + j] = dot(x row i, weight row j) for i < tile rows, j < tile columns.
// x: [rows, k_dim] contiguous; weight row j starts at w + j * w_row_bytes.
using MatmulTileFn = void (*)(const float* x, int64_t k_dim, const uint8_t* w, size_t w_row_bytes,
                              float* y, int64_t ldy);

inline constexpr int kMaxTileRows = 4;

struct MatmulTiles {
  int rows = 0;                                // activation rows of a full tile (<= kMaxTileRows)
  int cols = 0;                                // weight rows of a wide tile
  MatmulTileFn wide[kMaxTileRows + 1] = {};    // [r]: r x cols tile, r in 1..rows
  MatmulTileFn narrow[kMaxTileRows + 1] = {};  // [r]: r x 1 tile, for leftover weight rows
};

// The tiles for weight dtype `type` at each level; false when the level lacks that dtype.
bool matmul_tiles_scalar(DType type, MatmulTiles* tiles);
bool matmul_tiles_avx2(DType type, MatmulTiles* tiles);
bool matmul_tiles_avx512(DType type, MatmulTiles* tiles);

}  // namespace moon::kernels::detail
