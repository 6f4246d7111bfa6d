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

// Loads the model at `path` and its tokenizer's end-of-generation ids (fatal failures
// otherwise).
inline void load_model_and_eog(const std::string& path, std::unique_ptr<Model>* model,
                               std::vector<TokenId>* eog) {
  auto loaded = load_model(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  *model = std::move(loaded).value();
  auto tok = Tokenizer::from_gguf(*(*model)->file);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  *eog = (*tok)->eog_ids();
}

class StoriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MOON_REQUIRE_TEST_FILE(model_path, "models/stories260K-f32.gguf");
    MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
    load_model_and_eog(model_path, &model_, &eog_);
    if (HasFatalFailure()) return;
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
