// The kquants/ model in every block type against llama.cpp (../shared/models/kquants/): on
// each quantized file moon's int8 path quantizes activations as ggml does (Q8_0, Q8_1 or
// Q8_K blocks by weight type), so its logits must follow llama.cpp's on that file closely;
// on each dequantized F32 twin the fp32 path must follow llama.cpp's F32 run to 1e-4.
//
// The checks, fed llama.cpp's own continuation (teacher forcing): prompt token ids exactly;
// the top-10 logits of steps 0-3 within the tolerance (entries may swap only where their
// logits are within twice the tolerance); and at all 32 steps, llama.cpp's greedy token is
// moon's argmax wherever llama.cpp's top-1/top-2 margin is at least twice the tolerance.
//
// On quantized files the tolerance cannot be uniformly tight: moon's norms, attention and
// SiLU round differently from ggml's in the last bit, and an activation that sits on a
// rounding boundary of its 8-bit block then takes the other step (measured: on Q2_K,
// Q5_K_M and Q5_1, up to 0.07 at some SIMD levels). So each file is held to 0.1 (the README's bound
// for a different activation rounding is 0.3), and separately nearly every file must agree
// to rounding error, which only a kernel that multiplies exactly what ggml multiplies does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "common/test_data.h"
#include "model/llama_forward.h"
#include "reference/reference_forward.h"
#include "tokenizer/tokenizer.h"

namespace moon {
namespace {

// Returns the largest |logit difference| seen (infinity when the files are missing).
double expect_follows_golden(const std::string& model_file, const std::string& golden_file,
                             float tolerance) {
  const std::string model_path = test::test_data_file(model_file);
  const std::string golden_path = test::test_data_file(golden_file);
  if (model_path.empty() || golden_path.empty()) {
    ADD_FAILURE() << "unreachable: the callers require the files";
    return INFINITY;
  }
  auto model = load_llama_model(model_path);
  if (!model.ok()) return ADD_FAILURE() << model.error().message, INFINITY;
  auto tokenizer = Tokenizer::from_gguf(*(*model)->file);
  if (!tokenizer.ok()) return ADD_FAILURE() << tokenizer.error().message, INFINITY;
  const int64_t n_vocab = (*model)->hparams.n_vocab;
  ThreadPool pool(2);

  int lines = 0, checked_steps = 0;
  double worst = 0.0;
  for (const nlohmann::json& golden : test::read_jsonl(golden_path)) {
    SCOPED_TRACE(golden["id"].get<std::string>());
    const auto prompt = golden["prompt_token_ids"].get<std::vector<int32_t>>();
    const auto want = golden["output_token_ids"].get<std::vector<int32_t>>();
    const auto margins = golden["margins"].get<std::vector<double>>();
    if (want.size() != margins.size()) return ADD_FAILURE() << "bad golden line", INFINITY;
    EXPECT_EQ((*tokenizer)->encode(golden["prompt"].get<std::string>(), true, false), prompt);

    std::vector<int32_t> all = prompt;
    all.insert(all.end(), want.begin(), want.end());
    LlamaForward forward(**model, static_cast<int64_t>(all.size()), &pool);
    std::vector<float> logits(all.size() * n_vocab);
    if (!forward.forward(all, 0, logits.data(), /*all_logits=*/true).ok()) {
      return ADD_FAILURE() << "forward failed", INFINITY;
    }
    const auto step_row = [&](size_t s) {
      return std::span<const float>(&logits[(prompt.size() - 1 + s) * n_vocab], n_vocab);
    };

    for (const nlohmann::json& top : golden["top_logits"]) {
      const auto step = top["step"].get<size_t>();
      const auto ids = top["ids"].get<std::vector<int32_t>>();
      const auto values = top["logits"].get<std::vector<double>>();
      const std::span<const float> row = step_row(step);
      for (size_t r = 0; r < ids.size(); ++r) {
        const double diff = std::fabs(row[ids[r]] - values[r]);
        worst = std::max(worst, diff);
        EXPECT_LE(diff, tolerance) << "step " << step << " id " << ids[r];
      }
      // Nothing outside llama.cpp's top 10 may rise above its 10th by more than the
      // tolerance allows.
      for (int64_t id = 0; id < n_vocab; ++id) {
        if (std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
        EXPECT_LE(row[id], values.back() + 2 * tolerance) << "step " << step << " id " << id;
      }
    }
    for (size_t s = 0; s < want.size(); ++s) {
      if (margins[s] < 2 * tolerance) continue;
      const std::span<const float> row = step_row(s);
      const auto best = std::max_element(row.begin(), row.end()) - row.begin();
      EXPECT_EQ(best, want[s]) << "step " << s << " (margin " << margins[s] << ")";
      ++checked_steps;
    }
    ++lines;
  }
  EXPECT_EQ(lines, 4);
  EXPECT_GE(checked_steps, 4 * 32 / 2);  // most steps are no near-tie
  std::printf("[ measured ] %s: max |logit - llama.cpp| %.3g over the top-10 of steps 0-3\n",
              model_file.c_str(), worst);
  return worst;
}

const char* const kTags[] = {"q4_k_m", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k",
                             "iq4_xs", "q8_0",   "q4_0",   "q4_1", "q5_0",   "q5_1"};

std::string quantized_file(const std::string& tag) {
  return "models/kquants/kq-llama-" + tag + ".gguf";
}
std::string quantized_golden(const std::string& tag) {
  return "models/kquants/golden-kq-llama-" + tag + ".jsonl";
}

class KQuantGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(KQuantGolden, QuantizedFileFollowsLlamaCpp) {
  const std::string tag = GetParam();
  MOON_REQUIRE_TEST_FILE(model, quantized_file(tag));
  MOON_REQUIRE_TEST_FILE(golden, quantized_golden(tag));
  expect_follows_golden(quantized_file(tag), quantized_golden(tag), 0.1f);
}

TEST_P(KQuantGolden, DequantizedTwinMatchesLlamaCppF32) {
  const std::string tag = GetParam();
  const std::string file = "models/kquants/kq-llama-" + tag + "-dequant-f32.gguf";
  const std::string golden = "models/kquants/golden-kq-llama-" + tag + "-dequant-f32.jsonl";
  MOON_REQUIRE_TEST_FILE(model_path, file);
  MOON_REQUIRE_TEST_FILE(golden_path, golden);
  expect_follows_golden(file, golden, 1e-4f);
}

// The reference forward keeps fp32 activations before the Q8_1 and Q8_K formats' matrices
// (it rounds only where the int8 path takes Q8_0 blocks), so on these files it is the
// fp32-activation path over the quantized weights: llama.cpp's run on the dequantized twin is
// its oracle, at 1e-4.
TEST(KQuantGolden, ReferenceForwardOnQuantizedWeightsMatchesTheDequantizedRun) {
  for (const char* tag :
       {"q4_k_m", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k", "iq4_xs", "q4_1", "q5_1"}) {
    SCOPED_TRACE(tag);
    MOON_REQUIRE_TEST_FILE(model_path, quantized_file(tag));
    MOON_REQUIRE_TEST_FILE(
        golden_path, "models/kquants/golden-kq-llama-" + std::string(tag) + "-dequant-f32.jsonl");
    auto model = load_llama_model(model_path);
    ASSERT_TRUE(model.ok()) << model.error().message;
    double worst = 0.0;
    for (const nlohmann::json& golden : test::read_jsonl(golden_path)) {
      auto prompt = golden["prompt_token_ids"].get<std::vector<int32_t>>();
      const auto want = golden["output_token_ids"].get<std::vector<int32_t>>();
      const size_t prompt_len = prompt.size();
      prompt.insert(prompt.end(), want.begin(), want.begin() + 3);  // steps 0-3
      reference::ReferenceForward ref(**model);
      const auto logits = ref.forward_all(prompt);
      for (const nlohmann::json& top : golden["top_logits"]) {
        const auto step = top["step"].get<size_t>();
        const auto ids = top["ids"].get<std::vector<int32_t>>();
        const auto values = top["logits"].get<std::vector<double>>();
        for (size_t r = 0; r < ids.size(); ++r) {
          const double diff = std::fabs(logits[prompt_len - 1 + step][ids[r]] - values[r]);
          worst = std::max(worst, diff);
          EXPECT_LE(diff, 1e-4) << "step " << step << " id " << ids[r];
        }
      }
    }
    std::printf("[ measured ] reference on %s: max |logit - llama.cpp dequantized| %.3g\n", tag,
                worst);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KQuantGolden, ::testing::ValuesIn(kTags),
                         [](const auto& info) { return std::string(info.param); });

// Measured: the others within 6e-6 of llama.cpp, and 9 of the 12 files so at the scalar
// level (Q2_K, Q5_K_M, Q5_1 a boundary step off), 10 at AVX-512, 11 at AVX2.
TEST(KQuantGolden, NearlyEveryQuantizedFileAgreesToRoundingError) {
  int tight = 0;
  for (const char* tag : kTags) {
    MOON_REQUIRE_TEST_FILE(model, quantized_file(tag));
    MOON_REQUIRE_TEST_FILE(golden, quantized_golden(tag));
    tight += expect_follows_golden(quantized_file(tag), quantized_golden(tag), 0.1f) <= 1e-4;
  }
  EXPECT_GE(tight, 9) << "files agreeing with llama.cpp to 1e-4";
}

}  // namespace
}  // namespace moon
