// Greedy generation on stories260K against llama.cpp's output (golden-stories260K.jsonl):
// the same prompt token ids and the same continuation, token for token.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_data.h"
#include "model/llama_forward.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace moon {
namespace {

void expect_golden(const std::string& model_file) {
  MOON_REQUIRE_TEST_FILE(model_path, model_file);
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  auto model = load_llama_model(model_path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto tokenizer = Tokenizer::from_gguf(*(*model)->file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().message;
  const int64_t n_vocab = (*model)->hparams.n_vocab;
  ThreadPool pool(2);

  int cases = 0;
  for (const nlohmann::json& golden : test::read_jsonl(golden_path)) {
    const auto prompt = golden["prompt"].get<std::string>();
    const auto want_prompt = golden["prompt_token_ids"].get<std::vector<int32_t>>();
    const auto want_output = golden["output_token_ids"].get<std::vector<int32_t>>();
    const int n_predict = golden["n_predict"].get<int>();

    const auto ids = (*tokenizer)->encode(prompt, true, false);
    EXPECT_EQ(ids, want_prompt) << "prompt: " << prompt;

    LlamaForward engine(**model, static_cast<int64_t>(want_prompt.size()) + n_predict, &pool);
    std::vector<float> logits(n_vocab);
    ASSERT_TRUE(engine.forward(want_prompt, 0, logits.data()).ok());
    std::vector<int32_t> output;
    int64_t pos = static_cast<int64_t>(want_prompt.size());
    while (static_cast<int>(output.size()) < n_predict) {
      const int32_t next = sample_greedy(logits).id;
      if ((*tokenizer)->is_eog(next)) break;
      output.push_back(next);
      const int32_t one[] = {next};
      ASSERT_TRUE(engine.forward(one, pos++, logits.data()).ok());
    }
    EXPECT_EQ(output, want_output) << "prompt: " << prompt;
    ++cases;
  }
  EXPECT_EQ(cases, 9);
}

TEST(GoldenGeneration, StoriesF32MatchesLlamaCppGreedyOutput) {
  expect_golden("models/stories260K-f32.gguf");
}

}  // namespace
}  // namespace moon
