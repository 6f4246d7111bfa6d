// The engine's forward over a batch of many sequences with a paged KV cache, for every
// family ModelHparams describes (its switches, never the architecture's name): every
// token of the step goes through the layers together (one matrix-matrix product per
// weight), new K/V are stored in their slots, and each sequence's queries attend over its
// own blocks (kernels/paged_attention). Results match the reference forward to fp32
// rounding (Q8_0 and Q4_0 weights take the int8 path, whose activation quantization the
// reference repeats) and are batch-invariant: a token's logits are bitwise the same whatever else
// is in the batch and however its prompt was chunked.
//
// Workspace is allocated once for `max_num_tokens`; nothing is allocated per call.
// Not thread-safe: the engine thread calls it (the kernels use the pool internally).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "dist/communicator.h"
#include "kernels/cpu/matmul.h"
#include "kernels/rope_params.h"
#include "kv/kv_storage.h"
#include "model/forward_batch.h"
#include "model/model.h"
#include "util/result.h"
#include "util/thread_pool.h"

namespace moon {

// Set when the model is one rank's slice of a tensor-parallel model (dist/shard.h): the
// attention and feed-forward outputs are partial sums to all-reduce, and the embedding table
// and the output matrix hold vocab_counts[rank] rows of the vocabulary, from vocab_begin.
struct ForwardRanks {
  Communicator* comm = nullptr;
  std::vector<int64_t> vocab_counts;  // [comm->size()]
  int64_t vocab_begin = 0;            // this rank's first row
};

class PagedForward {
 public:
  // `kv` must have the model's layers, KV heads and head size; both must outlive this.
  PagedForward(const Model& model, KvStorage* kv, int64_t max_num_tokens, ThreadPool* pool,
               ForwardRanks ranks = {});

  // Runs the batch; writes batch.logits_rows.size() rows of logits ([rows, n_vocab]; on
  // tensor-parallel ranks other than 0 nothing is written). Errors (not aborts) for
  // malformed batches: too many tokens, ids outside the vocabulary, slots outside the pool;
  // and for a collective that failed (a rank died or hangs).
  Status forward(const ForwardBatch& batch, float* logits);

  int64_t max_num_tokens() const { return max_num_tokens_; }

 private:
  Status validate(const ForwardBatch& batch) const;

  struct Projection {
    const WeightView* w;
    float* y;
  };
  // y = x [n, cols] times each w; x is quantized once when every w takes the int8 path.
  void project(const float* x, int64_t n, std::initializer_list<Projection> projections);
  // The sum over ranks of every rank's partial [n, n_embd] block (nothing on one rank).
  Status all_reduce(float* x, int64_t n);
  // x_ = the tokens' embedding rows: on a tensor-parallel rank, its own rows and zeros for
  // the others', summed over ranks.
  Status embed(const ForwardBatch& batch);
  // Rank 0's logits [rows, n_vocab] from every rank's vocabulary slice in local_logits_.
  Status gather_logits(int64_t rows, float* logits);

  const Model& model_;
  const ModelHparams& hp_;
  KvStorage* kv_;
  ThreadPool* pool_;
  ForwardRanks ranks_;
  int64_t max_num_tokens_;
  std::vector<kernels::RopeParams> rope_;  // [n_layer]: Gemma 3's local and global differ

  std::vector<float> x_;             // [max_num_tokens, n_embd] residual stream
  std::vector<float> xb_;            // [max_num_tokens, n_embd] normed
  std::vector<float> q_;             // [max_num_tokens, n_embd_q]
  std::vector<float> k_;             // [max_num_tokens, n_embd_kv]
  std::vector<float> v_;             // [max_num_tokens, n_embd_kv]
  std::vector<float> att_;           // [max_num_tokens, n_embd_q]
  std::vector<float> gate_;          // [max_num_tokens, n_ff]
  std::vector<float> up_;            // [max_num_tokens, n_ff]
  std::vector<float> tmp_;           // [max_num_tokens, n_embd]
  kernels::QuantizedRows xq_;        // xb_ quantized, for the int8 path
  std::vector<float> local_logits_;  // tensor parallel: this rank's [rows, vocab slice]
  std::vector<float> gathered_;      // rank 0: every rank's slice, rank after rank
};

}  // namespace moon
