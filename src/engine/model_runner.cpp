#include "engine/model_runner.h"

#include <algorithm>

namespace moon {

ModelRunner::ModelRunner(const LlamaModel& model, KvStorage* storage, const KvCacheManager* kv,
                         int64_t max_num_batched_tokens, ThreadPool* pool)
    : storage_(storage),
      kv_(kv),
      forward_(model, storage, max_num_batched_tokens, pool),
      n_vocab_(model.hparams.n_vocab) {}

void ModelRunner::build_batch(const SchedulerOutput& output) {
  batch_.clear();
  size_t stride = 1;
  for (const ScheduledChunk& c : output.chunks) {
    stride = std::max(stride, kv_->block_table(c.sequence->id).size());
  }
  batch_.block_table_stride = static_cast<int64_t>(stride);
  for (const ScheduledChunk& c : output.chunks) {
    const Sequence& seq = *c.sequence;
    for (int64_t p = c.start; p < c.start + c.num_tokens; ++p) {
      batch_.tokens.push_back(seq.tokens[p]);
      batch_.positions.push_back(static_cast<int32_t>(p));
      batch_.slot_mapping.push_back(kv_->slot(seq.id, p));
    }
    batch_.query_start.push_back(batch_.num_tokens());
    batch_.context_len.push_back(c.start + c.num_tokens);
    const std::vector<BlockId>& table = kv_->block_table(seq.id);
    batch_.block_tables.insert(batch_.block_tables.end(), table.begin(), table.end());
    batch_.block_tables.resize(batch_.block_tables.size() + stride - table.size(), 0);
    if (c.samples) batch_.logits_rows.push_back(batch_.num_tokens() - 1);
  }
}

Result<std::span<float>> ModelRunner::run(const SchedulerOutput& output) {
  storage_->copy_blocks(output.block_copies);
  if (output.chunks.empty()) return std::span<float>();
  build_batch(output);
  logits_.resize(batch_.logits_rows.size() * static_cast<size_t>(n_vocab_));
  MOON_TRY(forward_.forward(batch_, logits_.data()));
  return std::span<float>(logits_);
}

}  // namespace moon
