// AVX2 + FMA matmul tiles: 8 fp32 lanes per step, weights widened to fp32 in registers.
#include <immintrin.h>

#include "kernels/cpu/matmul_tiles.h"
#include "kernels/cpu/simd_avx2.h"
#include "kernels/dispatch.h"

namespace moon::kernels::detail {
namespace {

constexpr int kLanes = 8;
constexpr int kTileRows = 2;  // 2 x 4 accumulators + 4 weights + x fit the 16 registers
constexpr int kTileCols = 4;

// Every acc[i][j] gets the same operations in the same order whatever R and C are: one FMA
// per 8 elements of k, ascending, then one fixed horizontal sum (batch invariance).
template <DType T, int R, int C>
MOON_TARGET_AVX2 void tile(const float* x, int64_t k_dim, const uint8_t* w, size_t w_row_bytes,
                           float* y, int64_t ldy) {
  __m256 acc[R][C];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  __m256 wv[C];
  if constexpr (T == DType::Q8_0 || T == DType::Q4_0) {
    const int64_t num_blocks = k_dim / 32;
    for (int64_t b = 0; b < num_blocks; ++b) {
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
#pragma GCC unroll 16
        for (int j = 0; j < C; ++j) wv[j] = avx2_load_block_quarter<T>(w + j * w_row_bytes, b, c);
        const int64_t k = b * 32 + c * kLanes;
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
          const __m256 xv = _mm256_loadu_ps(x + i * k_dim + k);
#pragma GCC unroll 16
          for (int j = 0; j < C; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
        }
      }
    }
  } else {
    int64_t k = 0;
    for (; k + kLanes <= k_dim; k += kLanes) {
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) wv[j] = avx2_load_plain<T>(w + j * w_row_bytes, k);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m256 xv = _mm256_loadu_ps(x + i * k_dim + k);
#pragma GCC unroll 16
        for (int j = 0; j < C; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
      }
    }
    if (k < k_dim) {  // zero-filled lanes leave the sums unchanged
      const int count = static_cast<int>(k_dim - k);
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) wv[j] = avx2_load_plain_tail<T>(w + j * w_row_bytes, k, count);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m256 xv = _mm256_maskload_ps(x + i * k_dim + k, avx2_tail_mask(count));
#pragma GCC unroll 16
        for (int j = 0; j < C; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) y[i * ldy + j] = avx2_hsum(acc[i][j]);
  }
}

template <DType T>
void fill(MatmulTiles* t) {
  t->rows = kTileRows;
  t->cols = kTileCols;
  t->wide[1] = &tile<T, 1, kTileCols>;
  t->wide[2] = &tile<T, 2, kTileCols>;
  t->narrow[1] = &tile<T, 1, 1>;
  t->narrow[2] = &tile<T, 2, 1>;
}

}  // namespace

bool matmul_tiles_avx2(DType type, MatmulTiles* tiles) {
  switch (type) {
    case DType::F32:
      fill<DType::F32>(tiles);
      return true;
    case DType::F16:
      fill<DType::F16>(tiles);
      return true;
    case DType::BF16:
      fill<DType::BF16>(tiles);
      return true;
    case DType::Q8_0:
      fill<DType::Q8_0>(tiles);
      return true;
    case DType::Q4_0:
      fill<DType::Q4_0>(tiles);
      return true;
    default:
      return false;
  }
}

}  // namespace moon::kernels::detail
