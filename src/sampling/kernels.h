// Internal to src/sampling: the per-ISA kernels behind greedy_pass, the sampler and top-k,
// and the small types they share. Each kernel exists in a scalar version and, on x86, an AVX2
// and an AVX-512 version (kernels_simd.h's loops over each ISA's traits) with identical
// contracts; greedy_pass.cpp, sampler.cpp and top_k_top_p.cpp pick one per simd_level()
// through the *_for functions, so that MOON_CPU and set_simd_level switch them all at once.
// Their exponentials come from util/simd/vec_exp.h, as the kernels' do.
#pragma once

#include <cstdint>
#include <limits>

#include "sampling/greedy_pass.h"

namespace moon::sampling_internal {

// Collects the best `wanted` (value, id) pairs of a scan. Candidates that beat `bar` are
// appended, which is cheap and vectorizes; when the buffer fills it is cut back to the best
// `wanted` and the bar rises to the worst of those, so after a few cuts almost nothing beats
// it. (A heap would re-sift on every one of the ~N·ln(V/N) improvements, with unpredictable
// branches each time.) Order: higher value first, then lower id; ids must be offered in
// increasing order, so that a later equal value never displaces a kept one.
struct TopCollector {
  static constexpr int kCapacity = 256;
  static constexpr int kSlack = 16;  // room for one full vector appended below kCapacity
  int wanted = 0;
  int size = 0;
  float bar = -std::numeric_limits<float>::infinity();  // NaN and -inf never get in
  float value[kCapacity + kSlack];
  int32_t id[kCapacity + kSlack];

  void reset(int n) {
    wanted = n;
    size = 0;
    bar = -std::numeric_limits<float>::infinity();
  }
  // v must beat bar.
  void add(float v, int32_t i) {
    if (size >= kCapacity) compact();
    value[size] = v;
    id[size++] = i;
  }
  // Keeps the best `wanted`, sorted best first, and raises the bar once there are that many.
  void compact();

 private:
  void sort_kept(int n);  // sorts the first n (n <= kMaxTopLogprobs) best first
};

// What one segment of a row contributes to the row's result.
struct SegmentPartial {
  float max = -std::numeric_limits<float>::infinity();  // NaN ignored; may be +inf
  int64_t argmax = -1;  // first index (in the row) holding max; -1 if max is -inf
  double sum = 0.0;     // Σ exp(x - max) over the segment; meaningless if max is ±inf
  TopCollector top;     // compacted: at most top_n entries, best first

  // Cheaper than value-initialization, which would zero the collector's buffer.
  void reset(int top_n) {
    max = -std::numeric_limits<float>::infinity();
    argmax = -1;
    sum = 0.0;
    top.reset(top_n);
  }
};

// x[0, n) is the segment, `base` its offset in the row (added to every id). top_n may be 0.
using FusedSegmentFn = void (*)(const float* x, int64_t n, int64_t base, int top_n,
                                SegmentPartial* out);
void fused_segment_scalar(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out);
void fused_segment_avx2(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out);
void fused_segment_avx512(const float* x, int64_t n, int64_t base, int top_n, SegmentPartial* out);

// Sampling weights: w[i] = exp((x[i] - max) * inv_temp) where x[i] >= min_logit, else 0
// (NaN gives 0). Also writes the sum of each kWeightBlock-long block of w into
// block_sums[ceil(n / kWeightBlock)] and returns the sum of all w (x <= max assumed).
inline constexpr int64_t kWeightBlock = 256;
using ExpWeightsFn = double (*)(const float* x, int64_t n, float max, float inv_temp,
                                float min_logit, float* w, float* block_sums);
double exp_weights_scalar(const float* x, int64_t n, float max, float inv_temp, float min_logit,
                          float* w, float* block_sums);
double exp_weights_avx2(const float* x, int64_t n, float max, float inv_temp, float min_logit,
                        float* w, float* block_sums);
double exp_weights_avx512(const float* x, int64_t n, float max, float inv_temp, float min_logit,
                          float* w, float* block_sums);

// Bit j set where x[j] > bar, for j in [0, kScanBlock) (NaN never). select_top_k scans a row
// in such blocks: once its bar has risen, most blocks hold nothing above it and cost a few
// vector compares.
inline constexpr int64_t kScanBlock = 64;
using AboveMaskFn = uint64_t (*)(const float* x, float bar);
uint64_t above_mask_scalar(const float* x, float bar);
uint64_t above_mask_avx2(const float* x, float bar);
uint64_t above_mask_avx512(const float* x, float bar);

FusedSegmentFn fused_segment_for(SimdLevel level);
ExpWeightsFn exp_weights_for(SimdLevel level);
AboveMaskFn above_mask_for(SimdLevel level);

}  // namespace moon::sampling_internal
