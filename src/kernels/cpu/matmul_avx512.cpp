// AVX-512 matmul tiles: 16 fp32 lanes per step, weights widened to fp32 in registers.
#include "kernels/cpu/matmul_tiles.h"
#include "kernels/cpu/simd_avx512.h"
#include "kernels/dispatch.h"

namespace moon::kernels::detail {
namespace {

constexpr int kLanes = 16;
constexpr int kTileRows = 4;  // 4 x 4 accumulators + 4 weight vectors fit the 32 registers
constexpr int kTileCols = 4;

// Every acc[i][j] gets the same operations in the same order whatever R and C are: one FMA
// per 16 elements of k, ascending, then one fixed horizontal sum (batch invariance).
template <DType T, int R, int C>
MOON_TARGET_AVX512 void tile(const float* x, int64_t k_dim, const uint8_t* w, size_t w_row_bytes,
                             float* y, int64_t ldy) {
  __m512 acc[R][C];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  __m512 wv[C];
  if constexpr (T == DType::Q8_0 || T == DType::Q4_0) {
    const int64_t num_blocks = k_dim / 32;
    for (int64_t b = 0; b < num_blocks; ++b) {
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 16
        for (int j = 0; j < C; ++j) wv[j] = avx512_load_block_half<T>(w + j * w_row_bytes, b, h);
        const int64_t k = b * 32 + h * kLanes;
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
          const __m512 xv = _mm512_loadu_ps(x + i * k_dim + k);
#pragma GCC unroll 16
          for (int j = 0; j < C; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
      }
    }
  } else {
    int64_t k = 0;
    for (; k + kLanes <= k_dim; k += kLanes) {
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) wv[j] = avx512_load_plain<T>(w + j * w_row_bytes, k);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m512 xv = _mm512_loadu_ps(x + i * k_dim + k);
#pragma GCC unroll 16
        for (int j = 0; j < C; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
      }
    }
    if (k < k_dim) {  // zero-filled lanes leave the sums unchanged
      const __mmask16 mask = avx512_tail_mask(k_dim - k);
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) wv[j] = avx512_load_plain_masked<T>(w + j * w_row_bytes, k, mask);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * k_dim + k);
#pragma GCC unroll 16
        for (int j = 0; j < C; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) y[i * ldy + j] = _mm512_reduce_add_ps(acc[i][j]);
  }
}

template <DType T>
void fill(MatmulTiles* t) {
  t->rows = kTileRows;
  t->cols = kTileCols;
  t->wide[1] = &tile<T, 1, kTileCols>;
  t->wide[2] = &tile<T, 2, kTileCols>;
  t->wide[3] = &tile<T, 3, kTileCols>;
  t->wide[4] = &tile<T, 4, kTileCols>;
  t->narrow[1] = &tile<T, 1, 1>;
  t->narrow[2] = &tile<T, 2, 1>;
  t->narrow[3] = &tile<T, 3, 1>;
  t->narrow[4] = &tile<T, 4, 1>;
}

}  // namespace

bool matmul_tiles_avx512(DType type, MatmulTiles* tiles) {
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
