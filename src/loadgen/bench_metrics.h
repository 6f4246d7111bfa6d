// Per-request records and the summary `moon bench` reports, with the definitions vLLM's
// `vllm bench serve` uses: TTFT = first chunk; ITL = gaps between chunks; E2EL = whole
// request; TPOT = (E2EL - TTFT) / (output tokens - 1) for requests with more than one token;
// throughputs over the benchmark's wall time; percentiles interpolated linearly between order
// statistics (numpy.percentile's default).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace moon::loadgen {

struct RequestRecord {
  bool success = false;
  std::string error;
  int64_t prompt_len = 0;     // tokens (from the server's usage when it sends one)
  int64_t output_tokens = 0;  // from usage when given, else the number of chunks
  double start = 0.0;         // seconds from the benchmark's start to sending
  double ttft = 0.0;          // seconds
  double latency = 0.0;       // seconds (E2EL)
  std::vector<double> itl;    // seconds between consecutive chunks
  std::string generated_text;
};

// The p-th percentile (0..100) of `sorted` (ascending, not empty), as numpy.percentile with
// linear interpolation: rank p/100 * (n-1), interpolated between its neighbours.
double percentile(const std::vector<double>& sorted, double p);

struct MetricStats {
  double mean = 0.0;
  double median = 0.0;
  double stddev = 0.0;                                 // population (numpy.std's default)
  std::vector<std::pair<double, double>> percentiles;  // (p, value)
};
// Stats of `values` (any order); all zero when empty.
MetricStats metric_stats(std::vector<double> values, const std::vector<double>& percentiles);

// TPOT of one request in seconds; 0 when it produced at most one token.
double tpot(const RequestRecord& r);

struct BenchSummary {
  int64_t completed = 0;
  int64_t failed = 0;
  std::string first_error;
  double duration = 0.0;  // seconds
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0.0;             // req/s
  double output_throughput = 0.0;              // tok/s
  double total_token_throughput = 0.0;         // (input + output) tok/s
  std::map<std::string, MetricStats> metrics;  // "ttft", "tpot", "itl", "e2el", in ms
};

// Summarizes the successful records (failed ones only counted and the first error kept).
BenchSummary summarize(const std::vector<RequestRecord>& records, double duration,
                       const std::vector<double>& percentiles);

}  // namespace moon::loadgen
