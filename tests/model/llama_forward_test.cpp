// The engine forward against the reference forward: same logits to fp32 rounding (on the
// int8 path, as test::LogitsComparison says), for every chunking of the prompt, on the F32
// and Q8_0 files and the built-in model.
#include "model/llama_forward.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/test_data.h"
#include "model/model_test_util.h"
#include "reference/reference_forward.h"

namespace moon {
namespace {

std::vector<int32_t> random_prompt(std::mt19937& rng, int64_t n_vocab, int64_t length) {
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(length));
  for (int32_t& id : ids) id = token(rng);
  return ids;
}

// Feeds a random prompt in random-sized chunks (1 to 40 tokens) and compares the logits of
// every position with the reference forward.
void expect_matches_reference(const Model& model, int threads, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t n_vocab = model.hparams.n_vocab;
  ThreadPool pool(threads);
  test::LogitsComparison comparison(model, 1e-4f);
  for (int trial = 0; trial < 3; ++trial) {
    const auto prompt = random_prompt(rng, n_vocab, 1 + rng() % 90);
    reference::ReferenceForward ref(model);
    const auto want = ref.forward_all(prompt);
    LlamaForward engine(model, 128, &pool, /*max_batch=*/16);
    std::vector<float> got(prompt.size() * n_vocab);
    size_t pos = 0;
    while (pos < prompt.size()) {
      const size_t len = std::min<size_t>(prompt.size() - pos, 1 + rng() % 40);
      ASSERT_TRUE(engine
                      .forward(std::span(prompt).subspan(pos, len), static_cast<int64_t>(pos),
                               &got[pos * n_vocab], /*all_logits=*/true)
                      .ok());
      pos += len;
    }
    for (size_t p = 0; p < prompt.size(); ++p) {
      comparison.add(&got[p * n_vocab], want[p],
                     "trial " + std::to_string(trial) + " position " + std::to_string(p) + " of " +
                         std::to_string(prompt.size()));
    }
  }
}

TEST(LlamaForward, MatchesReferenceOnStoriesF32) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto model = load_model(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  expect_matches_reference(**model, 1, 1);
  expect_matches_reference(**model, 2, 2);
}

TEST(LlamaForward, MatchesReferenceOnStoriesQ8_0) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-q8_0.gguf");
  auto model = load_model(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  expect_matches_reference(**model, 2, 3);
}

TEST(LlamaForward, MatchesReferenceOnBuiltinTiny) {
  auto model = load_model("builtin:tiny");
  ASSERT_TRUE(model.ok()) << model.error().message;
  expect_matches_reference(**model, 2, 4);
}

TEST(LlamaForward, LastTokenLogitsEqualAllLogitsRow) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto model = load_model(path);
  ASSERT_TRUE(model.ok());
  const int64_t n_vocab = (*model)->hparams.n_vocab;
  std::mt19937 rng(5);
  const auto prompt = random_prompt(rng, n_vocab, 37);
  ThreadPool pool(2);
  LlamaForward a(**model, 64, &pool, 8), b(**model, 64, &pool, 64);
  std::vector<float> last(n_vocab), all(prompt.size() * n_vocab);
  ASSERT_TRUE(a.forward(prompt, 0, last.data()).ok());
  ASSERT_TRUE(b.forward(prompt, 0, all.data(), true).ok());
  // Batch invariance: the last row is bitwise the same however the prompt was chunked.
  EXPECT_EQ(0, std::memcmp(last.data(), &all[(prompt.size() - 1) * n_vocab], n_vocab * 4));
}

TEST(LlamaForward, RejectsOutOfRangeInput) {
  auto model = load_model("builtin:tiny");
  ASSERT_TRUE(model.ok());
  ThreadPool pool(1);
  LlamaForward engine(**model, 8, &pool);
  std::vector<float> logits((*model)->hparams.n_vocab);
  const int32_t bad_token[] = {static_cast<int32_t>((*model)->hparams.n_vocab)};
  EXPECT_FALSE(engine.forward(bad_token, 0, logits.data()).ok());
  const int32_t negative[] = {-1};
  EXPECT_FALSE(engine.forward(negative, 0, logits.data()).ok());
  const std::vector<int32_t> too_long(9, 1);
  EXPECT_FALSE(engine.forward(too_long, 0, logits.data()).ok());
}

}  // namespace
}  // namespace moon
