#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <utility>

#include "sampling/sampling_test_util.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

// A stand-in for a model: the next logits depend on the previous token and the position,
// so sequences that diverge get different rows.
std::vector<float> fake_logits(int32_t prev, int64_t pos, int64_t vocab) {
  return test::normal_row(static_cast<uint64_t>(prev) * 1000003u + static_cast<uint64_t>(pos),
                          vocab, 2.0f);
}

struct Request {
  SamplingParams params;
  std::unique_ptr<test::TestSequence> state;
  int32_t prev = 0;
  std::vector<int32_t> tokens;
};

Request make_request(SamplingParams p) {
  Request r;
  r.params = p;
  r.state = std::make_unique<test::TestSequence>(test::TestSequence{SequenceState::for_request(p)});
  return r;
}

// Runs `steps` decode steps of `batch` together through one sampler.
void run_steps(std::vector<Request*> batch, int64_t vocab, int steps, ThreadPool* pool) {
  Sampler sampler(pool);
  for (int step = 0; step < steps; ++step) {
    std::vector<float> logits;
    std::vector<SamplingRow> states;
    for (Request* r : batch) {
      const auto row = fake_logits(r->prev, static_cast<int64_t>(r->tokens.size()), vocab);
      logits.insert(logits.end(), row.begin(), row.end());
      states.push_back(r->state->row());
    }
    std::vector<SampleOutput> out(batch.size());
    sampler.sample(logits, vocab, states, out);
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->state->take(out[i]);
      batch[i]->prev = out[i].id;
      batch[i]->tokens.push_back(out[i].id);
    }
  }
}

SamplingParams seeded(uint64_t seed, float temperature = 1.0f) {
  SamplingParams p;
  p.seed = seed;
  p.temperature = temperature;
  p.top_p = 0.95f;
  p.top_k = 50;
  return p;
}

// One sampler call on one row: `logits` (a copy, which the sampler may change) for `state`.
SampleOutput sample_one(Sampler& sampler, test::TestSequence& state, std::vector<float> logits) {
  const SamplingRow rows[] = {state.row()};
  SampleOutput out[1];
  sampler.sample(logits, static_cast<int64_t>(logits.size()), rows, out);
  state.take(out[0]);
  return out[0];
}
// The same with a fresh state (p, seed) and sampler.
SampleOutput sample_one(const SamplingParams& p, uint64_t seed, std::vector<float> logits) {
  test::TestSequence state{SequenceState(p, seed)};
  Sampler sampler;
  return sample_one(sampler, state, std::move(logits));
}

TEST(Sampler, SeededSamplingIsTheSameWhateverTheBatch) {
  constexpr int64_t kVocab = 2000;
  constexpr int kSteps = 24;
  ThreadPool pool(2);
  Request alone = make_request(seeded(7));
  run_steps({&alone}, kVocab, kSteps, nullptr);

  // The same request first, last and in the middle, with different companions, with and
  // without threads.
  for (int layout = 0; layout < 3; ++layout) {
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      Request a = make_request(seeded(7));
      Request b = make_request(seeded(8, 0.7f));
      Request c = make_request(seeded(9, 0.0f));
      Request d = make_request(seeded(10, 1.5f));
      std::vector<Request*> batch;
      if (layout == 0) batch = {&a, &b};
      if (layout == 1) batch = {&b, &c, &a};
      if (layout == 2) batch = {&c, &d, &a, &b};
      run_steps(batch, kVocab, kSteps, p);
      EXPECT_EQ(a.tokens, alone.tokens) << "layout " << layout << (p ? " threaded" : "");
    }
  }
  // And a different seed gives a different sequence.
  Request other = make_request(seeded(70));
  run_steps({&other}, kVocab, kSteps, nullptr);
  EXPECT_NE(other.tokens, alone.tokens);
}

TEST(Sampler, SequencesOfOneRequestGetDistinctStreams) {
  const SamplingParams p = seeded(3);
  const SequenceState s0 = SequenceState::for_request(p, 0), s1 = SequenceState::for_request(p, 1);
  EXPECT_EQ(s0.rng().seed(), 3u);
  EXPECT_NE(s0.rng().uniform(0), s1.rng().uniform(0));
  // Without a seed, each request draws its own.
  SamplingParams unseeded;
  EXPECT_NE(SequenceState::for_request(unseeded).rng().seed(),
            SequenceState::for_request(unseeded).rng().seed());
}

TEST(Sampler, GreedyRowsReturnArgmaxAndTrueLogprobs) {
  constexpr int64_t kVocab = 32000;
  SamplingParams p;
  p.temperature = 0.0f;
  p.logprobs = true;
  p.top_logprobs = 5;
  test::TestSequence state{SequenceState(p, 1)};
  const std::vector<float> row = test::normal_row(4, kVocab);
  Sampler sampler;
  const SampleOutput out = sample_one(sampler, state, row);
  const test::ReferenceGreedy want = test::reference_greedy(row);
  EXPECT_EQ(out.id, want.id);
  EXPECT_NEAR(out.logprob, want.logprob, 2e-6);
  ASSERT_EQ(out.n_top, 5);
  EXPECT_EQ(out.top[0].id, want.id);
  EXPECT_EQ(state.step(), 1);
  EXPECT_TRUE(state.history().output_counts().empty());  // no penalties: no history kept
}

TEST(Sampler, PenalizedSequencesRecordTheirOutput) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.frequency_penalty = 1.0f;
  test::TestSequence state{SequenceState(p, 1)};
  Sampler sampler;
  EXPECT_EQ(sample_one(sampler, state, {0.0f, 5.0f, 4.5f}).id, 1);
  EXPECT_EQ(sample_one(sampler, state, {0.0f, 5.0f, 4.5f}).id, 2);  // 5 - 1 < 4.5
  EXPECT_EQ(state.history().output_counts().at(1), 1);
  EXPECT_EQ(state.history().output_counts().at(2), 1);
}

TEST(Sampler, SampledLogprobIsThatOfTheChosenToken) {
  constexpr int64_t kVocab = 1000;
  SamplingParams p = seeded(5);
  p.top_logprobs = 3;
  test::TestSequence state{SequenceState(p, 5)};
  Sampler sampler;
  for (int step = 0; step < 20; ++step) {
    const std::vector<float> row = test::normal_row(100 + step, kVocab);
    const SampleOutput out = sample_one(sampler, state, row);
    const test::ReferenceGreedy ref = test::reference_greedy(row);
    EXPECT_NEAR(out.logprob, test::reference_logprob(ref, row[out.id]), 2e-6);
    EXPECT_EQ(out.n_top, 3);
  }
}

TEST(Sampler, NonFiniteRowsNeverCrashOrLeaveTheVocabulary) {
  constexpr int64_t kVocab = 300;
  std::vector<std::vector<float>> rows = {
      std::vector<float>(kVocab, test::kNaN), std::vector<float>(kVocab, -test::kInf),
      std::vector<float>(kVocab, test::kInf), test::normal_row(1, kVocab)};
  rows[3][10] = test::kNaN;
  rows[3][20] = test::kInf;
  rows[3][30] = -test::kInf;
  for (float temperature : {0.0f, 1.0f}) {
    for (int top_k : {0, 5}) {
      for (float top_p : {1.0f, 0.5f}) {
        SamplingParams p;
        p.temperature = temperature;
        p.top_k = top_k;
        p.top_p = top_p;
        p.min_p = 0.1f;
        for (const auto& row : rows) {
          const SampleOutput out = sample_one(p, 9, row);
          EXPECT_GE(out.id, 0);
          EXPECT_LT(out.id, kVocab);
          EXPECT_FALSE(std::isnan(row[out.id]) && !std::isnan(row[0]));
        }
      }
    }
  }
  // A single +inf among finite logits is certain.
  const SampleOutput out = sample_one(SamplingParams{}, 1, rows[3]);
  EXPECT_EQ(out.id, 20);
  EXPECT_EQ(out.logprob, 0.0f);
}

TEST(Sampler, VanishingTemperatureIsGreedy) {
  const std::vector<float> row = test::normal_row(12, 1000);
  const int32_t argmax = test::reference_greedy(row).id;
  for (float t : {1e-30f, 1e-45f}) {
    for (float top_p : {1.0f, 0.9f}) {
      SamplingParams p;
      p.temperature = t;
      p.top_p = top_p;
      EXPECT_EQ(sample_one(p, 3, row).id, argmax) << t << " " << top_p;
    }
  }
}

TEST(Sampler, MinTokensMasksEosAndStopTokensUntilReached) {
  constexpr int64_t kVocab = 50;
  SamplingParams p;
  p.temperature = 0.0f;
  p.min_tokens = 3;
  p.stop_token_ids = {7};
  test::TestSequence state{SequenceState(p, 1)};
  Sampler sampler(nullptr, /*eos_ids=*/{2});
  std::vector<int32_t> got;
  for (int step = 0; step < 5; ++step) {
    std::vector<float> logits(kVocab, 0.0f);
    logits[2] = 10.0f;  // EOS is the argmax,
    logits[7] = 9.0f;   // then the stop token,
    logits[4] = 8.0f;   // then an ordinary one
    got.push_back(sample_one(sampler, state, logits).id);
  }
  EXPECT_EQ(got, (std::vector<int32_t>{4, 4, 4, 2, 2}));
}

TEST(Sampler, LogitBiasCanForceOrForbidATokenEvenWhenGreedy) {
  constexpr int64_t kVocab = 100;
  SamplingParams p;
  p.temperature = 0.0f;
  p.logit_bias = {{17, 100.0f}};
  const std::vector<float> row = test::normal_row(3, kVocab);
  EXPECT_EQ(sample_one(p, 1, row).id, 17);
  const int32_t argmax = test::reference_greedy(row).id;
  SamplingParams forbid;
  forbid.temperature = 0.0f;
  forbid.logit_bias = {{argmax, -100.0f}};
  EXPECT_NE(sample_one(forbid, 1, row).id, argmax);
}

TEST(Sampler, RecordsItsOwnTimePerCall) {
  constexpr int64_t kVocab = 32000;
  SamplingParams p;
  test::TestSequence state{SequenceState(p, 1)};
  Sampler sampler;
  for (int i = 0; i < 3; ++i) sample_one(sampler, state, test::normal_row(i, kVocab));
  EXPECT_EQ(sampler.stats().calls, 3);
  EXPECT_EQ(sampler.stats().rows, 3);
  EXPECT_GT(sampler.stats().last_ms, 0.0);
  EXPECT_GE(sampler.stats().total_ms, sampler.stats().last_ms);
  EXPECT_GE(sampler.stats().max_ms, sampler.stats().last_ms);
}

}  // namespace
}  // namespace moon
