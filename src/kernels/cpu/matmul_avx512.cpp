// AVX-512 matmul tiles (matmul_simd.h on 16 lanes).
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512
#include "kernels/cpu/matmul_simd.h"

namespace moon::kernels::detail {

bool matmul_tiles_avx512(DType type, MatmulTiles* tiles) {
  // 4 x 4 accumulators + 4 weight vectors fit the 32 registers.
  return simd_tiles<Avx512, 4>(type, tiles);
}

}  // namespace moon::kernels::detail
