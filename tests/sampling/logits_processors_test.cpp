#include "sampling/logits_processors.h"

#include <gtest/gtest.h>

#include <limits>

namespace moon {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

TEST(LogitsProcessors, DefaultsChangeNothing) {
  EXPECT_FALSE(has_logits_processors(SamplingParams{}));
  SamplingParams p;
  p.min_tokens = 1;
  EXPECT_TRUE(has_logits_processors(p));
}

TEST(LogitsProcessors, RepetitionPenaltyCoversPromptAndOutputOnce) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  TokenHistory h;
  const int32_t prompt[] = {0, 1, 1};
  h.set_prompt(prompt);
  h.add_output(1);
  h.add_output(2);
  h.add_output(2);
  std::vector<float> logits = {4.0f, -4.0f, 6.0f, 8.0f};
  apply_penalties(logits, p, h);
  EXPECT_EQ(logits, (std::vector<float>{2.0f, -8.0f, 3.0f, 8.0f}));
}

TEST(LogitsProcessors, PresenceAndFrequencyCountOutputOnly) {
  SamplingParams p;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  TokenHistory h;
  const int32_t prompt[] = {3};
  h.set_prompt(prompt);
  for (int32_t t : {0, 0, 0, 2}) h.add_output(t);
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  apply_penalties(logits, p, h);
  EXPECT_EQ(logits, (std::vector<float>{1.0f - 0.5f - 0.75f, 1.0f, 1.0f - 0.5f - 0.25f, 1.0f}));
}

TEST(LogitsProcessors, BiasAndStopTokenMask) {
  SamplingParams p;
  p.logit_bias = {{1, 5.0f}, {99, 1.0f}};  // 99 is outside this row: ignored
  p.min_tokens = 2;
  p.stop_token_ids = {3};
  const int32_t eos[] = {0};
  TokenHistory h;
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  apply_logits_processors(logits, p, h, /*n_generated=*/1, eos);
  EXPECT_EQ(logits, (std::vector<float>{kNegInf, 6.0f, 1.0f, kNegInf}));
  logits = {1.0f, 1.0f, 1.0f, 1.0f};
  apply_logits_processors(logits, p, h, /*n_generated=*/2, eos);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 6.0f, 1.0f, 1.0f}));
  p.ignore_eos = true;  // EOS ends nothing then, so it is not masked; stop tokens still are
  logits = {1.0f, 1.0f, 1.0f, 1.0f};
  apply_logits_processors(logits, p, h, /*n_generated=*/0, eos);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 6.0f, 1.0f, kNegInf}));
}

}  // namespace
}  // namespace moon
