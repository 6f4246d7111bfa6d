#include "util/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace moon {
namespace {

// How many pause instructions an idle thread polls before sleeping: around 100 us, longer
// than the gap between two kernels of one forward pass, short enough not to burn a core
// between requests (or steal it from other processes).
constexpr int kSpinIterations = 1 << 12;

constexpr int64_t kMaxChunks = 0xFFFF;  // the claim word's 16-bit fields

// The pool whose job the current thread is running, to run nested calls inline.
thread_local const ThreadPool* tls_running_pool = nullptr;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

constexpr uint64_t make_claim(uint32_t generation, int64_t chunks, int64_t next) {
  return (static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(chunks) << 16) |
         static_cast<uint64_t>(next);
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
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    // Physical cores, not SMT siblings: two threads sharing a core's FMA units and load
    // ports gain little on these kernels and make the static split uneven.
    std::set<std::pair<int, int>> cores;  // (package, core)
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      int package = -1, core = -1;
      std::ifstream(dir + "physical_package_id") >> package;
      std::ifstream(dir + "core_id") >> core;
      if (package < 0 || core < 0) return std::max(1, CPU_COUNT(&set));  // no topology: count CPUs
      cores.emplace(package, core);
    }
    return std::max<int>(1, static_cast<int>(cores.size()));
  }
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

void ThreadPool::parallel_for(int64_t n, RangeFn fn, int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  const int64_t chunks =
      std::min({static_cast<int64_t>(num_threads()), (n + min_chunk - 1) / min_chunk, kMaxChunks});
  if (chunks <= 1 || tls_running_pool == this) {
    fn(0, n);
    return;
  }

  // Every chunk of the previous call has finished, so no worker reads these now.
  job_fn_ = &fn;
  job_n_ = n;
  chunks_done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = generation_.load(std::memory_order_relaxed) + 1;
  claim_.store(make_claim(generation, chunks, 0), std::memory_order_release);
  generation_.store(generation);  // seq_cst: pairs with sleeping_workers_ below
  if (sleeping_workers_.load() > 0) {
    // Taking the lock orders this after any worker between its last check and its wait.
    { std::lock_guard<std::mutex> lock(mutex_); }
    work_ready_.notify_all();
  }

  tls_running_pool = this;
  run_chunks(generation);
  tls_running_pool = nullptr;
  wait_for_chunks(chunks);
  job_fn_ = nullptr;
}

void ThreadPool::run_chunks(uint32_t generation) {
  uint64_t claim = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(claim >> 32) != generation) return;  // a later job: not ours
    const int64_t chunks = static_cast<int64_t>((claim >> 16) & 0xFFFF);
    const int64_t c = static_cast<int64_t>(claim & 0xFFFF);
    if (c >= chunks) return;
    if (!claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      continue;  // claim now holds the current value
    }
    // Chunk c is ours; the job cannot change until we report it done.
    (*job_fn_)(job_n_ * c / chunks, job_n_ * (c + 1) / chunks);
    if (chunks_done_.fetch_add(1) + 1 == chunks && driver_sleeping_.load()) {
      { std::lock_guard<std::mutex> lock(mutex_); }
      work_done_.notify_one();
    }
    claim = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::wait_for_chunks(int64_t chunks) {
  // The other chunks take about as long as ours did, so spin first.
  for (int i = 0; i < kSpinIterations; ++i) {
    if (chunks_done_.load(std::memory_order_acquire) == chunks) return;
    cpu_relax();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  driver_sleeping_.store(true);
  work_done_.wait(lock, [&] { return chunks_done_.load() == chunks; });
  driver_sleeping_.store(false);
}

void ThreadPool::worker_loop() {
  tls_running_pool = this;
  uint32_t seen = 0;
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
    run_chunks(seen);
  }
}

}  // namespace moon
