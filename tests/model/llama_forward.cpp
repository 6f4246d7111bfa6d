#include "model/llama_forward.h"

#include <algorithm>
#include <numeric>

#include "util/check.h"

namespace moon {

LlamaForward::LlamaForward(const Model& model, int64_t max_context, ThreadPool* pool,
                           int64_t max_batch)
    : n_vocab_(model.hparams.n_vocab),
      max_context_(std::max<int64_t>(max_context, 1)),
      max_batch_(std::max<int64_t>(std::min(max_batch, max_context_), 1)) {
  KvLayout layout;
  layout.num_layers = model.hparams.n_layer;
  layout.num_kv_heads = model.hparams.n_head_kv;
  layout.head_dim = model.hparams.head_dim;
  layout.block_size = kBlockSize;
  layout.num_blocks = (max_context_ + kBlockSize - 1) / kBlockSize;
  layout.dtype = DType::F32;
  auto storage = KvStorage::create(layout);
  MOON_CHECK(storage.ok(), "cannot allocate a KV cache: {}", storage.error().message);
  kv_ = std::make_unique<KvStorage>(std::move(storage).value());
  paged_ = std::make_unique<PagedForward>(model, kv_.get(), max_batch_, pool);
  batch_.block_table_stride = layout.num_blocks;
}

Status LlamaForward::forward(std::span<const int32_t> tokens, int64_t pos, float* logits,
                             bool all_logits) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) return make_error("forward called with no tokens");
  if (pos < 0 || pos + n > max_context_) {
    return make_error("positions {}..{} exceed the context of {} tokens", pos, pos + n - 1,
                      max_context_);
  }
  for (int64_t start = 0; start < n; start += max_batch_) {
    const int64_t len = std::min(max_batch_, n - start);
    batch_.clear();
    batch_.block_table_stride = kv_->layout().num_blocks;
    batch_.block_tables.resize(batch_.block_table_stride);
    std::iota(batch_.block_tables.begin(), batch_.block_tables.end(), 0);
    for (int64_t i = 0; i < len; ++i) {
      const int64_t p = pos + start + i;
      batch_.tokens.push_back(tokens[start + i]);
      batch_.positions.push_back(static_cast<int32_t>(p));
      batch_.slot_mapping.push_back(p);  // block p / 16 is block number p / 16
      if (all_logits) batch_.logits_rows.push_back(i);
    }
    batch_.query_start.push_back(len);
    batch_.context_len.push_back(pos + start + len);
    const bool last_chunk = start + len == n;
    if (!all_logits && last_chunk) batch_.logits_rows.push_back(len - 1);
    MOON_TRY(paged_->forward(batch_, all_logits ? logits + start * n_vocab_ : logits));
  }
  return Status::success();
}

}  // namespace moon
