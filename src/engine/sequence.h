// One sequence of tokens being generated: a prompt followed by what has been sampled so far.
// A request with n > 1 (parallel sampling) starts as one sequence holding the ids of its
// n - 1 siblings; the scheduler forks them off when its prompt's logits are sampled, and
// they share the prompt's KV blocks. Everything a sequence is lives here, owned by the
// scheduler: the KV manager keeps only its blocks, the sampler reads its tokens.
//
// The scheduler needs nothing but counts: `num_tokens_computed` (tokens whose K and V are
// in the cache) catches up with `tokens.size()` a chunk at a time, so prefill, chunked
// prefill, prefix-cache hits, recompute after preemption and decode are one mechanism.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "sampling/finish_reason.h"
#include "sampling/sampler.h"

namespace moon {

using TokenId = int32_t;
using RequestId = uint64_t;
using SequenceId = uint64_t;

// A preempted sequence is simply waiting again (with nothing computed).
enum class SequenceStatus { kWaiting, kRunning, kFinished };

struct Sequence {
  SequenceId id = 0;
  RequestId request_id = 0;
  int index = 0;                // which of its request's n sequences
  std::vector<TokenId> tokens;  // prompt, then generated tokens
  int64_t num_tokens_prompt = 0;
  int64_t num_tokens_computed = 0;  // prefix of `tokens` whose KV is cached
  SequenceStatus status = SequenceStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;
  // The request asked for prompt logprobs that are not all computed yet: every prompt row
  // needs logits, so the prefix cache may not skip any of them.
  bool needs_prompt_logits = false;
  int64_t next_prompt_logprob = 1;  // the next prompt position to report, if asked
  // Parallel sampling: the ids of siblings 1..n-1, until the first sample forks them.
  std::vector<SequenceId> pending_forks;
  bool scheduled = false;  // has been in a batch (the request has left the queue)
  // The sampler's state: the request's parameters, the seeded generator, the grammar.
  std::optional<SequenceState> sampling;

  const SamplingParams& params() const { return sampling->params(); }
  int64_t max_tokens() const { return params().max_tokens; }
  std::span<const TokenId> output() const {
    return std::span(tokens).subspan(static_cast<size_t>(num_tokens_prompt));
  }

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_tokens_output() const { return num_tokens() - num_tokens_prompt; }
  int64_t num_tokens_uncomputed() const { return num_tokens() - num_tokens_computed; }
};

}  // namespace moon
