// The settings of one `moon bench` run, named after vLLM's `vllm bench serve` flags.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace moon::loadgen {

struct BenchConfig {
  std::string base_url = "http://127.0.0.1:8080";
  std::string endpoint = "/v1/completions";
  std::string model;    // empty: the first of GET /v1/models
  std::string api_key;  // sent as "Authorization: Bearer KEY" when set

  std::string dataset_name = "random";  // only "random" is generated; else --dataset-path
  std::string dataset_path;             // one JSON string prompt per line; overrides dataset_name
  int64_t num_prompts = 1000;
  int64_t random_input_len = 1024;
  int64_t random_output_len = 128;
  double random_range_ratio = 0.0;  // lengths uniform in [len*(1-R), len*(1+R)]
  int64_t vocab_size = 32000;       // random token ids are drawn below this
  uint64_t seed = 0;
  bool ignore_eos = true;

  double request_rate = std::numeric_limits<double>::infinity();  // requests/s; inf: all at once
  double burstiness = 1.0;      // gamma shape of inter-arrival times; 1 = Poisson
  int64_t max_concurrency = 0;  // 0: no limit

  std::vector<std::string> percentile_metrics = {"ttft", "tpot", "itl", "e2el"};
  std::vector<double> metric_percentiles = {99.0};
};

}  // namespace moon::loadgen
