#include "kv/kv_storage.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "tensor/half.h"

namespace moon {
namespace {

KvLayout small_layout(DType dtype) {
  KvLayout layout;
  layout.num_layers = 3;
  layout.num_kv_heads = 2;
  layout.head_dim = 5;  // odd, so layer arrays are not naturally 64-byte multiples
  layout.block_size = 4;
  layout.num_blocks = 7;
  layout.dtype = dtype;
  return layout;
}

TEST(KvStorageTest, ArraysAreAlignedZeroedAndDisjoint) {
  for (const DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    const KvLayout layout = small_layout(dtype);
    auto storage = KvStorage::create(layout);
    ASSERT_TRUE(storage.ok()) << storage.error().message;
    const size_t bytes = layout.layer_bytes();
    std::vector<const std::byte*> arrays;
    for (int64_t l = 0; l < layout.num_layers; ++l) {
      arrays.push_back(static_cast<const std::byte*>(storage->k(l)));
      arrays.push_back(static_cast<const std::byte*>(storage->v(l)));
    }
    for (size_t i = 0; i < arrays.size(); ++i) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(arrays[i]) % KvStorage::kAlignment, 0u);
      for (size_t b = 0; b < bytes; ++b) ASSERT_EQ(arrays[i][b], std::byte{0});
      if (i > 0) {
        EXPECT_GE(arrays[i], arrays[i - 1] + bytes);
      }
    }
    EXPECT_GE(storage->num_bytes(), 2 * 3 * bytes);
  }
}

TEST(KvStorageTest, CopyBlockCopiesEveryLayerAndNothingElse) {
  const KvLayout layout = small_layout(DType::F16);
  auto storage = std::move(KvStorage::create(layout).value());
  const int64_t per_block = layout.block_elements();
  // Every element gets a distinct fp16 value derived from (array, element).
  auto value = [](int64_t array, int64_t element) {
    return fp32_to_fp16(static_cast<float>(array * 1000 + element % 1000) * 0.25f);
  };
  auto array_of = [&](int64_t a) {
    return static_cast<uint16_t*>(a % 2 == 0 ? storage.k(a / 2) : storage.v(a / 2));
  };
  const int64_t elements = per_block * layout.num_blocks;
  for (int64_t a = 0; a < 2 * layout.num_layers; ++a) {
    for (int64_t e = 0; e < elements; ++e) array_of(a)[e] = value(a, e);
  }
  storage.copy_block(2, 5);
  const std::vector<std::pair<BlockId, BlockId>> copies = {{0, 1}, {1, 3}};
  storage.copy_blocks(copies);  // in order: block 3 gets block 0's contents via 1
  for (int64_t a = 0; a < 2 * layout.num_layers; ++a) {
    for (int64_t e = 0; e < elements; ++e) {
      const int64_t block = e / per_block, offset = e % per_block;
      int64_t source = block;
      if (block == 5) source = 2;
      if (block == 1 || block == 3) source = 0;
      ASSERT_EQ(array_of(a)[e], value(a, source * per_block + offset))
          << "array " << a << " block " << block;
    }
  }
}

TEST(KvStorageTest, ElementOffsetsStayInsideTheLayerArray) {
  const KvLayout layout = small_layout(DType::F32);
  const int64_t last_slot = layout.num_blocks * layout.block_size - 1;
  const int64_t end = layout.element_offset(last_slot, layout.num_kv_heads - 1) + layout.head_dim;
  EXPECT_EQ(static_cast<size_t>(end) * layout.element_bytes(), layout.layer_bytes());
}

TEST(KvStorageTest, MoveKeepsTheBytes) {
  auto a = std::move(KvStorage::create(small_layout(DType::F32)).value());
  static_cast<float*>(a.v(2))[3] = 1.5f;
  KvStorage b = std::move(a);
  EXPECT_EQ(static_cast<float*>(b.v(2))[3], 1.5f);
  auto c = std::move(KvStorage::create(small_layout(DType::BF16)).value());
  c = std::move(b);
  EXPECT_EQ(static_cast<float*>(c.v(2))[3], 1.5f);
  EXPECT_EQ(c.layout().dtype, DType::F32);
}

TEST(KvStorageTest, RejectsBadLayouts) {
  KvLayout layout = small_layout(DType::Q8_0);
  auto bad_dtype = KvStorage::create(layout);
  ASSERT_FALSE(bad_dtype.ok());
  EXPECT_NE(bad_dtype.error().message.find("F32, F16 or BF16"), std::string::npos);
  layout = small_layout(DType::F32);
  layout.num_blocks = 0;
  EXPECT_FALSE(KvStorage::create(layout).ok());
  layout.num_blocks = int64_t{1} << 40;
  EXPECT_FALSE(validate_kv_layout(layout).ok());
  layout = small_layout(DType::F32);
  layout.head_dim = int64_t{1} << 40;
  layout.num_kv_heads = int64_t{1} << 30;
  EXPECT_FALSE(validate_kv_layout(layout).ok());
}

TEST(KvStorageTest, LayoutFromABudget) {
  KvLayout shape = small_layout(DType::F16);
  shape.num_layers = 32;
  shape.num_kv_heads = 8;
  shape.head_dim = 128;
  shape.block_size = 16;
  // Llama-3-8B-like: 2 * 32 * 8 * 128 * 2 bytes = 128 KiB per token, 2 MiB per block.
  ASSERT_EQ(shape.bytes_per_token(), 128u * 1024);
  auto layout = kv_layout_for_budget(shape, uint64_t{1} << 30);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  EXPECT_EQ(layout->num_blocks, 512);
  EXPECT_EQ(layout->num_layers, 32);
  EXPECT_EQ(kv_layout_for_budget(shape, (uint64_t{2} << 20) * 3 - 1)->num_blocks, 2);

  auto too_small = kv_layout_for_budget(shape, uint64_t{1} << 20);
  ASSERT_FALSE(too_small.ok());
  EXPECT_NE(too_small.error().message.find("holds no block"), std::string::npos);
  EXPECT_NE(too_small.error().message.find("2.00 MiB"), std::string::npos)
      << too_small.error().message;

  shape.dtype = DType::Q4_0;
  EXPECT_FALSE(kv_layout_for_budget(shape, uint64_t{1} << 30).ok());
}

TEST(KvStorageTest, BytesForSequencesRoundsEachUpToBlocksAndSaturates) {
  KvLayout shape = small_layout(DType::F16);
  shape.num_layers = 32;
  shape.num_kv_heads = 8;
  shape.head_dim = 128;
  shape.block_size = 16;  // 2 MiB per block, as above
  EXPECT_EQ(kv_bytes_for_sequences(shape, 1, 16), uint64_t{2} << 20);
  EXPECT_EQ(kv_bytes_for_sequences(shape, 1, 17), uint64_t{4} << 20);
  EXPECT_EQ(kv_bytes_for_sequences(shape, 256, 4096), uint64_t{256} * 256 * (2 << 20));
  EXPECT_EQ(kv_bytes_for_sequences(shape, int64_t{1} << 40, int64_t{1} << 40),
            std::numeric_limits<uint64_t>::max());
  // The budget it gives holds exactly those blocks.
  EXPECT_EQ(kv_layout_for_budget(shape, kv_bytes_for_sequences(shape, 3, 100))->num_blocks, 21);
}

}  // namespace
}  // namespace moon
