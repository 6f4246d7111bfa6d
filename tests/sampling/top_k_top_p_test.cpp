#include "sampling/top_k_top_p.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "sampling/sampling_test_util.h"

namespace moon {
namespace {

std::vector<int32_t> sorted_ids(std::vector<Candidate> c) {
  std::vector<int32_t> ids;
  for (const Candidate& x : c) ids.push_back(x.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(SelectTopK, MatchesAFullSortIncludingTiesAndMinLogit) {
  for (int64_t n : {1, 10, 100, 1000, 32000}) {
    for (bool ties : {false, true}) {
      std::vector<float> row = test::normal_row(static_cast<uint64_t>(n) + ties, n);
      if (ties) {
        for (float& v : row) v = std::round(v);
      }
      if (n > 3) {
        row[1] = test::kNaN;
        row[2] = -test::kInf;
      }
      for (int64_t k : {1, 2, 5, 50, 64, 65, 200, 5000}) {
        for (float min_logit : {-test::kInf, 0.0f, 2.0f}) {
          std::vector<int32_t> all;
          for (int64_t i = 0; i < n; ++i) {
            if (row[i] > -test::kInf && row[i] >= min_logit) all.push_back(int32_t(i));
          }
          std::stable_sort(all.begin(), all.end(),
                           [&](int32_t a, int32_t b) { return row[a] > row[b]; });
          if (all.size() > size_t(k)) all.resize(size_t(k));
          std::sort(all.begin(), all.end());
          std::vector<Candidate> got;
          select_top_k(row, k, min_logit, got);
          EXPECT_EQ(sorted_ids(got), all) << "n " << n << " k " << k << " min " << min_logit;
        }
      }
    }
  }
}

TEST(TopPPrefix, IsTheSmallestBestSetReachingTheMass) {
  for (int64_t n : {1, 5, 17, 100, 3000}) {
    auto row = test::normal_row(static_cast<uint64_t>(n), n, 2.0f);
    for (double p : {0.01, 0.3, 0.5, 0.9, 0.999, 1.0}) {
      std::vector<Candidate> c;
      double total = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const float w = static_cast<float>(std::exp(row[i]));
        c.push_back({row[i], int32_t(i), w});
        total += w;
      }
      // Reference: sort everything, take the prefix whose cumulative weight reaches p.
      std::vector<Candidate> sorted = c;
      std::sort(sorted.begin(), sorted.end(), better);
      size_t want = 0;
      double acc = 0.0;
      while (want < sorted.size()) {
        acc += sorted[want++].weight;
        if (acc >= p * total) break;
      }
      const size_t m = top_p_prefix(c, p * total);
      ASSERT_EQ(m, want) << "n " << n << " p " << p;
      std::vector<Candidate> got(c.begin(), c.begin() + m),
          ref(sorted.begin(), sorted.begin() + want);
      EXPECT_EQ(sorted_ids(got), sorted_ids(ref)) << "n " << n << " p " << p;
    }
  }
}

}  // namespace
}  // namespace moon
