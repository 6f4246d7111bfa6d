#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace moon {
namespace {

using Range = std::pair<int64_t, int64_t>;

// Runs one parallel_for and returns the ranges it produced, checking every index in [0, n)
// was visited exactly once.
std::vector<Range> run_and_check(ThreadPool& pool, int64_t n, int64_t min_chunk) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::mutex mutex;
  std::vector<Range> ranges;
  pool.parallel_for(
      n,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        std::lock_guard<std::mutex> lock(mutex);
        ranges.emplace_back(begin, end);
      },
      min_chunk);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << n;
  }
  std::sort(ranges.begin(), ranges.end());
  return ranges;
}

TEST(ThreadPool, CoversEveryIndexOnceInContiguousChunks) {
  for (int threads : {1, 2, 3, 4, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 100, 1000, 12345}) {
      for (int64_t min_chunk : {1, 7, 1000}) {
        SCOPED_TRACE(::testing::Message()
                     << "threads=" << threads << " n=" << n << " min_chunk=" << min_chunk);
        const std::vector<Range> ranges = run_and_check(pool, n, min_chunk);
        if (n == 0) {
          EXPECT_TRUE(ranges.empty());
          continue;
        }
        ASSERT_FALSE(ranges.empty());
        EXPECT_LE(static_cast<int>(ranges.size()), threads);
        EXPECT_EQ(ranges.front().first, 0);
        EXPECT_EQ(ranges.back().second, n);
        for (size_t i = 0; i < ranges.size(); ++i) {
          EXPECT_LT(ranges[i].first, ranges[i].second);
          if (i > 0) {
            EXPECT_EQ(ranges[i - 1].second, ranges[i].first);
          }
          if (ranges.size() > 1) {
            EXPECT_GE(ranges[i].second - ranges[i].first, std::min(n, min_chunk));
          }
        }
        // The same call splits the same way every time.
        EXPECT_EQ(run_and_check(pool, n, min_chunk), ranges);
      }
    }
  }
}

TEST(ThreadPool, RunsInlineWhenSmallOrSingleThreaded) {
  ThreadPool single(1);
  const std::thread::id caller = std::this_thread::get_id();
  single.parallel_for(1000,
                      [&](int64_t, int64_t) { EXPECT_EQ(std::this_thread::get_id(), caller); });
  ThreadPool pool(4);
  int calls = 0;
  pool.parallel_for(
      5,
      [&](int64_t b, int64_t e) {
        ++calls;  // a single chunk: no other thread, no race
        EXPECT_EQ(std::this_thread::get_id(), caller);
        EXPECT_EQ(b, 0);
        EXPECT_EQ(e, 5);
      },
      100);
  EXPECT_EQ(calls, 1);
}

TEST(ThreadPool, UsesTheWorkers) {
  ThreadPool pool(3);
  std::mutex mutex;
  std::set<std::thread::id> seen;
  // Each chunk waits for the others, so all three threads must be running chunks at once.
  std::atomic<int> arrived{0};
  pool.parallel_for(3, [&](int64_t, int64_t) {
    arrived.fetch_add(1);
    while (arrived.load() < 3) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mutex);
    seen.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(seen.size(), 3u);
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  pool.parallel_for(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(10, [&](int64_t b2, int64_t e2) { total.fetch_add(e2 - b2); });
    }
  });
  EXPECT_EQ(total.load(), 40);
}

// Many back-to-back calls, some after the workers have gone to sleep, must never lose a
// wake-up (a lost one hangs here) nor a chunk.
TEST(ThreadPool, SurvivesManyCallsWithSleepsBetween) {
  for (int threads : {2, 3, 5}) {
    ThreadPool pool(threads);
    int64_t expected = 0;
    std::atomic<int64_t> total{0};
    for (int call = 0; call < 3000; ++call) {
      const int64_t n = 1 + call % 37;
      pool.parallel_for(n, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
      expected += n;
      if (call % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(total.load(), expected);
  }
}

TEST(ThreadPool, AcceptsStdFunctionAndDefaultsToCpuCount) {
  ThreadPool pool;
  EXPECT_EQ(pool.num_threads(), ThreadPool::default_num_threads());
  EXPECT_GE(ThreadPool::default_num_threads(), 1);
  std::atomic<int64_t> sum{0};
  const std::function<void(int64_t, int64_t)> fn = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum.fetch_add(i);
  };
  pool.parallel_for(100, fn);
  EXPECT_EQ(sum.load(), 4950);
}

}  // namespace
}  // namespace moon
