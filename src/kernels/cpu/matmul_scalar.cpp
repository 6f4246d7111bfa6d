// Portable matmul tiles for CPUs without AVX2. Each output accumulates in fp32 in increasing
// k, exactly like the reference, but a tile dequantizes each 32-element piece of a weight
// row once and uses it for all of its activation rows.
#include <algorithm>

#include "kernels/cpu/matmul_tiles.h"
#include "tensor/convert.h"
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

}  // namespace

bool matmul_tiles_scalar(DType type, MatmulTiles* tiles) {
  return for_weight_dtype(type, [&]<DType T>() {
    set_tiles<kTileRows, kTileCols>(tiles, []<int R, int C>() { return &typed_tile<T, R, C>; });
  });
}

}  // namespace moon::kernels::detail
