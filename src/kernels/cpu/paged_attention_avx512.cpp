// Paged attention bodies for AVX-512 (paged_attention_simd.h on 16 lanes).
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512
#include "kernels/cpu/paged_attention_simd.h"

namespace moon::kernels::detail {

const PagedAttentionImpl& paged_attention_avx512() {
  return simd_paged_attention<Avx512>();
}

}  // namespace moon::kernels::detail
