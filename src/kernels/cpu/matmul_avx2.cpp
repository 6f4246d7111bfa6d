// AVX2 + FMA matmul tiles: the fp32 ones (matmul_simd.h on 8 lanes) and the int8 ones
// (matmul_int8_simd.h with maddubs).
#include "kernels/cpu/simd_avx2.h"
#define MOON_SIMD_TARGET MOON_TARGET_AVX2
#include "kernels/cpu/matmul_int8_simd.h"
#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/matmul_super_block_simd.h"

namespace moon::kernels::detail {

bool matmul_tiles_avx2(DType type, MatmulTiles* tiles) {
  // 2 x 4 accumulators + 4 weights + x fit the 16 registers.
  return simd_tiles<Avx2, 2>(type, tiles);
}

bool int8_tiles_avx2(DType type, Int8Tiles* tiles) {
  // 2 x 4: four weight rows streaming at once keep more memory reads in flight, which decode
  // (one activation row, weights from DRAM) needs most.
  return simd_int8_tiles<DotMaddubs, 2, 4, DotMaddubsUnsigned>(type, tiles);
}

bool super_block_tiles_avx2(DType type, SuperBlockTiles* tiles) {
  return simd_super_block_tiles<4, 4>(type, tiles);
}

void quantize_row_avx2(const float* x, BlockQ8_0* y, int64_t n) {
  quantize_row_simd<Avx2>(x, y, n);
}

}  // namespace moon::kernels::detail
