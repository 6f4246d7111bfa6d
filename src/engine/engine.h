// The engine: scheduler, KV cache, model runner and sampling, stepped together. Each step()
// schedules one batch across every live request, runs it as one forward, samples a token
// for every sequence whose chunk reached its end, and reports what each sequence gained.
// Beam search runs above that step (BeamSearchDriver), as rounds of ordinary requests.
//
// This is the synchronous core; it owns everything it touches, so nothing in it needs a
// lock. Not thread-safe: one thread calls everything (the server's engine thread, or
// `moon generate` directly).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/beam_search_driver.h"
#include "engine/model_runner.h"
#include "engine/scheduler.h"
#include "engine/sequence_update.h"
#include "kv/kv_cache_manager.h"
#include "kv/kv_storage.h"
#include "model/model.h"
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
  // Tensor parallel (rank 0): the model is this rank's slice, and every step runs on all
  // ranks (dist/). Empty: one process.
  ForwardRanks ranks;
};

class Engine {
 public:
  // `model` must outlive the engine. `eog_ids`: tokens that end generation (the
  // tokenizer's end-of-generation set).
  static Result<std::unique_ptr<Engine>> create(const Model& model, std::vector<TokenId> eog_ids,
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

  // Tensor parallel: whether other ranks run the steps; keeping them sure that rank 0
  // lives while idle; and whether a failed collective left the ranks out of step, after
  // which no step can run (the server must answer what it holds and exit).
  bool distributed() const { return runner_.distributed(); }
  Status heartbeat() { return runner_.heartbeat(); }
  bool broken() const { return runner_.broken(); }

  KvStats kv_stats() const { return kv_.stats(); }
  const KvLayout& kv_layout() const { return storage_.layout(); }
  int64_t num_preemptions() const { return scheduler_.num_preemptions(); }
  int64_t num_running() const { return scheduler_.num_running(); }
  int64_t num_waiting() const { return scheduler_.num_waiting(); }
  double last_step_sample_ms() const { return last_step_sample_ms_; }
  int64_t last_step_tokens() const { return last_step_tokens_; }  // prompt + decode tokens
  // Requests whose first tokens were scheduled in the last step (they left the queue).
  const std::vector<RequestId>& started_requests() const { return started_; }

 private:
  Engine(const Model& model, std::vector<TokenId> eog_ids, const EngineConfig& config,
         KvStorage storage);
  // add_request for everything but beam search (the driver's rounds included).
  Status add_sampling_request(RequestId id, std::vector<TokenId> prompt,
                              const SamplingParams& params);
  // One batch: schedule, run, sample, update.
  Result<std::vector<SequenceUpdate>> step_batch();
  // What an empty schedule means: nothing to do, or (with work) a scheduler bug.
  Result<std::vector<SequenceUpdate>> idle_step() const;
  // The prompt logprobs of every computed chunk of a sequence that asked for them.
  std::vector<SequenceUpdate> report_prompt_logprobs(const SchedulerOutput& out,
                                                     const ModelRunner::Logits& logits);
  // One token for every sampled row (ModelRunner::Logits::sampling), into outputs_.
  void sample(const SchedulerOutput& out, std::span<float> logits);
  SequenceId new_sequence_id() { return next_sequence_id_++; }

  const Model& model_;
  std::vector<TokenId> eog_ids_;
  EngineConfig config_;
  ThreadPool pool_;
  KvStorage storage_;
  KvCacheManager kv_;
  Scheduler scheduler_;
  ModelRunner runner_;
  Sampler sampler_;
  SequenceId next_sequence_id_ = 1;
  double last_step_sample_ms_ = 0.0;
  int64_t last_step_tokens_ = 0;
  std::vector<RequestId> started_;
  BeamSearchDriver beams_;
  // Per step, reused: the sampler's rows and outputs.
  std::vector<SamplingRow> rows_;
  std::vector<SampleOutput> outputs_;
};

}  // namespace moon
