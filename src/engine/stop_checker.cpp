#include "engine/stop_checker.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace moon {

StopChecker::StopChecker(const SamplingParams& params, std::vector<int32_t> eos_ids)
    : params_(params), eos_ids_(std::move(eos_ids)) {
  for (const std::string& s : params_.stop) longest_stop_ = std::max(longest_stop_, s.size());
}

std::pair<size_t, int> StopChecker::earliest_stop() const {
  // Ties go to the longer string.
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
  return {best_pos, best_index};
}

bool StopChecker::cut_at_stop(StopUpdate& u) {
  const auto [pos, index] = earliest_stop();
  if (index < 0) return false;
  const size_t len = params_.stop[index].size();
  u.text = held_.substr(0, params_.include_stop_str_in_output ? pos + len : pos);
  held_.clear();
  u.finish = FinishReason::kStop;
  u.stop_string = index;
  finished_ = stopped_ = true;
  return true;
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
    finished_ = stopped_ = true;
    return u;
  }

  held_.append(piece);
  // The held text only holds what could start a stop string, plus the new piece.
  if (may_stop && longest_stop_ > 0 && cut_at_stop(u)) return u;
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

StopUpdate StopChecker::finish(std::string_view tail) {
  StopUpdate u;
  // After a stop nothing more is text; after the length limit the decoder's tail still is.
  if (stopped_) return u;
  held_.append(tail);
  if (n_generated_ > params_.min_tokens && longest_stop_ > 0 && cut_at_stop(u)) return u;
  u.text = std::exchange(held_, {});
  finished_ = true;
  stopped_ = true;  // a second call adds nothing
  return u;
}

}  // namespace moon
