// Turns the scheduler's decision into one forward: the only place where sequences become
// flat arrays (tokens, positions, slot mapping, block tables, context lengths). It runs the
// KV block copies the KV manager asked for, then the paged forward, and returns the logits
// of the rows that sample. Under tensor parallelism (rank 0 of ForwardRanks) it first sends
// the same copies and batch to the other ranks (dist/step_plan.h), which run them in step.
//
// Not thread-safe: the engine thread owns it.
#pragma once

#include <span>
#include <vector>

#include "dist/step_plan.h"
#include "engine/scheduler.h"
#include "kv/kv_cache_manager.h"
#include "kv/kv_storage.h"
#include "model/forward_batch.h"
#include "model/paged_forward.h"

namespace moon {

class ModelRunner {
 public:
  ModelRunner(const Model& model, KvStorage* storage, const KvCacheManager* kv,
              int64_t max_num_batched_tokens, ThreadPool* pool, ForwardRanks ranks = {});
  // Tensor parallel: tells the other ranks to stop (unless a collective failed).
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  struct Logits {
    // One row per sampled row (SchedulerOutput::num_samples): each sampling chunk's, then a
    // copy of it for each of its forks, [num_samples, n_vocab]. The sampler edits it in
    // place, so rows that share logits each get their own.
    std::span<float> sampling;
    // For each chunk of a sequence that needs prompt logits (Sequence::needs_prompt_logits):
    // the chunk's index in output.chunks and its rows' logits, [num_tokens, n_vocab], row j
    // predicting token start + j + 1.
    struct Chunk {
      size_t chunk = 0;
      std::span<const float> rows;
    };
    std::vector<Chunk> prompt;
  };

  // Runs the step. The logits stay valid until the next call.
  Result<Logits> run(const SchedulerOutput& output);

  int64_t vocab_size() const { return n_vocab_; }

  // Tensor parallel: whether other ranks run the steps too.
  bool distributed() const { return comm_ != nullptr && comm_->size() > 1; }
  // Tells idle ranks that rank 0 lives (they give up after the communicator's timeout).
  Status heartbeat();
  // A collective failed (a rank died or hangs): the ranks are out of step for good.
  bool broken() const { return broken_; }

 private:
  void build_batch(const SchedulerOutput& output);
  Status send_plan(StepPlan::Kind kind, std::span<const std::pair<BlockId, BlockId>> copies);

  Communicator* comm_ = nullptr;
  bool broken_ = false;
  std::vector<uint8_t> plan_bytes_;
  KvStorage* storage_;
  const KvCacheManager* kv_;
  PagedForward forward_;
  int64_t n_vocab_;
  ForwardBatch batch_;
  std::vector<float> logits_;  // [logits rows, n_vocab]
  // Per step: which row of logits_ each sampled row reads (gathered when that is not simply
  // every row in order: prompt logits, or forks).
  std::vector<int64_t> sampling_rows_;
  std::vector<std::pair<size_t, int64_t>> prompt_chunks_;  // (chunk, first row of logits_)
  std::vector<float> sampling_logits_;                     // [num sampling rows, n_vocab]
};

}  // namespace moon
