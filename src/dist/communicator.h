// What tensor parallelism needs from the ranks it runs on: rank 0 sends each step's plan,
// every rank shares the partial sums of its slice of a layer, and rank 0 collects the
// vocabulary slices of the logits. One implementation uses MPI (mpi_communicator.h); the
// interface keeps the forward and the engine free of MPI's headers, and lets tests run
// ranks as threads.
//
// Every call is collective: each rank makes the same calls in the same order. A call that
// cannot finish in time (a rank died or hangs) returns an error instead of waiting for
// ever; after one, the ranks are out of step and the only safe move is to stop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "util/result.h"

namespace moon {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // out[r * count ..] = rank r's `in`, for every r, on every rank.
  virtual Status all_gather(const float* in, size_t count, float* out) = 0;
  // Rank 0's `bytes` on every rank (the others' are replaced).
  virtual Status broadcast(std::vector<uint8_t>* bytes) = 0;
  // Rank 0's `out` gets counts[r] floats from each rank r, concatenated in rank order; `in`
  // holds counts[rank()] floats. `out` is unused on the other ranks.
  virtual Status gather_to_root(const float* in, std::span<const int64_t> counts, float* out) = 0;
  // Ends every rank's process now with `code` (after rank 0 has answered what it could).
  virtual void abort(int code) = 0;

  // data = the sum over ranks of every rank's data, added in rank order, so the result is
  // bitwise the same on every rank and from run to run, whatever the transport does.
  Status all_reduce_sum(float* data, size_t count) {
    if (size() == 1) return Status::success();
    gathered_.resize(count * static_cast<size_t>(size()));
    MOON_TRY(all_gather(data, count, gathered_.data()));
    for (size_t i = 0; i < count; ++i) data[i] = gathered_[i];
    for (int r = 1; r < size(); ++r) {
      const float* part = gathered_.data() + static_cast<size_t>(r) * count;
      for (size_t i = 0; i < count; ++i) data[i] += part[i];
    }
    return Status::success();
  }

 private:
  std::vector<float> gathered_;
};

}  // namespace moon
