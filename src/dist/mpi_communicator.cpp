#include "dist/mpi_communicator.h"

#ifdef MOON_HAVE_MPI
#include <mpi.h>

#include <chrono>
#include <string>
#include <thread>

#include "util/logging.h"
#endif

namespace moon {

#ifndef MOON_HAVE_MPI

bool mpi_available() {
  return false;
}

Result<std::unique_ptr<Communicator>> create_mpi_communicator(double) {
  return make_error(
      "this moon was built without MPI, so it cannot run tensor parallel; install "
      "libopenmpi-dev (scripts/install-deps.sh does) and rebuild");
}

#else

bool mpi_available() {
  return true;
}

namespace {

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int rank, int size, double timeout_s)
      : rank_(rank), size_(size), timeout_(std::chrono::duration<double>(timeout_s)) {}

  ~MpiCommunicator() override {
    if (!aborted_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status all_gather(const float* in, size_t count, float* out) override {
    MPI_Request request;
    MOON_TRY(check(MPI_Iallgather(in, static_cast<int>(count), MPI_FLOAT, out,
                                  static_cast<int>(count), MPI_FLOAT, MPI_COMM_WORLD, &request),
                   "all-gather"));
    return wait(&request, "all-gather");
  }

  Status broadcast(std::vector<uint8_t>* bytes) override {
    uint64_t length = bytes->size();
    MPI_Request request;
    MOON_TRY(check(MPI_Ibcast(&length, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD, &request), "broadcast"));
    MOON_TRY(wait(&request, "broadcast"));
    bytes->resize(length);
    if (length == 0) return Status::success();
    MOON_TRY(check(
        MPI_Ibcast(bytes->data(), static_cast<int>(length), MPI_BYTE, 0, MPI_COMM_WORLD, &request),
        "broadcast"));
    return wait(&request, "broadcast");
  }

  Status gather_to_root(const float* in, std::span<const int64_t> counts, float* out) override {
    std::vector<int> sizes(counts.begin(), counts.end()), offsets(counts.size(), 0);
    for (size_t r = 1; r < counts.size(); ++r) offsets[r] = offsets[r - 1] + sizes[r - 1];
    MPI_Request request;
    MOON_TRY(check(MPI_Igatherv(in, sizes[rank_], MPI_FLOAT, out, sizes.data(), offsets.data(),
                                MPI_FLOAT, 0, MPI_COMM_WORLD, &request),
                   "gather"));
    return wait(&request, "gather");
  }

  void abort(int code) override {
    aborted_ = true;
    MPI_Abort(MPI_COMM_WORLD, code);
  }

 private:
  Status check(int code, const char* what) const {
    if (code == MPI_SUCCESS) return Status::success();
    return make_error("tensor parallel: rank {}'s {} failed: {}", rank_, what,
                      mpi_error_text(code));
  }

  Status wait(MPI_Request* request, const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (int polls = 0;; ++polls) {
      int done = 0;
      MOON_TRY(check(MPI_Test(request, &done, MPI_STATUS_IGNORE), what));
      if (done) return Status::success();
      // Within a step the others are a few microseconds behind: yield. Past that, nap, so
      // that a waiting rank does not take a core from the rank still computing.
      if (polls < 256) {
        std::this_thread::yield();
        continue;
      }
      if (std::chrono::steady_clock::now() - start > timeout_) {
        return make_error(
            "tensor parallel: rank {}'s {} got no answer from the other ranks within {:.0f} s "
            "(a rank died or hangs)",
            rank_, what, timeout_.count());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 4096 ? 20 : 200));
    }
  }

  int rank_;
  int size_;
  std::chrono::duration<double> timeout_;
  bool aborted_ = false;
};

}  // namespace

Result<std::unique_ptr<Communicator>> create_mpi_communicator(double timeout_s) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return make_error("MPI is already initialised in this process");
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
    return make_error("MPI_Init_thread failed");
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return make_error("this MPI gives thread level {} but moon needs MPI_THREAD_SERIALIZED",
                      provided);
  }
  // Errors come back as codes (then messages) instead of killing the job from inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return std::unique_ptr<Communicator>(new MpiCommunicator(rank, size, timeout_s));
}

#endif

}  // namespace moon
