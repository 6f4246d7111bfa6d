// A fixed set of worker threads for data-parallel kernels.
//
// parallel_for is called many times per token (every matmul, every norm), so waking the
// workers must cost microseconds, not a thread creation: workers spin briefly on a
// generation counter after each job and only then sleep on a condition variable, so
// back-to-back calls find them awake and pay no system call.
//
// Work splits into contiguous chunks whose boundaries depend only on (n, chunk count),
// never on timing; which thread runs which chunk may vary, so callers must make each
// index's result independent of the thread that computes it (the kernels do).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace moon {

// A non-owning reference to a callable: like std::function without the allocation, for
// callbacks that do not outlive the call they are passed to.
template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> &&
           std::is_invocable_r_v<R, F&, Args...>)
      FunctionRef(F&& f)  // NOLINT: implicit, so lambdas pass straight in
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

class ThreadPool {
 public:
  using RangeFn = FunctionRef<void(int64_t begin, int64_t end)>;

  // `num_threads` counts the calling thread, which works too: a pool of 1 starts no
  // thread and runs everything inline. 0 means default_num_threads().
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over disjoint contiguous ranges covering [0, n) exactly once and
  // returns when all are done. At most num_threads() ranges, each at least `min_chunk` long
  // (except when n itself is shorter); one range runs inline on the caller without waking
  // anyone. Ranges go to whichever thread claims them first (the caller included), so a
  // worker that is slow to wake does not hold the call up. fn must not throw. Call from one
  // thread at a time; a call made from inside fn runs inline rather than deadlock.
  void parallel_for(int64_t n, RangeFn fn, int64_t min_chunk = 1);

  // The physical cores this process may run on (its affinity mask, SMT siblings counted
  // once), at least 1. Computed on each call: cache it if it matters.
  static int default_num_threads();

 private:
  void worker_loop();
  // Claims and runs chunks of generation `generation` until none are left.
  void run_chunks(uint32_t generation);
  void wait_for_chunks(int64_t chunks);

  std::vector<std::thread> workers_;

  // The current job, written by the driver before it publishes a generation, and read by a
  // worker only while it holds a claimed chunk (the driver waits for every chunk to finish
  // before it writes the next job, so a worker that wakes late can never see it half-written).
  const RangeFn* job_fn_ = nullptr;
  int64_t job_n_ = 0;
  std::atomic<bool> stop_{false};  // read by workers that may wake after the last job

  // Claims: generation (32 bits) | chunk count (16) | next chunk (16), updated by CAS, so a
  // claim for a finished generation fails instead of taking a chunk of the next one.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> chunks_done_{0};
  std::atomic<uint32_t> generation_{0};

  // Sleeping, after the spin. Each side announces itself in a counter before checking its
  // condition one last time, and the other side checks that counter after changing the
  // condition (both sequentially consistent), so one of them always sees the other and no
  // wake-up is lost; notifies happen only when someone sleeps.
  std::mutex mutex_;
  std::condition_variable work_ready_;  // workers wait for a new generation
  std::condition_variable work_done_;   // the driver waits for chunks_done_
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> driver_sleeping_{false};
};

}  // namespace moon
