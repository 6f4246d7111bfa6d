// AVX-512 versions of the sampler's kernels (see kernels.h): the traits that kernels_simd.h's
// loops run on, and a top-N collector kept in registers. Compiled for any x86-64 with
// per-function target attributes; only called when the CPU has AVX-512 F/BW/VL/DQ.
#include <cmath>

#include "sampling/kernels.h"
#include "util/simd/target.h"

#if MOON_HAVE_X86
// GCC 12's AVX-512 intrinsics pass _mm*_undefined_* values that trip -Wuninitialized once
// inlined; diagnostic state follows source locations, so silencing the header's own lines
// works as long as this is the translation unit's first include of <immintrin.h>.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#define MOON_SIMD_TARGET MOON_TARGET_AVX512
#include "sampling/kernels_simd.h"

namespace moon::sampling_internal {
namespace {

MOON_TARGET_AVX512 inline __mmask16 lanes_below(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

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
      const __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), lanes_below(n - k), x + k);
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

struct Avx512 {
  using Vec = __m512;
  using Tail = __mmask16;
  using Top = TopLanes;
  static constexpr int kLanes = 16;
  static constexpr int kBlockVecs = 4;  // one block: 64 logits, loaded once, kept in registers
  static constexpr float kExpArgMin = -104.0f;

  MOON_TARGET_AVX512 static Vec set1(float v) { return _mm512_set1_ps(v); }
  MOON_TARGET_AVX512 static Vec zero() { return _mm512_setzero_ps(); }
  MOON_TARGET_AVX512 static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  MOON_TARGET_AVX512 static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  MOON_TARGET_AVX512 static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  MOON_TARGET_AVX512 static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  MOON_TARGET_AVX512 static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  MOON_TARGET_AVX512 static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  MOON_TARGET_AVX512 static Vec fmsub(Vec a, Vec b, Vec c) { return _mm512_fmsub_ps(a, b, c); }
  MOON_TARGET_AVX512 static bool any_gt(Vec a, Vec b) {
    return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) != 0;
  }

  // 2^u for u <= 0 (or a little above). vreduceps gives f = u - floor(u) in [0, 1) exactly
  // and vscalefps multiplies by 2^floor(u) itself, so there is no clamp: -inf gives 0
  // (vreduceps maps it to 0, vscalefps by -inf gives 0) and NaN stays NaN, which the caller
  // detects once per row. On Zen 4 this balances the FMA pipes (6 ops) against the add pipes
  // (6 cycles).
  MOON_TARGET_AVX512 static Vec exp2_nonpositive(Vec u) {
    const Vec f = _mm512_reduce_ps(u, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    return _mm512_scalef_ps(exp2_fraction<Avx512>(f), u);
  }

  MOON_TARGET_AVX512 static Vec add_exp2_nonpositive(Vec acc, Vec u) {
    return _mm512_add_ps(acc, exp2_nonpositive(u));
  }

  // Horizontal folds written out: GCC 12's _mm512_reduce_* trip -Wmaybe-uninitialized.
  MOON_TARGET_AVX512 static __m128 max_to_128(Vec v) {
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));  // swap the 256-bit halves
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));  // swap 128-bit pairs
    return _mm512_castps512_ps128(v);
  }
  MOON_TARGET_AVX512 static __m128 add_to_128(Vec v) {
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
    return _mm512_castps512_ps128(v);
  }

  MOON_TARGET_AVX512 static Vec load_padded(const float* x, int64_t left) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), lanes_below(left), x);
  }

  MOON_TARGET_AVX512 static Tail tail(int64_t left) { return lanes_below(left); }
  MOON_TARGET_AVX512 static Vec load_tail(const float* x, int64_t, Tail t) {
    return _mm512_maskz_loadu_ps(t, x);
  }
  MOON_TARGET_AVX512 static Vec keep_ge(Vec v, Vec min, Tail t, Vec e) {
    return _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(t, v, min, _CMP_GE_OQ), e);
  }
  MOON_TARGET_AVX512 static void store_tail(float* w, int64_t, Tail t, Vec e) {
    _mm512_mask_storeu_ps(w, t, e);
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

}  // namespace moon::sampling_internal

#endif  // MOON_HAVE_X86 (elsewhere kernels_scalar.cpp never picks this file's kernels)
