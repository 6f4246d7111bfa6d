#include "engine/beam_search_driver.h"

#include <algorithm>
#include <limits>

#include "util/logging.h"

namespace moon {

BeamSearchDriver::BeamSearchDriver(Engine engine, std::vector<TokenId> eog_ids)
    : engine_(std::move(engine)), eog_ids_(std::move(eog_ids)) {}

bool BeamSearchDriver::is_stop(const SamplingParams& params, TokenId token) const {
  const bool is_eog = std::find(eog_ids_.begin(), eog_ids_.end(), token) != eog_ids_.end();
  return (is_eog && !params.ignore_eos) ||
         std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) !=
             params.stop_token_ids.end();
}

Status BeamSearchDriver::start(RequestId id, std::span<const TokenId> prompt,
                               const SamplingParams& params) {
  if (searches_.contains(id)) return make_error("request id {} is already in use", id);
  Search search;
  search.prompt.assign(prompt.begin(), prompt.end());
  search.params = params;
  search.beams.emplace_back();
  auto [it, inserted] = searches_.emplace(id, std::move(search));
  if (Status s = submit_round(id, it->second); !s.ok()) {
    searches_.erase(it);
    return s;
  }
  return Status::success();
}

Status BeamSearchDriver::submit_round(RequestId id, Search& search) {
  // The beams rank raw log-probabilities: no sampling processor touches them (the old
  // in-engine search read the logits directly too).
  SamplingParams round;
  round.temperature = 0.0f;
  round.max_tokens = 1;
  round.ignore_eos = true;
  round.top_logprobs = 2 * search.params.n;
  // The prompt's own logprobs come from the first round, which computes every prompt row.
  if (search.hypotheses.empty() && search.beams.size() == 1 && search.beams[0].tokens.empty()) {
    round.prompt_logprobs = search.params.prompt_logprobs;
  }
  search.offers.assign(search.beams.size(), {});
  search.unanswered = static_cast<int>(search.beams.size());
  for (size_t b = 0; b < search.beams.size(); ++b) {
    std::vector<TokenId> tokens = search.prompt;
    tokens.insert(tokens.end(), search.beams[b].tokens.begin(), search.beams[b].tokens.end());
    const RequestId round_id = next_round_++;
    MOON_TRY(engine_.add_request(round_id, std::move(tokens), round));
    rounds_.emplace(round_id, Round{id, b});
  }
  return Status::success();
}

void BeamSearchDriver::abort_rounds(RequestId id) {
  for (auto r = rounds_.begin(); r != rounds_.end();) {
    if (r->second.search == id) {
      engine_.abort(r->first);
      r = rounds_.erase(r);
    } else {
      ++r;
    }
  }
}

std::vector<SequenceUpdate> BeamSearchDriver::abort(RequestId id) {
  std::vector<SequenceUpdate> out;
  auto it = searches_.find(id);
  if (it == searches_.end()) return out;
  abort_rounds(id);
  for (int k = 0; k < it->second.params.n; ++k) {
    out.push_back({id, k, -1, 0.0f, {}, true, FinishReason::kAbort, {}});
  }
  searches_.erase(it);
  return out;
}

std::vector<RequestId> BeamSearchDriver::started(const std::vector<RequestId>& started) {
  std::vector<RequestId> out;
  for (RequestId id : started) {
    auto r = rounds_.find(id);
    if (r == rounds_.end()) {
      if (!is_round_id(id)) out.push_back(id);
      continue;
    }
    Search& search = searches_.at(r->second.search);
    if (!search.started) {
      search.started = true;
      out.push_back(r->second.search);
    }
  }
  return out;
}

std::vector<SequenceUpdate> BeamSearchDriver::absorb(std::vector<SequenceUpdate> updates) {
  if (rounds_.empty()) return updates;
  std::vector<SequenceUpdate> out;
  out.reserve(updates.size());
  std::vector<RequestId> answered;
  for (SequenceUpdate& u : updates) {
    auto r = rounds_.find(u.request_id);
    if (r == rounds_.end()) {
      if (!is_round_id(u.request_id)) out.push_back(std::move(u));
      continue;
    }
    const RequestId search_id = r->second.search;
    Search& search = searches_.at(search_id);
    if (!u.prompt_logprobs.empty()) {
      out.push_back(
          {search_id, 0, -1, 0.0f, {}, false, FinishReason::kNone, std::move(u.prompt_logprobs)});
    }
    if (u.token >= 0) search.offers[r->second.beam] = std::move(u.top_logprobs);
    if (u.finished) {
      rounds_.erase(r);
      if (--search.unanswered == 0) answered.push_back(search_id);
    }
  }
  for (RequestId id : answered) advance(id, out);
  return out;
}

void BeamSearchDriver::advance(RequestId id, std::vector<SequenceUpdate>& out) {
  Search& search = searches_.at(id);
  const SamplingParams& params = search.params;
  std::vector<BeamCandidate> candidates;
  for (size_t b = 0; b < search.beams.size(); ++b) {
    for (const TokenLogprob& t : search.offers[b]) {
      candidates.push_back({b, t.id, t.logprob, search.beams[b].cum_logprob + t.logprob});
    }
  }
  const BeamSelection selection =
      select_beams(std::move(candidates), params.n, [&](TokenId t) { return is_stop(params, t); });
  for (const BeamCandidate& c : selection.finished) {
    const Beam& beam = search.beams[c.beam];
    BeamHypothesis h{beam.tokens, beam.logprobs, c.score, FinishReason::kStop};
    h.tokens.push_back(c.token);
    h.logprobs.push_back(c.logprob);
    search.hypotheses.push_back(std::move(h));
  }
  std::vector<Beam> next;
  for (const BeamCandidate& c : selection.next) {
    Beam beam = search.beams[c.beam];
    beam.tokens.push_back(c.token);
    beam.logprobs.push_back(c.logprob);
    beam.cum_logprob = c.score;
    if (static_cast<int64_t>(beam.tokens.size()) >= params.max_tokens) {
      search.hypotheses.push_back({std::move(beam.tokens), std::move(beam.logprobs),
                                   beam.cum_logprob, FinishReason::kLength});
    } else {
      next.push_back(std::move(beam));
    }
  }
  search.beams = std::move(next);

  // Done when no beam is left, or when w hypotheses are finished and no live beam scores
  // better than the worst of them now (scores only fall as a beam grows when the length
  // penalty is at most 1).
  const auto score = [&](const std::vector<TokenId>& tokens, double cum) {
    return beam_score(cum, static_cast<int64_t>(tokens.size()), params.length_penalty);
  };
  bool done = search.beams.empty();
  if (!done && static_cast<int>(search.hypotheses.size()) >= params.n) {
    std::vector<double> scores;
    for (const BeamHypothesis& h : search.hypotheses)
      scores.push_back(score(h.tokens, h.cum_logprob));
    std::nth_element(scores.begin(), scores.begin() + (params.n - 1), scores.end(),
                     std::greater<>());
    const double worst_kept = scores[params.n - 1];
    double best_live = -std::numeric_limits<double>::infinity();
    for (const Beam& b : search.beams)
      best_live = std::max(best_live, score(b.tokens, b.cum_logprob));
    done = best_live <= worst_kept;
  }
  if (!done) {
    const Status s = submit_round(id, search);
    if (s.ok()) return;
    // Cannot happen for a request the engine admitted (a round is never longer than the
    // request); end the search rather than leave its client waiting.
    spdlog::error("beam search {}: the next round was refused: {}", id, s.error().message);
    abort_rounds(id);
  }
  finish(id, out);
}

void BeamSearchDriver::finish(RequestId id, std::vector<SequenceUpdate>& out) {
  Search& search = searches_.at(id);
  const float penalty = search.params.length_penalty;
  std::stable_sort(
      search.hypotheses.begin(), search.hypotheses.end(),
      [penalty](const BeamHypothesis& a, const BeamHypothesis& b) {
        return beam_score(a.cum_logprob, static_cast<int64_t>(a.tokens.size()), penalty) >
               beam_score(b.cum_logprob, static_cast<int64_t>(b.tokens.size()), penalty);
      });
  // Always n results, so a reader counting finished sequences is never left waiting.
  search.hypotheses.resize(std::max<size_t>(search.hypotheses.size(), search.params.n));
  for (int k = 0; k < search.params.n; ++k) {
    const BeamHypothesis& h = search.hypotheses[k];
    // A final stop token is part of the hypothesis' score but not of its text.
    const size_t shown = h.reason == FinishReason::kStop && !h.tokens.empty() ? h.tokens.size() - 1
                                                                              : h.tokens.size();
    for (size_t t = 0; t < shown; ++t) {
      out.push_back({id, k, h.tokens[t], h.logprobs[t], {}, false, FinishReason::kNone, {}});
    }
    out.push_back({id, k, -1, 0.0f, {}, true, h.reason, {}});
  }
  searches_.erase(id);
}

}  // namespace moon
