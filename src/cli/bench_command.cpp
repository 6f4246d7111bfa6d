#include "cli/bench_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "loadgen/bench_runner.h"
#include "loadgen/dataset.h"
#include "loadgen/http_stream_client.h"

namespace moon {
namespace {

using loadgen::BenchConfig;
using loadgen::BenchSummary;
using loadgen::RequestRecord;

struct MetricName {
  const char* key;
  const char* header;  // the section's title
  const char* label;   // in "Mean <label> (ms)"
};
constexpr MetricName kMetrics[] = {
    {"ttft", "Time to First Token", "TTFT"},
    {"tpot", "Time per Output Token (excl. 1st token)", "TPOT"},
    {"itl", "Inter-token Latency", "ITL"},
    {"e2el", "End-to-end Latency", "E2EL"},
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Status parse_lists(BenchOptions& o) {
  o.config.percentile_metrics.clear();
  for (const std::string& m : split_list(o.percentile_metrics)) {
    if (m != "ttft" && m != "tpot" && m != "itl" && m != "e2el") {
      return make_error("--percentile-metrics: unknown metric '{}' (ttft, tpot, itl, e2el)", m);
    }
    o.config.percentile_metrics.push_back(m);
  }
  o.config.metric_percentiles.clear();
  for (const std::string& p : split_list(o.metric_percentiles)) {
    char* end = nullptr;
    const double v = std::strtod(p.c_str(), &end);
    if (end == p.c_str() || *end != '\0' || !(v >= 0.0 && v <= 100.0)) {
      return make_error("--metric-percentiles: '{}' is not a number in [0, 100]", p);
    }
    o.config.metric_percentiles.push_back(v);
  }
  return Status::success();
}

// "99" for 99.0, "99.9" for 99.9: how vLLM names percentiles.
std::string percentile_name(double p) {
  return p == std::floor(p) ? fmt::format("{}", static_cast<int64_t>(p)) : fmt::format("{}", p);
}

std::string line(const std::string& label, const std::string& value) {
  return fmt::format("{:<40} {:<10}\n", label, value);
}

std::string centered(const std::string& title, char fill) {
  const size_t width = 50;
  const size_t pad = title.size() < width ? width - title.size() : 0;
  return std::string(pad / 2, fill) + title + std::string(pad - pad / 2, fill) + "\n";
}

// Local time as "20261125-230500".
std::string date_stamp() {
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%Y%m%d-%H%M%S", &tm);
  return date;
}

std::string default_filename(const BenchConfig& c, const std::string& model) {
  std::string name = model;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
  }
  const std::string rate =
      std::isfinite(c.request_rate) ? fmt::format("{}", c.request_rate) : std::string("inf");
  return fmt::format("moon-bench-{}qps-{}-{}.json", rate, name, date_stamp());
}

// "completed/total" redrawn in place on a terminal; nothing elsewhere.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO)) {}
  void update(int64_t done, int64_t total) {
    if (!enabled_) return;
    std::fprintf(stderr, "\r%lld/%lld requests done", static_cast<long long>(done),
                 static_cast<long long>(total));
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
};

Result<std::string> first_model(const loadgen::ServerUrl& url, const std::string& api_key) {
  MOON_ASSIGN_OR_RETURN(nlohmann::json models, loadgen::get_json(url, "/v1/models", api_key));
  const auto data = models.find("data");
  if (data == models.end() || !data->is_array() || data->empty() || !(*data)[0].contains("id") ||
      !(*data)[0]["id"].is_string()) {
    return make_error("GET /v1/models lists no model; give --model");
  }
  return (*data)[0]["id"].get<std::string>();
}

}  // namespace

CLI::App* add_bench_command(CLI::App& app, BenchOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "bench", "Benchmark an OpenAI-compatible server (the flags of vLLM's `vllm bench serve`)");
  BenchConfig& c = o.config;
  cmd->add_option("--base-url", c.base_url, "Server URL")->capture_default_str();
  cmd->add_option("--host", o.host, "Server host (overrides --base-url's)");
  cmd->add_option("--port", o.port, "Server port (overrides --base-url's)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--endpoint", c.endpoint, "Completions endpoint")->capture_default_str();
  cmd->add_option("--model", c.model, "Model name (default: the first of GET /v1/models)");
  cmd->add_option("--api-key", c.api_key, "Sent as 'Authorization: Bearer KEY'");
  cmd->add_option("--dataset-name", c.dataset_name, "random (or any name with --dataset-path)")
      ->capture_default_str();
  cmd->add_option("--dataset-path", c.dataset_path,
                  "File with one JSON string prompt per line (instead of random prompts)");
  cmd->add_option("--num-prompts", c.num_prompts, "Requests to send")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--random-input-len", c.random_input_len, "Prompt tokens (random dataset)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--random-output-len", c.random_output_len, "max_tokens of each request")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--random-range-ratio", c.random_range_ratio,
                  "Lengths uniform in [len*(1-R), len*(1+R)]")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--vocab-size", c.vocab_size,
                  "Random token ids are drawn from [1000, V) (from [3, V) when V <= 2000); "
                  "set it to the served model's vocabulary")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 31));
  cmd->add_option("--request-rate", c.request_rate,
                  "Requests per second (inf: all at once; else Poisson/gamma arrivals)")
      ->capture_default_str();
  cmd->add_option("--burstiness", c.burstiness,
                  "Gamma shape of inter-arrival times (1: Poisson; <1 burstier)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-concurrency", c.max_concurrency, "Most requests in flight (0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("--seed", c.seed, "Seed of the prompts and arrival times")->capture_default_str();
  cmd->add_flag("--ignore-eos,!--no-ignore-eos", c.ignore_eos,
                "Ask for exactly max_tokens (default on)");
  cmd->add_option("--percentile-metrics", o.percentile_metrics,
                  "Metrics to report percentiles of: ttft,tpot,itl,e2el")
      ->capture_default_str();
  cmd->add_option("--metric-percentiles", o.metric_percentiles, "Percentiles, e.g. 50,90,99")
      ->capture_default_str();
  cmd->add_flag("--save-result", o.save_result, "Write the results as JSON");
  cmd->add_option(
      "--result-filename", o.result_filename,
      "JSON file for --save-result (default: moon-bench-<rate>qps-<model>-<date>.json)");
  cmd->add_flag("--disable-tqdm,--no-progress", o.no_progress, "No progress line");
  cmd->require_subcommand(0, 1);
  o.bench_cmd = cmd;
  o.latency_cmd = add_bench_latency_command(*cmd, o.latency);
  o.throughput_cmd = add_bench_throughput_command(*cmd, o.throughput);
  return cmd;
}

std::string format_report(const BenchConfig& c, const BenchSummary& s) {
  std::string out = centered(" Serving Benchmark Result ", '=');
  out += line("Successful requests:", fmt::format("{}", s.completed));
  if (s.failed > 0) out += line("Failed requests:", fmt::format("{}", s.failed));
  if (c.max_concurrency > 0) {
    out += line("Maximum request concurrency:", fmt::format("{}", c.max_concurrency));
  }
  if (std::isfinite(c.request_rate)) {
    out += line("Request rate configured (RPS):", fmt::format("{:.2f}", c.request_rate));
  }
  out += line("Benchmark duration (s):", fmt::format("{:.2f}", s.duration));
  out += line("Total input tokens:", fmt::format("{}", s.total_input_tokens));
  out += line("Total generated tokens:", fmt::format("{}", s.total_output_tokens));
  out += line("Request throughput (req/s):", fmt::format("{:.2f}", s.request_throughput));
  out += line("Output token throughput (tok/s):", fmt::format("{:.2f}", s.output_throughput));
  out += line("Total Token throughput (tok/s):", fmt::format("{:.2f}", s.total_token_throughput));
  for (const MetricName& m : kMetrics) {
    if (std::find(c.percentile_metrics.begin(), c.percentile_metrics.end(), m.key) ==
        c.percentile_metrics.end()) {
      continue;
    }
    const loadgen::MetricStats& stats = s.metrics.at(m.key);
    out += centered(m.header, '-');
    out += line(fmt::format("Mean {} (ms):", m.label), fmt::format("{:.2f}", stats.mean));
    out += line(fmt::format("Median {} (ms):", m.label), fmt::format("{:.2f}", stats.median));
    for (const auto& [p, value] : stats.percentiles) {
      out += line(fmt::format("P{} {} (ms):", percentile_name(p), m.label),
                  fmt::format("{:.2f}", value));
    }
  }
  out += std::string(50, '=') + "\n";
  if (s.failed > 0) out += "First error: " + s.first_error + "\n";
  return out;
}

nlohmann::json result_json(const BenchConfig& c, const std::string& model,
                           const std::vector<RequestRecord>& records, const BenchSummary& s) {
  nlohmann::json j = {
      {"date", date_stamp()},
      {"backend", "openai"},
      {"endpoint", c.endpoint},
      {"model_id", model},
      {"dataset_name", c.dataset_path.empty() ? c.dataset_name : c.dataset_path},
      {"num_prompts", records.size()},
      {"request_rate",
       std::isfinite(c.request_rate) ? nlohmann::json(c.request_rate) : nlohmann::json("inf")},
      {"burstiness", c.burstiness},
      {"max_concurrency",
       c.max_concurrency > 0 ? nlohmann::json(c.max_concurrency) : nlohmann::json()},
      {"seed", c.seed},
      {"duration", s.duration},
      {"completed", s.completed},
      {"failed", s.failed},
      {"total_input_tokens", s.total_input_tokens},
      {"total_output_tokens", s.total_output_tokens},
      {"request_throughput", s.request_throughput},
      {"output_throughput", s.output_throughput},
      {"total_token_throughput", s.total_token_throughput},
  };
  for (const auto& [key, stats] : s.metrics) {
    j[fmt::format("mean_{}_ms", key)] = stats.mean;
    j[fmt::format("median_{}_ms", key)] = stats.median;
    j[fmt::format("std_{}_ms", key)] = stats.stddev;
    for (const auto& [p, value] : stats.percentiles) {
      j[fmt::format("p{}_{}_ms", percentile_name(p), key)] = value;
    }
  }
  // Per request, in prompt order; times in seconds as vLLM saves them.
  for (const char* key : {"input_lens", "output_lens", "ttfts", "tpots", "e2els", "start_times",
                          "itls", "generated_texts", "errors", "success"}) {
    j[key] = nlohmann::json::array();
  }
  for (const RequestRecord& r : records) {
    j["input_lens"].push_back(r.prompt_len);
    j["output_lens"].push_back(r.success ? r.output_tokens : 0);
    j["ttfts"].push_back(r.ttft);
    j["tpots"].push_back(loadgen::tpot(r));
    j["e2els"].push_back(r.latency);
    j["start_times"].push_back(r.start);
    j["itls"].push_back(r.itl);
    j["generated_texts"].push_back(r.generated_text);
    j["errors"].push_back(r.error);
    j["success"].push_back(r.success);
  }
  return j;
}

int run_bench(BenchOptions o) {
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "moon bench: %s\n", e.message.c_str());
    return 1;
  };
  for (CLI::App* offline : {o.latency_cmd, o.throughput_cmd}) {
    if (offline == nullptr || !offline->parsed()) continue;
    // The serving benchmark's flags would be silently ignored: refuse them.
    for (const CLI::Option* opt : o.bench_cmd->get_options()) {
      if (opt->count() > 0) {
        return fail(make_error("{} is a flag of the serving benchmark, not of `moon bench {}`",
                               opt->get_name(), offline->get_name()));
      }
    }
    return offline == o.latency_cmd ? run_bench_latency(o.latency)
                                    : run_bench_throughput(o.throughput);
  }
  if (auto st = parse_lists(o); !st.ok()) return fail(st.error());
  BenchConfig& c = o.config;
  if (!(c.request_rate > 0.0)) return fail(make_error("--request-rate must be positive or inf"));
  auto url = loadgen::parse_base_url(c.base_url);
  if (!url.ok()) return fail(url.error());
  if (!o.host.empty()) url->host = o.host;
  if (o.port > 0) url->port = std::to_string(o.port);
  c.base_url = fmt::format("http://{}:{}{}", url->host, url->port, url->path_prefix);
  if (c.model.empty()) {
    auto model = first_model(*url, c.api_key);
    if (!model.ok()) return fail(model.error());
    c.model = *model;
  }
  auto prompts = loadgen::make_dataset(c);
  if (!prompts.ok()) return fail(prompts.error());

  fmt::print(stderr, "Benchmarking {}{} with model {}: {} prompts, request rate {}{}\n", c.base_url,
             c.endpoint, c.model, prompts->size(),
             std::isfinite(c.request_rate) ? fmt::format("{}", c.request_rate) : "inf",
             c.max_concurrency > 0 ? fmt::format(", max concurrency {}", c.max_concurrency) : "");
  Progress progress(!o.no_progress);
  auto run = loadgen::run_benchmark(
      c, c.model, *prompts, [&](int64_t done, int64_t total) { progress.update(done, total); });
  if (!run.ok()) return fail(run.error());
  const BenchSummary summary =
      loadgen::summarize(run->records, run->duration, c.metric_percentiles);
  std::fputs(format_report(c, summary).c_str(), stdout);
  std::fflush(stdout);
  if (o.save_result) {
    const std::string path =
        o.result_filename.empty() ? default_filename(c, c.model) : o.result_filename;
    std::ofstream out(path);
    out << result_json(c, c.model, run->records, summary).dump(2) << "\n";
    if (!out) return fail(make_error("cannot write --result-filename '{}'", path));
    std::fprintf(stderr, "Results saved to %s\n", path.c_str());
  }
  return summary.completed > 0 ? 0 : 1;
}

}  // namespace moon
