// The engine on its own thread, driven from several caller threads at once.
#include "engine/engine_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "stories_fixture.h"

namespace moon {
namespace {

class EngineClientTest : public test::StoriesTest {
 protected:
  std::unique_ptr<EngineClient> make_client(int64_t budget = 32) {
    return std::make_unique<EngineClient>(make_engine(engine_config(budget, 32ull << 20, 1)));
  }
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
