#include "engine/scheduler.h"

#include <algorithm>

namespace moon {

Scheduler::Scheduler(const SchedulerConfig& config, KvCacheManager* kv)
    : config_(config), kv_(kv) {}

Status Scheduler::check_fits(int64_t num_tokens_prompt, int64_t max_tokens) const {
  const int64_t max_len = num_tokens_prompt + max_tokens;
  if (max_len > config_.max_model_len) {
    return make_error(
        "this request needs {} tokens ({} prompt + {} max tokens), more than the maximum "
        "model length of {}",
        max_len, num_tokens_prompt, max_tokens, config_.max_model_len);
  }
  const int64_t blocks_alone = (max_len + kv_->block_size() - 1) / kv_->block_size();
  if (blocks_alone > kv_->num_blocks() - kv_->num_watermark_blocks()) {
    return make_error(
        "this request needs {} KV cache blocks ({} tokens) but the whole cache has {} usable: "
        "raise --kv-cache-memory or lower max tokens",
        blocks_alone, max_len, kv_->num_blocks() - kv_->num_watermark_blocks());
  }
  return Status::success();
}

Status Scheduler::add(std::unique_ptr<Sequence> seq) {
  if (seq->num_tokens_prompt <= 0 || seq->num_tokens() != seq->num_tokens_prompt) {
    return make_error("a new sequence needs a non-empty prompt and no generated tokens");
  }
  MOON_TRY(check_fits(seq->num_tokens_prompt, seq->max_tokens));
  if (sequences_.contains(seq->id)) return make_error("sequence id {} is already in use", seq->id);
  seq->status = SequenceStatus::kWaiting;
  seq->num_tokens_computed = 0;
  waiting_.push_back(seq.get());
  sequences_.emplace(seq->id, std::move(seq));
  return Status::success();
}

void Scheduler::preempt(Sequence& seq, SchedulerOutput& out) {
  kv_->free(seq.id);
  seq.num_tokens_computed = 0;
  seq.status = SequenceStatus::kWaiting;
  waiting_.push_front(&seq);
  out.preempted.push_back(seq.id);
  ++num_preemptions_;
}

// Gives a running sequence slots for `num_tokens`, preempting the most recently admitted
// running sequences (those at the back, not yet scheduled this step) until the pool can.
// False when the sequence itself had to be preempted.
bool Scheduler::try_allocate(Sequence& seq, int64_t num_tokens, SchedulerOutput& out) {
  while (!kv_->allocate_slots(seq.id, seq.tokens, num_tokens)) {
    Sequence* victim = running_.back();
    running_.pop_back();
    preempt(*victim, out);
    if (victim == &seq) return false;
  }
  return true;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = config_.max_num_batched_tokens;

  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence& seq = *running_[i];
    const int64_t n = std::min(seq.num_tokens_uncomputed(), budget);
    if (n <= 0) continue;
    if (!try_allocate(seq, n, out)) break;  // it was the last running sequence
    out.chunks.push_back(
        {&seq, seq.num_tokens_computed, n, seq.num_tokens_computed + n == seq.num_tokens()});
    budget -= n;
  }

  // Admitting new work in a step that had to preempt would only preempt more next step.
  while (out.preempted.empty() && !waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    Sequence& seq = *waiting_.front();
    if (!kv_->has_sequence(seq.id) && !seq.needs_prompt_logits) {
      seq.num_tokens_computed = kv_->match_prefix(seq.id, seq.tokens);
    }
    const int64_t uncomputed = seq.num_tokens_uncomputed();
    const int64_t n = std::min(uncomputed, budget);
    const bool fits = (config_.enable_chunked_prefill || n == uncomputed) &&
                      kv_->can_allocate(kv_->num_blocks_needed_for(seq.id, n)) &&
                      kv_->allocate_slots(seq.id, seq.tokens, n);
    if (!fits) {
      // First come, first served: nobody overtakes the head of the queue. Its prefix hits
      // are given back so that cached blocks stay evictable while it waits.
      kv_->free(seq.id);
      seq.num_tokens_computed = 0;
      break;
    }
    waiting_.pop_front();
    seq.status = SequenceStatus::kRunning;
    running_.push_back(&seq);
    out.chunks.push_back(
        {&seq, seq.num_tokens_computed, n, seq.num_tokens_computed + n == seq.num_tokens()});
    budget -= n;
  }

  out.num_batched_tokens = config_.max_num_batched_tokens - budget;
  out.block_copies = kv_->take_pending_copies();
  return out;
}

void Scheduler::update(const SchedulerOutput& output, const std::vector<TokenId>& sampled) {
  for (size_t i = 0; i < output.chunks.size(); ++i) {
    const ScheduledChunk& chunk = output.chunks[i];
    Sequence& seq = *chunk.sequence;
    seq.num_tokens_computed = chunk.start + chunk.num_tokens;
    kv_->commit_full_blocks(seq.id, seq.tokens);
    if (chunk.samples) seq.tokens.push_back(sampled[i]);
  }
}

void Scheduler::remove_from_queues(SequenceId id) {
  auto match = [id](const Sequence* s) { return s->id == id; };
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), match), waiting_.end());
  running_.erase(std::remove_if(running_.begin(), running_.end(), match), running_.end());
}

std::unique_ptr<Sequence> Scheduler::finish(SequenceId id, FinishReason reason) {
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return nullptr;
  std::unique_ptr<Sequence> seq = std::move(it->second);
  sequences_.erase(it);
  remove_from_queues(id);
  kv_->free(id);
  seq->status = SequenceStatus::kFinished;
  seq->finish_reason = reason;
  return seq;
}

Status Scheduler::fork(SequenceId parent_id, std::unique_ptr<Sequence> child) {
  Sequence* parent = find(parent_id);
  if (!parent || parent->status != SequenceStatus::kRunning) {
    return make_error("cannot fork sequence {}: it is not running", parent_id);
  }
  if (sequences_.contains(child->id))
    return make_error("sequence id {} is already in use", child->id);
  if (static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    kv_->fork(parent_id, child->id);
    child->num_tokens_computed = parent->num_tokens_computed;
    child->status = SequenceStatus::kRunning;
    running_.push_back(child.get());
  } else {
    // The batch is full: the child queues behind everyone already waiting, so one request's
    // n cannot crowd others out. Admitted later, it gets the parent's committed blocks back
    // from the prefix cache and recomputes the rest.
    child->num_tokens_computed = 0;
    child->status = SequenceStatus::kWaiting;
    waiting_.push_back(child.get());
  }
  sequences_.emplace(child->id, std::move(child));
  return Status::success();
}

Sequence* Scheduler::find(SequenceId id) {
  auto it = sequences_.find(id);
  return it == sequences_.end() ? nullptr : it->second.get();
}

}  // namespace moon
