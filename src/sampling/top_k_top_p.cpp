#include "sampling/top_k_top_p.h"

#include <algorithm>
#include <limits>

#include "sampling/kernels.h"
#include "util/cpu_features.h"

namespace moon {

void select_top_k(std::span<const float> logits, int64_t k, float min_logit,
                  std::vector<Candidate>& out) {
  out.clear();
  if (k <= 0) return;
  // Keep a buffer of up to 2k candidates that beat the bar; when it fills, cut it to the k
  // best and raise the bar to the worst of them. Logits arrive in id order, so an equal
  // logit later never beats a kept one: the bar is strict.
  const size_t cap = static_cast<size_t>(std::max<int64_t>(2 * k, 64));
  out.reserve(cap);
  float bar = -std::numeric_limits<float>::infinity();  // so -inf never qualifies
  const size_t kk = static_cast<size_t>(k);
  // Through the sampler's dispatch, so that MOON_CPU and set_simd_level switch it too.
  const auto above_mask = sampling_internal::above_mask_for(simd_level());
  using sampling_internal::kScanBlock;
  auto offer = [&](size_t i) {
    const float v = logits[i];
    if (!(v > bar) || !(v >= min_logit)) return;  // the bar may have risen; NaN: false
    if (out.size() == cap) {
      std::nth_element(out.begin(), out.begin() + (kk - 1), out.end(), better);
      out.resize(kk);
      bar = std::max(bar, out[kk - 1].logit);
      // Ties with the new bar are still kept in out; later ones lose to them (higher ids).
      if (!(v > bar)) return;
    }
    out.push_back({v, static_cast<int32_t>(i), 0.0f});
  };
  const size_t n = logits.size();
  size_t i = 0;
  for (; i + kScanBlock <= n; i += kScanBlock) {
    for (uint64_t m = above_mask(&logits[i], bar); m != 0; m &= m - 1) {
      offer(i + static_cast<size_t>(__builtin_ctzll(m)));
    }
  }
  for (; i < n; ++i) offer(i);
  if (out.size() > kk) {
    std::nth_element(out.begin(), out.begin() + (kk - 1), out.end(), better);
    out.resize(kk);
  }
}

size_t top_p_prefix(std::span<Candidate> c, double mass) {
  if (c.empty()) return 0;
  // Invariant: c[0, lo) is in the nucleus with weight `taken`; the answer's boundary lies in
  // [lo, hi]. Split [lo, hi) at its median by `better`: if the better half (with what is
  // already taken) reaches the mass, the boundary is in it; else take it and go right.
  size_t lo = 0, hi = c.size();
  double taken = 0.0;
  while (hi - lo > 16) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(c.begin() + lo, c.begin() + mid, c.begin() + hi, better);
    double half = 0.0;
    for (size_t i = lo; i < mid; ++i) half += c[i].weight;
    if (taken + half >= mass) {
      hi = mid;
    } else {
      taken += half;
      lo = mid;
    }
  }
  std::sort(c.begin() + lo, c.begin() + hi, better);
  for (size_t i = lo; i < hi; ++i) {
    taken += c[i].weight;
    if (taken >= mass) return i + 1;
  }
  return std::max<size_t>(hi, 1);  // the total fell short of `mass` (rounding): keep it all
}

}  // namespace moon
