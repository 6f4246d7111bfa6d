// The sampling chain, batched: per row, logits processors (bias, min_tokens mask,
// penalties) in place, then the grammar's mask (disallowed tokens to -inf), then one fused pass for
// the argmax, the log-sum-exp and any top-N logprobs, then, unless the row is greedy, temperature,
// min-p, top-k and top-p by partial selection and one draw from the sequence's own counter-based
// generator. Rows are split across a thread pool; a row's token never depends on the batch it rides
// in. Every call records how long it took.
#pragma once

#include <array>
#include <cstdint>
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

// One sequence's sampling state across steps: its parameters, its generator and what the
// penalties need to know of its history.
class SequenceState {
 public:
  // `seed` is this sequence's own (see for_request).
  SequenceState(SamplingParams params, uint64_t seed);
  // Sequence `index` of a request: the request's seed (or a random one) made distinct per
  // sequence. The prompt feeds the repetition penalty.
  static SequenceState for_request(const SamplingParams& params, int index = 0,
                                   std::span<const int32_t> prompt = {});

  const SamplingParams& params() const { return params_; }
  const RequestRng& rng() const { return rng_; }
  TokenHistory& history() { return history_; }
  const TokenHistory& history() const { return history_; }
  int64_t step() const { return step_; }  // tokens sampled so far
  // Where the output stands in params().grammar, when there is one.
  const grammar::GrammarMatcher* grammar() const { return matcher_ ? &*matcher_ : nullptr; }

  // What the sampler does after choosing `token`: the step advances, the history grows if
  // penalties will read it, and the grammar moves past the token.
  void record(int32_t token);

 private:
  SamplingParams params_;
  RequestRng rng_;
  TokenHistory history_;
  std::optional<grammar::GrammarMatcher> matcher_;
  int64_t step_ = 0;
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
  // place by the logits processors. Each state is advanced (step, history). A null row is
  // skipped (its logits and output are left as they are): the engine's beam-search rows.
  void sample(std::span<float> logits, int64_t vocab, std::span<SequenceState* const> rows,
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
