// `moon bench`: a serving benchmark for any OpenAI-compatible server (moon's own, vLLM,
// llama.cpp's llama-server), with the flags and report of vLLM's `vllm bench serve`; and its
// subcommands `moon bench latency` and `moon bench throughput`, offline benchmarks of the
// engine in this process (bench_offline_command.h).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/bench_offline_command.h"
#include "loadgen/bench_config.h"
#include "loadgen/bench_metrics.h"
#include "util/result.h"

namespace moon {

struct BenchOptions {
  loadgen::BenchConfig config;
  std::string host;  // --host/--port override --base-url's
  int port = 0;
  std::string percentile_metrics = "ttft,tpot,itl,e2el";
  std::string metric_percentiles = "99";
  bool save_result = false;
  std::string result_filename;  // default: moon-bench-<rate>qps-<model>-<date>.json
  bool no_progress = false;

  // The offline subcommands; without one, `moon bench` is the serving benchmark.
  LatencyBenchOptions latency;
  ThroughputBenchOptions throughput;
  CLI::App* bench_cmd = nullptr;
  CLI::App* latency_cmd = nullptr;
  CLI::App* throughput_cmd = nullptr;
};

CLI::App* add_bench_command(CLI::App& app, BenchOptions& options);

// Runs the benchmark (the serving one, or the offline subcommand given) and prints the report;
// returns the process exit code.
int run_bench(BenchOptions options);

// The report's text: vLLM's "Serving Benchmark Result" block.
std::string format_report(const loadgen::BenchConfig& config, const loadgen::BenchSummary& summary);

// The --save-result document: the settings, the summary and every request's data.
nlohmann::json result_json(const loadgen::BenchConfig& config, const std::string& model,
                           const std::vector<loadgen::RequestRecord>& records,
                           const loadgen::BenchSummary& summary);

}  // namespace moon
