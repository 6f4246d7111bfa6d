// End-to-end tests of `moon generate`: the real binary, driven through a shell.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_command.h"
#include "common/test_data.h"

namespace moon {
namespace {

using test::RunResult;

RunResult run_moon(const std::vector<std::string>& args) {
  return test::run_command(MOON_BINARY_PATH, args);
}

TEST(GenerateCommand, GoldenPromptsGiveLlamaCppGreedyTokens) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  int cases = 0;
  for (const nlohmann::json& golden : test::read_jsonl(golden_path)) {
    const RunResult r =
        run_moon({"generate", "--model", model, "--prompt", golden["prompt"].get<std::string>(),
                  "--max-tokens", std::to_string(golden["n_predict"].get<int>()), "--output-format",
                  "json", "--threads", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto out = nlohmann::json::parse(r.out);
    EXPECT_EQ(out["prompt_token_ids"], golden["prompt_token_ids"]) << golden["prompt"];
    EXPECT_EQ(out["output_token_ids"], golden["output_token_ids"]) << golden["prompt"];
    EXPECT_EQ(out["text"], golden["output_text"]) << golden["prompt"];
    const bool stopped = golden["stop_type"] != "limit";
    EXPECT_EQ(out["finish_reason"], stopped ? "stop" : "length");
    for (const char* key : {"load_ms", "prefill_ms", "decode_ms", "sample_ms"}) {
      EXPECT_TRUE(out["timings"][key].is_number()) << key;
      EXPECT_GE(out["timings"][key].get<double>(), 0.0) << key;
    }
    ++cases;
  }
  EXPECT_EQ(cases, 9);
}

// The weights mapped in place and copied into memory give the same tokens.
TEST(GenerateCommand, MappedAndCopiedWeightsGiveTheGoldenTokens) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  const nlohmann::json golden = test::read_jsonl(golden_path).front();
  for (const char* flag : {"--mmap", "--no-mmap"}) {
    const RunResult r =
        run_moon({"generate", "--model", model, "--prompt", golden["prompt"].get<std::string>(),
                  "--max-tokens", std::to_string(golden["n_predict"].get<int>()), "--output-format",
                  "json", "--threads", "1", flag});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["output_token_ids"], golden["output_token_ids"]) << flag;
    const bool copied = r.err.find("into memory") != std::string::npos;
    EXPECT_EQ(copied, std::string(flag) == "--no-mmap") << flag << ": " << r.err;
  }
}

TEST(GenerateCommand, SeveralPromptsRunTogetherAndPrintAnArrayInPromptOrder) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  const std::vector<nlohmann::json> golden = test::read_jsonl(golden_path);
  // Two on the command line, the rest from a prompts file (one JSON string per line).
  const std::string file = test::temp_dir() + "/prompts.jsonl";
  {
    std::ofstream out(file);
    for (size_t g = 2; g < golden.size(); ++g) out << golden[g]["prompt"].dump() << "\n";
  }
  const RunResult r =
      run_moon({"generate", "--model", model, "--prompt", golden[0]["prompt"].get<std::string>(),
                "--prompt", golden[1]["prompt"].get<std::string>(), "--prompts-file", file,
                "--max-tokens", "48", "--max-num-batched-tokens", "24", "--output-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  ASSERT_TRUE(out.is_array());
  ASSERT_EQ(out.size(), golden.size());
  for (size_t g = 0; g < golden.size(); ++g) {
    EXPECT_EQ(out[g]["prompt_token_ids"], golden[g]["prompt_token_ids"]) << g;
    EXPECT_EQ(out[g]["output_token_ids"], golden[g]["output_token_ids"]) << g;
  }
}

TEST(GenerateCommand, BuiltinModelIsTheDefaultAndHonoursMaxTokens) {
  const RunResult r =
      run_moon({"generate", "--prompt", "Hello", "--max-tokens", "12", "--output-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  // The built-in vocabulary has no merges: "Hello" is BOS, "▁" and one token per letter.
  EXPECT_EQ(out["prompt_token_ids"].size(), 7u);
  EXPECT_EQ(out["prompt_token_ids"][0], 1);
  EXPECT_LE(out["output_token_ids"].size(), 12u);
  if (out["output_token_ids"].size() < 12u) {
    EXPECT_EQ(out["finish_reason"], "stop");
  }
}

TEST(GenerateCommand, SeededSamplingIsReproducibleAndSeedsDiffer) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  auto run = [&](const std::string& seed) {
    const RunResult r =
        run_moon({"generate", "--model", model, "--prompt", "Once upon a time", "--temperature",
                  "1.0", "--seed", seed, "--max-tokens", "32", "--output-format", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out)["output_token_ids"];
  };
  const auto a = run("7"), b = run("7"), c = run("8");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(GenerateCommand, TextOutputStreamsTheContinuation) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  const RunResult r = run_moon(
      {"generate", "--model", model, "--prompt", "Once upon a time", "--max-tokens", "48"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            ", there was a little girl named Lily. She loved to play outside in the park. One "
            "day, she saw a big, red ball. She wanted to play with it,\n");
}

// The first golden prompt's greedy continuation, from llama.cpp.
nlohmann::json first_golden() {
  const std::string path = test::test_data_file("models/golden-stories260K.jsonl");
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return nlohmann::json::parse(line);
}

TEST(GenerateCommand, StopStringCutsTheTextAndEndsTheSequence) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  const nlohmann::json golden = first_golden();
  const std::string text = golden["output_text"];
  const std::vector<int> ids = golden["output_token_ids"];
  for (bool include : {false, true}) {
    std::vector<std::string> args = {
        "generate", "--model",         model,    "--prompt",      "Once upon a time",
        "--stop",   " Lily",           "--stop", "never appears", "--max-tokens",
        "48",       "--output-format", "json"};
    if (include) args.push_back("--include-stop-str-in-output");
    const RunResult r = run_moon(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto out = nlohmann::json::parse(r.out);
    const size_t cut = text.find(" Lily");
    ASSERT_NE(cut, std::string::npos);
    EXPECT_EQ(out["text"], text.substr(0, include ? cut + 5 : cut));
    EXPECT_EQ(out["finish_reason"], "stop");
    // Generation ended at the token that completed the stop string, not at --max-tokens.
    const std::vector<int> got = out["output_token_ids"];
    ASSERT_LT(got.size(), ids.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), ids.begin()));
  }
}

TEST(GenerateCommand, SamplingFlagsReachTheSampler) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  const nlohmann::json golden = first_golden();
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "--model",          model,
                                     "--prompt", "Once upon a time", "--max-tokens",
                                     "12",       "--output-format",  "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = run_moon(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  };
  // A +100 bias makes one token win every step.
  const auto biased = run({"--logit-bias", "300=100", "--ignore-eos"});
  EXPECT_EQ(biased["output_token_ids"], std::vector<int>(12, 300));
  // top-k 1 is greedy whatever the temperature: llama.cpp's greedy tokens.
  const auto top1 = run({"--temperature", "1.5", "--top-k", "1", "--seed", "3"});
  const std::vector<int> want = golden["output_token_ids"];
  EXPECT_EQ(top1["output_token_ids"], std::vector<int>(want.begin(), want.begin() + 12));
  // A repetition penalty changes the greedy text.
  const auto penalized = run({"--repetition-penalty", "2.0"});
  EXPECT_NE(penalized["output_token_ids"], top1["output_token_ids"]);
  // --logprobs k: the chosen token's logprob and the k best, the chosen one first (greedy).
  const auto lp = run({"--logprobs", "3"});
  ASSERT_EQ(lp["logprobs"].size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    const auto& entry = lp["logprobs"][i];
    EXPECT_EQ(entry["id"], lp["output_token_ids"][i]);
    ASSERT_EQ(entry["top_logprobs"].size(), 3u);
    EXPECT_EQ(entry["top_logprobs"][0]["id"], entry["id"]);
    EXPECT_LE(entry["logprob"].get<double>(), 0.0);
    EXPECT_GE(entry["top_logprobs"][1]["logprob"].get<double>(),
              entry["top_logprobs"][2]["logprob"].get<double>());
  }
}

TEST(GenerateCommand, PromptLogprobsScoreThePromptLikeTheGeneratedTokens) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  const nlohmann::json golden = first_golden();
  // Greedy text with its logprobs, then that text as the prompt: the prompt logprobs of the
  // continuation's tokens must be the logprobs they had when generated.
  auto run = [&](const std::string& prompt, std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "--model",      model, "--prompt",
                                     prompt,     "--max-tokens", "8",   "--output-format",
                                     "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = run_moon(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  };
  const auto gen = run("Once upon a time", {"--logprobs", "0"});
  const auto scored =
      run("Once upon a time" + gen["text"].get<std::string>(), {"--prompt-logprobs", "2"});
  const auto& plp = scored["prompt_logprobs"];
  ASSERT_EQ(plp.size(), scored["prompt_token_ids"].size());
  EXPECT_TRUE(plp[0].is_null());
  const size_t n_prompt = gen["prompt_token_ids"].size();
  ASSERT_GE(plp.size(), n_prompt + 8);
  for (size_t i = 0; i < 8; ++i) {
    const auto& e = plp[n_prompt + i];
    EXPECT_EQ(e["id"], gen["output_token_ids"][i]) << i;
    EXPECT_NEAR(e["logprob"].get<double>(), gen["logprobs"][i]["logprob"].get<double>(), 1e-3);
    EXPECT_EQ(e["top_logprobs"].size(), 2u);
  }
}

TEST(GenerateCommand, MissingModelFileIsAClearError) {
  const RunResult r = run_moon({"generate", "--model", "/nonexistent/x.gguf", "--prompt", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot open '/nonexistent/x.gguf'"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(GenerateCommand, MalformedModelFileIsAClearError) {
  const std::string path = test::temp_dir() + "/not-a-model.gguf";
  std::ofstream(path) << "this is not a GGUF file at all";
  const RunResult r = run_moon({"generate", "--model", path, "--prompt", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a GGUF file"), std::string::npos) << r.err;
}

TEST(GenerateCommand, BadFlagsAreRejected) {
  EXPECT_NE(run_moon({"generate", "--prompt", "x", "--output-format", "xml"}).exit_code, 0);
  EXPECT_NE(run_moon({"generate", "--prompt", "x", "--temperature", "-1"}).exit_code, 0);
  EXPECT_NE(run_moon({"generate"}).exit_code, 0);  // --prompt is required
  const RunResult bias = run_moon({"generate", "--prompt", "x", "--logit-bias", "abc"});
  EXPECT_EQ(bias.exit_code, 1);
  EXPECT_NE(bias.err.find("expected TOKEN=BIAS"), std::string::npos) << bias.err;
  const RunResult top_p = run_moon({"generate", "--prompt", "x", "--top-p", "0"});
  EXPECT_EQ(top_p.exit_code, 1);
  EXPECT_NE(top_p.err.find("top_p must be in (0, 1]"), std::string::npos) << top_p.err;
  const RunResult range = run_moon({"generate", "--prompt", "x", "--logit-bias", "1=500"});
  EXPECT_EQ(range.exit_code, 1);
  EXPECT_NE(range.err.find("logit_bias"), std::string::npos) << range.err;
}

}  // namespace
}  // namespace moon
