// How one rank's slice of a model is cut for tensor parallelism, Megatron's way: each rank
// keeps a contiguous range of the attention heads (their rows of Q, K and V and their
// columns of the output projection), of the feed-forward's hidden units (rows of gate and
// up, columns of down) and of the vocabulary (rows of the embedding table and of the output
// matrix). Norms stay whole. With fewer KV heads than ranks, each KV head is kept by the
// ranks whose query heads use it, as vLLM does.
//
// After shard_model a rank's forward looks up only its own tokens' embedding rows (zeros for
// the others', all-reduced), computes partial sums of the residual after the attention and
// feed-forward blocks (all-reduced) and its slice of the logits.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/model.h"
#include "util/result.h"

namespace moon {

struct ShardPlan {
  int rank = 0;
  int size = 1;
  int64_t head_begin = 0, num_heads = 0;        // query heads
  int64_t kv_head_begin = 0, num_kv_heads = 0;  // KV heads (replicated when size > n_head_kv)
  int64_t ff_begin = 0, ff_size = 0;            // feed-forward hidden units
  std::vector<int64_t> vocab_counts;            // [size]: output rows each rank computes
  int64_t vocab_begin = 0;                      // this rank's first output row
};

// The plan for `rank` of `size`, or an error that names what does not divide: heads, KV
// heads, feed-forward width, or a column slice that would cut a quantization block.
Result<ShardPlan> plan_shard(const ModelHparams& hp, const ModelWeights& weights, int rank,
                             int size);

// Replaces `model`'s matrices and hyperparameters with the rank's slice: the sliced
// matrices are copied into memory the model owns and the file pages they came from are
// dropped, so a rank holds about 1/size of the weights. hparams keep the whole
// vocabulary (token ids and the sampler's rows); n_head, n_head_kv and n_ff become local.
Status shard_model(Model* model, const ShardPlan& plan);

}  // namespace moon
