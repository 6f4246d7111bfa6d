// Portable versions of the sampler's kernels (see kernels.h), the shared top-N collector, and
// the choice of kernel per SIMD level.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <utility>

#include "sampling/kernels.h"
#include "util/simd/target.h"
#include "util/simd/vec_exp.h"

namespace moon::sampling_internal {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// e^d for d <= 0 by the SIMD kernels' polynomial and split (util/simd/vec_exp.h, and AVX2's
// exp2_parts), so that every level sums the same terms up to the rounding of their FMAs; NaN
// and -inf give e^-87 (nothing a sum of probabilities can notice).
inline float exp_nonpositive(float d) {
  d = d >= -87.0f ? d : -87.0f;  // NaN compares false
  const float v = d * simd::kLog2e + 0.5f;
  const float fl = std::floor(v);
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(fl) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return simd::exp2_fraction(v - fl) * scale;
}

// The kernel of `level` among one kernel's three versions. Only x86 builds have the SIMD
// ones (kernels_avx2.cpp and kernels_avx512.cpp compile to nothing elsewhere).
#if MOON_HAVE_X86
template <class Fn>
Fn for_level(SimdLevel level, Fn scalar, Fn avx2, Fn avx512) {
  switch (level) {
    case SimdLevel::kAvx512:
      return avx512;
    case SimdLevel::kAvx2:
      return avx2;
    default:
      return scalar;
  }
}
#define MOON_SAMPLING_FOR_LEVEL(level, kernel) \
  for_level(level, kernel##_scalar, kernel##_avx2, kernel##_avx512)
#else
#define MOON_SAMPLING_FOR_LEVEL(level, kernel) kernel##_scalar
#endif

}  // namespace

void TopCollector::compact() {
  if (size <= wanted) {
    sort_kept(size);
    return;
  }
  // The wanted-th best value by selection on plain floats (cheap, linear), then keep what
  // beats it plus, in id order, as many ties as still fit.
  float scratch[kCapacity + kSlack];
  std::copy(value, value + size, scratch);
  std::nth_element(scratch, scratch + (wanted - 1), scratch + size, std::greater<float>());
  const float cut = scratch[wanted - 1];
  int above = 0;
  for (int k = 0; k < size; ++k) above += value[k] > cut;
  int ties = wanted - above, kept = 0;
  for (int k = 0; k < size; ++k) {  // ids increase with k within one scan's appends
    if (value[k] > cut || (value[k] == cut && ties-- > 0)) {
      value[kept] = value[k];
      id[kept++] = id[k];
    }
  }
  sort_kept(kept);
  bar = cut;
}

void TopCollector::sort_kept(int n) {
  struct Entry {
    float value;
    int32_t id;
  };
  Entry entries[kMaxTopLogprobs];
  for (int k = 0; k < n; ++k) entries[k] = {value[k], id[k]};
  std::sort(entries, entries + n, [](const Entry& a, const Entry& b) {
    return a.value > b.value || (a.value == b.value && a.id < b.id);
  });
  for (int k = 0; k < n; ++k) {
    value[k] = entries[k].value;
    id[k] = entries[k].id;
  }
  size = n;
}

void fused_segment_scalar(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out) {
  out->reset(top_n);
  float m = kNegInf;
  double s = 0.0;  // a long sequential sum: double keeps it as exact as the SIMD lanes
  int64_t arg = -1;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (v > m) {  // online softmax: rescale the sum to the new max
      s = s * exp_nonpositive(m - v) + 1.0f;
      m = v;
      arg = i;
    } else {
      s += exp_nonpositive(v - m);
    }
    if (top_n > 0 && v > out->top.bar) out->top.add(v, static_cast<int32_t>(base + i));
  }
  if (top_n > 0) out->top.compact();
  out->max = m;
  if (arg >= 0) {
    out->sum = s;
    out->argmax = base + arg;
  }
}

uint64_t above_mask_scalar(const float* x, float bar) {
  uint64_t mask = 0;
  for (int j = 0; j < kScanBlock; ++j) mask |= static_cast<uint64_t>(x[j] > bar) << j;
  return mask;
}

double exp_weights_scalar(const float* x, int64_t n, float max, float inv_temp, float min_logit,
                          float* w, float* block_sums) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kWeightBlock) {
    const int64_t end = b + kWeightBlock < n ? b + kWeightBlock : n;
    float sum = 0.0f;
    for (int64_t i = b; i < end; ++i) {
      const float v = x[i];
      const float e = v >= min_logit ? exp_nonpositive((v - max) * inv_temp) : 0.0f;
      w[i] = e;
      sum += e;
    }
    block_sums[b / kWeightBlock] = sum;
    total += sum;
  }
  return total;
}

FusedSegmentFn fused_segment_for(SimdLevel level) {
  return MOON_SAMPLING_FOR_LEVEL(level, fused_segment);
}

ExpWeightsFn exp_weights_for(SimdLevel level) {
  return MOON_SAMPLING_FOR_LEVEL(level, exp_weights);
}

AboveMaskFn above_mask_for(SimdLevel level) {
  return MOON_SAMPLING_FOR_LEVEL(level, above_mask);
}

}  // namespace moon::sampling_internal
