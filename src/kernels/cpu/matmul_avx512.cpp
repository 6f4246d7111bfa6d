// AVX-512 matmul tiles: the fp32 ones (matmul_simd.h on 16 lanes) and the int8 ones for CPUs
// without VNNI (matmul_int8_simd.h with maddubs; matmul_avx512_vnni.cpp has the others).
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512
#include "kernels/cpu/matmul_int8_simd.h"
#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/matmul_super_block_simd.h"

namespace moon::kernels::detail {

bool matmul_tiles_avx512(DType type, MatmulTiles* tiles) {
  // 4 x 4 accumulators + 4 weight vectors fit the 32 registers.
  return simd_tiles<Avx512, 4>(type, tiles);
}

bool int8_tiles_avx512(DType type, Int8Tiles* tiles) {
  if (cpu_features().avx512_vnni) return int8_tiles_avx512_vnni(type, tiles);
  return simd_int8_tiles<DotMaddubs, 4, 4>(type, tiles);
}

bool int8_decode_tiles_avx512(DType type, Int8Tiles* tiles) {
  if (cpu_features().avx512_vnni) return int8_decode_tiles_avx512_vnni(type, tiles);
  return simd_int8_tiles<DotMaddubs, 2, 8>(type, tiles);
}

bool super_block_tiles_avx512(DType type, SuperBlockTiles* tiles) {
  return simd_super_block_tiles<4, 4>(type, tiles);
}

bool super_block_decode_tiles_avx512(DType type, SuperBlockTiles* tiles) {
  if (cpu_features().avx512_vnni && super_block_decode_tiles_avx512_vnni(type, tiles)) return true;
  return super_block_tiles_avx512(type, tiles);
}

void quantize_row_avx512(const float* x, BlockQ8_0* y, int64_t n) {
  quantize_row_simd<Avx512>(x, y, n);
}

}  // namespace moon::kernels::detail
