// The engine on its own thread, driven from several caller threads at once.
#include "engine/engine_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/test_data.h"
#include "tokenizer/tokenizer.h"

namespace moon {
namespace {

class EngineClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string model_path = test::test_data_file("models/stories260K-f32.gguf");
    const std::string golden_path = test::test_data_file("models/golden-stories260K.jsonl");
    if (model_path.empty() || golden_path.empty()) {
      GTEST_SKIP() << "TEST DATA MISSING: models/stories260K-f32.gguf or golden file";
    }
    model_ = std::move(load_llama_model(model_path)).value();
    std::ifstream in(golden_path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      prompts_.push_back(j["prompt_token_ids"].get<std::vector<TokenId>>());
      outputs_.push_back(j["output_token_ids"].get<std::vector<TokenId>>());
    }
  }

  std::unique_ptr<EngineClient> make_client(int64_t budget = 32) {
    EngineConfig c;
    c.scheduler.max_num_batched_tokens = budget;
    c.scheduler.max_model_len = 512;
    c.kv_cache_bytes = 32ull << 20;
    c.num_threads = 1;
    auto tok = Tokenizer::from_gguf(*model_->file);
    auto engine = Engine::create(*model_, (*tok)->eog_ids(), c);
    return std::make_unique<EngineClient>(std::move(engine).value());
  }

  static SamplingParams greedy(int max_tokens = 48) {
    SamplingParams p;
    p.temperature = 0.0f;
    p.max_tokens = max_tokens;
    return p;
  }

  std::unique_ptr<LlamaModel> model_;
  std::vector<std::vector<TokenId>> prompts_, outputs_;
};

TEST_F(EngineClientTest, ConcurrentCallersEachGetTheirGoldenTokens) {
  auto client = make_client();
  std::vector<std::vector<TokenId>> got(prompts_.size());
  std::vector<std::thread> callers;
  for (size_t g = 0; g < prompts_.size(); ++g) {
    callers.emplace_back([&, g] {
      auto stream = client->submit(prompts_[g], greedy());
      ASSERT_TRUE(stream.ok());
      while (auto u = (*stream)->pop()) {
        if (u->token >= 0) got[g].push_back(u->token);
      }
      EXPECT_TRUE((*stream)->finished());
    });
  }
  for (auto& t : callers) t.join();
  for (size_t g = 0; g < prompts_.size(); ++g) EXPECT_EQ(got[g], outputs_[g]) << "prompt " << g;
}

TEST_F(EngineClientTest, DroppingAStreamAbortsItsRequestAndFreesItsBlocks) {
  auto client = make_client();
  {
    auto stream = client->submit(prompts_[6], greedy(300));
    ASSERT_TRUE(stream.ok()) << stream.error().message;
    ASSERT_TRUE((*stream)->pop().has_value());  // it is running and holds blocks
    EXPECT_GT(client->snapshot().kv.num_blocks_used, 0);
  }  // the caller goes away
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((client->snapshot().kv.num_blocks_used > 0 || client->snapshot().num_running > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(client->snapshot().kv.num_blocks_used, 0);
  EXPECT_EQ(client->snapshot().num_running, 0);
}

TEST_F(EngineClientTest, ExplicitAbortEndsTheStreamWithAbort) {
  auto client = make_client();
  auto stream = client->submit(prompts_[0], greedy(400));
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE((*stream)->pop().has_value());
  client->abort((*stream)->id());
  FinishReason last = FinishReason::kNone;
  while (auto u = (*stream)->pop()) {
    if (u->finished) last = u->finish_reason;
  }
  EXPECT_EQ(last, FinishReason::kAbort);
}

TEST_F(EngineClientTest, BadRequestIsRefusedSynchronously) {
  auto client = make_client();
  auto stream = client->submit({1, 100000}, greedy());
  ASSERT_FALSE(stream.ok());
  EXPECT_NE(stream.error().message.find("outside the vocabulary"), std::string::npos);
}

TEST_F(EngineClientTest, ShutdownClosesStreamsThatOutliveTheClient) {
  auto client = make_client();
  auto stream = client->submit(prompts_[0], greedy(400));
  ASSERT_TRUE(stream.ok());
  client.reset();
  while ((*stream)->pop()) {
  }
  EXPECT_TRUE((*stream)->finished());
}

}  // namespace
}  // namespace moon
