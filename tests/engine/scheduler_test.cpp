// The scheduler with a fake model: table-driven cases for the policy, and a randomized
// simulation (thousands of requests, random arrivals, aborts, forks and a tiny KV pool)
// that checks the bookkeeping invariants after every step.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace moon {
namespace {

std::unique_ptr<Sequence> make_sequence(SequenceId id, std::vector<TokenId> prompt,
                                        int64_t max_tokens) {
  auto seq = std::make_unique<Sequence>();
  seq->id = id;
  seq->request_id = id;
  seq->num_tokens_prompt = static_cast<int64_t>(prompt.size());
  seq->tokens = std::move(prompt);
  SamplingParams params;
  params.max_tokens = max_tokens;
  seq->sampling.emplace(params, /*seed=*/1);
  return seq;
}

// The fake model's samples as the sampler would report them.
std::vector<SampleOutput> samples(const std::vector<TokenId>& tokens) {
  std::vector<SampleOutput> out(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) out[i].id = tokens[i];
  return out;
}

std::vector<TokenId> iota_prompt(int64_t n, TokenId first = 1) {
  std::vector<TokenId> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = first + static_cast<TokenId>(i);
  return p;
}

// The fake model's "sample": a fixed function of the sequence and its output index, so the
// expected output of every sequence is known without running the scheduler.
TokenId fake_token(SequenceId id, int64_t output_index) {
  return static_cast<TokenId>((id * 7919 + static_cast<uint64_t>(output_index) * 104729) % 30000) +
         1000;
}

TEST(Scheduler, LongPromptIsChunkedUnderTheTokenBudget) {
  KvCacheManager kv(64, 16, false);
  Scheduler s({.max_num_seqs = 8, .max_num_batched_tokens = 100, .max_model_len = 1024}, &kv);
  ASSERT_TRUE(s.add(make_sequence(1, iota_prompt(250), 4)).ok());
  std::vector<int64_t> chunk_sizes;
  for (int step = 0; step < 3; ++step) {
    SchedulerOutput out = s.schedule();
    ASSERT_EQ(out.chunks.size(), 1u);
    chunk_sizes.push_back(out.chunks[0].num_tokens);
    EXPECT_EQ(out.chunks[0].samples, step == 2);
    s.update(out, samples({fake_token(1, 0)}));
  }
  EXPECT_EQ(chunk_sizes, (std::vector<int64_t>{100, 100, 50}));
  EXPECT_EQ(s.find(1)->num_tokens(), 251);
}

TEST(Scheduler, RunningDecodesGoBeforeNewPrompts) {
  KvCacheManager kv(64, 16, false);
  Scheduler s({.max_num_seqs = 8, .max_num_batched_tokens = 40, .max_model_len = 1024}, &kv);
  ASSERT_TRUE(s.add(make_sequence(1, iota_prompt(10), 8)).ok());
  SchedulerOutput first = s.schedule();
  s.update(first, samples({fake_token(1, 0)}));
  ASSERT_TRUE(s.add(make_sequence(2, iota_prompt(100), 8)).ok());
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].sequence->id, 1u);  // the decode
  EXPECT_EQ(out.chunks[0].num_tokens, 1);
  EXPECT_EQ(out.chunks[1].sequence->id, 2u);  // the new prompt gets what is left
  EXPECT_EQ(out.chunks[1].num_tokens, 39);
  EXPECT_EQ(out.num_batched_tokens, 40);
}

TEST(Scheduler, SequenceCapLimitsTheBatch) {
  KvCacheManager kv(64, 16, false);
  Scheduler s({.max_num_seqs = 2, .max_num_batched_tokens = 1000, .max_model_len = 1024}, &kv);
  for (SequenceId id = 1; id <= 3; ++id)
    ASSERT_TRUE(s.add(make_sequence(id, iota_prompt(5), 4)).ok());
  EXPECT_EQ(s.schedule().chunks.size(), 2u);
  EXPECT_EQ(s.num_waiting(), 1);
}

TEST(Scheduler, PrefixCacheHitsAreNotRecomputed) {
  KvCacheManager kv(64, 16, true);
  Scheduler s({.max_num_seqs = 8, .max_num_batched_tokens = 1000, .max_model_len = 1024}, &kv);
  ASSERT_TRUE(s.add(make_sequence(1, iota_prompt(70), 1)).ok());
  SchedulerOutput out = s.schedule();
  s.update(out, samples({fake_token(1, 0)}));
  s.finish(1, FinishReason::kLength);
  // Same first 64 tokens (four full blocks), different tail.
  std::vector<TokenId> prompt = iota_prompt(70);
  prompt[66] = 9999;
  ASSERT_TRUE(s.add(make_sequence(2, prompt, 1)).ok());
  out = s.schedule();
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].start, 64);
  EXPECT_EQ(out.chunks[0].num_tokens, 6);
}

TEST(Scheduler, RequestThatCannotFitAloneIsRefusedAtOnce) {
  KvCacheManager kv(4, 16, false);
  Scheduler s({.max_num_seqs = 8, .max_num_batched_tokens = 1000, .max_model_len = 1024}, &kv);
  Status st = s.add(make_sequence(1, iota_prompt(60), 10));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("KV cache blocks"), std::string::npos) << st.error().message;
  Status too_long = s.add(make_sequence(2, iota_prompt(1000), 100));
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("maximum model length"), std::string::npos);
  EXPECT_FALSE(s.has_work());
}

TEST(Scheduler, PoolExhaustionPreemptsTheNewestAndItResumes) {
  KvCacheManager kv(6, 4, false);  // 24 slots
  Scheduler s({.max_num_seqs = 8, .max_num_batched_tokens = 64, .max_model_len = 64}, &kv);
  ASSERT_TRUE(s.add(make_sequence(1, iota_prompt(8), 12)).ok());
  ASSERT_TRUE(s.add(make_sequence(2, iota_prompt(8), 12)).ok());
  std::map<SequenceId, std::vector<TokenId>> outputs;
  for (int step = 0; step < 200 && s.has_work(); ++step) {
    SchedulerOutput out = s.schedule();
    std::vector<TokenId> sampled;
    for (const ScheduledChunk& c : out.chunks) {
      if (c.samples) sampled.push_back(fake_token(c.sequence->id, c.sequence->num_tokens_output()));
    }
    // The update ends each sequence at its max_tokens.
    for (const auto& done : s.update(out, samples(sampled)).finished) {
      EXPECT_EQ(done->finish_reason, FinishReason::kLength);
      outputs[done->id].assign(done->tokens.begin() + done->num_tokens_prompt, done->tokens.end());
    }
    ASSERT_TRUE(kv.check_invariants().ok());
  }
  EXPECT_GT(s.num_preemptions(), 0);
  for (SequenceId id : {1u, 2u}) {
    ASSERT_EQ(outputs[id].size(), 12u);
    for (int64_t k = 0; k < 12; ++k) EXPECT_EQ(outputs[id][k], fake_token(id, k));
  }
}

// Thousands of requests through a tiny pool. After every step: KV invariants hold, the
// budget and sequence cap are respected, chunks start where computation stopped; at the
// end every request has finished with exactly its expected tokens and no block is used.
TEST(Scheduler, RandomizedSimulationKeepsEveryInvariant) {
  std::mt19937_64 rng(20261125);
  constexpr int kRequests = 2000;
  const SchedulerConfig config{
      .max_num_seqs = 24, .max_num_batched_tokens = 96, .max_model_len = 256};
  KvCacheManager kv(48, 8, true);  // 384 slots: far less than the offered load
  Scheduler s(config, &kv);
  std::vector<std::vector<TokenId>> prefixes;
  for (int p = 0; p < 4; ++p) prefixes.push_back(iota_prompt(8 + 16 * p, 100 * p + 1));

  std::map<SequenceId, int64_t> expected_length;  // max_tokens of every live sequence
  int64_t next_id = 1, added = 0, finished = 0, aborted = 0, forked = 0, refused = 0;
  for (int step = 0; step < 200000 && (added < kRequests || s.has_work()); ++step) {
    for (int k = static_cast<int>(rng() % 3); k > 0 && added < kRequests; --k) {
      std::vector<TokenId> prompt = prefixes[rng() % prefixes.size()];
      for (int64_t t = static_cast<int64_t>(rng() % 40); t > 0; --t) prompt.push_back(rng() % 500);
      const SequenceId id = next_id++;
      const int64_t max_tokens = 1 + static_cast<int64_t>(rng() % 48);
      auto seq = make_sequence(id, prompt, max_tokens);
      // Some requests sample in parallel: a sibling forks off the first sample.
      if (rng() % 8 == 0) seq->pending_forks.push_back(next_id++);
      const std::vector<SequenceId> siblings = seq->pending_forks;
      if (s.add(std::move(seq)).ok()) {
        expected_length[id] = max_tokens;
        for (SequenceId sibling : siblings) expected_length[sibling] = max_tokens;
      } else {
        ++refused;
      }
      ++added;
    }
    if (rng() % 25 == 0 && !expected_length.empty()) {  // a client goes away
      auto it =
          std::next(expected_length.begin(), static_cast<long>(rng() % expected_length.size()));
      // (A sibling not forked yet cannot go alone: it is not a sequence yet.)
      if (const Sequence* seq = s.find(it->first)) {
        for (SequenceId sibling : seq->pending_forks) expected_length.erase(sibling);
        const SequenceId id = seq->id;
        expected_length.erase(id);
        if (s.finish(id, FinishReason::kAbort)) ++aborted;
      }
    }

    SchedulerOutput out = s.schedule();
    ASSERT_LE(out.num_batched_tokens, config.max_num_batched_tokens);
    ASSERT_LE(s.num_running(), config.max_num_seqs + forked);
    int64_t total = 0;
    std::vector<TokenId> sampled;
    for (const ScheduledChunk& c : out.chunks) {
      ASSERT_EQ(c.start, c.sequence->num_tokens_computed);
      ASSERT_GT(c.num_tokens, 0);
      ASSERT_LE(c.start + c.num_tokens, c.sequence->num_tokens());
      ASSERT_EQ(kv.num_tokens(c.sequence->id), c.start + c.num_tokens);
      total += c.num_tokens;
      if (!c.samples) {
        ASSERT_TRUE(c.forks.empty());
        continue;
      }
      sampled.push_back(fake_token(c.sequence->id, c.sequence->num_tokens_output()));
      for (const Sequence* fork : c.forks) {
        ASSERT_EQ(c.sequence->num_tokens_output(), 0) << "forks come off the first sample";
        ASSERT_EQ(fork->tokens, c.sequence->tokens);
        sampled.push_back(fake_token(fork->id, 0));  // sampled with its parent
        ++forked;
      }
    }
    ASSERT_EQ(total, out.num_batched_tokens);
    ASSERT_EQ(sampled.size(), out.num_samples());
    // The update ends each sequence at its max_tokens.
    for (const auto& done : s.update(out, samples(sampled)).finished) {
      ASSERT_EQ(done->finish_reason, FinishReason::kLength);
      ASSERT_EQ(done->num_tokens_output(), expected_length.at(done->id));
      for (int64_t k = 0; k < done->num_tokens_output(); ++k) {
        ASSERT_EQ(done->tokens[done->num_tokens_prompt + k], fake_token(done->id, k))
            << "sequence " << done->id << " output " << k;
      }
      expected_length.erase(done->id);
      ++finished;
    }
    Status inv = kv.check_invariants();
    ASSERT_TRUE(inv.ok()) << "step " << step << ": " << inv.error().message;
  }
  EXPECT_FALSE(s.has_work());
  EXPECT_TRUE(expected_length.empty());
  EXPECT_EQ(kv.stats().num_blocks_used, 0);
  EXPECT_EQ(finished + aborted + refused, kRequests + forked);
  EXPECT_GT(s.num_preemptions(), 0) << "the pool was meant to be too small";
  EXPECT_GT(forked, 0);
  EXPECT_GT(kv.stats().num_prefix_hit_tokens, 0);
}

}  // namespace
}  // namespace moon
