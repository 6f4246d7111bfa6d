// What the VNNI panel kernels share (matmul_vnni_panels.cpp for the Q8_0 kind,
// matmul_vnni_super_block_panels.cpp for the K-quants): the transpose that packs a panel of
// 16 weight rows so that one 512-bit register holds the same 4-byte group of every row.
#pragma once

#ifndef MOON_SIMD_TARGET
#error "define MOON_SIMD_TARGET to the including file's target attribute first (see simd.h)"
#endif

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/matmul_tiles.h"

namespace moon::kernels::detail {
namespace {

// out[k][r] = rows[r][k] for the panel's rows r and 4-byte groups k: one gather per group,
// from L1.
template <int kDwords>
MOON_SIMD_TARGET inline void transpose_to_lanes(const uint32_t (&rows)[kVnniPanelRows][kDwords],
                                                uint32_t (*out)[kVnniPanelRows]) {
  const __m512i index =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(kDwords));
#pragma GCC unroll 8
  for (int k = 0; k < kDwords; ++k) {
    _mm512_store_si512(out[k], _mm512_i32gather_epi32(index, &rows[0][k], 4));
  }
}

}  // namespace
}  // namespace moon::kernels::detail
