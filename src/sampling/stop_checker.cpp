#include "sampling/stop_checker.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace moon {

StopChecker::StopChecker(const SamplingParams& params, std::vector<int32_t> eos_ids)
    : params_(params), eos_ids_(std::move(eos_ids)) {
  for (const std::string& s : params_.stop) longest_stop_ = std::max(longest_stop_, s.size());
}

size_t StopChecker::partial_match_length() const {
  size_t best = 0;
  for (const std::string& s : params_.stop) {
    const size_t most = std::min(held_.size(), s.size() - 1);
    for (size_t k = most; k > best; --k) {
      if (std::string_view(held_).substr(held_.size() - k) == std::string_view(s).substr(0, k)) {
        best = k;
        break;
      }
    }
  }
  return best;
}

StopUpdate StopChecker::push(int32_t token, std::string_view piece) {
  assert(!finished_);
  StopUpdate u;
  ++n_generated_;
  // Stop conditions count only past min_tokens (the sampler masks EOS and stop tokens
  // until then; this guards callers that sample some other way).
  const bool may_stop = n_generated_ > params_.min_tokens;
  const bool is_eos = std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end();
  const bool is_stop_token = std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(),
                                       token) != params_.stop_token_ids.end();
  if (may_stop && (is_stop_token || (is_eos && !params_.ignore_eos))) {
    // The token's own text is not part of the output; what was held back is.
    u.text = std::exchange(held_, {});
    u.finish = FinishReason::kStop;
    u.stop_token = token;
    finished_ = true;
    return u;
  }

  held_.append(piece);
  if (may_stop && longest_stop_ > 0) {
    // The earliest match in the held text (which only holds what could start one, plus the
    // new piece), ties to the longer string.
    size_t best_pos = std::string::npos, best_len = 0;
    int best_index = -1;
    for (size_t i = 0; i < params_.stop.size(); ++i) {
      const size_t pos = held_.find(params_.stop[i]);
      if (pos == std::string::npos) continue;
      if (pos < best_pos || (pos == best_pos && params_.stop[i].size() > best_len)) {
        best_pos = pos;
        best_len = params_.stop[i].size();
        best_index = static_cast<int>(i);
      }
    }
    if (best_index >= 0) {
      u.text = held_.substr(0, params_.include_stop_str_in_output ? best_pos + best_len : best_pos);
      held_.clear();
      u.finish = FinishReason::kStop;
      u.stop_string = best_index;
      finished_ = true;
      return u;
    }
  }
  if (n_generated_ >= params_.max_tokens) {
    u.text = std::exchange(held_, {});
    u.finish = FinishReason::kLength;
    finished_ = true;
    return u;
  }
  // Emit all but the tail that could still grow into a stop string.
  const size_t keep = may_stop ? partial_match_length() : 0;
  u.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return u;
}

std::string StopChecker::flush() {
  finished_ = true;
  return std::exchange(held_, {});
}

}  // namespace moon
