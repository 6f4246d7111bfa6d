// The engine end to end on stories260K: continuous batching must not change a single token
// or logprob bit, whatever the batch, order, chunking, prefix caching or KV pressure.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "common/test_data.h"
#include "sampling/rng.h"
#include "stories_fixture.h"

namespace moon {
namespace {

using Key = std::pair<RequestId, int>;

struct Result1 {
  std::vector<TokenId> tokens;
  std::vector<float> logprobs;
  FinishReason reason = FinishReason::kNone;
};

class EngineTest : public test::StoriesTest {
 protected:
  // Runs requests (id -> prompt, params) to completion; results keyed by (id, index).
  std::map<std::pair<RequestId, int>, Result1> run(
      Engine& engine, const std::vector<std::pair<RequestId, std::vector<TokenId>>>& requests,
      const SamplingParams& params) {
    std::map<std::pair<RequestId, int>, Result1> results;
    for (const auto& [id, prompt] : requests) {
      EXPECT_TRUE(engine.add_request(id, prompt, params).ok());
    }
    for (int steps = 0; engine.has_work() && steps < 100000; ++steps) {
      auto updates = engine.step();
      EXPECT_TRUE(updates.ok()) << updates.error().message;
      if (!updates.ok()) break;
      for (const SequenceUpdate& u : *updates) {
        Result1& r = results[Key(u.request_id, u.index)];
        if (u.token >= 0) {
          r.tokens.push_back(u.token);
          r.logprobs.push_back(u.logprob);
        }
        if (u.finished) r.reason = u.finish_reason;
      }
    }
    EXPECT_FALSE(engine.has_work());
    return results;
  }

  static EngineConfig config(int64_t budget_tokens, bool prefix_caching,
                             uint64_t kv_bytes = 64ull << 20) {
    EngineConfig c = engine_config(budget_tokens, kv_bytes);
    c.enable_prefix_caching = prefix_caching;
    return c;
  }
};

TEST_F(EngineTest, AllGoldenPromptsTogetherGiveTheGoldenTokens) {
  struct Variant {
    int64_t budget;
    bool prefix_caching;
    bool reversed;
  };
  for (const Variant& v : {Variant{512, true, false}, Variant{512, false, true},
                           Variant{7, true, true}, Variant{33, false, false}}) {
    auto engine = make_engine(config(v.budget, v.prefix_caching));
    ASSERT_NE(engine, nullptr);
    std::vector<std::pair<RequestId, std::vector<TokenId>>> requests;
    for (size_t i = 0; i < prompts_.size(); ++i) {
      const size_t g = v.reversed ? prompts_.size() - 1 - i : i;
      requests.push_back({g, prompts_[g]});
    }
    auto results = run(*engine, requests, greedy());
    for (size_t g = 0; g < prompts_.size(); ++g) {
      EXPECT_EQ(results[Key(g, 0)].tokens, outputs_[g])
          << "prompt " << g << " budget " << v.budget << " caching " << v.prefix_caching;
    }
    EXPECT_EQ(engine->kv_stats().num_blocks_used, 0);
  }
}

// The int8 path is batch invariant too: on llama.cpp's Q8_0 file, the golden prompts batched
// together and prefilled in chunks give each prompt's tokens and logprobs alone, bit for bit
// (activation rows are quantized independently, so a row's blocks cannot depend on the batch).
TEST_F(EngineTest, Q8_0FileIsBatchInvariant) {
  MOON_REQUIRE_TEST_FILE(q8_path, "models/stories260K-q8_0.gguf");
  auto q8 = load_model(q8_path);
  ASSERT_TRUE(q8.ok()) << q8.error().message;
  model_ = std::move(q8).value();
  ASSERT_EQ(model_->weights.layers[0].wq.type, DType::Q8_0);
  std::vector<std::pair<RequestId, std::vector<TokenId>>> requests;
  for (size_t g = 0; g < prompts_.size(); ++g) requests.push_back({g, prompts_[g]});
  std::map<Key, Result1> alone;
  for (const auto& request : requests) {
    auto engine = make_engine(config(512, false));
    ASSERT_NE(engine, nullptr);
    alone[Key(request.first, 0)] = run(*engine, {request}, greedy())[Key(request.first, 0)];
  }
  for (int64_t budget : {512, 7}) {
    auto engine = make_engine(config(budget, true));
    ASSERT_NE(engine, nullptr);
    auto results = run(*engine, requests, greedy());
    for (size_t g = 0; g < prompts_.size(); ++g) {
      const Result1& want = alone[Key(g, 0)];
      const Result1& got = results[Key(g, 0)];
      ASSERT_EQ(want.tokens.size(), 48u);
      ASSERT_EQ(got.tokens, want.tokens) << "prompt " << g << " budget " << budget;
      EXPECT_EQ(0, std::memcmp(got.logprobs.data(), want.logprobs.data(),
                               want.logprobs.size() * sizeof(float)))
          << "prompt " << g << " budget " << budget;
    }
  }
}

TEST_F(EngineTest, DefaultKvBudgetIsAFullBatchAtFullLengthForASmallModel) {
  // stories260K needs a few hundred bytes a token: the default share of memory would be
  // millions of blocks the scheduler can never fill.
  EngineConfig c = engine_config(64, /*kv_bytes=*/0);
  c.scheduler.max_num_seqs = 5;
  c.scheduler.max_model_len = 100;
  auto engine = make_engine(c);
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->kv_stats().num_blocks_total, 5 * 7);  // 100 tokens: 7 blocks of 16
  // An explicit size is taken as given.
  c.kv_cache_bytes = 2 * kv_bytes_for_sequences(engine->kv_layout(), 5, 100);
  EXPECT_EQ(make_engine(c)->kv_stats().num_blocks_total, 2 * 5 * 7);
}

TEST_F(EngineTest, LogprobsInABatchAreBitwiseThoseOfTheRequestAlone) {
  auto batched_engine = make_engine(config(40, true));
  std::vector<std::pair<RequestId, std::vector<TokenId>>> all;
  for (size_t g = 0; g < prompts_.size(); ++g) all.push_back({g, prompts_[g]});
  auto batched = run(*batched_engine, all, greedy());
  for (size_t g = 0; g < prompts_.size(); ++g) {
    auto alone_engine = make_engine(config(512, false));
    auto alone = run(*alone_engine, {{g, prompts_[g]}}, greedy());
    ASSERT_EQ(alone[Key(g, 0)].tokens, batched[Key(g, 0)].tokens) << g;
    ASSERT_EQ(alone[Key(g, 0)].logprobs.size(), batched[Key(g, 0)].logprobs.size());
    EXPECT_EQ(0, std::memcmp(alone[Key(g, 0)].logprobs.data(), batched[Key(g, 0)].logprobs.data(),
                             alone[Key(g, 0)].logprobs.size() * sizeof(float)))
        << "prompt " << g;
  }
}

// The strongest form of batch invariance: one request among 255 others of random lengths,
// at every position of the batch order, against the same request alone.
TEST_F(EngineTest, RequestAmong255OthersIsBitwiseTheSameAsAlone) {
  auto alone_engine = make_engine(config(512, false));
  const auto alone = run(*alone_engine, {{0, prompts_[0]}}, greedy());
  std::mt19937 rng(99);
  for (size_t target_position : {size_t{0}, size_t{128}, size_t{255}}) {
    EngineConfig c = config(300, true, 256ull << 20);
    c.scheduler.max_num_seqs = 256;
    auto engine = make_engine(c);
    std::vector<std::pair<RequestId, std::vector<TokenId>>> requests;
    for (size_t i = 0; i < 256; ++i) {
      if (i == target_position) {
        requests.push_back({0, prompts_[0]});
        continue;
      }
      std::vector<TokenId> prompt = {1};
      for (int t = 1 + static_cast<int>(rng() % 60); t > 0; --t) prompt.push_back(3 + rng() % 500);
      requests.push_back({1000 + i, prompt});
    }
    SamplingParams p = greedy();
    auto results = run(*engine, requests, p);
    const Result1& got = results[Key(0, 0)];
    ASSERT_EQ(got.tokens, alone.at(Key(0, 0)).tokens) << "position " << target_position;
    EXPECT_EQ(0, std::memcmp(got.logprobs.data(), alone.at(Key(0, 0)).logprobs.data(),
                             got.logprobs.size() * sizeof(float)))
        << "position " << target_position;
  }
}

TEST_F(EngineTest, TooSmallPoolPreemptsButEveryRequestCompletesIdentically) {
  // Room for about 60 tokens per layer... of 9 requests each needing up to ~130.
  const KvLayout layout_probe = [&] {
    auto e = make_engine(config(64, true));
    return e->kv_layout();
  }();
  const uint64_t small = 16 * layout_probe.block_size * layout_probe.bytes_per_token();
  auto engine = make_engine(config(64, true, small));
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(engine->kv_layout().num_blocks, 16);
  std::vector<std::pair<RequestId, std::vector<TokenId>>> requests;
  for (size_t g = 0; g < prompts_.size(); ++g) {
    if (prompts_[g].size() + 48 > 15 * 16) continue;  // cannot fit alone: refused
    requests.push_back({g, prompts_[g]});
  }
  auto results = run(*engine, requests, greedy());
  EXPECT_GT(engine->num_preemptions(), 0);
  for (const auto& [g, prompt] : requests) {
    EXPECT_EQ(results[Key(g, 0)].tokens, outputs_[g]) << "prompt " << g;
  }
}

TEST_F(EngineTest, ParallelSamplingSequencesEqualSeededSoloRuns) {
  SamplingParams params;
  params.max_tokens = 24;
  params.temperature = 0.9f;
  params.seed = 1234;
  params.n = 4;
  auto engine = make_engine(config(64, true));
  auto together = run(*engine, {{7, prompts_[0]}}, params);
  ASSERT_EQ(together.size(), 4u);
  std::set<std::vector<TokenId>> distinct;
  for (int k = 0; k < 4; ++k) {
    SamplingParams solo = params;
    solo.n = 1;
    solo.seed = sequence_seed(*params.seed, k);  // what sequence k of the request uses
    auto solo_engine = make_engine(config(64, false));
    auto alone = run(*solo_engine, {{7, prompts_[0]}}, solo);
    EXPECT_EQ(together[Key(7, k)].tokens, alone[Key(7, 0)].tokens) << "sequence " << k;
    distinct.insert(together[Key(7, k)].tokens);
  }
  EXPECT_GT(distinct.size(), 1u);
  EXPECT_EQ(engine->kv_stats().num_blocks_used, 0);
}

TEST_F(EngineTest, AbortFreesBlocksAndReportsAbort) {
  auto engine = make_engine(config(64, true));
  ASSERT_TRUE(engine->add_request(1, prompts_[6], greedy()).ok());
  ASSERT_TRUE(engine->add_request(2, prompts_[0], greedy()).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(engine->step().ok());
  EXPECT_GT(engine->kv_stats().num_blocks_used, 0);
  auto updates = engine->abort(1);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].finish_reason, FinishReason::kAbort);
  while (engine->has_work()) ASSERT_TRUE(engine->step().ok());
  EXPECT_EQ(engine->kv_stats().num_blocks_used, 0);
}

TEST_F(EngineTest, BadRequestsAreRefusedWithoutSideEffects) {
  auto engine = make_engine(config(64, true));
  EXPECT_FALSE(engine->add_request(1, {}, greedy()).ok());
  EXPECT_FALSE(engine->add_request(1, {1, 512}, greedy()).ok());
  SamplingParams too_long = greedy();
  too_long.max_tokens = 10000;
  EXPECT_FALSE(engine->add_request(1, {1, 2}, too_long).ok());
  EXPECT_FALSE(engine->has_work());
  EXPECT_TRUE(engine->add_request(1, {1, 2}, greedy()).ok());
}

}  // namespace
}  // namespace moon
