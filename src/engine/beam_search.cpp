#include "engine/beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace moon {

std::vector<std::pair<TokenId, float>> top_logprobs(std::span<const float> logits, int k) {
  const auto n = static_cast<int64_t>(logits.size());
  k = static_cast<int>(std::min<int64_t>(k, n));
  float max = -std::numeric_limits<float>::infinity();
  for (float v : logits) {
    if (std::isfinite(v)) max = std::max(max, v);
  }
  double sum = 0.0;
  for (float v : logits) {
    if (std::isfinite(v)) sum += std::exp(static_cast<double>(v) - max);
  }
  const double log_z = static_cast<double>(max) + std::log(sum);
  auto key = [&](int32_t i) {
    const float v = logits[i];
    return std::isfinite(v) ? v : -std::numeric_limits<float>::infinity();
  };
  auto better = [&](int32_t a, int32_t b) {
    return key(a) > key(b) || (key(a) == key(b) && a < b);
  };
  std::vector<int32_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  // Partial selection: only the k best are ordered.
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), better);
  std::vector<std::pair<TokenId, float>> out;
  for (int i = 0; i < k; ++i) {
    out.emplace_back(ids[i], static_cast<float>(static_cast<double>(key(ids[i])) - log_z));
  }
  return out;
}

double beam_score(double cum_logprob, int64_t length, float length_penalty) {
  return cum_logprob / std::pow(static_cast<double>(std::max<int64_t>(length, 1)), length_penalty);
}

BeamSelection select_beams(std::vector<BeamCandidate> candidates, int width,
                           const std::function<bool(TokenId)>& is_stop) {
  std::sort(candidates.begin(), candidates.end(),
            [](const BeamCandidate& a, const BeamCandidate& b) {
              if (a.score != b.score) return a.score > b.score;
              if (a.beam != b.beam) return a.beam < b.beam;
              return a.token < b.token;
            });
  BeamSelection out;
  for (const BeamCandidate& c : candidates) {
    if (static_cast<int>(out.next.size()) == width) break;
    (is_stop(c.token) ? out.finished : out.next).push_back(c);
  }
  return out;
}

}  // namespace moon
