// The sampler under a grammar: whatever the logits say, greedy and sampled rows emit only
// text the grammar allows and end once it is complete, and a constrained row neither
// changes nor is changed by the rows it shares a batch with.
#include <gtest/gtest.h>

#include "grammar/grammar_test_util.h"
#include "sampling/sampler.h"
#include "sampling/sampling_test_util.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

constexpr int32_t kEnd = 256;       // the byte vocabulary's end token
constexpr int64_t kRowWidth = 260;  // a model row may be wider than the tokenizer's vocabulary

std::vector<float> row_for(uint64_t key) {
  return test::normal_row(key, kRowWidth, 3.0f);
}

struct Stream {
  std::unique_ptr<SequenceState> state;
  std::vector<int32_t> tokens;  // what it has generated
  bool ended = false;
};

Stream make_stream(SamplingParams p) {
  return {std::make_unique<SequenceState>(SequenceState::for_request(p)), {}, false};
}

// Steps every stream that has not ended, `steps` times, in one batch per step.
void run(std::vector<Stream*> batch, int steps, ThreadPool* pool = nullptr) {
  Sampler sampler(pool, {kEnd});
  for (int step = 0; step < steps; ++step) {
    std::vector<float> logits;
    std::vector<SamplingRow> rows;
    std::vector<Stream*> live;
    for (Stream* s : batch) {
      if (s->ended) continue;
      const uint64_t key =
          s->tokens.empty() ? 1 : static_cast<uint64_t>(s->tokens.back()) * 977 + s->tokens.size();
      const auto row = row_for(key);
      logits.insert(logits.end(), row.begin(), row.end());
      rows.push_back({s->state.get(), s->tokens});
      live.push_back(s);
    }
    if (live.empty()) return;
    std::vector<SampleOutput> out(live.size());
    sampler.sample(logits, kRowWidth, rows, out);
    for (size_t i = 0; i < live.size(); ++i) {
      live[i]->tokens.push_back(out[i].id);
      live[i]->ended = out[i].id == kEnd;
    }
  }
}

std::string text_of(const std::vector<int32_t>& tokens) {
  std::string s;
  for (int32_t t : tokens) {
    if (t < 256) s += static_cast<char>(t);
  }
  return s;
}

TEST(GrammarSampling, GreedyAndSampledRowsProduceSentencesOfTheGrammar) {
  const std::string gbnf = R"(root ::= "{" [a-c]{2,5} ("," [0-9])* "}")";
  auto automaton = grammar::test::automaton(gbnf);
  ASSERT_TRUE(automaton);
  for (float temperature : {0.0f, 0.7f, 1.5f}) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      SamplingParams p;
      p.temperature = temperature;
      p.seed = seed;
      p.grammar = automaton;
      Stream s = make_stream(p);
      run({&s}, 200);
      ASSERT_TRUE(s.ended) << "no end after 200 tokens: " << text_of(s.tokens);
      const std::string text = text_of(s.tokens);
      EXPECT_EQ(grammar::test::match(*automaton, text), grammar::test::Match::kComplete) << text;
      EXPECT_TRUE(s.state->grammar()->done());
      for (size_t i = 0; i + 1 < s.tokens.size(); ++i)
        EXPECT_LT(s.tokens[i], 256) << "a token outside the grammar's text";
    }
  }
}

TEST(GrammarSampling, AConstrainedRowIsTheSameWhateverTheBatch) {
  auto automaton = grammar::test::automaton(R"(root ::= [a-z]+ ("-" [a-z]+)* "." )");
  ASSERT_TRUE(automaton);
  SamplingParams constrained;
  constrained.temperature = 0.9f;
  constrained.seed = 5;
  constrained.grammar = automaton;
  SamplingParams free;
  free.temperature = 0.9f;
  free.seed = 6;

  Stream c_alone = make_stream(constrained), f_alone = make_stream(free);
  run({&c_alone}, 40);
  run({&f_alone}, 40);
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    Stream c = make_stream(constrained), f = make_stream(free), g = make_stream(constrained);
    run({&f, &c, &g}, 40, p);
    EXPECT_EQ(c.tokens, c_alone.tokens);
    EXPECT_EQ(g.tokens, c_alone.tokens) << "the same seed and grammar in one batch";
    EXPECT_EQ(f.tokens, f_alone.tokens) << "the unconstrained row was touched";
  }
  EXPECT_NE(text_of(f_alone.tokens).find_first_not_of("abcdefghijklmnopqrstuvwxyz-."),
            std::string::npos)
      << "the free row should wander outside the grammar, or the test says little";
}

TEST(GrammarSampling, BiasCannotReviveAForbiddenToken) {
  auto automaton = grammar::test::automaton(R"(root ::= "ab")");
  ASSERT_TRUE(automaton);
  SamplingParams p;
  p.temperature = 0.0f;
  p.grammar = automaton;
  p.logit_bias = {{'z', 100.0f}};
  Stream s = make_stream(p);
  run({&s}, 5);
  EXPECT_EQ(s.tokens, (std::vector<int32_t>{'a', 'b', kEnd}));
}

TEST(GrammarSampling, MinTokensAgainstACompleteGrammarEndsInsteadOfEmittingGarbage) {
  // After "a" the grammar allows only the end, which min_tokens masks: nothing is left.
  auto automaton = grammar::test::automaton(R"(root ::= "a")");
  ASSERT_TRUE(automaton);
  SamplingParams p;
  p.temperature = 0.0f;
  p.min_tokens = 3;
  p.max_tokens = 5;
  p.grammar = automaton;
  Stream s = make_stream(p);
  run({&s}, 5);
  EXPECT_EQ(s.tokens, (std::vector<int32_t>{'a', kEnd}));
}

TEST(GrammarSampling, BeamSearchRefusesAGrammar) {
  SamplingParams p;
  p.use_beam_search = true;
  p.n = 2;
  p.grammar = grammar::test::automaton(R"(root ::= "a")");
  const Status s = p.validate();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not supported with beam search"), std::string::npos);
}

}  // namespace
}  // namespace moon
