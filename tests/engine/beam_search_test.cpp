// Beam search through the engine (beams sharing KV blocks, forked and freed every step)
// against a plain beam search that recomputes every hypothesis from scratch with the
// reference forward and shares nothing.
#include "engine/beam_search.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/test_data.h"
#include "engine/engine.h"
#include "reference/reference_forward.h"
#include "tokenizer/tokenizer.h"

namespace moon {
namespace {

struct PlainHypothesis {
  std::vector<TokenId> tokens;
  double cum = 0.0;
  bool stopped = false;
};

double score_of(const PlainHypothesis& h, float penalty) {
  return h.cum / std::pow(static_cast<double>(std::max<size_t>(h.tokens.size(), 1)), penalty);
}

// Log-softmax in double over the reference logits, most likely first.
std::vector<std::pair<TokenId, double>> plain_top(const std::vector<float>& logits, int k) {
  double max = *std::max_element(logits.begin(), logits.end()), sum = 0.0;
  for (float v : logits) sum += std::exp(v - max);
  std::vector<std::pair<TokenId, double>> all;
  for (size_t i = 0; i < logits.size(); ++i) {
    all.emplace_back(static_cast<TokenId>(i), logits[i] - max - std::log(sum));
  }
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.second > b.second; });
  all.resize(k);
  return all;
}

std::vector<PlainHypothesis> plain_beam_search(const Model& model,
                                               const std::vector<TokenId>& prompt, int width,
                                               int max_tokens, float penalty,
                                               const std::vector<TokenId>& eog) {
  std::vector<PlainHypothesis> beams = {{}}, finished;
  auto is_stop = [&](TokenId t) { return std::find(eog.begin(), eog.end(), t) != eog.end(); };
  while (!beams.empty()) {
    struct Cand {
      size_t beam;
      TokenId token;
      double score;
    };
    std::vector<Cand> cands;
    for (size_t b = 0; b < beams.size(); ++b) {
      std::vector<TokenId> ids = prompt;
      ids.insert(ids.end(), beams[b].tokens.begin(), beams[b].tokens.end());
      reference::ReferenceForward ref(model);
      const std::vector<float> logits = ref.forward_all(ids).back();
      for (const auto& [t, lp] : plain_top(logits, 2 * width))
        cands.push_back({b, t, beams[b].cum + lp});
    }
    std::stable_sort(cands.begin(), cands.end(),
                     [](auto& a, auto& b) { return a.score > b.score; });
    std::vector<PlainHypothesis> next;
    for (const Cand& c : cands) {
      if (static_cast<int>(next.size()) == width) break;
      PlainHypothesis h = beams[c.beam];
      h.tokens.push_back(c.token);
      h.cum = c.score;
      if (is_stop(c.token)) {
        h.stopped = true;
        finished.push_back(h);
      } else if (static_cast<int>(h.tokens.size()) >= max_tokens) {
        finished.push_back(h);
      } else {
        next.push_back(h);
      }
    }
    beams = next;
    if (static_cast<int>(finished.size()) >= width && !beams.empty()) {
      std::vector<double> s;
      for (auto& h : finished) s.push_back(score_of(h, penalty));
      std::sort(s.rbegin(), s.rend());
      double best_live = -1e300;
      for (auto& h : beams) best_live = std::max(best_live, score_of(h, penalty));
      if (best_live <= s[width - 1]) break;
    }
  }
  std::stable_sort(finished.begin(), finished.end(),
                   [&](auto& a, auto& b) { return score_of(a, penalty) > score_of(b, penalty); });
  finished.resize(std::min<size_t>(finished.size(), width));
  return finished;
}

TEST(BeamSearch, SelectionStopsContinuingAtTheWidthAndSetsStoppedAside) {
  std::vector<BeamCandidate> c = {
      {1, 10, 0, -1.0}, {1, 2, 0, -0.5}, {2, 11, 0, -2.0}, {2, 12, 0, -3.0}, {1, 13, 0, -4.0}};
  const BeamSelection s = select_beams(c, 2, [](TokenId t) { return t == 2; });
  ASSERT_EQ(s.next.size(), 2u);
  EXPECT_EQ(s.next[0].token, 10);
  EXPECT_EQ(s.next[1].token, 11);
  ASSERT_EQ(s.finished.size(), 1u);
  EXPECT_EQ(s.finished[0].token, 2);
}

TEST(BeamSearch, EngineMatchesPlainBeamSearchOnStories) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto model = load_model(path);
  ASSERT_TRUE(model.ok());
  auto tok = Tokenizer::from_gguf(*(*model)->file);
  ASSERT_TRUE(tok.ok());
  const std::vector<TokenId> eog = (*tok)->eog_ids();
  const std::vector<std::vector<TokenId>> prompts = {
      (*tok)->encode("Once upon a time", true, false),
      (*tok)->encode("The little dog", true, false)};
  constexpr int kWidth = 3, kMaxTokens = 10;
  int64_t roomy_steps = 0;
  for (uint64_t kv_bytes : {32ull << 20, 0ull}) {
    EngineConfig config;
    config.scheduler.max_num_batched_tokens = 16;
    config.scheduler.max_model_len = 512;
    config.num_threads = 1;
    // The second run gets a pool of 2 blocks: fewer rounds fit at once than the budget allows.
    KvLayout probe;
    probe.num_layers = (*model)->hparams.n_layer;
    probe.num_kv_heads = (*model)->hparams.n_head_kv;
    probe.head_dim = (*model)->hparams.head_dim;
    config.kv_cache_bytes = kv_bytes ? kv_bytes : 2 * 16 * probe.bytes_per_token();
    auto engine = Engine::create(**model, eog, config);
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    SamplingParams params;
    params.use_beam_search = true;
    params.n = kWidth;
    params.max_tokens = kMaxTokens;
    params.length_penalty = 1.0f;
    for (size_t p = 0; p < prompts.size(); ++p) {
      ASSERT_TRUE((*engine)->add_request(p, prompts[p], params).ok());
    }
    std::map<std::pair<RequestId, int>, std::vector<TokenId>> got;
    std::map<std::pair<RequestId, int>, double> cum;
    int64_t steps = 0;
    for (; (*engine)->has_work(); ++steps) {
      auto updates = (*engine)->step();
      ASSERT_TRUE(updates.ok());
      for (const SequenceUpdate& u : *updates) {
        if (u.token >= 0) {
          got[std::make_pair(u.request_id, u.index)].push_back(u.token);
          cum[std::make_pair(u.request_id, u.index)] += u.logprob;
        }
      }
    }
    EXPECT_EQ((*engine)->kv_stats().num_blocks_used, 0);
    // The tight pool cannot hold every beam's round at once, so rounds waited for blocks
    // and the searches took more steps.
    if (kv_bytes != 0) {
      roomy_steps = steps;
    } else {
      EXPECT_GT(steps, roomy_steps) << "the pool was meant to be tight";
    }
    for (size_t p = 0; p < prompts.size(); ++p) {
      const auto want = plain_beam_search(**model, prompts[p], kWidth, kMaxTokens, 1.0f, eog);
      ASSERT_EQ(want.size(), static_cast<size_t>(kWidth));
      for (int k = 0; k < kWidth; ++k) {
        std::vector<TokenId> expected = want[k].tokens;
        if (want[k].stopped) expected.pop_back();
        EXPECT_EQ(got[std::make_pair(p, k)], expected) << "prompt " << p << " beam " << k;
        if (!want[k].stopped) {
          EXPECT_NEAR(cum[std::make_pair(p, k)], want[k].cum, 1e-3);
        }
      }
    }
  }
}

// Each round is a new request per beam, but the prefix cache gives it back every token the
// previous round computed, its partial last block included: after the prompt, a round
// computes one token per beam.
TEST(BeamSearch, RoundsAfterTheFirstComputeOneTokenPerBeam) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto model = load_model(path);
  ASSERT_TRUE(model.ok());
  auto tok = Tokenizer::from_gguf(*(*model)->file);
  ASSERT_TRUE(tok.ok());
  constexpr int kWidth = 3;
  EngineConfig config;
  config.scheduler.max_model_len = 512;
  config.kv_cache_bytes = 32ull << 20;
  config.num_threads = 1;
  auto engine = Engine::create(**model, (*tok)->eog_ids(), config);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  SamplingParams params;
  params.use_beam_search = true;
  params.n = kWidth;
  params.max_tokens = 40;
  params.ignore_eos = true;
  const std::vector<TokenId> prompt = (*tok)->encode("Once upon a time, there was", true, false);
  ASSERT_TRUE((*engine)->add_request(1, prompt, params).ok());
  std::vector<int64_t> tokens_per_step;
  while ((*engine)->has_work()) {
    ASSERT_TRUE((*engine)->step().ok());
    tokens_per_step.push_back((*engine)->last_step_tokens());
  }
  ASSERT_GE(tokens_per_step.size(), 40u);
  EXPECT_EQ(tokens_per_step[0], static_cast<int64_t>(prompt.size()));
  for (size_t i = 1; i < tokens_per_step.size(); ++i) {
    EXPECT_LE(tokens_per_step[i], kWidth) << "round " << i;
  }
}

}  // namespace
}  // namespace moon
