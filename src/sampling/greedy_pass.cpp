#include "sampling/greedy_pass.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "sampling/kernels.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

using sampling_internal::SegmentPartial;
using sampling_internal::TopCollector;

constexpr float kInf = std::numeric_limits<float>::infinity();

SimdLevel capped(SimdLevel level) {
  return std::min(level, hardware_simd_level());
}

int64_t segment_count(int64_t vocab) {
  return (vocab + kGreedySegment - 1) / kGreedySegment;
}

void run_segment(sampling_internal::FusedSegmentFn fn, const float* row, int64_t vocab,
                 int64_t segment, int top_n, SegmentPartial* out) {
  const int64_t begin = segment * kGreedySegment;
  const int64_t n = std::min(kGreedySegment, vocab - begin);
  fn(row + begin, n, begin, top_n, out);
}

// Fills r.top with the best top_n of the (value, id) pairs kept by `tops` (each compacted),
// best first, ties to the lower id; r's max_logit and log_sum_exp must be set.
void fill_top(const TopCollector* const* tops, int64_t n_tops, int top_n, GreedyResult& r) {
  struct Candidate {
    float value;
    int32_t id;
  };
  std::vector<Candidate> all;
  all.reserve(static_cast<size_t>(n_tops * top_n));
  for (int64_t t = 0; t < n_tops; ++t) {
    for (int k = 0; k < tops[t]->size; ++k) all.push_back({tops[t]->value[k], tops[t]->id[k]});
  }
  const size_t keep = std::min<size_t>(all.size(), static_cast<size_t>(top_n));
  std::partial_sort(all.begin(), all.begin() + keep, all.end(),
                    [](const Candidate& a, const Candidate& b) {
                      return a.value > b.value || (a.value == b.value && a.id < b.id);
                    });
  for (size_t k = 0; k < keep; ++k) r.top[k] = {all[k].id, logprob_of(r, all[k].value)};
  r.n_top = static_cast<int>(keep);
}

// The slow, exact path for the rows the SIMD pass leaves to it: some NaN (counted as -inf),
// or a maximum that is +inf or not above -FLT_MAX. Plain passes in double precision.
GreedyResult exact_row(std::span<const float> row, int top_n) {
  GreedyResult r;
  const int64_t n = static_cast<int64_t>(row.size());
  int64_t first = -1, first_non_nan = -1, count_inf = 0;
  float g = -kInf;
  for (int64_t i = 0; i < n; ++i) {
    const float v = row[i];
    if (std::isnan(v)) continue;
    if (first_non_nan < 0) first_non_nan = i;
    if (v > g) {
      g = v;
      first = i;
    }
    if (v == kInf) ++count_inf;
  }
  r.max_logit = g;
  if (g == -kInf) {  // nothing but -inf and NaN
    r.id = static_cast<int32_t>(std::max<int64_t>(first_non_nan, 0));
    r.logprob = -kInf;
    return r;
  }
  r.id = static_cast<int32_t>(first);
  double sum = 0.0;
  if (g == kInf) {
    sum = static_cast<double>(count_inf);  // the +inf logits share everything
  } else {
    for (int64_t i = 0; i < n; ++i) {
      if (row[i] > -kInf) sum += std::exp(static_cast<double>(row[i]) - g);  // NaN: false
    }
  }
  const double lse = std::log(sum);
  r.log_sum_exp = static_cast<float>(lse);
  r.logprob = static_cast<float>(-lse);
  if (top_n > 0) {
    auto top = std::make_unique<TopCollector>();
    top->reset(top_n);
    for (int64_t i = 0; i < n; ++i) {
      if (row[i] > top->bar) top->add(row[i], static_cast<int32_t>(i));
    }
    top->compact();
    const TopCollector* tops[] = {top.get()};
    fill_top(tops, 1, top_n, r);
  }
  return r;
}

// Combines a row's segment partials, in order, into its result.
GreedyResult merge(std::span<const float> row, const SegmentPartial* parts, int64_t n_parts,
                   int top_n) {
  float g = -kInf;
  bool clean = true;  // no NaN reached a sum
  for (int64_t s = 0; s < n_parts; ++s) {
    g = std::max(g, parts[s].max);
    if (parts[s].max > -kInf && !(parts[s].sum > 0.0 && parts[s].sum < kInf)) clean = false;
  }
  // Also beyond ±2^26 the SIMD pass's fl(max·log2e) could be off by more than its
  // exponent range absorbs; such logits only come from broken models.
  constexpr float kHuge = 67108864.0f;
  if (!clean || !(std::fabs(g) <= kHuge)) return exact_row(row, top_n);

  GreedyResult r;
  double sum = 0.0;
  r.id = -1;
  for (int64_t s = 0; s < n_parts; ++s) {
    const SegmentPartial& p = parts[s];
    if (p.max == -kInf) continue;
    sum += p.max == g ? p.sum : p.sum * std::exp(static_cast<double>(p.max) - g);
    if (r.id < 0 && p.max == g) r.id = static_cast<int32_t>(p.argmax);
  }
  const double lse = std::log(sum);
  r.max_logit = g;
  r.log_sum_exp = static_cast<float>(lse);
  r.logprob = static_cast<float>(-lse);  // the chosen logit is g itself
  if (top_n > 0) {
    std::vector<const TopCollector*> tops(static_cast<size_t>(n_parts));
    for (int64_t s = 0; s < n_parts; ++s) tops[s] = &parts[s].top;
    fill_top(tops.data(), n_parts, top_n, r);
  }
  return r;
}

}  // namespace

float logprob_of(const GreedyResult& r, float logit) {
  if (std::isnan(logit)) return -kInf;
  if (r.max_logit == kInf) return logit == kInf ? -r.log_sum_exp : -kInf;
  if (r.max_logit == -kInf) return -kInf;
  return static_cast<float>(static_cast<double>(logit) - r.max_logit - r.log_sum_exp);
}

GreedyResult greedy_pass(std::span<const float> row, int top_n) {
  return greedy_pass(row, top_n, simd_level());
}

GreedyResult greedy_pass(std::span<const float> row, int top_n, SimdLevel level) {
  GreedyResult r;
  greedy_pass_batch(row.data(), 1, static_cast<int64_t>(row.size()), top_n, &r, nullptr, level);
  return r;
}

void greedy_pass_batch(const float* logits, int64_t n_rows, int64_t vocab, int top_n,
                       GreedyResult* out, ThreadPool* pool) {
  greedy_pass_batch(logits, n_rows, vocab, top_n, out, pool, simd_level());
}

void greedy_pass_batch(const float* logits, int64_t n_rows, int64_t vocab, int top_n,
                       GreedyResult* out, ThreadPool* pool, SimdLevel level) {
  assert(vocab > 0 && top_n >= 0 && top_n <= kMaxTopLogprobs);
  if (n_rows <= 0) return;
  top_n = std::clamp(top_n, 0, kMaxTopLogprobs);
  const auto fn = sampling_internal::fused_segment_for(capped(level));
  const int64_t segs = segment_count(vocab);
  const int threads = pool ? pool->num_threads() : 1;
  // Below this many logits per thread, waking workers costs more than it saves.
  constexpr int64_t kMinLogitsPerTask = 1 << 15;

  auto one_row = [&](int64_t r, SegmentPartial* parts) {
    const float* row = logits + r * vocab;
    for (int64_t s = 0; s < segs; ++s) run_segment(fn, row, vocab, s, top_n, &parts[s]);
    out[r] = merge({row, static_cast<size_t>(vocab)}, parts, segs, top_n);
  };

  if (threads <= 1 || n_rows * vocab < 2 * kMinLogitsPerTask || n_rows >= threads) {
    // Whole rows per task. The partials live on the stack for typical vocabularies.
    auto rows = [&](int64_t begin, int64_t end) {
      constexpr int64_t kStackSegments = 16;
      SegmentPartial stack_parts[kStackSegments];
      std::vector<SegmentPartial> heap_parts;
      SegmentPartial* parts = stack_parts;
      if (segs > kStackSegments) {
        heap_parts.resize(segs);
        parts = heap_parts.data();
      }
      for (int64_t r = begin; r < end; ++r) one_row(r, parts);
    };
    if (threads <= 1) {
      rows(0, n_rows);
    } else {
      const int64_t min_rows = std::max<int64_t>(1, kMinLogitsPerTask / vocab);
      pool->parallel_for(n_rows, rows, min_rows);
    }
    return;
  }
  // Fewer rows than threads: split rows into their segments so every thread has work, then
  // merge each row's partials in order (the same arithmetic as above).
  std::vector<SegmentPartial> parts(static_cast<size_t>(n_rows * segs));
  pool->parallel_for(
      n_rows * segs,
      [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          run_segment(fn, logits + (t / segs) * vocab, vocab, t % segs, top_n, &parts[t]);
        }
      },
      std::max<int64_t>(1, kMinLogitsPerTask / kGreedySegment));
  for (int64_t r = 0; r < n_rows; ++r) {
    out[r] = merge({logits + r * vocab, static_cast<size_t>(vocab)}, &parts[r * segs], segs, top_n);
  }
}

}  // namespace moon
