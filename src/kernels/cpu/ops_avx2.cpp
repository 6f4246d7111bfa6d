// AVX2 bodies of the element-wise and row-wise kernels (ops_simd.h on 8 lanes).
#include "kernels/cpu/simd_avx2.h"
#define MOON_SIMD_TARGET MOON_TARGET_AVX2
#include "kernels/cpu/ops_simd.h"

namespace moon::kernels::detail {

const OpsImpl& ops_avx2() {
  return simd_ops<Avx2>();
}

}  // namespace moon::kernels::detail
