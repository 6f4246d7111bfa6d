// AVX2 versions of the sampler's kernels (see kernels.h): the AVX-512 algorithm on 8 lanes,
// with blends for masks and the power of two built from the exponent bits.
#include <cmath>

#include "sampling/kernels.h"
#include "sampling/simd_target.h"

#if MOON_SAMPLING_HAVE_X86
#include <immintrin.h>

namespace moon::sampling_internal {
namespace {

constexpr int kLanes = 8;
constexpr int kBlockVecs = 8;  // one block: 64 logits, loaded once and kept in registers
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// 2^u for u <= 0 (or a little above); NaN and -inf give 2^-126 (nothing a sum of
// probabilities can notice). The clamp keeps 2^floor(u) a normal float so that it can be
// built from exponent bits.
MOON_SAMPLING_AVX2 inline __m256 exp2_nonpositive(__m256 u) {
  u = _mm256_max_ps(u, _mm256_set1_ps(-126.0f));  // NaN -> -126 (second operand)
  const __m256 fl = _mm256_floor_ps(u);
  const __m256 f = _mm256_sub_ps(u, fl);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kExp2C5), f, _mm256_set1_ps(kExp2C4));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C3));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C2));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C1));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fl), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

MOON_SAMPLING_AVX2 inline __m256 exp_nonpositive(__m256 d) {
  d = _mm256_max_ps(d, _mm256_set1_ps(-87.0f));
  return exp2_nonpositive(_mm256_mul_ps(d, _mm256_set1_ps(kLog2e)));
}

MOON_SAMPLING_AVX2 inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

MOON_SAMPLING_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// As in the AVX-512 kernel: one running max shared by all lanes, sums of 2^(x·log2e - h)
// with h = fl(m·log2e), the rounding of h corrected once at the end.
struct State {
  __m256 max;
  __m256 h;
  __m256 sum0;
  __m256 sum1;
  float m;
  float h_scalar;
  int64_t block;
};

template <int kVecs, bool kTop>
MOON_SAMPLING_AVX2 inline bool fused_block(const __m256* v, int64_t start, State& s,
                                           __m256 threshold) {
  __m256 acc;  // NaN-proof maxima: max(v, acc) keeps acc when v is NaN
  bool beat = false;
  if constexpr (kTop) {
    __m256 block_max = _mm256_set1_ps(kNegInf);
    for (int j = 0; j < kVecs; ++j) block_max = _mm256_max_ps(v[j], block_max);
    beat = _mm256_movemask_ps(_mm256_cmp_ps(block_max, threshold, _CMP_GT_OQ)) != 0;
    acc = _mm256_max_ps(block_max, s.max);
  } else {
    acc = s.max;
#pragma GCC unroll 16
    for (int j = 0; j < kVecs; ++j) acc = _mm256_max_ps(v[j], acc);
  }
  if (_mm256_movemask_ps(_mm256_cmp_ps(acc, s.max, _CMP_GT_OQ))) {
    const float m = hmax(acc);
    const float h = m * kLog2e;
    // 0 the first time (no sum yet); std::exp2 would take its slow underflow path.
    const float rescale =
        s.m == std::numeric_limits<float>::lowest() ? 0.0f : std::exp2(s.h_scalar - h);
    s.sum0 = _mm256_mul_ps(s.sum0, _mm256_set1_ps(rescale));
    s.sum1 = _mm256_mul_ps(s.sum1, _mm256_set1_ps(rescale));
    s.m = m;
    s.h_scalar = h;
    s.max = _mm256_set1_ps(m);
    s.h = _mm256_set1_ps(h);
    s.block = start;
  }
#pragma GCC unroll 16
  for (int j = 0; j < kVecs; ++j) {
    const __m256 e = exp2_nonpositive(_mm256_fmsub_ps(v[j], _mm256_set1_ps(kLog2e), s.h));
    if (j % 2 == 0) {
      s.sum0 = _mm256_add_ps(s.sum0, e);
    } else {
      s.sum1 = _mm256_add_ps(s.sum1, e);
    }
  }
  return beat;
}

// Appends the logits of x[0, n) that beat the collector's bar. Out of line and rare, so
// the hot loop keeps its registers.
[[gnu::noinline]] void collect_block(const float* x, int64_t n, int64_t id, TopCollector& top) {
  for (int64_t k = 0; k < n; ++k) {
    if (x[k] > top.bar) top.add(x[k], static_cast<int32_t>(id + k));
  }
}

MOON_SAMPLING_AVX2 inline __m256i tail_mask(int64_t left) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(left)), lane);
}

template <bool kTop>
MOON_SAMPLING_AVX2 void fused_segment_impl(const float* x, int64_t n, int64_t base,
                                           SegmentPartial* out) {
  constexpr float kLowest = std::numeric_limits<float>::lowest();
  State s{_mm256_set1_ps(kLowest),
          _mm256_set1_ps(kLowest),
          _mm256_setzero_ps(),
          _mm256_setzero_ps(),
          kLowest,
          kLowest,
          0};
  TopCollector& top = out->top;
  __m256 threshold = _mm256_set1_ps(top.bar);
  constexpr int64_t kBlock = kLanes * kBlockVecs;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    __m256 v[kBlockVecs];
#pragma GCC unroll 16
    for (int j = 0; j < kBlockVecs; ++j) v[j] = _mm256_loadu_ps(x + i + j * kLanes);
    if (fused_block<kBlockVecs, kTop>(v, i, s, threshold)) {
      collect_block(x + i, kBlock, base + i, top);
      threshold = _mm256_set1_ps(top.bar);
    }
  }
  for (; i < n; i += kLanes) {
    const int64_t left = n - i;
    __m256 v[1];
    if (left >= kLanes) {
      v[0] = _mm256_loadu_ps(x + i);
    } else {
      const __m256i mask = tail_mask(left);
      v[0] = _mm256_blendv_ps(_mm256_set1_ps(kNegInf), _mm256_maskload_ps(x + i, mask),
                              _mm256_castsi256_ps(mask));
    }
    if (fused_block<1, kTop>(v, i, s, threshold)) {
      collect_block(x + i, left < kLanes ? left : kLanes, base + i, top);
      threshold = _mm256_set1_ps(top.bar);
    }
  }

  if constexpr (kTop) top.compact();
  if (s.m == kLowest) return;
  out->max = s.m;
  out->sum = static_cast<double>(hsum(_mm256_add_ps(s.sum0, s.sum1))) *
             std::exp2(static_cast<double>(s.h_scalar) -
                       static_cast<double>(s.m) * static_cast<double>(kLog2e));
  int64_t k = s.block;
  while (k < n && x[k] != s.m) ++k;
  out->argmax = base + k;
}

}  // namespace

void fused_segment_avx2(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out) {
  out->reset(top_n);
  if (top_n > 0) {
    fused_segment_impl<true>(x, n, base, out);
  } else {
    fused_segment_impl<false>(x, n, base, out);
  }
}

MOON_SAMPLING_AVX2 double exp_weights_avx2(const float* x, int64_t n, float max, float inv_temp,
                                           float min_logit, float* w, float* block_sums) {
  const __m256 vmax = _mm256_set1_ps(max);
  const __m256 vscale = _mm256_set1_ps(inv_temp);
  const __m256 vmin = _mm256_set1_ps(min_logit);
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kWeightBlock) {
    const int64_t end = b + kWeightBlock < n ? b + kWeightBlock : n;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = b; i < end; i += kLanes) {
      const int64_t left = end - i;
      const __m256i mask = tail_mask(left);
      const __m256 v = left >= kLanes ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, mask);
      const __m256 keep =
          _mm256_and_ps(_mm256_cmp_ps(v, vmin, _CMP_GE_OQ), _mm256_castsi256_ps(mask));
      const __m256 e =
          _mm256_and_ps(keep, exp_nonpositive(_mm256_mul_ps(_mm256_sub_ps(v, vmax), vscale)));
      if (left >= kLanes) {
        _mm256_storeu_ps(w + i, e);
      } else {
        _mm256_maskstore_ps(w + i, mask, e);
      }
      acc = _mm256_add_ps(acc, e);
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
void fused_segment_avx2(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out) {
  fused_segment_scalar(x, n, base, top_n, out);
}
double exp_weights_avx2(const float* x, int64_t n, float max, float inv_temp, float min_logit,
                        float* w, float* block_sums) {
  return exp_weights_scalar(x, n, max, inv_temp, min_logit, w, block_sums);
}
}  // namespace moon::sampling_internal

#endif
