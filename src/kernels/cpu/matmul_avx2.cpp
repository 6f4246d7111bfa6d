// AVX2 + FMA matmul tiles (matmul_simd.h on 8 lanes).
#include "kernels/cpu/simd_avx2.h"
#define MOON_SIMD_TARGET MOON_TARGET_AVX2
#include "kernels/cpu/matmul_simd.h"

namespace moon::kernels::detail {

bool matmul_tiles_avx2(DType type, MatmulTiles* tiles) {
  // 2 x 4 accumulators + 4 weights + x fit the 16 registers.
  return simd_tiles<Avx2, 2>(type, tiles);
}

}  // namespace moon::kernels::detail
