#include "engine/model_runner.h"

#include <algorithm>

#include "util/logging.h"

namespace moon {

ModelRunner::ModelRunner(const Model& model, KvStorage* storage, const KvCacheManager* kv,
                         int64_t max_num_batched_tokens, ThreadPool* pool, ForwardRanks ranks)
    : comm_(ranks.comm),
      storage_(storage),
      kv_(kv),
      forward_(model, storage, max_num_batched_tokens, pool, std::move(ranks)),
      n_vocab_(model.hparams.n_vocab) {}

ModelRunner::~ModelRunner() {
  if (distributed() && !broken_) {
    if (Status s = send_plan(StepPlan::Kind::kStop, {}); !s.ok()) {
      spdlog::warn("{}", s.error().message);
    }
  }
}

Status ModelRunner::send_plan(StepPlan::Kind kind,
                              std::span<const std::pair<BlockId, BlockId>> copies) {
  if (kind != StepPlan::Kind::kStep) batch_.clear();
  encode_step_plan(kind, copies, batch_, &plan_bytes_);
  Status sent = comm_->broadcast(&plan_bytes_);
  if (!sent.ok()) broken_ = true;
  return sent;
}

Status ModelRunner::heartbeat() {
  if (!distributed() || broken_) return Status::success();
  return send_plan(StepPlan::Kind::kHeartbeat, {});
}

void ModelRunner::build_batch(const SchedulerOutput& output) {
  batch_.clear();
  size_t stride = 1;
  for (const ScheduledChunk& c : output.chunks) {
    stride = std::max(stride, kv_->block_table(c.sequence->id).size());
  }
  batch_.block_table_stride = static_cast<int64_t>(stride);
  sampling_rows_.clear();
  prompt_chunks_.clear();
  for (size_t i = 0; i < output.chunks.size(); ++i) {
    const ScheduledChunk& c = output.chunks[i];
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
    const int64_t first_row = batch_.num_tokens() - c.num_tokens;
    if (seq.needs_prompt_logits) {
      prompt_chunks_.emplace_back(i, static_cast<int64_t>(batch_.logits_rows.size()));
      for (int64_t r = first_row; r < batch_.num_tokens(); ++r) batch_.logits_rows.push_back(r);
    } else if (c.samples) {
      batch_.logits_rows.push_back(batch_.num_tokens() - 1);
    }
    if (c.samples) {
      const auto row = static_cast<int64_t>(batch_.logits_rows.size()) - 1;
      sampling_rows_.insert(sampling_rows_.end(), 1 + c.forks.size(), row);
    }
  }
}

Result<ModelRunner::Logits> ModelRunner::run(const SchedulerOutput& output) {
  if (broken_) return make_error("tensor parallel: the ranks are out of step after a failure");
  if (output.chunks.empty()) {
    batch_.clear();
  } else {
    build_batch(output);
  }
  if (distributed()) MOON_TRY(send_plan(StepPlan::Kind::kStep, output.block_copies));
  storage_->copy_blocks(output.block_copies);
  if (output.chunks.empty()) return Logits{};
  const auto vocab = static_cast<size_t>(n_vocab_);
  logits_.resize(batch_.logits_rows.size() * vocab);
  if (Status done = forward_.forward(batch_, logits_.data()); !done.ok()) {
    // Refused batches fail alike on every rank before any collective; anything else here
    // is a failed collective.
    if (distributed()) broken_ = true;
    return done.error();
  }
  Logits out;
  if (sampling_rows_.size() == batch_.logits_rows.size() && prompt_chunks_.empty()) {
    out.sampling = std::span<float>(logits_);  // every row samples once, in chunk order
    return out;
  }
  sampling_logits_.resize(sampling_rows_.size() * vocab);
  for (size_t k = 0; k < sampling_rows_.size(); ++k) {
    std::copy_n(logits_.begin() + sampling_rows_[k] * n_vocab_, vocab,
                sampling_logits_.begin() + k * vocab);
  }
  out.sampling = std::span<float>(sampling_logits_);
  for (const auto& [chunk, first_row] : prompt_chunks_) {
    const auto rows = static_cast<size_t>(output.chunks[chunk].num_tokens);
    out.prompt.push_back(
        {chunk, std::span<const float>(logits_).subspan(first_row * vocab, rows * vocab)});
  }
  return out;
}

}  // namespace moon
