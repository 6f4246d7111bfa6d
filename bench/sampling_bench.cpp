// The per-step sampling cost: the fused greedy pass (argmax + the chosen token's true
// logprob in one read of each row) against the naive way (std::max_element, then a separate
// log-softmax pass with std::exp), for batch {1, 8, 32, 256} x vocab {32000, 128256}.
// bench/sampling_numpy.py times numpy doing the same on the same shapes; docs/performance.md
// puts them side by side.
//
// Counters: ns_per_row, and bytes_per_second = logits read (4 bytes each, once per row).
// Fused runs on 1 thread and on every core (rows, or segments of rows, split across the
// pool); naive is one thread, as numpy is. MOON_CPU=scalar|avx2 forces a lower SIMD level.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "sampling/greedy_pass.h"
#include "sampling/sampler.h"
#include "util/thread_pool.h"

namespace {

// Logits like a model's: normal, sigma 3 (a fixed seed; made once per shape and kept).
const std::vector<float>& logits(int64_t batch, int64_t vocab) {
  static std::map<std::pair<int64_t, int64_t>, std::unique_ptr<std::vector<float>>> cache;
  auto& slot = cache[{batch, vocab}];
  if (!slot) {
    slot = std::make_unique<std::vector<float>>(static_cast<size_t>(batch * vocab));
    std::mt19937 rng(static_cast<uint32_t>(batch * 131 + vocab));
    std::normal_distribution<float> dist(0.0f, 3.0f);
    for (float& v : *slot) v = dist(rng);
  }
  return *slot;
}

moon::ThreadPool& pool() {
  static moon::ThreadPool p(0);  // every core this process may use
  return p;
}

void set_counters(benchmark::State& state, int64_t batch, int64_t vocab) {
  state.SetBytesProcessed(state.iterations() * batch * vocab * 4);
  state.counters["ns_per_row"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["threads"] = static_cast<double>(state.range(2));
}

void BM_Fused(benchmark::State& state) {
  const int64_t batch = state.range(0), vocab = state.range(1);
  const bool threaded = state.range(2) > 1;
  const int top_n = static_cast<int>(state.range(3));
  const std::vector<float>& x = logits(batch, vocab);
  std::vector<moon::GreedyResult> out(static_cast<size_t>(batch));
  for (auto _ : state) {
    moon::greedy_pass_batch(x.data(), batch, vocab, top_n, out.data(),
                            threaded ? &pool() : nullptr);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, batch, vocab);
}

// The naive way: std::max_element for the argmax, then a separate log-softmax pass.
void BM_Naive(benchmark::State& state) {
  const int64_t batch = state.range(0), vocab = state.range(1);
  const std::vector<float>& x = logits(batch, vocab);
  std::vector<std::pair<int32_t, float>> out(static_cast<size_t>(batch));
  for (auto _ : state) {
    for (int64_t r = 0; r < batch; ++r) {
      const float* row = x.data() + r * vocab;
      const float* best = std::max_element(row, row + vocab);
      const float max = *best;
      float sum = 0.0f;
      for (int64_t i = 0; i < vocab; ++i) sum += std::exp(row[i] - max);
      out[r] = {static_cast<int32_t>(best - row), -std::log(sum)};
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, batch, vocab);
}

// For reference: a whole sampled step (temperature, top-k, top-p; processors off), per row.
void BM_Sampled(benchmark::State& state) {
  const int64_t batch = state.range(0), vocab = state.range(1);
  const bool threaded = state.range(2) > 1;
  const std::vector<float>& x = logits(batch, vocab);
  moon::SamplingParams params;
  params.temperature = 0.8f;
  params.top_k = 50;
  params.top_p = 0.95f;
  params.seed = 1;
  std::vector<moon::SequenceState> states;
  for (int64_t r = 0; r < batch; ++r) states.push_back(moon::SequenceState::for_request(params));
  std::vector<moon::SamplingRow> rows;
  for (auto& s : states) rows.push_back({&s, {}});
  std::vector<moon::SampleOutput> out(static_cast<size_t>(batch));
  std::vector<float> work = x;  // with no logits processors, the sampler leaves it as is
  moon::Sampler sampler(threaded ? &pool() : nullptr);
  for (auto _ : state) {
    sampler.sample(work, vocab, rows, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, batch, vocab);
}

void shapes(benchmark::internal::Benchmark* b, bool with_threads, bool with_top) {
  for (int64_t vocab : {32000, 128256}) {
    for (int64_t batch : {1, 8, 32, 256}) {
      std::vector<int64_t> threads = {1};
      if (with_threads && moon::ThreadPool::default_num_threads() > 1) {
        threads.push_back(moon::ThreadPool::default_num_threads());
      }
      for (int64_t t : threads) {
        for (int64_t top : {0, 20}) {
          if (with_top || top == 0) b->Args({batch, vocab, t, top});
        }
      }
    }
  }
  // Wall time: with threads, the caller's CPU time alone would flatter the pool.
  b->ArgNames({"batch", "vocab", "threads", "top"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_Fused)->Apply([](auto* b) { shapes(b, true, true); });
BENCHMARK(BM_Naive)->Apply([](auto* b) { shapes(b, false, false); });
BENCHMARK(BM_Sampled)->Apply([](auto* b) { shapes(b, true, false); });

}  // namespace

BENCHMARK_MAIN();
