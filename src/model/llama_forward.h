// The engine's Llama forward pass for one sequence: a batch of consecutive tokens goes
// through every layer at once (matrix-matrix products against the weights, SIMD kernels,
// rows split across the thread pool), with K and V appended to a contiguous per-sequence
// cache. Results match the reference forward (reference/) to fp32 rounding.
//
// Buffers are allocated once for `max_batch` tokens; nothing is allocated per call.
// Not thread-safe: one caller at a time (the kernels use the pool internally).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/rope_params.h"
#include "model/llama_model.h"
#include "util/result.h"
#include "util/thread_pool.h"

namespace moon {

class LlamaForward {
 public:
  // `max_context`: most positions the sequence may reach; `max_batch`: most tokens per
  // internal chunk (longer inputs are processed in chunks of this size).
  LlamaForward(const LlamaModel& model, int64_t max_context, ThreadPool* pool,
               int64_t max_batch = 64);

  // Runs `tokens` at positions [pos, pos + tokens.size()). `pos` must equal the number of
  // positions already cached (or be smaller, to overwrite: the cache is truncated there).
  // Writes the logits of the last token to `logits` ([n_vocab]), or of every token when
  // `all_logits` ([tokens.size()][n_vocab]).
  Status forward(std::span<const int32_t> tokens, int64_t pos, float* logits,
                 bool all_logits = false);

  int64_t max_context() const { return max_context_; }

 private:
  void forward_chunk(std::span<const int32_t> tokens, int64_t pos, float* logits, bool all_logits);
  void attention(int64_t n_tokens, int64_t pos, int64_t layer);

  const LlamaModel& model_;
  const LlamaHparams& hp_;
  ThreadPool* pool_;
  int64_t max_context_;
  int64_t max_batch_;
  kernels::RopeParams rope_;

  std::vector<int32_t> positions_;  // [max_batch]
  std::vector<float> x_;            // [max_batch, n_embd] residual stream
  std::vector<float> xb_;           // [max_batch, n_embd] normed
  std::vector<float> q_;            // [max_batch, n_embd_q]
  std::vector<float> k_;            // [max_batch, n_embd_kv]
  std::vector<float> v_;            // [max_batch, n_embd_kv]
  std::vector<float> att_;          // [max_batch, n_embd_q]
  std::vector<float> scores_;       // [num_threads, max_context]
  std::vector<float> gate_;         // [max_batch, n_ff]
  std::vector<float> up_;           // [max_batch, n_ff]
  std::vector<float> tmp_;          // [max_batch, n_embd]
  // [n_layer][max_context, n_embd_kv]
  std::vector<std::vector<float>> k_cache_;
  std::vector<std::vector<float>> v_cache_;
};

}  // namespace moon
