#include "server/metrics.h"

#include <fmt/format.h>

namespace moon::server {
namespace {

std::vector<double> latency_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,
          0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
}

// vLLM's buckets for token counts: 1, 2, 5, 10, 20, 50, ... up to 10^6.
std::vector<double> token_buckets() {
  std::vector<double> b;
  for (double p = 1; p <= 1e6; p *= 10) {
    for (double m : {1.0, 2.0, 5.0}) b.push_back(m * p);
  }
  return b;
}

void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, const std::string& name, const std::string& labels, double v) {
  out += fmt::format("{}{{{}}} {}\n", name, labels, v);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, count_);
  out +=
      fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, sum_, name, labels, count_);
}

Metrics::Metrics(std::string model_name)
    : labels_(fmt::format("model_name=\"{}\"", model_name)),
      ttft_(latency_buckets()),
      tpot_(latency_buckets()),
      e2e_(latency_buckets()),
      queue_(latency_buckets()),
      prompt_tokens_hist_(token_buckets()),
      generation_tokens_hist_(token_buckets()),
      prefill_(latency_buckets()),
      decode_(latency_buckets()),
      sampling_({0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1}) {}

void Metrics::observe_snapshot(const EngineClient::Snapshot& snap) {
  if (snap.num_steps == last_step_seen_) return;
  last_step_seen_ = snap.num_steps;
  if (snap.num_steps > 0) sampling_.observe(snap.last_step_sample_ms / 1000.0);
}

std::string Metrics::render(const EngineClient::Snapshot& snap) {
  observe_snapshot(snap);
  std::string out;
  const std::string& l = labels_;
  auto gauge = [&](const std::string& name, const char* help, double v) {
    header(out, name, "gauge", help);
    sample(out, name, l, v);
  };
  auto counter = [&](const std::string& name, const char* help, double v) {
    header(out, name, "counter", help);
    sample(out, name, l, v);
  };
  gauge("vllm:num_requests_running", "Sequences in the running batch.", snap.num_running);
  gauge("vllm:num_requests_waiting", "Sequences waiting to be scheduled.", snap.num_waiting);
  // vLLM's historical name for KV usage, kept for dashboards, and its current one.
  gauge("vllm:gpu_cache_usage_perc", "KV cache usage (1 = full).", snap.kv.usage);
  gauge("vllm:kv_cache_usage_perc", "KV cache usage (1 = full).", snap.kv.usage);
  gauge("moon:kv_cache_blocks_used", "KV blocks referenced by live sequences.",
        snap.kv.num_blocks_used);
  gauge("moon:kv_cache_blocks_total", "KV blocks in the cache.", snap.kv.num_blocks_total);
  counter("vllm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
          snap.kv.num_prefix_query_tokens);
  counter("vllm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.",
          snap.kv.num_prefix_hit_tokens);
  gauge("vllm:gpu_prefix_cache_hit_rate", "Prefix cache hit rate (tokens).",
        snap.kv.prefix_hit_rate);
  counter("vllm:num_preemptions_total", "Sequences preempted for lack of KV blocks.",
          snap.num_preemptions);
  counter("vllm:prompt_tokens_total", "Prompt tokens processed.", prompt_tokens_);
  counter("vllm:generation_tokens_total", "Tokens generated.", generation_tokens_);
  counter("moon:engine_steps_total", "Engine steps run.", snap.num_steps);
  counter("moon:requests_rejected_total", "Requests refused because the queue was full.",
          rejected_);
  header(out, "vllm:request_success_total", "counter", "Requests finished, by reason.");
  for (const auto& [reason, n] : finished_) {
    sample(out, "vllm:request_success_total", l + ",finished_reason=\"" + reason + "\"", n);
  }
  auto histogram = [&](const std::string& name, const char* help, const Histogram& h) {
    header(out, name, "histogram", help);
    h.render(out, name, l);
  };
  histogram("vllm:time_to_first_token_seconds", "Time to first token.", ttft_);
  histogram("vllm:time_per_output_token_seconds", "Time per output token after the first.", tpot_);
  histogram("vllm:e2e_request_latency_seconds", "Request latency, arrival to last token.", e2e_);
  histogram("vllm:request_queue_time_seconds", "Arrival until the engine accepted the request.",
            queue_);
  histogram("vllm:request_prompt_tokens", "Prompt tokens of each finished request.",
            prompt_tokens_hist_);
  histogram("vllm:request_generation_tokens", "Generated tokens of each finished request.",
            generation_tokens_hist_);
  histogram("vllm:request_prefill_time_seconds",
            "Time from the engine's first schedule of a request to its first token.", prefill_);
  histogram("vllm:request_decode_time_seconds", "Time from a request's first token to its last.",
            decode_);
  {
    // Counted by the engine thread over every step (the I/O thread may miss some).
    const std::string name = "vllm:iteration_tokens_total";
    header(out, name, "histogram", "Tokens computed per engine step.");
    int64_t cumulative = 0, count = 0;
    for (int64_t n : snap.step_token_buckets) count += n;
    for (size_t i = 0; i < EngineClient::kStepTokenBounds.size(); ++i) {
      cumulative += snap.step_token_buckets[i];
      out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, l,
                         EngineClient::kStepTokenBounds[i], cumulative);
    }
    out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, l, count);
    out += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, l, snap.step_tokens_sum, name,
                       l, count);
  }
  histogram("moon:sampling_time_seconds", "Sampling time of one engine step (sampled).", sampling_);
  return out;
}

}  // namespace moon::server
