// Prometheus metrics at GET /metrics, with vLLM's names so that existing dashboards work:
// request counts and KV usage read from the engine's snapshot, token counters and latency
// histograms recorded by the request handlers. Only the I/O thread touches a Metrics, so it
// has no locks.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/engine_client.h"

namespace moon::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends the _bucket/_sum/_count lines of metric `name` (with `labels`, e.g.
  // `model_name="x"`).
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last one is +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  explicit Metrics(std::string model_name);

  void add_prompt_tokens(int64_t n) { prompt_tokens_ += n; }
  int64_t prompt_tokens() const { return prompt_tokens_; }
  void add_generation_tokens(int64_t n) { generation_tokens_ += n; }
  // Once per request (whatever its n), with the reason its last sequence finished for.
  void request_finished(const std::string& finish_reason) { ++finished_[finish_reason]; }
  void request_rejected() { ++rejected_; }
  Histogram& time_to_first_token() { return ttft_; }
  Histogram& time_per_output_token() { return tpot_; }  // each interval between tokens
  // Per request: prompt and generated tokens (all sequences), and the time from the engine's
  // first schedule to the first token (prefill) and from there to the last (decode).
  Histogram& request_prompt_tokens() { return prompt_tokens_hist_; }
  Histogram& request_generation_tokens() { return generation_tokens_hist_; }
  Histogram& request_prefill_time() { return prefill_; }
  Histogram& request_decode_time() { return decode_; }
  Histogram& e2e_latency() { return e2e_; }
  Histogram& queue_time() { return queue_; }
  // Records the snapshot's last step sampling time once per new step seen.
  void observe_snapshot(const EngineClient::Snapshot& snap);

  std::string render(const EngineClient::Snapshot& snap);

 private:
  std::string labels_;
  int64_t prompt_tokens_ = 0;
  int64_t generation_tokens_ = 0;
  int64_t rejected_ = 0;
  std::map<std::string, int64_t> finished_;
  Histogram ttft_;
  Histogram tpot_;
  Histogram e2e_;
  Histogram queue_;
  Histogram prompt_tokens_hist_;
  Histogram generation_tokens_hist_;
  Histogram prefill_;
  Histogram decode_;
  Histogram sampling_;
  int64_t last_step_seen_ = -1;
};

}  // namespace moon::server
