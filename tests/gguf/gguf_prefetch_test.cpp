#include "gguf/gguf_prefetch.h"

#include <gtest/gtest.h>

#include "common/test_data.h"

namespace moon::gguf {
namespace {

TEST(GgufPrefetch, ReadsEveryTensorAndReportsMonotonicProgressToTheTotal) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  // An F32 file: four bytes per element, from the shapes alone.
  uint64_t want = 0;
  for (const TensorInfo& t : (*file)->tensors()) {
    ASSERT_EQ(t.type, DType::F32) << t.name;
    want += 4 * t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
  }
  EXPECT_EQ(tensor_data_bytes(**file), want);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  const uint64_t total = prefetch_tensor_data(
      **file, [&](uint64_t done, uint64_t all) { calls.emplace_back(done, all); });
  EXPECT_EQ(total, want);
  ASSERT_GE(calls.size(), 10u);  // about every 1%
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].second, want);
    if (i > 0) {
      EXPECT_GE(calls[i].first, calls[i - 1].first);
    }
  }
  EXPECT_EQ(calls.back().first, want);
}

}  // namespace
}  // namespace moon::gguf
