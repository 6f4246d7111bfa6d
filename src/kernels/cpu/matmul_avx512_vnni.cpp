// The int8 tiles with AVX-512 VNNI: vpdpbusd makes the lane sums in one instruction
// (matmul_int8_simd.h says why the bits equal the maddubs tiles').
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512_VNNI
#include "kernels/cpu/matmul_int8_simd.h"

namespace moon::kernels::detail {
namespace {

// vpdpbusd multiplies unsigned by signed bytes, adding each lane's four products into int32
// without saturating, so weights go in offset to unsigned (w + bias) and each lane starts at
// -bias times its four activations: one instruction per block pair instead of the two
// sign flips and the multiply that signed weights need.
struct DotVnni {
  static constexpr bool kUnsignedWeights = true;
  MOON_SIMD_TARGET static __m256i start_lanes(__m256i x, int bias) {
    const __m256i x_sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), x);
    return _mm256_mullo_epi32(x_sums, _mm256_set1_epi32(-bias));
  }
  MOON_SIMD_TARGET static __m256i dot_unsigned(__m256i start, __m256i w_unsigned, __m256i x) {
    return _mm256_dpbusd_epi32(start, w_unsigned, x);
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
