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

struct GenerationParams {
  int64_t max_tokens = 16;
  float temperature = 0.0f;  // 0: greedy
  uint64_t seed = 0;         // sequence i of a request samples with seed + i
  int n = 1;                 // sequences per request, sharing the prompt's KV blocks
  bool ignore_eos = false;
  std::vector<TokenId> stop_token_ids;  // besides the model's end-of-generation tokens
  // Beam search of width n instead of sampling: the n best hypotheses by
  // cum_logprob / length^length_penalty come back, best first, when the request finishes.
  bool use_beam_search = false;
  float length_penalty = 1.0f;
};

// What one sequence gained in one step.
struct SequenceUpdate {
  RequestId request_id = 0;
  int index = 0;         // which of the request's n sequences
  TokenId token = -1;    // the new token; -1 when the step only finished it
  float logprob = 0.0f;  // log-probability of `token` under the model
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
};

class Engine {
 public:
  // `model` must outlive the engine. `eog_ids`: tokens that end generation (the
  // tokenizer's end-of-generation set).
  static Result<std::unique_ptr<Engine>> create(const LlamaModel& model,
                                                std::vector<TokenId> eog_ids,
                                                const EngineConfig& config);

  // Queues a request; refused at once (with a reason) if it could never run.
  Status add_request(RequestId id, std::vector<TokenId> prompt, const GenerationParams& params);
  // Finishes every sequence of the request with reason abort; unknown ids are ignored.
  std::vector<SequenceUpdate> abort(RequestId id);

  Result<std::vector<SequenceUpdate>> step();
  bool has_work() const { return scheduler_.has_work(); }

  KvStats kv_stats() const { return kv_.stats(); }
  const KvLayout& kv_layout() const { return storage_.layout(); }
  int64_t num_preemptions() const { return scheduler_.num_preemptions(); }
  int64_t num_running() const { return scheduler_.num_running(); }
  int64_t num_waiting() const { return scheduler_.num_waiting(); }
  double last_step_sample_ms() const { return last_step_sample_ms_; }

 private:
  struct SequenceState {
    RequestId request_id = 0;
    int index = 0;
    Sampler sampler;
    const GenerationParams* params = nullptr;
    // Beam search only: the beam's history and its offers for the next token.
    std::vector<float> logprobs;
    double cum_logprob = 0.0;
    std::vector<std::pair<TokenId, float>> candidates;
  };
  struct RequestState {
    GenerationParams params;
    std::vector<SequenceId> sequences;  // for beam search: the live beams
    bool forked = false;
    std::vector<BeamHypothesis> hypotheses;  // beam search: finished ones
  };

  Engine(const LlamaModel& model, std::vector<TokenId> eog_ids, const EngineConfig& config,
         KvStorage storage);
  // Decides whether a sequence whose sampled token was just appended stops; returns the
  // update to report (and forgets the sequence when it finished).
  SequenceUpdate finish_if_done(SequenceId id, SampledToken sampled);
  SequenceId new_sequence_id() { return next_sequence_id_++; }
  bool is_stop(const GenerationParams& params, TokenId token) const;
  // Beam search: once every live beam of the request has offered candidates, picks the next
  // beams (forking and freeing sequences) and, when the search is over, reports the best
  // hypotheses.
  void advance_beams(RequestId id, std::vector<SequenceUpdate>& updates);
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
  std::unordered_map<SequenceId, SequenceState> sequences_;
  SequenceId next_sequence_id_ = 1;
  double last_step_sample_ms_ = 0.0;
};

}  // namespace moon
