#include "sampling/sampling_params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

namespace moon {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(SamplingParams, DefaultsAreValid) {
  EXPECT_TRUE(SamplingParams{}.validate().ok());
  EXPECT_TRUE(SamplingParams{}.validate(32000).ok());
  EXPECT_FALSE(SamplingParams{}.greedy());
}

TEST(SamplingParams, GreedyMeansTemperatureZeroOrTopKOne) {
  SamplingParams p;
  p.temperature = 0.0f;
  EXPECT_TRUE(p.greedy());
  p.temperature = 0.8f;
  p.top_k = 1;
  EXPECT_TRUE(p.greedy());
}

TEST(SamplingParams, EachBadValueIsAClearError) {
  struct Case {
    std::function<void(SamplingParams&)> set;
    const char* field;  // the message must name it
  };
  const Case cases[] = {
      {[](SamplingParams& p) { p.n = 0; }, "n must"},
      {[](SamplingParams& p) { p.temperature = -0.1f; }, "temperature"},
      {[](SamplingParams& p) { p.temperature = kNaN; }, "temperature"},
      {[](SamplingParams& p) { p.temperature = kInf; }, "temperature"},
      {[](SamplingParams& p) { p.top_k = -2; }, "top_k"},
      {[](SamplingParams& p) { p.top_p = 0.0f; }, "top_p"},
      {[](SamplingParams& p) { p.top_p = 1.5f; }, "top_p"},
      {[](SamplingParams& p) { p.top_p = kNaN; }, "top_p"},
      {[](SamplingParams& p) { p.min_p = -0.1f; }, "min_p"},
      {[](SamplingParams& p) { p.min_p = 1.1f; }, "min_p"},
      {[](SamplingParams& p) { p.repetition_penalty = 0.0f; }, "repetition_penalty"},
      {[](SamplingParams& p) { p.repetition_penalty = kNaN; }, "repetition_penalty"},
      {[](SamplingParams& p) { p.presence_penalty = 2.5f; }, "presence_penalty"},
      {[](SamplingParams& p) { p.frequency_penalty = -2.5f; }, "frequency_penalty"},
      {[](SamplingParams& p) { p.frequency_penalty = kNaN; }, "frequency_penalty"},
      {[](SamplingParams& p) {
         p.logit_bias = {{5, 101.0f}};
       },
       "logit_bias"},
      {[](SamplingParams& p) {
         p.logit_bias = {{-1, 1.0f}};
       },
       "logit_bias"},
      {[](SamplingParams& p) {
         p.logit_bias = {{32000, 1.0f}};
       },
       "logit_bias"},
      {[](SamplingParams& p) { p.top_logprobs = 21; }, "top_logprobs"},
      {[](SamplingParams& p) { p.top_logprobs = -1; }, "top_logprobs"},
      {[](SamplingParams& p) { p.stop_token_ids = {32000}; }, "stop_token_ids"},
      {[](SamplingParams& p) {
         p.stop = {"ok", ""};
       },
       "stop strings"},
      {[](SamplingParams& p) { p.max_tokens = 0; }, "max_tokens"},
      {[](SamplingParams& p) { p.min_tokens = -1; }, "min_tokens"},
      {[](SamplingParams& p) {
         p.max_tokens = 4;
         p.min_tokens = 5;
       },
       "min_tokens"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.set(p);
    const Status s = p.validate(32000);
    ASSERT_FALSE(s.ok()) << c.field;
    EXPECT_NE(s.error().message.find(c.field), std::string::npos) << s.error().message;
  }
}

TEST(SamplingParams, BoundaryValuesAreAccepted) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_k = -1;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.logit_bias = {{0, -100.0f}, {31999, 100.0f}};
  p.top_logprobs = 20;
  p.max_tokens = 1;
  p.min_tokens = 1;
  EXPECT_TRUE(p.validate(32000).ok());
  p.top_k = 0;
  EXPECT_TRUE(p.validate(32000).ok());
}

}  // namespace
}  // namespace moon
