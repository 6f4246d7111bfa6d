// Drives one benchmark: sends every prompt as a streaming completion request at the times the
// arrival schedule gives, holding at most --max-concurrency in flight (later arrivals wait for
// a free slot), all on one io_context thread, and collects one RequestRecord per prompt.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loadgen/bench_config.h"
#include "loadgen/bench_metrics.h"
#include "loadgen/dataset.h"
#include "loadgen/http_stream_client.h"
#include "util/result.h"

namespace moon::loadgen {

// The JSON body of one streaming /v1/completions request for `prompt`.
nlohmann::json completion_request(const std::string& model, const BenchPrompt& prompt,
                                  bool ignore_eos);

// A request's record from what its stream saw.
RequestRecord make_record(const BenchPrompt& prompt, StreamResult result, double start);

struct BenchRun {
  std::vector<RequestRecord> records;  // in prompt order
  double duration = 0.0;               // seconds from the first send to the last completion
};

// Called on the I/O thread after each request ends.
using ProgressFn = std::function<void(int64_t completed, int64_t total)>;

Result<BenchRun> run_benchmark(const BenchConfig& config, const std::string& model,
                               const std::vector<BenchPrompt>& prompts,
                               const ProgressFn& progress = {});

}  // namespace moon::loadgen
