// What paged KV blocks buy, and what the bookkeeping costs.
//
//   BM_KvCapacityPagedVsContiguous  sequences of mixed lengths admitted into one budget,
//       paged (16-token blocks) vs one max-length (2048) buffer per sequence. Arg 0: lengths
//       uniform in 16..2048; arg 1: long-tailed like chat traffic (exponential, mean about 500
//       tokens, as the ShareGPT conversations of the PagedAttention paper: 161 prompt + 338
//       output tokens on average), capped at 2048.
//       Counters: seqs_paged, seqs_contiguous, capacity_ratio, waste (empty slots / slots).
//   BM_KvForkSharing                n=4 samples of one 512-token prompt, 128 new tokens each:
//       blocks used by forks vs 4 separate sequences (block_ratio), and separate sequences
//       that find the prompt in the prefix cache instead.
//   BM_KvDecodeStepBookkeeping      allocate_slots + commit_full_blocks for 256 decoding
//       sequences: per-sequence-step cost of the manager (items = sequence steps).
//   BM_KvMatchPrefix                a fully cached 2048-token prompt: hashing and confirming
//       127 blocks (items = prompt tokens).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kv/kv_cache_manager.h"
#include "util/splitmix64.h"

namespace {

using moon::KvCacheManager;

constexpr int64_t kBlockSize = 16;
constexpr int64_t kMaxLen = 2048;

std::vector<int32_t> random_tokens(moon::SplitMix64& rng, int64_t n) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(32000));
  return tokens;
}

void BM_KvCapacityPagedVsContiguous(benchmark::State& state) {
  const int64_t budget_tokens = 64 * kMaxLen;  // e.g. 16 GiB at Llama-3-8B's 128 KiB/token
  const int64_t num_blocks = budget_tokens / kBlockSize;
  const std::vector<int32_t> tokens(kMaxLen, 1);
  int64_t seqs_paged = 0;
  double waste = 0;
  for (auto _ : state) {
    KvCacheManager kv(num_blocks, kBlockSize, false);
    moon::SplitMix64 rng(42);
    uint64_t id = 0;
    auto next_length = [&]() -> int64_t {
      if (state.range(0) == 0) return 16 + static_cast<int64_t>(rng.below(kMaxLen - 15));
      const double u = (static_cast<double>(rng.below(1u << 30)) + 0.5) / (1u << 30);
      return std::min<int64_t>(kMaxLen, 16 + static_cast<int64_t>(-std::log(u) * 484.0));
    };
    while (kv.allocate_slots(id, tokens, next_length())) ++id;
    seqs_paged = static_cast<int64_t>(id);
    const moon::KvStats stats = kv.stats();
    waste = 1.0 - static_cast<double>(stats.num_tokens_stored) /
                      static_cast<double>(stats.num_slots_used);
    benchmark::DoNotOptimize(stats);
  }
  const int64_t seqs_contiguous = budget_tokens / kMaxLen;
  state.counters["seqs_paged"] = static_cast<double>(seqs_paged);
  state.counters["seqs_contiguous"] = static_cast<double>(seqs_contiguous);
  state.counters["capacity_ratio"] =
      static_cast<double>(seqs_paged) / static_cast<double>(seqs_contiguous);
  state.counters["waste"] = waste;
}
BENCHMARK(BM_KvCapacityPagedVsContiguous)
    ->ArgName("chat_lengths")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond);

// Blocks in use after n samples of `prompt` each generate `num_new` tokens.
int64_t blocks_after_sampling(KvCacheManager& kv, const std::vector<int32_t>& prompt, int n,
                              int64_t num_new, bool fork) {
  moon::SplitMix64 rng(7);
  std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(n), prompt);
  for (int s = 0; s < n; ++s) {
    if (fork && s > 0) {
      kv.fork(0, static_cast<uint64_t>(s));
      continue;
    }
    const int64_t hit = kv.match_prefix(static_cast<uint64_t>(s), prompt);
    kv.allocate_slots(static_cast<uint64_t>(s), prompt, static_cast<int64_t>(prompt.size()) - hit);
    kv.commit_full_blocks(static_cast<uint64_t>(s), prompt);
  }
  for (int64_t step = 0; step < num_new; ++step) {
    for (int s = 0; s < n; ++s) {
      auto& tokens = seqs[static_cast<size_t>(s)];
      tokens.push_back(static_cast<int32_t>(rng.below(32000)));
      kv.allocate_slots(static_cast<uint64_t>(s), tokens, 1);
      kv.commit_full_blocks(static_cast<uint64_t>(s), tokens);
    }
    kv.take_pending_copies();
  }
  return kv.stats().num_blocks_used;
}

void BM_KvForkSharing(benchmark::State& state) {
  constexpr int kN = 4;
  constexpr int64_t kPrompt = 512, kNew = 128;
  moon::SplitMix64 rng(1);
  const std::vector<int32_t> prompt = random_tokens(rng, kPrompt);
  int64_t forked = 0, separate = 0, separate_cached = 0;
  for (auto _ : state) {
    KvCacheManager a(1024, kBlockSize, false), b(1024, kBlockSize, false),
        c(1024, kBlockSize, true);
    forked = blocks_after_sampling(a, prompt, kN, kNew, true);
    separate = blocks_after_sampling(b, prompt, kN, kNew, false);
    separate_cached = blocks_after_sampling(c, prompt, kN, kNew, false);
  }
  state.counters["blocks_forked"] = static_cast<double>(forked);
  state.counters["blocks_separate"] = static_cast<double>(separate);
  state.counters["blocks_separate_prefix_cache"] = static_cast<double>(separate_cached);
  state.counters["block_ratio"] = static_cast<double>(separate) / static_cast<double>(forked);
}
BENCHMARK(BM_KvForkSharing)->Unit(benchmark::kMicrosecond);

void BM_KvDecodeStepBookkeeping(benchmark::State& state) {
  constexpr int kSeqs = 256;
  constexpr int64_t kPrompt = 1024, kSteps = 256;
  const bool caching = state.range(0) != 0;
  moon::SplitMix64 rng(3);
  std::vector<std::vector<int32_t>> base;
  for (int s = 0; s < kSeqs; ++s) base.push_back(random_tokens(rng, kPrompt));
  for (auto _ : state) {
    state.PauseTiming();
    KvCacheManager kv(kSeqs * (kPrompt + kSteps) / kBlockSize + kSeqs, kBlockSize, caching);
    auto seqs = base;
    for (int s = 0; s < kSeqs; ++s) {
      kv.allocate_slots(static_cast<uint64_t>(s), seqs[static_cast<size_t>(s)], kPrompt);
      kv.commit_full_blocks(static_cast<uint64_t>(s), seqs[static_cast<size_t>(s)]);
    }
    for (auto& t : seqs) t.reserve(kPrompt + kSteps);
    state.ResumeTiming();
    for (int64_t step = 0; step < kSteps; ++step) {
      for (int s = 0; s < kSeqs; ++s) {
        auto& tokens = seqs[static_cast<size_t>(s)];
        tokens.push_back(static_cast<int32_t>(step));
        if (!kv.allocate_slots(static_cast<uint64_t>(s), tokens, 1)) state.SkipWithError("full");
        kv.commit_full_blocks(static_cast<uint64_t>(s), tokens);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kSeqs * kSteps);
}
BENCHMARK(BM_KvDecodeStepBookkeeping)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_KvMatchPrefix(benchmark::State& state) {
  moon::SplitMix64 rng(5);
  const std::vector<int32_t> prompt = random_tokens(rng, kMaxLen);
  KvCacheManager kv(4 * kMaxLen / kBlockSize, kBlockSize, true);
  kv.allocate_slots(0, prompt, kMaxLen);
  kv.commit_full_blocks(0, prompt);
  uint64_t id = 1;
  int64_t hit = 0;
  for (auto _ : state) {
    hit = kv.match_prefix(id, prompt);
    kv.free(id++);
  }
  state.counters["hit_tokens"] = static_cast<double>(hit);
  state.SetItemsProcessed(state.iterations() * kMaxLen);
}
BENCHMARK(BM_KvMatchPrefix);

}  // namespace

BENCHMARK_MAIN();
