// The engine: scheduler, KV cache, model runner and sampling, stepped together. Each step()
// schedules one batch across every live request, runs it as one forward, samples a token
// for every sequence whose chunk reached its end, and reports what each sequence gained.
//
// This is the synchronous core; it owns everything it touches, so nothing in it needs a
// lock. Not thread-safe: one thread calls everything (the server's engine thread, or
// `moon generate` directly).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/beam_search.h"
#include "engine/model_runner.h"
#include "engine/scheduler.h"
#include "kv/kv_cache_manager.h"
#include "kv/kv_storage.h"
#include "model/llama_model.h"
#include "sampling/sampler.h"
#include "util/thread_pool.h"

namespace moon {

struct EngineConfig {
  SchedulerConfig scheduler;
  int64_t block_size = 16;
  uint64_t kv_cache_bytes = 0;  // 0: default_kv_budget()
  DType kv_cache_dtype = DType::F32;
  bool enable_prefix_caching = true;
  int num_threads = 0;  // 0: every available core
};

// One prompt token's log-probability under the model, and the most likely alternatives.
struct PromptLogprob {
  TokenLogprob token;
  std::vector<TokenLogprob> top;  // params.prompt_logprobs of them, best first
};

// What one sequence gained in one step.
struct SequenceUpdate {
  RequestId request_id = 0;
  int index = 0;       // which of the request's n sequences
  TokenId token = -1;  // the new token; -1 when the step only finished it
  // Log-probability of `token` under the model's distribution after logit bias and
  // penalties, before temperature and truncation (what a greedy request sees).
  float logprob = 0.0f;
  // The params.top_logprobs most likely tokens of the same distribution, best first; empty
  // unless asked for.
  std::vector<TokenLogprob> top_logprobs;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  // With params.prompt_logprobs: the prompt tokens whose logits this step computed (from
  // the second prompt token on, in order; a chunked prompt reports over several steps,
  // in updates with no token), each exactly once.
  std::vector<PromptLogprob> prompt_logprobs;
};

class Engine {
 public:
  // `model` must outlive the engine. `eog_ids`: tokens that end generation (the
  // tokenizer's end-of-generation set).
  static Result<std::unique_ptr<Engine>> create(const LlamaModel& model,
                                                std::vector<TokenId> eog_ids,
                                                const EngineConfig& config);

  // Queues a request; refused at once (with a reason) if it could never run or `params`
  // are out of range. Sequence i of a request with a seed samples with its own seed derived
  // from (seed, i); without one, each sequence draws a random seed.
  Status add_request(RequestId id, std::vector<TokenId> prompt, const SamplingParams& params);
  // Every check of add_request that does not depend on the engine's changing state: the
  // prompt, the parameters, whether the request could ever fit. Reads only what is fixed at
  // creation, so any thread may call it while another steps the engine.
  Status check_request(std::span<const TokenId> prompt, const SamplingParams& params) const;
  // Finishes every sequence of the request with reason abort; unknown ids are ignored.
  std::vector<SequenceUpdate> abort(RequestId id);
  // Finishes sequence `index` of a request with reason stop, as a front end does when the
  // decoded text reaches a stop string; its KV blocks are freed at once. Unknown or finished
  // sequences, and beam searches, are ignored.
  std::vector<SequenceUpdate> stop_sequence(RequestId id, int index);

  Result<std::vector<SequenceUpdate>> step();
  bool has_work() const { return scheduler_.has_work(); }

  KvStats kv_stats() const { return kv_.stats(); }
  const KvLayout& kv_layout() const { return storage_.layout(); }
  int64_t num_preemptions() const { return scheduler_.num_preemptions(); }
  int64_t num_running() const { return scheduler_.num_running(); }
  int64_t num_waiting() const { return scheduler_.num_waiting(); }
  double last_step_sample_ms() const { return last_step_sample_ms_; }
  // Requests whose first tokens were scheduled in the last step (they left the queue).
  const std::vector<RequestId>& started_requests() const { return started_; }

 private:
  struct LiveSequence {
    RequestId request_id = 0;
    int index = 0;
    // The sampler's state for this sequence (seeded generator, penalty history); beams
    // have none, as beam search does not sample.
    std::optional<SequenceState> sampling;
    // Beam search only: the beam's history and its offers for the next token.
    std::vector<float> logprobs;
    double cum_logprob = 0.0;
    std::vector<std::pair<TokenId, float>> candidates;
    int64_t next_prompt_logprob = 1;  // the next prompt position to report, if asked
  };
  struct RequestState {
    SamplingParams params;
    bool started = false;               // scheduled at least once
    std::vector<SequenceId> sequences;  // for beam search: the live beams
    bool forked = false;
    std::vector<BeamHypothesis> hypotheses;  // beam search: finished ones
  };

  Engine(const LlamaModel& model, std::vector<TokenId> eog_ids, const EngineConfig& config,
         KvStorage storage);
  // Decides whether a sequence whose sampled token was just appended stops; returns the
  // update to report (and forgets the sequence when it finished).
  SequenceUpdate finish_if_done(SequenceId id, const SampleOutput& sampled);
  // Ends one sequence; forgets its request once every sequence of it has ended.
  void retire(SequenceId id, FinishReason reason);
  SequenceId new_sequence_id() { return next_sequence_id_++; }
  bool is_stop(const SamplingParams& params, TokenId token) const;
  // Beam search: once every live beam of the request has offered candidates, picks the next
  // beams (forking and freeing sequences) and, when the search is over, reports the best
  // hypotheses.
  void advance_beams(RequestId id, std::vector<SequenceUpdate>& updates);
  // The prompt logprobs of one computed chunk of a sequence that asked for them.
  void report_prompt_logprobs(const ScheduledChunk& chunk, std::span<const float> rows,
                              std::vector<SequenceUpdate>& updates);
  void finish_beam_search(RequestId id, std::vector<SequenceUpdate>& updates);

  const LlamaModel& model_;
  std::vector<TokenId> eog_ids_;
  EngineConfig config_;
  ThreadPool pool_;
  KvStorage storage_;
  KvCacheManager kv_;
  Scheduler scheduler_;
  ModelRunner runner_;
  std::unordered_map<RequestId, RequestState> requests_;
  Sampler sampler_;
  std::unordered_map<SequenceId, LiveSequence> sequences_;
  SequenceId next_sequence_id_ = 1;
  double last_step_sample_ms_ = 0.0;
  std::vector<RequestId> started_;
  // Per step: the sampler's rows (null for beams), its outputs, and the rows of the
  // sequences forked off a parallel-sampling request this step, copied from the parent's
  // logits before processors edited them in place. [num_forks, n_vocab]
  std::vector<SequenceState*> rows_;
  std::vector<SampleOutput> outputs_;
  std::vector<float> fork_logits_;
  std::vector<SequenceState*> fork_rows_;
  std::vector<SampleOutput> fork_outputs_;
};

}  // namespace moon
