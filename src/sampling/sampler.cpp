#include "sampling/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "sampling/kernels.h"
#include "sampling/top_k_top_p.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Per-thread buffers for the rows a thread samples, grown once and reused.
struct Scratch {
  std::vector<float> weights;
  std::vector<float> block_sums;
  std::vector<Candidate> candidates;
};
thread_local Scratch tls_scratch;

// A row whose maximum is +inf: its +inf logits share all the probability equally.
int32_t draw_among_infinite(std::span<const float> row, double u) {
  int64_t count = 0;
  for (float v : row) count += v == kInf;
  const int64_t pick = std::min<int64_t>(count - 1, static_cast<int64_t>(u * count));
  for (size_t i = 0, seen = 0; i < row.size(); ++i) {
    if (row[i] == kInf && static_cast<int64_t>(seen++) == pick) return static_cast<int32_t>(i);
  }
  return 0;  // unreachable: count >= 1
}

// Inverse CDF over the whole row's weights, by block sums first: the first token whose
// cumulative weight passes u·total.
int32_t draw_from_weights(const Scratch& s, int64_t n, double total, double u) {
  using sampling_internal::kWeightBlock;
  const double target = u * total;
  const int64_t n_blocks = (n + kWeightBlock - 1) / kWeightBlock;
  double acc = 0.0;
  int64_t b = 0;
  for (; b < n_blocks; ++b) {
    if (acc + s.block_sums[b] > target) break;
    acc += s.block_sums[b];
  }
  if (b < n_blocks) {
    const int64_t end = std::min(n, (b + 1) * kWeightBlock);
    for (int64_t i = b * kWeightBlock; i < end; ++i) {
      acc += s.weights[i];
      if (acc > target) return static_cast<int32_t>(i);
    }
  }
  // Rounding left the target just past the sums: the last token with any weight.
  for (int64_t i = std::min(n, (b + 1) * kWeightBlock) - 1; i >= 0; --i) {
    if (s.weights[i] > 0.0f) return static_cast<int32_t>(i);
  }
  return 0;
}

}  // namespace

SampledToken sample_greedy(std::span<const float> logits) {
  const GreedyResult r = greedy_pass(logits);
  return {r.id, r.logprob};
}

int32_t sample_from_row(std::span<const float> row, const GreedyResult& g, const SamplingParams& p,
                        double u) {
  if (g.max_logit == kInf) return draw_among_infinite(row, u);
  if (!(g.max_logit > -kInf)) return g.id;  // nothing finite: the greedy pass's choice
  const int64_t vocab = static_cast<int64_t>(row.size());
  const double temperature = p.temperature;
  // Below ~3e-39 the float 1/T is infinite and 0·inf would poison the row's maximum with NaN;
  // a temperature that small leaves all the weight on the argmax anyway.
  if (!(1.0 / temperature <= std::numeric_limits<float>::max())) return g.id;
  const float max = g.max_logit;
  // min-p keeps p_i >= min_p·p_max, i.e. (x_i - max)/T >= log(min_p).
  const float min_logit =
      p.min_p > 0.0f ? static_cast<float>(max + temperature * std::log(p.min_p)) : -kInf;
  const bool use_top_k = p.top_k > 0 && p.top_k < vocab;
  const bool use_top_p = p.top_p < 1.0f;
  Scratch& s = tls_scratch;
  const auto exp_weights = sampling_internal::exp_weights_for(simd_level());

  if (!use_top_k && !use_top_p) {
    // The whole (min-p filtered) distribution: vectorized weights, then inverse CDF.
    s.weights.resize(row.size());
    s.block_sums.resize((row.size() + sampling_internal::kWeightBlock - 1) /
                        sampling_internal::kWeightBlock);
    const double total = exp_weights(row.data(), vocab, max, static_cast<float>(1.0 / temperature),
                                     min_logit, s.weights.data(), s.block_sums.data());
    // No weight anywhere (every logit NaN but the maximum, say): fall back to greedy.
    if (!(total > 0.0)) return g.id;
    return draw_from_weights(s, vocab, total, u);
  }

  std::vector<Candidate>& c = s.candidates;
  if (use_top_k) {
    select_top_k(row, p.top_k, min_logit, c);
    for (Candidate& x : c) {
      x.weight = static_cast<float>(std::exp((static_cast<double>(x.logit) - max) / temperature));
    }
  } else {
    s.weights.resize(row.size());
    s.block_sums.resize((row.size() + sampling_internal::kWeightBlock - 1) /
                        sampling_internal::kWeightBlock);
    const double total = exp_weights(row.data(), vocab, max, static_cast<float>(1.0 / temperature),
                                     min_logit, s.weights.data(), s.block_sums.data());
    // A token of weight w has at least total - V·w of mass above it, so once that reaches
    // top_p·total it cannot be in the nucleus: most of a peaked tail goes without selection.
    const float floor_weight = static_cast<float>((1.0 - p.top_p) * total / vocab);
    c.clear();
    for (int64_t i = 0; i < vocab; ++i) {
      if (s.weights[i] > floor_weight) {
        c.push_back({row[i], static_cast<int32_t>(i), s.weights[i]});
      }
    }
  }
  if (c.empty()) return g.id;
  size_t m = c.size();
  if (use_top_p) {
    // The mass is that of every candidate before the cut: with top-k, the k best; without,
    // the whole row (the pre-filter above dropped only tokens outside the nucleus).
    double total = 0.0;
    if (use_top_k) {
      for (const Candidate& x : c) total += x.weight;
    } else {
      for (float b : s.block_sums) total += b;
    }
    m = top_p_prefix(c, p.top_p * total);
  }
  double total = 0.0;
  for (size_t i = 0; i < m; ++i) total += c[i].weight;
  if (!(total > 0.0)) return g.id;  // as above
  const double target = u * total;
  double acc = 0.0;
  for (size_t i = 0; i < m; ++i) {
    acc += c[i].weight;
    if (acc > target) return c[i].id;
  }
  for (size_t i = m; i-- > 0;) {
    if (c[i].weight > 0.0f) return c[i].id;
  }
  return g.id;
}

SequenceState::SequenceState(std::shared_ptr<const SamplingParams> params, uint64_t seed,
                             std::span<const int32_t> prompt)
    : params_(std::move(params)), rng_(seed) {
  if (params_->grammar) matcher_.emplace(params_->grammar);
  if (params_->repetition_penalty != 1.0f) history_.set_prompt(prompt);
}

SequenceState::SequenceState(const SamplingParams& params, uint64_t seed,
                             std::span<const int32_t> prompt)
    : SequenceState(std::make_shared<const SamplingParams>(params), seed, prompt) {}

SequenceState SequenceState::for_request(std::shared_ptr<const SamplingParams> params, int index,
                                         std::span<const int32_t> prompt) {
  const uint64_t seed =
      params->seed ? sequence_seed(*params->seed, static_cast<uint64_t>(index)) : random_seed();
  return SequenceState(std::move(params), seed, prompt);
}

SequenceState SequenceState::for_request(const SamplingParams& params, int index,
                                         std::span<const int32_t> prompt) {
  return for_request(std::make_shared<const SamplingParams>(params), index, prompt);
}

const TokenHistory& SequenceState::history(std::span<const int32_t> output) {
  const SamplingParams& p = *params_;
  if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    history_.catch_up(output);
  }
  return history_;
}

void SequenceState::record(int32_t token) {
  if (matcher_) matcher_->accept(token);
}

Sampler::Sampler(ThreadPool* pool, std::vector<int32_t> eos_ids)
    : pool_(pool), eos_ids_(std::move(eos_ids)) {}

void Sampler::sample(std::span<float> logits, int64_t vocab, std::span<const SamplingRow> rows,
                     std::span<SampleOutput> out) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = static_cast<int64_t>(rows.size());
  // Splits rows over the pool when there is enough work to pay for waking it.
  auto for_rows = [&](bool heavy, auto&& fn) {
    if (pool_ != nullptr && n > 1 && (heavy || n * vocab >= (1 << 16))) {
      pool_->parallel_for(n, fn, 1);
    } else {
      fn(int64_t{0}, n);
    }
  };

  bool any_processors = false, any_sampled = false, any_grammar = false;
  int top_n = 0;
  for (const SamplingRow& row : rows) {
    const SequenceState* state = row.state;
    any_processors |= has_logits_processors(state->params());
    any_grammar |= state->grammar() != nullptr;
    any_sampled |= !state->params().greedy();
    top_n = std::max(top_n, state->params().top_logprobs);
  }
  if (any_processors) {
    for_rows(false, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        SequenceState& state = *rows[r].state;
        if (!has_logits_processors(state.params())) continue;
        const std::span<const int32_t> output = rows[r].output;
        apply_logits_processors(logits.subspan(r * vocab, vocab), state.params(),
                                state.history(output), static_cast<int64_t>(output.size()),
                                eos_ids_);
      }
    });
  }

  if (any_grammar) {
    // After the processors, so a bias cannot revive a token the grammar forbids.
    for_rows(true, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        if (rows[r].state->grammar() != nullptr) {
          rows[r].state->grammar()->mask_logits(logits.subspan(r * vocab, vocab));
        }
      }
    });
  }

  std::vector<GreedyResult> greedy(static_cast<size_t>(n));
  greedy_pass_batch(logits.data(), n, vocab, top_n, greedy.data(), pool_);

  for_rows(any_sampled, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const SequenceState& state = *rows[r].state;
      const auto step = static_cast<uint64_t>(rows[r].output.size());
      const SamplingParams& params = state.params();
      const GreedyResult& g = greedy[r];
      const std::span<const float> row = logits.subspan(r * vocab, vocab);
      SampleOutput& o = out[r];
      o.id = g.id;
      o.logprob = g.logprob;
      if (!params.greedy()) {
        o.id = sample_from_row(row, g, params, state.rng().uniform(step));
        o.logprob = logprob_of(g, row[o.id]);
      }
      if (state.grammar() != nullptr && !(g.max_logit > -kInf) && !eos_ids_.empty()) {
        // The grammar and the processors together left nothing (it allows only the end,
        // which min_tokens masks): end rather than emit a token the grammar rejects.
        o.id = eos_ids_.front();
      }
      o.n_top = std::min(g.n_top, params.top_logprobs);
      std::copy(g.top.begin(), g.top.begin() + o.n_top, o.top.begin());
    }
  });
  for (int64_t r = 0; r < n; ++r) rows[r].state->record(out[r].id);

  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  stats_.calls += 1;
  stats_.rows += n;
  stats_.last_ms = ms;
  stats_.total_ms += ms;
  stats_.max_ms = std::max(stats_.max_ms, ms);
}

}  // namespace moon
