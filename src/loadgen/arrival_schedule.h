// When each request is sent: with --request-rate inf all at once; otherwise inter-arrival
// times drawn from a gamma distribution with shape --burstiness and mean 1/rate (shape 1 is
// the exponential distribution, i.e. Poisson arrivals; below 1 burstier, above 1 steadier).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace moon::loadgen {

class ArrivalSchedule {
 public:
  ArrivalSchedule(double request_rate, double burstiness, uint64_t seed);

  // Seconds from the previous request to the next one (0 for an infinite rate).
  double next_interval();
  // The send offsets (seconds from the start) of `n` requests: the running sum of intervals.
  std::vector<double> offsets(int64_t n);

 private:
  bool unlimited_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gamma_;
};

}  // namespace moon::loadgen
