// A Communicator whose ranks are threads of one process, for testing tensor parallelism
// without mpirun (and under TSan): each collective is a pair of barriers around a shared
// buffer. No timeouts: a test that loses a rank fails by its own deadline.
#pragma once

#include <barrier>
#include <cstring>
#include <memory>
#include <vector>

#include "dist/communicator.h"

namespace moon::test {

class ThreadRanks {
 public:
  explicit ThreadRanks(int size) : size_(size), barrier_(size), parts_(size) {}
  int size() const { return size_; }

  class Rank final : public Communicator {
   public:
    Rank(ThreadRanks* shared, int rank) : shared_(shared), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return shared_->size_; }

    Status all_gather(const float* in, size_t count, float* out) override {
      publish(in, count * sizeof(float));
      for (int r = 0; r < size(); ++r) {
        std::memcpy(out + r * count, shared_->parts_[r].data(), count * sizeof(float));
      }
      shared_->barrier_.arrive_and_wait();
      return Status::success();
    }

    Status broadcast(std::vector<uint8_t>* bytes) override {
      publish(bytes->data(), rank_ == 0 ? bytes->size() : 0);
      if (rank_ != 0) *bytes = shared_->parts_[0];
      shared_->barrier_.arrive_and_wait();
      return Status::success();
    }

    Status gather_to_root(const float* in, std::span<const int64_t> counts, float* out) override {
      publish(in, counts[rank_] * sizeof(float));
      if (rank_ == 0) {
        for (int r = 0; r < size(); ++r) {
          std::memcpy(out, shared_->parts_[r].data(), counts[r] * sizeof(float));
          out += counts[r];
        }
      }
      shared_->barrier_.arrive_and_wait();
      return Status::success();
    }

    void abort(int) override { std::abort(); }

   private:
    void publish(const void* data, size_t bytes) {
      const auto* p = static_cast<const uint8_t*>(data);
      shared_->parts_[rank_].assign(p, p + bytes);
      shared_->barrier_.arrive_and_wait();
    }

    ThreadRanks* shared_;
    int rank_;
  };

  std::unique_ptr<Rank> rank(int r) { return std::make_unique<Rank>(this, r); }

 private:
  int size_;
  std::barrier<> barrier_;
  std::vector<std::vector<uint8_t>> parts_;
};

}  // namespace moon::test
