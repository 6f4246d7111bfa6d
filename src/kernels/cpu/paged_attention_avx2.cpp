// Paged attention bodies for AVX2 (paged_attention_simd.h on 8 lanes).
#include "kernels/cpu/simd_avx2.h"
#define MOON_SIMD_TARGET MOON_TARGET_AVX2
#include "kernels/cpu/paged_attention_simd.h"

namespace moon::kernels::detail {

const PagedAttentionImpl& paged_attention_avx2() {
  return simd_paged_attention<Avx2>();
}

}  // namespace moon::kernels::detail
