// AVX-512 versions of the sampler's kernels (see kernels.h). Compiled for any x86-64 with
// per-function target attributes; only called when the CPU has AVX-512 F/BW/VL/DQ.
#include <cmath>

#include "sampling/kernels.h"
#include "sampling/simd_target.h"

#if MOON_SAMPLING_HAVE_X86
// GCC 12's AVX-512 intrinsics pass _mm*_undefined_* values that trip -Wuninitialized once
// inlined; diagnostic state follows source locations, so silencing the header's own lines
// works as long as this is the translation unit's first include of <immintrin.h>.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

namespace moon::sampling_internal {
namespace {

constexpr int kLanes = 16;
constexpr int kBlockVecs = 4;  // one block: 64 logits, loaded once and kept in registers
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// 2^u for u <= 0 (or a little above). vreduceps gives f = u - floor(u) in [0, 1) exactly and
// vscalefps multiplies by 2^floor(u) itself, so there is no clamp: -inf gives 0 (vreduceps
// maps it to 0, vscalefps by -inf gives 0) and NaN stays NaN, which the caller detects once
// per row. On Zen 4 this balances the FMA pipes (6 ops) against the add pipes (6 cycles).
MOON_SAMPLING_AVX512 inline __m512 exp2_nonpositive(__m512 u) {
  const __m512 f = _mm512_reduce_ps(u, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kExp2C5), f, _mm512_set1_ps(kExp2C4));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C3));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C2));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C1));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, u);
}

// e^d for d <= 0, with NaN giving 0 too (vmaxps returns its second operand on NaN).
MOON_SAMPLING_AVX512 inline __m512 exp_nonpositive(__m512 d) {
  d = _mm512_max_ps(d, _mm512_set1_ps(-104.0f));
  return exp2_nonpositive(_mm512_mul_ps(d, _mm512_set1_ps(kLog2e)));
}

// Horizontal reductions written out: GCC 12's _mm512_reduce_* trip -Wmaybe-uninitialized.
MOON_SAMPLING_AVX512 inline __m128 fold_to_128(__m512 v, bool use_max) {
  const __m512 a = _mm512_shuffle_f32x4(v, v, 0x4E);  // swap the 256-bit halves
  v = use_max ? _mm512_max_ps(v, a) : _mm512_add_ps(v, a);
  const __m512 b = _mm512_shuffle_f32x4(v, v, 0xB1);  // swap 128-bit pairs
  v = use_max ? _mm512_max_ps(v, b) : _mm512_add_ps(v, b);
  return _mm512_castps512_ps128(v);
}

MOON_SAMPLING_AVX512 inline float hmax(__m512 v) {
  __m128 m = fold_to_128(v, true);
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

MOON_SAMPLING_AVX512 inline float hsum(__m512 v) {
  __m128 s = fold_to_128(v, false);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// The running state of the fused pass over one segment. Every lane shares one running max
// m (so it rarely changes and its branch predicts well); the sums hold Σ 2^(x·log2e - h)
// with h = fl(m·log2e), so each exponent is one FMA from the logit, and the constant
// factor 2^(h - m·log2e) left by rounding h is applied once, in double, at the end (with
// the same float log2e as the FMAs, so that its own rounding cancels too).
struct State {
  __m512 max;   // m, broadcast; starts at -FLT_MAX so -inf logits give 2^-inf = 0
  __m512 h;     // h, broadcast
  __m512 sum0;  // two accumulators halve the add chain
  __m512 sum1;
  float m;
  float h_scalar;
  int64_t block;  // start of the block where m first appeared
};

// One block of kVecs vectors already in registers: the block max first (the NaN-proof
// max(v, acc) keeps acc when v is NaN), then every exponential against the updated m.
// With kTop, returns whether some logit beat `threshold` (the top-N heap's entry bar).
template <int kVecs, bool kTop>
MOON_SAMPLING_AVX512 inline bool fused_block(const __m512* v, int64_t start, State& s,
                                             __m512 threshold) {
  __m512 acc;
  bool beat = false;
  if constexpr (kTop) {
    __m512 block_max = _mm512_set1_ps(kNegInf);
    for (int j = 0; j < kVecs; ++j) block_max = _mm512_max_ps(v[j], block_max);
    beat = _mm512_cmp_ps_mask(block_max, threshold, _CMP_GT_OQ) != 0;
    acc = _mm512_max_ps(block_max, s.max);
  } else {
    acc = s.max;
#pragma GCC unroll 16
    for (int j = 0; j < kVecs; ++j) acc = _mm512_max_ps(v[j], acc);
  }
  if (_mm512_cmp_ps_mask(acc, s.max, _CMP_GT_OQ)) {  // a new max: a handful of times per row
    const float m = hmax(acc);
    const float h = m * kLog2e;
    // 0 the first time (no sum yet); std::exp2 would take its slow underflow path.
    const float rescale =
        s.m == std::numeric_limits<float>::lowest() ? 0.0f : std::exp2(s.h_scalar - h);
    s.sum0 = _mm512_mul_ps(s.sum0, _mm512_set1_ps(rescale));
    s.sum1 = _mm512_mul_ps(s.sum1, _mm512_set1_ps(rescale));
    s.m = m;
    s.h_scalar = h;
    s.max = _mm512_set1_ps(m);
    s.h = _mm512_set1_ps(h);
    s.block = start;
  }
#pragma GCC unroll 16
  for (int j = 0; j < kVecs; ++j) {
    const __m512 e = exp2_nonpositive(_mm512_fmsub_ps(v[j], _mm512_set1_ps(kLog2e), s.h));
    if (j % 2 == 0) {
      s.sum0 = _mm512_add_ps(s.sum0, e);
    } else {
      s.sum1 = _mm512_add_ps(s.sum1, e);
    }
  }
  return beat;
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
};

MOON_SAMPLING_AVX512 inline void top_insert(TopLanes& t, float v, int32_t id) {
  const __m512 vv = _mm512_set1_ps(v);
  // Entries >= v stay ahead of it: ids arrive in increasing order, so ties keep the earlier.
  const int pos = __builtin_popcount(_mm512_cmp_ps_mask(t.value[0], vv, _CMP_GE_OQ)) +
                  __builtin_popcount(_mm512_cmp_ps_mask(t.value[1], vv, _CMP_GE_OQ));
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
  const __m512 v_lo = _mm512_permutex2var_ps(t.value[0], src_lo, t.value[1]);
  const __m512 v_hi = _mm512_permutex2var_ps(t.value[0], src_hi, t.value[1]);
  const __m512i i_lo = _mm512_permutex2var_epi32(t.id[0], src_lo, t.id[1]);
  const __m512i i_hi = _mm512_permutex2var_epi32(t.id[0], src_hi, t.id[1]);
  t.value[0] = _mm512_mask_mov_ps(v_lo, at_lo, vv);
  t.value[1] = _mm512_mask_mov_ps(v_hi, at_hi, vv);
  t.id[0] = _mm512_mask_mov_epi32(i_lo, at_lo, _mm512_set1_epi32(id));
  t.id[1] = _mm512_mask_mov_epi32(i_hi, at_hi, _mm512_set1_epi32(id));
  if (t.count < t.wanted) ++t.count;
  if (t.count == t.wanted) {
    alignas(64) float values[32];
    _mm512_store_ps(values, t.value[0]);
    _mm512_store_ps(values + 16, t.value[1]);
    t.bar = values[t.wanted - 1];
  }
}

// Offers the logits of x[0, n) that beat the bar. Out of line and rare (only for blocks
// holding such a logit), so the hot loop keeps its registers.
[[gnu::noinline]] MOON_SAMPLING_AVX512 void collect_block(const float* x, int64_t n, int64_t id,
                                                          TopLanes& top) {
  for (int64_t k = 0; k < n; k += kLanes) {
    const int64_t left = n - k;
    const __mmask16 valid =
        left >= kLanes ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), valid, x + k);
    uint32_t beat = _mm512_cmp_ps_mask(v, _mm512_set1_ps(top.bar), _CMP_GT_OQ);
    while (beat) {
      const int lane = __builtin_ctz(beat);
      beat &= beat - 1;
      if (x[k + lane] > top.bar) top_insert(top, x[k + lane], static_cast<int32_t>(id + k + lane));
    }
  }
}

template <bool kTop>
MOON_SAMPLING_AVX512 void fused_segment_impl(const float* x, int64_t n, int64_t base,
                                             SegmentPartial* out) {
  constexpr float kLowest = std::numeric_limits<float>::lowest();
  State s{_mm512_set1_ps(kLowest),
          _mm512_set1_ps(kLowest),
          _mm512_setzero_ps(),
          _mm512_setzero_ps(),
          kLowest,
          kLowest,
          0};
  TopLanes top;
  if constexpr (kTop) {
    top.value[0] = top.value[1] = _mm512_set1_ps(kNegInf);
    top.id[0] = top.id[1] = _mm512_setzero_si512();
    top.wanted = out->top.wanted;
    top.count = 0;
    top.bar = kNegInf;
  }
  __m512 threshold = _mm512_set1_ps(kNegInf);
  constexpr int64_t kBlock = kLanes * kBlockVecs;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    __m512 v[kBlockVecs];
#pragma GCC unroll 16
    for (int j = 0; j < kBlockVecs; ++j) v[j] = _mm512_loadu_ps(x + i + j * kLanes);
    if (fused_block<kBlockVecs, kTop>(v, i, s, threshold)) {
      collect_block(x + i, kBlock, base + i, top);
      threshold = _mm512_set1_ps(top.bar);
    }
  }
  for (; i < n; i += kLanes) {
    // The ragged end: one vector at a time, the last one padded with -inf.
    const int64_t left = n - i;
    const __mmask16 mask =
        left >= kLanes ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    __m512 v[1] = {_mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), mask, x + i)};
    if (fused_block<1, kTop>(v, i, s, threshold)) {
      collect_block(x + i, left < kLanes ? left : kLanes, base + i, top);
      threshold = _mm512_set1_ps(top.bar);
    }
  }

  if constexpr (kTop) {
    _mm512_storeu_ps(out->top.value, top.value[0]);
    _mm512_storeu_ps(out->top.value + 16, top.value[1]);
    _mm512_storeu_si512(out->top.id, top.id[0]);
    _mm512_storeu_si512(out->top.id + 16, top.id[1]);
    out->top.size = top.count;
  }
  // m still -FLT_MAX: no finite logit (or only -FLT_MAX ones; the caller redoes such rows).
  if (s.m == kLowest) return;
  out->max = s.m;
  out->sum = static_cast<double>(hsum(_mm512_add_ps(s.sum0, s.sum1))) *
             std::exp2(static_cast<double>(s.h_scalar) -
                       static_cast<double>(s.m) * static_cast<double>(kLog2e));
  int64_t k = s.block;
  while (k < n && x[k] != s.m) ++k;
  out->argmax = base + k;
}

}  // namespace

void fused_segment_avx512(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out) {
  out->reset(top_n);
  if (top_n > 0) {
    fused_segment_impl<true>(x, n, base, out);
  } else {
    fused_segment_impl<false>(x, n, base, out);
  }
}

MOON_SAMPLING_AVX512 double exp_weights_avx512(const float* x, int64_t n, float max, float inv_temp,
                                               float min_logit, float* w, float* block_sums) {
  const __m512 vmax = _mm512_set1_ps(max);
  const __m512 vscale = _mm512_set1_ps(inv_temp);
  const __m512 vmin = _mm512_set1_ps(min_logit);
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kWeightBlock) {
    const int64_t end = b + kWeightBlock < n ? b + kWeightBlock : n;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = b; i < end; i += kLanes) {
      const int64_t left = end - i;
      const __mmask16 mask =
          left >= kLanes ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      const __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
      const __mmask16 keep = _mm512_mask_cmp_ps_mask(mask, v, vmin, _CMP_GE_OQ);
      const __m512 e =
          _mm512_maskz_mov_ps(keep, exp_nonpositive(_mm512_mul_ps(_mm512_sub_ps(v, vmax), vscale)));
      _mm512_mask_storeu_ps(w + i, mask, e);
      acc = _mm512_add_ps(acc, e);
    }
    const float sum = hsum(acc);
    block_sums[b / kWeightBlock] = sum;
    total += sum;
  }
  return total;
}

}  // namespace moon::sampling_internal

#else  // not x86: never dispatched to

namespace moon::sampling_internal {
void fused_segment_avx512(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out) {
  fused_segment_scalar(x, n, base, top_n, out);
}
double exp_weights_avx512(const float* x, int64_t n, float max, float inv_temp, float min_logit,
                          float* w, float* block_sums) {
  return exp_weights_scalar(x, n, max, inv_temp, min_logit, w, block_sums);
}
}  // namespace moon::sampling_internal

#endif
