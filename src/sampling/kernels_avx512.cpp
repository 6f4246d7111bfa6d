// AVX-512 versions of the sampler's kernels (see kernels.h): the traits that kernels_simd.h's
// loops run on (simd::Avx512's plain operations plus vreduceps/vscalefps around the shared
// exp2 polynomial of util/simd/vec_exp.h), and a top-N collector kept in registers. Compiled for
// any x86-64 with per-function target attributes; only called when the CPU has AVX-512 F/BW/VL/DQ.
#include <cmath>

#include "sampling/kernels.h"
#include "util/simd/target.h"

#if MOON_HAVE_X86
#include "util/simd/vec_avx512.h"  // first: see its note on <immintrin.h>

#define MOON_SIMD_TARGET MOON_TARGET_AVX512
#include "sampling/kernels_simd.h"

namespace moon::sampling_internal {
namespace {

// The best `wanted` (<= 20) logits so far, sorted best first (ties: lower id first) across
// two registers' worth of lanes, kept in memory between the rare calls that change it.
// Inserting shifts the tail with two permutes instead of sifting a heap, so it has no
// data-dependent branches.
struct TopLanes {
  __m512 value[2];
  __m512i id[2];
  int wanted;
  int count;
  float bar;  // what a logit must beat to get in: -inf until `wanted` are held

  MOON_TARGET_AVX512 void start(const TopCollector& out) {
    value[0] = value[1] = _mm512_set1_ps(kNegInf);
    id[0] = id[1] = _mm512_setzero_si512();
    wanted = out.wanted;
    count = 0;
    bar = kNegInf;
  }
  float current_bar() const { return bar; }

  MOON_TARGET_AVX512 void insert(float v, int32_t new_id) {
    const __m512 vv = _mm512_set1_ps(v);
    // Entries >= v stay ahead of it: ids arrive in increasing order, so ties keep the earlier.
    const int pos = __builtin_popcount(_mm512_cmp_ps_mask(value[0], vv, _CMP_GE_OQ)) +
                    __builtin_popcount(_mm512_cmp_ps_mask(value[1], vv, _CMP_GE_OQ));
    const __m512i iota_lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i iota_hi = _mm512_add_epi32(iota_lo, _mm512_set1_epi32(16));
    const __m512i p = _mm512_set1_epi32(pos);
    // Lane L takes lane L below pos, v at pos, lane L-1 above it (of the 32-lane pair).
    const __m512i src_lo = _mm512_mask_sub_epi32(iota_lo, _mm512_cmpgt_epi32_mask(iota_lo, p),
                                                 iota_lo, _mm512_set1_epi32(1));
    const __m512i src_hi = _mm512_mask_sub_epi32(iota_hi, _mm512_cmpgt_epi32_mask(iota_hi, p),
                                                 iota_hi, _mm512_set1_epi32(1));
    const __mmask16 at_lo = _mm512_cmpeq_epi32_mask(iota_lo, p);
    const __mmask16 at_hi = _mm512_cmpeq_epi32_mask(iota_hi, p);
    const __m512 v_lo = _mm512_permutex2var_ps(value[0], src_lo, value[1]);
    const __m512 v_hi = _mm512_permutex2var_ps(value[0], src_hi, value[1]);
    const __m512i i_lo = _mm512_permutex2var_epi32(id[0], src_lo, id[1]);
    const __m512i i_hi = _mm512_permutex2var_epi32(id[0], src_hi, id[1]);
    value[0] = _mm512_mask_mov_ps(v_lo, at_lo, vv);
    value[1] = _mm512_mask_mov_ps(v_hi, at_hi, vv);
    id[0] = _mm512_mask_mov_epi32(i_lo, at_lo, _mm512_set1_epi32(new_id));
    id[1] = _mm512_mask_mov_epi32(i_hi, at_hi, _mm512_set1_epi32(new_id));
    if (count < wanted) ++count;
    if (count == wanted) {
      alignas(64) float values[32];
      _mm512_store_ps(values, value[0]);
      _mm512_store_ps(values + 16, value[1]);
      bar = values[wanted - 1];
    }
  }

  // Offers the logits of x[0, n) that beat the bar, `first_id` being x[0]'s. Out of line and
  // rare (only for blocks holding such a logit), so the hot loop keeps its registers.
  [[gnu::noinline]] MOON_TARGET_AVX512 void collect(const float* x, int64_t n, int64_t first_id) {
    for (int64_t k = 0; k < n; k += 16) {
      const int64_t left = n - k < 16 ? n - k : 16;
      const __m512 v =
          simd::Avx512::load_or(x + k, simd::Avx512::tail(left), _mm512_set1_ps(kNegInf));
      uint32_t beat = _mm512_cmp_ps_mask(v, _mm512_set1_ps(bar), _CMP_GT_OQ);
      while (beat) {
        const int lane = __builtin_ctz(beat);
        beat &= beat - 1;
        if (x[k + lane] > bar) insert(x[k + lane], static_cast<int32_t>(first_id + k + lane));
      }
    }
  }

  MOON_TARGET_AVX512 void finish(TopCollector& out) const {
    _mm512_storeu_ps(out.value, value[0]);
    _mm512_storeu_ps(out.value + 16, value[1]);
    _mm512_storeu_si512(out.id, id[0]);
    _mm512_storeu_si512(out.id + 16, id[1]);
    out.size = count;
  }
};

struct Avx512 : simd::Avx512 {
  using Top = TopLanes;
  static constexpr int kBlockVecs = 4;  // one block: 64 logits, loaded once, kept in registers
  static constexpr float kExpArgMin = -104.0f;

  // 2^(v - 1/2) for v <= 1/2 (or a little above). vreduceps gives t = v - floor(v) in
  // [0, 1) exactly and vscalefps multiplies by 2^floor(v) itself, so there is no clamp: -inf
  // gives 0 (vreduceps maps it to 0, vscalefps by -inf gives 0) and NaN stays NaN, which the
  // caller detects once per row. On Zen 4 this balances the FMA pipes (6 ops) against the
  // add pipes (6 cycles); one more operation a vector costs ~11% of the fused pass, which is
  // why exp2_fraction takes v - floor(v) and not a fraction centred on 0 (vscalefps floors).
  MOON_TARGET_AVX512 static Vec exp2_shifted(Vec v) {
    const Vec t = _mm512_reduce_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    return _mm512_scalef_ps(exp2_fraction<Avx512>(t), v);
  }
  MOON_TARGET_AVX512 static Vec add_exp2_shifted(Vec acc, Vec v) {
    return _mm512_add_ps(acc, exp2_shifted(v));
  }

  MOON_TARGET_AVX512 static Vec keep_ge(Vec v, Vec min, Vec e) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, min, _CMP_GE_OQ), e);
  }
};

}  // namespace

void fused_segment_avx512(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out) {
  fused_segment<Avx512>(x, n, base, top_n, out);
}

MOON_TARGET_AVX512 double exp_weights_avx512(const float* x, int64_t n, float max, float inv_temp,
                                             float min_logit, float* w, float* block_sums) {
  return exp_weights<Avx512>(x, n, max, inv_temp, min_logit, w, block_sums);
}

MOON_TARGET_AVX512 uint64_t above_mask_avx512(const float* x, float bar) {
  return above_mask<Avx512>(x, bar);
}

}  // namespace moon::sampling_internal

#endif  // MOON_HAVE_X86 (elsewhere kernels_scalar.cpp never picks this file's kernels)
