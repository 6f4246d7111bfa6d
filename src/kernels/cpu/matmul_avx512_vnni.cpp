// The int8 tiles with AVX-512 VNNI: vpdpbusd makes the lane sums in one instruction
// (matmul_int8_simd.h says why the bits equal the maddubs tiles').
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512_VNNI
#include "kernels/cpu/matmul_int8_simd.h"

namespace moon::kernels::detail {
namespace {

// vpdpbusd multiplies unsigned by signed bytes as maddubs does, adding each lane's four
// products into int32 without saturating.
struct DotVnni {
  MOON_SIMD_TARGET static __m256i dot(__m256i w, __m256i x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                               _mm256_sign_epi8(x, w));
  }
};

}  // namespace

bool int8_tiles_avx512_vnni(DType type, Int8Tiles* tiles) {
  return simd_int8_tiles<DotVnni, 4, 4>(type, tiles);
}

bool int8_decode_tiles_avx512_vnni(DType type, Int8Tiles* tiles) {
  return simd_int8_tiles<DotVnni, 2, 8>(type, tiles);
}

}  // namespace moon::kernels::detail
