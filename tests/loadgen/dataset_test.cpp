// Random prompts: lengths in range, ids inside the vocabulary, reproducible; the request body.
#include "loadgen/dataset.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/test_data.h"
#include "loadgen/bench_runner.h"
#include "loadgen/loadgen_test_util.h"

namespace moon::loadgen {
namespace {

TEST(RandomDataset, ExactLengthsWithoutRange) {
  const BenchConfig c = random_config(50, 32, 16, 512);
  auto prompts = make_random_dataset(c);
  ASSERT_TRUE(prompts.ok()) << prompts.error().message;
  ASSERT_EQ(prompts->size(), 50u);
  for (const BenchPrompt& p : *prompts) {
    EXPECT_EQ(p.token_ids.size(), 32u);
    EXPECT_EQ(p.prompt_len, 32);
    EXPECT_EQ(p.output_len, 16);
    for (int64_t id : p.token_ids) {
      EXPECT_GE(id, 3);
      EXPECT_LT(id, 512);
    }
  }
}

TEST(RandomDataset, RangeRatioAndSeed) {
  BenchConfig c = random_config(2000, 100, 10, 32000);
  c.random_range_ratio = 0.5;
  c.seed = 3;
  auto prompts = make_random_dataset(c);
  ASSERT_TRUE(prompts.ok());
  int64_t min_in = 1 << 30, max_in = 0, min_out = 1 << 30, max_out = 0;
  for (const BenchPrompt& p : *prompts) {
    min_in = std::min(min_in, p.prompt_len);
    max_in = std::max(max_in, p.prompt_len);
    min_out = std::min(min_out, p.output_len);
    max_out = std::max(max_out, p.output_len);
    for (int64_t id : p.token_ids) {
      ASSERT_GE(id, 1000);
      ASSERT_LT(id, 32000);
    }
  }
  // 2000 draws from [50, 150] and [5, 15] reach both ends.
  EXPECT_EQ(min_in, 50);
  EXPECT_EQ(max_in, 150);
  EXPECT_EQ(min_out, 5);
  EXPECT_EQ(max_out, 15);

  auto again = make_random_dataset(c);
  EXPECT_EQ((*again)[7].token_ids, (*prompts)[7].token_ids);
  c.seed = 4;
  auto other = make_random_dataset(c);
  EXPECT_NE((*other)[7].token_ids, (*prompts)[7].token_ids);
}

TEST(RandomDataset, RejectsBadSettings) {
  BenchConfig c;
  c.vocab_size = 3;
  EXPECT_FALSE(make_random_dataset(c).ok());
  c.vocab_size = 512;
  c.random_range_ratio = 1.0;
  EXPECT_FALSE(make_random_dataset(c).ok());
}

TEST(PromptFile, CyclesLines) {
  const std::string path = test::temp_dir() + "/prompts.jsonl";
  std::ofstream(path) << "\"Once upon a time\"\n\n\"The end\"\n";
  BenchConfig c;
  c.dataset_path = path;
  c.num_prompts = 3;
  c.random_output_len = 8;
  auto prompts = make_dataset(c);
  ASSERT_TRUE(prompts.ok()) << prompts.error().message;
  ASSERT_EQ(prompts->size(), 3u);
  EXPECT_EQ((*prompts)[0].text, "Once upon a time");
  EXPECT_EQ((*prompts)[1].text, "The end");
  EXPECT_EQ((*prompts)[2].text, "Once upon a time");
  EXPECT_EQ((*prompts)[2].output_len, 8);
  std::ofstream(path) << "not json\n";
  EXPECT_FALSE(make_dataset(c).ok());
}

TEST(CompletionRequest, Body) {
  BenchPrompt p;
  p.token_ids = {5, 6, 7};
  p.output_len = 16;
  const nlohmann::json body = completion_request("m", p, true);
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["prompt"], nlohmann::json({5, 6, 7}));
  EXPECT_EQ(body["max_tokens"], 16);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  EXPECT_EQ(body["ignore_eos"], true);
  p.token_ids.clear();
  p.text = "hi";
  EXPECT_EQ(completion_request("m", p, false)["prompt"], "hi");
}

}  // namespace
}  // namespace moon::loadgen
