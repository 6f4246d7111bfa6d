// Turns the scheduler's decision into one forward: the only place where sequences become
// flat arrays (tokens, positions, slot mapping, block tables, context lengths). It runs the
// KV block copies the KV manager asked for, then the paged forward, and returns the logits
// of the rows that sample.
//
// Not thread-safe: the engine thread owns it.
#pragma once

#include <span>
#include <vector>

#include "engine/scheduler.h"
#include "kv/kv_cache_manager.h"
#include "kv/kv_storage.h"
#include "model/forward_batch.h"
#include "model/paged_llama_forward.h"

namespace moon {

class ModelRunner {
 public:
  ModelRunner(const LlamaModel& model, KvStorage* storage, const KvCacheManager* kv,
              int64_t max_num_batched_tokens, ThreadPool* pool);

  // Runs the step. Returns logits for every chunk of `output` that samples, in chunk order,
  // as [num_sampling_chunks, n_vocab] (valid until the next call; the sampler edits it in
  // place).
  Result<std::span<float>> run(const SchedulerOutput& output);

  int64_t vocab_size() const { return n_vocab_; }

 private:
  void build_batch(const SchedulerOutput& output);

  KvStorage* storage_;
  const KvCacheManager* kv_;
  PagedLlamaForward forward_;
  int64_t n_vocab_;
  ForwardBatch batch_;
  std::vector<float> logits_;  // [max sampling rows, n_vocab]
};

}  // namespace moon
