// The fused greedy pass: one read of a row of logits yields its argmax (ties to the lowest
// id, NaN never wins), the chosen token's true log-probability (online max and sum of
// exponentials, not the raw logit) and, optionally, the top-N tokens with their
// log-probabilities. Vectorized with AVX-512 or AVX2 when the CPU has them (picked at run
// time), with a scalar fallback.
//
// Rows are cut into fixed segments of kGreedySegment logits whose partial results are merged
// in order, so a row's result is bit-for-bit the same whether it ran alone, in a batch, or
// split across threads.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "util/cpu_features.h"

namespace moon {

class ThreadPool;

inline constexpr int kMaxTopLogprobs = 20;
inline constexpr int64_t kGreedySegment = 16384;

struct TokenLogprob {
  int32_t id = -1;
  float logprob = 0.0f;
};

struct GreedyResult {
  int32_t id = 0;        // always inside the row
  float logprob = 0.0f;  // log-softmax of `id`
  // For a row with a finite maximum: log p(t) = logit[t] - max_logit - log_sum_exp.
  float max_logit = 0.0f;
  float log_sum_exp = 0.0f;  // ln Σ exp(logit - max_logit); NaN and -inf logits count 0
  int n_top = 0;             // the best n_top tokens, best first (ties: lower id first)
  std::array<TokenLogprob, kMaxTopLogprobs> top{};

  std::span<const TokenLogprob> top_logprobs() const { return {top.data(), size_t(n_top)}; }
};

// The log-probability of a token with logit `logit` in the row `r` summarizes. Exact for
// rows with a finite maximum; for rows with +inf logits, see greedy_pass.
float logprob_of(const GreedyResult& r, float logit);

// One row (non-empty), at simd_level(). top_n in [0, kMaxTopLogprobs].
//
// Non-finite logits: NaN counts as -inf. If some logits are +inf, they share all the
// probability (each gets -log(count)), the first one wins and the others get -inf. A row
// with no finite logit and no +inf picks the lowest id that is not NaN (0 if all are),
// with logprob -inf and no top entries. Top entries only list finite (or +inf) logits, so
// there may be fewer than top_n.
GreedyResult greedy_pass(std::span<const float> row, int top_n = 0);

// The same at an explicit level (capped at what the hardware has): for tests and benchmarks.
GreedyResult greedy_pass(std::span<const float> row, int top_n, SimdLevel level);

// `n_rows` rows of `vocab` logits, row-major, into out[0, n_rows). Rows (and for small
// batches, segments of rows) are split across `pool` when there is enough work; pool may
// be null. Results do not depend on the pool or the batch.
void greedy_pass_batch(const float* logits, int64_t n_rows, int64_t vocab, int top_n,
                       GreedyResult* out, ThreadPool* pool);
void greedy_pass_batch(const float* logits, int64_t n_rows, int64_t vocab, int top_n,
                       GreedyResult* out, ThreadPool* pool, SimdLevel level);

}  // namespace moon
