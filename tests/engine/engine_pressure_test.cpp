// The engine under the pressure one client can put on it: beam searches on a KV cache far
// too small for all their beams (once a livelock: beams parked waiting for preempted
// siblings held every block), and one request whose n outnumbers the batch (once it ran all
// its sequences at once, past --max-num-seqs). Every request must finish, with exactly the
// output it has without the pressure, and a small request beside them must keep its pace.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <tuple>

#include "engine/engine.h"
#include "sampling/rng.h"
#include "stories_fixture.h"

namespace moon {
namespace {

using Key = std::pair<RequestId, int>;

class EnginePressureTest : public test::StoriesTest {
 protected:
  struct Run {
    std::map<Key, std::vector<TokenId>> tokens;
    std::map<Key, FinishReason> reasons;
    std::map<RequestId, int64_t> finished_at;  // the step its last sequence finished in
    int64_t steps = 0;
    int64_t max_running = 0;
  };

  // Adds `late` at step `late_step` (when given), then steps until nothing is left. Every
  // step must succeed: the engine reports a step with work that scheduled nothing as an
  // error, so this also asserts progress at every step.
  Run run(Engine& engine,
          const std::vector<std::tuple<RequestId, std::vector<TokenId>, SamplingParams>>& requests,
          std::optional<std::tuple<RequestId, std::vector<TokenId>, SamplingParams>> late = {},
          int64_t late_step = 0) {
    Run r;
    std::map<RequestId, int> open;
    auto add = [&](const auto& req) {
      const auto& [id, prompt, params] = req;
      const Status s = engine.add_request(id, prompt, params);
      EXPECT_TRUE(s.ok()) << s.error().message;
      open[id] = params.n;
    };
    for (const auto& req : requests) add(req);
    if (late && late_step == 0) add(*late);
    for (; engine.has_work() && r.steps < 200000; ++r.steps) {
      if (late && late_step > 0 && r.steps == late_step) add(*late);
      auto updates = engine.step();
      EXPECT_TRUE(updates.ok()) << updates.error().message;
      if (!updates.ok()) break;
      r.max_running = std::max(r.max_running, engine.num_running());
      for (const SequenceUpdate& u : *updates) {
        if (u.token >= 0) r.tokens[Key(u.request_id, u.index)].push_back(u.token);
        if (u.finished) {
          r.reasons[Key(u.request_id, u.index)] = u.finish_reason;
          if (--open[u.request_id] == 0) r.finished_at[u.request_id] = r.steps + 1;
        }
      }
    }
    EXPECT_FALSE(engine.has_work()) << "still working after " << r.steps << " steps";
    EXPECT_EQ(engine.kv_stats().num_blocks_used, 0);
    for (const auto& [id, left] : open) EXPECT_EQ(left, 0) << "request " << id << " unfinished";
    return r;
  }

  uint64_t bytes_for_blocks(int64_t blocks) const {
    KvLayout probe;
    probe.num_layers = model_->hparams.n_layer;
    probe.num_kv_heads = model_->hparams.n_head_kv;
    probe.head_dim = model_->hparams.head_dim;
    return static_cast<uint64_t>(blocks * 16) * probe.bytes_per_token();
  }
};

TEST_F(EnginePressureTest, BeamSearchesOnAShortCacheAllFinishAsOnALargeOneBesideASmallRequest) {
  // The livelock's recipe: 4 searches of width 3 and 48 tokens; 12 blocks of 16 tokens hold
  // about one search's beams at full length.
  SamplingParams beams;
  beams.use_beam_search = true;
  beams.n = 3;
  beams.max_tokens = 48;
  beams.ignore_eos = true;  // full-length beams: the most KV they can want
  std::vector<std::tuple<RequestId, std::vector<TokenId>, SamplingParams>> searches;
  for (RequestId id = 0; id < 4; ++id) searches.emplace_back(id, prompts_[id], beams);
  const auto small = std::make_tuple(RequestId{100}, prompts_[4], greedy(16));
  constexpr int64_t kSmallAt = 20;

  auto roomy = make_engine(engine_config(64, 64ull << 20));
  const Run want = run(*roomy, searches);
  auto alone = make_engine(engine_config(64, 64ull << 20));
  const Run small_alone = run(*alone, {small});

  auto tight = make_engine(engine_config(64, bytes_for_blocks(12)));
  const Run got = run(*tight, searches, small, kSmallAt);
  // The short pool cannot hold every beam at once: rounds waited, or were evicted from the
  // prefix cache and recomputed.
  EXPECT_GT(got.steps, want.steps) << "the pool was meant to be short";
  EXPECT_LT(tight->kv_stats().prefix_hit_rate, roomy->kv_stats().prefix_hit_rate);
  for (RequestId id = 0; id < 4; ++id) {
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(got.tokens.at(Key(id, k)), want.tokens.at(Key(id, k)))
          << "search " << id << " beam " << k;
      EXPECT_EQ(got.tokens.at(Key(id, k)).size(), 48u);
    }
  }
  EXPECT_EQ(got.tokens.at(Key(100, 0)), small_alone.tokens.at(Key(100, 0)));
  // The bound: the small request waits behind the rounds queued before it, each a
  // single-token request, then runs beside the searches. It may take at most 4x the steps
  // it takes alone (16), not the searches' length (hundreds of steps here).
  const int64_t small_steps = got.finished_at.at(100) - kSmallAt;
  EXPECT_LE(small_steps, 4 * small_alone.finished_at.at(100))
      << "the small request took " << small_steps << " steps beside the searches, "
      << small_alone.finished_at.at(100) << " alone; the searches took " << got.steps;
}

TEST_F(EnginePressureTest, ForksCountAgainstMaxNumSeqsAndWaitingSamplesStayExact) {
  SamplingParams wide;
  wide.max_tokens = 24;
  wide.temperature = 0.9f;
  wide.seed = 1234;
  wide.n = 8;
  EngineConfig config = engine_config(64);
  config.scheduler.max_num_seqs = 4;
  auto engine = make_engine(config);
  const auto small = std::make_tuple(RequestId{2}, prompts_[4], greedy(16));
  const Run got = run(*engine, {{1, prompts_[0], wide}, small});
  EXPECT_LE(got.max_running, 4);

  // Each of the 8 samples, including those that waited for a slot and were recomputed from
  // the prefix cache, is exactly the seeded solo run of its sequence.
  for (int k = 0; k < 8; ++k) {
    SamplingParams solo = wide;
    solo.n = 1;
    solo.seed = sequence_seed(*wide.seed, k);
    auto solo_engine = make_engine(engine_config(64));
    const Run alone = run(*solo_engine, {{1, prompts_[0], solo}});
    EXPECT_EQ(got.tokens.at(Key(1, k)), alone.tokens.at(Key(1, 0))) << "sequence " << k;
  }
  // The small request arrived with the wide one and was never crowded out by its forks: it
  // finishes in the same step as alone.
  auto alone = make_engine(config);
  const Run small_alone = run(*alone, {small});
  EXPECT_EQ(got.tokens.at(Key(2, 0)), small_alone.tokens.at(Key(2, 0)));
  EXPECT_EQ(got.finished_at.at(2), small_alone.finished_at.at(2));
}

}  // namespace
}  // namespace moon
