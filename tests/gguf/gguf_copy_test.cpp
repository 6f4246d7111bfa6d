// GgufFile::load_tensor_data: the weights move out of the file mapping into anonymous memory
// with every byte, every tensor's alignment and all metadata intact.
#include <gtest/gtest.h>

#include <cstring>

#include "common/test_data.h"
#include "gguf/gguf_file.h"

namespace moon::gguf {
namespace {

TEST(GgufCopy, TensorDataMovesIntoMemoryUnchanged) {
  for (const char* name : {"models/stories260K-q8_0.gguf", "models/kquants/kq-llama-q4_k_m.gguf"}) {
    SCOPED_TRACE(name);
    MOON_REQUIRE_TEST_FILE(path, name);
    // The oracle: the whole file read as bytes, parsed in memory.
    const std::string raw = test::read_file(path);
    auto bytes = GgufFile::from_bytes(std::vector<uint8_t>(raw.begin(), raw.end()), "bytes");
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;
    auto file = GgufFile::open(path);
    ASSERT_TRUE(file.ok()) << file.error().message;
    std::vector<const uint8_t*> mapped;
    for (const TensorInfo& t : (*file)->tensors()) mapped.push_back(t.data);

    uint64_t last_done = 0, calls = 0, total = 0;
    ASSERT_TRUE((*file)
                    ->load_tensor_data([&](uint64_t done, uint64_t all) {
                      EXPECT_GE(done, last_done);
                      last_done = done;
                      total = all;
                      ++calls;
                    })
                    .ok());
    EXPECT_TRUE((*file)->tensor_data_copied());
    EXPECT_GE(calls, 1u);
    EXPECT_EQ(last_done, total);

    const auto& tensors = (*file)->tensors();
    ASSERT_EQ(tensors.size(), (*bytes)->tensors().size());
    for (size_t i = 0; i < tensors.size(); ++i) {
      const TensorInfo& t = tensors[i];
      EXPECT_NE(t.data, mapped[i]) << t.name;
      // The offset within a page is kept, so the alignment is what the file gave.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 4096,
                reinterpret_cast<uintptr_t>(mapped[i]) % 4096)
          << t.name;
      ASSERT_EQ(0, std::memcmp(t.data, (*bytes)->tensors()[i].data, t.n_bytes)) << t.name;
    }
    // The metadata still reads (its strings stay in the mapping's first pages).
    auto arch = (*file)->get_string("general.architecture");
    ASSERT_TRUE(arch.ok());
    EXPECT_EQ(*arch, "llama");
    const Value* tokens = (*file)->find("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->to_string(2), (*bytes)->find("tokenizer.ggml.tokens")->to_string(2));
    // A second call changes nothing.
    const uint8_t* first = tensors[0].data;
    ASSERT_TRUE((*file)->load_tensor_data(nullptr).ok());
    EXPECT_EQ(tensors[0].data, first);
  }
}

TEST(GgufCopy, AFileAlreadyInMemoryStaysWhereItIs) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  const std::string raw = test::read_file(path);
  auto file = GgufFile::from_bytes(std::vector<uint8_t>(raw.begin(), raw.end()), "bytes");
  ASSERT_TRUE(file.ok());
  const uint8_t* before = (*file)->tensors()[0].data;
  ASSERT_TRUE((*file)->load_tensor_data(nullptr).ok());
  EXPECT_FALSE((*file)->tensor_data_copied());
  EXPECT_EQ((*file)->tensors()[0].data, before);
}

}  // namespace
}  // namespace moon::gguf
