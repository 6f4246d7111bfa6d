// The engine tests' common ground: the stories260K model, its end-of-text tokens and the
// golden prompts with llama.cpp's greedy continuations (skipped loudly without test data).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_data.h"
#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace moon::test {

class StoriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MOON_REQUIRE_TEST_FILE(model_path, "models/stories260K-f32.gguf");
    MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
    auto model = load_model(model_path);
    ASSERT_TRUE(model.ok()) << model.error().message;
    model_ = std::move(model).value();
    auto tok = Tokenizer::from_gguf(*model_->file);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    eog_ = (*tok)->eog_ids();
    for (const nlohmann::json& j : test::read_jsonl(golden_path)) {
      prompts_.push_back(j["prompt_token_ids"].get<std::vector<TokenId>>());
      outputs_.push_back(j["output_token_ids"].get<std::vector<TokenId>>());
    }
  }

  // A 512-token context, `budget` tokens per step, `kv_bytes` of KV cache.
  static EngineConfig engine_config(int64_t budget, uint64_t kv_bytes = 64ull << 20,
                                    int threads = 2) {
    EngineConfig c;
    c.scheduler.max_num_batched_tokens = budget;
    c.scheduler.max_num_seqs = 64;
    c.scheduler.max_model_len = 512;
    c.kv_cache_bytes = kv_bytes;
    c.num_threads = threads;
    return c;
  }

  std::unique_ptr<Engine> make_engine(const EngineConfig& config) {
    auto engine = Engine::create(*model_, eog_, config);
    EXPECT_TRUE(engine.ok()) << engine.error().message;
    return engine.ok() ? std::move(engine).value() : nullptr;
  }

  static SamplingParams greedy(int max_tokens = 48) {
    SamplingParams p;
    p.temperature = 0.0f;
    p.max_tokens = max_tokens;
    return p;
  }

  std::unique_ptr<Model> model_;
  std::vector<TokenId> eog_;
  std::vector<std::vector<TokenId>> prompts_;  // golden prompts' token ids
  std::vector<std::vector<TokenId>> outputs_;  // llama.cpp's greedy continuations
};

}  // namespace moon::test
