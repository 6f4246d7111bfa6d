// `moon bench`: the report's layout, the saved JSON, and end to end against the real
// `moon serve` on the test model.
#include "cli/bench_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_command.h"
#include "common/test_client.h"
#include "common/test_data.h"

namespace moon {
namespace {

using loadgen::BenchConfig;
using loadgen::BenchSummary;
using loadgen::RequestRecord;

// The value of a Prometheus sample whose name (labels aside) is `name`; -1 when absent.
double prometheus_value(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1.0;
}

TEST(BenchReport, HasVllmLines) {
  BenchConfig c;
  c.max_concurrency = 4;
  std::vector<RequestRecord> records(2);
  records[0].success = true;
  records[0].prompt_len = 10;
  records[0].output_tokens = 3;
  records[0].ttft = 0.01;
  records[0].latency = 0.05;
  records[0].itl = {0.02, 0.02};
  records[1].error = "HTTP 400: bad";
  const BenchSummary s = loadgen::summarize(records, 0.5, {50, 99.9});
  c.metric_percentiles = {50, 99.9};
  const std::string report = format_report(c, s);
  for (const char* expected :
       {"============ Serving Benchmark Result ============\n",
        "Successful requests:                     1", "Failed requests:                         1",
        "Maximum request concurrency:             4",
        "Benchmark duration (s):                  0.50",
        "Total input tokens:                      10", "Total generated tokens:                  3",
        "Request throughput (req/s):              2.00",
        "Output token throughput (tok/s):         6.00",
        "Total Token throughput (tok/s):          26.00",
        "---------------Time to First Token----------------\n",
        "Mean TTFT (ms):                          10.00",
        "P99.9 TTFT (ms):", "-----Time per Output Token (excl. 1st token)------\n",
        "Mean TPOT (ms):                          20.00",
        "P50 ITL (ms):                            20.00",
        "----------------End-to-end Latency----------------\n",
        "Median E2EL (ms):                        50.00", "First error: HTTP 400: bad"}) {
    EXPECT_NE(report.find(expected), std::string::npos) << expected << "\nin:\n" << report;
  }
  c.percentile_metrics = {"ttft"};
  EXPECT_EQ(format_report(c, s).find("TPOT"), std::string::npos);
}

TEST(BenchCommand, BadFlagsAndUnreachableServerFail) {
  auto r = test::run_command(MOON_BINARY_PATH, {"bench", "--percentile-metrics", "ttft,nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown metric 'nope'"), std::string::npos) << r.err;
  r = test::run_command(MOON_BINARY_PATH, {"bench", "--metric-percentiles", "101"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'101'"), std::string::npos) << r.err;
  r = test::run_command(MOON_BINARY_PATH, {"bench", "--request-rate", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--request-rate must be positive"), std::string::npos) << r.err;
  r = test::run_command(MOON_BINARY_PATH, {"bench", "--base-url", "https://x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("http://"), std::string::npos) << r.err;
}

TEST(BenchCommand, EndToEndAgainstMoonServe) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  test::ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB"});
  ASSERT_TRUE(server.ready()) << server.log();
  const auto before = test::http_request(server.port(), "GET", "/metrics");
  ASSERT_EQ(before.status, 200);
  const double generated_before = prometheus_value(before.body, "vllm:generation_tokens_total");
  ASSERT_GE(generated_before, 0.0) << before.body;

  const std::string result_path = test::temp_dir() + "/bench-result.json";
  std::remove(result_path.c_str());
  const auto r = test::run_command(
      MOON_BINARY_PATH, {"bench", "--port", std::to_string(server.port()), "--num-prompts", "20",
                         "--random-input-len", "32", "--random-output-len", "16",
                         "--max-concurrency", "4", "--vocab-size", "512", "--metric-percentiles",
                         "50,90,99", "--save-result", "--result-filename", result_path});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Successful requests:                     20 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Total input tokens:                      640 "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Total generated tokens:                  320 "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("P90 ITL (ms):"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Failed requests"), std::string::npos) << r.out;

  std::ifstream in(result_path);
  ASSERT_TRUE(in) << "no result file " << result_path;
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["model_id"], "stories260K-f32.gguf");
  EXPECT_EQ(j["completed"], 20);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["total_output_tokens"], 320);
  EXPECT_EQ(j["max_concurrency"], 4);
  ASSERT_EQ(j["output_lens"].size(), 20u);
  ASSERT_EQ(j["ttfts"].size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(j["output_lens"][i], 16) << i;
    EXPECT_EQ(j["input_lens"][i], 32) << i;
    EXPECT_EQ(j["success"][i], true) << j["errors"][i];
    const double ttft = j["ttfts"][i].get<double>();
    const double e2el = j["e2els"][i].get<double>();
    EXPECT_GT(ttft, 0.0) << i;
    EXPECT_LE(ttft, e2el) << i;
    // One gap per chunk after the first; moon may carry several tokens in one chunk when
    // the client reads slower than the engine steps, never more chunks than tokens.
    EXPECT_LE(j["itls"][i].size(), 15u) << i;
    double chunk_sum = ttft;
    for (const auto& gap : j["itls"][i]) chunk_sum += gap.get<double>();
    EXPECT_LE(chunk_sum, e2el + 1e-9) << i;
    EXPECT_NEAR(j["tpots"][i].get<double>(), (e2el - ttft) / 15, 1e-9) << i;
  }
  EXPECT_LE(j["p50_ttft_ms"].get<double>(), j["p99_ttft_ms"].get<double>());
  EXPECT_GT(j["mean_e2el_ms"].get<double>(), 0.0);

  const auto after = test::http_request(server.port(), "GET", "/metrics");
  EXPECT_EQ(prometheus_value(after.body, "vllm:generation_tokens_total") - generated_before, 320.0);
}

}  // namespace
}  // namespace moon
