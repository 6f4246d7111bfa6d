// Inter-arrival times: mean 1/rate, gamma-shaped by burstiness, reproducible by seed.
#include "loadgen/arrival_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace moon::loadgen {
namespace {

struct Moments {
  double mean = 0.0;
  double variance = 0.0;
};

Moments sample_moments(double rate, double burstiness, uint64_t seed, int n) {
  ArrivalSchedule schedule(rate, burstiness, seed);
  std::vector<double> v(static_cast<size_t>(n));
  double sum = 0.0;
  for (double& x : v) {
    x = schedule.next_interval();
    EXPECT_GE(x, 0.0);
    sum += x;
  }
  Moments m;
  m.mean = sum / n;
  for (double x : v) m.variance += (x - m.mean) * (x - m.mean);
  m.variance /= n;
  return m;
}

TEST(ArrivalSchedule, PoissonMeanAndVariance) {
  // Exponential intervals: mean 1/rate, variance mean^2.
  const Moments m = sample_moments(20.0, 1.0, 42, 200000);
  EXPECT_NEAR(m.mean, 1.0 / 20.0, 0.01 / 20.0);
  EXPECT_NEAR(m.variance / (m.mean * m.mean), 1.0, 0.03);
}

TEST(ArrivalSchedule, BurstinessShapesTheVariance) {
  // Gamma with shape k keeps the mean at 1/rate and has variance mean^2 / k.
  for (const double k : {0.25, 4.0}) {
    const Moments m = sample_moments(5.0, k, 9, 200000);
    EXPECT_NEAR(m.mean, 0.2, 0.2 * 0.02) << "burstiness " << k;
    EXPECT_NEAR(m.variance / (m.mean * m.mean), 1.0 / k, 0.05 / k) << "burstiness " << k;
  }
}

TEST(ArrivalSchedule, InfiniteRateSendsAllAtOnce) {
  ArrivalSchedule schedule(std::numeric_limits<double>::infinity(), 1.0, 1);
  for (double t : schedule.offsets(100)) EXPECT_EQ(t, 0.0);
}

TEST(ArrivalSchedule, OffsetsAreRunningSumsAndSeeded) {
  ArrivalSchedule a(3.0, 1.0, 5);
  ArrivalSchedule b(3.0, 1.0, 5);
  ArrivalSchedule c(3.0, 1.0, 6);
  const std::vector<double> offsets = a.offsets(50);
  ASSERT_EQ(offsets.size(), 50u);
  EXPECT_EQ(offsets[0], 0.0);  // the first request goes at once
  double t = 0.0;
  for (size_t i = 1; i < offsets.size(); ++i) {
    t += b.next_interval();
    EXPECT_DOUBLE_EQ(offsets[i], t);
  }
  EXPECT_NE(c.offsets(50), offsets);
}

}  // namespace
}  // namespace moon::loadgen
