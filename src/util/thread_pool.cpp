#include "util/thread_pool.h"

#include <algorithm>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace moon {
namespace {

// How many pause instructions an idle thread polls before sleeping: tens of microseconds,
// longer than the gap between two kernels of one forward pass, short enough not to burn a
// core between tokens.
constexpr int kSpinIterations = 1 << 14;

// The pool whose job the current thread is running, to run nested calls inline.
thread_local const ThreadPool* tls_running_pool = nullptr;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = default_num_threads();
  workers_.reserve(static_cast<size_t>(num_threads - 1));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  work_ready_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int ThreadPool::default_num_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

void ThreadPool::parallel_for(int64_t n, RangeFn fn, int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  const int64_t chunks = std::min<int64_t>(num_threads(), (n + min_chunk - 1) / min_chunk);
  if (chunks <= 1 || tls_running_pool == this) {
    fn(0, n);
    return;
  }

  job_fn_ = &fn;
  job_n_ = n;
  job_chunks_ = chunks;
  next_chunk_.store(0, std::memory_order_relaxed);
  busy_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1);  // seq_cst: publishes the job, pairs with sleeping_workers_
  if (sleeping_workers_.load() > 0) {
    // Taking the lock orders us after any worker between its last check and its wait.
    { std::lock_guard<std::mutex> lock(mutex_); }
    work_ready_.notify_all();
  }

  tls_running_pool = this;
  run_chunks();
  tls_running_pool = nullptr;
  wait_for_workers();
  job_fn_ = nullptr;
}

void ThreadPool::wait_for_workers() {
  // The workers' chunks take about as long as ours, so spin first.
  for (int i = 0; i < kSpinIterations; ++i) {
    if (busy_workers_.load(std::memory_order_acquire) == 0) return;
    cpu_relax();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  driver_sleeping_.store(true);
  work_done_.wait(lock, [this] { return busy_workers_.load() == 0; });
  driver_sleeping_.store(false);
}

void ThreadPool::run_chunks() {
  // Chunks are claimed dynamically, so a worker that wakes late costs little: whoever is
  // free takes its range. The ranges themselves are fixed by (n, chunks).
  for (;;) {
    const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= job_chunks_) return;
    const int64_t begin = job_n_ * c / job_chunks_;
    const int64_t end = job_n_ * (c + 1) / job_chunks_;
    (*job_fn_)(begin, end);
  }
}

void ThreadPool::worker_loop() {
  tls_running_pool = this;
  uint64_t seen = 0;
  for (;;) {
    bool woke = false;
    for (int i = 0; i < kSpinIterations; ++i) {
      if (generation_.load(std::memory_order_acquire) != seen) {
        woke = true;
        break;
      }
      cpu_relax();
    }
    if (!woke) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_workers_.fetch_add(1);  // seq_cst, before the final check of generation_
      work_ready_.wait(lock, [&] { return generation_.load() != seen; });
      sleeping_workers_.fetch_sub(1);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    run_chunks();
    if (busy_workers_.fetch_sub(1) == 1 && driver_sleeping_.load()) {
      { std::lock_guard<std::mutex> lock(mutex_); }
      work_done_.notify_one();
    }
  }
}

}  // namespace moon
