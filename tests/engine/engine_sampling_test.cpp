// Each request's sampling parameters through the whole engine (batched forward, batched
// sampler, stop decisions), against a plain loop written here: the reference forward, the
// logit edits as vLLM documents them, an argmax. Nothing of src/sampling is used by the
// oracle.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "reference/reference_forward.h"
#include "stories_fixture.h"

namespace moon {
namespace {

struct Output {
  std::vector<TokenId> tokens;
  std::vector<float> logprobs;
  std::vector<std::vector<TokenLogprob>> top;
  FinishReason reason = FinishReason::kNone;
};

// The plain loop: one sequence, greedy over logits edited in vLLM's order (bias, the EOS
// mask before min_tokens, repetition, frequency and presence penalties).
Output plain_greedy(const Model& model, const std::vector<TokenId>& prompt, const SamplingParams& p,
                    const std::vector<TokenId>& eog) {
  reference::ReferenceForward ref(model);
  std::vector<float> logits;
  for (size_t i = 0; i < prompt.size(); ++i) logits = ref.forward(prompt[i], i);
  Output out;
  std::map<TokenId, int> counts;
  auto in = [](const std::vector<TokenId>& v, TokenId t) {
    return std::find(v.begin(), v.end(), t) != v.end();
  };
  while (true) {
    for (const auto& [t, bias] : p.logit_bias) logits[t] += bias;
    const bool may_stop = static_cast<int>(out.tokens.size()) >= p.min_tokens;
    for (size_t t = 0; t < logits.size(); ++t) {
      const auto id = static_cast<TokenId>(t);
      if (!may_stop && (in(eog, id) || in(p.stop_token_ids, id))) logits[t] = -INFINITY;
      if (in(prompt, id) || counts.contains(id)) {
        logits[t] =
            logits[t] > 0 ? logits[t] / p.repetition_penalty : logits[t] * p.repetition_penalty;
      }
      if (counts.contains(id)) {
        logits[t] -= p.frequency_penalty * counts[id] + p.presence_penalty;
      }
    }
    const auto best =
        static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    double max = logits[best], sum = 0.0;
    for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
    const bool stop = (in(eog, best) && !p.ignore_eos) || in(p.stop_token_ids, best);
    if (stop) {
      out.reason = FinishReason::kStop;
      return out;
    }
    out.tokens.push_back(best);
    out.logprobs.push_back(static_cast<float>(-std::log(sum)));
    ++counts[best];
    if (static_cast<int>(out.tokens.size()) >= p.max_tokens) {
      out.reason = FinishReason::kLength;
      return out;
    }
    logits = ref.forward(best, static_cast<int64_t>(prompt.size() + out.tokens.size() - 1));
  }
}

class EngineSamplingTest : public test::StoriesTest {
 protected:
  std::unique_ptr<Engine> make_engine(int64_t budget = 64) {
    return StoriesTest::make_engine(engine_config(budget));
  }

  // Runs every request to the end; outputs keyed by (request, sequence index).
  std::map<std::pair<RequestId, int>, Output> run(
      Engine& engine,
      const std::vector<std::tuple<RequestId, std::vector<TokenId>, SamplingParams>>& requests) {
    for (const auto& [id, prompt, params] : requests) {
      const Status s = engine.add_request(id, prompt, params);
      EXPECT_TRUE(s.ok()) << s.error().message;
    }
    std::map<std::pair<RequestId, int>, Output> out;
    while (engine.has_work()) {
      auto updates = engine.step();
      EXPECT_TRUE(updates.ok());
      if (!updates.ok()) break;
      for (SequenceUpdate& u : *updates) {
        Output& o = out[{u.request_id, u.index}];
        if (u.token >= 0) {
          o.tokens.push_back(u.token);
          o.logprobs.push_back(u.logprob);
          o.top.push_back(u.top_logprobs);
        }
        if (u.finished) o.reason = u.finish_reason;
      }
    }
    EXPECT_EQ(engine.kv_stats().num_blocks_used, 0);
    return out;
  }

  void expect_same(const Output& got, const Output& want, const std::string& what) {
    EXPECT_EQ(got.tokens, want.tokens) << what;
    EXPECT_EQ(got.reason, want.reason) << what;
    for (size_t i = 0; i < std::min(got.logprobs.size(), want.logprobs.size()); ++i) {
      EXPECT_NEAR(got.logprobs[i], want.logprobs[i], 2e-3) << what << " token " << i;
    }
  }
};

TEST_F(EngineSamplingTest, PenaltiesAndLogitBiasMatchThePlainLoop) {
  // Requests with different edits ride in one batch; each must match its own plain run.
  std::vector<SamplingParams> variants;
  SamplingParams rep = greedy(40);
  rep.repetition_penalty = 1.5f;
  variants.push_back(rep);
  SamplingParams freq = greedy(40);
  freq.frequency_penalty = 1.2f;
  freq.presence_penalty = 0.6f;
  variants.push_back(freq);
  SamplingParams bias = greedy(40);
  bias.logit_bias = {{432, -100.0f}, {261, 3.0f}};
  bias.repetition_penalty = 1.2f;
  variants.push_back(bias);
  std::vector<std::tuple<RequestId, std::vector<TokenId>, SamplingParams>> requests;
  for (size_t v = 0; v < variants.size(); ++v) {
    for (size_t p = 0; p < 3; ++p) requests.emplace_back(v * 10 + p, prompts_[p], variants[v]);
  }
  auto engine = make_engine();
  const auto got = run(*engine, requests);
  const Output plain_unpenalized = plain_greedy(*model_, prompts_[0], greedy(40), eog_);
  for (const auto& [id, prompt, params] : requests) {
    const Output want = plain_greedy(*model_, prompt, params, eog_);
    expect_same(got.at({id, 0}), want, "request " + std::to_string(id));
    // Each variant changes the text, so the edits really were applied.
    if (id % 10 == 0) {
      EXPECT_NE(want.tokens, plain_unpenalized.tokens) << "request " << id;
    }
  }
}

TEST_F(EngineSamplingTest, MinTokensMasksTheEndOfTextUntilReached) {
  // The tiny model rarely ends a story within its context, so a frequent token stands in
  // as the end-of-text token (the engine takes its end set from the caller).
  const Output plain = plain_greedy(*model_, prompts_[0], greedy(48), eog_);
  ASSERT_GE(plain.tokens.size(), 8u);
  const std::vector<TokenId> eog = {plain.tokens[6]};
  const Output natural = plain_greedy(*model_, prompts_[0], greedy(200), eog);
  ASSERT_EQ(natural.reason, FinishReason::kStop);
  SamplingParams at_least = greedy(200);
  at_least.min_tokens = static_cast<int>(natural.tokens.size()) + 20;
  const Output want = plain_greedy(*model_, prompts_[0], at_least, eog);
  eog_ = eog;
  auto engine = make_engine();
  const auto got = run(*engine, {{1, prompts_[0], greedy(200)}, {2, prompts_[0], at_least}});
  expect_same(got.at({1, 0}), natural, "free run");
  const Output& longer = got.at({2, 0});
  expect_same(longer, want, "min_tokens");
  ASSERT_GE(longer.tokens.size(), static_cast<size_t>(at_least.min_tokens));
  EXPECT_TRUE(std::equal(natural.tokens.begin(), natural.tokens.end(), longer.tokens.begin()));
  for (int i = 0; i < at_least.min_tokens; ++i) {
    EXPECT_NE(longer.tokens[i], eog[0]) << "token " << i;
  }
}

TEST_F(EngineSamplingTest, StopTokenIdsEndTheTextAtTheirFirstOccurrence) {
  const Output plain = plain_greedy(*model_, prompts_[0], greedy(48), eog_);
  ASSERT_GE(plain.tokens.size(), 10u);
  const TokenId stop = plain.tokens[9];
  const size_t first =
      std::find(plain.tokens.begin(), plain.tokens.end(), stop) - plain.tokens.begin();
  SamplingParams p = greedy(48);
  p.stop_token_ids = {stop};
  auto engine = make_engine();
  const Output got = run(*engine, {{1, prompts_[0], p}}).at({1, 0});
  EXPECT_EQ(got.reason, FinishReason::kStop);
  EXPECT_EQ(got.tokens, std::vector<TokenId>(plain.tokens.begin(), plain.tokens.begin() + first));
}

TEST_F(EngineSamplingTest, TopLogprobsAreTheReferenceDistributionsBest) {
  SamplingParams p = greedy(12);
  p.logprobs = true;
  p.top_logprobs = 5;
  auto engine = make_engine();
  const Output got = run(*engine, {{1, prompts_[1], p}}).at({1, 0});
  ASSERT_EQ(got.top.size(), got.tokens.size());
  reference::ReferenceForward ref(*model_);
  std::vector<TokenId> ids = prompts_[1];
  const std::vector<std::vector<float>> all = ref.forward_all([&] {
    std::vector<TokenId> v = ids;
    v.insert(v.end(), got.tokens.begin(), got.tokens.end() - 1);
    return v;
  }());
  for (size_t i = 0; i < got.tokens.size(); ++i) {
    const std::vector<float>& logits = all[ids.size() - 1 + i];
    double max = *std::max_element(logits.begin(), logits.end()), sum = 0.0;
    for (float v : logits) sum += std::exp(v - max);
    std::vector<std::pair<double, TokenId>> want;
    for (size_t t = 0; t < logits.size(); ++t) {
      want.emplace_back(logits[t] - max - std::log(sum), static_cast<TokenId>(t));
    }
    std::partial_sort(want.begin(), want.begin() + 5, want.end(), std::greater<>());
    ASSERT_EQ(got.top[i].size(), 5u) << "token " << i;
    EXPECT_EQ(got.top[i][0].id, got.tokens[i]);
    EXPECT_EQ(got.top[i][0].logprob, got.logprobs[i]);
    for (size_t k = 0; k < 5; ++k) {
      EXPECT_NEAR(got.top[i][k].logprob, want[k].first, 1e-3) << "token " << i << " rank " << k;
      // Ids agree except where two candidates are closer than the forwards' difference.
      if (k + 1 < 5 && want[k].first - want[k + 1].first > 1e-3 &&
          (k == 0 || want[k - 1].first - want[k].first > 1e-3)) {
        EXPECT_EQ(got.top[i][k].id, want[k].second) << "token " << i << " rank " << k;
      }
    }
  }
}

TEST_F(EngineSamplingTest, SeededFilteredSamplingIsTheSameAloneOrInABatch) {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 20;
  p.top_p = 0.9f;
  p.min_p = 0.02f;
  p.presence_penalty = 0.3f;
  p.seed = 77;
  p.max_tokens = 32;
  p.n = 2;
  auto alone_engine = make_engine();
  const auto alone = run(*alone_engine, {{5, prompts_[0], p}});
  std::vector<std::tuple<RequestId, std::vector<TokenId>, SamplingParams>> crowd;
  for (RequestId id = 0; id < 9; ++id) {
    SamplingParams other = p;
    other.seed = 1000 + id;
    other.temperature = 0.5f + 0.1f * static_cast<float>(id);
    other.top_k = static_cast<int>(id);
    other.n = 1;
    crowd.emplace_back(id == 5 ? 100 : id, prompts_[id % prompts_.size()], other);
  }
  crowd.emplace_back(5, prompts_[0], p);
  auto busy_engine = make_engine(17);  // a small budget: chunked prefill beside decodes
  const auto busy = run(*busy_engine, crowd);
  std::set<std::vector<TokenId>> distinct;
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(busy.at({5, k}).tokens, alone.at({5, k}).tokens) << "sequence " << k;
    EXPECT_EQ(busy.at({5, k}).logprobs, alone.at({5, k}).logprobs) << "sequence " << k;
    distinct.insert(alone.at({5, k}).tokens);
  }
  EXPECT_EQ(distinct.size(), 2u);
  // top_k 20: every token was among the 20 most likely after the presence penalty.
  reference::ReferenceForward ref(*model_);
  std::vector<TokenId> ids = prompts_[0];
  const Output& seq = alone.at({5, 0});
  ids.insert(ids.end(), seq.tokens.begin(), seq.tokens.end());
  const auto all = ref.forward_all(ids);
  for (size_t i = 0; i < seq.tokens.size(); ++i) {
    std::vector<float> logits = all[prompts_[0].size() - 1 + i];
    for (size_t j = 0; j < i; ++j) {
      if (std::find(seq.tokens.begin(), seq.tokens.begin() + j, seq.tokens[j]) ==
          seq.tokens.begin() + j) {
        logits[seq.tokens[j]] -= p.presence_penalty;  // once per distinct token
      }
    }
    const float chosen = logits[seq.tokens[i]];
    // (A margin for the difference between the engine's forward and the reference.)
    EXPECT_LT(
        std::count_if(logits.begin(), logits.end(), [&](float v) { return v > chosen + 1e-3f; }),
        20)
        << "token " << i;
  }
}

// Checks prompt logprobs against the reference forward's log-softmax, row by row.
void expect_prompt_logprobs(const Model& model, const std::vector<TokenId>& prompt,
                            const std::vector<PromptLogprob>& got, int k) {
  ASSERT_EQ(got.size(), prompt.size() - 1);
  reference::ReferenceForward ref(model);
  const auto all = ref.forward_all(prompt);
  for (size_t p = 1; p < prompt.size(); ++p) {
    const std::vector<float>& logits = all[p - 1];
    double max = *std::max_element(logits.begin(), logits.end()), sum = 0.0;
    for (float v : logits) sum += std::exp(v - max);
    const PromptLogprob& e = got[p - 1];
    EXPECT_EQ(e.token.id, prompt[p]) << "position " << p;
    EXPECT_NEAR(e.token.logprob, logits[prompt[p]] - max - std::log(sum), 1e-3) << p;
    ASSERT_EQ(e.top.size(), static_cast<size_t>(k)) << p;
    EXPECT_NEAR(e.top[0].logprob, -std::log(sum), 1e-3) << p;  // the best token's
    EXPECT_GE(e.top[0].logprob, e.token.logprob) << p;
  }
}

TEST_F(EngineSamplingTest, PromptLogprobsMatchTheReferenceOnceEachChunkedCachedOrPreempted) {
  const std::vector<TokenId>& prompt = prompts_[6];  // 133 tokens
  ASSERT_GT(prompt.size(), 100u);
  SamplingParams asks = greedy(6);
  asks.prompt_logprobs = 3;
  for (const bool tiny_pool : {false, true}) {
    EngineConfig c = engine_config(17);
    if (tiny_pool) {
      const KvLayout probe = StoriesTest::make_engine(engine_config(17))->kv_layout();
      c.kv_cache_bytes = 14 * probe.block_size * probe.bytes_per_token();
    }
    auto engine = StoriesTest::make_engine(c);
    // The same prompt first without prompt logprobs, so that its blocks are in the prefix
    // cache: the second request must compute them anyway.
    ASSERT_TRUE(engine->add_request(1, prompt, greedy(6)).ok());
    while (engine->has_work()) ASSERT_TRUE(engine->step().ok());
    // Longer requests admitted first: with the tiny pool the last admitted, the one asking
    // for prompt logprobs, is the one preempted and recomputed.
    for (RequestId id : {7, 8, 1}) {
      ASSERT_TRUE(engine->add_request(100 + id, prompts_[id], greedy(100)).ok());
    }
    ASSERT_TRUE(engine->add_request(2, prompt, asks).ok());
    std::vector<PromptLogprob> got;
    std::vector<TokenId> tokens;
    while (engine->has_work()) {
      auto updates = engine->step();
      ASSERT_TRUE(updates.ok());
      for (SequenceUpdate& u : *updates) {
        if (u.request_id != 2) {
          EXPECT_TRUE(u.prompt_logprobs.empty());
          continue;
        }
        // Prompt logprobs come before (or with) the first token, never after.
        if (!u.prompt_logprobs.empty()) {
          EXPECT_TRUE(tokens.empty());
        }
        got.insert(got.end(), u.prompt_logprobs.begin(), u.prompt_logprobs.end());
        if (u.token >= 0) tokens.push_back(u.token);
      }
    }
    if (tiny_pool) {
      EXPECT_GT(engine->num_preemptions(), 0);
    }
    expect_prompt_logprobs(*model_, prompt, got, 3);
    EXPECT_EQ(tokens, std::vector<TokenId>(outputs_[6].begin(), outputs_[6].begin() + 6));
    EXPECT_EQ(engine->kv_stats().num_blocks_used, 0);
  }
}

TEST_F(EngineSamplingTest, StopSequenceEndsOneSequenceAndFreesItsBlocks) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 3;
  p.n = 2;
  p.max_tokens = 40;
  p.ignore_eos = true;
  auto engine = make_engine();
  ASSERT_TRUE(engine->add_request(1, prompts_[0], p).ok());
  std::map<int, int> tokens;
  std::map<int, FinishReason> reason;
  bool stopped = false;
  while (engine->has_work()) {
    auto updates = engine->step();
    ASSERT_TRUE(updates.ok());
    for (const SequenceUpdate& u : *updates) {
      if (u.token >= 0) ++tokens[u.index];
      if (u.finished) reason[u.index] = u.finish_reason;
    }
    if (!stopped && tokens[1] == 5) {
      stopped = true;
      const auto ended = engine->stop_sequence(1, 1);
      ASSERT_EQ(ended.size(), 1u);
      EXPECT_EQ(ended[0].index, 1);
      EXPECT_EQ(ended[0].finish_reason, FinishReason::kStop);
      reason[1] = ended[0].finish_reason;
      EXPECT_TRUE(engine->stop_sequence(1, 1).empty());  // already ended
      EXPECT_TRUE(engine->stop_sequence(9, 0).empty());  // no such request
    }
  }
  EXPECT_EQ(tokens[1], 5);
  EXPECT_EQ(tokens[0], 40);
  EXPECT_EQ(reason[0], FinishReason::kLength);
  EXPECT_EQ(reason[1], FinishReason::kStop);
  EXPECT_EQ(engine->kv_stats().num_blocks_used, 0);
}

TEST_F(EngineSamplingTest, AbortBeforeTheForkReportsEverySequence) {
  SamplingParams p = greedy(8);
  p.n = 3;
  auto engine = make_engine();
  ASSERT_TRUE(engine->add_request(4, prompts_[0], p).ok());
  const auto updates = engine->abort(4);
  std::set<int> indexes;
  for (const SequenceUpdate& u : updates) {
    EXPECT_TRUE(u.finished);
    EXPECT_EQ(u.finish_reason, FinishReason::kAbort);
    indexes.insert(u.index);
  }
  EXPECT_EQ(indexes, (std::set<int>{0, 1, 2}));
  EXPECT_FALSE(engine->has_work());
}

TEST_F(EngineSamplingTest, OutOfRangeParamsAreRefusedWithTheFieldNamed) {
  auto engine = make_engine();
  SamplingParams bad = greedy(8);
  bad.top_p = 0.0f;
  const Status s = engine->add_request(1, prompts_[0], bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("top_p"), std::string::npos);
  bad = greedy(8);
  bad.logit_bias = {{512, 1.0f}};  // the vocabulary is 512 tokens
  EXPECT_FALSE(engine->add_request(1, prompts_[0], bad).ok());
  EXPECT_FALSE(engine->has_work());
}

}  // namespace
}  // namespace moon
