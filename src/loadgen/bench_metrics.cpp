#include "loadgen/bench_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moon::loadgen {

double percentile(const std::vector<double>& sorted, double p) {
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

MetricStats metric_stats(std::vector<double> values, const std::vector<double>& percentiles) {
  MetricStats s;
  if (values.empty()) {
    for (const double p : percentiles) s.percentiles.emplace_back(p, 0.0);
    return s;
  }
  std::sort(values.begin(), values.end());
  const auto n = static_cast<double>(values.size());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  double sq = 0.0;
  for (const double v : values) sq += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(sq / n);
  s.median = percentile(values, 50.0);
  for (const double p : percentiles) s.percentiles.emplace_back(p, percentile(values, p));
  return s;
}

double tpot(const RequestRecord& r) {
  if (r.output_tokens <= 1) return 0.0;
  return (r.latency - r.ttft) / static_cast<double>(r.output_tokens - 1);
}

BenchSummary summarize(const std::vector<RequestRecord>& records, double duration,
                       const std::vector<double>& percentiles) {
  BenchSummary s;
  s.duration = duration;
  std::vector<double> ttfts, tpots, itls, e2els;
  for (const RequestRecord& r : records) {
    if (!r.success) {
      if (s.failed++ == 0) s.first_error = r.error;
      continue;
    }
    ++s.completed;
    s.total_input_tokens += r.prompt_len;
    s.total_output_tokens += r.output_tokens;
    ttfts.push_back(r.ttft * 1000.0);
    if (r.output_tokens > 1) tpots.push_back(tpot(r) * 1000.0);
    for (const double gap : r.itl) itls.push_back(gap * 1000.0);
    e2els.push_back(r.latency * 1000.0);
  }
  if (duration > 0.0) {
    s.request_throughput = static_cast<double>(s.completed) / duration;
    s.output_throughput = static_cast<double>(s.total_output_tokens) / duration;
    s.total_token_throughput =
        static_cast<double>(s.total_input_tokens + s.total_output_tokens) / duration;
  }
  s.metrics["ttft"] = metric_stats(std::move(ttfts), percentiles);
  s.metrics["tpot"] = metric_stats(std::move(tpots), percentiles);
  s.metrics["itl"] = metric_stats(std::move(itls), percentiles);
  s.metrics["e2el"] = metric_stats(std::move(e2els), percentiles);
  return s;
}

}  // namespace moon::loadgen
