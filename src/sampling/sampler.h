// The sampling chain, batched: per row, logits processors (bias, min_tokens mask,
// penalties) in place, then the grammar's mask (disallowed tokens to -inf), then one fused pass for
// the argmax, the log-sum-exp and any top-N logprobs, then, unless the row is greedy, temperature,
// min-p, top-k and top-p by partial selection and one draw from the sequence's own counter-based
// generator. Rows are split across a thread pool; a row's token never depends on the batch it rides
// in. Every call records how long it took.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "grammar/grammar_automaton.h"
#include "sampling/greedy_pass.h"
#include "sampling/logits_processors.h"
#include "sampling/rng.h"
#include "sampling/sampling_params.h"

namespace moon {

class ThreadPool;

// A greedy choice: the argmax and its log-probability.
struct SampledToken {
  int32_t id = -1;
  float logprob = 0.0f;  // log-softmax of the chosen token under the unscaled logits
};

// Argmax with ties going to the lowest id; NaN logits never win. Also returns the chosen
// token's log-probability. The row must be non-empty. (The fused greedy pass.)
SampledToken sample_greedy(std::span<const float> logits);

// One sequence's sampling state across steps: its request's parameters (one copy, shared by
// the request's sequences), its generator and where its output stands in the grammar. What
// the sequence has generated is not kept here: the sequence owns its tokens and hands them to
// the sampler with each row (SamplingRow), and the penalties' index is derived from them.
class SequenceState {
 public:
  // `seed` is this sequence's own (see for_request); `prompt` feeds the repetition penalty.
  SequenceState(std::shared_ptr<const SamplingParams> params, uint64_t seed,
                std::span<const int32_t> prompt = {});
  SequenceState(const SamplingParams& params, uint64_t seed, std::span<const int32_t> prompt = {});
  // Sequence `index` of a request: the request's seed (or a random one) made distinct per
  // sequence.
  static SequenceState for_request(std::shared_ptr<const SamplingParams> params, int index = 0,
                                   std::span<const int32_t> prompt = {});
  static SequenceState for_request(const SamplingParams& params, int index = 0,
                                   std::span<const int32_t> prompt = {});

  const SamplingParams& params() const { return *params_; }
  const std::shared_ptr<const SamplingParams>& shared_params() const { return params_; }
  const RequestRng& rng() const { return rng_; }
  // What the penalties read, brought up to date with `output` (the sequence's generated
  // tokens so far, which only ever grow). Only rows with penalties ask, so the common case
  // keeps no map.
  const TokenHistory& history(std::span<const int32_t> output);
  // Where the output stands in params().grammar, when there is one.
  const grammar::GrammarMatcher* grammar() const { return matcher_ ? &*matcher_ : nullptr; }

  // What the sampler does after choosing `token`: the grammar moves past it. (The token
  // itself joins the sequence when the scheduler records the step.)
  void record(int32_t token);

 private:
  std::shared_ptr<const SamplingParams> params_;
  RequestRng rng_;
  TokenHistory history_;
  std::optional<grammar::GrammarMatcher> matcher_;
};

// One row of a sampler call: the sequence's state and the tokens it has generated so far
// (their count is the step, which keys its generator and the min_tokens mask).
struct SamplingRow {
  SequenceState* state = nullptr;
  std::span<const int32_t> output;
};

struct SampleOutput {
  int32_t id = 0;
  // log-softmax of `id` under the processed logits (after bias and penalties, before
  // temperature and truncation), and likewise for the top entries.
  float logprob = 0.0f;
  int n_top = 0;  // params.top_logprobs of them (fewer if the row has fewer finite logits)
  std::array<TokenLogprob, kMaxTopLogprobs> top{};
};

struct SamplerStats {
  int64_t calls = 0;
  int64_t rows = 0;
  double last_ms = 0.0;  // the latest call (one decode step's sampling)
  double total_ms = 0.0;
  double max_ms = 0.0;
};

class Sampler {
 public:
  // `eos_ids`: the model's end-of-generation tokens, masked while min_tokens is not reached.
  explicit Sampler(ThreadPool* pool = nullptr, std::vector<int32_t> eos_ids = {});

  // One token per row. `logits` is [rows.size(), vocab], row-major, and is modified in
  // place by the logits processors. Each row's grammar advances past its token.
  void sample(std::span<float> logits, int64_t vocab, std::span<const SamplingRow> rows,
              std::span<SampleOutput> out);

  const SamplerStats& stats() const { return stats_; }

 private:
  ThreadPool* pool_ = nullptr;
  std::vector<int32_t> eos_ids_;
  SamplerStats stats_;
};

// The token a non-greedy row draws, given its fused-pass result `g` and a uniform u in
// [0, 1): temperature, then min-p, top-k, top-p, then inverse-CDF. Exposed for tests.
int32_t sample_from_row(std::span<const float> row, const GreedyResult& g,
                        const SamplingParams& params, double u);

}  // namespace moon
