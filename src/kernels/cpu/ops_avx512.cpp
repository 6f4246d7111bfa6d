// AVX-512 bodies of the element-wise and row-wise kernels (ops_simd.h on 16 lanes).
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512
#include "kernels/cpu/ops_simd.h"

namespace moon::kernels::detail {

const OpsImpl& ops_avx512() {
  return simd_ops<Avx512>();
}

}  // namespace moon::kernels::detail
