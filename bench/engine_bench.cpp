// Engine-level measurements of the paged KV cache, each a ratio from one run:
//  - time to first token of a request whose 1,024-token prefix is already cached, against
//    the same request with nothing cached (prefix caching);
//  - the fraction of KV slots wasted at steady state with many sequences of mixed lengths
//    decoding together (only each sequence's last block is partly filled).
// Uses the built-in model, so it runs anywhere; its forward is small, which makes the cached
// case's fixed costs (scheduling, one chunk's forward) stand out more than on a real model.
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>

#include "engine/engine.h"
#include "model/model.h"

namespace {

using namespace moon;

const Model& model() {
  static std::unique_ptr<Model> m = std::move(load_model("builtin:tiny")).value();
  return *m;
}

std::unique_ptr<Engine> make_engine(bool prefix_caching, int64_t budget = 2048) {
  EngineConfig c;
  c.scheduler.max_num_batched_tokens = budget;
  c.scheduler.max_num_seqs = 256;
  c.scheduler.max_model_len = 2048;
  c.kv_cache_bytes = 256ull << 20;
  c.enable_prefix_caching = prefix_caching;
  c.num_threads = 1;
  return std::move(Engine::create(model(), {2}, c)).value();
}

std::vector<TokenId> random_tokens(std::mt19937& rng, int64_t n) {
  std::vector<TokenId> t(static_cast<size_t>(n));
  for (TokenId& id : t) id = 3 + static_cast<TokenId>(rng() % 300);
  return t;
}

// Seconds from add_request to the first generated token.
double time_to_first_token(Engine& engine, RequestId id, const std::vector<TokenId>& prompt) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = 1;
  p.ignore_eos = true;
  const auto start = std::chrono::steady_clock::now();
  if (!engine.add_request(id, prompt, p).ok()) std::abort();
  while (engine.has_work()) {
    auto updates = engine.step();
    if (!updates.ok()) std::abort();
    for (const SequenceUpdate& u : *updates) {
      if (u.request_id == id && u.token >= 0) {
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        while (engine.has_work()) (void)engine.step();
        return s;
      }
    }
  }
  return 0.0;
}

void BM_TimeToFirstToken(benchmark::State& state) {
  const bool cached = state.range(0) != 0;
  std::mt19937 rng(7);
  const std::vector<TokenId> prefix = random_tokens(rng, 1024);
  auto engine = make_engine(true);
  RequestId id = 1;
  if (cached) time_to_first_token(*engine, id++, prefix);  // warm the cache
  for (auto _ : state) {
    std::vector<TokenId> prompt = cached ? prefix : random_tokens(rng, 1024);
    const std::vector<TokenId> suffix = random_tokens(rng, 16);
    prompt.insert(prompt.end(), suffix.begin(), suffix.end());
    state.SetIterationTime(time_to_first_token(*engine, id++, prompt));
  }
  state.counters["prefix_hit_rate"] = engine->kv_stats().prefix_hit_rate;
}
BENCHMARK(BM_TimeToFirstToken)
    ->ArgName("cached")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// 128 sequences of 16..1024-token prompts decoding together; waste sampled every step.
void BM_SteadyStateWaste(benchmark::State& state) {
  std::mt19937 rng(11);
  double waste_sum = 0;
  int64_t samples = 0;
  for (auto _ : state) {
    auto engine = make_engine(false, 4096);
    SamplingParams p;
    p.temperature = 0.0f;
    p.max_tokens = 64;
    p.ignore_eos = true;
    for (RequestId id = 0; id < 128; ++id) {
      (void)engine->add_request(id, random_tokens(rng, 16 + rng() % 1009), p);
    }
    while (engine->has_work()) {
      (void)engine->step();
      const KvStats s = engine->kv_stats();
      if (s.num_slots_used > 0 && engine->num_waiting() == 0) {
        waste_sum += 1.0 - static_cast<double>(s.num_tokens_stored) / s.num_slots_used;
        ++samples;
      }
    }
  }
  state.counters["wasted_fraction"] = samples ? waste_sum / samples : 0.0;
}
BENCHMARK(BM_SteadyStateWaste)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
