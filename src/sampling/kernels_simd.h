// The loops of the sampler's SIMD kernels (see kernels.h), written once over a per-ISA
// vector-traits struct V. kernels_avx2.cpp and kernels_avx512.cpp each define their traits
// and instantiate these templates; the ISAs differ only in what the traits do.
//
// Include only from such a per-ISA file, once, after its vector header and after defining
// MOON_SIMD_TARGET to that ISA's target attribute (util/simd/target.h): every function here
// that touches vectors carries it, so each file's instantiations compile for its own ISA.
// Everything is in an unnamed namespace, so the two files' copies never meet.
//
// V derives from simd::Avx2 or simd::Avx512 (util/simd/vec_avx2.h, vec_avx512.h), which give
// Vec, kLanes, Tail, tail, set1, zero, load, load_or, store, add, sub, mul, max (NaN-proof:
// max(v, acc) keeps acc when v is NaN), fmadd, fmsub, mask_add, any_gt, gt_mask, reduce_add
// and reduce_max, and adds:
//   kBlockVecs (one block of kLanes·kBlockVecs logits stays in registers),
//   kExpArgMin (e^d clamps d here: 2^(d·log2e) must stay in exp2_shifted's range),
//   exp2_shifted (2^(v - 1/2) for v <= 1/2: 2^u from v = u + 1/2, the form that
//   util/simd/vec_exp.h's exp2_fraction is built for), add_exp2_shifted (acc + 2^(v - 1/2),
//   the same bits as adding exp2_shifted(v)), keep_ge (e where v >= min, else 0; NaN v
//   gives 0),
//   Top: the fused pass's top-N collector, with start(TopCollector&), current_bar() (what a
//   logit must beat), collect(x, n, id) (offers x[0, n), ids from id; out of line) and
//   finish(TopCollector&) (leaves the best, sorted, in it); CollectorTop is the plain one.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "sampling/kernels.h"
#include "util/simd/vec_exp.h"

#ifndef MOON_SIMD_TARGET
#error "define MOON_SIMD_TARGET (the ISA's target attribute) before including kernels_simd.h"
#endif

namespace moon::sampling_internal {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

using simd::exp2_fraction;
using simd::kLog2e;

// e^d for d <= 0; NaN gives what exp2_shifted gives for kExpArgMin·log2e + 1/2 (the clamp's
// max returns its second operand on NaN).
template <class V>
MOON_SIMD_TARGET inline typename V::Vec exp_nonpositive(typename V::Vec d) {
  d = V::max(d, V::set1(V::kExpArgMin));
  return V::exp2_shifted(V::fmadd(d, V::set1(kLog2e), V::set1(0.5f)));
}

// The top-N collector of ISAs without a faster one: appends what beats the shared
// TopCollector's bar straight into it and compacts at the end.
struct CollectorTop {
  TopCollector* top;

  void start(TopCollector& t) { top = &t; }
  float current_bar() const { return top->bar; }
  // Appends the logits of x[0, n) that beat the bar, `id` being x[0]'s. Out of line and
  // rare (only for blocks holding such a logit), so the hot loop keeps its registers.
  [[gnu::noinline]] void collect(const float* x, int64_t n, int64_t id) {
    TopCollector& t = *top;
    for (int64_t k = 0; k < n; ++k) {
      if (x[k] > t.bar) t.add(x[k], static_cast<int32_t>(id + k));
    }
  }
  void finish(TopCollector&) { top->compact(); }
};

// The running state of the fused pass over one segment. Every lane shares one running max
// m (so it rarely changes and its branch predicts well); the sums hold Σ 2^(x·log2e - h - 1/2)
// with h the float nearest m·log2e - 1/2, so that exp2_shifted's argument x·log2e - h is one
// FMA from the logit, and the constant factor 2^(h + 1/2 - m·log2e) left by rounding h is
// applied once, in double, at the end (with the same float log2e as the FMAs, so that its own
// rounding cancels too).
template <class V>
struct State {
  typename V::Vec max;   // m, broadcast; starts at -FLT_MAX so -inf logits give 2^-inf = 0
  typename V::Vec h;     // h, broadcast
  typename V::Vec sum0;  // two accumulators halve the add chain
  typename V::Vec sum1;
  float m;
  float h_scalar;
  int64_t block;  // start of the block where m first appeared
};

// One block of kVecs vectors already in registers: the block max first (the NaN-proof
// max(v, acc) keeps acc when v is NaN), then every exponential against the updated m.
// With kTop, returns whether some logit beat `threshold` (the top-N collector's bar).
template <class V, int kVecs, bool kTop>
MOON_SIMD_TARGET inline bool fused_block(const typename V::Vec* v, int64_t start, State<V>& s,
                                         typename V::Vec threshold) {
  typename V::Vec acc;
  bool beat = false;
  if constexpr (kTop) {
    typename V::Vec block_max = V::set1(kNegInf);
    for (int j = 0; j < kVecs; ++j) block_max = V::max(v[j], block_max);
    beat = V::any_gt(block_max, threshold);
    acc = V::max(block_max, s.max);
  } else {
    acc = s.max;
#pragma GCC unroll 16
    for (int j = 0; j < kVecs; ++j) acc = V::max(v[j], acc);
  }
  if (V::any_gt(acc, s.max)) {  // a new max: a handful of times per row
    const float m = V::reduce_max(acc);
    const float h = m * kLog2e - 0.5f;
    // 0 the first time (no sum yet); std::exp2 would take its slow underflow path.
    const float rescale =
        s.m == std::numeric_limits<float>::lowest() ? 0.0f : std::exp2(s.h_scalar - h);
    s.sum0 = V::mul(s.sum0, V::set1(rescale));
    s.sum1 = V::mul(s.sum1, V::set1(rescale));
    s.m = m;
    s.h_scalar = h;
    s.max = V::set1(m);
    s.h = V::set1(h);
    s.block = start;
  }
#pragma GCC unroll 16
  for (int j = 0; j < kVecs; ++j) {
    const typename V::Vec arg = V::fmsub(v[j], V::set1(kLog2e), s.h);
    if (j % 2 == 0) {
      s.sum0 = V::add_exp2_shifted(s.sum0, arg);
    } else {
      s.sum1 = V::add_exp2_shifted(s.sum1, arg);
    }
  }
  return beat;
}

template <class V, bool kTop>
MOON_SIMD_TARGET void fused_segment_impl(const float* x, int64_t n, int64_t base,
                                         SegmentPartial* out) {
  using Vec = typename V::Vec;
  constexpr int kLanes = V::kLanes;
  constexpr float kLowest = std::numeric_limits<float>::lowest();
  State<V> s{V::set1(kLowest), V::set1(kLowest), V::zero(), V::zero(), kLowest, kLowest, 0};
  typename V::Top top;
  if constexpr (kTop) top.start(out->top);
  Vec threshold = V::set1(kNegInf);
  constexpr int64_t kBlock = kLanes * V::kBlockVecs;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    Vec v[V::kBlockVecs];
#pragma GCC unroll 16
    for (int j = 0; j < V::kBlockVecs; ++j) v[j] = V::load(x + i + j * kLanes);
    if (fused_block<V, V::kBlockVecs, kTop>(v, i, s, threshold)) {
      top.collect(x + i, kBlock, base + i);
      threshold = V::set1(top.current_bar());
    }
  }
  for (; i < n; i += kLanes) {
    // The ragged end: one vector at a time, the last one padded with -inf.
    const int64_t left = n - i;
    Vec v[1] = {left >= kLanes ? V::load(x + i)
                               : V::load_or(x + i, V::tail(left), V::set1(kNegInf))};
    if (fused_block<V, 1, kTop>(v, i, s, threshold)) {
      top.collect(x + i, left < kLanes ? left : kLanes, base + i);
      threshold = V::set1(top.current_bar());
    }
  }

  if constexpr (kTop) top.finish(out->top);
  // m still -FLT_MAX: no finite logit (or only -FLT_MAX ones; the caller redoes such rows).
  if (s.m == kLowest) return;
  out->max = s.m;
  out->sum = static_cast<double>(V::reduce_add(V::add(s.sum0, s.sum1))) *
             std::exp2(static_cast<double>(s.h_scalar) + 0.5 -
                       static_cast<double>(s.m) * static_cast<double>(kLog2e));
  int64_t k = s.block;
  while (k < n && x[k] != s.m) ++k;
  out->argmax = base + k;
}

// fused_segment_<isa> (kernels.h). Scalar code around the kernel, so no target attribute.
template <class V>
void fused_segment(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out) {
  out->reset(top_n);
  if (top_n > 0) {
    fused_segment_impl<V, true>(x, n, base, out);
  } else {
    fused_segment_impl<V, false>(x, n, base, out);
  }
}

// e^((x - max)·inv_temp) where x >= min_logit, else 0 (NaN x gives 0).
template <class V>
MOON_SIMD_TARGET inline typename V::Vec weight(typename V::Vec x, typename V::Vec max,
                                               typename V::Vec inv_temp,
                                               typename V::Vec min_logit) {
  return V::keep_ge(x, min_logit, exp_nonpositive<V>(V::mul(V::sub(x, max), inv_temp)));
}

// exp_weights_<isa> (kernels.h): each block's lanes summed in a register, then across.
template <class V>
MOON_SIMD_TARGET double exp_weights(const float* x, int64_t n, float max, float inv_temp,
                                    float min_logit, float* w, float* block_sums) {
  using Vec = typename V::Vec;
  constexpr int kLanes = V::kLanes;
  const Vec vmax = V::set1(max);
  const Vec vscale = V::set1(inv_temp);
  const Vec vmin = V::set1(min_logit);
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kWeightBlock) {
    const int64_t end = b + kWeightBlock < n ? b + kWeightBlock : n;
    Vec acc = V::zero();
    int64_t i = b;
    for (; i + kLanes <= end; i += kLanes) {
      const Vec e = weight<V>(V::load(x + i), vmax, vscale, vmin);
      V::store(w + i, e);
      acc = V::add(acc, e);
    }
    if (i < end) {
      // The row's last, partial vector: the lanes past it (loaded as 0) stay out of the sum.
      const typename V::Tail tail = V::tail(end - i);
      const Vec e = weight<V>(V::load(x + i, tail), vmax, vscale, vmin);
      V::store(w + i, tail, e);
      acc = V::mask_add(acc, tail, e);
    }
    const float sum = V::reduce_add(acc);
    block_sums[b / kWeightBlock] = sum;
    total += sum;
  }
  return total;
}

// above_mask_<isa> (kernels.h).
template <class V>
MOON_SIMD_TARGET uint64_t above_mask(const float* x, float bar) {
  const typename V::Vec b = V::set1(bar);
  uint64_t mask = 0;
#pragma GCC unroll 8
  for (int j = 0; j < kScanBlock; j += V::kLanes) {
    mask |= static_cast<uint64_t>(V::gt_mask(V::load(x + j), b)) << j;
  }
  return mask;
}

}  // namespace
}  // namespace moon::sampling_internal
