// The reference forward against logits from an independent fp32 implementation
// (llama2.c's run.c on the checkpoint the GGUF was converted from).
#include "reference/reference_forward.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_data.h"

namespace moon {
namespace {

TEST(ReferenceForward, MatchesGoldenLogitsAtEveryPosition) {
  MOON_REQUIRE_TEST_FILE(model_path, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-logits-stories260K.json");
  auto model = load_model(model_path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  std::ifstream in(golden_path);
  const nlohmann::json golden = nlohmann::json::parse(in);
  ASSERT_EQ(golden["vocab_size"].get<int64_t>(), (*model)->hparams.n_vocab);
  ASSERT_FALSE(golden["cases"].empty());

  for (const auto& c : golden["cases"]) {
    const auto ids = c["token_ids"].get<std::vector<int32_t>>();
    const auto& expected = c["logits"];
    ASSERT_EQ(expected.size(), ids.size());
    reference::ReferenceForward ref(**model);
    for (size_t p = 0; p < ids.size(); ++p) {
      const std::vector<float>& logits = ref.forward(ids[p], static_cast<int64_t>(p));
      const auto want = expected[p].get<std::vector<float>>();
      ASSERT_EQ(want.size(), logits.size());
      float max_err = 0.0f;
      for (size_t v = 0; v < want.size(); ++v) {
        max_err = std::max(max_err, std::fabs(want[v] - logits[v]));
      }
      EXPECT_LE(max_err, 1e-4f) << "position " << p << " of a case of " << ids.size() << " tokens";
    }
  }
}

}  // namespace
}  // namespace moon
