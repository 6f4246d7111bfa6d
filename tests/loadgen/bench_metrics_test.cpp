// Percentiles, means and the summary, checked against a plain reference and hand-computed cases.
#include "loadgen/bench_metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace moon::loadgen {
namespace {

// numpy.percentile(values, p) with its default linear method, written out plainly.
double reference_percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const double pos = (values.size() - 1) * p / 100.0;
  const size_t below = static_cast<size_t>(pos);
  if (below + 1 >= values.size()) return values.back();
  const double frac = pos - below;
  return values[below] * (1.0 - frac) + values[below + 1] * frac;
}

TEST(Percentile, HandComputed) {
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 99), 3.97);  // rank 2.97
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 100), 4.0);
  EXPECT_DOUBLE_EQ(percentile({10, 20, 30, 40, 50}, 90), 46.0);  // rank 3.6
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7.0);
  EXPECT_DOUBLE_EQ(percentile({-5, 5}, 25), -2.5);
}

TEST(Percentile, MatchesReferenceOnRandomData) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> value(0.0, 1.5);
  std::uniform_int_distribution<int> size(1, 300);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> v(static_cast<size_t>(size(rng)));
    for (double& x : v) x = value(rng);
    const std::vector<double> ps = {0, 1, 25, 50, 75, 90, 99, 99.9, 100};
    const MetricStats s = metric_stats(v, ps);
    double sum = 0.0;
    for (double x : v) sum += x;
    const double mean = sum / v.size();
    double sq = 0.0;
    for (double x : v) sq += (x - mean) * (x - mean);
    EXPECT_NEAR(s.mean, mean, 1e-9 * std::abs(mean));
    EXPECT_NEAR(s.stddev, std::sqrt(sq / v.size()), 1e-9 * (1 + mean));
    EXPECT_DOUBLE_EQ(s.median, reference_percentile(v, 50));
    ASSERT_EQ(s.percentiles.size(), ps.size());
    for (size_t i = 0; i < ps.size(); ++i) {
      EXPECT_EQ(s.percentiles[i].first, ps[i]);
      EXPECT_NEAR(s.percentiles[i].second, reference_percentile(v, ps[i]),
                  1e-12 * (1 + s.percentiles[i].second))
          << "p" << ps[i] << " of " << v.size() << " values";
    }
  }
}

TEST(MetricStats, EmptyIsZero) {
  const MetricStats s = metric_stats({}, {50, 99});
  EXPECT_EQ(s.mean, 0.0);
  EXPECT_EQ(s.median, 0.0);
  ASSERT_EQ(s.percentiles.size(), 2u);
  EXPECT_EQ(s.percentiles[1].second, 0.0);
}

RequestRecord record(int64_t prompt, int64_t out, double ttft, double latency,
                     std::vector<double> itl) {
  RequestRecord r;
  r.success = true;
  r.prompt_len = prompt;
  r.output_tokens = out;
  r.ttft = ttft;
  r.latency = latency;
  r.itl = std::move(itl);
  return r;
}

TEST(Summarize, HandComputed) {
  std::vector<RequestRecord> records = {
      record(10, 5, 0.1, 0.5, {0.1, 0.1, 0.1, 0.1}),  // TPOT (0.5-0.1)/4 = 0.1
      record(20, 3, 0.2, 0.6, {0.1, 0.3}),            // TPOT 0.2
      record(30, 1, 0.3, 0.3, {}),                    // one token: no TPOT
  };
  RequestRecord failed;
  failed.error = "HTTP 400: first";
  records.push_back(failed);
  failed.error = "HTTP 500: second";
  records.push_back(failed);

  const BenchSummary s = summarize(records, 2.0, {50, 99});
  EXPECT_EQ(s.completed, 3);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.first_error, "HTTP 400: first");
  EXPECT_EQ(s.total_input_tokens, 60);
  EXPECT_EQ(s.total_output_tokens, 9);
  EXPECT_DOUBLE_EQ(s.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(s.output_throughput, 4.5);
  EXPECT_DOUBLE_EQ(s.total_token_throughput, 34.5);
  EXPECT_NEAR(s.metrics.at("ttft").mean, 200.0, 1e-9);
  EXPECT_NEAR(s.metrics.at("ttft").median, 200.0, 1e-9);
  EXPECT_NEAR(s.metrics.at("tpot").mean, 150.0, 1e-9);  // only the two multi-token requests
  EXPECT_NEAR(s.metrics.at("itl").mean, 800.0 / 6, 1e-9);
  EXPECT_NEAR(s.metrics.at("itl").median, 100.0, 1e-9);
  EXPECT_NEAR(s.metrics.at("e2el").mean, 1400.0 / 3, 1e-9);
  EXPECT_NEAR(s.metrics.at("e2el").percentiles[1].second, 500 + 0.98 * 100, 1e-9);  // rank 1.98
}

TEST(Summarize, Tpot) {
  EXPECT_DOUBLE_EQ(tpot(record(1, 11, 1.0, 3.0, {})), 0.2);
  EXPECT_EQ(tpot(record(1, 1, 1.0, 3.0, {})), 0.0);
  EXPECT_EQ(tpot(record(1, 0, 0.0, 3.0, {})), 0.0);
}

}  // namespace
}  // namespace moon::loadgen
