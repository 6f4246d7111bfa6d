// The SIMD fp32 matmul tiles for the plain weight dtypes (F32, F16, BF16), written once over a
// vector type S (see simd.h for how a level's .cpp instantiates them): S::kLanes fp32 lanes
// per step, weights widened to fp32 in registers. Q8_0 and Q4_0 take the int8 path
// (matmul_int8_simd.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul_tiles.h"
#include "kernels/cpu/simd.h"

namespace moon::kernels::detail {
namespace {

// Every acc[i][j] gets the same operations in the same order whatever R and C are: one FMA
// per S::kLanes elements of k, ascending, then one fixed horizontal sum (batch invariance).
template <class S, DType T, int R, int C>
MOON_SIMD_TARGET void tile(const float* x, int64_t k_dim, const uint8_t* w, size_t w_row_bytes,
                           float* y, int64_t ldy) {
  using Vec = typename S::Vec;
  constexpr int kLanes = S::kLanes;
  Vec acc[R][C];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) acc[i][j] = S::zero();
  }
  Vec wv[C];
  int64_t k = 0;
  for (; k + kLanes <= k_dim; k += kLanes) {
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) wv[j] = load_plain<S, T>(w + j * w_row_bytes, k);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const Vec xv = S::load(x + i * k_dim + k);
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) acc[i][j] = S::fmadd(xv, wv[j], acc[i][j]);
    }
  }
  if (k < k_dim) {  // zero-filled lanes leave the sums unchanged
    const typename S::Tail tail = S::tail(k_dim - k);
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) wv[j] = load_plain<S, T>(w + j * w_row_bytes, k, tail);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const Vec xv = S::load(x + i * k_dim + k, tail);
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) acc[i][j] = S::fmadd(xv, wv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) y[i * ldy + j] = S::reduce_add(acc[i][j]);
  }
}

// Fills `tiles` for weight dtype `type` with Rows x 4 tiles (Rows: as many activation rows
// as the level's registers hold accumulators for); false for a dtype matmul does not take.
template <class S, int Rows>
bool simd_tiles(DType type, MatmulTiles* tiles) {
  return for_weight_dtype(type, [&]<DType T>() {
    set_tiles<Rows, 4>(tiles, []<int R, int C>() { return &tile<S, T, R, C>; });
  });
}

}  // namespace
}  // namespace moon::kernels::detail
