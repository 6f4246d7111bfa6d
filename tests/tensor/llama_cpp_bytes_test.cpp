// The strongest check that moon's quantizers are llama.cpp's: stories260K-q8_0.gguf was
// written by llama.cpp's quantizer from the same weights as stories260K-f32.gguf, so
// quantizing the F32 tensors must reproduce its Q8_0 (and F16) tensors byte for byte.
//
// Reads the two files with a minimal GGUF walker of its own, so this test depends on the
// tensor library alone (src/gguf has the real, validating reader).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "common/test_data.h"
#include "tensor/convert.h"
#include "tensor/dtype.h"

namespace moon {
namespace {

struct Tensor {
  DType type;
  std::vector<uint64_t> ne;
  const uint8_t* data;
};

class MiniGguf {
 public:
  explicit MiniGguf(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    EXPECT_EQ(read<uint32_t>(), 0x46554747u) << "not a GGUF file";
    read<uint32_t>();  // version
    const uint64_t n_tensors = read<uint64_t>();
    const uint64_t n_kv = read<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = read_string();
      const uint32_t type = read<uint32_t>();
      if (key == "general.alignment") {
        alignment = read<uint32_t>();
      } else {
        skip_value(type);
      }
    }
    struct Info {
      std::string name;
      Tensor t;
      uint64_t offset;
    };
    std::vector<Info> infos;
    for (uint64_t i = 0; i < n_tensors; ++i) {
      Info info;
      info.name = read_string();
      const uint32_t n_dims = read<uint32_t>();
      for (uint32_t d = 0; d < n_dims; ++d) info.t.ne.push_back(read<uint64_t>());
      info.t.type = static_cast<DType>(read<uint32_t>());
      info.offset = read<uint64_t>();
      infos.push_back(info);
    }
    const size_t data_start = (pos_ + alignment - 1) / alignment * alignment;
    for (Info& info : infos) {
      info.t.data = bytes_.data() + data_start + info.offset;
      tensors_[info.name] = info.t;
    }
  }

  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

 private:
  template <typename T>
  T read() {
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string() {
    const uint64_t n = read<uint64_t>();
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void skip_value(uint32_t type) {
    static constexpr size_t kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
      read_string();
    } else if (type == 9) {
      const uint32_t element_type = read<uint32_t>();
      const uint64_t n = read<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) skip_value(element_type);
    } else {
      pos_ += kSizes[type];
    }
  }

  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
  std::map<std::string, Tensor> tensors_;
};

TEST(LlamaCppBytes, QuantizingStories260KReproducesLlamaQuantize) {
  MOON_REQUIRE_TEST_FILE(f32_path, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(q8_path, "models/stories260K-q8_0.gguf");
  const MiniGguf f32(f32_path), q8(q8_path);
  int compared = 0;
  for (const auto& [name, quantized] : q8.tensors()) {
    if (quantized.type != DType::Q8_0 && quantized.type != DType::F16) continue;
    SCOPED_TRACE(name);
    const auto it = f32.tensors().find(name);
    ASSERT_NE(it, f32.tensors().end());
    ASSERT_EQ(it->second.type, DType::F32);
    ASSERT_EQ(it->second.ne, quantized.ne);
    const int64_t cols = static_cast<int64_t>(quantized.ne[0]);
    int64_t rows = 1;
    for (size_t d = 1; d < quantized.ne.size(); ++d) rows *= static_cast<int64_t>(quantized.ne[d]);
    const size_t row_bytes = dtype_row_bytes(quantized.type, static_cast<size_t>(cols));
    std::vector<uint8_t> mine(row_bytes);
    const auto* source = reinterpret_cast<const float*>(it->second.data);
    for (int64_t r = 0; r < rows; ++r) {
      quantize_row(quantized.type, source + r * cols, mine.data(), cols);
      ASSERT_EQ(0, std::memcmp(mine.data(), quantized.data + r * row_bytes, row_bytes))
          << dtype_name(quantized.type) << " row " << r;
    }
    ++compared;
  }
  EXPECT_GE(compared, 20);  // 5 layers x (4 attention + 3 FFN) + embeddings + output
}

}  // namespace
}  // namespace moon
