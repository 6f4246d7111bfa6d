#include "kv/kv_storage.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "kv/memory_size.h"
#include "util/check.h"
#include "util/format_bytes.h"

namespace moon {
namespace {

// a * b, or false when it overflows size_t.
bool mul(size_t a, size_t b, size_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

}  // namespace

Status validate_kv_layout(const KvLayout& layout) {
  if (layout.dtype != DType::F32 && layout.dtype != DType::F16 && layout.dtype != DType::BF16) {
    return make_error("KV cache dtype {} is not supported: use F32, F16 or BF16",
                      dtype_name(layout.dtype));
  }
  if (layout.num_layers <= 0 || layout.num_kv_heads <= 0 || layout.head_dim <= 0 ||
      layout.block_size <= 0 || layout.num_blocks <= 0) {
    return make_error(
        "KV layout needs positive sizes, got {} layers, {} KV heads, head_dim {}, block_size {}, "
        "{} blocks",
        layout.num_layers, layout.num_kv_heads, layout.head_dim, layout.block_size,
        layout.num_blocks);
  }
  if (layout.num_blocks > std::numeric_limits<BlockId>::max()) {
    return make_error("KV layout has {} blocks; at most {} fit a block id", layout.num_blocks,
                      std::numeric_limits<BlockId>::max());
  }
  size_t bytes = layout.element_bytes();
  for (const int64_t factor : {layout.num_kv_heads, layout.head_dim, layout.block_size,
                               layout.num_blocks, layout.num_layers, int64_t{2}}) {
    if (!mul(bytes, static_cast<size_t>(factor), &bytes)) {
      return make_error("KV layout is too large to address");
    }
  }
  // Slots are block * block_size + offset in int64; kernels index elements from them.
  if (layout.num_blocks > std::numeric_limits<int64_t>::max() / layout.block_size) {
    return make_error("KV layout has too many slots");
  }
  return Status::success();
}

Result<KvLayout> kv_layout_for_budget(const KvLayout& shape, uint64_t budget_bytes) {
  KvLayout layout = shape;
  layout.num_blocks = 1;
  MOON_TRY(validate_kv_layout(layout));
  size_t block_bytes;  // one block of every layer's K and V
  if (!mul(static_cast<size_t>(shape.block_size), shape.bytes_per_token(), &block_bytes)) {
    return make_error("one KV block is too large to address");
  }
  const uint64_t num_blocks = budget_bytes / block_bytes;
  if (num_blocks < 1) {
    return make_error(
        "KV cache budget {} holds no block: one block of {} tokens needs {} ({} per token); "
        "raise the KV cache size or lower the block size",
        format_bytes(budget_bytes, 2), shape.block_size, format_bytes(block_bytes, 2),
        format_bytes(shape.bytes_per_token(), 2));
  }
  layout.num_blocks = static_cast<int64_t>(
      std::min<uint64_t>(num_blocks, static_cast<uint64_t>(std::numeric_limits<BlockId>::max())));
  MOON_TRY(validate_kv_layout(layout));
  return layout;
}

uint64_t kv_bytes_for_sequences(const KvLayout& shape, int64_t num_sequences, int64_t tokens_each) {
  const size_t blocks_each =
      static_cast<size_t>((tokens_each + shape.block_size - 1) / shape.block_size);
  size_t bytes = 0;
  if (!mul(blocks_each, static_cast<size_t>(num_sequences), &bytes) ||
      !mul(bytes, static_cast<size_t>(shape.block_size), &bytes) ||
      !mul(bytes, shape.bytes_per_token(), &bytes)) {
    return std::numeric_limits<uint64_t>::max();
  }
  return bytes;
}

Result<KvStorage> KvStorage::create(const KvLayout& layout) {
  MOON_TRY(validate_kv_layout(layout));
  const size_t stride = (layout.layer_bytes() + kAlignment - 1) / kAlignment * kAlignment;
  size_t num_bytes;
  if (!mul(stride, 2 * static_cast<size_t>(layout.num_layers), &num_bytes)) {
    return make_error("KV cache is too large to address");
  }
  // Anonymous pages arrive zeroed and are only backed once touched, so a large cache costs
  // nothing until sequences fill it, and no slot ever holds garbage (NaN) bytes.
  void* base = mmap(nullptr, num_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    return make_error("cannot allocate {} for the KV cache ({}): lower the KV cache size",
                      format_bytes(num_bytes, 2), std::strerror(errno));
  }
  return KvStorage(layout, static_cast<std::byte*>(base), num_bytes, stride);
}

KvStorage::KvStorage(const KvLayout& layout, std::byte* base, size_t num_bytes, size_t stride)
    : layout_(layout), base_(base), num_bytes_(num_bytes), array_stride_(stride) {}

KvStorage::KvStorage(KvStorage&& other) noexcept
    : layout_(other.layout_),
      base_(std::exchange(other.base_, nullptr)),
      num_bytes_(std::exchange(other.num_bytes_, 0)),
      array_stride_(other.array_stride_) {}

KvStorage& KvStorage::operator=(KvStorage&& other) noexcept {
  if (this != &other) {
    if (base_) munmap(base_, num_bytes_);
    layout_ = other.layout_;
    base_ = std::exchange(other.base_, nullptr);
    num_bytes_ = std::exchange(other.num_bytes_, 0);
    array_stride_ = other.array_stride_;
  }
  return *this;
}

KvStorage::~KvStorage() {
  if (base_) munmap(base_, num_bytes_);
}

std::byte* KvStorage::array(int64_t index) const {
  MOON_CHECK(index >= 0 && index < 2 * layout_.num_layers, "KvStorage: layer {} out of range",
             index / 2);
  return base_ + static_cast<size_t>(index) * array_stride_;
}

void KvStorage::copy_block(BlockId src, BlockId dst) {
  MOON_CHECK(src >= 0 && dst >= 0 && src < layout_.num_blocks && dst < layout_.num_blocks,
             "KvStorage: copy_block({}, {}) with {} blocks", src, dst, layout_.num_blocks);
  if (src == dst) return;
  const size_t block_bytes = layout_.block_bytes();
  for (int64_t a = 0; a < 2 * layout_.num_layers; ++a) {
    std::byte* base = array(a);
    std::memcpy(base + static_cast<size_t>(dst) * block_bytes,
                base + static_cast<size_t>(src) * block_bytes, block_bytes);
  }
}

void KvStorage::copy_blocks(std::span<const std::pair<BlockId, BlockId>> copies) {
  for (const auto& [src, dst] : copies) copy_block(src, dst);
}

}  // namespace moon
