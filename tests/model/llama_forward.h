// The forward pass for one sequence at a time, for tests that drive a single sequence by
// hand (the product only runs batches, through the engine's ModelRunner): a thin owner of a private
// paged KV cache (blocks 0, 1, 2, ... in order) over the same PagedForward the engine runs, so
// there is one optimized forward path.
//
// Not thread-safe: one caller at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kv/kv_storage.h"
#include "model/forward_batch.h"
#include "model/model.h"
#include "model/paged_forward.h"
#include "util/result.h"
#include "util/thread_pool.h"

namespace moon {

class LlamaForward {
 public:
  // `max_context`: most positions the sequence may reach; `max_batch`: most tokens per
  // internal chunk (longer inputs are processed in chunks of this size).
  LlamaForward(const Model& model, int64_t max_context, ThreadPool* pool, int64_t max_batch = 64);

  // Runs `tokens` at positions [pos, pos + tokens.size()); positions before `pos` must have
  // been fed already (feeding from an earlier `pos` overwrites from there). Writes the logits
  // of the last token to `logits` ([n_vocab]), or of every token when `all_logits`
  // ([tokens.size()][n_vocab]).
  Status forward(std::span<const int32_t> tokens, int64_t pos, float* logits,
                 bool all_logits = false);

  int64_t max_context() const { return max_context_; }

 private:
  static constexpr int64_t kBlockSize = 16;

  int64_t n_vocab_;
  int64_t max_context_;
  int64_t max_batch_;
  std::unique_ptr<KvStorage> kv_;
  std::unique_ptr<PagedForward> paged_;
  ForwardBatch batch_;
};

}  // namespace moon
