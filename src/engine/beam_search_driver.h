// Beam search as a client of the engine, not a part of its step. Each round every live beam
// is one ordinary request for a single token (the prompt plus the beam's tokens, greedy, the
// 2w most likely next tokens asked for); once every beam of the round has answered, the
// selection of beam_search.h picks the next beams and the next round is submitted. The
// prefix cache gives each round the KV of the previous one back, so a round recomputes at
// most the last partial block of each beam.
//
// Because a beam never waits inside the engine for its siblings, it holds no KV blocks
// while waiting, and the scheduler sees only independent requests that each finish: beams
// are admitted, preempted and recomputed like everything else, and a short KV cache can
// slow a search down but never stall it (or anyone else).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/beam_search.h"
#include "engine/sequence_update.h"
#include "sampling/sampling_params.h"
#include "util/result.h"

namespace moon {

class BeamSearchDriver {
 public:
  // What the driver needs of the engine below it.
  struct Engine {
    std::function<Status(RequestId, std::vector<TokenId>, const SamplingParams&)> add_request;
    std::function<void(RequestId)> abort;
  };
  // Request ids the driver gives its single-token requests; user requests may not use them.
  static constexpr RequestId kRoundIdBit = RequestId{1} << 63;
  static bool is_round_id(RequestId id) { return (id & kRoundIdBit) != 0; }

  BeamSearchDriver(Engine engine, std::vector<TokenId> eog_ids);

  // Starts a search of width params.n (the engine's checks of the request already passed).
  Status start(RequestId id, std::span<const TokenId> prompt, const SamplingParams& params);
  bool owns(RequestId id) const { return searches_.contains(id); }
  // Ends a search: its rounds are aborted and each of its n results reports abort.
  std::vector<SequenceUpdate> abort(RequestId id);

  // Takes one engine step's updates: those of the driver's rounds are consumed (submitting
  // the next rounds, and finally the search's results), every other update passes through.
  std::vector<SequenceUpdate> absorb(std::vector<SequenceUpdate> updates);
  // The searches among `started` round ids whose first round was just scheduled, in place
  // of the rounds; other ids pass through.
  std::vector<RequestId> started(const std::vector<RequestId>& started);

 private:
  struct Beam {
    std::vector<TokenId> tokens;  // generated so far
    std::vector<float> logprobs;  // one per token
    double cum_logprob = 0.0;
  };
  struct Search {
    std::vector<TokenId> prompt;
    SamplingParams params;
    std::vector<Beam> beams;                        // this round's live beams
    std::vector<std::vector<TokenLogprob>> offers;  // per beam, once its round answered
    int unanswered = 0;
    std::vector<BeamHypothesis> hypotheses;
    bool started = false;
  };
  struct Round {
    RequestId search = 0;
    size_t beam = 0;
  };

  Status submit_round(RequestId id, Search& search);
  // Aborts the search's rounds still in the engine.
  void abort_rounds(RequestId id);
  // Every beam answered: picks the next beams, or reports the results when the search is over.
  void advance(RequestId id, std::vector<SequenceUpdate>& out);
  void finish(RequestId id, std::vector<SequenceUpdate>& out);
  bool is_stop(const SamplingParams& params, TokenId token) const;

  Engine engine_;
  std::vector<TokenId> eog_ids_;
  std::unordered_map<RequestId, Search> searches_;
  std::unordered_map<RequestId, Round> rounds_;  // by round request id
  RequestId next_round_ = kRoundIdBit;
};

}  // namespace moon
