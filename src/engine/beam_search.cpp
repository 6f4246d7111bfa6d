#include "engine/beam_search.h"

#include <algorithm>
#include <cmath>

namespace moon {

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
