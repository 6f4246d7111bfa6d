#include "loadgen/arrival_schedule.h"

#include <cmath>

namespace moon::loadgen {

ArrivalSchedule::ArrivalSchedule(double request_rate, double burstiness, uint64_t seed)
    : unlimited_(!std::isfinite(request_rate) || request_rate <= 0.0),
      rng_(seed),
      // mean = shape * scale = 1 / rate
      gamma_(burstiness, unlimited_ ? 1.0 : 1.0 / (request_rate * burstiness)) {}

double ArrivalSchedule::next_interval() {
  return unlimited_ ? 0.0 : gamma_(rng_);
}

std::vector<double> ArrivalSchedule::offsets(int64_t n) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(n, 0)));
  double t = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(t);
    t += next_interval();
  }
  return out;
}

}  // namespace moon::loadgen
