#include "golden_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <span>

#include "common/test_data.h"
#include "model/llama_forward.h"
#include "reference/reference_forward.h"
#include "tokenizer/tokenizer.h"

namespace moon::test {
namespace {

// Checks one step's logits row against llama.cpp's top 10 there; returns the worst diff.
double check_top_logits(std::span<const float> row, const nlohmann::json& top, float tolerance) {
  const auto step = top["step"].get<size_t>();
  const auto ids = top["ids"].get<std::vector<int32_t>>();
  const auto values = top["logits"].get<std::vector<double>>();
  double worst = 0.0;
  for (size_t r = 0; r < ids.size(); ++r) {
    const double diff = std::fabs(row[ids[r]] - values[r]);
    worst = std::max(worst, diff);
    EXPECT_LE(diff, tolerance) << "step " << step << " id " << ids[r];
  }
  // Nothing outside llama.cpp's top 10 may rise above its 10th by more than the tolerance
  // allows.
  for (size_t id = 0; id < row.size(); ++id) {
    if (std::find(ids.begin(), ids.end(), static_cast<int32_t>(id)) != ids.end()) continue;
    EXPECT_LE(row[id], values.back() + 2 * tolerance) << "step " << step << " id " << id;
  }
  return worst;
}

}  // namespace

GoldenResult expect_engine_follows_golden(const std::string& model_file,
                                          const std::string& golden_file, float tolerance) {
  GoldenResult result;
  result.worst = INFINITY;
  auto model = load_model(test_data_file(model_file));
  if (!model.ok()) return ADD_FAILURE() << model.error().message, result;
  auto tokenizer = Tokenizer::from_gguf(*(*model)->file);
  if (!tokenizer.ok()) return ADD_FAILURE() << tokenizer.error().message, result;
  const int64_t n_vocab = (*model)->hparams.n_vocab;
  ThreadPool pool(2);

  double worst = 0.0;
  for (const nlohmann::json& golden : read_jsonl(test_data_file(golden_file))) {
    SCOPED_TRACE(golden["id"].get<std::string>());
    const auto prompt = golden["prompt_token_ids"].get<std::vector<int32_t>>();
    const auto want = golden["output_token_ids"].get<std::vector<int32_t>>();
    const auto margins = golden["margins"].get<std::vector<double>>();
    if (want.size() != margins.size()) return ADD_FAILURE() << "bad golden line", result;
    EXPECT_EQ((*tokenizer)
                  ->encode(golden["prompt"].get<std::string>(), golden.value("add_special", true),
                           golden.value("parse_special", false)),
              prompt);

    std::vector<int32_t> all = prompt;
    all.insert(all.end(), want.begin(), want.end());
    LlamaForward forward(**model, static_cast<int64_t>(all.size()), &pool);
    std::vector<float> logits(all.size() * n_vocab);
    if (!forward.forward(all, 0, logits.data(), /*all_logits=*/true).ok()) {
      return ADD_FAILURE() << "forward failed", result;
    }
    const auto step_row = [&](size_t s) {
      return std::span<const float>(&logits[(prompt.size() - 1 + s) * n_vocab], n_vocab);
    };
    for (const nlohmann::json& top : golden["top_logits"]) {
      worst =
          std::max(worst, check_top_logits(step_row(top["step"].get<size_t>()), top, tolerance));
    }
    for (size_t s = 0; s < want.size(); ++s) {
      if (margins[s] < 2 * tolerance) continue;
      const std::span<const float> row = step_row(s);
      const auto best = std::max_element(row.begin(), row.end()) - row.begin();
      EXPECT_EQ(best, want[s]) << "step " << s << " (margin " << margins[s] << ")";
      ++result.checked_steps;
    }
    ++result.lines;
  }
  EXPECT_GE(result.checked_steps, result.lines * 32 / 2);  // most steps are no near-tie
  std::printf("[ measured ] %s: max |logit - golden| %.3g over the top-10 of steps 0-3\n",
              model_file.c_str(), worst);
  result.worst = worst;
  return result;
}

GoldenResult expect_reference_follows_golden(const Model& model, const std::string& golden_file,
                                             float tolerance) {
  GoldenResult result;
  for (const nlohmann::json& golden : read_jsonl(test_data_file(golden_file))) {
    SCOPED_TRACE(golden["id"].get<std::string>());
    auto tokens = golden["prompt_token_ids"].get<std::vector<int32_t>>();
    const auto want = golden["output_token_ids"].get<std::vector<int32_t>>();
    const size_t prompt_len = tokens.size();
    tokens.insert(tokens.end(), want.begin(), want.begin() + 3);  // steps 0-3
    reference::ReferenceForward ref(model);
    const auto logits = ref.forward_all(tokens);
    for (const nlohmann::json& top : golden["top_logits"]) {
      const std::vector<float>& row = logits[prompt_len - 1 + top["step"].get<size_t>()];
      result.worst = std::max(result.worst, check_top_logits(row, top, tolerance));
    }
    ++result.lines;
  }
  return result;
}

}  // namespace moon::test
