// `moon bench latency` and `moon bench throughput`: the report helpers, and the real binary on
// the built-in model and on the test model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/bench_offline_support.h"
#include "common/run_command.h"
#include "common/test_data.h"

namespace moon {
namespace {

using test::RunResult;

RunResult run_moon(const std::vector<std::string>& args) {
  return test::run_command(MOON_BINARY_PATH, args);
}

// The benchmark under `timeout`, so that a hang fails the test (exit 124) instead of stalling it.
RunResult run_moon_with_timeout(int seconds, const std::vector<std::string>& args) {
  std::vector<std::string> all = {std::to_string(seconds), MOON_BINARY_PATH};
  all.insert(all.end(), args.begin(), args.end());
  return test::run_command("timeout", all);
}

nlohmann::json parse_json(const RunResult& r) {
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON (" << e.what() << "):\n" << r.out << r.err;
    return nlohmann::json::object();
  }
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The lines of the Markdown table in a text report (those starting with '|').
std::string table_of(const std::string& out) {
  std::string table;
  size_t start = 0;
  while (start < out.size()) {
    const size_t end = std::min(out.find('\n', start), out.size());
    if (out[start] == '|') table += out.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return table;
}

bool positive_finite(const nlohmann::json& v) {
  return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() > 0.0;
}

// A mean ± sd entry of the throughput JSON over `n` repetitions.
void expect_rate(const nlohmann::json& stat, size_t n, const std::string& name) {
  ASSERT_TRUE(stat.is_object()) << name;
  EXPECT_TRUE(positive_finite(stat["mean"])) << name << stat;
  EXPECT_TRUE(stat["sd"].is_number()) << name;
  EXPECT_GE(stat["sd"].get<double>(), 0.0) << name;
  ASSERT_EQ(stat["samples"].size(), n) << name;
  double sum = 0.0;
  for (const auto& s : stat["samples"]) {
    EXPECT_TRUE(positive_finite(s)) << name;
    sum += s.get<double>();
  }
  EXPECT_NEAR(stat["mean"].get<double>(), sum / n, 1e-6 * sum) << name;
}

TEST(BenchReportHelpers, MeanAndSampleStandardDeviation) {
  const MeanSd m = mean_sd({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_DOUBLE_EQ(m.mean, 5.0);
  EXPECT_NEAR(m.sd, std::sqrt(32.0 / 7.0), 1e-12);  // n - 1, as llama-bench
  EXPECT_EQ(mean_sd({3.5}).sd, 0.0);
  EXPECT_EQ(mean_sd({3.5}).mean, 3.5);
  EXPECT_EQ(format_mean_sd({1234.567, 8.9}), "1234.57 ± 8.90");
  EXPECT_EQ(format_count(292352), "292.35 K");
  EXPECT_EQ(format_count(6740000000), "6.74 B");
  EXPECT_EQ(format_count(12), "12");
}

TEST(BenchReportHelpers, RandomPromptsAvoidSpecialIdsAndNeverRepeat) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  auto file = gguf::GgufFile::open(model);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto tok = Tokenizer::from_gguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  RandomPrompts prompts(**tok, 7);
  ASSERT_TRUE(prompts.usable());
  std::set<TokenId> seen;
  std::vector<std::vector<TokenId>> made;
  for (int i = 0; i < 20; ++i) {
    made.push_back(prompts.make(64));
    const std::vector<TokenId>& p = made.back();
    ASSERT_EQ(p.size(), 64u);
    EXPECT_EQ(p[0], (*tok)->bos_id());  // the model adds BOS, as llama-bench's prompts have
    for (size_t k = 1; k < p.size(); ++k) {
      EXPECT_GE(p[k], 0);
      EXPECT_LT(p[k], (*tok)->vocab_size());
      EXPECT_FALSE((*tok)->is_special(p[k])) << p[k];
      EXPECT_FALSE((*tok)->is_eog(p[k])) << p[k];
      EXPECT_NE(p[k], (*tok)->bos_id());
      seen.insert(p[k]);
    }
  }
  // Fresh prompts every call (no prefix-cache hit across repetitions), drawn widely.
  for (size_t i = 1; i < made.size(); ++i) EXPECT_NE(made[i], made[0]) << i;
  EXPECT_GT(seen.size(), 400u);
  EXPECT_EQ(prompts.make(1), std::vector<TokenId>{(*tok)->bos_id()});
  // The same seed, the same prompts.
  RandomPrompts again(**tok, 7);
  EXPECT_EQ(again.make(64), made[0]);
}

TEST(BenchReportHelpers, ModelSummaryOfTheTestModel) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-q8_0.gguf");
  auto file = gguf::GgufFile::open(model);
  ASSERT_TRUE(file.ok()) << file.error().message;
  const ModelSummary s = summarize_model(model, **file);
  EXPECT_EQ(s.name, "stories260K-q8_0.gguf");
  EXPECT_EQ(s.path, model);
  EXPECT_EQ(s.size, std::filesystem::file_size(model));
  EXPECT_EQ(s.type, "Q8_0");
  uint64_t params = 0;
  for (const auto& t : (*file)->tensors()) params += t.n_elements;
  EXPECT_EQ(s.n_params, params);
  EXPECT_GT(s.n_params, 250000u);
  EXPECT_LT(s.n_params, 300000u);
}

TEST(BenchReportHelpers, TableColumnsAlignWithMultibyteCells) {
  const std::string table =
      format_table({{"model", false}, {"t/s", true}},
                   {{"tiny", "1.00 ± 0.50"}, {"a-longer-name", "12.00 ± 1.00"}});
  EXPECT_EQ(table,
            "| model         |          t/s |\n"
            "| ------------- | -----------: |\n"
            "| tiny          |  1.00 ± 0.50 |\n"
            "| a-longer-name | 12.00 ± 1.00 |\n");
}

TEST(BenchLatency, JsonOnTheBuiltinModelHasBothTestsWithTheirSettings) {
  const RunResult r =
      run_moon({"bench", "latency", "--n-prompt", "48", "--n-gen", "12", "--repetitions", "3",
                "--warmup", "1", "--threads", "1", "--output-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = parse_json(r);
  EXPECT_EQ(j["benchmark"], "latency");
  EXPECT_EQ(j["model"], "builtin:tiny");
  EXPECT_TRUE(positive_finite(j["model_size"]));
  EXPECT_TRUE(positive_finite(j["model_n_params"]));
  EXPECT_EQ(j["threads"], 1);
  EXPECT_TRUE(j["simd"] == "scalar" || j["simd"] == "avx2" || j["simd"] == "avx512") << j["simd"];
  EXPECT_EQ(j["n_prompt"], 48);
  EXPECT_EQ(j["n_gen"], 12);
  EXPECT_EQ(j["repetitions"], 3);
  ASSERT_EQ(j["results"].size(), 2u) << j.dump(2);
  const nlohmann::json& pp = j["results"][0];
  const nlohmann::json& tg = j["results"][1];
  EXPECT_EQ(pp["test"], "pp48");
  EXPECT_EQ(pp["n_prompt"], 48);
  EXPECT_EQ(pp["n_gen"], 0);
  EXPECT_EQ(tg["test"], "tg12");
  EXPECT_EQ(tg["n_prompt"], 0);
  EXPECT_EQ(tg["n_gen"], 12);
  for (const nlohmann::json* t : {&pp, &tg}) {
    EXPECT_EQ((*t)["repetitions"], 3);
    EXPECT_TRUE(positive_finite((*t)["avg_ts"])) << *t;
    EXPECT_GE((*t)["stddev_ts"].get<double>(), 0.0) << *t;
    ASSERT_EQ((*t)["samples_ts"].size(), 3u);
    ASSERT_EQ((*t)["samples_ns"].size(), 3u);
    const int64_t tokens = (*t)["n_prompt"].get<int64_t>() + (*t)["n_gen"].get<int64_t>();
    double sum = 0.0;
    for (size_t i = 0; i < 3; ++i) {
      const double ts = (*t)["samples_ts"][i].get<double>();
      const double ns = (*t)["samples_ns"][i].get<double>();
      EXPECT_TRUE(std::isfinite(ts) && ts > 0.0);
      // Each rate is the test's tokens over its measured time.
      EXPECT_NEAR(ts, tokens / (ns * 1e-9), 1e-6 * ts);
      sum += ts;
    }
    EXPECT_NEAR((*t)["avg_ts"].get<double>(), sum / 3, 1e-9 * sum);
  }
  // Progress: a line per warmup and per repetition of each test.
  EXPECT_EQ(count_of(r.err, "pp48: repetition "), 3u) << r.err;
  EXPECT_EQ(count_of(r.err, "tg12: repetition "), 3u) << r.err;
  EXPECT_EQ(count_of(r.err, "pp48: warmup 1/1"), 1u) << r.err;
}

TEST(BenchLatency, ZeroSkipsATest) {
  RunResult r = run_moon({"bench", "latency", "--n-prompt", "16", "--n-gen", "0", "--repetitions",
                          "2", "--warmup", "0", "--threads", "1", "--output-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = parse_json(r);
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0]["test"], "pp16");
  EXPECT_EQ(j["results"][0]["samples_ts"].size(), 2u);
  EXPECT_EQ(count_of(r.err, "pp16: repetition "), 2u) << r.err;
  EXPECT_EQ(r.err.find("\ntg"), std::string::npos) << r.err;

  r = run_moon({"bench", "latency", "--n-prompt", "0", "--n-gen", "8", "--repetitions", "1",
                "--threads", "1", "--output-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = parse_json(r);
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0]["test"], "tg8");
  EXPECT_EQ(j["results"][0]["stddev_ts"], 0.0);  // one repetition
}

TEST(BenchLatency, TextTableOnTheTestModelFitsTheDefaultsToItsContext) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  const RunResult r =
      run_moon({"bench", "latency", "--model", model, "--threads", "1", "--repetitions", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The model's context is 512: pp512 and its first token would not fit, so the default
  // prompt is 511 tokens (said on stderr); tg128 fits.
  EXPECT_NE(r.err.find("--n-prompt: 511"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("| model "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| threads |"), std::string::npos) << r.out;
  EXPECT_EQ(count_of(r.out, "| stories260K-f32.gguf |"), 2u) << r.out;
  EXPECT_NE(r.out.find("| F32  |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" pp511 | "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" tg128 | "), std::string::npos) << r.out;
  EXPECT_EQ(count_of(table_of(r.out), " ± "), 2u) << r.out;
  EXPECT_EQ(count_of(table_of(r.out), "\n"), 4u) << r.out;  // header, rule, pp, tg
  // Every line of the table is as wide as the header.
  const size_t width = r.out.find('\n');
  size_t start = 0;
  for (int line = 0; line < 4; ++line) {
    const size_t end = r.out.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    const std::string text = r.out.substr(start, end - start);
    size_t columns = 0;
    for (unsigned char c : text) columns += (c & 0xC0) != 0x80;
    EXPECT_EQ(columns, width) << text;
    start = end + 1;
  }
}

TEST(BenchLatency, JsonDescribesTheFile) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-q8_0.gguf");
  const RunResult r =
      run_moon({"bench", "latency", "--model", model, "--threads", "1", "--n-prompt", "32",
                "--n-gen", "8", "--repetitions", "1", "--warmup", "0", "--output-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = parse_json(r);
  EXPECT_EQ(j["model"], "stories260K-q8_0.gguf");
  EXPECT_EQ(j["model_path"], model);
  EXPECT_EQ(j["model_size"].get<uint64_t>(), std::filesystem::file_size(model));
  EXPECT_EQ(j["model_type"], "Q8_0");  // most matrix bytes; the FFN keeps another type
  EXPECT_EQ(j["max_model_len"], 512);
}

TEST(BenchThroughput, CountsEveryTokenTheEngineProduced) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  // Room for every prompt in one step, as llama-batched-bench: then the decode window holds
  // exactly B * (G - 1) tokens.
  const RunResult r = run_moon({"bench",
                                "throughput",
                                "--model",
                                model,
                                "--threads",
                                "1",
                                "--batch-size",
                                "8",
                                "--input-len",
                                "32",
                                "--output-len",
                                "16",
                                "--repetitions",
                                "2",
                                "--warmup",
                                "1",
                                "--max-num-batched-tokens",
                                "256",
                                "--output-format",
                                "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = parse_json(r);
  EXPECT_EQ(j["benchmark"], "throughput");
  EXPECT_EQ(j["batch_size"], 8);
  EXPECT_EQ(j["input_len"], 32);
  EXPECT_EQ(j["output_len"], 16);
  expect_rate(j["results"]["S_PP"], 2, "S_PP");
  expect_rate(j["results"]["S_TG"], 2, "S_TG");
  expect_rate(j["results"]["total"], 2, "total");
  ASSERT_EQ(j["runs"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json& run = j["runs"][i];
    EXPECT_EQ(run["n_prompt_tokens"], 8 * 32);
    EXPECT_EQ(run["n_generated_tokens"], 8 * 16);
    EXPECT_EQ(run["n_decode_tokens"], 8 * 15);
    EXPECT_EQ(run["preemptions"], 0);
    const double t_pp = run["t_pp_s"].get<double>(), t_tg = run["t_tg_s"].get<double>();
    const double t = run["t_s"].get<double>();
    EXPECT_GT(t_pp, 0.0);
    EXPECT_GT(t_tg, 0.0);
    EXPECT_NEAR(t_pp + t_tg, t, 1e-9);
    EXPECT_NEAR(j["results"]["S_PP"]["samples"][i].get<double>(), 8 * 32 / t_pp, 1e-6 / t_pp);
    EXPECT_NEAR(j["results"]["S_TG"]["samples"][i].get<double>(), 8 * 15 / t_tg, 1e-6 / t_tg);
    EXPECT_NEAR(j["results"]["total"]["samples"][i].get<double>(), 8 * 48 / t, 1e-6 / t);
  }
  EXPECT_EQ(count_of(r.err, "throughput: repetition "), 2u) << r.err;
  EXPECT_EQ(count_of(r.err, "throughput: warmup 1/1"), 1u) << r.err;
}

TEST(BenchThroughput, ChunkedPrefillLeavesEarlyTokensOutOfTheDecodeWindow) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  // 64 tokens a step: the first prompts finish and decode while later ones prefill, so fewer
  // than B * (G - 1) tokens come after the last first token, and S_TG counts only those.
  const RunResult r = run_moon({"bench",
                                "throughput",
                                "--model",
                                model,
                                "--threads",
                                "1",
                                "--batch-size",
                                "6",
                                "--input-len",
                                "32",
                                "--output-len",
                                "8",
                                "--repetitions",
                                "1",
                                "--warmup",
                                "0",
                                "--max-num-batched-tokens",
                                "64",
                                "--output-format",
                                "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = parse_json(r);
  ASSERT_EQ(j["runs"].size(), 1u);
  const nlohmann::json& run = j["runs"][0];
  EXPECT_EQ(run["n_prompt_tokens"], 6 * 32);
  EXPECT_EQ(run["n_generated_tokens"], 6 * 8);
  EXPECT_LT(run["n_decode_tokens"].get<int64_t>(), 6 * 7);
  EXPECT_GE(run["n_decode_tokens"].get<int64_t>(), 7);  // the last sequence's own decode
  EXPECT_NEAR(j["results"]["S_TG"]["mean"].get<double>(),
              run["n_decode_tokens"].get<double>() / run["t_tg_s"].get<double>(), 1e-3);
}

TEST(BenchThroughput, TextTableOnTheBuiltinModelAndOneOutputTokenHasNoDecodeRate) {
  RunResult r = run_moon({"bench", "throughput", "--threads", "1", "--batch-size", "4",
                          "--input-len", "16", "--output-len", "8", "--repetitions", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string table = table_of(r.out);
  for (const char* header : {" S_PP t/s |", " S_TG t/s |", " S t/s |"}) {
    EXPECT_NE(table.find(header), std::string::npos) << header << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("| builtin:tiny |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("|   4 |  16 |   8 |"), std::string::npos) << r.out;
  EXPECT_EQ(count_of(table, " ± "), 3u) << r.out;
  EXPECT_NE(r.out.find("S_PP = B*PP / time until every sequence had its first token"),
            std::string::npos)
      << r.out;

  r = run_moon({"bench", "throughput", "--threads", "1", "--batch-size", "4", "--input-len", "16",
                "--output-len", "1", "--repetitions", "1", "--output-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = parse_json(r);
  EXPECT_FALSE(j["results"].contains("S_TG")) << j.dump(2);
  expect_rate(j["results"]["S_PP"], 1, "S_PP");
  EXPECT_EQ(j["runs"][0]["n_generated_tokens"], 4);
}

TEST(BenchThroughput, TooSmallAKvCacheIsAClearErrorNotAHang) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  const std::vector<std::string> args = {"bench",         "throughput", "--model",      model,
                                         "--threads",     "1",          "--batch-size", "8",
                                         "--input-len",   "64",         "--output-len", "64",
                                         "--repetitions", "1",          "--warmup",     "0"};
  std::vector<std::string> small = args;
  small.insert(small.end(), {"--kv-cache-memory", "1MiB"});
  const RunResult r = run_moon_with_timeout(60, small);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // 124 would be the timeout
  // stories260K: 5 layers x 4 KV heads x 8 dims x K and V x 4 bytes = 1280 bytes a token,
  // 20 KiB a block; 1 MiB holds 51 blocks, and 8 sequences of 128 tokens need 64.
  EXPECT_NE(r.err.find("--batch-size 8 sequences of 128 tokens need 64 KV cache blocks at once "
                       "but the cache has 51 usable"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  // The size it suggests is enough.
  const std::string marker = "raise --kv-cache-memory to at least ";
  const size_t at = r.err.find(marker);
  ASSERT_NE(at, std::string::npos) << r.err;
  const std::string suggested =
      r.err.substr(at + marker.size(), r.err.find(' ', at + marker.size()) - at - marker.size());
  EXPECT_EQ(suggested, "2MiB");
  std::vector<std::string> enough = args;
  enough.insert(enough.end(), {"--kv-cache-memory", suggested, "--output-format", "json"});
  const RunResult ok = run_moon_with_timeout(60, enough);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const nlohmann::json j = parse_json(ok);
  EXPECT_EQ(j["runs"][0]["n_generated_tokens"], 8 * 64);
  EXPECT_EQ(j["runs"][0]["preemptions"], 0);
}

TEST(BenchReportHelpers, BatchFitCountsWholeBlocksAndTheWatermark) {
  KvLayout kv;
  kv.num_layers = 2;
  kv.num_kv_heads = 2;
  kv.head_dim = 64;
  kv.block_size = 16;
  kv.num_blocks = 200;                              // 2 kept free for admission: 198 usable
  EXPECT_TRUE(check_batch_fits(kv, 11, 288).ok());  // 11 x 18 blocks = 198
  const Status s = check_batch_fits(kv, 11, 289);   // 11 x 19 = 209
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("need 209 KV cache blocks at once but the cache has 198 usable"),
            std::string::npos)
      << s.error().message;
  // 212 blocks leave 210 usable; a block is K and V x 2 layers x 2 heads x 64 dims x 16 tokens
  // x 4 bytes = 32 KiB, so 6.625 MiB, rounded up.
  EXPECT_NE(s.error().message.find("at least 7MiB"), std::string::npos) << s.error().message;
  kv.num_blocks = 7 * 32;
  EXPECT_TRUE(check_batch_fits(kv, 11, 289).ok());
}

TEST(BenchOffline, BadFlagsAreClearErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"bench", "latency", "--n-prompt", "-1"}, "--n-prompt"},
      {{"bench", "latency", "--n-gen", "-5"}, "--n-gen"},
      {{"bench", "latency", "--repetitions", "0"}, "--repetitions"},
      {{"bench", "latency", "--warmup", "-1"}, "--warmup"},
      {{"bench", "latency", "--output-format", "xml"}, "--output-format"},
      {{"bench", "latency", "--n-prompt", "0", "--n-gen", "0"},
       "--n-prompt and --n-gen are both 0"},
      {{"bench", "latency", "--n-prompt", "64", "--max-model-len", "64"},
       "--n-prompt 64 and its first token need 65 tokens of context, more than --max-model-len 64"},
      {{"bench", "latency", "--n-prompt", "8", "--n-gen", "63", "--max-model-len", "64"},
       "--n-gen 63 needs 65 tokens of context"},
      {{"bench", "latency", "--base-url", "http://x"}, "--base-url"},
      {{"bench", "--num-prompts", "5", "latency"},
       "--num-prompts is a flag of the serving benchmark, not of `moon bench latency`"},
      {{"bench", "throughput", "--batch-size", "0"}, "--batch-size"},
      {{"bench", "throughput", "--input-len", "-3"}, "--input-len"},
      {{"bench", "throughput", "--output-len", "0"}, "--output-len"},
      {{"bench", "throughput", "--repetitions", "0"}, "--repetitions"},
      {{"bench", "throughput", "--batch-size", "300"},
       "--batch-size 300 is more than --max-num-seqs 256: raise --max-num-seqs"},
      {{"bench", "throughput", "--input-len", "60", "--output-len", "8", "--max-model-len", "64"},
       "--input-len 60 + --output-len 8 is more than --max-model-len 64"},
  };
  for (const Case& c : cases) {
    const RunResult r = run_moon(c.args);
    std::string line;
    for (const std::string& a : c.args) line += a + " ";
    EXPECT_NE(r.exit_code, 0) << line;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << line << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << line << "\n" << r.out;
  }
}

TEST(BenchOffline, ServingBenchmarkStaysTheDefault) {
  // Without a subcommand `moon bench` is still the serving benchmark: it talks to the server.
  RunResult r = run_moon({"bench", "--base-url", "http://127.0.0.1:1", "--model", "m",
                          "--num-prompts", "1", "--disable-tqdm"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("Benchmarking http://127.0.0.1:1/v1/completions with model m"),
            std::string::npos)
      << r.err;
  r = run_moon({"bench", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* text : {"--num-prompts", "latency", "throughput"}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text << "\n" << r.out;
  }
}

}  // namespace
}  // namespace moon
