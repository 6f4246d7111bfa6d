// Deterministic mutation testing of the GGUF reader: tens of thousands of randomly damaged
// copies of small valid files (flipped bytes, truncations, extreme values written over
// length, count, type and offset fields, inserted and deleted bytes) must each either parse
// into a self-consistent file or fail with one non-empty message; never crash, hang, or
// read out of bounds. Run it under -DMOON_SANITIZE=address,undefined to catch the latter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "gguf_test_util.h"
#include "util/splitmix64.h"

namespace moon::gguf {
namespace {

using Rng = SplitMix64;

// Values that stress length, count, type and offset fields.
uint64_t extreme_u64(Rng& rng, uint64_t file_size) {
  static constexpr uint64_t kValues[] = {0,
                                         1,
                                         2,
                                         3,
                                         4,
                                         5,
                                         8,
                                         12,
                                         13,
                                         31,
                                         32,
                                         33,
                                         64,
                                         255,
                                         256,
                                         0x7fffffffull,
                                         0x80000000ull,
                                         0xffffffffull,
                                         1ull << 32,
                                         (1ull << 32) + 1,
                                         1ull << 40,
                                         1ull << 62,
                                         1ull << 63,
                                         0x7fffffffffffffffull,
                                         0xffffffffffffffe0ull,
                                         0xfffffffffffffffeull,
                                         0xffffffffffffffffull};
  constexpr uint64_t kCount = sizeof(kValues) / sizeof(kValues[0]);
  const uint64_t pick = rng.below(kCount + 3);
  if (pick < kCount) return kValues[pick];
  return file_size + pick - kCount - 1;  // size - 1, size, size + 1
}

uint32_t extreme_u32(Rng& rng) {
  static constexpr uint32_t kValues[] = {
      0,  1,  2,  3,  4,   5,       7,          8,          9,          10,         12,        13,
      31, 32, 33, 99, 255, 0x10000, 0x03000000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};
  return kValues[rng.below(sizeof(kValues) / sizeof(kValues[0]))];
}

template <typename T>
void overwrite(std::vector<uint8_t>& bytes, uint64_t pos, T v) {
  if (bytes.size() < sizeof(T)) return;
  pos = std::min<uint64_t>(pos, bytes.size() - sizeof(T));
  std::memcpy(bytes.data() + pos, &v, sizeof(T));
}

// Applies one to three random mutations.
std::vector<uint8_t> mutate(std::vector<uint8_t> bytes, Rng& rng) {
  const int n_ops = 1 + static_cast<int>(rng.below(3));
  for (int op = 0; op < n_ops; ++op) {
    const uint64_t size = bytes.size();
    const uint64_t pos = rng.below(size);
    switch (rng.below(9)) {
      case 0:  // flip one bit
        if (size) bytes[pos] ^= uint8_t(1u << rng.below(8));
        break;
      case 1:  // a random byte
        if (size) bytes[pos] = uint8_t(rng.next());
        break;
      case 2: {  // a telling byte
        static constexpr uint8_t kBytes[] = {0, 1, 2, 0x7f, 0x80, 0xff};
        if (size) bytes[pos] = kBytes[rng.below(sizeof(kBytes))];
        break;
      }
      case 3:  // an extreme 8-byte length, count or offset
        overwrite<uint64_t>(bytes, pos, extreme_u64(rng, size));
        break;
      case 4:  // an extreme 4-byte type, dimension count or version
        overwrite<uint32_t>(bytes, pos, extreme_u32(rng));
        break;
      case 5:  // truncate
        bytes.resize(pos);
        break;
      case 6: {  // insert random bytes, shifting every field after them
        const uint64_t n = 1 + rng.below(16);
        std::vector<uint8_t> extra(n);
        for (auto& b : extra) b = uint8_t(rng.next());
        bytes.insert(bytes.begin() + static_cast<ptrdiff_t>(pos), extra.begin(), extra.end());
        break;
      }
      case 7: {  // delete bytes
        const uint64_t n = std::min<uint64_t>(1 + rng.below(16), size - pos);
        bytes.erase(bytes.begin() + static_cast<ptrdiff_t>(pos),
                    bytes.begin() + static_cast<ptrdiff_t>(pos + n));
        break;
      }
      case 8: {  // copy a chunk of the file over another place in it
        const uint64_t from = rng.below(size);
        const uint64_t n = std::min({1 + rng.below(32), size - from, size - pos});
        std::memmove(bytes.data() + pos, bytes.data() + from, n);
        break;
      }
    }
  }
  return bytes;
}

volatile uint64_t g_sink;  // keeps the reads of every parsed byte from being optimized away

uint64_t touch(const Value& v) {
  uint64_t sum = v.to_string().size();
  if (auto s = v.as_string()) {
    for (char c : *s) sum += static_cast<unsigned char>(c);
  }
  if (const Value::Array* a = v.array()) {
    for (std::string_view s : a->strings) {
      for (char c : s) sum += static_cast<unsigned char>(c);
    }
    for (const Value& inner : a->arrays) sum += touch(inner);
    sum += a->ints.size() + a->uints.size() + a->floats.size();
  }
  return sum;
}

// A file that parsed must hold together: every value readable, every tensor inside the
// data, aligned, sized from its shape and type, not overlapping another.
void expect_consistent(const GgufFile& f) {
  uint64_t sum = 0;
  EXPECT_TRUE(f.version() == 2 || f.version() == 3);
  EXPECT_TRUE(f.alignment() != 0 && (f.alignment() & (f.alignment() - 1)) == 0);
  for (const auto& [key, value] : f.metadata()) {
    EXPECT_FALSE(key.empty());
    EXPECT_EQ(f.find(key), &value);
    sum += touch(value);
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_FALSE(t.name.empty());
    EXPECT_EQ(f.find_tensor(t.name), &t);
    ASSERT_TRUE(t.n_dims >= 1 && t.n_dims <= kMaxDims) << t.name;
    uint64_t n = 1;
    for (int d = 0; d < kMaxDims; ++d) {
      ASSERT_GT(t.ne[d], 0u) << t.name;
      n *= t.ne[d];
    }
    EXPECT_EQ(t.n_elements, n) << t.name;
    const DTypeTraits& traits = dtype_traits(t.type);
    EXPECT_EQ(t.ne[0] % traits.block_size, 0u) << t.name;
    EXPECT_EQ(t.n_bytes, n / traits.block_size * traits.block_bytes) << t.name;
    EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
    ASSERT_LE(t.n_bytes, f.file_size()) << t.name;
    // Reading every byte: AddressSanitizer reports any that lie outside the buffer.
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];
    ranges.emplace_back(t.offset, t.offset + t.n_bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    EXPECT_LE(ranges[i - 1].second, ranges[i].first) << "tensors overlap";
  }
  g_sink = g_sink + sum;
}

std::vector<uint8_t> aligned_writer_file() {
  GgufWriter w;
  w.set_alignment(64);
  w.add_bool("general.flag", true);
  w.add_int32_array("tokenizer.ggml.token_type", {1, 2, 3});
  EXPECT_TRUE(w.add_tensor("a", {4, 2}, DType::F16, test::pattern_bytes(16, 5)).ok());
  EXPECT_TRUE(w.add_tensor("b", {32}, DType::Q4_0, test::pattern_bytes(18, 6)).ok());
  return w.serialize();
}

TEST(GgufMutation, TwentyThousandRandomMutationsParseOrFailCleanly) {
  // Every fourth mutant is read under limits just above what the seed files need, so that
  // mutations reach the limit checks too.
  ReadLimits tight;
  tight.max_string_bytes = 32;
  tight.max_array_elements = 8;
  tight.max_tensors = 3;
  tight.max_kv_pairs = 32;
  tight.max_array_nesting = 3;
  tight.max_metadata_bytes = 16384;
  const std::vector<std::vector<uint8_t>> seeds = {test::small_writer_file(),
                                                   test::every_type_file(), aligned_writer_file()};
  for (const auto& seed : seeds) {
    for (const ReadLimits& limits : {ReadLimits{}, tight}) {
      auto file = GgufFile::from_bytes(seed, "seed", limits);
      ASSERT_TRUE(file.ok()) << file.error().message;
      expect_consistent(**file);
    }
  }

  constexpr int kMutations = 20000;
  Rng rng(20240611);
  int n_ok = 0;
  int n_error = 0;
  for (int i = 0; i < kMutations; ++i) {
    const std::vector<uint8_t>& seed = seeds[i % seeds.size()];
    std::vector<uint8_t> mutant = mutate(seed, rng);
    const ReadLimits limits = i % 4 == 3 ? tight : ReadLimits{};
    auto file = GgufFile::from_bytes(std::move(mutant), "mutant", limits);
    if (file.ok()) {
      ++n_ok;
      expect_consistent(**file);
    } else {
      ++n_error;
      const std::string& message = file.error().message;
      EXPECT_GT(message.size(), std::string("mutant: ").size());
      EXPECT_EQ(message.rfind("mutant: ", 0), 0u) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    if (HasFailure()) {
      FAIL() << "stopping at mutation " << i << " (seed file " << i % seeds.size() << ")";
    }
  }
  // Both outcomes must be common, or the mutations are not exercising the reader.
  EXPECT_GT(n_ok, kMutations / 50);
  EXPECT_GT(n_error, kMutations / 4);
  RecordProperty("parsed", n_ok);
  RecordProperty("rejected", n_error);
}

}  // namespace
}  // namespace moon::gguf
